#!/usr/bin/env bash
# demarche send against Postfix's smtp-sink on loopback: every mission gets exactly one
# message with its own addresses and Message-ID, the ledger records the sink's reply, and
# each fault smtp-sink can inject leaves the state docs/design.md prescribes (sent, deferred,
# failed, unknown), with reruns that never send twice.
set -u
. "$(dirname "$0")/lib.bash"
. "$(dirname "$0")/servers/sink.bash"

R="$SRCDIR/recipients"
export DEMARCHE_TEMPLATES="$SRCDIR/templates"
draft_original asp-session
test_ini

PORT=$(free_port)
CLEANUP+=("sink_stop $WORK/sink")
URL="smtp://127.0.0.1:$PORT"
ROSTER=(--to "$R/missions.example.csv" --join "$R/states-parties.csv")
send() { "$DEMARCHE" --store ledger.db send appeal "${ROSTER[@]}" --via "$URL" --yes "$@"; }
state_count() { # campaign state -> number of deliveries in that state
	sqlite3 ledger.db "select count(*) from deliveries where campaign='$1' and state='$2'"
}

# What arrived: one dump per message; checks each mission's envelope against the roster.
check_dumps() { # dir expected-count
	python3 - "$1/dump" "$R/missions.example.csv" "$2" <<'PY' || fail "dumps: see above"
import csv, email, os, re, sys
from email import policy
dump, roster, expected = sys.argv[1], sys.argv[2], int(sys.argv[3])
rows = {r["iso3"]: r for r in csv.DictReader(open(roster, encoding="utf-8"))}
seen = {}
for name in sorted(os.listdir(dump)):
    raw = open(os.path.join(dump, name), "rb").read()
    rcpts = [m.decode() for m in re.findall(rb"^X-Rcpt-Args: <([^>]*)>", raw, re.M)]
    body = raw.split(b"\n", 1)[1] if raw.startswith(b"X-") else raw
    msg = email.message_from_bytes(re.sub(rb"^X-(Mail|Rcpt)-Args:.*\n", b"", raw, flags=re.M),
                                   policy=policy.default)
    mid = msg["Message-ID"]
    key = mid.split(".")[1]
    if key in seen:
        sys.exit(f"{key}: two messages ({seen[key]} and {mid})")
    seen[key] = mid
    row = rows[key]
    want = {row["email"]} | {a.strip() for a in re.split("[;,]", row["cc"]) if a.strip()}
    if set(rcpts) != want:
        sys.exit(f"{key}: RCPT {sorted(rcpts)} but the roster says {sorted(want)}")
    if row["email"] not in str(msg["To"]):
        sys.exit(f"{key}: To is {msg['To']}")
if len(seen) != expected:
    sys.exit(f"{len(seen)} messages, expected {expected}")
PY
}

# 1. All 124 missions: 124 messages, right addresses, own Message-IDs; the ledger has the
#    sink's reply; a rerun sends nothing.
sink_start "$WORK/sink" "$PORT" || fail "smtp-sink"
send >out.txt 2>err.txt
expect_rc 0 $? "send to 124 missions: $(cat err.txt)"
grep -q "124 sent, 0 deferred, 0 failed, 0 in doubt" out.txt || fail "summary: $(cat out.txt)"
check_dumps "$WORK/sink" 124
sent=$(state_count asp22-priorities sent)
total=$(sqlite3 ledger.db "select count(*) from deliveries")
[ "$sent" = "$total" ] && [ "$sent" -gt 124 ] || fail "ledger: $sent sent of $total"
[ "$(sqlite3 ledger.db "select count(distinct message_id) from deliveries")" = 124 ] ||
	fail "Message-IDs are not one per mission"
sqlite3 ledger.db "select last_code, last_reply from deliveries" | grep -qv '^250|250 ' &&
	fail "a delivery without the sink's 250 reply"
send >out.txt 2>err.txt
expect_rc 0 $? "rerun"
grep -q "nothing to send (124 already sent" out.txt || fail "rerun: $(cat out.txt)"
[ "$(sink_count "$WORK/sink")" = 124 ] || fail "the rerun sent something"
"$DEMARCHE" --store ledger.db verify >/dev/null || fail "verify after sending"
sink_stop "$WORK/sink"

# The campaign's appeal cannot change under the same id without --amend.
sed -i 's/critical opportunity/crucial opportunity/' appeal/en.md
send --only KEN >out.txt 2>err.txt
expect_rc 65 $? "changed appeal under the same campaign"
grep -q "amend" err.txt || fail "no --amend hint: $(cat err.txt)"

