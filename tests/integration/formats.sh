#!/usr/bin/env bash
# Issue 18, point 6: --format json for check, doctor and verify (parsed by Python's json);
# --color=auto|always|never and NO_COLOR; -q (only errors) and -v (more detail), before the
# command or after it.
set -u
. "$(dirname "$0")/lib.bash"
R=$SRCDIR/recipients
PY=/usr/bin/python3
draft_original asp-session
test_ini

# check --format json: the summary, and the problems with their parts.
"$DEMARCHE" check appeal --to "$R/missions.example.csv" --join "$R/states-parties.csv" \
	--date 2026-12-02 --format json >out.json 2>err.txt
expect_rc 0 $? "check --format json"
[ -s err.txt ] && fail "check --format json wrote to stderr: $(cat err.txt)"
$PY -c 'import json, sys
d = json.load(open(sys.argv[1]))
assert d["ok"] is True and d["exit"] == 0, d
assert d["campaign"] == "asp22-priorities", d["campaign"]
assert d["languages"] == ["en", "es", "fr"], d["languages"]
assert d["by_language"] == {"en": 87, "fr": 20, "es": 17}, d["by_language"]
assert d["rows"] == 124 and d["selected"] == 124 and d["rendered"] == 124, d
assert d["states_parties"] == 124 and d["facts_as_of"] == "2026-12-02", d
assert d["problems"] == [] and d["warnings"] == 0, d
' out.json || fail "check's JSON: $(cat out.json)"
sed '1s/,language,/,lang,/' "$R/missions.example.csv" >lang.csv
awk -F, 'BEGIN { OFS = "," } NR == 3 { $4 = "not an address" } { print }' lang.csv >bad.csv
"$DEMARCHE" check appeal --to bad.csv --format json >out.json 2>err.txt
expect_rc 65 $? "check --format json of a bad roster"
[ -s err.txt ] && fail "the problems went to stderr too: $(cat err.txt)"
$PY -c 'import json, sys
d = json.load(open(sys.argv[1]))
assert d["ok"] is False and d["exit"] == 65, d
p = {(x["level"], x.get("column")): x for x in d["problems"]}
assert p[("warning", "lang")]["line"] == 1 and "did you mean '"'"'language'"'"'" in p[("warning", "lang")]["message"], p
assert p[("error", "email")]["line"] == 3 and p[("error", "email")]["file"] == "bad.csv", p
' out.json || fail "check's JSON of a bad roster: $(cat out.json)"

# doctor --format json
"$DEMARCHE" --store none.db doctor --format json >out.json 2>err.txt
expect_rc 0 $? "doctor --format json: $(cat err.txt)"
$PY -c 'import json, sys
d = json.load(open(sys.argv[1]))
assert d["ok"] is True, d
s = [c["status"] for c in d["checks"]]
assert "ok" in s and set(s) <= {"ok", "skip"}, s
assert any(c["message"].startswith("config: demarche.ini loads") for c in d["checks"]), d
' out.json || fail "doctor's JSON: $(cat out.json)"
printf '[smtp]\nurll = x\n' >bad.ini
"$DEMARCHE" --config bad.ini --store none.db doctor --format json >out.json 2>/dev/null
expect_rc 78 $? "doctor --format json with a bad key"
$PY -c 'import json, sys
d = json.load(open(sys.argv[1]))
f = [c for c in d["checks"] if c["status"] == "fail"]
assert d["ok"] is False and len(f) == 1, d
assert f[0]["fix"].startswith("write '"'"'url'"'"' instead of '"'"'urll'"'"'"), f
' out.json || fail "doctor's JSON of a failure: $(cat out.json)"

# verify --format json, on a ledger from a send into a Maildir.
"$DEMARCHE" --store l.db send appeal --to "$R/missions.example.csv" --only KEN,FRA \
	--via maildir:outbox --yes >/dev/null 2>&1 || fail "send into a Maildir"
