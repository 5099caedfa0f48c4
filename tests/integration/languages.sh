#!/usr/bin/env bash
# Issue 18, point 2: a roster whose language column is misnamed ('lang') or whose values the
# appeal has no version in ('French', 'es-ES') does not quietly send English letters. The
# column is a warning naming 'language'; the values are an error (65) naming the file, row
# and column and listing the languages the appeal has; --fallback-language en allows them.
set -u
. "$(dirname "$0")/lib.bash"
R=$SRCDIR/recipients
draft_original asp-session
test_ini

# The header 'lang' instead of 'language': every mission would get English.
sed '1s/,language,/,lang,/' "$R/missions.example.csv" >lang.csv
"$DEMARCHE" check appeal --to lang.csv --join "$R/states-parties.csv" --date 2026-12-02 \
	>out.txt 2>err.txt
expect_rc 0 $? "check with a 'lang' column"
grep -qx "lang.csv:1: column 'lang': warning: no letter, option or join uses this column (did you mean 'language'?)" err.txt ||
	fail "the 'lang' column is not named with 'language': $(cat err.txt)"
grep -qx "1 warning" out.txt || fail "the warning is not counted: $(cat out.txt)"

# Values the appeal has no version in: French (row 12: FRA is fr in the example) and es-ES.
awk -F, 'BEGIN { OFS = "," } NR > 1 && $9 == "fr" { $9 = "French" } NR > 1 && $9 == "es" { $9 = "es-ES" } { print }' \
	"$R/missions.example.csv" >values.csv
grep -q ',French,' values.csv && grep -q ',es-ES,' values.csv || fail "the roster was not changed"
first_fr=$(awk -F, '$9 == "French" { print NR; exit }' values.csv)
first_es=$(awk -F, '$9 == "es-ES" { print NR; exit }' values.csv)
for cmd in check preview; do
	"$DEMARCHE" $cmd appeal --to values.csv --join "$R/states-parties.csv" \
		>out.txt 2>err.txt
	expect_rc 65 $? "$cmd with French and es-ES"
	grep -q "^values.csv:$first_fr: column 'language': error: the appeal has no 'French' version; it has en, es, fr" err.txt ||
		fail "$cmd: French not an error listing en, es, fr: $(cat err.txt)"
	grep -q "^values.csv:$first_es: column 'language': error: the appeal has no 'es-ES' version; it has en, es, fr (did you mean 'es'?)" err.txt ||
		fail "$cmd: es-ES not an error: $(cat err.txt)"
	# one line per value, not one per row
	[ "$(grep -c "no 'French' version" err.txt)" = 1 ] || fail "$cmd: French repeated: $(cat err.txt)"
	[ -s out.txt ] && fail "$cmd printed something for a failing roster"
done

# --fallback-language en: warnings, and English for those missions.
"$DEMARCHE" check appeal --to values.csv --join "$R/states-parties.csv" --date 2026-12-02 \
	--fallback-language en >out.txt 2>err.txt
expect_rc 0 $? "check --fallback-language en: $(cat err.txt)"
grep -q "warning: the appeal has no 'French' version (it has en, es, fr); using en" err.txt ||
	fail "no fallback warning: $(cat err.txt)"
grep -qx "by language: en 124" out.txt || fail "not all English: $(cat out.txt)"
# a fallback the appeal has no version in is a usage error
"$DEMARCHE" check appeal --to values.csv --fallback-language de >out.txt 2>err.txt
expect_rc 64 $? "--fallback-language de"
grep -q "fallback-language 'de': the appeal has no such version (it has en, es, fr)" err.txt ||
	fail "--fallback-language de: $(cat err.txt)"
# the option is also send's (shared merge options)
"$DEMARCHE" send --help | grep -q -- '--fallback-language' || fail "send --help lacks --fallback-language"

# A one-language appeal still goes to fr and es missions in English, with a warning each.
draft_original amendment-alert alert
"$DEMARCHE" check alert --to "$R/missions.example.csv" --join "$R/states-parties.csv" \
	--date 2026-12-02 >out.txt 2>err.txt
expect_rc 0 $? "a one-language appeal: $(cat err.txt)"
pass
