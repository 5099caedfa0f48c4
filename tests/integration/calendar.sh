#!/usr/bin/env bash
# The send calendar against smtp-sink with a frozen clock (DEMARCHE_NOW): three missions in
# three zones (New York, Brussels, Amman with a Friday-Saturday weekend) sent with --window
# 09:00-17:00 --until-done go out at their local 09:00 on a local working day (read back
# from the ledger's sent times); --until stops a run; bad zones and weekends exit 65 with the
# row and column; a killed --until-done run resumes and sends each mission exactly once; and
# audit --format ics parses with Python's icalendar and keeps RFC 5545's line rules.
set -u
. "$(dirname "$0")/lib.bash"
. "$(dirname "$0")/servers/sink.bash"
command -v sqlite3 >/dev/null || fail "no sqlite3 command-line tool (Debian package sqlite3)"
PY=/usr/bin/python3 # Debian's, with python3-icalendar

R="$SRCDIR/recipients"
export DEMARCHE_TEMPLATES="$SRCDIR/templates"
draft_original asp-session
test_ini
# KEN in New York, BEL in Brussels, JOR in Amman (weekend Friday and Saturday)
{
	head -1 "$R/missions.example.csv" | sed 's/$/,weekend/'
	grep -E '^(KEN|BEL|JOR),' "$R/missions.example.csv" | sed \
		-e '/^KEN,/s/$/,/' \
		-e '/^BEL,/s|America/New_York$|Europe/Brussels,sat-sun|' \
		-e '/^JOR,/s|America/New_York$|Asia/Amman,fri-sat|'
} >roster.csv
[ "$(wc -l <roster.csv)" = 4 ] || fail "roster: $(cat roster.csv)"

PORT=$(free_port)
CLEANUP+=("sink_stop $WORK/sink" "sink_stop $WORK/sink2")
sink_start "$WORK/sink" "$PORT" || fail "smtp-sink"
S() { # store, then send's arguments
	local store=$1
	shift
	"$DEMARCHE" --store "$store" send appeal --to roster.csv --via "smtp://127.0.0.1:$PORT" \
		--yes "$@"
}
# Friday 4 December 2026, 00:00 UTC: Amman is at 02:00 on its weekend
export DEMARCHE_NOW=2026-12-04T00:00:00Z

# Without --until-done: nothing is due yet, the plan is recorded, exit 75.
S one.db --window 09:00-17:00 >out.txt 2>err.txt
expect_rc 75 $? "a send before every window: $(cat out.txt err.txt)"
grep -q "^3 missions wait for their time; the next: BEL at 2026-12-04 09:00 Europe/Brussels" \
	out.txt || fail "the next window: $(cat out.txt)"
[ "$(sink_count "$WORK/sink")" = 0 ] || fail "something was sent before its window"
[ "$(sqlite3 one.db "select count(*) from events where kind='schedule'")" = 3 ] ||
	fail "the plan is not in the ledger"
S one.db --window 09:00-17:00 >out.txt 2>err.txt
[ "$(sqlite3 one.db "select count(*) from events where kind='schedule'")" = 3 ] ||
	fail "the same plan was recorded twice"

# --until-done: each mission at its local 09:00 on a working day.
S one.db --window 09:00-17:00 --until-done >out.txt 2>err.txt
expect_rc 0 $? "--until-done: $(cat out.txt err.txt)"
[ "$(sink_count "$WORK/sink")" = 3 ] || fail "$(sink_count "$WORK/sink") messages, expected 3"
"$PY" - one.db <<'PY' || fail "sent times: see above"
import sqlite3, sys, datetime
from zoneinfo import ZoneInfo
zones = {"KEN": ("America/New_York", {5, 6}), "BEL": ("Europe/Brussels", {5, 6}),
         "JOR": ("Asia/Amman", {4, 5})}  # weekday(): Monday 0 ... Friday 4, Saturday 5
want_day = {"KEN": "2026-12-04", "BEL": "2026-12-04", "JOR": "2026-12-06"}
db = sqlite3.connect(sys.argv[1])
rows = db.execute("select key, state, updated, attempts from deliveries").fetchall()
keys = set()
for key, state, updated, attempts in rows:
    keys.add(key)
    if state != "sent" or attempts != 1:
        sys.exit(f"{key}: {state}, {attempts} attempts")
    t = datetime.datetime.strptime(updated, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc)
    zone, weekend = zones[key]
    local = t.astimezone(ZoneInfo(zone))
    # sent at the window's opening, 09:00 local: the frozen clock jumps there, then runs at
    # the real pace while the pass works (minutes allowed for valgrind, not hours)
    if local.hour != 9 or local.minute >= 5:
        sys.exit(f"{key}: sent at {local.isoformat()}, not at 09:00 local")
    if local.weekday() in weekend:
        sys.exit(f"{key}: sent on a local weekend day, {local.isoformat()}")
    if local.date().isoformat() != want_day[key]:
        sys.exit(f"{key}: sent on {local.date()}, expected {want_day[key]}")
