#!/usr/bin/env bash
# demarche templates and draft: the listing, a draft of asp-session that renders exactly as
# the template does, and the refusals (missing params, unknown --set key, non-empty DIR),
# after which no folder is left behind. Hostile templates: template_attack.sh.
set -u
. "$(dirname "$0")/lib.bash"
export DEMARCHE_TEMPLATES="$SRCDIR/templates"
T="$SRCDIR/templates/asp-session"
RENDER="$BUILDDIR/tests/test_letter"
[ -x "$RENDER" ] || fail "no $RENDER (the unit test binary renders letters here)"

out=$("$DEMARCHE" templates) || fail "templates exited $?"
for id in asp-session amendment-alert joint-letter security-council review-conference; do
	grep -qx "$id" <<<"$out" || fail "templates does not list $id"
done
grep -q "_layout" <<<"$out" && fail "templates lists _layout"
grep -qE '^    languages +en es fr$' <<<"$out" || fail "asp-session languages"
grep -qE '^    param +session_ordinal$' <<<"$out" || fail "params one per line"
"$DEMARCHE" templates --format json >t.json || fail "templates --format json"
python3 - t.json <<'PY' || fail "templates json"
import json, sys
t = {x["id"]: x for x in json.load(open(sys.argv[1]))}
assert len(t) == 5, t.keys()
assert t["joint-letter"]["params"] == ["year", "organisations"], t["joint-letter"]
assert t["asp-session"]["languages"] == ["en", "es", "fr"]
PY
"$DEMARCHE" templates --format yaml 2>/dev/null
expect_rc 64 $? "templates --format yaml"

# Round trip: draft with the original params, then render the draft with the roster row.
"$DEMARCHE" draft asp-session --params "$T/original.json" -o appeal >files.txt 2>err.txt
expect_rc 0 $? "draft: $(cat err.txt)"
[ "$(wc -l <files.txt)" = 3 ] || fail "draft lists $(cat files.txt)"
grep -q '{{salutation}}' appeal/en.md || fail "roster field not left open"
grep -q '^Campaign: asp22-priorities$' appeal/en.md || fail "campaign not filled"
grep -q '{{<' appeal/*.md && fail "layout not flattened"
grep -q '^Params:' appeal/en.md && fail "Params header kept"
for lang in en fr es; do
	"$RENDER" --render "$T" "$SRCDIR/templates/_layout" "$T/original.json" "$T/original.csv" \
		$lang >want.$lang || fail "render template $lang"
	echo '{}' >empty.json
	"$RENDER" --render appeal - empty.json "$T/original.csv" $lang >got.$lang ||
		fail "render draft $lang"
	cmp -s want.$lang got.$lang || { diff want.$lang got.$lang | head; fail "draft $lang differs"; }
done
grep -q 'The Hague/New York, 17 November 2023' got.en || fail "date line"

# --set overrides --params.
"$DEMARCHE" draft asp-session --params "$T/original.json" --set session=23 \
	--set session_ordinal=23rd -o appeal23 >/dev/null 2>&1 || fail "draft --set"
grep -q '^Campaign: asp23-priorities$' appeal23/en.md || fail "--set session"
grep -q 'the 23rd session of the Assembly' appeal23/en.md || fail "--set session_ordinal"

# Refusals.
"$DEMARCHE" draft asp-session --set session=24 -o missing 2>err.txt
expect_rc 65 $? "missing params"
for p in session_ordinal session_dates venue signatory session_ordinal_fr venue_es; do
	grep -q "missing param '$p'" err.txt || fail "missing $p not listed"
done
[ -e missing ] && fail "a draft with params missing left $(find missing)"
# A failed draft removes every folder it made (here three), and none it did not.
mkdir keep
"$DEMARCHE" draft asp-session --set session=24 -o keep/a/b/c 2>/dev/null
expect_rc 65 $? "missing params, nested DIR"
[ -e keep/a ] && fail "a failed draft left $(find keep)"
[ -d keep ] || fail "a failed draft removed a folder it did not make"
"$DEMARCHE" draft asp-session --params "$T/original.json" --set sesion=24 -o x 2>err.txt
expect_rc 65 $? "unknown --set key"
grep -q "did you mean 'session'" err.txt || fail "no suggestion for sesion"
"$DEMARCHE" draft asp-session --params "$T/original.json" -o appeal 2>err.txt
expect_rc 73 $? "non-empty DIR"
grep -q -- "--force" err.txt || fail "refusal does not mention --force"
"$DEMARCHE" draft asp-session --params "$T/original.json" -o appeal --force >/dev/null 2>&1
expect_rc 0 $? "--force"
"$DEMARCHE" draft no-such-template -o y 2>/dev/null
expect_rc 66 $? "unknown template"
"$DEMARCHE" draft asp-session 2>/dev/null
expect_rc 64 $? "no -o"
pass
