#!/usr/bin/env bash
# The SMTP transport against a throwaway Postfix on loopback: STARTTLS and implicit TLS with a
# self-signed certificate, AUTH PLAIN through Dovecot; right password sent, wrong password
# refused with the server's 535, wrong CA refused (test_transport_postfix does the sending).
set -u
. "$(dirname "$0")/lib.bash"
. "$(dirname "$0")/servers/postfix.bash"

DRIVER=${BUILDDIR:?BUILDDIR must name the build tree}/tests/test_transport_postfix
[ -x "$DRIVER" ] || fail "$DRIVER is not built"
[ "$(id -u)" = 0 ] || fail "needs root (a throwaway Postfix)"

PF=$WORK/postfix
CLEANUP+=("postfix_stop $PF")
postfix_up "$PF" alice || fail "Postfix did not start"

"$DRIVER" >driver.out 2>&1
rc=$?
cat driver.out
if [ $rc != 0 ]; then
	tail -30 "$PF/maillog"
	fail "test_transport_postfix failed (exit $rc)"
fi
grep -q "PASSED.*7 test" driver.out || fail "not every Postfix scenario ran"

# Postfix's side of the story: TLS, AUTH PLAIN as alice, refused logins, no password logged.
for i in $(seq 1 50); do
	grep -q "sasl_method=PLAIN, sasl_username=alice" "$PF/maillog" 2>/dev/null && break
	sleep 0.1
done
grep -q "TLS connection established from localhost\[127.0.0.1\]" "$PF/maillog" ||
	fail "Postfix logged no TLS connection"
grep -q "sasl_method=PLAIN, sasl_username=alice" "$PF/maillog" || fail "no AUTH PLAIN as alice"
grep -q "SASL PLAIN authentication failed" "$PF/maillog" || fail "no failed AUTH logged"
grep -q "reject: RCPT from .*Access denied" "$PF/maillog" || fail "no refusal without AUTH logged"
grep -q "lost connection after MAIL" "$PF/maillog" ||
	fail "no session broken off after MAIL (server offered no AUTH)"
grep -q -- "$POSTFIX_PASSWORD" driver.out && fail "the password reached the output"

# The same through `demarche send`: STARTTLS + AUTH PLAIN with the password from the
# environment; the wrong password and a wrong CA stop the run with exit 78 and the server's
# (or the TLS library's) words, and leave every mission to be sent later, none failed.
export DEMARCHE_TEMPLATES="$SRCDIR/templates"
draft_original security-council
printf 'iso3,state,mission,email,cc,language\nMEX,Mexico,Permanent Mission of Mexico,mex@example.org,mex.ny@example.net,en\nCHL,Chile,Permanent Mission of Chile,chl@example.org,,es\n' >roster.csv
ini() { # ca-file
	cat >demarche.ini <<INI
[sender]
name = Coalition for the International Criminal Court
address = secretariat@coalition.example
[smtp]
url = smtp://127.0.0.1:$POSTFIX_PORT
user = alice
tls = starttls
ca_file = $1
max_attempts = 1
INI
}
send() { "$DEMARCHE" --store ledger.db send appeal --to roster.csv --yes "$@"; }
ini "$PF/other-ca.pem"
DEMARCHE_SMTP_PASSWORD=$POSTFIX_PASSWORD send >out.txt 2>err.txt
expect_rc 78 $? "send with a CA that did not sign the server's certificate"
grep -qi "certificate\|verif\|issuer" err.txt || fail "no word of the certificate: $(cat err.txt)"
ini "$PF/cert.pem"
DEMARCHE_SMTP_PASSWORD=wrong-$POSTFIX_PASSWORD send >out.txt 2>err.txt
expect_rc 78 $? "send with the wrong password"
grep -q "535" err.txt || fail "the server's 535 is not reported: $(cat err.txt)"
[ "$(sqlite3 ledger.db "select count(*) from deliveries where state in ('failed','sent')")" = 0 ] ||
	fail "a refused login changed missions to failed or sent"
DEMARCHE_SMTP_PASSWORD=$POSTFIX_PASSWORD send >out.txt 2>err.txt
expect_rc 0 $? "send with the right password: $(cat err.txt)"
grep -q "2 sent" out.txt || fail "send said: $(cat out.txt)"
sqlite3 ledger.db "select last_reply from deliveries" | grep -q "^250 2.0.0 Ok: queued as" ||
	fail "Postfix's queue id not recorded: $(sqlite3 ledger.db 'select last_reply from deliveries')"
[ "$(sqlite3 ledger.db "select count(*) from deliveries where state='sent'")" = 3 ] ||
	fail "not 3 deliveries sent"
grep -rq -- "$POSTFIX_PASSWORD" out.txt err.txt ledger.db &&
	fail "the password reached the output or ledger"
pass
