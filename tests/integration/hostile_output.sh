#!/usr/bin/env bash
# Issue 14, point 7: hostile text from a roster, an SMTP server's reply and a DSN's
# Diagnostic-Code (ESC sequences, BEL, U+202E, a byte that is not UTF-8, a leading
# =HYPERLINK( ) is shown escaped by `audit` (table, on a pipe and on a terminal), neutralised
# in CSV and exact in JSON; `bounces` prints a message's text escaped; a reply quoting a
# mission's Message-ID from a stranger's domain does not make it replied (listed and
# recorded as reply-unmatched), one from the mission's domain or its roster reply_domains does.
set -u
. "$(dirname "$0")/lib.bash"
. "$(dirname "$0")/servers/dovecot.bash"
command -v sqlite3 >/dev/null || fail "no sqlite3 command-line tool (Debian package sqlite3)"

export DEMARCHE_TEMPLATES="$SRCDIR/templates" NO_COLOR=1
draft_original asp-session
CAMPAIGN=$(sed -n 's/^Campaign: //p' appeal/en.md)
[ -n "$CAMPAIGN" ] || fail "no campaign in the drafted appeal"
D() { "$DEMARCHE" --store ledger.db "$@"; }
Q() { sqlite3 ledger.db "$1"; }

# The roster: four missions; DEU's state name is a formula with ESC, BEL and U+202E, FRA
# may also reply from its ministry's domain.
R="$SRCDIR/recipients/missions.example.csv"
{
	head -1 "$R" | tr -d '\r' | sed 's/$/,reply_domains/'
	grep -E '^(KEN|DEU|FRA|NLD),' "$R" | tr -d '\r' | sed 's/$/,/'
} >plain.csv
python3 - <<'EOF' || fail "roster"
import csv
rows = list(csv.reader(open("plain.csv")))
h = rows[0]
for r in rows[1:]:
    if r[0] == "DEU":
        r[h.index("state")] = '=HYPERLINK("http://evil.example","\x1b[31mGermany\x07\u202e")'
    if r[0] == "FRA":
        r[h.index("reply_domains")] = "@Diplomatie.Gouv.example"
csv.writer(open("roster.csv", "w", newline="")).writerows(rows)
EOF

# An SMTP server whose every final reply carries a screen clear, a window title, BEL and
# U+202E (smtp-sink's replies cannot be chosen).
cat >smtpd.py <<'EOF'
import socketserver, sys
HOSTILE = "250 2.0.0 Ok \x1b[2J\x1b]0;pwned\x07 \u202egnp.exe"
class H(socketserver.StreamRequestHandler):
    def say(self, line):
        self.wfile.write((line + "\r\n").encode("utf-8"))
    def handle(self):
        self.say("220 hostile.example ESMTP")
        data = False
        for line in self.rfile:
            if data:
                if line.rstrip(b"\r\n") == b".":
                    data = False
                    self.say(HOSTILE)
                continue
            cmd = line.decode("latin-1").strip().upper()
            verb = cmd.split(" ")[0].split(":")[0]
            if verb == "EHLO":
                self.say("250-hostile.example"); self.say("250-8BITMIME"); self.say("250 SMTPUTF8")
            elif verb in ("HELO", "MAIL", "RCPT", "RSET", "NOOP"):
                self.say("250 2.1.0 Ok")
            elif verb == "DATA":
                data = True
                self.say("354 go ahead")
            elif verb == "QUIT":
                self.say("221 bye")
                return
            else:
                self.say("502 5.5.2 what")
