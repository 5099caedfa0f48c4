#!/usr/bin/env bash
# Copies to Sent during `demarche send` against a real Dovecot: every accepted message is
# appended, \Seen, with the bytes the SMTP server received; with the IMAP server down the
# sending goes on, the copies are kept in the ledger, and the next run appends them.
set -u
. "$(dirname "$0")/lib.bash"
. "$(dirname "$0")/servers/sink.bash"
. "$(dirname "$0")/servers/dovecot.bash"

R="$SRCDIR/recipients"
draft_original asp-session
PORT=$(free_port)
CLEANUP+=("sink_stop $WORK/sink" "dovecot_stop $WORK/dovecot")
sink_start "$WORK/sink" "$PORT" || fail "smtp-sink"
dovecot_start "$WORK/dovecot" appeals 'imap secret' || fail "dovecot"
export DEMARCHE_IMAP_PASSWORD='imap secret'
ini() { # imap-port
	cat >demarche.ini <<INI
[sender]
address = secretariat@coalition.example
[smtp]
url = smtp://127.0.0.1:$PORT
max_attempts = 1
[imap]
url = imap://127.0.0.1:$1
user = appeals
INI
}
Q() { sqlite3 ledger.db "$1"; }
send() {
	"$DEMARCHE" --store ledger.db send appeal --to "$R/missions.example.csv" --yes "$@" \
		>out.txt 2>err.txt
}
sent_folder() { find "$DOVECOT_MAILDIR/.Sent/cur" "$DOVECOT_MAILDIR/.Sent/new" -type f 2>/dev/null; }

ini "$DOVECOT_IMAP_PORT"
send --only KEN,FRA,CIV
expect_rc 0 $? "send with Sent copies: $(cat err.txt)"
[ "$(sent_folder | wc -l)" = 3 ] || fail "$(sent_folder | wc -l) copies in Sent, not 3"
[ "$(sent_folder | grep -c ':2,.*S')" = 3 ] || fail "copies not flagged \\Seen: $(sent_folder)"
# The copy is the message the SMTP server received (the sink dumps it with LF line ends,
# after its own trace lines and with a blank line at the end).
python3 - "$WORK/sink/dump" $(sent_folder) <<'PY' || fail "a copy in Sent differs from what was sent"
import os, re, sys
dump, copies = sys.argv[1], sys.argv[2:]
by_id = {}
for c in copies:
    raw = open(c, "rb").read()
    by_id[re.search(rb"^Message-ID: (\S+)", raw, re.M).group(1)] = raw.replace(b"\r\n", b"\n")
for name in os.listdir(dump):
    raw = open(os.path.join(dump, name), "rb").read()
    msg = raw[raw.index(b"Date: "):].rstrip(b"\n") + b"\n"
    mid = re.search(rb"^Message-ID: (\S+)", msg, re.M).group(1)
    if by_id.get(mid, b"").rstrip(b"\n") + b"\n" != msg:
        sys.exit(f"the copy of {mid.decode()} differs from what was sent")
PY
[ "$(Q "select count(*) from events where kind='append'")" = "$(Q "select count(*) from deliveries")" ] ||
	fail "not one append event per delivery: $(Q "select kind, count(*) from events group by kind")"

# The IMAP server goes away: sending goes on, copies are kept, the next run appends them.
dovecot_stop "$WORK/dovecot"
sed -i 's/^Campaign: .*/Campaign: copies-later/' appeal/*.md
send --only DEU,JPN
expect_rc 0 $? "send with the IMAP server down: $(cat out.txt err.txt)"
grep -q "2 sent" out.txt || fail "SMTP sending did not go on: $(cat out.txt)"
[ "$(Q "select count(*) from deliveries where campaign='copies-later' and state='sent'")" -ge 2 ] ||
	fail "a failed copy changed a delivery"
[ "$(Q "select count(*) from events where kind='append-failed'")" -ge 1 ] || fail "no append-failed event"
dovecot_start "$WORK/dovecot" appeals 'imap secret' || fail "dovecot again"
ini "$DOVECOT_IMAP_PORT"
send --only DEU,JPN
expect_rc 0 $? "rerun: $(cat err.txt)"
grep -q "nothing to send" out.txt || fail "the rerun sent again: $(cat out.txt)"
[ "$(sent_folder | wc -l)" = 5 ] || fail "kept copies not appended: $(sent_folder | wc -l) in Sent"
[ "$(sink_count "$WORK/sink")" = 5 ] || fail "$(sink_count "$WORK/sink") messages reached SMTP"
"$DEMARCHE" --store ledger.db verify >/dev/null || fail "verify"
pass
