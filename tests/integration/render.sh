#!/usr/bin/env bash
# demarche render: a letter with a parent and a partial from --partials, each escape, strict
# mode, and the exit codes for a missing file (66), bad JSON (65), a template error (65),
# missing names under --strict (65) and bad usage (64).
set -u
. "$(dirname "$0")/lib.bash"
D="$TESTDATA/render"

out=$("$DEMARCHE" render "$D/letter.mustache" --data "$D/data.json" --partials "$D/partials" \
	--escape markdown) || fail "markdown render exited $?"
diff <(printf '%s\n' "$out") "$D/expected-markdown.txt" >&2 || fail "markdown output differs"

out=$("$DEMARCHE" render "$D/letter.mustache" --data "$D/data.json" --partials "$D/partials") ||
	fail "html render exited $?"
diff <(printf '%s\n' "$out") "$D/expected-html.txt" >&2 || fail "html (default) output differs"

out=$("$DEMARCHE" render "$D/letter.mustache" --data "$D/data.json" --partials "$D/partials" \
	--escape none --strict) || fail "strict render of a complete context exited $?"
grep -qF -- '- # join <b>now</b>' <<<"$out" || fail "--escape none escaped something"

# missing names: empty without --strict (the spec), all listed with it, nothing on stdout
printf 'Dear {{title}} {{name}},\n{{#known}}{{/known}}\n{{> nopartial}}{{other}}\n' >t.mustache
echo '{"title": "H.E.", "known": false}' >ctx.json
out=$("$DEMARCHE" render t.mustache --data ctx.json) || fail "lenient render exited $?"
[ "$out" = "Dear H.E. ," ] || fail "lenient render gave '$out'"
"$DEMARCHE" render t.mustache --data ctx.json --strict >out.txt 2>err.txt
expect_rc 65 $? "--strict with missing names"
[ -s out.txt ] && fail "--strict wrote output despite missing names"
grep -qx "t.mustache:1: error: missing variable 'name'" err.txt || fail "name not reported"
grep -qx "t.mustache:3: error: missing partial 'nopartial'" err.txt || fail "partial not reported"
grep -qx "t.mustache:3: error: missing variable 'other'" err.txt || fail "other not reported"
grep -q "known" err.txt && fail "a false section was reported missing"

# partials default to the template's directory
mkdir sub && printf '{{>p}}!' >sub/main.mustache && printf 'from p' >sub/p.mustache
out=$("$DEMARCHE" render sub/main.mustache) || fail "default partials dir exited $?"
[ "$out" = "from p!" ] || fail "default partials dir gave '$out'"

"$DEMARCHE" render nowhere.mustache 2>err.txt
expect_rc 66 $? "missing FILE"
grep -q "nowhere.mustache" err.txt || fail "missing FILE not named"
"$DEMARCHE" render t.mustache --data nowhere.json 2>/dev/null
expect_rc 66 $? "missing --data file"
"$DEMARCHE" render t.mustache --partials nowhere 2>/dev/null
expect_rc 66 $? "missing --partials dir"

printf '{\n  "title": "H.E.",\n  "name" "x"\n}\n' >bad.json
"$DEMARCHE" render t.mustache --data bad.json 2>err.txt
expect_rc 65 $? "bad JSON"
grep -q "bad.json:3:[0-9]*: bad JSON" err.txt || fail "bad JSON without line/column: $(cat err.txt)"

printf 'Dear {{name}},\n\n{{#apic}}\nPlease ratify.\n' >unclosed.mustache
"$DEMARCHE" render unclosed.mustache 2>err.txt
expect_rc 65 $? "unclosed section"
grep -q "unclosed.mustache:3: unclosed section 'apic'" err.txt || fail "unclosed: $(cat err.txt)"
printf 'ok\n\xff\n' >utf.mustache
"$DEMARCHE" render utf.mustache 2>err.txt
expect_rc 65 $? "invalid UTF-8"
grep -q "utf.mustache:2: invalid UTF-8" err.txt || fail "invalid UTF-8: $(cat err.txt)"

"$DEMARCHE" render 2>err.txt
expect_rc 64 $? "no FILE"
grep -q "usage: demarche render" err.txt || fail "no usage text for a missing FILE"
"$DEMARCHE" render t.mustache --escape latex 2>/dev/null
expect_rc 64 $? "bad --escape"
"$DEMARCHE" render t.mustache t.mustache 2>/dev/null
expect_rc 64 $? "two FILEs"
"$DEMARCHE" render t.mustache --bogus 2>/dev/null
expect_rc 64 $? "unknown option"
pass
