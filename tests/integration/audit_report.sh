#!/usr/bin/env bash
# Issue 19: audit for coordinators. On a ledger with sent, deferred, failed, unknown, bounced
# and replied missions across two campaigns and an amend (test_audit --make-fixture), the
# per-mission counts, reasons and groups are right in table, CSV, JSON, HTML and XLSX; the
# table fits 100 columns and pages when longer than the screen; the HTML report loads in
# headless Chromium with no script and no external request, its DOM holding the numbers per
# group; a hostile roster value (<script>, =HYPERLINK() is inert in HTML and text in XLSX.
set -u
. "$(dirname "$0")/lib.bash"
"$BUILDDIR/tests/test_audit" --make-fixture "$WORK" || fail "test_audit --make-fixture"
chmod 600 ledger.db
export NO_COLOR=1
D() { "$DEMARCHE" --store ledger.db "$@"; }
R=(--to roster.csv --join sp.csv)
G=asp_regional_group
SHORT_V2=aaaaaaaa # the amended version's hash, short

# --- the summary counts missions (8 in the roster), addresses as detail --------------------
D audit --format csv "${R[@]}" >s.csv || fail "audit --to: exit $?"
grep -q $'^june,June appeal <b>,.*,8,2,1,5,8,0,0,2,1,2,1,1,1,aaaa' s.csv ||
	fail "june's summary (missions 8, received 2, partial 1, missing 5): $(cat s.csv)"
D audit --format csv >s0.csv || fail "audit"
grep -q $'^june,.*,6,2,1,3,8,' s0.csv || fail "without a roster, june has 6 missions: $(cat s0.csv)"

# by group: per-group counts and a total row per campaign
D audit --summary "${R[@]}" --by $G --format csv >g.csv || fail "audit --by: exit $?"
python3 - <<'EOF' || fail "audit --by counts: $(cat g.csv)"
import csv
rows = {(r["campaign"], r["asp_regional_group"]): r for r in csv.DictReader(open("g.csv", newline=""))}
def n(c, g, k): return int(rows[(c, g)][k])
assert (n("june", "African States", "missions"), n("june", "African States", "received"),
        n("june", "African States", "missing")) == (2, 1, 1)
assert n("june", "Latin American and Caribbean States", "partial") == 1
assert (n("june", "Western European and other States", "missions"),
        n("june", "Western European and other States", "received")) == (3, 1)
assert (n("june", "total", "missions"), n("june", "total", "received"),
        n("june", "total", "partial"), n("june", "total", "missing")) == (8, 2, 1, 5)
assert n("july", "total", "received") == 2 and n("july", "total", "missing") == 6
# the hostile group is one cell, kept exact (it does not start a formula)
assert ("june", '<b>Other</b> =HYPERLINK("x")') in rows, list(rows)
EOF

# --- --missing: reasons, last reply, groups, totals ----------------------------------------
D audit june --missing "${R[@]}" --by $G --format csv >m.csv
expect_rc 1 $? "audit --missing with missions missing"
python3 - <<'EOF' || fail "--missing reasons: $(cat m.csv)"
import csv
rows = {r["key"]: r for r in csv.DictReader(open("m.csv", newline=""))}
assert set(rows) == {"SEN", "BRA", "DEU", "JPN", "NLD", "EVL"}, rows.keys()
want = {"SEN": "bounced", "BRA": "deferred", "DEU": "failed", "JPN": "in doubt",
        "NLD": "never tried", "EVL": "never tried"}
for k, r in want.items():
    assert rows[k]["reason"] == r, (k, rows[k])
