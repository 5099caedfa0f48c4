#!/usr/bin/env bash
# Issue 18, point 1: a Maildir outbox is a staging channel, not the send. A send into it
# records every delivery 'staged' (never sent), says plainly that nothing was sent, and
# audit shows them staged; a later send through SMTP (smtp-sink on loopback) sends every
# staged mission once, and the ledger then holds them sent, chain intact.
set -u
. "$(dirname "$0")/lib.bash"
. "$(dirname "$0")/servers/sink.bash"

R="$SRCDIR/recipients"
draft_original asp-session
test_ini
ROSTER=(--to "$R/missions.example.csv" --join "$R/states-parties.csv")
send() { "$DEMARCHE" --store ledger.db send appeal "${ROSTER[@]}" --yes "$@"; }
state_count() { sqlite3 ledger.db "select count(*) from deliveries where state='$1'"; }
missions=$(($(grep -vc '^#' "$R/missions.example.csv") - 1))

# 1. Into the outbox: staged, not sent; the words say so; exit 0.
send --via maildir:outbox >out.txt 2>err.txt
expect_rc 0 $? "send into the outbox: $(cat err.txt)"
grep -q "^campaign asp22-priorities: $missions staged, 0 deferred, 0 failed, 0 in doubt, 0 not started; 0 already staged before: written to the local outbox outbox; nothing was sent to the missions$" out.txt ||
	fail "staging summary: $(cat out.txt)"
grep -q "selected: $missions: 0 sent, 0 deferred, 0 failed, 0 in doubt, 0 not started, $missions staged" out.txt ||
	fail "staging counts: $(cat out.txt)"
[ "$(ls outbox/new | wc -l)" = "$missions" ] || fail "outbox holds $(ls outbox/new | wc -l)"
total=$(sqlite3 ledger.db "select count(*) from deliveries")
[ "$(state_count staged)" = "$total" ] && [ "$(state_count sent)" = 0 ] ||
	fail "ledger after staging: $(state_count staged) staged, $(state_count sent) sent of $total"
[ "$(sqlite3 ledger.db "select count(*) from events where to_state='sent'")" = 0 ] ||
	fail "a staged message has a 'sent' event"

# Again into the outbox: nothing new is staged, nothing was sent.
send --via maildir:outbox >out.txt 2>err.txt
expect_rc 0 $? "staging again"
grep -q "nothing to stage ($missions already staged, 0 already sent" out.txt ||
	fail "restage: $(cat out.txt)"
[ "$(ls outbox/new | wc -l)" = "$missions" ] || fail "staged twice"

# audit: staged missions are not received; the staged count is there.
"$DEMARCHE" --store ledger.db audit --format csv >audit.csv 2>err.txt || fail "audit: $(cat err.txt)"
/usr/bin/python3 - "$missions" "$total" <<'PY' || fail "audit after staging: $(cat audit.csv)"
import csv, sys
rows = list(csv.DictReader(open("audit.csv")))
r = rows[0]
assert r["received"] == "0", r
assert r["missing"] == sys.argv[1], r
assert r["staged"] == sys.argv[2] and r["sent"] == "0", r
PY
"$DEMARCHE" --store ledger.db audit asp22-priorities --missing --to "$R/missions.example.csv" >missing.txt 2>&1
grep -q "staged" missing.txt || fail "audit --missing does not say staged: $(head -5 missing.txt)"
"$DEMARCHE" --store ledger.db audit >table.txt 2>&1
grep -q "staged" table.txt || fail "audit's table does not show staged: $(cat table.txt)"

# 2. The plan says where the letters go (the dry run prints it without a terminal).
send --via maildir:outbox --dry-run >plan.txt 2>&1
grep -q "channel:    to be written to the local outbox outbox; nothing is sent to the missions" plan.txt ||
	fail "staging plan: $(cat plan.txt)"

# 3. Through SMTP: every staged mission is sent, once.
PORT=$(free_port)
CLEANUP+=("sink_stop $WORK/sink")
sink_start "$WORK/sink" "$PORT" || fail "smtp-sink"
send --via "smtp://127.0.0.1:$PORT" --dry-run >plan.txt 2>&1
grep -q "channel:    real send through smtp://127.0.0.1:$PORT" plan.txt || fail "real plan: $(cat plan.txt)"
send --via "smtp://127.0.0.1:$PORT" --format json >out.json 2>err.txt
expect_rc 0 $? "send after staging: $(cat err.txt)"
/usr/bin/python3 - "$missions" "$PORT" <<'PY' || fail "JSON summary: $(cat out.json)"
import json, sys
n, port = int(sys.argv[1]), sys.argv[2]
s = json.load(open("out.json"))
assert s["channel"] == "send" and s["transport"] == f"smtp://127.0.0.1:{port}", s
assert s["run"]["sent"] == n and s["run"]["failed"] == 0, s
assert s["missions"] == {"selected": n, "sent": n, "staged": 0, "deferred": 0, "failed": 0,
                         "unknown": 0, "not_started": 0}, s
assert s["exit"] == 0, s
PY
[ "$(sink_count "$WORK/sink")" = "$missions" ] || fail "the sink got $(sink_count "$WORK/sink")"
[ "$(state_count sent)" = "$total" ] && [ "$(state_count staged)" = 0 ] ||
	fail "ledger after the send: $(state_count sent) sent, $(state_count staged) staged"
send --via "smtp://127.0.0.1:$PORT" >out.txt 2>err.txt
expect_rc 0 $? "rerun"
grep -q "nothing to send ($missions already sent" out.txt || fail "rerun: $(cat out.txt)"
[ "$(sink_count "$WORK/sink")" = "$missions" ] || fail "the rerun sent again"
"$DEMARCHE" --store ledger.db audit --format csv >audit.csv 2>err.txt || fail "audit"
/usr/bin/python3 - "$missions" <<'PY' || fail "audit after sending: $(cat audit.csv)"
import csv, sys
r = list(csv.DictReader(open("audit.csv")))[0]
assert r["received"] == sys.argv[1] and r["staged"] == "0", r
PY
"$DEMARCHE" --store ledger.db verify >/dev/null || fail "verify after staging then sending"
pass
