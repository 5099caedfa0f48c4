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
PORT=$(free_port)
SPORT=$(free_port)
while [ "$SPORT" = "$PORT" ]; do SPORT=$(free_port); done
PASSWORD="pw-$RANDOM$RANDOM"
CLEANUP+=("postfix_stop $PF")
postfix_start "$PF" "$PORT" alice "$PASSWORD" "$SPORT" || fail "Postfix did not start"

POSTFIX_PORT=$PORT POSTFIX_SMTPS_PORT=$SPORT POSTFIX_CA=$PF/cert.pem \
	POSTFIX_OTHER_CA=$PF/other-ca.pem POSTFIX_USER=alice POSTFIX_PASSWORD=$PASSWORD \
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
grep -q -- "$PASSWORD" driver.out && fail "the password reached the output"
pass
