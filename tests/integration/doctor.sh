#!/usr/bin/env bash
# demarche doctor against real servers: smtp-sink (greeting, EHLO, no STARTTLS, down),
# a throwaway Postfix (STARTTLS and implicit TLS verified against its CA, a wrong CA, AUTH
# accepted and refused), Dovecot (IMAP login, the Sent folder, a missing folder, a wrong
# password) and the ledger (verifies; an edited event fails). Nothing is ever sent.
set -u
. "$(dirname "$0")/lib.bash"
. "$(dirname "$0")/servers/sink.bash"
. "$(dirname "$0")/servers/postfix.bash"
. "$(dirname "$0")/servers/dovecot.bash"
[ "$(id -u)" = 0 ] || fail "needs root (a throwaway Postfix)"

doctor() { # expected-exit ini -> doctor's output in out.txt
	local want=$1 ini=$2
	chmod 600 "$ini"
	"$DEMARCHE" --config "$ini" --store "$WORK/ledger.db" doctor >out.txt 2>err.txt
	local rc=$?
	[ "$rc" = "$want" ] ||
		{ cat out.txt err.txt >&2; fail "doctor with $ini: exit $rc, expected $want"; }
}
has() { # regex: a line of out.txt
	grep -qE "$1" out.txt || { cat out.txt >&2; fail "doctor printed no line matching '$1'"; }
}
fails_with() { # what fix: a FAIL line naming what, with its fix
	grep -E "^FAIL .*$1.* — fix: .*$2" out.txt >/dev/null ||
		{ cat out.txt >&2; fail "no 'FAIL $1 — fix: $2'"; }
}
sender='[sender]
address = secretariat@coalition.example.org'

# --- smtp-sink: greeting and EHLO; no STARTTLS where it is required; down.
SINK=$WORK/sink
SP=$(free_port)
CLEANUP+=("sink_stop $SINK")
sink_start "$SINK" "$SP" || fail "smtp-sink did not start"
printf '%s\n[smtp]\nurl = smtp://127.0.0.1:%s\n' "$sender" "$SP" >sink.ini
doctor 0 sink.ini
has '^OK +config: sink.ini loads'
has '^OK +config: permissions 600'
has '^OK +\[sender\] domain coalition.example.org'
has "^OK +SMTP connect 127.0.0.1:$SP: 220 smtp-sink"
has '^OK +SMTP EHLO: .*AUTH PLAIN LOGIN.*PIPELINING'
has '^OK +SMTP EHLO: .*no STARTTLS.*no SMTPUTF8'
has '^SKIP SMTP login: \[smtp\] user not set'
has '^SKIP IMAP'
has '^SKIP ledger'
! grep -q '^FAIL' out.txt || fail "a FAIL line with exit 0"

printf 'tls = starttls\n' >>sink.ini
doctor 69 sink.ini
fails_with 'no STARTTLS' 'smtps://'

# smtp-sink answers AUTH with 250, not 235: no login was accepted.
printf '%s\n[smtp]\nurl = smtp://127.0.0.1:%s\nuser = bob\n' "$sender" "$SP" >auth.ini
DEMARCHE_SMTP_PASSWORD=x doctor 78 auth.ini
fails_with 'SMTP login as bob refused' 'password'
doctor 78 auth.ini # no password anywhere
fails_with 'SMTP password' 'DEMARCHE_SMTP_PASSWORD'

sink_stop "$SINK"
[ "$(sink_count "$SINK")" = 0 ] || fail "doctor made smtp-sink receive a message"
printf '%s\n[smtp]\nurl = smtp://127.0.0.1:%s\n' "$sender" "$SP" >down.ini
doctor 69 down.ini
fails_with "SMTP connect 127.0.0.1:$SP" 'url'

# --- Postfix: STARTTLS and implicit TLS verified, AUTH accepted, refused; a wrong CA.
PF=$WORK/postfix
CLEANUP+=("postfix_stop $PF")
postfix_up "$PF" alice || fail "Postfix did not start"
PP=$POSTFIX_PORT PS=$POSTFIX_SMTPS_PORT PASSWORD=$POSTFIX_PASSWORD
pf_ini() { # file url ca [more lines]
	printf '%s\n[smtp]\nurl = %s\nuser = alice\npassword_command = cat %s/pw\nca_file = %s\n%s\n' \
		"$sender" "$2" "$WORK" "$3" "${4:-}" >"$1"
}
echo "$PASSWORD" >pw
pf_ini pf.ini "smtp://127.0.0.1:$PP" "$PF/cert.pem" "tls = starttls"
doctor 0 pf.ini
has "^OK +SMTP connect 127.0.0.1:$PP: 220 postfix.demarche.test"
has '^OK +SMTP EHLO \(after TLS\): SIZE [0-9]+ .*STARTTLS, AUTH PLAIN LOGIN'
has '^OK +SMTP TLS: STARTTLS, certificate verified against \[smtp\] ca_file'
has '^OK +SMTP login as alice accepted'
has '^OK +SMTP password from \[smtp\] password_command$'
! grep -qF "$PASSWORD" out.txt err.txt || fail "doctor printed the SMTP password"