# 2. 4xx on RCPT: all deferred, exit 75; then without the fault: all sent, once each.
SEL=(--only KEN,FRA,ARG,DEU,JPN,CIV)
rm -f ledger.db*
sed -i 's/^Campaign: .*/Campaign: faults-4xx/' appeal/*.md
sink_start "$WORK/s4" "$PORT" -r RCPT || fail "smtp-sink -r RCPT"
send "${SEL[@]}" >out.txt 2>err.txt
expect_rc 75 $? "4xx on RCPT"
[ "$(state_count faults-4xx deferred)" -ge 6 ] || fail "not deferred: $(cat out.txt err.txt)"
[ "$(sink_count "$WORK/s4")" = 0 ] || fail "a message arrived despite 4xx"
sink_stop "$WORK/s4"
sink_start "$WORK/s4ok" "$PORT" || fail "smtp-sink"
send "${SEL[@]}" >out.txt 2>err.txt
expect_rc 0 $? "rerun after 4xx: $(cat err.txt)"
[ "$(sink_count "$WORK/s4ok")" = 6 ] || fail "after the 4xx rerun: $(sink_count "$WORK/s4ok") messages"
send "${SEL[@]}" >/dev/null 2>&1
[ "$(sink_count "$WORK/s4ok")" = 6 ] || fail "a second rerun sent again"
sink_stop "$WORK/s4ok"

# 3. 5xx on RCPT and on DATA: failed, exit 69, and not retried.
for cmd in RCPT DATA; do
	sed -i "s/^Campaign: .*/Campaign: faults-5xx-$cmd/" appeal/*.md
	sink_start "$WORK/s5$cmd" "$PORT" -f "$cmd" || fail "smtp-sink -f $cmd"
	send "${SEL[@]}" >out.txt 2>err.txt
	expect_rc 69 $? "5xx on $cmd"
	[ "$(state_count "faults-5xx-$cmd" failed)" -ge 6 ] || fail "5xx $cmd: $(cat out.txt)"
	sqlite3 ledger.db "select last_code from deliveries where campaign='faults-5xx-$cmd'" |
		grep -qv '^5' && fail "5xx $cmd: a code that is not 5xx"
	sink_stop "$WORK/s5$cmd"
	sink_start "$WORK/s5${cmd}ok" "$PORT"
	send "${SEL[@]}" >out.txt 2>err.txt
	expect_rc 69 $? "rerun after 5xx on $cmd"
	[ "$(sink_count "$WORK/s5${cmd}ok")" = 0 ] || fail "failed missions were sent again"
	sink_stop "$WORK/s5${cmd}ok"
done

# 4. The link drops after the final dot: unknown (in doubt), exit 75; a rerun leaves them;
#    --retry-unknown sends them.
sed -i "s/^Campaign: .*/Campaign: faults-drop/" appeal/*.md
sink_start "$WORK/sq" "$PORT" -q . || fail "smtp-sink -q ."
send "${SEL[@]}" >out.txt 2>err.txt
expect_rc 75 $? "drop after the dot"
[ "$(state_count faults-drop unknown)" -ge 6 ] || fail "not unknown: $(cat out.txt err.txt)"
sink_stop "$WORK/sq"
sink_start "$WORK/sqok" "$PORT"
send "${SEL[@]}" >out.txt 2>err.txt
expect_rc 75 $? "rerun with missions in doubt"
[ "$(sink_count "$WORK/sqok")" = 0 ] || fail "missions in doubt were sent without --retry-unknown"
send "${SEL[@]}" --retry-unknown >out.txt 2>err.txt
expect_rc 0 $? "--retry-unknown: $(cat err.txt)"
[ "$(sink_count "$WORK/sqok")" = 6 ] || fail "--retry-unknown sent $(sink_count "$WORK/sqok")"
sink_stop "$WORK/sqok"

# 5. 421 on MAIL: deferred (and the connection reopened for the next message).
sed -i "s/^Campaign: .*/Campaign: faults-421/" appeal/*.md
sink_start "$WORK/s421" "$PORT" -Q MAIL || fail "smtp-sink -Q MAIL"
send "${SEL[@]}" >out.txt 2>err.txt
expect_rc 75 $? "421 on MAIL"
[ "$(state_count faults-421 deferred)" -ge 6 ] || fail "421: $(cat out.txt err.txt)"
sqlite3 ledger.db "select distinct last_code from deliveries where campaign='faults-421'" |
	grep -qx 421 || fail "421 not recorded"
