#!/usr/bin/env bash
# demarche ledger copy: SQLite -> PostgreSQL -> SQLite keeps the chain head (an old store
# migrated from schema 1, whose events name no operator, and a new one whose events do);
# verify and audit read the PostgreSQL copy; hostile text and a kept message's every byte go
# through COPY and back unchanged; a password in the store URL is refused.
set -u
. "$(dirname "$0")/lib.bash"
. "$SRCDIR/tests/integration/servers/postgres.bash"
command -v sqlite3 >/dev/null || fail "no sqlite3 command-line tool (Debian package sqlite3)"
pg_start "$WORK/pg" || fail "cannot start PostgreSQL"
CLEANUP+=("pg_stop '$WORK/pg'")

sqlite3 old.db <"$TESTDATA/ledger/v1-sample.sql" || fail "cannot load the v1 sample"
chmod 600 old.db
"$BUILDDIR/tests/test_ledger" --migrate old.db || fail "migrating the sample"
"$BUILDDIR/tests/test_ledger" --make-sample new.db || fail "test_ledger --make-sample"

n=0
for src in old.db new.db; do
	n=$((n + 1))
	head=$("$DEMARCHE" --store "$src" verify) || fail "verify $src"
	pg=$(pg_createdb "$WORK/pg" "copy$n") || fail "createdb"
	out=$("$DEMARCHE" ledger copy "$src" "$pg" 2>err) || fail "copy $src to PostgreSQL: $(cat err)"
	case $out in *"head ${head##*head } on both sides") ;; *) fail "copy printed '$out', verify '$head'" ;; esac
	# the PostgreSQL ledger verifies through the [store] url line too
	test_ini "[store]" "url = $pg"
	[ "$("$DEMARCHE" verify)" = "$head" ] || fail "verify on PostgreSQL differs from $src"
	# doctor: the connection, TLS, schema and what the role may do
	"$DEMARCHE" doctor >doctor.out 2>&1
	grep -q "^OK   ledger: PostgreSQL 15.* schema 6, no TLS; the role may append events" \
		doctor.out || fail "doctor said: $(grep ledger doctor.out)"
	a1=$("$DEMARCHE" --store "$src" audit 2>&1) || fail "audit $src"
	a2=$("$DEMARCHE" audit 2>&1) || fail "audit on PostgreSQL"
	[ "$a1" = "$a2" ] || fail "audit differs: $(diff <(echo "$a1") <(echo "$a2"))"
	rm -f demarche.ini
	out=$("$DEMARCHE" ledger copy "$pg" "back$n.db" 2>err) || fail "copy back: $(cat err)"
	[ "$("$DEMARCHE" --store "back$n.db" verify)" = "$head" ] || fail "round trip changed the head"
	[ "$(sqlite3 "back$n.db" 'SELECT count(*) FROM events')" = \
		"$(sqlite3 "$src" 'SELECT count(*) FROM events')" ] || fail "events lost in the round trip"
	[ "$(sqlite3 "back$n.db" 'SELECT group_concat(operator) FROM events')" = \
		"$(sqlite3 "$src" 'SELECT group_concat(operator) FROM events')" ] || fail "operators changed"
done
[ "$(sqlite3 new.db "SELECT count(*) FROM events WHERE operator IS NULL")" = 0 ] ||
	fail "events of a new ledger without their operator"

# hostile text (roster names, SMTP replies and IMAP folders come from outside: tab, newline,
# CR, backslash, "\N", "\.", quotes) and every byte of a kept message go through COPY into
# PostgreSQL and back unchanged: the same bytes in PostgreSQL, the same rows back in SQLite
"$BUILDDIR/tests/test_ledger" --make-hostile hostile.db || fail "test_ledger --make-hostile"
head=$("$DEMARCHE" --store hostile.db verify) || fail "verify hostile.db"
hpg=$(pg_createdb "$WORK/pg" hostile) || fail "createdb"
out=$("$DEMARCHE" ledger copy hostile.db "$hpg" 2>err) || fail "copy hostile.db: $(cat err)"
case $out in *"head ${head##*head } on both sides") ;; *) fail "hostile copy printed '$out'" ;; esac
# the copy turned the high-water mark's trigger off in its transaction only
[ "$(pg_psql "$WORK/pg" hostile "SELECT tgenabled FROM pg_trigger WHERE tgname = 'events_highest'")" = O ] ||
	fail "events_highest's trigger is not on after the copy"