pf_ini pfs.ini "smtps://127.0.0.1:$PS" "$PF/cert.pem"
doctor 0 pfs.ini
has '^OK +SMTP TLS: implicit, certificate verified'
has '^OK +SMTP login as alice accepted'

echo "wrong-$PASSWORD" >pw
doctor 78 pf.ini
fails_with 'SMTP login as alice refused: 535' 'password'
echo "$PASSWORD" >pw

pf_ini ca.ini "smtp://127.0.0.1:$PP" "$PF/other-ca.pem" "tls = starttls"
doctor 69 ca.ini
fails_with 'SMTP TLS: .*not verified' 'ca_file'
pf_ini ca.ini "smtps://127.0.0.1:$PS" "$PF/other-ca.pem"
doctor 69 ca.ini
fails_with 'SMTP TLS: .*not verified' 'ca_file'
postfix_stop "$PF"

# --- Dovecot: login and Sent; a missing folder; a wrong password; IMAPS with its CA.
DV=$WORK/dovecot
IMAPPW="imap-$RANDOM"
CLEANUP+=("dovecot_stop $DV")
dovecot_start "$DV" carol "$IMAPPW" || fail "Dovecot did not start"
im_ini() { # file url [more lines]
	printf '%s\n[imap]\nurl = %s\nuser = carol\nca_file = %s\n%s\n' "$sender" "$2" \
		"$DOVECOT_CERT" "${3:-}" >"$1"
}
im_ini im.ini "imap://127.0.0.1:$DOVECOT_IMAP_PORT"
DEMARCHE_IMAP_PASSWORD=$IMAPPW doctor 0 im.ini
has "^OK +IMAP login as carol at imap://127.0.0.1:$DOVECOT_IMAP_PORT"
has '^OK +IMAP folder Sent exists'
has '^OK +IMAP password from DEMARCHE_IMAP_PASSWORD$'
! grep -qF "$IMAPPW" out.txt err.txt || fail "doctor printed the IMAP password"
# The same order as bounces: the environment before password_command before password.
im_ini im2.ini "imap://127.0.0.1:$DOVECOT_IMAP_PORT" "password_command = echo wrong
password = wrong-too"
DEMARCHE_IMAP_PASSWORD=$IMAPPW doctor 0 im2.ini
has '^OK +IMAP password from DEMARCHE_IMAP_PASSWORD$'
im_ini im2.ini "imap://127.0.0.1:$DOVECOT_IMAP_PORT" "password_command = echo $IMAPPW
password = wrong"
doctor 0 im2.ini
has '^OK +IMAP password from \[imap\] password_command$'
! grep -qF "$IMAPPW" out.txt err.txt || fail "doctor printed the IMAP password"
im_ini ims.ini "imaps://127.0.0.1:$DOVECOT_IMAPS_PORT" "sent_folder = Envoyés"
DEMARCHE_IMAP_PASSWORD=$IMAPPW doctor 78 ims.ini
has '^OK +IMAP login as carol at imaps://'
fails_with 'IMAP: no folder Envoyés' 'sent_folder'
DEMARCHE_IMAP_PASSWORD=nope doctor 78 im.ini
fails_with 'IMAP login as carol' 'password'
dovecot_stop "$DV"

# --- The ledger: a real one from a send into a Maildir verifies; an edited event fails.
export DEMARCHE_TEMPLATES="$SRCDIR/templates"
draft_original asp-session
"$DEMARCHE" --store ledger.db send appeal --to "$SRCDIR/recipients/missions.example.csv" \
	--join "$SRCDIR/recipients/states-parties.csv" --only KEN,FRA --via maildir:outbox --yes \
	>/dev/null 2>&1 || fail "send into a Maildir"
printf '%s\n' "$sender" >ledger.ini
doctor 0 ledger.ini
has '^OK +ledger .*ledger.db: [1-9][0-9]* events, hash chain intact'
sqlite3 ledger.db "DROP TRIGGER events_no_update;
	UPDATE events SET detail = 'edited' WHERE seq = 2" || fail "sqlite3"
doctor 65 ledger.ini
fails_with 'ledger' 'evidence'

# --- The file itself: writable by others; a bad sender; a broken file.
printf '%s\n' "$sender" >perm.ini
chmod 666 perm.ini
"$DEMARCHE" --config perm.ini --store none.db doctor >out.txt 2>&1
expect_rc 78 $? "doctor with a world-writable config"
fails_with 'can be written by others' 'chmod 600'
printf '[sender]\naddress = not an address\n' >bad.ini
doctor 78 bad.ini
fails_with "\[sender\] address 'not an address'" 'address'
printf '[smtp]\nurll = x\n' >broken.ini
doctor 78 broken.ini
fails_with "unknown key 'urll'" "write 'url' instead of 'urll'"
pass