if keys != set(zones):
    sys.exit(f"missions {keys}")
PY
"$DEMARCHE" --store one.db verify >/dev/null || fail "verify after --until-done"

# --until stops before Amman's Sunday (and says so): 75, JOR not sent.
S two.db --window 09:00-17:00 --until-done --until 2026-12-05 >out.txt 2>err.txt
expect_rc 75 $? "--until: $(cat out.txt err.txt)"
grep -q "1 missions left: the next time comes after --until" err.txt || fail "--until: $(cat err.txt)"
sent=$(sqlite3 two.db "select group_concat(key) from
	(select distinct key from deliveries where state='sent' order by key)")
[ "$sent" = BEL,KEN ] || fail "--until: sent $sent, expected BEL,KEN"
[ "$(sqlite3 two.db "select count(*) from deliveries where key='JOR'")" = 0 ] ||
	fail "JOR was sent before its window"

# --at: nothing before 12:00 UTC, then everyone at once (no window: weekends do not count);
# with --local, each mission's own 12:00.
S four.db --at 2026-12-04T12:00 --until-done >out.txt 2>err.txt
expect_rc 0 $? "--at: $(cat out.txt err.txt)"
[ "$(sqlite3 four.db "select count(*) from deliveries where state='sent'
	and updated like '2026-12-04T12:0%'")" = "$(sqlite3 four.db "select count(*) from deliveries")" ] ||
	fail "--at: $(sqlite3 four.db "select key, updated from deliveries")"
S five.db --at 2026-12-04T12:00 --local --until-done >out.txt 2>err.txt
expect_rc 0 $? "--at --local: $(cat out.txt err.txt)"
at_local=$(sqlite3 five.db "select group_concat(key || ' ' || substr(t, 1, 15), ', ') from
	(select key, min(updated) as t from deliveries group by key order by key)")
[ "$at_local" = "BEL 2026-12-04T11:0, JOR 2026-12-04T09:0, KEN 2026-12-04T17:0" ] ||
	fail "--at --local: $at_local"

# The calendar of two.db: JOR's planned send, as RFC 5545.
"$DEMARCHE" --store two.db audit --format ics -o cal.ics 2>err.txt || fail "ics: $(cat err.txt)"
"$PY" - cal.ics <<'PY' || fail "ics: see above"
import sys, icalendar, datetime
raw = open(sys.argv[1], "rb").read()
# RFC 5545 3.1: CRLF lines of at most 75 octets, continuation lines start with a space
if not raw.endswith(b"\r\n") or b"\n" in raw.replace(b"\r\n", b""):
    sys.exit("lines do not all end with CRLF")
for line in raw.split(b"\r\n")[:-1]:
    if len(line) > 75:
        sys.exit(f"line over 75 octets: {line!r}")
cal = icalendar.Calendar.from_ical(raw)
assert cal["VERSION"] == "2.0" and cal["PRODID"], "VERSION/PRODID"
events = list(cal.walk("VEVENT"))
if len(events) != 1:
    sys.exit(f"{len(events)} events, expected JOR's one")
e = events[0]
for p in ("UID", "DTSTAMP", "DTSTART", "SUMMARY"):
    if p not in e:
        sys.exit(f"no {p}")
if "JOR" not in str(e["SUMMARY"]):
    sys.exit(f"summary {e['SUMMARY']}")
if e["DTSTART"].dt != datetime.datetime(2026, 12, 6, 6, 0, tzinfo=datetime.timezone.utc):
    sys.exit(f"DTSTART {e['DTSTART'].dt}")
if "Asia/Amman" not in str(e["DESCRIPTION"]):
    sys.exit(f"description {e['DESCRIPTION']}")
PY

# TEXT values escaped (RFC 5545 3.3.11): a key holding , ; and a backslash comes back whole.
{
	head -1 roster.csv
	grep '^JOR,' roster.csv | sed 's/^JOR,/"J,O;R\\x",/'
} >esc.csv
S esc.db --window 09:00-17:00 --to esc.csv >out.txt 2>err.txt
expect_rc 75 $? "a plan for an odd key: $(cat out.txt err.txt)"
"$DEMARCHE" --store esc.db audit --format ics -o esc.ics 2>err.txt || fail "ics: $(cat err.txt)"
grep -q 'SUMMARY:Send .* to J\\,O\\;R\\\\x' esc.ics || fail "escaping: $(cat esc.ics)"
"$PY" -c '
import sys, icalendar
e = icalendar.Calendar.from_ical(open("esc.ics", "rb").read()).walk("VEVENT")[0]
sys.exit(0 if str(e["SUMMARY"]).endswith(" to J,O;R\\x") else "summary %r" % str(e["SUMMARY"]))
' || fail "the escaped key does not parse back"

# Bad calendar cells: 65, naming file, row and column; nothing sent.
before=$(sink_count "$WORK/sink")
sed 's|Asia/Amman|Mars/Olympus_Mons|' roster.csv >bad-zone.csv
"$DEMARCHE" --store bad.db send appeal --to bad-zone.csv --via "smtp://127.0.0.1:$PORT" --yes \
	--window 09:00-17:00 >out.txt 2>err.txt
expect_rc 65 $? "an unknown zone"
grep -q "bad-zone.csv:3.*timezone.*Mars/Olympus_Mons" err.txt || fail "unknown zone: $(cat err.txt)"
sed 's|,fri-sat$|,fri-funday|' roster.csv >bad-weekend.csv
"$DEMARCHE" --store bad.db check appeal --to bad-weekend.csv >out.txt 2>err.txt
expect_rc 65 $? "a bad weekend"
grep -q "bad-weekend.csv:3.*weekend" err.txt || fail "bad weekend: $(cat err.txt)"
sed 's|,Europe/Brussels,|,,|' roster.csv >no-zone.csv
"$DEMARCHE" --store bad.db send appeal --to no-zone.csv --via "smtp://127.0.0.1:$PORT" --yes \
	--window 09:00-17:00 >out.txt 2>err.txt
expect_rc 65 $? "--window and a mission without a zone"
grep -q "no-zone.csv:2.*timezone.*empty" err.txt || fail "no zone: $(cat err.txt)"
[ "$(sink_count "$WORK/sink")" = "$before" ] || fail "a bad roster sent something"
S bad.db --window 17:00-09:00 >/dev/null 2>err.txt
expect_rc 64 $? "a window that ends before it starts"

# Killed while it sleeps until Amman's Sunday, then run again: each mission once.
sink_stop "$WORK/sink"
PORT=$(free_port)
sink_start "$WORK/sink2" "$PORT" || fail "smtp-sink 2"
# Friday 13:59:50 UTC: Brussels is open, New York opens in 10 s, Amman on Sunday (40 h
# later: 7 s of real time at 20,000 times the speed)
DEMARCHE_NOW=2026-12-04T13:59:50Z DEMARCHE_SPEED=20000 \
	S three.db --window 09:00-17:00 --until-done >out1.txt 2>&1 &
pid=$!
for _ in $(seq 1200); do
	[ "$(sink_count "$WORK/sink2")" -ge 2 ] && break
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.1
done
kill -0 "$pid" 2>/dev/null || fail "the run ended before it could be killed: $(cat out1.txt)"
[ "$(sink_count "$WORK/sink2")" = 2 ] || fail "before the kill: $(sink_count "$WORK/sink2") sent"
kill -9 "$pid"
wait "$pid" 2>/dev/null
DEMARCHE_NOW=2026-12-05T12:00:00Z S three.db --window 09:00-17:00 --until-done >out2.txt 2>&1
expect_rc 0 $? "the resumed run: $(cat out2.txt)"
"$PY" - "$WORK/sink2/dump" three.db <<'PY' || fail "after the resume: see above"
import collections, os, re, sqlite3, sys
d, db = sys.argv[1], sqlite3.connect(sys.argv[2])
copies = collections.Counter()
for name in os.listdir(d):
    m = re.search(rb"^Message-ID: <[^.]+\.([A-Z]{3})\.", open(os.path.join(d, name), "rb").read(), re.M)
    copies[m.group(1).decode()] += 1
if copies != {"KEN": 1, "BEL": 1, "JOR": 1}:
    sys.exit(f"messages per mission: {dict(copies)}")
for key, state, attempts, updated in db.execute(
        "select key, state, attempts, updated from deliveries"):
    if state != "sent" or attempts != 1:
        sys.exit(f"{key}: {state}, {attempts} attempts")
    if key == "JOR" and not updated.startswith("2026-12-06T06:0"):
        sys.exit(f"JOR sent at {updated}, expected Sunday 09:00 in Amman")
PY
"$DEMARCHE" --store three.db verify >/dev/null || fail "verify after the kill"

# SIGTERM (as Ctrl-C) while it sleeps until Amman's Sunday: the wait ends with a message,
# exit 75, not a process killed by the signal. (A background job ignores SIGINT.)
PORT=$(free_port)
sink_start "$WORK/sink3" "$PORT" || fail "smtp-sink 3"
CLEANUP+=("sink_stop $WORK/sink3")
DEMARCHE_NOW=2026-12-04T13:59:50Z DEMARCHE_SPEED=20000 \
	S int.db --window 09:00-17:00 --until-done >out3.txt 2>&1 &
pid=$!
for _ in $(seq 1200); do
	[ "$(sink_count "$WORK/sink3")" -ge 2 ] && break
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.1
done
sleep 0.5
pkill -TERM -P "$pid" || kill -TERM "$pid"
wait "$pid"
expect_rc 75 $? "SIGTERM while waiting: $(cat out3.txt)"
grep -q "interrupted while waiting; run again to go on" out3.txt ||
	fail "no 'interrupted while waiting': $(cat out3.txt)"
sent=$(sqlite3 int.db "select group_concat(distinct key) from (select key from deliveries where state = 'sent' order by key)")
[ "$sent" = BEL,KEN ] || fail "SIGTERM while waiting: sent '$sent', not BEL and KEN"
pass