assert rows["BRA"]["mission"] == "partial" and rows["BRA"]["accepted"] == "1/2", rows["BRA"]
assert rows["BRA"]["last_reply"] == "451 4.7.1 Try again later"
assert rows["DEU"]["last_code"] == "550" and "rejected" in rows["DEU"]["last_reply"]
assert rows["SEN"]["asp_regional_group"] == "African States"
# grouped: rows come by group
groups = [r["asp_regional_group"] for r in csv.DictReader(open("m.csv", newline=""))]
assert groups == sorted(groups), groups
EOF
D audit june --missing "${R[@]}" --by $G >m.txt
grep -q '^Western European and other States  *DEU  .*failed' m.txt || fail "table: $(cat m.txt)"
grep -q '^total  *6  *8$' m.txt || fail "--missing --by: no totals row: $(cat m.txt)"
grep -q '^African States  *1  *2$' m.txt || fail "--missing --by: per-group count: $(cat m.txt)"
D audit june --missing "${R[@]}" --format json >m.json
python3 -c '
import json, sys
d = {r["key"]: r for r in json.load(open("m.json"))}
assert d["JPN"]["reason"] == "in doubt" and d["JPN"]["last_code"] is None, d["JPN"]
assert d["EVL"]["state_party"].startswith("=HYPERLINK(")
' || fail "--missing JSON: $(cat m.json)"

# --- --columns chooses (roster columns too); an unknown one is refused -------------------
D audit june --missing "${R[@]}" --columns key,reason,$G --format csv >c.csv
[ "$(head -1 c.csv)" = $'key,reason,asp_regional_group\r' ] || fail "--columns: $(head -1 c.csv)"
grep -q $'^JPN,in doubt,Asia-Pacific States\r$' c.csv || fail "--columns rows: $(cat c.csv)"
D audit june --columns key,nope >/dev/null 2>err.txt
expect_rc 64 $? "--columns with an unknown column"
grep -q "no column 'nope'" err.txt || fail "--columns error: $(cat err.txt)"
D audit june --missing "${R[@]}" --by nope >/dev/null 2>err.txt
expect_rc 64 $? "--by an unknown column"

# --- --matrix: state names, groups, totals per campaign and per group --------------------
D audit --matrix "${R[@]}" --by $G --format csv >x.csv || fail "--matrix: exit $?"
# grouped: the group first, each group's rows then its total, the total of all last
grep -q $'^African States,KEN,Kenya,sent,sent\r$' x.csv || fail "matrix KEN: $(cat x.csv)"
grep -q $'^Latin American and Caribbean States,BRA,Brazil,partial,\r$' x.csv ||
	fail "matrix BRA (partial): $(cat x.csv)"
grep -A1 '^African States,SEN' x.csv | grep -q $'^African States,total,,1/2,1/2\r$' ||
	fail "matrix group total: $(cat x.csv)"
[ "$(tail -1 x.csv)" = $',total,,2/8,2/8\r' ] || fail "matrix total: $(cat x.csv)"

# --- deliveries: the version each was made for (from its Message-ID) ----------------------
# KEN, SEN and BRA went before the amend; FRA, DEU and JPN after it
D audit june >d.txt
expect_rc 1 $? "audit june"
[ "$(grep -c " $SHORT_V2\$" d.txt)" = 3 ] || fail "version column: $(cat d.txt)"
[ "$(grep -c " earlier\$" d.txt)" = 5 ] || fail "version column (earlier): $(cat d.txt)"
grep -q '^DEU .* aaaaaaaa$' d.txt && grep -q '^KEN .*ken@.* earlier$' d.txt ||
	fail "versions per mission: $(cat d.txt)"
D audit june --wide | grep -q 'message_id' || fail "--wide shows the Message-ID"
D audit june --format csv >d.csv
grep -q $'^FRA,.*,aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa,current\r$' d.csv ||
	fail "CSV carries the full hash: $(cat d.csv)"
grep -q $'^SEN,.*,,earlier\r$' d.csv || fail "CSV: SEN's version is earlier: $(cat d.csv)"
for f in d.txt m.txt; do
	python3 -c '
import sys
for l in open(sys.argv[1], encoding="utf-8"):
    assert len(l.rstrip("\n")) <= 100, l  # characters: "…" is one column
' $f || fail "$f is wider than 100 columns: $(cat $f)"
done

