#!/usr/bin/env bash
# demarche preview: the merged messages of the example appeal for all 124 missions (Hungary left on 2 June 2026), read by
# an independent parser (Python's email package, policy.default): every header present and
# decodable, names and subjects round-trip through RFC 2047, both alternatives decode, CRLF
# only, no line over 998 octets, 7-bit. A roster value trying to inject a header is refused
# and nothing is written. --out file names never collide (a/b and a_b are two files).
set -u
. "$(dirname "$0")/lib.bash"
R="$SRCDIR/recipients"
export DEMARCHE_TEMPLATES="$SRCDIR/templates"
draft_original asp-session
printf '[sender]\nname = Coalición por la Corte Penal Internacional\naddress = secretariat@coalition.example\n' \
	>demarche.ini

"$DEMARCHE" preview appeal --to "$R/missions.example.csv" --join "$R/states-parties.csv" \
	--out eml >out.txt 2>err.txt
expect_rc 0 $? "preview --out: $(cat err.txt)"
grep -q "wrote 124 messages to eml" err.txt || fail "preview said: $(cat err.txt)"
[ "$(ls eml | grep -c "\.eml$")" = 124 ] || fail "$(ls eml | grep -c "\.eml$") files"

python3 - eml "$R/missions.example.csv" <<'PY' || fail "see above"
import csv, email, os, re, sys
from email import policy
d, roster = sys.argv[1], sys.argv[2]
rows = {r["iso3"]: r for r in csv.DictReader(open(roster, encoding="utf-8"))}
subjects = {
    "en": "22nd session of the Assembly of States Parties: priorities",
    "fr": "22e session de l'Assemblée des États Parties : priorités",
}
salutation = {"en": "Your Excellency,", "fr": "Excellence,"}
ids = set()
for name in sorted(n for n in os.listdir(d) if n.endswith(".eml")):
    key = name[:-4]
    raw = open(os.path.join(d, name), "rb").read()
    def bad(why):
        sys.exit(f"{name}: {why}")
    if re.search(rb"(?<!\r)\n", raw) or re.search(rb"\r(?!\n)", raw):
        bad("a bare LF or CR")
    if any(len(l) > 998 for l in raw.split(b"\r\n")):
        bad("a line over 998 octets")
    if any(b > 127 for b in raw):
        bad("8-bit data")
    msg = email.message_from_bytes(raw, policy=policy.default)
    for h in ("From", "To", "Subject", "Date", "Message-ID", "MIME-Version",
              "X-Demarche-Campaign"):
        if msg[h] is None:
            bad(f"no {h}")
    if msg["Bcc"] is not None:
        bad("a Bcc header")
    for part in msg.walk():
        if part.defects:
            bad(f"defects {part.defects}")
    row = rows[key]
    to = msg["To"].addresses[0]
    if to.addr_spec != row["email"] or re.sub(r"\s+", "", to.display_name) != re.sub(r"\s+", "", row["mission"]):
        bad(f"To is {to.display_name!r} <{to.addr_spec}>, not {row['mission']!r}")
    if msg["From"].addresses[0].display_name != "Coalición por la Corte Penal Internacional":
        bad(f"From name {msg['From'].addresses[0].display_name!r}")
    lang = row["language"]
    if lang in subjects and str(msg["Subject"]) != subjects[lang]:
        bad(f"Subject {str(msg['Subject'])!r}")
    if msg.get_content_type() != "multipart/alternative":
        bad(msg.get_content_type())
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    want = "Dear Secretary," if key == "COK" else salutation.get(lang)
    if want and want not in text:
        bad(f"no {want!r} in the text")
    # The letter parts: reference, place and date line in the language's form, inside
    # address (the mission's line), each once.
    if f"CICC/asp22-priorities/{key}" not in text:
        bad("no reference")
    months = {"en": r"\d{1,2} [A-Z][a-z]+ \d{4}", "fr": r"le (1er|\d{1,2}) [a-zéû]+ \d{4}",
              "es": r"\d{1,2} de [a-z]+ de \d{4}"}
    if not re.search(r"(New|Nueva) York, " + months[lang], text):
        bad("no date line")
    if re.sub(r"\s+", " ", row["mission"]) not in re.sub(r"\s+", " ", text):
        bad("no inside address")
    if "Rom" not in html or "<strong>" not in html or "<p>" not in html:
        bad("the HTML part")
    if "{{" in text or "}}" in text:
        bad("an unrendered tag in the text")
    ids.add(str(msg["Message-ID"]))
