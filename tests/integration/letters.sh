#!/usr/bin/env bash
# Letters as a mission files them: every template, drafted with its original params and
# previewed for every row of the example roster in its language, has the reference, the place
# and date line in the language's form, the inside address (the mission and city lines) and
# the right salutation (Cook Islands: "Dear Secretary,"), in that order; its text part holds
# no Markdown markers ("**", "__"), no trailing blank, no line over 72 characters, no empty
# first line; and its HTML and text parts carry the same words. check's translation parity:
# an appeal whose fr.md lost an ask fails, unless --allow-divergent. The joint letter from a
# 120-row sign-on sheet with two duplicates; draft --print-params read back by draft.
set -u
. "$(dirname "$0")/lib.bash"
R="$SRCDIR/recipients"
export DEMARCHE_TEMPLATES="$SRCDIR/templates"
test_ini

for t in asp-session amendment-alert joint-letter security-council review-conference; do
	draft_original "$t" "$t"
	"$DEMARCHE" preview "$t" --to "$R/missions.example.csv" --join "$R/states-parties.csv" \
		--out "eml-$t" >/dev/null 2>err.txt || fail "preview $t: $(cat err.txt)"
	[ "$(ls "eml-$t" | grep -c "\.eml$")" = 124 ] || fail "$t: $(ls "eml-$t" | grep -c "\.eml$") messages"
done

# The joint letter from a sign-on sheet: 120 rows, two of them duplicates (case and accents,
# a leading "The"), give 118 signatories, sorted, the duplicates reported by row.
python3 - >signon.csv <<'PY'
print("organisation,country")
for i in range(118):
    print(f"Organisation number {i:03d} for Justice,Country {i}")
print("ORGANISATION NUMBER 007 FOR JUSTICE,Country 7")
print("The Organisation number 042 for Justice,Country 42")
PY
"$DEMARCHE" draft joint-letter --set year=2026 --signatories signon.csv -o joint >/dev/null \
	2>err.txt || fail "draft --signatories: $(cat err.txt)"
[ "$(grep -c "is a duplicate of row" err.txt)" = 2 ] || fail "duplicates: $(cat err.txt)"
grep -q "looks like" err.txt && fail "names that differ by their numbers are near: $(head -3 err.txt)"
grep -q "^signon.csv:120: column 'organisation': warning: .*duplicate of row 9 " err.txt ||
	fail "the first duplicate's rows: $(cat err.txt)"
grep -q "^signon.csv:121: .*duplicate of row 44 " err.txt || fail "the second: $(cat err.txt)"
[ "$(grep -c '^Organisation number .* for Justice (Country [0-9]*)  $' joint/en.md)" = 118 ] ||
	fail "$(grep -c '^Organisation number' joint/en.md) signatories in the draft"
grep '^Organisation number' joint/fr.md | sort -c || fail "signatories not sorted"
"$DEMARCHE" draft security-council --signatories signon.csv -o sc >/dev/null 2>err.txt
expect_rc 65 $? "--signatories for a template without organisations"

# draft --print-params: a commented params file that draft reads back.
"$DEMARCHE" draft asp-session --print-params >params.json || fail "--print-params"
grep -q '^// ' params.json || fail "no comments in the params skeleton"
grep -q '"venue_fr": "au Siège' params.json || fail "the original letter's values"
"$DEMARCHE" draft asp-session --params params.json -o fromskel >/dev/null 2>err.txt ||
	fail "draft from the printed params: $(cat err.txt)"
cmp -s fromskel/fr.md asp-session/fr.md || fail "the skeleton does not give the original"

# Translation parity: the drafted appeals pass check; one whose fr.md lost an ask fails,
# naming both files, unless --allow-divergent.
"$DEMARCHE" check asp-session --to "$R/missions.example.csv" >/dev/null 2>err.txt ||
	fail "check of the drafted asp-session: $(cat err.txt)"
cp -r asp-session lost
python3 - lost/fr.md <<'PY'
import sys
s = open(sys.argv[1], encoding="utf-8").read()
i = s.index("\n- L'engagement en faveur d'une **coopération solide**")
open(sys.argv[1], "w", encoding="utf-8").write(s[:i] + s[s.index("\n", i + 1):])
PY
"$DEMARCHE" check lost --to "$R/missions.example.csv" >/dev/null 2>err.txt
expect_rc 65 $? "check of an appeal whose fr.md lost an ask"
grep -qx "lost/fr.md: error: en.md has 8 bulleted asks, fr.md has 7" err.txt ||
	fail "parity message: $(cat err.txt)"
"$DEMARCHE" check lost --to "$R/missions.example.csv" --allow-divergent >out.txt 2>err.txt ||
	fail "--allow-divergent: $(cat err.txt)"
grep -qx "lost/fr.md: warning: en.md has 8 bulleted asks, fr.md has 7" err.txt ||
	fail "parity warning: $(cat err.txt)"

python3 - "$R/missions.example.csv" <<'PY' || fail "see above"
import csv, datetime, email, html, os, re, sys
from email import policy
from html.parser import HTMLParser

