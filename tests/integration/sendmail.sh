#!/usr/bin/env bash
# Issue 18: the sendmail: transport. Each message is piped to a sendmail-compatible program
# with the envelope as arguments (PROGRAM ARGS -i -f SENDER -- RCPT...), never through a
# shell; exit 0 is sent, 75 deferred (a later run sends it), anything else failed. Tested
# with msmtp pointed at smtp-sink on loopback ([smtp] sendmail), and with scripts.
set -u
. "$(dirname "$0")/lib.bash"
. "$(dirname "$0")/servers/sink.bash"

R="$SRCDIR/recipients"
draft_original asp-session
ROSTER=(--to "$R/missions.example.csv" --join "$R/states-parties.csv")
send() { "$DEMARCHE" --store ledger.db send appeal "${ROSTER[@]}" --yes "$@"; }
state_count() { sqlite3 ledger.db "select count(*) from deliveries where campaign='asp22-priorities' and state='$1'"; }
command -v msmtp >/dev/null || fail "msmtp is not installed (scripts/setup)"

# 1. msmtp, configured by [smtp] sendmail with its own arguments, to smtp-sink.
PORT=$(free_port)
CLEANUP+=("sink_stop $WORK/sink")
sink_start "$WORK/sink" "$PORT" || fail "smtp-sink"
cat >msmtprc <<EOT
defaults
auth off
tls off
account sink
host 127.0.0.1
port $PORT
from secretariat@coalition.example
EOT
chmod 600 msmtprc
test_ini "sendmail = $(command -v msmtp) --file='$WORK/msmtprc' -a sink"
send --only KEN,FRA,CIV --dry-run >plan.txt 2>&1 || fail "dry run: $(cat plan.txt)"
grep -q "real send through sendmail:" plan.txt || fail "plan: $(cat plan.txt)"
send --only KEN,FRA,CIV >out.txt 2>err.txt
expect_rc 0 $? "send through msmtp: $(cat err.txt)"
grep -q "real send through sendmail:.*msmtp.*: 3 sent, 0 deferred, 0 failed" out.txt || fail "summary: $(cat out.txt)"
n=$(sqlite3 ledger.db "select count(*) from deliveries where key in ('KEN','FRA','CIV')")
[ "$(sink_count "$WORK/sink")" = 3 ] || fail "smtp-sink got $(sink_count "$WORK/sink") messages"
[ "$(state_count sent)" = "$n" ] || fail "ledger: $(state_count sent) sent of $n"
# the envelope: every address of KEN, as the roster has them
kenrcpt=$(grep -l "asp22-priorities.KEN" "$WORK"/sink/dump/* | xargs grep -h '^X-Rcpt-Args' | sort | tr -d '\r' | tr '\n' ' ')
want=$(sqlite3 ledger.db "select 'X-Rcpt-Args: <'||address||'>' from deliveries where key='KEN' order by 1" | sort | tr '\n' ' ')
[ "$kenrcpt" = "$want" ] || fail "KEN's envelope: '$kenrcpt', the ledger: '$want'"
sqlite3 ledger.db "select last_reply from deliveries where key='KEN'" | grep -q "^sendmail: exit 0" ||
	fail "reply: $(sqlite3 ledger.db "select last_reply from deliveries where key='KEN'")"
sink_stop "$WORK/sink"

# 2. A program that exits 75: deferred, exit 75; later it accepts: sent, once.
mkdir -p got
cat >fake-sendmail <<'EOT'
#!/bin/sh
# argv and the message kept; exit status from ./status
dir=$(dirname "$0")
printf '%s\n' "$@" >"$dir/got/args.$$"
cat >"$dir/got/msg.$$"
exit "$(cat "$dir/status")"
EOT
chmod +x fake-sendmail
echo 75 >status
test_ini
send --only DEU,ESP --via "sendmail:$WORK/fake-sendmail -oem" >out.txt 2>err.txt
expect_rc 75 $? "a program exiting 75"
[ "$(state_count deferred)" -ge 2 ] || fail "not deferred: $(cat out.txt)"
grep -q "0 sent, 2 deferred" out.txt || fail "summary: $(cat out.txt)"
args=$(cat "$(ls got/args.* | head -1)" | tr '\n' ' ')
case "$args" in
"-oem -i -f secretariat@coalition.example -- "*@*) ;;
*) fail "argv: '$args'" ;;
esac
# no CR in what the program read: the sendmail interface is text with LF
grep -q $'\r' got/msg.* && fail "CRLF handed to the program"
grep -q '^Subject: ' "$(ls got/msg.* | head -1)" || fail "message not piped"
echo 0 >status
rm -f got/*
send --only DEU,ESP --via "sendmail:$WORK/fake-sendmail -oem" >out.txt 2>err.txt
expect_rc 0 $? "the rerun once the program accepts: $(cat err.txt)"
grep -q "2 sent, 0 deferred" out.txt || fail "rerun: $(cat out.txt)"
[ "$(ls got/msg.* | wc -l)" = 2 ] || fail "the rerun piped $(ls got/msg.* | wc -l) messages"
send --only DEU,ESP --via "sendmail:$WORK/fake-sendmail -oem" >out.txt 2>err.txt
expect_rc 0 $? "a third run"
[ "$(ls got/msg.* | wc -l)" = 2 ] || fail "sent twice"

# 3. Any other status: failed, exit 69, left alone by the next run.
echo 1 >status
send --only ITA --via "sendmail:$WORK/fake-sendmail" >out.txt 2>err.txt
expect_rc 69 $? "a program exiting 1"
[ "$(sqlite3 ledger.db "select count(*) from deliveries where key='ITA' and state='failed'")" -ge 1 ] ||
	fail "ITA not failed"

# 4. Killed while the program has the message: 'sending' was committed before it ran, so
#    the next run finds the mission in doubt and leaves it alone (no second letter).
cat >slow-sendmail <<'EOT'
#!/bin/sh
dir=$(dirname "$0")
cat >"$dir/got/slow.$$"
echo $$ >"$dir/got/slowpid"
exec sleep 30
EOT
chmod +x slow-sendmail
rm -f got/*
# its own session, so that a wrapper ($DEMARCHE under valgrind) dies with it
setsid "$DEMARCHE" --store ledger.db send appeal "${ROSTER[@]}" --yes --only NOR \
	--via "sendmail:$WORK/slow-sendmail" >/dev/null 2>&1 &
pid=$!
for _ in $(seq 600); do [ -s got/slowpid ] && break; sleep 0.1; done
[ -s got/slowpid ] || fail "the slow program never ran"
CLEANUP+=("kill -9 $(cat got/slowpid)")
kill -9 -- "-$pid"
wait "$pid" 2>/dev/null
kill -9 "$(cat got/slowpid)" 2>/dev/null
[ "$(sqlite3 ledger.db "select state from deliveries where key='NOR'")" = sending ] ||
	fail "NOR not left sending: $(sqlite3 ledger.db "select state from deliveries where key='NOR'")"
echo 0 >status
send --only NOR --via "sendmail:$WORK/fake-sendmail" >out.txt 2>err.txt
expect_rc 75 $? "the run after the kill"
[ "$(sqlite3 ledger.db "select state from deliveries where key='NOR'")" = unknown ] || fail "NOR not in doubt"
grep -q "1 in doubt left alone" out.txt || grep -q "in doubt" out.txt || fail "summary: $(cat out.txt)"
[ -z "$(ls got/args.* 2>/dev/null)" ] || fail "a mission in doubt was sent again"

# 5. A program that is not there, or an unclosed quote, is a configuration error (78).
send --only NLD --via "sendmail:$WORK/nope" >out.txt 2>err.txt
expect_rc 78 $? "a missing program"
grep -q "not an executable program" err.txt || fail "message: $(cat err.txt)"
# an unclosed quote in the ini value
test_ini "sendmail = $WORK/fake-sendmail 'oops"
send --only NLD >out.txt 2>err.txt
expect_rc 78 $? "an unclosed quote"
grep -q "quote" err.txt || fail "quote message: $(cat err.txt)"
"$DEMARCHE" --store ledger.db verify >/dev/null || fail "verify"
pass
