#!/usr/bin/env bash
# demarche check: the example appeal and the shipped example roster joined with the States
# Parties facts pass with 124 missions by language; bad rosters and rows lacking a field
# the appeal uses exit 65 naming each problem; a language without a file warns. Dated
# membership (the date frozen both sides of Hungary's withdrawal, 2 June 2026), Audience: any,
# facts grown old, and what a {{#fact}} section leaves out as unknown.
set -u
. "$(dirname "$0")/lib.bash"

R="$SRCDIR/recipients"
export DEMARCHE_TEMPLATES="$SRCDIR/templates"
draft_original asp-session

"$DEMARCHE" check appeal --to "$R/missions.example.csv" --join "$R/states-parties.csv" \
	--date 2026-12-02 >out.txt 2>err.txt
expect_rc 0 $? "check of the example roster"
grep -q "124 rows, 124 selected, 124 missions rendered" out.txt ||
	fail "no 124 rows/selected/rendered in: $(cat out.txt)"
grep -q "campaign asp22-priorities, languages en es fr" out.txt || fail "appeal: $(cat out.txt)"
grep -qx "by language: en 87 fr 20 es 17" out.txt || fail "by language: $(cat out.txt)"
grep -qx "sending date 2026-12-02: 124 States Parties (facts as of 2026-12-02)" out.txt ||
	fail "no count of the parties: $(cat out.txt)"
grep -qx "0 warnings" out.txt || fail "warnings: $(cat out.txt err.txt)"

# Hungary's withdrawal took effect on 2 June 2026: its row (the former-parties example) is
# refused from that day on, naming the row and the date; accepted the day before.
F="$R/former-parties.example.csv"
for day in 2026-06-02 2026-12-02; do
	"$DEMARCHE" check appeal --to "$F" --join "$R/states-parties.csv" --date $day \
		>out.txt 2>err.txt
	expect_rc 65 $? "check of Hungary's row on $day"
	grep -q "former-parties.example.csv:2: column 'iso3': error: 'HUN' is not a State Party on the sending date $day: its withdrawal took effect on 2026-06-02" err.txt ||
		fail "Hungary's row not refused on $day: $(cat err.txt)"
	[ -s out.txt ] && fail "a summary was printed for a refused row"
done
# Dated today (no --date): today is after 2 June 2026, so refused too.
"$DEMARCHE" check appeal --to "$F" --join "$R/states-parties.csv" >out.txt 2>err.txt
expect_rc 65 $? "check of Hungary's row dated today"
grep -q "'HUN' is not a State Party on the sending date $(date +%F)" err.txt ||
	fail "today: $(cat err.txt)"
"$DEMARCHE" check appeal --to "$F" --join "$R/states-parties.csv" --date 2026-06-01 \
	>out.txt 2>err.txt
expect_rc 0 $? "check of Hungary's row on 2026-06-01: $(cat err.txt)"
grep -qx "sending date 2026-06-01: 125 States Parties (facts as of 2026-12-02)" out.txt ||
	fail "125 parties on 2026-06-01: $(cat out.txt)"
# An appeal urging a former party to return says so in its headers.
cp -r appeal return
sed -i '1i Audience: any' return/en.md return/fr.md return/es.md
"$DEMARCHE" check return --to "$F" --join "$R/states-parties.csv" --date 2026-12-02 \
	>out.txt 2>err.txt
expect_rc 0 $? "check of Hungary's row with Audience: any: $(cat err.txt)"
grep -q "1 rows, 1 selected, 1 missions rendered" out.txt || fail "Audience: any: $(cat out.txt)"
grep -q "; Audience: any$" out.txt || fail "Audience not shown: $(cat out.txt)"
sed -i '1s/.*/Audience: some/' return/en.md
"$DEMARCHE" check return --to "$F" --join "$R/states-parties.csv" >out.txt 2>err.txt
expect_rc 65 $? "a bad Audience"
grep -q "return/en.md:1: error: Audience: 'some'" err.txt || fail "bad Audience: $(cat err.txt)"
"$DEMARCHE" check appeal --to "$F" --join "$R/states-parties.csv" --date 2026-13-01 \
	>out.txt 2>err.txt
expect_rc 64 $? "a bad --date"
grep -q "'2026-13-01' is not a date" err.txt || fail "bad --date: $(cat err.txt)"

# Facts more than 180 days before the sending date: a warning naming the as_of line.
"$DEMARCHE" check appeal --to "$R/missions.example.csv" --join "$R/states-parties.csv" \
	--date 2027-06-01 >out.txt 2>err.txt
expect_rc 0 $? "check with old facts"
grep -q "states-parties.csv:1: column 'as_of': warning: the facts are as of 2026-12-02, 181 days before the sending date 2027-06-01" err.txt ||
	fail "no warning for old facts: $(cat err.txt)"
grep -qx "1 warning" out.txt || fail "old facts not counted: $(cat out.txt)"

