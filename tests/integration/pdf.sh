#!/usr/bin/env bash
# The letter as a PDF (demarche letter, Form: pdf): for en, fr and es rows pdftotext gives the
# text part's words in order; every font is embedded; pdfinfo gives A4 and the metadata;
# qpdf --check passes; the same letter renders to the same bytes twice; a long name and a
# 118-signatory joint letter paginate with the closing and every signatory on one page; the
# logo's pixels are where the letterhead puts them; and a Form: pdf send to smtp-sink gives
# each mission the cover note and one application/pdf part whose SHA-256 the ledger holds.
set -u
. "$(dirname "$0")/lib.bash"
. "$(dirname "$0")/servers/sink.bash"
R="$SRCDIR/recipients"
export DEMARCHE_TEMPLATES="$SRCDIR/templates"
export SOURCE_DATE_EPOCH=1763640000 # 20 November 2025
for tool in pdftotext pdffonts pdfinfo pdftoppm qpdf; do
	command -v $tool >/dev/null || fail "$tool is missing (scripts/setup installs it)"
done

# A 200x100 pure red PNG logo, written with the standard library only.
python3 - <<'PY'
import struct, zlib
w, h = 200, 100
raw = b"".join(b"\0" + b"\xff\x00\x00" * w for _ in range(h))
def chunk(t, d):
    return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
png += chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
open("logo.png", "wb").write(png)
PY
test_ini '[letterhead]' 'name = Coalition for the International Criminal Court' \
	'address = Bezuidenhoutseweg 99A; 2594 AC The Hague' 'logo = logo.png' \
	'footer = www.coalition.example'
ROSTER=(--to "$R/missions.example.csv" --join "$R/states-parties.csv")
draft_original asp-session asp

# Words of a text, one a line: whitespace-separated, list bullets dropped.
words() { tr -s ' \t\n\f' '\n\n\n\n' | grep -v -x -e '' -e '-' -e '•' -e '–'; }
# The text/plain part of the message preview prints for one key.
text_part() { # appeal key
	"$DEMARCHE" preview "$1" "${ROSTER[@]}" --only "$2" 2>/dev/null | python3 -c '
import email, sys
m = email.message_from_binary_file(sys.stdin.buffer)
for p in m.walk():
    if p.get_content_type() == "text/plain":
        sys.stdout.write(p.get_payload(decode=True).decode()); break'
}
# 1 when every line of file $1 comes in file $2 in the same order (a subsequence).
in_order() {
	python3 - "$1" "$2" <<'PY'
import sys
want = open(sys.argv[1], encoding="utf-8").read().split("\n")
have = iter(open(sys.argv[2], encoding="utf-8").read().split("\n"))
for i, w in enumerate(want):
    if w and not any(h == w for h in have):
        sys.exit(f"word {i} '{w}' missing or out of order")
PY
}

# 1. en, fr and es rows: the PDF holds the text part's words, in order, and little else.
for key in KEN BEL ARG; do
	"$DEMARCHE" letter asp "${ROSTER[@]}" --only "$key" -o "$key.pdf" 2>err.txt ||
		fail "letter $key: $(cat err.txt)"
	text_part asp "$key" | words >"$key.want"
	[ "$(wc -l <"$key.want")" -gt 300 ] || fail "$key: the text part is too short"
	pdftotext -enc UTF-8 "$key.pdf" - | words >"$key.have"
	in_order "$key.want" "$key.have" || fail "$key: the PDF lacks the text part's words"
	extra=$(($(wc -l <"$key.have") - $(wc -l <"$key.want")))
	[ "$extra" -lt 40 ] || fail "$key: $extra words more than the text part"
	pdffonts "$key.pdf" | awk 'NR > 2 && $(NF-4) != "yes" { bad = 1 } END { exit bad }' ||
		fail "$key: a font is not embedded: $(pdffonts "$key.pdf")"
	[ "$(pdffonts "$key.pdf" | awk 'NR > 2' | wc -l)" -ge 1 ] || fail "$key: no font"
	qpdf --check "$key.pdf" >qpdf.txt 2>&1 || fail "$key: qpdf --check: $(cat qpdf.txt)"
done
grep -q -x "Excellence," BEL.have || fail "fr: no salutation 'Excellence,' in the PDF"
grep -q -x -e enero -e febrero -e marzo -e abril -e mayo -e junio -e julio -e agosto \
	-e septiembre -e octubre -e noviembre -e diciembre ARG.have ||
	fail "es: the date line is not in Spanish"

# 2. pdfinfo: A4, the metadata, the dates of the sending day.
pdfinfo KEN.pdf >info.txt
grep -q "^Page size: .*(A4)" info.txt || fail "not A4: $(grep Page info.txt)"
grep -q "^Title: *Priorities for the 22nd session" info.txt || fail "Title: $(cat info.txt)"
grep -q "^Subject: *22nd session" info.txt || fail "Subject: $(cat info.txt)"
grep -q "^Keywords: *asp22-priorities, KEN, en" info.txt || fail "Keywords: $(cat info.txt)"
grep -q "^Author: *Coalition for the International Criminal Court" info.txt ||
	fail "Author: $(cat info.txt)"