[ "$(pg_psql "$WORK/pg" hostile "SELECT seq = (SELECT max(seq) FROM events) FROM events_highest")" = t ] ||
	fail "events_highest is not the last event after the copy"
for q in "title:campaigns" "key || address || message_id || last_reply:deliveries" \
	"reply || detail || operator:events WHERE kind = 'note'" "source:observed" \
	"account || folder:imap_state" "folder:sent_copies" "last_error:outbox_copies"; do
	want=$(sqlite3 hostile.db "SELECT lower(hex(${q%%:*})) FROM ${q#*:}")
	case $want in *09*5c*) ;; *) fail "the sample has no tab and backslash in: $q" ;; esac
	got=$(pg_psql "$WORK/pg" hostile "SELECT encode(convert_to(${q%%:*}, 'UTF8'), 'hex') FROM ${q#*:}")
	[ "$got" = "$want" ] || fail "changed in PostgreSQL: $q: $got, not $want"
done
[ "$(pg_psql "$WORK/pg" hostile "SELECT encode(data, 'hex') FROM outbox_copies")" = \
	"$(sqlite3 hostile.db "SELECT lower(hex(data)) FROM outbox_copies")" ] ||
	fail "the kept message's bytes changed in PostgreSQL"
"$DEMARCHE" ledger copy "$hpg" hostile-back.db >/dev/null 2>err || fail "copy back: $(cat err)"
for t in campaigns deliveries events observed imap_state sent_copies outbox_copies; do
	[ "$(sqlite3 -cmd '.mode quote' hostile-back.db "SELECT * FROM $t ORDER BY 1, 2")" = \
		"$(sqlite3 -cmd '.mode quote' hostile.db "SELECT * FROM $t ORDER BY 1, 2")" ] ||
		fail "table $t changed in the round trip"
done

# doctor names a role that may only read
pg_psql "$WORK/pg" copy2 "CREATE ROLE reader LOGIN; GRANT SELECT ON ALL TABLES IN SCHEMA public TO reader" ||
	fail "create role"
test_ini "[store]" "url = ${pg/user=demarche/user=reader}"
"$DEMARCHE" doctor >doctor.out 2>&1
expect_rc 77 $? "doctor with a read-only role"
grep -q "may NOT append events" doctor.out || fail "doctor said: $(grep ledger doctor.out)"
"$DEMARCHE" verify >/dev/null 2>&1 || fail "a read-only role cannot verify"
rm -f demarche.ini

# into a ledger that is not empty: refused, nothing changed
"$DEMARCHE" ledger copy new.db "$pg" 2>err
expect_rc 73 $? "copy into a non-empty ledger"
grep -q "already holds" err || fail "copy into a non-empty ledger said: $(cat err)"

# a damaged source is not copied
cp new.db bad.db
sqlite3 bad.db "DROP TRIGGER events_no_update; UPDATE events SET reply = 'x' WHERE seq = 3"
"$DEMARCHE" ledger copy bad.db new2.db 2>err
expect_rc 65 $? "copy of a damaged ledger"
grep -q "does not verify" err || fail "damaged copy said: $(cat err)"

# no password in the store's URL, shown redacted; 78
"$DEMARCHE" --store "postgresql://alice:s3cret@localhost/db" verify 2>err
expect_rc 78 $? "a password in the store URL"
grep -q s3cret err && fail "the password was shown: $(cat err)"
grep -q 'alice:\*\*\*@' err || fail "not redacted: $(cat err)"
"$DEMARCHE" --store "host=/nowhere dbname=x password=s3cret" verify 2>err
expect_rc 78 $? "a password in the key=value string"
grep -q s3cret err && fail "the password was shown: $(cat err)"
pass
