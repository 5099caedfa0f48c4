#!/usr/bin/env bash
# The ledger's promise under attack (issue 14, points 1, 2 and 4), with smtp-sink as the
# server and the sqlite3 command-line tool as the attacker: a change of case in the roster
# resends nothing; a deleted or edited row is named by verify and never leads to a resend;
# a second send through another path to the same ledger (a symlink) is refused and changes
# nothing. Also: verify and audit read a ledger on a read-only file, verify leaves an empty
# file empty and warns about a ledger others can read.
set -u
. "$(dirname "$0")/lib.bash"
. "$(dirname "$0")/servers/sink.bash"
command -v sqlite3 >/dev/null || fail "no sqlite3 command-line tool (Debian package sqlite3)"

R="$SRCDIR/recipients"
export DEMARCHE_TEMPLATES="$SRCDIR/templates"
draft_original asp-session
test_ini
# three missions: AFG (with a Cc), ALB, KEN (with two Cc)
{
	head -1 "$R/missions.example.csv"
	grep -E '^(AFG|ALB|KEN),' "$R/missions.example.csv"
} >roster.csv
[ "$(wc -l <roster.csv)" = 4 ] || fail "roster: $(cat roster.csv)"

PORT=$(free_port)
CLEANUP+=("sink_stop $WORK/sink")
URL="smtp://127.0.0.1:$PORT"
send() { # [store] -- options
	local store=ledger.db
	[ "${1:-}" = --store ] && store=$2 && shift 2
	"$DEMARCHE" --store "$store" send appeal --to roster.csv --join "$R/states-parties.csv" \
		--via "$URL" --yes "$@"
}
Q() { sqlite3 ledger.db "$1"; }

sink_start "$WORK/sink" "$PORT" || fail "smtp-sink"
send >out.txt 2>err.txt
expect_rc 0 $? "first send: $(cat err.txt)"
[ "$(sink_count "$WORK/sink")" = 3 ] || fail "first send: $(sink_count "$WORK/sink") messages"
[ "$(Q "select count(*) from deliveries")" = 6 ] || fail "6 deliveries expected"
[ "$(Q "select count(*) from events where kind = 'create'")" = 6 ] ||
	fail "each delivery's creation is not an event"
"$DEMARCHE" --store ledger.db verify >/dev/null || fail "verify after the first send"
cp ledger.db base.db

# --- 1. a change of case is the same mission: nothing is resent -----------------------------
sed -i -e 's/^ALB,/alb,/' -e 's/^\(KEN,.*\),ken@missions.example,/\1,KEN@Missions.Example,/' \
	roster.csv
grep -q '^alb,' roster.csv && grep -q ',KEN@Missions.Example,' roster.csv || fail "sed: roster"
send >out.txt 2>err.txt
expect_rc 0 $? "send after a change of case: $(cat out.txt err.txt)"
[ "$(sink_count "$WORK/sink")" = 3 ] || fail "a change of case resent: $(cat out.txt)"
[ "$(Q "select count(*) from deliveries")" = 6 ] || fail "a change of case made a delivery"
"$DEMARCHE" --store ledger.db verify >/dev/null || fail "verify after the case change"

# --- 2. a deleted delivery row: verify names it, send refuses and sends nothing ------------
Q "delete from deliveries where key = 'KEN' and address = 'ken@missions.example'" ||
	fail "sqlite3 delete"
"$DEMARCHE" --store ledger.db verify >out.txt 2>err.txt
expect_rc 65 $? "verify after a deleted row"
grep -q "for KEN (ken@missions.example).*missing" err.txt || fail "verify said: $(cat err.txt)"
send >out.txt 2>err.txt
expect_rc 65 $? "send after a deleted row"
grep -q "ledger damaged" err.txt || fail "send after a deleted row said: $(cat err.txt)"
[ "$(sink_count "$WORK/sink")" = 3 ] || fail "a deleted row was resent"
"$DEMARCHE" --store ledger.db audit 2>err.txt >/dev/null
expect_rc 65 $? "audit after a deleted row"
grep -q "run demarche verify" err.txt || fail "audit said: $(cat err.txt)"

# the row deleted and its count hidden by a row inserted by hand: the creation check holds
cp base.db ledger.db
Q "delete from deliveries where key = 'ALB';
   insert into deliveries (campaign, key, address, state, attempts, created, updated, key_norm,
   address_norm) select campaign, 'ZZZ', 'z@x.example', 'sent', 1, created, updated, 'zzz',
   'z@x.example' from deliveries where key = 'AFG' limit 1" || fail "sqlite3 swap"
send >out.txt 2>err.txt
expect_rc 65 $? "send after a row swapped for another"
[ "$(sink_count "$WORK/sink")" = 3 ] || fail "a deleted row was resent (count hidden)"
"$DEMARCHE" --store ledger.db verify >/dev/null 2>err.txt
expect_rc 65 $? "verify after a row swapped"
grep -q "ZZZ.*not in the chain" err.txt && grep -q "for ALB .*missing" err.txt ||
	fail "verify after a swap said: $(cat err.txt)"

# the row deleted together with its creation event (the append-only trigger dropped first):
# the last creation still counts it
cp base.db ledger.db
Q "drop trigger events_no_delete; delete from events where kind = 'create' and delivery =
   (select id from deliveries where key = 'ALB'); delete from deliveries where key = 'ALB'" ||
	fail "sqlite3 delete with its event"