grep -q "^CreationDate: .*Nov 20 00:00:00 2025" info.txt || fail "date: $(cat info.txt)"
grep -q "^Pages: *[2-9]" info.txt || fail "the asp letter fits one page?"
pdftotext -f 2 -l 2 KEN.pdf - | grep -q -x "2/[0-9]" || fail "no page number 2/N on page 2"
pdftotext -f 1 -l 1 KEN.pdf - | grep -q -x "1/[0-9]" && fail "a page number on page 1"

# 3. The same letter twice: the same bytes.
"$DEMARCHE" letter asp "${ROSTER[@]}" --only KEN -o again.pdf || fail "second render"
cmp -s KEN.pdf again.pdf || fail "two renders of one letter differ"

# preview --format pdf: one PDF per mission, the same bytes as demarche letter's.
"$DEMARCHE" preview asp "${ROSTER[@]}" --only KEN,BEL,ARG --format pdf --out pdfs 2>err.txt ||
	fail "preview --format pdf: $(cat err.txt)"
[ "$(ls pdfs | wc -l)" = 3 ] || fail "preview --format pdf wrote $(ls pdfs)"
cmp -s pdfs/asp22-priorities-KEN.pdf KEN.pdf || fail "preview's PDF is not letter's"

# 4. The logo: red where the letterhead puts it (top left, inside the 25 mm margins), the
#    margin above it white. pdftoppm at 72 dpi: one pixel a point.
pdftoppm -r 72 -f 1 -l 1 KEN.pdf page || fail "pdftoppm"
python3 - page-1.ppm <<'PY' || fail "logo pixels"
import sys
data = open(sys.argv[1], "rb").read()
parts = data.split(maxsplit=4)  # P6 W H MAX pixels
assert parts[0] == b"P6", parts[0]
w, h, px = int(parts[1]), int(parts[2]), parts[4]
def rgb(x, y):
    i = 3 * (y * w + x)
    return tuple(px[i:i + 3])
m = round(25 * 72 / 25.4)  # 71 points
for x, y in [(m + 5, m + 5), (m + 60, m + 25), (m + 100, m + 45)]:
    r, g, b = rgb(x, y)
    if not (r > 200 and g < 60 and b < 60):
        sys.exit(f"({x},{y}) is {r},{g},{b}, not the logo's red")
for x, y in [(m - 20, m - 20), (m + 5, m - 10), (m + 150, m + 25)]:
    if rgb(x, y) != (255, 255, 255):
        sys.exit(f"({x},{y}) is {rgb(x, y)}, not white")
PY

# 5. A long name and a joint letter of 118 signatories: the closing and every signatory on
#    one page.
python3 - >signon.csv <<'PY'
print("organisation,country")
for i in range(118):
    print(f"Organisation number {i:03d} for Justice,Country {i}")
PY
"$DEMARCHE" draft joint-letter --set year=2026 --signatories signon.csv -o joint >/dev/null \
	2>err.txt || fail "draft joint: $(cat err.txt)"
python3 - "$R/missions.example.csv" >long.csv <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1], encoding="utf-8")))
w = csv.DictWriter(sys.stdout, fieldnames=rows[0].keys(), lineterminator="\n")
w.writeheader()
for r in rows:
    if r["iso3"] == "KEN":
        r["name"] = "Ambassador " + " ".join(["Extraordinarily-Long-Name"] * 12)
    w.writerow(r)
PY
"$DEMARCHE" letter joint --to long.csv --join "$R/states-parties.csv" --only KEN -o joint.pdf \
	2>err.txt || fail "letter joint: $(cat err.txt)"
pages=$(pdfinfo joint.pdf | awk '/^Pages:/ { print $2 }')
[ "$pages" -ge 2 ] || fail "the joint letter has $pages page(s)"
sigpage=
for p in $(seq 1 "$pages"); do
	pdftotext -f "$p" -l "$p" joint.pdf "p$p.txt"
	grep -q "^Sincerely,$" "p$p.txt" && sigpage=$p
done
[ -n "$sigpage" ] || fail "no closing in the joint letter"
[ "$(grep -o "Organisation number [0-9]*" "p$sigpage.txt" | sort -u | wc -l)" = 118 ] ||
	fail "page $sigpage has $(grep -c "Organisation number" "p$sigpage.txt") of 118 signatories"
[ "$(cat p*.txt | grep -c "Organisation number [0-9]")" = 118 ] || fail "signatories elsewhere"
[ "$(pdftotext joint.pdf - | grep -o "Long-Name" | wc -l)" = 12 ] ||
	fail "the long name is not whole in the letter"