sink_stop "$WORK/s421"

# 6. A server slower than the timeout: deferred before the data ends.
sed -i "s/^Campaign: .*/Campaign: faults-slow/" appeal/*.md
sed -i 's/^timeout = .*/timeout = 2/' demarche.ini
sink_start "$WORK/sw" "$PORT" -w 4 || fail "smtp-sink -w"
send --only KEN >out.txt 2>err.txt
expect_rc 75 $? "slow server"
[ "$(state_count faults-slow deferred)" -ge 1 ] || fail "slow: $(cat out.txt err.txt)"
sink_stop "$WORK/sw"
sed -i 's/^timeout = .*/timeout = 5/' demarche.ini

# 7. Not on a terminal and no --yes: refused, nothing sent.
"$DEMARCHE" --store ledger.db send appeal "${ROSTER[@]}" --via "$URL" </dev/null >/dev/null 2>err.txt
expect_rc 64 $? "send without --yes off a terminal"
grep -q -- "--yes" err.txt || fail "no --yes hint"

# 8. --test-to: every selected message to one address, Subject [TEST], test events only.
sed -i "s/^Campaign: .*/Campaign: test-run/" appeal/*.md
sink_start "$WORK/st" "$PORT"
send --only KEN,FRA --test-to me@ngo.example >out.txt 2>err.txt
expect_rc 0 $? "--test-to: $(cat err.txt)"
[ "$(sink_count "$WORK/st")" = 2 ] || fail "--test-to sent $(sink_count "$WORK/st")"
grep -L "^X-Rcpt-Args: <me@ngo.example>" "$WORK"/st/dump/* | grep -q . && fail "--test-to RCPT"
grep -l "^Subject: \[TEST\]" "$WORK"/st/dump/* | wc -l | grep -qx 2 || fail "no [TEST] subject"
[ "$(sqlite3 ledger.db "select count(*) from deliveries where campaign='test-run'")" = 0 ] ||
	fail "--test-to made deliveries"
[ "$(sqlite3 ledger.db "select count(*) from events where kind='test'")" = 2 ] ||
	fail "--test-to did not record 2 test events"

# 9. --limit N: at most N this run; the rest on the next.
sed -i "s/^Campaign: .*/Campaign: limited/" appeal/*.md
send --limit 3 "${SEL[@]}" >out.txt 2>err.txt
expect_rc 75 $? "--limit leaves work for later"
[ "$(state_count limited sent)" -ge 3 ] && [ "$(sqlite3 ledger.db "select count(distinct key) from deliveries where campaign='limited' and state='sent'")" = 3 ] ||
	fail "--limit 3: $(cat out.txt)"
send "${SEL[@]}" >out.txt 2>err.txt
expect_rc 0 $? "after --limit"
[ "$(sqlite3 ledger.db "select count(distinct key) from deliveries where campaign='limited' and state='sent'")" = 6 ] ||
	fail "after --limit: $(cat out.txt)"
sink_stop "$WORK/st"

# 10. --rate 600/minute over 50 messages: about 5 s, paced (no burst: no 10 consecutive
#     messages faster than the rate allows, with generous tolerance).
sed -i "s/^Campaign: .*/Campaign: paced/" appeal/*.md
sink_start "$WORK/sr" "$PORT"
start=$(date +%s.%N)
send --rate 600/minute --where language=en --limit 50 >out.txt 2>err.txt
rc=$?
end=$(date +%s.%N)
[ "$rc" = 0 ] || [ "$rc" = 75 ] || fail "paced send exited $rc: $(cat err.txt)"
[ "$(sink_count "$WORK/sr")" = 50 ] || fail "paced send: $(sink_count "$WORK/sr") messages"
# (timing means nothing under valgrind: scripts/valgrind sets DEMARCHE_VALGRIND)
[ -n "${DEMARCHE_VALGRIND:-}" ] ||
	python3 - "$WORK/sr/dump" "$start" "$end" <<'PY' || fail "pacing: see above"
import os, sys
d, start, end = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
t = sorted(os.stat(os.path.join(d, f)).st_mtime_ns / 1e9 for f in os.listdir(d))
total = end - start
if not 3.5 <= total <= 15:
    sys.exit(f"50 messages at 600/minute took {total:.2f} s, expected about 5 s")
for i in range(len(t) - 9):
    if t[i + 9] - t[i] < 0.6:  # 9 intervals of 0.1 s at the rate: 0.9 s
        sys.exit(f"a burst: messages {i}..{i + 9} within {t[i + 9] - t[i]:.3f} s")
print(f"paced: {total:.2f} s for 50 messages")
PY
sink_stop "$WORK/sr"

# 11. SIGINT: no new message starts, what is in flight finishes, the ledger is consistent,
#     exit 75; the rerun sends the rest, each mission once.
sed -i "s/^Campaign: .*/Campaign: interrupted/" appeal/*.md
sink_start "$WORK/si" "$PORT"
# (not through the send function: the signal must reach demarche, not a subshell)
"$DEMARCHE" --store ledger.db send appeal "${ROSTER[@]}" --via "$URL" --yes --rate 300/minute \
	--where "asp_regional_group=Western European and other States" >out.txt 2>err.txt &