# A positive section on a fact column: check says, with the file and line, how many missions
# it leaves out because the fact is unknown (counted here from the CSVs themselves).
cp -r appeal thanks
printf '\n{{#apic_party}}We thank your Government for ratifying the APIC.{{/apic_party}}\n' \
	>>thanks/en.md
line=$(grep -n '{{#apic_party}}' thanks/en.md | cut -d: -f1)
want=$(python3 - "$R/missions.example.csv" "$R/states-parties.csv" <<'PY'
import csv, sys
facts = {r["iso3"]: r for r in csv.DictReader(l for l in open(sys.argv[2], encoding="utf-8")
                                              if not l.startswith("#"))}
rows = [r for r in csv.DictReader(open(sys.argv[1], encoding="utf-8")) if r["language"] == "en"]
print(sum(facts[r["iso3"]]["apic_party"] == "unknown" for r in rows), len(rows))
PY
)
set -- $want
[ "$1" -gt 0 ] || fail "no English row with an unknown APIC status: the test would prove nothing"
# (only en.md thanks: the versions differ, which --allow-divergent lets through)
"$DEMARCHE" check thanks --to "$R/missions.example.csv" --join "$R/states-parties.csv" \
	--date 2026-12-02 --allow-divergent >out.txt 2>err.txt
expect_rc 0 $? "check of an appeal thanking APIC parties: $(cat err.txt)"
grep -qx "thanks/en.md:$line: {{#apic_party}} leaves out $1 of the $2 missions given this file: their apic_party is unknown" out.txt ||
	fail "no count of the unknowns left out: $(cat out.txt)"
grep -q "fr.md.*leaves out" out.txt && fail "a section reported for a file without it"

"$DEMARCHE" check appeal --to "$R/missions.example.csv" --join "$R/states-parties.csv" \
	--where "asp_regional_group=African States" --where language=fr >out.txt 2>err.txt
expect_rc 0 $? "check with --where"
grep -q "124 rows, 16 selected" out.txt || fail "--where: $(cat out.txt)"

# A bad roster: every problem listed, with file, row and column.
cp "$R/missions.example.csv" bad.csv
printf 'KEN,Kenya again,Mission,Kenya <ken2@missions.example>,,,,,xx,,,\n' >>bad.csv
"$DEMARCHE" check appeal --to bad.csv >out.txt 2>err.txt
expect_rc 65 $? "check of a bad roster"
grep -q "^bad.csv:126: column 'iso3': error: duplicate key 'KEN' (also in row 62)" err.txt ||
	fail "duplicate key not named: $(cat err.txt)"
grep -q "^bad.csv:126: column 'email': error: .*display name" err.txt ||
	fail "display name not named: $(cat err.txt)"
# A language the appeal has no version in is an error listing those it has (issue 18).
grep -q "^bad.csv:126: column 'language': error: the appeal has no 'xx' version; it has en, es, fr" err.txt ||
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
grep -q "appeal/en.md:[0-9]*: error: missing variable 'name' in 1 mission: KEN;" err.txt ||
	fail "the row of KEN not named: $(cat err.txt)"
grep -q "appeal/fr.md:[0-9]*: error: missing variable 'name' in 1 mission: FRA;" err.txt ||
	fail "the row of FRA not named: $(cat err.txt)"
[ -s out.txt ] && fail "a summary was printed for a failing check"

# A language the appeal lacks: English and a warning naming the mission.
draft_original amendment-alert alert
"$DEMARCHE" check alert --to "$R/missions.example.csv" --join "$R/states-parties.csv" \
	--date 2026-12-02 >out.txt 2>err.txt
expect_rc 0 $? "check of an English-only appeal"
grep -q "missions.example.csv:[0-9]*: column 'language': warning: the appeal has no 'fr' version: 'FRA' gets en" err.txt ||
	fail "no fallback warning for FRA: $(cat err.txt)"
grep -qx "37 warnings" out.txt || fail "warnings: $(cat out.txt)"
# Its count of the States Parties is the table's on the sending date, not a typed "122".
"$DEMARCHE" preview alert --to "$R/missions.example.csv" --join "$R/states-parties.csv" \
	--only KEN >ken.eml 2>/dev/null || fail "preview of the alert"
python3 - ken.eml <<'PY' || fail "states_parties_count is not the table's 124"
import email, sys
from email import policy
text = email.message_from_bytes(open(sys.argv[1], "rb").read(), policy=policy.default)
text = " ".join(text.get_body(("plain",)).get_content().split())
sys.exit(0 if "interests of all 124 states parties" in text else text)
PY
"$DEMARCHE" check alert --to "$R/missions.example.csv" >out.txt 2>err.txt
expect_rc 65 $? "the alert without the facts table"
grep -q "missing variable 'states_parties_count'" err.txt || fail "no facts: $(cat err.txt)"
pass