# 6. Form: pdf to smtp-sink: the cover note, one application/pdf part, its SHA-256 in the
#    ledger.
cp -r asp aspp
for f in aspp/*.md; do sed -i '1a Form: pdf' "$f"; done
PORT=$(free_port)
CLEANUP+=("sink_stop $WORK/sink")
sink_start "$WORK/sink" "$PORT" || fail "smtp-sink"
"$DEMARCHE" --store ledger.db send aspp "${ROSTER[@]}" --only KEN,BEL,ARG \
	--via "smtp://127.0.0.1:$PORT" --yes >out.txt 2>err.txt
expect_rc 0 $? "send Form: pdf: $(cat err.txt)"
sink_stop "$WORK/sink"
[ "$(sink_count "$WORK/sink")" = 3 ] || fail "$(sink_count "$WORK/sink") messages, expected 3"
sqlite3 ledger.db "select d.key, e.detail from events e join deliveries d on d.id = e.delivery
	where e.kind = 'document'" >docs.txt
python3 - "$WORK/sink/dump" docs.txt <<'PY' || fail "the messages of Form: pdf"
import email, hashlib, os, re, sys
ledger = {}
for line in open(sys.argv[2]):
    key, detail = line.rstrip("\n").split("|", 1)
    ledger.setdefault(key, set()).add(re.search(r"sha256=([0-9a-f]{64})", detail).group(1))
for name in os.listdir(sys.argv[1]):
    raw = open(os.path.join(sys.argv[1], name), "rb").read()
    msg = email.message_from_bytes(re.sub(rb"^X-(Mail|Rcpt)-Args:.*\n", b"", raw, flags=re.M))
    key = msg["Message-ID"].split(".")[1]
    pdfs = [p for p in msg.walk() if p.get_content_type() == "application/pdf"]
    if len(pdfs) != 1:
        sys.exit(f"{key}: {len(pdfs)} PDF parts")
    data = pdfs[0].get_payload(decode=True)
    if not data.startswith(b"%PDF-"):
        sys.exit(f"{key}: the part is not a PDF")
    if pdfs[0].get_filename() != f"asp22-priorities-{key}.pdf":
        sys.exit(f"{key}: file name {pdfs[0].get_filename()}")
    if ledger.get(key) != {hashlib.sha256(data).hexdigest()}:
        sys.exit(f"{key}: the PDF's SHA-256 is not the ledger's {ledger.get(key)}")
    text = [p for p in msg.walk() if p.get_content_type() == "text/plain"][0]
    body = text.get_payload(decode=True).decode()
    if f"asp22-priorities-{key}.pdf" not in body or len(body) > 1500:
        sys.exit(f"{key}: the text part is not the cover note: {body[:200]}")
    if "Twenty-five years" in body or "Vingt-cinq" in body:
        sys.exit(f"{key}: the letter itself is in the body")
PY
"$DEMARCHE" --store ledger.db verify >/dev/null 2>err.txt || fail "verify: $(cat err.txt)"
# audit --columns document: the SHA-256 each delivery got, as the ledger's events say.
"$DEMARCHE" --store ledger.db audit asp22-priorities --columns key,document --format csv \
	>audit.csv || fail "audit --columns document"
ken=$(tr -d '\r' <audit.csv | awk -F, '$1 == "KEN" { print $2 }')
grep -q "^KEN|sha256=$ken " docs.txt || fail "audit's document for KEN ($ken) is not the ledger's"
"$DEMARCHE" --store ledger.db audit asp22-priorities --format csv | head -1 | grep -q document &&
	fail "the document column shows without --columns (older outputs change)"

# 7. A Form that is not email, pdf or both: exit 65 naming the file and line; a bad
#    [letterhead]: exit 78 naming the key.
cp -r asp fax
sed -i '1a Form: fax' fax/en.md
"$DEMARCHE" check fax "${ROSTER[@]}" >/dev/null 2>err.txt
expect_rc 65 $? "Form: fax"
grep -q "fax/en.md:2: .*Form: 'fax'" err.txt || fail "Form: fax: $(cat err.txt)"
test_ini '[letterhead]' 'paper = A5'
"$DEMARCHE" letter asp "${ROSTER[@]}" --only KEN -o x.pdf 2>err.txt
expect_rc 78 $? "paper = A5"
grep -q "paper 'A5'" err.txt || fail "the error does not name the paper: $(cat err.txt)"
[ -e x.pdf ] && fail "a PDF was written despite the error"
# A misspelt key is an error too (it once vanished silently), with the key meant.
test_ini '[letterhead]' 'fotter = Coalition for the ICC'
"$DEMARCHE" letter asp "${ROSTER[@]}" --only KEN -o x.pdf 2>err.txt
expect_rc 78 $? "fotter"
grep -q "unknown key 'fotter' in section \[letterhead\]; fix: write 'footer'" err.txt ||
	fail "the misspelt key is not named: $(cat err.txt)"
grep -q "signature.NAME" err.txt || fail "signature.NAME is not listed: $(cat err.txt)"
[ -e x.pdf ] && fail "a PDF was written despite the misspelt key"
pass