send >out.txt 2>err.txt
expect_rc 65 $? "send after a row and its creation event were deleted"
grep -q "ledger damaged: 5 deliveries but 6 creation events" err.txt ||
	fail "send after a row and its event were deleted said: $(cat err.txt)"
[ "$(sink_count "$WORK/sink")" = 3 ] || fail "a row deleted with its event was resent"
"$DEMARCHE" --store ledger.db verify >/dev/null 2>err.txt
expect_rc 65 $? "verify after a row and its creation event were deleted"

# --- edits of every column the chain accounts for ---------------------------------------------
edit() { # sql, what verify must name
	cp base.db ledger.db
	Q "$1" || fail "sqlite3: $1"
	"$DEMARCHE" --store ledger.db verify >/dev/null 2>err.txt
	expect_rc 65 $? "verify after: $1"
	grep -q "$2" err.txt || fail "after '$1' verify said: $(cat err.txt) (wanted '$2')"
}
edit "update deliveries set address = 'evil@x.example' where address = 'alb@missions.example'" \
	"(ALB, alb@missions.example): address edited"
edit "update deliveries set key = 'XXX' where key = 'ALB'" "(ALB, alb@missions.example): key edited"
edit "update deliveries set message_id = '<forged@x>' where key = 'AFG'" "message_id edited"
edit "update deliveries set last_reply = '250 forged' where key = 'KEN'" \
	"(KEN, ken@missions.example): last_reply edited"
edit "update deliveries set last_code = 550 where key = 'AFG'" "last_code edited"
edit "update campaigns set content_hash = '$(printf 0%.0s {1..64})'" "content_hash edited"
edit "update campaigns set title = 'Another'" "title edited"
edit "update deliveries set via = 'smtp://elsewhere' where key = 'AFG'" "via edited"
edit "update deliveries set state = 'pending', attempts = 0 where key = 'KEN'" \
	"its state is pending but its events say sent"
cp base.db ledger.db

# --- 4. one lock per ledger file, whatever the path ------------------------------------------
sink_stop "$WORK/sink"
sink_start "$WORK/slow" "$PORT" -w 1 || fail "smtp-sink -w"
sed -i "s/^Campaign: .*/Campaign: lock-test/" appeal/*.md
ln -s ledger.db link.db
send >first.out 2>first.err &
first=$!
for _ in $(seq 100); do # until the first run holds the lock and is sending
	[ "$(Q "select count(*) from deliveries where campaign = 'lock-test'" 2>/dev/null)" -gt 0 ] &&
		break
	sleep 0.05
done
events=$(Q "select count(*) from events where campaign = 'lock-test'")
send --store link.db >second.out 2>second.err
expect_rc 75 $? "a second send through a symlink"
grep -q "another demarche send is using this ledger (link.db)" second.err ||
	fail "second send said: $(cat second.err)"
wait $first
expect_rc 0 $? "the first send, after the second was refused: $(cat first.err)"
[ "$(sink_count "$WORK/slow")" = 3 ] || fail "lock: $(sink_count "$WORK/slow") messages"
[ "$(Q "select count(*) from deliveries where campaign = 'lock-test' and state = 'sent'")" = 6 ] ||
	fail "the first run's deliveries are not all sent: $(Q "select key, state from deliveries")"
[ "$events" -le "$(Q "select count(*) from events where campaign = 'lock-test'")" ] ||
	fail "events vanished"
"$DEMARCHE" --store ledger.db verify >/dev/null || fail "verify after the lock test"
sink_stop "$WORK/slow"

# --- read-only ledgers, empty files, loose modes ------------------------------------------
chmod 400 ledger.db
sum=$(sha256sum <ledger.db)
"$DEMARCHE" --store ledger.db verify >/dev/null 2>err.txt || fail "verify read-only: $(cat err.txt)"
"$DEMARCHE" --store ledger.db audit >/dev/null 2>err.txt || fail "audit read-only: $(cat err.txt)"
[ "$(sha256sum <ledger.db)" = "$sum" ] || fail "a read-only open changed the file"
# on a read-only file system (SQLite cannot make the WAL's -shm there): when this test may
# mount one (root in a container), else this part is skipped
mkdir ro
if mount -t tmpfs -o size=64m tmpfs ro 2>/dev/null; then
	CLEANUP+=("umount '$WORK/ro'")
	cp ledger.db ro/ledger.db
	mount -o remount,ro ro || fail "remount ro"
	"$DEMARCHE" --store ro/ledger.db verify >/dev/null 2>err.txt ||
		fail "verify on a read-only file system: $(cat err.txt)"
	"$DEMARCHE" --store ro/ledger.db audit >/dev/null 2>err.txt ||
		fail "audit on a read-only file system: $(cat err.txt)"
	umount ro || fail "umount"
else
	echo "integrity: skipped the read-only file system check (cannot mount)" >&2
fi
chmod 644 ledger.db
"$DEMARCHE" --store ledger.db verify >/dev/null 2>err.txt || fail "verify 0644"
grep -q "readable by others (mode 0644)" err.txt || fail "no warning for 0644: $(cat err.txt)"
chmod 600 ledger.db
: >empty.db
"$DEMARCHE" --store empty.db verify >/dev/null 2>err.txt
expect_rc 66 $? "verify of an empty file"
[ ! -s empty.db ] && [ ! -e empty.db-wal ] || fail "verify wrote into an empty file"
pass
