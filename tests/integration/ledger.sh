#!/usr/bin/env bash
# The ledger from the command line: audit's formats and exit codes on a committed schema-1
# store (SQL text), and verify against tampering done with the sqlite3 command-line tool.
set -u
. "$(dirname "$0")/lib.bash"
DATA=$TESTDATA/ledger
HEAD=1a669075c6e477ab1c20cad04112390efb76b660f3a8f1cdf2e6753a4d2cc890
command -v sqlite3 >/dev/null || fail "no sqlite3 command-line tool (Debian package sqlite3)"

fresh() { # a private copy of the committed store (kept as SQL text in the repository)
	rm -f s.db s.db-wal s.db-shm
	sqlite3 s.db <"$DATA/v1-sample.sql" || fail "cannot load $DATA/v1-sample.sql"
	chmod 600 s.db
	# audit and verify never write: the migration to schema 4 is done by a writer
	"$BUILDDIR/tests/test_ledger" --migrate s.db || fail "migrating the sample"
}
D() { "$DEMARCHE" --store s.db "$@"; }

# --- verify: the committed store, and a store written now, hash alike ---------------------
fresh
out=$(D verify) || fail "verify of the sample store exited $?"
# schema 4 adopted its 2 campaigns and 9 deliveries into the chain after its 21 events,
# which stay as they were
[ "${out%% events*}" = 32 ] || fail "verify printed '$out'"
[ "$(sqlite3 s.db "SELECT hash FROM events WHERE seq = 21")" = "$HEAD" ] ||
	fail "the migration changed the old chain"
"$BUILDDIR/tests/test_ledger" --make-sample new.db || fail "test_ledger --make-sample"
[ "$(stat -c %a new.db)" = 600 ] || fail "a new store is mode $(stat -c %a new.db), not 600"
out=$("$DEMARCHE" --store new.db verify) || fail "verify of a new store"
[ "${out%% events*}" = 30 ] || fail "verify of a new store printed '$out'"

"$DEMARCHE" --store missing.db verify 2>err.txt
expect_rc 66 $? "verify without a store"
[ ! -e missing.db ] || fail "verify created a store"
"$DEMARCHE" --store missing.db audit 2>/dev/null
expect_rc 66 $? "audit without a store"

# --- audit: formats and exit codes --------------------------------------------------------
D audit --format csv >audit.csv || fail "audit exited $?"
cmp audit.csv "$DATA/audit.csv" || fail "audit --format csv differs from $DATA/audit.csv"
grep -q $'^asp23-priorities,"Priorities for the 23rd session, Côte d\'Ivoire",.*\r$' audit.csv ||
	fail "CSV does not quote a field with a comma or does not end lines with CRLF"

D audit asp23-priorities --format csv >a.csv
expect_rc 1 $? "audit of a campaign with deferred/failed/unknown/bounced deliveries"
cmp a.csv "$DATA/audit-asp23.csv" || fail "audit CAMPAIGN --format csv differs"
grep -qF '"550 5.7.1 ""Rejected"", policy"' a.csv || fail "CSV quotes not doubled"
D audit asp23-priorities --format json >a.json
expect_rc 1 $? "audit CAMPAIGN --format json"
cmp a.json "$DATA/audit-asp23.json" || fail "audit CAMPAIGN --format json differs"
python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert len(d) == 6 and d[4]["key"] == "KEN" and d[0]["attempts"] == 1
assert d[4]["last_reply"] == "250 2.0.0 Ok: queued as 4Xb2" and d[3]["last_code"] is None
' a.json ||
	fail "audit JSON is not what it should be"
D audit asp23-priorities >a.txt
expect_rc 1 $? "audit CAMPAIGN (table)"
cmp a.txt "$DATA/audit-asp23.txt" || fail "audit CAMPAIGN table differs"
grep -q $'\033' a.txt && fail "colour in a table that is not on a terminal"
D audit asp24-priorities >/dev/null
expect_rc 0 $? "audit of a campaign whose deliveries are all sent"

# colour only on a terminal, and never with NO_COLOR
if command -v script >/dev/null; then
	script -qc "'$DEMARCHE' --store s.db audit asp23-priorities" /dev/null >tty.txt
	grep -q $'\033\\[32msent' tty.txt || fail "no colour on a terminal"
	NO_COLOR=1 script -qc "'$DEMARCHE' --store s.db audit asp23-priorities" /dev/null >tty.txt
	grep -q $'\033' tty.txt && fail "colour on a terminal despite NO_COLOR"
fi

D audit asp23 2>err.txt
expect_rc 65 $? "audit of an unknown campaign"
grep -q "did you mean 'asp23-priorities'" err.txt || fail "no suggestion: $(cat err.txt)"
D audit --format xml 2>/dev/null
expect_rc 64 $? "audit --format xml"
D audit asp23-priorities --missing 2>err.txt
expect_rc 64 $? "--missing without --to"
grep -q "needs --to" err.txt || fail "--missing without --to: $(cat err.txt)"

# --missing and --matrix with a roster
D audit asp23-priorities --missing --to "$DATA/roster.csv" --format csv >m.csv
expect_rc 1 $? "audit --missing with missions missing"
cmp m.csv "$DATA/missing-asp23.csv" || fail "--missing differs"
D audit asp24-priorities --missing --to "$DATA/roster.csv" --where iso3=KEN >/dev/null
expect_rc 0 $? "audit --missing with none missing"
D audit --matrix --to "$DATA/roster.csv" --format csv >x.csv
expect_rc 0 $? "audit --matrix"
cmp x.csv "$DATA/matrix.csv" || fail "--matrix differs"

