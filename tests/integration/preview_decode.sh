#!/usr/bin/env bash
# Issue 18, point 3: preview of a French letter reads "l'Assemblée", not =C3=A9: on a
# terminal (and with --format text) the first message's headers and text part are decoded;
# piped, the raw message stays the default (scripts keep working); --format html gives the
# HTML part; --out writes KEY.eml and KEY.html and refuses a folder holding files unless
# --force.
set -u
. "$(dirname "$0")/lib.bash"
R=$SRCDIR/recipients
export SOURCE_DATE_EPOCH=1700000000
draft_original asp-session
test_ini

"$DEMARCHE" preview appeal --to "$R/missions.example.csv" --only FRA --format text >text.txt 2>err.txt
expect_rc 0 $? "preview --format text: $(cat err.txt)"
grep -q "^Subject: 22e session de l'Assemblée des États Parties : priorités$" text.txt ||
	fail "the subject is not decoded: $(head -5 text.txt)"
grep -q "^To: Mission permanente de la République française" text.txt || fail "To not decoded: $(head -5 text.txt)"
grep -q "l'Assemblée" <(sed '1,/^$/d' text.txt) || fail "the body is not decoded: $(head -20 text.txt)"
grep -q '=C3=A9\|=?' text.txt && fail "encoded text left: $(grep '=C3=A9\|=?' text.txt | head -3)"
grep -q '^Excellence,$' text.txt || fail "no French salutation line: $(head -20 text.txt)"

# Piped, the default is the raw message, as before.
"$DEMARCHE" preview appeal --to "$R/missions.example.csv" --only FRA >raw.eml 2>err.txt
expect_rc 0 $? "preview to a pipe"
grep -q '^Content-Transfer-Encoding: quoted-printable' raw.eml || fail "not raw MIME: $(head -5 raw.eml)"
"$DEMARCHE" preview appeal --to "$R/missions.example.csv" --only FRA --format eml >eml.eml 2>/dev/null
cmp -s raw.eml eml.eml || fail "--format eml differs from the default when piped"

# On a terminal (script(1) gives one), the default is the decoded text.
script -qec "\"$DEMARCHE\" preview appeal --to \"$R/missions.example.csv\" --only FRA" /dev/null \
	</dev/null >tty.txt 2>&1
tr -d '\r' <tty.txt >tty2.txt
grep -q "^Subject: 22e session de l'Assemblée des États Parties : priorités$" tty2.txt ||
	fail "a terminal gets no decoded text: $(head -5 tty2.txt)"

# --format html: the HTML part.
"$DEMARCHE" preview appeal --to "$R/missions.example.csv" --only FRA --format html >v.html 2>/dev/null
grep -q '^<!DOCTYPE html>' v.html && grep -q "l'Assemblée\|l&#39;Assemblée" v.html ||
	fail "--format html: $(head -5 v.html)"
"$DEMARCHE" preview appeal --to "$R/missions.example.csv" --format pdf >/dev/null 2>err.txt
expect_rc 64 $? "--format pdf"

# --out: .eml and .html; a folder holding files is refused unless --force.
"$DEMARCHE" preview appeal --to "$R/missions.example.csv" --only FRA,CIV --out o >/dev/null 2>err.txt
expect_rc 0 $? "preview --out: $(cat err.txt)"
[ "$(ls o | tr '\n' ' ')" = "CIV.eml CIV.html FRA.eml FRA.html " ] || fail "--out wrote: $(ls o)"
cmp -s <(sed '1,/^$/d' v.html) <(sed '1,/^$/d' o/FRA.html) || fail "FRA.html is not the HTML part"
grep -q "wrote 2 messages to o" err.txt || fail "count: $(cat err.txt)"
"$DEMARCHE" preview appeal --to "$R/missions.example.csv" --only KEN --out o >/dev/null 2>err.txt
expect_rc 73 $? "preview --out into a folder holding files"
grep -q "o is not empty.*--force" err.txt || fail "the refusal: $(cat err.txt)"
[ -e o/KEN.eml ] && fail "KEN was written although refused"
"$DEMARCHE" preview appeal --to "$R/missions.example.csv" --only KEN --out o --force >/dev/null 2>err.txt
expect_rc 0 $? "preview --out --force: $(cat err.txt)"
[ -s o/KEN.eml ] && [ -s o/KEN.html ] || fail "--force did not write KEN: $(ls o)"
mkdir empty
"$DEMARCHE" preview appeal --to "$R/missions.example.csv" --only KEN --out empty >/dev/null 2>err.txt
expect_rc 0 $? "preview --out into an empty folder: $(cat err.txt)"
pass