pid=$!
for i in $(seq 1 200); do # interrupt once the first message has arrived (20 s at most)
	[ "$(sink_count "$WORK/si")" -ge 1 ] && break
	sleep 0.1
done
sleep 0.3
kill -INT "$pid"
wait "$pid"
expect_rc 75 $? "interrupted send"
grep -q "interrupted" err.txt || fail "no word of the interruption: $(cat err.txt)"
n=$(sink_count "$WORK/si")
[ "$n" -ge 1 ] && [ "$n" -lt 25 ] || fail "interrupted after $n messages"
[ "$(state_count interrupted sending)" = 0 ] || fail "deliveries left in state sending"
[ "$(sqlite3 ledger.db "select count(distinct key) from deliveries where campaign='interrupted' and state='sent'")" = "$n" ] ||
	fail "the ledger does not match what the sink received ($n)"
send --where "asp_regional_group=Western European and other States" >out.txt 2>err.txt
expect_rc 0 $? "rerun after the interruption: $(cat out.txt err.txt)"
[ "$(sink_count "$WORK/si")" = 25 ] || fail "after the rerun: $(sink_count "$WORK/si") messages"

# 12. daily_cap counts recipients this account already sent: two runs together stay under it.
sed -i "s/^Campaign: .*/Campaign: capped/" appeal/*.md
rm -f ledger.db*
printf "daily_cap = 4\n" >>demarche.ini
sent_rcpts() { sqlite3 ledger.db "select count(*) from deliveries where campaign='capped' and state='sent'"; }
send "${SEL[@]}" >out.txt 2>err.txt
expect_rc 75 $? "first capped run"
n=$(sent_rcpts)
[ "$n" -ge 1 ] && [ "$n" -le 4 ] || fail "daily_cap 4 recipients, $n sent: $(cat out.txt)"
grep -q "daily cap" err.txt || fail "no word of the daily cap: $(cat out.txt err.txt)"
send "${SEL[@]}" >out.txt 2>err.txt
expect_rc 75 $? "second capped run"
[ "$(sent_rcpts)" -le 4 ] || fail "two runs together sent $(sent_rcpts) recipients, cap 4"
grep -q "daily cap" out.txt err.txt || fail "no word of the daily cap: $(cat out.txt err.txt)"
sed -i '/^daily_cap/d' demarche.ini
sink_stop "$WORK/si"

# 13. On a terminal without --yes: the plan is shown and only the word "send" sends.
if command -v script >/dev/null; then
	sed -i "s/^Campaign: .*/Campaign: asked/" appeal/*.md
	rm -rf outbox
	cmd="$DEMARCHE --store ledger.db send appeal --to $R/missions.example.csv --only KEN,FRA --via maildir:outbox"
	printf 'no\n' | script -qec "$cmd" /dev/null >tty.txt 2>&1
	grep -q "2 to send" tty.txt || fail "no plan shown: $(cat tty.txt)"
	grep -q "nothing sent" tty.txt || fail "not stopped: $(cat tty.txt)"
	[ -n "$(ls outbox/new 2>/dev/null)" ] && fail "sent without the word send"
	printf 'send\n' | script -qec "$cmd" /dev/null >tty.txt 2>&1
	[ "$(ls outbox/new | wc -l)" = 2 ] || fail "not sent after typing send: $(cat tty.txt)"
fi
"$DEMARCHE" --store ledger.db verify >/dev/null || fail "verify at the end"
pass
