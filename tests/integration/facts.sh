#!/usr/bin/env bash
# demarche facts: the States Parties table's counts on a date (frozen both sides of Hungary's
# withdrawal, 2 June 2026): parties, withdrawn and pending withdrawals with their dates, and
# yes/no/unknown per fact column over the parties, checked against counts made here from the
# CSV; a bad table is refused naming the file, row and column; old facts warn.
set -u
. "$(dirname "$0")/lib.bash"
T="$SRCDIR/recipients/states-parties.csv"

counts() { # date: "parties apic_yes apic_no apic_unknown kampala_yes kampala_no kampala_unknown"
	python3 - "$T" "$1" <<'PY'
import csv, sys
path, day = sys.argv[1:3]
rows = list(csv.DictReader(l for l in open(path, encoding="utf-8") if not l.startswith("#")))
def party(r):
    eff, inst = r["withdrawal_effective"], r["instrument_date"]
    return not (eff and day >= eff) and not (inst and day < inst)
ps = [r for r in rows if party(r)]
out = [len(ps)]
for col in ("apic_party", "kampala_aggression_party"):
    out += [sum(r[col] == v for r in ps) for v in ("yes", "no", "unknown")]
print(*out)
PY
}

check_day() { # date parties withdrawn pending
	local day=$1 parties=$2 withdrawn=$3 pending=$4
	"$DEMARCHE" facts --date "$day" "$T" >out.txt 2>err.txt
	expect_rc 0 $? "facts on $day: $(cat err.txt)"
	grep -qx "  States Parties             $parties" out.txt || fail "$day parties: $(cat out.txt)"
	grep -qx "  withdrawn                  $withdrawn" out.txt || fail "$day withdrawn: $(cat out.txt)"
	grep -qx "  withdrawal pending         $pending" out.txt || fail "$day pending: $(cat out.txt)"
	grep -qx "    Hungary (HUN): notified 2025-06-02, effective 2026-06-02" out.txt ||
		fail "$day: Hungary's dates: $(cat out.txt)"
	set -- $(counts "$day")
	[ "$1" = "$parties" ] || fail "$day: the CSV counts $1 parties"
	grep -qE "^  apic_party +$2 +$3 +$4$" out.txt || fail "$day apic_party ($2 $3 $4): $(cat out.txt)"
	grep -qE "^  kampala_aggression_party +$5 +$6 +$7$" out.txt ||
		fail "$day kampala ($5 $6 $7): $(cat out.txt)"
	[ -s err.txt ] && fail "$day: unexpected messages: $(cat err.txt)"
}
check_day 2026-06-01 125 0 1
check_day 2026-06-02 124 1 0
check_day 2026-12-02 124 1 0

# Default: today, and recipients/states-parties.csv of the workspace.
mkdir -p recipients && cp "$T" recipients/
"$DEMARCHE" facts >out.txt 2>err.txt
expect_rc 0 $? "facts in a workspace: $(cat err.txt)"
grep -q "^recipients/states-parties.csv: facts as of 2026-12-02, 125 rows; on $(date +%F):" out.txt ||
	fail "default table and date: $(cat out.txt)"

# Old facts: a warning naming the as_of line.
"$DEMARCHE" facts --date 2027-06-02 "$T" >out.txt 2>err.txt
expect_rc 0 $? "facts with an old table"
grep -q "states-parties.csv:1: column 'as_of': warning: the facts are as of 2026-12-02, 182 days before 2027-06-02" err.txt ||
	fail "no warning: $(cat err.txt)"

# A bad table: an empty fact cell and a bad status, each named; no counts printed.
python3 - "$T" bad.csv <<'PY'
import sys
lines = open(sys.argv[1], encoding="utf-8").read().split("\n")
for i, l in enumerate(lines):
    if l.startswith("Kenya,"):
        f = l.split(","); f[6] = ""; lines[i] = ",".join(f); kenya = i + 1
    if l.startswith("Uganda,"):
        f = l.split(","); f[8] = "gone"; lines[i] = ",".join(f); uganda = i + 1
open(sys.argv[2], "w", encoding="utf-8").write("\n".join(lines))
open("lines", "w").write(f"{kenya} {uganda}\n")
PY
read -r kenya uganda <lines
"$DEMARCHE" facts bad.csv >out.txt 2>err.txt
expect_rc 65 $? "facts of a bad table"
grep -q "^bad.csv:$kenya: column 'apic_party': error: empty cell in a fact column" err.txt ||
	fail "empty cell not named: $(cat err.txt)"
grep -q "^bad.csv:$uganda: column 'status': error: 'gone': write 'party' or 'withdrawn'" err.txt ||
	fail "bad status not named: $(cat err.txt)"
[ -s out.txt ] && fail "counts printed for a bad table"
# In check, the bad status stops the table at once; the empty cell refuses the row that
# joins it, naming the table's row and the roster's.
draft_original asp-session
"$DEMARCHE" check appeal --to "$SRCDIR/recipients/missions.example.csv" --join bad.csv \
	--date 2026-12-02 >out.txt 2>err.txt
expect_rc 65 $? "check with a bad status"
grep -q "^bad.csv:$uganda: column 'status'" err.txt || fail "check: bad status: $(cat err.txt)"
sed "${uganda}s/,gone,/,party,/" bad.csv >bad2.csv
"$DEMARCHE" check appeal --to "$SRCDIR/recipients/missions.example.csv" --join bad2.csv \
	--date 2026-12-02 >out.txt 2>err.txt
expect_rc 65 $? "check with an empty fact cell"
grep -q "^bad2.csv:$kenya: column 'apic_party': error: 'KEN' (row [0-9]* of .*missions.example.csv): empty cell in a fact column" err.txt ||
	fail "check: empty cell: $(cat err.txt)"
grep -q "1 problem; nothing was sent" err.txt || fail "check: more than the empty cell: $(cat err.txt)"

# Not a facts table, a missing one, a bad date, a bad option.
"$DEMARCHE" facts "$SRCDIR/recipients/missions.example.csv" >out.txt 2>err.txt
expect_rc 65 $? "facts of a roster"
grep -q "not a facts table" err.txt || fail "roster as facts: $(cat err.txt)"
"$DEMARCHE" facts nosuch.csv >/dev/null 2>err.txt
expect_rc 66 $? "facts of a missing file"
"$DEMARCHE" facts --date 2026-02-29 "$T" >/dev/null 2>err.txt
expect_rc 64 $? "facts with a bad date"
"$DEMARCHE" facts --nosuch >/dev/null 2>err.txt
expect_rc 64 $? "facts with a bad option"
pass
