#!/usr/bin/env bash
# No secret is ever printed or stored: a URL holding a password ([smtp] url, [imap] url,
# bounces --via; send --via is secrets_send.sh) is refused with exit 78 before the ledger
# changes and without being echoed; doctor
# names where a password came from but never prints it; a password_command that hangs is
# stopped after command_timeout with its whole process group. Real smtp-sink on loopback.
set -u
. "$(dirname "$0")/lib.bash"
. "$(dirname "$0")/servers/sink.bash"

. "$(dirname "$0")/secrets.bash"

# A ledger with one mission sent, so a refused run has something to leave untouched.
send --only KEN --via "smtp://127.0.0.1:$PORT" >out.txt 2>err.txt || fail "first send: $(cat err.txt)"
[ "$(sink_count "$WORK/sink")" = 1 ] || fail "the first send did not arrive"
dump >before.sql

# --- [smtp] url with a password: refused at load, naming the file and line, redacted.
test_ini "url = smtp://alice:S3cret@127.0.0.1:$PORT"
chmod 600 demarche.ini
send >out.txt 2>err.txt
expect_rc 78 $? "send with [smtp] url holding a password"
no_secret "send with [smtp] url" out.txt err.txt
grep -q 'demarche.ini:[0-9]*: \[smtp\] url .smtp://alice:\*\*\*@' err.txt ||
	{ cat err.txt >&2; fail "no file:line and redacted URL"; }
dump >after.sql
cmp -s before.sql after.sql || fail "a refused send changed the ledger"
"$DEMARCHE" --store ledger.db doctor >out.txt 2>err.txt
expect_rc 78 $? "doctor with [smtp] url holding a password"
no_secret "doctor" out.txt err.txt
grep -q '^FAIL config: .*smtp://alice:\*\*\*@' out.txt || { cat out.txt >&2; fail "doctor: no FAIL"; }
"$DEMARCHE" --store ledger.db audit >out.txt 2>err.txt
expect_rc 78 $? "audit with [smtp] url holding a password"
no_secret "audit" out.txt err.txt

# --- [imap] url and bounces --via with a password.
test_ini '[imap]' 'url = imaps://carol:S3cret@127.0.0.1:1' 'user = carol'
"$DEMARCHE" --store ledger.db bounces >out.txt 2>err.txt
expect_rc 78 $? "bounces with [imap] url holding a password"
no_secret "bounces" out.txt err.txt
test_ini '[imap]' 'user = carol' 'password_command = echo x'
"$DEMARCHE" --store ledger.db bounces --via "imap://carol:S3cret@127.0.0.1:1" >out.txt 2>err.txt
expect_rc 78 $? "bounces --via with a password"
no_secret "bounces --via" out.txt err.txt
grep -q 'imap://carol:\*\*\*@127.0.0.1:1' err.txt || { cat err.txt >&2; fail "no redacted URL"; }
dump >after.sql
cmp -s before.sql after.sql || fail "a refused bounces changed the ledger"

# --- doctor names the source of a password, never the password, whichever the source.
# (smtp-sink refuses every login with 250 instead of 235: the login line is a FAIL.)
for src in env command file; do
	lines=("url = smtp://127.0.0.1:$PORT" "user = bob")
	env=()
	case $src in
	env) env=(DEMARCHE_SMTP_PASSWORD=S3cret-env) lines+=("password_command = echo S3cret-cmd") ;;
	command) lines+=("password_command = echo S3cret-cmd" "password = S3cret-file") ;;
	file) lines+=("password = S3cret-file") ;;
	esac
	test_ini "${lines[@]}"
	chmod 600 demarche.ini
	env "${env[@]}" "$DEMARCHE" --store ledger.db doctor >out.txt 2>err.txt
	no_secret "doctor ($src)" out.txt err.txt
	case $src in
	env) want='password from DEMARCHE_SMTP_PASSWORD' ;;
	command) want='password from \[smtp\] password_command' ;;
	file) want='password from \[smtp\] password' ;;
	esac
	grep -q "^OK   SMTP $want\$" out.txt || { cat out.txt >&2; fail "doctor ($src): no '$want'"; }
done

# --- A password_command that hangs: stopped after command_timeout, its group killed.
MARK=31.$RANDOM
for sec in smtp imap; do
	if [ $sec = smtp ]; then
		test_ini "url = smtp://127.0.0.1:$PORT" 'user = bob' "password_command = sleep $MARK" \
			'command_timeout = 1'
	else
		test_ini '[imap]' 'url = imap://127.0.0.1:1' 'user = carol' \
			"password_command = sleep $MARK; echo S3cret" 'command_timeout = 1'
	fi
	start=$(date +%s)
	"$DEMARCHE" --store ledger.db doctor >out.txt 2>err.txt
	expect_rc 78 $? "doctor with a hanging [$sec] password_command"
	took=$(($(date +%s) - start))
	[ "$took" -le 5 ] || fail "doctor took $took s with command_timeout = 1"
	grep -q "\[$sec\] password_command did not finish within 1 s" out.txt ||
		{ cat out.txt >&2; fail "doctor: no timeout message for [$sec]"; }
	no_secret "doctor (timeout)" out.txt err.txt
	sleep 0.2
	! pgrep -f "sleep $MARK" >/dev/null || fail "the hanging command still runs"
done
start=$(date +%s)
"$DEMARCHE" --store ledger.db bounces >out.txt 2>err.txt
expect_rc 78 $? "bounces with a hanging password_command"
[ $(($(date +%s) - start)) -le 5 ] || fail "bounces waited past command_timeout"
grep -q 'did not finish within 1 s' err.txt || { cat err.txt >&2; fail "bounces: no timeout message"; }
! pgrep -f "sleep $MARK" >/dev/null || fail "the hanging command still runs"
pass