class S(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
srv = S(("127.0.0.1", int(sys.argv[1])), H)
open(sys.argv[2], "w").write("ready\n")
srv.serve_forever()
EOF
PORT=$(free_port)
python3 smtpd.py "$PORT" smtpd.ready 2>smtpd.err &
SMTPD=$!
CLEANUP+=("kill $SMTPD" "dovecot_stop $WORK/dovecot")
wait_port "$PORT" || fail "the hostile SMTP server: $(cat smtpd.err)"
dovecot_start "$WORK/dovecot" appeals 'imap secret' || fail "dovecot"
export DEMARCHE_IMAP_PASSWORD='imap secret'
test_ini '[imap]' "url = imap://127.0.0.1:$DOVECOT_IMAP_PORT" 'user = appeals'

D send appeal --to roster.csv --via "smtp://127.0.0.1:$PORT" --yes >out.txt 2>err.txt ||
	fail "send: $(cat out.txt err.txt)"
kill "$SMTPD"
[ "$(Q "select count(*) from deliveries where state='sent'")" = 6 ] ||
	fail "send: $(Q "select key, address, state from deliveries")"
Q "select last_reply from deliveries where key='KEN' limit 1" | grep -q "$(printf '\033')\[2J" ||
	fail "the hostile SMTP reply was not stored as received"

# raw bytes that must never reach a terminal
ESC=$(printf '\033') BEL=$(printf '\007') RLO=$(printf '\342\200\256') FF=$(printf '\377')
raw_free() { # file what: none of ESC, BEL, U+202E, a 0xff byte
	! LC_ALL=C grep -q "$ESC\|$BEL\|$RLO\|$FF" "$1" || fail "$2: raw control/bidi bytes: $(cat -v "$1")"
}

# --- DSN with a hostile Diagnostic-Code, and replies, into Dovecot ---------------------------
mid() { Q "select message_id from deliveries where key='$1' order by id limit 1" | tr -d '<>'; }
addr() { Q "select address from deliveries where key='$1' order by id limit 1"; }
state() { Q "select group_concat(distinct state) from deliveries where key='$1'"; }
msg() { # file folder: into that folder of the IMAP account
	dovecot_deliver "$WORK/dovecot" "$1" "${2:-INBOX}" || fail "deliver $1"
}
{
	printf 'Date: Mon, 24 Nov 2025 10:00:09 +0100\nFrom: MAILER-DAEMON@mx.coalition.example\n'
	printf 'Subject: Undelivered Mail Returned to Sender\nTo: appeals@coalition.example\n'
	printf 'Message-Id: <dsn.1@mx.coalition.example>\nMIME-Version: 1.0\n'
	printf 'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\n\n'
	printf -- '--B\nContent-Type: text/plain\n\nYour message could not be delivered.\n\n'
	printf -- '--B\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.coalition.example\n\n'
	printf 'Final-Recipient: rfc822; %s\nAction: failed\nStatus: 5.1.1\n' "$(addr DEU)"
	printf 'Diagnostic-Code: smtp; =HYPERLINK("http://evil.example","\033[8m\007\342\200\256 550 \377")\n\n'
	printf -- '--B\nContent-Type: text/rfc822-headers\n\nMessage-ID: <%s>\nX-Demarche-Campaign: %s\n\n' \
		"$(mid DEU)" "$CAMPAIGN"
	printf -- '--B--\n'
} >dsn-deu.eml
reply() { # file from in-reply-to [subject]
	{
		printf 'Date: Thu, 27 Nov 2025 16:45:12 +0300\nFrom: %s\nTo: appeals@coalition.example\n' "$2"
		printf 'Subject: %s\nMessage-ID: <%s@replies.example>\n' "${4:-Re: priorities}" "$1"
		printf 'In-Reply-To: <%s>\nReferences: <%s>\nMIME-Version: 1.0\n' "$3" "$3"
		printf 'Content-Type: text/plain; charset=utf-8\n\nWe acknowledge receipt.\n'
	} >"$1.eml"
}
# a stranger quoting KEN's Message-ID, with a look-alike domain and a hostile Subject
reply stranger-ken '"Mission of Kenya" <registry@missions.example.attacker.example>' "$(mid KEN)" \
	'=?UTF-8?Q?Re=3A_=1B]0;owned=07_=E2=80=AE?='
reply stranger2-ken 'x@attacker.example' "$(mid KEN)"
reply mission-nld 'Registry <registry@MISSIONS.example>' "$(mid NLD)"
reply ministry-fra 'Cabinet <cabinet@diplomatie.gouv.example>' "$(mid FRA)"
for f in dsn-deu stranger-ken stranger2-ken mission-nld ministry-fra; do msg "$f.eml"; done

D bounces >out.txt 2>err.txt
expect_rc 0 $? "bounces: $(cat err.txt)"
grep -q "^5 processed, 1 bounced, 0 delayed, 1 replied, 0 auto-replies, 3 unmatched, 0 malformed$" \
	out.txt || fail "summary: $(cat out.txt err.txt)"
raw_free out.txt "bounces' output"
raw_free err.txt "bounces' errors"
grep -q 'Subject "Re: \\x1b\]0;owned\\x07 \\u202e"' out.txt || fail "subject not escaped: $(cat out.txt)"
grep -q "^unmatched: UID [0-9]*, a reply quoting our message to .*@missions.example from a domain that is not the mission's (missions.example): From registry@missions.example.attacker.example" out.txt ||
	fail "the stranger's reply is not listed: $(cat out.txt)"
grep -q "^unmatched: UID [0-9]*, .*(missions.example): From cabinet@diplomatie.gouv.example" out.txt ||
	fail "FRA's ministry without --to is not listed: $(cat out.txt)"
[ "$(state KEN)" = sent ] || fail "a stranger's reply changed KEN: $(state KEN)"
[ "$(state NLD)" = replied ] || fail "a reply from the mission's domain did not count: $(state NLD)"
[ "$(state FRA)" = sent ] || fail "FRA changed without its reply_domains: $(state FRA)"
[ "$(state DEU)" = bounced ] || fail "the hostile DSN did not bounce DEU: $(state DEU)"
[ "$(Q "select count(*) from events where kind='reply-unmatched'")" = 3 ] ||
	fail "reply-unmatched events: $(Q "select kind, detail from events where kind like 'reply%'")"
Q "select detail from events where kind='reply-unmatched'" | grep -q "x@attacker.example" ||
	fail "the unmatched reply's detail does not name its sender"

# with the roster's reply_domains, FRA's ministry counts (read from another folder); a bad
# reply_domains value is refused before anything is read
cp ministry-fra.eml ministry-fra2.eml
sed -i 's/<ministry-fra@/<ministry-fra2@/' ministry-fra2.eml
msg ministry-fra2.eml Replies
sed "s/@Diplomatie.Gouv.example/dipl${ESC}omatie.example/" roster.csv >bad.csv
n=$(Q "select count(*) from events")
D bounces --folder Replies --to bad.csv >out.txt 2>err.txt
expect_rc 65 $? "bounces with a bad reply_domains"
grep -q "bad.csv:.*reply_domains.*not a domain name" err.txt || fail "bad reply_domains: $(cat err.txt)"
raw_free err.txt "the reply_domains error"
[ "$(Q "select count(*) from events")" = "$n" ] || fail "a bad roster recorded events"
D bounces --folder Replies --to roster.csv >out.txt 2>err.txt
expect_rc 0 $? "bounces --to: $(cat err.txt)"
grep -q "^1 processed, 0 bounced, 0 delayed, 1 replied" out.txt || fail "--to: $(cat out.txt)"
[ "$(state FRA)" = replied ] || fail "FRA's ministry (reply_domains) did not count: $(state FRA)"
D bounces --key iso3 >/dev/null 2>&1
expect_rc 64 $? "--key without --to"

# --- audit: table escaped and aligned, CSV neutralised, JSON exact --------------------------
D audit "$CAMPAIGN" --wide >table.txt
expect_rc 1 $? "audit (not all sent)"
raw_free table.txt "audit table"
grep -q '^DEU .*=HYPERLINK("http://evil.example","\\x1b\[8m\\x07\\u202e 550 \\xff")' table.txt ||
	fail "DEU's reply not escaped: $(cat -v table.txt)"
grep -q '^KEN .*250 2.0.0 Ok \\x1b\[2J\\x1b\]0;pwned\\x07 \\u202egnp.exe' table.txt ||
	fail "the SMTP reply not escaped: $(cat -v table.txt)"
aligned() { # table file: every message_id starts in the header's column
	python3 - "$1" <<'EOF'
import sys
lines = open(sys.argv[1], encoding="utf-8").read().replace("\r", "").splitlines()
lines = [l for l in lines if l.strip()]
col = lines[0].index("message_id")
for l in lines[1:]:
    assert l.find("<", col) == col and l[col - 2:col] == "  ", (col, l)
EOF
}
aligned table.txt || fail "audit table misaligned: $(cat table.txt)"
if command -v script >/dev/null; then
	# on a terminal (the widths are measured on escaped text there too)
	script -qec "'$DEMARCHE' --store ledger.db audit '$CAMPAIGN' --wide --no-pager" /dev/null >tty.txt
	raw_free tty.txt "audit on a terminal"
	grep -q 'pwned' tty.txt || fail "no table on the terminal: $(cat -v tty.txt)"
	aligned tty.txt || fail "audit table on a terminal misaligned: $(cat -v tty.txt)"
	script -qec "'$DEMARCHE' --store ledger.db audit '$CAMPAIGN' --format csv" /dev/null >ttycsv.txt
	raw_free ttycsv.txt "CSV on a terminal"
	grep -q '\\x1b\[2J' ttycsv.txt || fail "CSV on a terminal not escaped: $(cat -v ttycsv.txt)"
fi

D audit "$CAMPAIGN" --format csv >a.csv
D audit "$CAMPAIGN" --format json >a.json
Q "select key, state, address, updated, attempts, last_code, last_reply, message_id
	from deliveries order by key, address" >rows.txt
python3 - <<'EOF' || fail "CSV or JSON of the hostile values"
import csv, json
db = [l.split("|", 7) for l in open("rows.txt", "rb").read().decode("utf-8", "surrogateescape").splitlines()]
rows = list(csv.reader(open("a.csv", encoding="utf-8", errors="surrogateescape", newline="")))
assert rows[0] == ["key", "state", "address", "time", "attempts", "last_code", "last_reply", "message_id", "content_sha256", "version"], rows[0]
assert len(rows) == len(db) + 1, (len(rows), len(db))
for got, want in zip(rows[1:], db):
    for g, w in zip(got, want):
        # no cell a spreadsheet would read as a formula; the rest exact, ESC included
        assert not g[:1] or g[0] not in "=+-@\t\r", got
        if w[:1] and w[0] in "=+-@\t\r":
            assert g == "'" + w, (g, w)
        else:
            assert g == w, (g, w)
deu = [r for r in rows if r[0] == "DEU"][0]
assert deu[6].startswith("'=HYPERLINK("), deu
raw = open("a.csv", "rb").read()
assert b"\"'=HYPERLINK(\"\"http://evil.example\"\"," in raw, raw
assert b"\x1b[2J" in raw  # CSV into a file keeps the bytes: it is data

js = json.load(open("a.json", encoding="utf-8"))
assert len(js) == len(db)
for j, w in zip(js, db):
    assert j["key"] == w[0] and j["address"] == w[2] and j["message_id"] == w[7], j
    # exact, except each byte that is not UTF-8: U+FFFD (never null)
    want = w[6].encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    assert j["last_reply"] == want, (j["last_reply"], want)
assert [j for j in js if j["key"] == "DEU"][0]["last_reply"].endswith("550 \ufffd\")")
raw = open("a.json", "rb").read()
for b in (b"\x1b", b"\x07", "\u202e".encode(), b"\xff"):
    assert b not in raw, b  # escaped as \u001B, \u0007, \u202E: exact and terminal-safe
EOF

# the roster's hostile state name, through audit --missing (DEU has no sent delivery)
D audit "$CAMPAIGN" --missing --to roster.csv --wide >missing.txt
expect_rc 1 $? "audit --missing"
raw_free missing.txt "audit --missing"
grep -q '^DEU  *=HYPERLINK("http://evil.example","\\x1b\[31mGermany\\x07\\u202e")  *deu@' \
	missing.txt || fail "--missing: $(cat -v missing.txt)"
D audit "$CAMPAIGN" --missing --to roster.csv --format csv >missing.csv
grep -q "^DEU,\"'=HYPERLINK(\"\"http://evil.example\"\",\"\"$ESC\[31mGermany$BEL$RLO\"\")\",deu@" \
	missing.csv || fail "--missing CSV: $(cat -v missing.csv)"
D audit --matrix --to roster.csv --format json | python3 -c 'import json,sys; json.load(sys.stdin)' ||
	fail "matrix JSON"
D audit "$CAMPAIGN$ESC[2J" >/dev/null 2>err.txt
expect_rc 65 $? "audit of an unknown campaign"
raw_free err.txt "audit's error"
grep -qF "no campaign '$CAMPAIGN\\x1b[2J' in the ledger" err.txt ||
	fail "audit's error: $(cat -v err.txt)"
D verify >/dev/null || fail "verify"

# A roster problem quotes the cell: check's diagnostics are escaped like audit's table.
{
	head -1 "$R"
	printf 'FRA,France,M,"fra\033[31m@evil\342\200\256.example",,H.E.,n,t,fr,,New York,Europe/Paris\n'
} >bad.csv
"$DEMARCHE" check appeal --to bad.csv --join "$SRCDIR/recipients/states-parties.csv" \
	>out.txt 2>err.txt
expect_rc 65 $? "check of a hostile address"
raw_free err.txt "check's diagnostics"
grep -qF 'fra\x1b[31m@evil\u202e.example' err.txt || fail "check's diagnostics: $(cat -v err.txt)"
pass