# --- audit CAMPAIGN streams: widths from indexes, rows in index order (schema 3) ------------
# (the schema-1 sample was migrated by fresh())
[ "$(sqlite3 s.db "PRAGMA user_version")" = 6 ] || fail "the sample was not migrated to 6"
plan=$(sqlite3 s.db "EXPLAIN QUERY PLAN SELECT (SELECT max(length(key)) FROM deliveries
	WHERE campaign = 'c'), (SELECT max(length(address)) FROM deliveries WHERE campaign = 'c'),
	(SELECT max(length(last_reply)) FROM deliveries WHERE campaign = 'c')")
for w in key address reply; do
	grep -q "USING INDEX deliveries_${w}_width" <<<"$plan" || fail "widths plan: $plan"
done
plan=$(sqlite3 s.db "EXPLAIN QUERY PLAN SELECT * FROM deliveries WHERE campaign = 'c'
	ORDER BY key, address")
grep -q "sqlite_autoindex_deliveries_1" <<<"$plan" && ! grep -q "TEMP B-TREE" <<<"$plan" ||
	fail "audit's rows are sorted, not read in index order: $plan"
# JSON written row by row escapes as jansson does: quotes, control characters, non-ASCII;
# a reply that is not UTF-8 is not null: each invalid byte is U+FFFD
sqlite3 s.db "UPDATE deliveries SET last_reply = '451 ' || char(34) || 'q' || char(34, 9)
	|| 'Côte \\ é' WHERE key = 'KEN';
	UPDATE deliveries SET last_reply = CAST(X'3435302066ff' AS TEXT)
	WHERE key = 'BRA'" || fail "sqlite3"
D audit asp23-priorities --format json >e.json
grep -qF '"last_reply":"451 \"q\"\tCôte \\ é"' e.json || fail "JSON escapes: $(cat e.json)"
python3 -c '
import json, sys
d = {r["key"]: r for r in json.load(open(sys.argv[1]))}
assert d["KEN"]["last_reply"] == "451 \"q\"\tC\u00f4te \\ \u00e9", d["KEN"]
assert d["BRA"]["last_reply"] == "450 f\ufffd", d["BRA"]
' e.json || fail "audit JSON with escapes is not what it should be"

# --- a newer schema is refused and the file left alone --------------------------------------
fresh
sqlite3 s.db "PRAGMA user_version = 99" || fail "sqlite3"
cp s.db before.db
D verify 2>err.txt
expect_rc 78 $? "verify of a store from a newer demarche"
grep -q "newer demarche" err.txt || fail "newer schema: $(cat err.txt)"
D audit 2>/dev/null
expect_rc 78 $? "audit of a store from a newer demarche"
cmp s.db before.db || fail "the newer store was altered"

# --- tampering ----------------------------------------------------------------------------
fresh
sqlite3 s.db "UPDATE events SET detail = 'x' WHERE seq = 5" 2>err.txt &&
	fail "an UPDATE of events went through the trigger"
grep -q "append-only" err.txt || fail "trigger message: $(cat err.txt)"
sqlite3 s.db "DELETE FROM events WHERE seq = 5" 2>/dev/null && fail "a DELETE went through"
D verify >/dev/null || fail "the refused tampering changed something"

tamper() { # sql, what verify must say, why
	local out
	fresh
	sqlite3 s.db "DROP TRIGGER events_no_update; DROP TRIGGER events_no_delete; $1" ||
		fail "sqlite3: $1"
	out=$(D verify 2>&1)
	expect_rc 65 $? "verify after: $1"
	grep -q "$2" <<<"$out" || fail "after '$1' verify said: $out (wanted '$2')"
	grep -q "$3" <<<"$out" || fail "after '$1' verify said: $out (wanted '$3')"
}
tamper "UPDATE events SET reply = '250 2.0.0 Ok' WHERE seq = 5" "event 5" "edited"
tamper "UPDATE events SET to_state = 'sent', hash = hash WHERE seq = 3" "event 3" "edited"
tamper "DELETE FROM events WHERE seq = 7" "event 8" "deleted"
tamper "DELETE FROM events WHERE seq = 21" "event 21" "deleted"
tamper "DELETE FROM events WHERE seq = 7; UPDATE events SET seq = seq - 1 WHERE seq > 7" \
	"event 7" "reordered"
# swap the whole content of rows 3 and 4 (both keep their own seq)
tamper "CREATE TEMP TABLE t AS SELECT * FROM events WHERE seq IN (3, 4);
	UPDATE events SET (time, campaign, delivery, kind, from_state, to_state, code, reply,
	via, detail, prev_hash, hash) = (SELECT time, campaign, delivery, kind, from_state,
	to_state, code, reply, via, detail, prev_hash, hash FROM t WHERE t.seq = 7 - events.seq)
	WHERE seq IN (3, 4)" "event 3" "reordered"
# a delivery edited outside the one door
tamper "UPDATE deliveries SET state = 'sent' WHERE key = 'BRA'" "delivery 1" "deferred"
pass
