#!/usr/bin/env bash
# demarche check: the example appeal and the shipped example roster joined with the States
# Parties facts pass with 125 missions by language; bad rosters and rows lacking a field
# the appeal uses exit 65 naming each problem; a language without a file warns.
set -u
. "$(dirname "$0")/lib.bash"

R="$SRCDIR/recipients"
export DEMARCHE_TEMPLATES="$SRCDIR/templates"
draft_original asp-session

"$DEMARCHE" check appeal --to "$R/missions.example.csv" --join "$R/states-parties.csv" \
	>out.txt 2>err.txt
expect_rc 0 $? "check of the example roster"
grep -q "125 rows, 125 selected, 125 missions rendered" out.txt ||
	fail "no 125 rows/selected/rendered in: $(cat out.txt)"
grep -q "campaign asp22-priorities, languages en es fr" out.txt || fail "appeal: $(cat out.txt)"
grep -qx "by language: en 88 fr 20 es 17" out.txt || fail "by language: $(cat out.txt)"
grep -qx "0 warnings" out.txt || fail "warnings: $(cat out.txt err.txt)"

"$DEMARCHE" check appeal --to "$R/missions.example.csv" --join "$R/states-parties.csv" \
	--where "asp_regional_group=African States" --where language=fr >out.txt 2>err.txt
expect_rc 0 $? "check with --where"
grep -q "125 rows, 16 selected" out.txt || fail "--where: $(cat out.txt)"

# A bad roster: every problem listed, with file, row and column.
cp "$R/missions.example.csv" bad.csv
printf 'KEN,Kenya again,Mission,Kenya <ken2@missions.example>,,,,,xx,\n' >>bad.csv
"$DEMARCHE" check appeal --to bad.csv >out.txt 2>err.txt
expect_rc 65 $? "check of a bad roster"
grep -q "^bad.csv:127: column 'iso3': error: duplicate key 'KEN' (also in row 63)" err.txt ||
	fail "duplicate key not named: $(cat err.txt)"
grep -q "^bad.csv:127: column 'email': error: .*display name" err.txt ||
	fail "display name not named: $(cat err.txt)"
grep -q "^bad.csv:127: column 'language': warning: unknown language 'xx'" err.txt ||
	fail "unknown language not named: $(cat err.txt)"
grep -q "nothing was sent" err.txt || fail "no closing line: $(cat err.txt)"
[ -s out.txt ] && fail "a summary was printed for a bad roster"

"$DEMARCHE" check appeal --to "$R/missions.example.csv" --only KEN,XYZ 2>err.txt >/dev/null
expect_rc 65 $? "--only with an unknown key"
grep -q "no row has the key 'XYZ'" err.txt || fail "--only: $(cat err.txt)"

"$DEMARCHE" check appeal --to "$R/missions.example.csv" --where continent=Africa 2>err.txt
expect_rc 65 $? "--where with an unknown column"
grep -q "column 'continent'" err.txt || fail "--where: $(cat err.txt)"

"$DEMARCHE" check appeal --to missing.csv 2>err.txt
expect_rc 66 $? "missing roster"
"$DEMARCHE" check no-such-appeal --to "$R/missions.example.csv" 2>err.txt
expect_rc 66 $? "missing appeal"
"$DEMARCHE" check appeal 2>/dev/null
expect_rc 64 $? "no --to"
# A row lacking a field the appeal uses: the variable, the letter's file and line, and the
# roster row are all named; every such row is reported, not only the first.
python3 - "$R/missions.example.csv" noname.csv <<'PY'
import csv, sys
rows = list(csv.reader(open(sys.argv[1], encoding="utf-8")))
for r in rows[1:]:
    if r[0] in ("KEN", "FRA"):
        r[9] = ""  # salutation: derived
        r[6] = ""  # name
w = csv.writer(open(sys.argv[2], "w", encoding="utf-8", newline=""))
w.writerows(rows)
PY
# The example appeal does not use {{name}}: add it to the top of each body.
sed -i '0,/^$/s//\n{{name}}\n/' appeal/en.md appeal/fr.md appeal/es.md
"$DEMARCHE" check appeal --to noname.csv >out.txt 2>err.txt
expect_rc 65 $? "rows lacking a field the appeal uses"
grep -q "appeal/en.md:[0-9]*: error: missing variable 'name'" err.txt ||
	fail "missing name not named with file and line: $(cat err.txt)"
grep -q "appeal/fr.md:[0-9]*: error: missing variable 'name'" err.txt ||
	fail "the French mission's missing name not named: $(cat err.txt)"
grep -q "noname.csv:[0-9]*: error: the appeal cannot be rendered for 'KEN'" err.txt ||
	fail "the row of KEN not named: $(cat err.txt)"
grep -q "noname.csv:[0-9]*: error: the appeal cannot be rendered for 'FRA'" err.txt ||
	fail "the row of FRA not named: $(cat err.txt)"
[ -s out.txt ] && fail "a summary was printed for a failing check"

# A language the appeal lacks: English and a warning naming the mission.
draft_original amendment-alert alert
"$DEMARCHE" check alert --to "$R/missions.example.csv" >out.txt 2>err.txt
expect_rc 0 $? "check of an English-only appeal"
grep -q "missions.example.csv:[0-9]*: column 'language': warning: the appeal has no 'fr' version: 'FRA' gets en" err.txt ||
	fail "no fallback warning for FRA: $(cat err.txt)"
grep -qx "37 warnings" out.txt || fail "warnings: $(cat out.txt)"
pass
