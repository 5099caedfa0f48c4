#!/usr/bin/env bash
# send --via smtp://alice:S3cret@... (issue 14, point 3): refused with exit 78 before the
# ledger changes, the URL never echoed whole; also on a rerun after an interrupted run, where
# the first version wrote the password into events and delivery rows. Real smtp-sink.
set -u
. "$(dirname "$0")/lib.bash"
. "$(dirname "$0")/servers/sink.bash"

. "$(dirname "$0")/secrets.bash"

# A ledger with one mission sent, and one left in doubt by a run killed after the dot.
send --only KEN --via "smtp://127.0.0.1:$PORT" >out.txt 2>err.txt || fail "first send: $(cat err.txt)"
[ "$(sink_count "$WORK/sink")" = 1 ] || fail "the first send did not arrive"
SLOW=$(free_port)
CLEANUP+=("sink_stop $WORK/slow")
sink_start "$WORK/slow" "$SLOW" -W .:30 || fail "slow smtp-sink did not start"
"$DEMARCHE" --store ledger.db send appeal "${ROSTER[@]}" --yes --only FRA \
	--via "smtp://127.0.0.1:$SLOW" >/dev/null 2>&1 &
pid=$!
# Until the message is out (its reply 30 s away), however slow the binary starts.
for _ in $(seq 400); do
	[ "$(sqlite3 ledger.db "select count(*) from deliveries where state = 'sending'" \
		2>/dev/null)" -ge 1 ] 2>/dev/null && break
	sleep 0.05
done
sleep 0.5
kill -9 $pid
wait $pid 2>/dev/null
sink_stop "$WORK/slow"
[ "$(sqlite3 ledger.db "select count(*) from deliveries where key='FRA' and state='sending'")" -ge 1 ] ||
	fail "no mission left in doubt by the killed run"
dump >before.sql

# --- --via with a password: 78, nothing printed, nothing stored, nothing sent.
send --via "smtp://alice:S3cret@127.0.0.1:$PORT" >out.txt 2>err.txt
expect_rc 78 $? "send --via with a password"
no_secret "send --via" out.txt err.txt
grep -q 'smtp://alice:\*\*\*@127.0.0.1' err.txt || { cat err.txt >&2; fail "no redacted URL"; }
grep -q 'password_command' err.txt || fail "the message does not point at password_command"
dump >after.sql
[ "$(grep -c S3cret after.sql)" = 0 ] || fail "the password is in the ledger"
cmp -s before.sql after.sql || fail "a refused send changed the ledger"
[ "$(sink_count "$WORK/sink")" = 1 ] || fail "a refused send sent mail"
# The rerun after the interrupted run (FRA in doubt): still nothing.
send --via "smtp://alice:S3cret@127.0.0.1:$PORT" --retry-unknown >out.txt 2>err.txt
expect_rc 78 $? "send --via with a password, --retry-unknown"
no_secret "send --via --retry-unknown" out.txt err.txt
dump >after.sql
[ "$(grep -c S3cret after.sql)" = 0 ] || fail "the password is in the ledger"
cmp -s before.sql after.sql || fail "a refused rerun changed the ledger"
send --via "smtp://alice:S3cret@127.0.0.1:$PORT" >out.txt 2>err.txt
expect_rc 78 $? "a plain rerun with --via holding a password"
no_secret "send --via (rerun)" out.txt err.txt
dump >after.sql
cmp -s before.sql after.sql || fail "a refused rerun changed the ledger"
[ "$(sink_count "$WORK/sink")" = 1 ] || fail "a refused rerun sent mail"
pass