if len(ids) != 124:
    sys.exit(f"{len(ids)} distinct Message-IDs")
civ = email.message_from_bytes(open(os.path.join(d, "CIV.eml"), "rb").read(), policy=policy.default)
if "Côte d'Ivoire" not in civ["To"].addresses[0].display_name:
    sys.exit(f"CIV: {civ['To']}")
PY

# Without --out: the first selected mission's message on stdout.
"$DEMARCHE" preview appeal --to "$R/missions.example.csv" --only KEN >ken.eml 2>err.txt
expect_rc 0 $? "preview of one mission"
grep -q "^To: Permanent Mission of the Republic of Kenya" ken.eml || fail "not Kenya's message: $(head ken.eml)"

# A header injection through the roster: refused before anything is written.
python3 - "$R/missions.example.csv" evil.csv <<'PY'
import csv, sys
rows = list(csv.reader(open(sys.argv[1], encoding="utf-8")))
for r in rows[1:]:
    if r[0] == "KEN":
        r[2] = "Permanent Mission of Kenya\r\nBcc: spy@evil.example"
csv.writer(open(sys.argv[2], "w", encoding="utf-8", newline="")).writerows(rows)
PY
"$DEMARCHE" preview appeal --to evil.csv --out evil >out.txt 2>err.txt
expect_rc 65 $? "a roster value with CR LF Bcc"
grep -q "evil.csv:[0-9]*: column 'mission'" err.txt || fail "the injection is not named: $(cat err.txt)"
[ -e evil ] && fail "preview wrote something although validation failed"

# --out file names never collide: a/b and a_b are two files (a key that is not a safe file
# name gets a hash of itself appended), and so is a key spelling the first one's name (its
# name taken, it gets its own hash appended).
h=$(printf 'a/b' | sha256sum | cut -c1-8)
{
	head -1 "$R/missions.example.csv"
	grep '^KEN,' "$R/missions.example.csv" | sed 's|^KEN,|a/b,|'
	grep '^ALB,' "$R/missions.example.csv" | sed 's|^ALB,|a_b,|'
	grep '^AFG,' "$R/missions.example.csv" | sed "s|^AFG,|a_b-$h,|"
	grep '^FRA,' "$R/missions.example.csv" | sed 's|^FRA,|.hidden,|'
} >keys.csv
"$DEMARCHE" preview appeal --to keys.csv --out keys >out.txt 2>err.txt
expect_rc 0 $? "preview of colliding keys: $(cat err.txt)"
[ "$(ls -A keys | grep -c "\.eml$")" = 4 ] || fail "4 keys gave: $(ls -A keys)"
grep -q "<ken@missions.example>" "keys/a_b-$h.eml" || fail "a/b is not a_b-$h.eml: $(ls -A keys)"
grep -q "<alb@missions.example>" keys/a_b.eml || fail "a_b is not a_b.eml: $(ls -A keys)"
h2=$(printf 'a_b-%s' "$h" | sha256sum | cut -c1-8)
grep -q "<afg@missions.example>" "keys/a_b-$h-$h2.eml" ||
	fail "a_b-$h is not a_b-$h-$h2.eml: $(ls -A keys)"
ls keys/_hidden-*.eml >/dev/null 2>&1 || fail ".hidden: $(ls -A keys)"
pass