# --- the pager: only when longer than the screen ----------------------------------------
if command -v script >/dev/null; then
	LINES=4 PAGER='sed s/^/PAGED:/' script -qec "'$DEMARCHE' --store ledger.db audit june" \
		/dev/null >tty.txt
	grep -q '^PAGED:KEN' tty.txt || fail "a long table did not go through \$PAGER: $(cat -v tty.txt)"
	LINES=100 PAGER='sed s/^/PAGED:/' script -qec "'$DEMARCHE' --store ledger.db audit" \
		/dev/null >tty.txt
	grep -q 'june' tty.txt && ! grep -q PAGED tty.txt || fail "a short table was paged: $(cat -v tty.txt)"
	LINES=4 PAGER='sed s/^/PAGED:/' script -qec "'$DEMARCHE' --store ledger.db audit june --no-pager" \
		/dev/null >tty.txt
	grep -q PAGED tty.txt && fail "--no-pager paged"
fi

# --- HTML: self-contained, escaped, read back by a real browser -------------------------
D audit june --format html -o report.html "${R[@]}" --by $G || fail "html: exit $?"
grep -qi '<script' report.html && fail "a <script> in the report"
grep -qiE '(src|href)=|url\(|@import' report.html && fail "the report refers to something outside it"
grep -qF '&lt;script&gt;alert(1)&lt;/script&gt;' report.html || fail "the hostile name not escaped"
grep -qF '\x1b[2J\u202e' report.html || fail "ESC and U+202E not made visible"
grep -qF "id=\"kpi-missing\">5<" report.html || fail "KPI: $(grep kpi report.html)"
command -v chromium >/dev/null || fail "no chromium (scripts/setup installs it)"
# Nothing may leave the machine: no name resolves, every connection goes to a dead local
# proxy, Chromium's own background services are off (those it still tries are listed in the
# net log below, and fail here).
CH=(chromium --headless --no-sandbox --disable-gpu --user-data-dir="$WORK/chrome"
	--no-first-run --enable-logging=stderr --v=0 --disable-background-networking
	--disable-component-update --disable-sync --disable-default-apps --disable-extensions
	--no-pings --disable-domain-reliability --disable-breakpad
	--host-resolver-rules="MAP * ~NOTFOUND" --proxy-server=http://127.0.0.1:9
	--log-net-log="$WORK/net.json")
timeout 120 "${CH[@]}" --dump-dom "file://$WORK/report.html" >dom.html 2>chrome.log ||
	fail "chromium --dump-dom: $(tail -5 chrome.log)"
grep -q 'CONSOLE' chrome.log && fail "console messages: $(grep CONSOLE chrome.log)"
# the page asked for nothing: any URL in the net log is one of Chromium's own services
python3 - <<'EOF' || fail "the report made a network request"
import re
urls = set(re.findall(r'"url":"([a-z-]+://[^"/]*)', open("net.json").read()))
own = ("google.com", "googleapis.com", "gvt1.com", "gstatic.com")
page = [u for u in urls if not u.startswith("file:") and
        not any(u.split("://")[1].split(":")[0].endswith(h) for h in own)]
