#!/usr/bin/env bash
# Issue 18, point 4: mistakes named once, with the fix. {{nmae}} is one line per file naming
# the missions and 'name'; a facts column without --join names the join; a roster problem on
# many rows is one line; smtps:// to a plain port names smtp:// and the ports; an unknown
# ini key names the nearest key; every message starts 'demarche COMMAND:'; no -1 line
# numbers; a failed draft leaves no folder.
set -u
. "$(dirname "$0")/lib.bash"
. "$(dirname "$0")/servers/sink.bash"
R=$SRCDIR/recipients
export DEMARCHE_TEMPLATES=$SRCDIR/templates
draft_original asp-session
test_ini

# {{nmae}}: one line per language file, not one per row and language.
sed -i 's/^{{salutation}}\([,:]\)$/{{nmae}}\1/' appeal/en.md appeal/fr.md appeal/es.md
grep -q '{{nmae}}' appeal/en.md || fail "no salutation line to change"
"$DEMARCHE" check appeal --to "$R/missions.example.csv" >out.txt 2>err.txt
expect_rc 65 $? "check with {{nmae}}"
[ "$(grep -c "missing variable 'nmae'" err.txt)" = 3 ] ||
	fail "not one line per file: $(grep -c "missing variable 'nmae'" err.txt) lines"
line=$(grep -n '{{nmae}}' appeal/en.md | cut -d: -f1)
grep -q "^appeal/en.md:$line: error: missing variable 'nmae' in 87 missions: AFG, ALB, AND, ATG, ARM, AUS, AUT, BGD, … (did you mean 'name'?); the roster's columns are: iso3, state, mission, email, cc, honorific, name, title, language, salutation, city, timezone$" err.txt ||
	fail "the en line: $(grep "en.md" err.txt)"
grep -q "^demarche check: 3 problems; nothing was sent$" err.txt || fail "the count: $(tail -1 err.txt)"
[ "$(wc -l <err.txt)" = 4 ] || fail "more than one line per problem: $(wc -l <err.txt) lines"
# preview and send say the same (one pass, shared by all three)
"$DEMARCHE" preview appeal --to "$R/missions.example.csv" >/dev/null 2>perr.txt
expect_rc 65 $? "preview with {{nmae}}"
diff <(grep -v '^demarche' err.txt) <(grep -v '^demarche' perr.txt) >/dev/null ||
	fail "preview says otherwise: $(diff err.txt perr.txt | head -5)"

# A facts column without --join: the join is named.
draft_original joint-letter joint
"$DEMARCHE" check joint --to "$R/missions.example.csv" >out.txt 2>err.txt
expect_rc 65 $? "the joint letter without --join"
grep -q "^joint/en.md:[0-9]*: error: missing section 'apic_party' in 87 missions: .*; 'apic_party' comes from a facts table: add --join recipients/states-parties.csv$" err.txt ||
	fail "no --join hint: $(cat err.txt)"
"$DEMARCHE" check joint --to "$R/missions.example.csv" --join "$R/states-parties.csv" \
	--date 2026-12-02 >out.txt 2>err.txt
expect_rc 0 $? "the joint letter with --join: $(cat err.txt)"

# The same roster problem on many rows: one line naming the others.
awk -F, 'BEGIN { OFS = "," } NR > 1 && $9 == "fr" { $9 = "French" } { print }' \
	"$R/missions.example.csv" >french.csv
draft_original asp-session appeal2
"$DEMARCHE" check appeal2 --to french.csv >out.txt 2>err.txt
expect_rc 65 $? "French"
[ "$(grep -c "no 'French' version" err.txt)" = 1 ] || fail "French repeated: $(cat err.txt)"
grep -q ": 19 more rows)$" err.txt || fail "the other rows are not named: $(cat err.txt)"

# One prefix: getopt's messages and configuration errors too.
"$DEMARCHE" check --bogus >/dev/null 2>err.txt
expect_rc 64 $? "check --bogus"
head -1 err.txt | grep -q "^demarche check: unrecognized option '--bogus'" || fail "getopt: $(head -1 err.txt)"
printf '[smtp]\nurll = smtp://x\n' >bad.ini
"$DEMARCHE" --config bad.ini preview appeal2 --to "$R/missions.example.csv" >/dev/null 2>err.txt
expect_rc 78 $? "preview with an unknown key"
grep -q "^demarche preview: bad.ini:2: unknown key 'urll' in section \[smtp\]; fix: write 'url' instead of 'urll'" err.txt ||
	fail "the config error: $(cat err.txt)"
"$DEMARCHE" --config bad.ini doctor >out.txt 2>&1
expect_rc 78 $? "doctor with an unknown key"
grep -q "^FAIL config: bad.ini:2: unknown key 'urll' in section \[smtp\] — fix: write 'url' instead of 'urll'" out.txt ||
	fail "doctor's fix: $(cat out.txt)"

# No -1 line numbers; a failed draft leaves nothing.
"$DEMARCHE" draft asp-session -o newdir/a --params missing.json >/dev/null 2>err.txt
expect_rc 66 $? "draft with a missing params file"
grep -qx "demarche draft: missing.json: cannot open: No such file or directory" err.txt ||
	fail "the missing params file: $(cat err.txt)"
[ -e newdir ] && fail "a failed draft left newdir"
printf '{"session": 24,\n' >broken.json
"$DEMARCHE" draft asp-session -o newdir --params broken.json >/dev/null 2>err.txt
expect_rc 65 $? "draft with broken JSON"
grep -q "^demarche draft: broken.json:[1-9][0-9]*:[0-9]*: bad JSON: " err.txt || fail "bad JSON: $(cat err.txt)"
grep -q ':-1:' err.txt && fail "a -1 line: $(cat err.txt)"
[ -e newdir ] && fail "a failed draft left newdir"
"$DEMARCHE" draft asp-session -o newdir --params "$SRCDIR/templates/asp-session/original.json" \
	--set sesion=24 >/dev/null 2>err.txt
expect_rc 65 $? "draft with an unknown --set"
grep -q "did you mean 'session'" err.txt || fail "no 'did you mean': $(cat err.txt)"
[ -e newdir ] && fail "a failed draft left newdir"

# smtps:// to a port speaking plain SMTP: the fix names smtp:// and the usual ports.
SINK=$WORK/sink
SP=$(free_port)
CLEANUP+=("sink_stop $SINK")
sink_start "$SINK" "$SP" || fail "smtp-sink did not start"
printf '[sender]\naddress = secretariat@coalition.example.org\n[smtp]\nurl = smtps://127.0.0.1:%s\n' "$SP" >tls.ini
"$DEMARCHE" --config tls.ini --store none.db doctor >out.txt 2>&1
expect_rc 69 $? "doctor: smtps:// to a plain port"
grep -q "^FAIL SMTP connect 127.0.0.1:$SP: .*did not speak TLS.* — fix: this port speaks plain SMTP: write url = smtp://127.0.0.1:$SP (STARTTLS, usually port 587), or smtps:// with the implicit-TLS port (usually 465)" out.txt ||
	fail "the TLS hint: $(cat out.txt)"
sink_stop "$SINK"
[ "$(sink_count "$SINK")" = 0 ] || fail "doctor sent a message"
pass
