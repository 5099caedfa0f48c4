#!/usr/bin/env bash
# The five templates reproduce their seed letters through the user's path: draft with the
# original letter's params, then preview for the original addressee; the text/plain part,
# with Markdown markup removed and whitespace collapsed, has the seed's words in the seed's
# order. (unit.letter checks the same through the letter module directly.)
set -u
. "$(dirname "$0")/lib.bash"
export DEMARCHE_TEMPLATES="$SRCDIR/templates"
SEEDS=$TESTDATA/seeds

compare() { # eml seed-file name: 0 when the message's text is the seed's
	python3 - "$1" "$SEEDS/$2" "$3" <<'PY'
import email, string, sys
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

eml, seed_path, name = sys.argv[1:4]
msg = email.message_from_bytes(open(eml, "rb").read(), policy=policy.default)
text = msg.get_body(("plain",)).get_content()
seed = open(seed_path, encoding="utf-8").read()
for a in ARTEFACTS:
    seed = seed.replace(a, "")
want, got = plain(seed), plain(text)
if want != got:
    i = next((k for k in range(min(len(want), len(got))) if want[k] != got[k]),
             min(len(want), len(got)))
    print(f"{name}: differs at character {i}:\n  seed:    ...{want[max(0, i - 60):i + 60]}\n"
          f"  preview: ...{got[max(0, i - 60):i + 60]}", file=sys.stderr)
    sys.exit(1)
PY
}

check() { # template seed-file
	local t=$1 seed=$2
	draft_original "$t" "$t"
	"$DEMARCHE" preview "$t" --to "$SRCDIR/templates/$t/original.csv" >"$t.eml" 2>err.txt ||
		fail "preview $t: $(cat err.txt)"
	compare "$t.eml" "$seed" "$t" || fail "$t does not reproduce $seed"
}

check amendment-alert 000_bcbb0d66050dafc6.txt
check asp-session 001_daff8836c24be952.txt
check joint-letter 002_d1f86763ec81459c.txt
check security-council 003_2cefc1941807e155.txt
check review-conference 004_6f2720748feaff1f.txt

# The test can fail: a one-word change in a draft is caught.
sed -i 's/critical opportunity/crucial opportunity/' asp-session/en.md
"$DEMARCHE" preview asp-session --to "$SRCDIR/templates/asp-session/original.csv" \
	>changed.eml 2>/dev/null || fail "preview of the changed draft"
compare changed.eml 001_daff8836c24be952.txt asp-session 2>/dev/null &&
	fail "a changed word went unnoticed"
pass
