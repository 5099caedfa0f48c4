#!/usr/bin/env bash
# The five templates reproduce their seed letters through the user's path: draft with the
# original letter's params, then preview for the original addressee; the text/plain part,
# with Markdown markup removed and whitespace collapsed, matches the seed at >= 0.95
# word-sequence similarity, and has the seed's words in the seed's order once the allowed
# differences are made (templates/README.md: letter parts the seeds lack, the date line,
# corrections of the seeds' slips). (unit.letter checks the same through the letter module.)
set -u
. "$(dirname "$0")/lib.bash"
export DEMARCHE_TEMPLATES="$SRCDIR/templates"
SEEDS=$TESTDATA/seeds

compare() { # eml seed-file name key ref: 0 when the message's text is the seed's
	python3 - "$1" "$SEEDS/$2" "$3" "$4" "$5" <<'PY'
import datetime, difflib, email, string, sys
from email import policy

# Text in a seed that is not the letter's: the scan's description of a handwritten signature.
ARTEFACTS = ['A handwritten signature in black ink that reads "William R. Pace". '
             'The signature is written in a cursive, flowing style.']
SPACE = " \t\n\r\v\f"

def skip_markers(s, i):
    while True:
        j = i
        while j < len(s) and s[j] in " \t":
            j += 1
        if j + 1 < len(s) and s[j] in "-*+" and s[j + 1] in " \t":
            i = j + 2
            continue
        k = j
        while k < len(s) and s[k].isdigit():
            k += 1
        if k > j and k + 1 < len(s) and s[k] in ".)" and s[k + 1] in " \t":
            i = k + 2
            continue
        return j

def plain(md):  # as markdown_to_plain() in src/letter/markdown.c
    out, i, line_start, space = [], 0, True, False
    while i < len(md):
        if line_start:
            i = skip_markers(md, i)
            while i < len(md) and md[i] == "#":
                i += 1
            line_start = False
            continue
        c = md[i]
        if c == "\n":
            line_start, space = True, True
        elif c in SPACE:
            space = True
        elif c in "*_":
            pass
        else:
            if c == "\\" and i + 1 < len(md) and md[i + 1] in string.punctuation:
                i += 1
            if space and out:
                out.append(" ")
            space = False
            out.append(md[i])
        i += 1
    return "".join(out)

eml, seed_path, name, key, ref = sys.argv[1:6]
msg = email.message_from_bytes(open(eml, "rb").read(), policy=policy.default)
text = msg.get_body(("plain",)).get_content()
seed = open(seed_path, encoding="utf-8").read()
for a in ARTEFACTS:
    seed = seed.replace(a, "")

# 1. The whole letter, letter parts and all, against the seed as it is.
ratio = difflib.SequenceMatcher(None, plain(seed).split(), plain(text).split(),
                                autojunk=False).ratio()
if ratio < 0.95:
    print(f"{name}: word-sequence similarity {ratio:.3f} < 0.95", file=sys.stderr)
    sys.exit(1)

# 2. Only the allowed differences (templates/README.md): the letter parts the seeds lack
# (reference, inside address), the date line (preview dates the letter today; unit.letter
# checks the seed's own date), and the corrections of the seeds' slips.
CORRECTIONS = {
    "amendment-alert": [("global NGO members calls", "global NGO members call")],
    "asp-session": [("Assembly of State Parties", "Assembly of States Parties")],
    "review-conference": [("Assembly of State Parties", "Assembly of States Parties")],
}
SEED_DATES = ["23 June 2014", "17 November 2023", "22 May 2014", "May 21, 2010"]
for a, b in CORRECTIONS.get(name, []):
    if a not in seed:
        sys.exit(f"{name}: the correction {a!r} is no longer needed")
    seed = seed.replace(a, b)
for d in SEED_DATES:
    seed = seed.replace(d, "")
parts = [f"{ref}/{key}", datetime.date.today().strftime("%-d %B %Y")]
lines = text.split("\n")
# The inside address: the lines between the date line and the salutation.
try:
    i = next(k for k, l in enumerate(lines) if parts[1] in l)
    j = next(k for k in range(i + 1, len(lines)) if lines[k].rstrip().endswith(","))
except StopIteration:
    sys.exit(f"{name}: no date line or salutation")
address = [l for l in lines[i + 1:j] if l.strip()]
if not address:
    sys.exit(f"{name}: no inside address")
for p in parts + address:
    if p not in text:
        sys.exit(f"{name}: no {p!r}")
    text = text.replace(p, "")
want, got = plain(seed), plain(text)
if want != got:
    i = next((k for k in range(min(len(want), len(got))) if want[k] != got[k]),
             min(len(want), len(got)))
    print(f"{name}: differs at character {i}:\n  seed:    ...{want[max(0, i - 60):i + 60]}\n"
          f"  preview: ...{got[max(0, i - 60):i + 60]}", file=sys.stderr)
    sys.exit(1)
PY
}

check() { # template seed-file key reference-prefix
	local t=$1 seed=$2 key=$3 ref=$4
	draft_original "$t" "$t"
	"$DEMARCHE" preview "$t" --to "$SRCDIR/templates/$t/original.csv" >"$t.eml" 2>err.txt ||
		fail "preview $t: $(cat err.txt)"
	compare "$t.eml" "$seed" "$t" "$key" "$ref" || fail "$t does not reproduce $seed"
}

check amendment-alert 000_bcbb0d66050dafc6.txt DEU "Ref. CICC/amendments-2014-06"
check asp-session 001_daff8836c24be952.txt KEN "Ref. CICC/asp22-priorities"
check joint-letter 002_d1f86763ec81459c.txt ATG "Ref. CICC/joint-letter-2020"
check security-council 003_2cefc1941807e155.txt MEX "Ref. CICC/veto-2014-05"
check review-conference 004_6f2720748feaff1f.txt UGA "Ref. ICRtoP/review-conference-2010"

# The test can fail: a one-word change in a draft is caught.
sed -i 's/critical opportunity/crucial opportunity/' asp-session/en.md
"$DEMARCHE" preview asp-session --to "$SRCDIR/templates/asp-session/original.csv" \
	>changed.eml 2>/dev/null || fail "preview of the changed draft"
compare changed.eml 001_daff8836c24be952.txt asp-session KEN "Ref. CICC/asp22-priorities" 2>/dev/null &&
	fail "a changed word went unnoticed"
pass
