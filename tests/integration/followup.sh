#!/usr/bin/env bash
# demarche followup against real servers and a frozen clock: a campaign sent to five
# missions through smtp-sink; a reply (DEU) and a bounce (FRA) arrive in Dovecot and
# bounces reads them; followup --after 10d lists and drafts a reminder for the three others
# only; sent too early it goes to nobody, once due it goes to exactly those three, each as a
# reply to its first letter (In-Reply-To and References in the message smtp-sink captured),
# citing its date and reference; audit --format ics shows the reminder dates.
set -u
. "$(dirname "$0")/lib.bash"
. "$(dirname "$0")/servers/sink.bash"
. "$(dirname "$0")/servers/dovecot.bash"
command -v sqlite3 >/dev/null || fail "no sqlite3 command-line tool (Debian package sqlite3)"
PY=/usr/bin/python3

R="$SRCDIR/recipients"
F="$TESTDATA/bounces"
export DEMARCHE_TEMPLATES="$SRCDIR/templates"
draft_original asp-session
CAMPAIGN=$(sed -n 's/^Campaign: //p' appeal/en.md)

PORT=$(free_port)
CLEANUP+=("sink_stop $WORK/sink" "sink_stop $WORK/sink2" "dovecot_stop $WORK/dovecot")
sink_start "$WORK/sink" "$PORT" || fail "smtp-sink"
dovecot_start "$WORK/dovecot" appeals 'imap secret' || fail "dovecot"
export DEMARCHE_IMAP_PASSWORD='imap secret'
test_ini '[imap]' "url = imap://127.0.0.1:$DOVECOT_IMAP_PORT" 'user = appeals'
D() { "$DEMARCHE" --store ledger.db "$@"; }
Q() { sqlite3 ledger.db "$1"; }

# The first letter, on Tuesday 1 December 2026 (at 10:00 and however long a slow binary
# takes: the reminders are due ten days later, checked two hours after that).
export DEMARCHE_NOW=2026-12-01T10:00:00Z
D send appeal --to "$R/missions.example.csv" --join "$R/states-parties.csv" \
	--only DEU,FRA,NLD,ARG,JPN --via "smtp://127.0.0.1:$PORT" --yes >out.txt 2>err.txt ||
	fail "send: $(cat err.txt)"
sink_stop "$WORK/sink"

