#!/usr/bin/env bash
# preview --out on worker threads (issue 15): DEMARCHE_THREADS=1 (everything on one thread)
# and 4 give byte-identical folders and the same standard error, on a roster where letters
# differ from row to row (a salutation of their own, a fallback language) and across
# languages; and with problems on rows 3 and 7 (found by the workers) and 6 (by the roster
# reader, just before 7), each is reported once, in roster order, as check reports them.
set -u
. "$(dirname "$0")/lib.bash"
export DEMARCHE_TEMPLATES="$SRCDIR/templates" SOURCE_DATE_EPOCH=1700000000
draft_original asp-session
test_ini
# The body names the row's title: a row without one cannot be rendered.
for f in appeal/*.md; do
	sed -i 's/^{{salutation}},$/{{salutation}} ({{title}}),/' "$f"
done
grep -q '({{title}})' appeal/en.md || fail "the appeal has no salutation line to change"
rm appeal/es.md # es and de rows fall back to en with --fallback-language (a warning each)

roster() { # n bad-rows...
	awk -v n="$1" -v bad=" ${*:2} " 'BEGIN {
		print "iso3,state,mission,email,cc,honorific,name,title,language,salutation"
		split("en fr es de", lang, " ")
		for (i = 1; i <= n; i++) {
			line = i + 1
			title = index(bad, " " line " ") ? "" : "Permanent Representative"
			email = sprintf("k%04d@missions.example", i)
			if (line == 6 && index(bad, " 6 ")) email = "not an address"
			sal = (i % 7 == 0) ? sprintf("Dear Ambassador %d", i) : ""
			printf "K%04d,State %d,Permanent Mission of State %d,%s,,H.E.,", i, i, i, email
			printf "the Permanent Representative of State %d,%s,%s,%s\n", i, title, lang[i % 4 + 1], sal
		}
	}'
}
roster 400 >good.csv
for t in 1 4; do
	DEMARCHE_THREADS=$t "$DEMARCHE" preview appeal --fallback-language en --to good.csv --out "out" >/dev/null 2>"err$t.txt"
	expect_rc 0 $? "preview with DEMARCHE_THREADS=$t: $(tail -3 "err$t.txt")"
	mv out "out$t"
done
[ "$(ls out1 | grep -c "\.eml$")" = 400 ] || fail "$(ls out1 | grep -c "\.eml$") messages with 1 thread: $(tail -3 err1.txt; head -3 good.csv)"
diff -r out1 out4 >/dev/null || fail "1 and 4 threads wrote different messages: $(diff -rq out1 out4 | head -3)"
sed -i 's/ to out[14]$//' err1.txt err4.txt
cmp -s err1.txt err4.txt || fail "1 and 4 threads said different things: $(diff err1.txt err4.txt | head -5)"
# One line per distinct problem, naming the other rows it was found on (issue 18).
grep "warning: the appeal has no 'es' version" err1.txt | grep -q ": 99 more rows)$" ||
	fail "not one line for 100 fallback warnings: $(grep "no 'es' version" err1.txt)"
grep "warning: the appeal has no 'de' version" err1.txt | grep -q ": 99 more rows)$" ||
	fail "not one line for 100 'de' warnings: $(grep "no 'de' version" err1.txt)"
grep -q "Dear Ambassador 7 (Permanent Representative)," out1/K0007.eml || fail "row 7's own salutation"
grep -q $'^Your Excellency (Permanent Representative),\r$' out1/K0004.eml || fail "row 4's salutation"
# The messages are those of the one-thread path of before: one mission at a time.
"$DEMARCHE" preview appeal --fallback-language en --to good.csv --only K0007 >one.eml 2>/dev/null
cmp -s one.eml out1/K0007.eml || fail "preview --only K0007 differs from the --out file"

# A new folder gets the mode mkdir gives and no stage is left beside it; an existing folder
# keeps what it held.
[ "$(stat -c %a out1)" = "$(mkdir probe && stat -c %a probe)" ] || fail "out1 is $(stat -c %a out1)"
ls -A | grep -q preview && fail "a stage was left: $(ls -A | grep preview)"
mkdir old && echo keep >old/keep.txt
"$DEMARCHE" preview appeal --fallback-language en --to good.csv --out old --force >/dev/null 2>&1
expect_rc 0 $? "preview into an existing folder"
[ "$(ls -A old | grep -vc "\.html$")" = 401 ] && [ -f old/keep.txt ] || fail "old holds $(ls -A old | grep -vc "\.html$") files"
diff -r -x keep.txt old out1 >/dev/null || fail "the existing folder got other messages"

roster 40 3 6 7 >bad.csv
"$DEMARCHE" check appeal --fallback-language en --to bad.csv >/dev/null 2>check.txt
expect_rc 65 $? "check of the bad roster"
for t in 1 4; do
	DEMARCHE_THREADS=$t "$DEMARCHE" preview appeal --fallback-language en --to bad.csv --out bad >/dev/null 2>"bad$t.txt"
	expect_rc 65 $? "preview of the bad roster with DEMARCHE_THREADS=$t"
	[ -e bad ] && fail "preview wrote something although rows 3, 6 and 7 are bad"
	ls -A | grep -q preview && fail "a stage was left after a failure"
	# The missing title of rows 3 and 7 is one line naming both missions (issue 18).
	errors=$(grep ': error: ' "bad$t.txt" | sed 's/^bad.csv:\([0-9]*\): column .email.*/E\1/;
		s/^appeal.*missing.* in 2 missions: K0002, K0006;.*/M/')
	[ "$(echo $errors)" = "M E6" ] || fail "errors with $t threads, in this order: $(echo $errors)"
	grep -q "^demarche preview: 2 problems; nothing was sent$" "bad$t.txt" ||
		fail "the summary: $(tail -1 "bad$t.txt")"
	diff <(grep -v '^demarche ' "bad$t.txt") <(grep -v '^demarche ' check.txt) >/dev/null ||
		fail "preview ($t threads) and check disagree: $(diff "bad$t.txt" check.txt | head -5)"
done
cmp -s bad1.txt bad4.txt || fail "1 and 4 threads reported differently: $(diff bad1.txt bad4.txt)"
pass