assert not page, page
EOF
python3 - <<'EOF' || fail "the DOM Chromium built is not what it should be"
import html.parser
class P(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(); self.rows = []; self.row = None; self.cell = None
        self.tags = set(); self.ids = {}; self.cur_id = None
    def handle_starttag(self, t, a):
        self.tags.add(t); a = dict(a)
        if t == "tr": self.row = [] if a.get("class") in ("group", "total", "missing") else None
        if t == "td" and self.row is not None: self.cell = ""
        self.cur_id = a.get("id")
    def handle_data(self, d):
        if self.cell is not None: self.cell += d
        if self.cur_id: self.ids[self.cur_id] = self.ids.get(self.cur_id, "") + d
    def handle_endtag(self, t):
        if t == "td" and self.row is not None and self.cell is not None:
            self.row.append(self.cell.strip()); self.cell = None
        if t == "tr" and self.row: self.rows.append(self.row); self.row = None
        self.cur_id = None
p = P(); p.feed(open("dom.html", encoding="utf-8").read())
assert "script" not in p.tags and "iframe" not in p.tags and "img" not in p.tags, p.tags
assert p.ids["kpi-missions"] == "8" and p.ids["kpi-received"] == "2", p.ids
assert p.ids["kpi-partial"] == "1" and p.ids["kpi-missing"] == "5", p.ids
groups = {r[0]: r[1:] for r in p.rows if len(r) == 6}
assert groups["African States"] == ["2", "1", "0", "1", "3"], groups
assert groups["Western European and other States"] == ["3", "1", "0", "2", "2"], groups
assert groups["total"] == ["8", "2", "1", "5", "8"], groups
text = open("dom.html", encoding="utf-8").read()
assert "<script>alert(1)</script>" not in text.replace("&lt;", "<") or "&lt;script&gt;" in text
missing = [r for r in p.rows if len(r) == 7]
assert any(r[0] == "EVL" and r[1].startswith("=HYPERLINK(") and "<script>" in r[1] for r in missing), missing
assert any(r[0] == "JPN" and r[3] == "in doubt" for r in missing), missing
EOF
timeout 120 "${CH[@]}" --screenshot="$WORK/shot.png" --window-size=900,2400 \
	"file://$WORK/report.html" >/dev/null 2>>chrome.log || fail "chromium --screenshot"
[ "$(stat -c %s shot.png)" -gt 20000 ] || fail "the screenshot is (nearly) empty"

# --- XLSX: the sheets, frozen headers, filters, dates, text never a formula ----------------
D audit june --format xlsx -o r.xlsx "${R[@]}" --by $G || fail "xlsx: exit $?"
D audit --format xlsx >/dev/null 2>err.txt
expect_rc 64 $? "--format xlsx without -o"
python3 - <<'EOF' || fail "the spreadsheet is not what it should be"
import re, zipfile
z = zipfile.ZipFile("r.xlsx")
wb = z.read("xl/workbook.xml").decode()
names = re.findall(r'<sheet name="([^"]+)"', wb)
assert names == ["Summary", "By group", "Missing", "Deliveries", "Matrix"], names
sheets = {n: z.read(f"xl/worksheets/sheet{i + 1}.xml").decode() for i, n in enumerate(names)}
for n, x in sheets.items():
    assert "<f>" not in x and "<f " not in x, n  # no formula anywhere
    assert 'state="frozen"' in x, n
    assert "<autoFilter" in x, n
def texts(x): return re.findall(r'<c r="([A-Z]+)(\d+)"[^>]*t="inlineStr"[^>]*><is><t[^>]*>(.*?)</t>', x, re.S)
miss = texts(sheets["Missing"])
assert any(v.startswith("=HYPERLINK(") for _, _, v in miss), miss
assert sum(1 for c, _, v in miss if c == "F" and v in ("bounced", "deferred", "failed", "in doubt", "never tried")) == 6, miss
# times are dates: a number with a date style in the Deliveries' time column (E)
assert re.search(r'<c r="E2" s="\d+"><v>\d+\.\d+</v>', sheets["Deliveries"]), sheets["Deliveries"][:2000]
bg = texts(sheets["By group"])
assert any(v == "African States" for _, _, v in bg)
EOF
if /usr/bin/python3 -c 'import openpyxl' 2>/dev/null; then
	/usr/bin/python3 - <<'EOF' || fail "openpyxl reads the spreadsheet differently"
import openpyxl, datetime
wb = openpyxl.load_workbook("r.xlsx")
m = list(wb["Missing"].iter_rows(values_only=True))
h = m[0]
rows = {r[h.index("key")]: r for r in m[1:]}
evl = rows["EVL"][h.index("state_party")]
assert isinstance(evl, str) and evl.startswith("=HYPERLINK("), evl
assert wb["Missing"].cell(row=[r[1] for r in m].index("EVL") + 1, column=3).data_type == "s"
assert rows["DEU"][h.index("reason")] == "failed"
d = list(wb["Deliveries"].iter_rows(values_only=True))
assert isinstance(d[1][4], datetime.datetime), d[1]
assert wb["Summary"].freeze_panes == "A2" and wb["Summary"].auto_filter.ref
EOF
fi
pass