# DEU replies, FRA's letter bounces (the fixtures of bounces.sh), read over IMAP.
SUBST=(-e "s/@CAMPAIGN@/$CAMPAIGN/g")
while IFS='|' read -r key address msgid; do
	msgid=${msgid#<} msgid=${msgid%>}
	SUBST+=(-e "s/@${key}_MID@/$msgid/g" -e "s/@${key}@/$address/g")
done < <(Q "select key, address, message_id from deliveries where id in
	(select min(id) from deliveries group by key)")
for f in reply-deu.eml dsn-exchange-fra.eml; do
	sed "${SUBST[@]}" "$F/$f" >"in-$f"
	dovecot_deliver "$WORK/dovecot" "in-$f" || fail "deliver $f"
done
D bounces >out.txt 2>err.txt || fail "bounces: $(cat err.txt)"
grep -q "1 bounced, 0 delayed, 1 replied" out.txt || fail "bounces: $(cat out.txt)"

# Six days later: the reminder is drafted for ARG, JPN and NLD, none due yet.
DEMARCHE_NOW=2026-12-07T10:00:00Z D followup "$CAMPAIGN" --after 10d -o reminder \
	>out.txt 2>err.txt
expect_rc 0 $? "followup: $(cat err.txt)"
grep -q "^$CAMPAIGN: 3 missions await an answer (0 due now), 2 replied or bounced" out.txt ||
	fail "followup: $(cat out.txt)"
for k in ARG JPN NLD; do
	grep -q "^$k  *first letter 2026-12-01, reminder due on 2026-12-11" out.txt ||
		fail "followup: $k: $(cat out.txt)"
done
grep -q "^DEU\|^FRA" out.txt && fail "a mission that answered is listed: $(cat out.txt)"
grep -q "^Follows: $CAMPAIGN$" reminder/en.md || fail "the reminder does not say what it follows"
grep -q "^Follows: $CAMPAIGN$" reminder/fr.md reminder/es.md || fail "fr/es: no Follows"
D followup "$CAMPAIGN" --after 10d -o reminder >/dev/null 2>err.txt
expect_rc 73 $? "followup into a folder holding a reminder"
D followup no-such-campaign --after 10d -o other >/dev/null 2>err.txt
expect_rc 65 $? "followup of an unknown campaign"
D followup "$CAMPAIGN" --after soon -o other >/dev/null 2>err.txt
expect_rc 64 $? "followup --after soon"

# check and preview read the ledger too: the preview threads like the send will
DEMARCHE_NOW=2026-12-11T12:00:00Z D check reminder --to "$R/missions.example.csv" \
	--join "$R/states-parties.csv" >out.txt 2>err.txt
expect_rc 0 $? "check of the reminder: $(cat err.txt)"
grep -q "3 selected, 3 missions rendered" out.txt || fail "check of the reminder: $(cat out.txt)"
DEMARCHE_NOW=2026-12-11T12:00:00Z D preview reminder --to "$R/missions.example.csv" \
	--join "$R/states-parties.csv" --only NLD >nld.eml 2>err.txt || fail "preview: $(cat err.txt)"
grep -qx "In-Reply-To: $(Q "select message_id from deliveries where key='NLD' limit 1")" \
	<(tr -d '\r' <nld.eml) || fail "preview does not thread: $(head -20 nld.eml)"
"$DEMARCHE" --store elsewhere.db check reminder --to "$R/missions.example.csv" >/dev/null 2>err.txt
expect_rc 66 $? "a reminder without its ledger"

PORT=$(free_port)
sink_start "$WORK/sink2" "$PORT" || fail "smtp-sink 2"
RS=(send reminder --to "$R/missions.example.csv" --join "$R/states-parties.csv"
	--via "smtp://127.0.0.1:$PORT" --yes)
# sent before it is due: to nobody
DEMARCHE_NOW=2026-12-07T10:00:00Z D "${RS[@]}" >out.txt 2>err.txt
expect_rc 0 $? "the reminder before it is due: $(cat out.txt err.txt)"
[ "$(sink_count "$WORK/sink2")" = 0 ] || fail "a reminder went out before it was due"
# due: to the three that did not answer, each once
DEMARCHE_NOW=2026-12-11T12:00:00Z D "${RS[@]}" >out.txt 2>err.txt
expect_rc 0 $? "the reminder: $(cat out.txt err.txt)"
[ "$(sink_count "$WORK/sink2")" = 3 ] || fail "$(sink_count "$WORK/sink2") reminders, expected 3"
"$PY" - "$WORK/sink2/dump" ledger.db "$CAMPAIGN" <<'PY' || fail "the reminders: see above"
import email, email.policy, os, sqlite3, sys
d, db, campaign = sys.argv[1], sqlite3.connect(sys.argv[2]), sys.argv[3]
first = dict(db.execute("select key, message_id from deliveries where campaign = ? "
                        "group by key", (campaign,)))
seen = set()
for name in os.listdir(d):
    msg = email.message_from_bytes(open(os.path.join(d, name), "rb").read(),
                                   policy=email.policy.default)
    mid = msg["Message-ID"]
    key = mid.strip("<>")[len(campaign) + len("-reminder."):].split(".")[0]
    if key in seen:
        sys.exit(f"{key}: two reminders")
    seen.add(key)
    if msg["In-Reply-To"] != first[key] or msg["References"] != first[key]:
        sys.exit(f"{key}: In-Reply-To {msg['In-Reply-To']}, References {msg['References']}, "
                 f"first letter {first[key]}")
    body = msg.get_body(("plain",)).get_content()
    ref = f"CICC/{campaign}/{key}"
    if ref not in body or not any(w in body for w in
                                  ("1 December 2026", "1er décembre 2026", "1 de diciembre de 2026")):
        sys.exit(f"{key}: the reminder does not cite the first letter's date and reference:\n{body}")
if seen != {"ARG", "JPN", "NLD"}:
    sys.exit(f"reminders to {sorted(seen)}, expected ARG, JPN, NLD")
PY
# sent again: nothing more
DEMARCHE_NOW=2026-12-12T10:00:00Z D "${RS[@]}" >out.txt 2>err.txt
expect_rc 0 $? "the reminder again"
[ "$(sink_count "$WORK/sink2")" = 3 ] || fail "a reminder went twice"

# The team's calendar: each reminder date (the three unanswered missions, 11 December).
D audit "$CAMPAIGN" --format ics -o cal.ics 2>err.txt || fail "ics: $(cat err.txt)"
"$PY" - cal.ics <<'PY' || fail "ics: see above"
import sys, icalendar, datetime
raw = open(sys.argv[1], "rb").read()
for line in raw.split(b"\r\n")[:-1]:
    if len(line) > 75 or b"\n" in line:
        sys.exit(f"bad line {line!r}")
cal = icalendar.Calendar.from_ical(raw)
ev = {str(e["SUMMARY"]): e for e in cal.walk("VEVENT")}
keys = sorted(s.rsplit(" ", 1)[1] for s in ev if s.startswith("Reminder due"))
if keys != ["ARG", "JPN", "NLD"]:
    sys.exit(f"reminders in the calendar: {keys}")
uids = {str(e["UID"]) for e in ev.values()}
if len(uids) != len(ev):
    sys.exit("UIDs are not unique")
for e in ev.values():
    if e["DTSTART"].dt != datetime.date(2026, 12, 11) or "DTSTAMP" not in e:
        sys.exit(f"{e['SUMMARY']}: {e['DTSTART'].dt}")
PY
D verify >/dev/null || fail "verify"
pass