rows = {r["iso3"]: r for r in csv.DictReader(open(sys.argv[1], encoding="utf-8"))}
today = datetime.date.today()
MONTHS = {
    "en": "January February March April May June July August September October November December",
    "fr": "janvier février mars avril mai juin juillet août septembre octobre novembre décembre",
    "es": "enero febrero marzo abril mayo junio julio agosto septiembre octubre noviembre diciembre",
}
def date_in(lang):
    m = MONTHS[lang].split()[today.month - 1]
    if lang == "fr":
        return f"{'1er' if today.day == 1 else today.day} {m} {today.year}"
    if lang == "es":
        return f"{today.day} de {m} de {today.year}"
    return f"{today.day} {m} {today.year}"
REF = {"review-conference": "ICRtoP"}
CAMPAIGN = {"asp-session": "asp22-priorities", "amendment-alert": "amendments-2014-06",
            "joint-letter": "joint-letter-2020", "security-council": "veto-2014-05",
            "review-conference": "review-conference-2010"}
# The example roster gives no salutation: each is derived from the honorific and title, in
# the language of the letter (en for the templates that have only en).
SALUTATION = {"en": "Your Excellency,", "fr": "Excellence,", "es": "Excelencia:"}

class Words(HTMLParser):
    """The words of an HTML body: inline tags join, block tags separate."""
    BLOCK = {"p", "br", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "div",
             "blockquote", "pre", "hr", "body", "html"}
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.text, self.skip = [], 0
    def handle_starttag(self, tag, attrs):
        if tag in ("head", "style", "title"):
            self.skip += 1
        if tag in self.BLOCK:
            self.text.append(" ")
    def handle_endtag(self, tag):
        if tag in ("head", "style", "title"):
            self.skip -= 1
        if tag in self.BLOCK:
            self.text.append(" ")
    def handle_data(self, data):
        if not self.skip:
            self.text.append(data)
    @property
    def words(self):
        return "".join(self.text).split()

def joined(text):  # a hard-broken line too long for 72 continues indented by two
    out = []
    for l in text.split("\n"):
        if l.startswith("  ") and out and not l.startswith("   "):
            out[-1] += " " + l.strip()
        else:
            out.append(l)
    return out

failures = 0
def bad(name, why):
    global failures
    failures += 1
    if failures <= 20:
        print(f"{name}: {why}", file=sys.stderr)

for t in CAMPAIGN:
    d = f"eml-{t}"
    for name in sorted(n for n in os.listdir(d) if n.endswith(".eml")):
        key, where = name[:-4], f"{t}/{name}"
        row = rows[key]
        msg = email.message_from_bytes(open(os.path.join(d, name), "rb").read(),
                                       policy=policy.default)
        text = msg.get_body(("plain",)).get_content().replace("\r\n", "\n")
        htm = msg.get_body(("html",)).get_content()
        lang = row["language"] if t in ("asp-session", "joint-letter") else "en"
        # The text part is plain text.
        if "**" in text or "__" in text:
            bad(where, "Markdown emphasis markers in the text part")
        if re.search(r"[ \t]$", text, re.M):
            bad(where, "a line ends in a blank")
        if text.startswith("\n") or not text.strip():
            bad(where, "the text starts with an empty line")
        if any(len(l) > 72 and " " in l.strip() for l in text.split("\n")):
            bad(where, "a line over 72 characters")
        # The same words in both parts (list numbers and bullets are the text's own).
        p = Words()
        p.feed(htm)
        tw = re.sub(r"^(\d+\.|-) ", "", text, flags=re.M).split()  # list markers at column 0
        hw = [w for w in p.words]
        if tw != hw:
            i = next((k for k in range(min(len(tw), len(hw))) if tw[k] != hw[k]), None)
            bad(where, f"text and HTML words differ at word {i}: {tw[i:i+5] if i is not None else len(tw)} / {hw[i:i+5] if i is not None else len(hw)}")
        # The letter parts, in order: reference, date line, inside address, salutation.
        lines = joined(text)
        def at(pred, what):
            for k, l in enumerate(lines):
                if pred(l):
                    return k
            bad(where, f"no {what}")
            return -1
        ref = at(lambda l: l == f"{'Réf.' if lang == 'fr' else 'Ref.'} {REF.get(t, 'CICC')}/{CAMPAIGN[t]}/{key}", "reference")
        date = at(lambda l: l.endswith(date_in(lang)), f"date line ({date_in(lang)})")
        mission = at(lambda l: l == " ".join(row["mission"].split()), "mission line")
        city = at(lambda l: l == row["city"], "city line")
        if key == "COK":
            want = "Dear Secretary,"
        else:
            want = SALUTATION[lang] if lang != "es" else None
        if want:
            sal = at(lambda l: l == want, f"salutation {want!r}")
        else:  # es: from the honorific; the roster's H.E. tells no gender
            sal = at(lambda l: l in ("Excelencia:",), "es salutation")
        if not (ref < date < mission < city < sal):
            bad(where, f"parts out of order: {ref} {date} {mission} {city} {sal}")
if failures:
    sys.exit(f"{failures} problems")
PY
pass