"$DEMARCHE" --store l.db verify --format json >out.json 2>err.txt
expect_rc 0 $? "verify --format json: $(cat err.txt)"
"$DEMARCHE" --store l.db verify >text.txt 2>/dev/null
$PY -c 'import json, sys
d = json.load(open(sys.argv[1]))
t = open(sys.argv[2]).read().split()
assert d["ok"] is True and d["exit"] == 0, d
assert d["events"] == int(t[0]) and d["head"] == t[3] and len(d["head"]) == 64, (d, t)
' out.json text.txt || fail "verify's JSON: $(cat out.json) vs $(cat text.txt)"
"$DEMARCHE" --store missing.db verify --format json >out.json 2>/dev/null
expect_rc 66 $? "verify --format json without a ledger"
$PY -c 'import json, sys
d = json.load(open(sys.argv[1]))
assert d["ok"] is False and d["exit"] == 66 and "missing.db" in d["error"], d
' out.json || fail "verify's JSON of a failure: $(cat out.json)"

# -q: only errors; -v: more; before or after the command.
"$DEMARCHE" --store l.db verify -q >out.txt 2>&1
expect_rc 0 $? "verify -q"
[ -s out.txt ] && fail "verify -q printed: $(cat out.txt)"
"$DEMARCHE" -q check appeal --to lang.csv >out.txt 2>&1
expect_rc 0 $? "-q check"
[ -s out.txt ] && fail "-q check printed: $(cat out.txt)"
"$DEMARCHE" check appeal --to bad.csv --quiet >out.txt 2>&1
expect_rc 65 $? "check --quiet of a bad roster"
grep -q "column 'email': error" out.txt || fail "check -q hid an error: $(cat out.txt)"
grep -q "warning" out.txt && fail "check -q showed a warning: $(cat out.txt)"
"$DEMARCHE" check appeal --to lang.csv -v >out.txt 2>/dev/null
grep -q "^roster columns: iso3 state mission email cc honorific name title lang salutation city timezone$" out.txt ||
	fail "check -v: $(cat out.txt)"
"$DEMARCHE" --store none.db doctor -q >out.txt 2>&1
expect_rc 0 $? "doctor -q"
[ -s out.txt ] && fail "doctor -q printed: $(cat out.txt)"
"$DEMARCHE" -v --store none.db doctor >out.txt 2>&1
grep -q "^OK   data: " out.txt || fail "doctor -v names no data folder: $(cat out.txt)"
"$DEMARCHE" -q init ws >out.txt 2>&1
expect_rc 0 $? "init -q"
[ -s out.txt ] && fail "init -q printed: $(cat out.txt)"

# Colour: never on a file by default; --color=always; NO_COLOR; --color=never on a terminal.
esc=$'\033'
"$DEMARCHE" check appeal --to bad.csv >/dev/null 2>err.txt
grep -q "$esc" err.txt && fail "colour in a file"
"$DEMARCHE" --color=always check appeal --to bad.csv >/dev/null 2>err.txt
grep -q "${esc}\[1;31merror${esc}\[0m: " err.txt || fail "--color=always: no red error: $(cat -v err.txt)"
"$DEMARCHE" --store none.db doctor --color=always >out.txt 2>&1
grep -q "^${esc}\[32mOK" out.txt || fail "doctor --color=always: $(cat -v out.txt)"
script -qec "\"$DEMARCHE\" --store none.db doctor" /dev/null </dev/null >tty.txt 2>&1
grep -q "${esc}\[32mOK" tty.txt || fail "no colour on a terminal: $(cat -v tty.txt)"
NO_COLOR=1 script -qec "\"$DEMARCHE\" --store none.db doctor" /dev/null </dev/null >tty.txt 2>&1
grep -q "$esc" tty.txt && fail "colour with NO_COLOR: $(cat -v tty.txt)"
script -qec "\"$DEMARCHE\" --store none.db doctor --color=never" /dev/null </dev/null >tty.txt 2>&1
grep -q "$esc" tty.txt && fail "colour with --color=never: $(cat -v tty.txt)"
NO_COLOR=1 "$DEMARCHE" --store none.db doctor --color=always >out.txt 2>&1
grep -q "$esc" out.txt || fail "--color=always does not override NO_COLOR"
"$DEMARCHE" --color=sometimes doctor >/dev/null 2>err.txt
expect_rc 64 $? "--color=sometimes"
grep -q "^demarche: --color=sometimes: expected auto, always or never" err.txt || fail "$(cat err.txt)"
pass
