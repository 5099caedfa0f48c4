#!/usr/bin/env bash
# Issue 18: what changed since the last letter. `roster diff OLD NEW` lists missions new and
# removed, changed addresses (in any order, without case) and changed names; check and send's
# plan compare the roster with the ledger's last campaign to the same missions.
set -u
. "$(dirname "$0")/lib.bash"

R="$SRCDIR/recipients"
draft_original asp-session
test_ini
# new.csv: ALB gone, KEN's email changed, FRA's name changed, DEU's cc reordered and in
# capitals (no change), XYZ new (a hostile name: escaped on the terminal).
/usr/bin/python3 - "$R/missions.example.csv" <<'PY' || fail "making new.csv"
import csv, sys
rows = list(csv.reader(open(sys.argv[1], encoding="utf-8")))
h = rows[0]
out = [h]
for r in rows[1:]:
    if r[0] == "ALB":
        continue
    if r[0] == "KEN":
        r[h.index("email")] = "ken.new@missions.example"
    if r[0] == "FRA":
        r[h.index("name")] = "Mr. Nouveau"
    if r[0] == "DEU":
        r[h.index("email")] = r[h.index("email")].upper()
    out.append(r)
out.append(["XYZ", "Xyz", "Mission of Xyz", "xyz@missions.example", "", "H.E.",
            "Evil\x1b[31m Name", "Permanent Representative", "en", "", "New York",
            "America/New_York"])
csv.writer(open("new.csv", "w", newline="", encoding="utf-8")).writerows(out)
PY

# 1. Two files.
"$DEMARCHE" roster diff "$R/missions.example.csv" new.csv >diff.txt 2>err.txt
expect_rc 1 $? "roster diff with changes: $(cat err.txt)"
grep -qx "removed  ALB" diff.txt || fail "ALB not removed: $(cat diff.txt)"
grep -qx "new      XYZ" diff.txt || fail "XYZ not new"
grep -q "^address  KEN: ken@missions.example.* -> ken.new@missions.example" diff.txt ||
	fail "KEN's address: $(grep KEN diff.txt)"
grep -q "^name     FRA: .* -> Mr. Nouveau, Permanent Representative$" diff.txt ||
	fail "FRA's name: $(grep FRA diff.txt)"
grep -q "DEU" diff.txt && fail "DEU changed only in case: $(grep DEU diff.txt)"
[ "$(tail -1 diff.txt)" = "1 new, 1 removed, 1 with other addresses, 1 with another name" ] ||
	fail "counts: $(tail -1 diff.txt)"
grep -q $'\033' diff.txt && fail "a raw escape reached the terminal"
"$DEMARCHE" roster diff "$R/missions.example.csv" "$R/missions.example.csv" >same.txt 2>&1
expect_rc 0 $? "roster diff of a file with itself"
[ "$(cat same.txt)" = "0 new, 0 removed, 0 with other addresses, 0 with another name" ] ||
	fail "no change: $(cat same.txt)"
"$DEMARCHE" roster diff "$R/missions.example.csv" nope.csv >/dev/null 2>err.txt
expect_rc 66 $? "a missing file"
"$DEMARCHE" roster diff a.csv >/dev/null 2>&1
expect_rc 64 $? "one file"
"$DEMARCHE" roster --help 2>&1 | grep -q "roster diff OLD.csv NEW.csv" || fail "no --help"

# 2. check and send compare the roster with the ledger's last campaign.
"$DEMARCHE" --store ledger.db check appeal --to new.csv >check.txt 2>&1
grep -q "since the last letter" check.txt && fail "a change reported without a ledger"
"$DEMARCHE" --store ledger.db send appeal --to "$R/missions.example.csv" --via maildir:outbox \
	--yes >/dev/null 2>&1 || fail "the first letter"
sed -i 's/^Campaign: .*/Campaign: second-letter/' appeal/*.md
"$DEMARCHE" --store ledger.db check appeal --to new.csv >check.txt 2>err.txt
grep -q "^since the last letter (campaign asp22-priorities in the ledger): 1 new, 1 removed, 1 with other addresses, 1 with another name$" check.txt ||
	fail "check: $(cat check.txt err.txt)"
grep -qx "  new      XYZ" check.txt && grep -qx "  removed  ALB" check.txt &&
	grep -q "^  address  KEN: .* -> ken.new@missions.example" check.txt &&
	grep -q "^  name     FRA: .* -> Mr. Nouveau, Permanent Representative$" check.txt ||
	fail "check's list: $(cat check.txt)"
# the names were kept once, in the chain, and the ledger still verifies
[ "$(sqlite3 ledger.db "select count(*) from events where kind='roster'")" = 1 ] || fail "names not kept once"
"$DEMARCHE" --store ledger.db verify >/dev/null || fail "verify with the names event"
"$DEMARCHE" --store ledger.db send appeal --to new.csv --via maildir:outbox --dry-run >dry.txt 2>&1
grep -q "^since the last letter (campaign asp22-priorities in the ledger): 1 new, 1 removed" dry.txt ||
	fail "send's plan: $(head -20 dry.txt)"
# a part of the roster: nothing is "removed"
"$DEMARCHE" --store ledger.db check appeal --to new.csv --only KEN,XYZ >check.txt 2>&1
grep -q "^since the last letter (campaign asp22-priorities in the ledger): 1 new, 0 removed, 1 with other addresses, 0 with another name$" check.txt ||
	fail "check --only: $(cat check.txt)"

# 3. many missions: the names go in several 'roster' events (about 64 KB each, one
# transaction) and come back whole: one name changed among 3,000 is the only change.
"$SRCDIR/bench/gen-roster" 3000 big.csv
rm -rf outbox big.db
sed -i 's/^Campaign: .*/Campaign: big-first/' appeal/*.md
"$DEMARCHE" --store big.db send appeal --to big.csv --via maildir:outbox --yes >/dev/null 2>&1 ||
	fail "the first letter to 3,000"
chunks=$(sqlite3 big.db "select count(*) from events where kind='roster'")
[ "$chunks" -gt 1 ] || fail "3,000 names in $chunks event(s)"
[ "$(sqlite3 big.db "select max(length(detail)) from events where kind='roster'")" -lt 70000 ] ||
	fail "a names event over its size"
sed -i 's/^Campaign: .*/Campaign: big-second/' appeal/*.md
sed -i 's/,the Permanent Representative of State 2999,/,Mr. Last,/' big.csv
"$DEMARCHE" --store big.db check appeal --to big.csv >check.txt 2>&1
grep -q "^since the last letter (campaign big-first in the ledger): 0 new, 0 removed, 0 with other addresses, 1 with another name$" check.txt ||
	fail "3,000 names read back: $(grep -A3 'since the last' check.txt)"
"$DEMARCHE" --store big.db verify >/dev/null || fail "verify with the names in pieces"
pass
