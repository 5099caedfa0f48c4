#!/usr/bin/env bash
# A team ledger on PostgreSQL (issue 21): three `demarche send` of three operators share one
# campaign of 125 missions: every mission is sent exactly once, the events name the three,
# and verify passes on the chain they wrote together. Then one sender is killed -9 mid-run:
# the others never take its missions; once its lease runs out they are in doubt (unknown),
# and no run resends them without --retry-unknown.
set -u
. "$(dirname "$0")/lib.bash"
. "$(dirname "$0")/servers/faulty.bash"
. "$(dirname "$0")/servers/postgres.bash"

export DEMARCHE_TEMPLATES="$SRCDIR/templates"
draft_original asp-session
CC=0 "$SRCDIR/bench/gen-roster" 125 roster.csv
pg_start "$WORK/pg" || fail "cannot start PostgreSQL"
CLEANUP+=("pg_stop '$WORK/pg'")
PORT=$(free_port)
CLEANUP+=("faulty_stop '$WORK/f'")

# one ini per operator, all on one database
team_ini() { # db lease
	local who
	for who in alice bob carol; do
		test_ini "[store]" "url = $1" "lease = $2"
		sed -i "s/^\[sender\]$/[sender]\noperator = $who/" demarche.ini
		mv demarche.ini "$who.ini"
	done
}
send() { # operator [option...]
	local who=$1
	shift
	"$DEMARCHE" --config "$who.ini" send appeal --to roster.csv --via "smtp://127.0.0.1:$PORT" \
		--yes "$@"
}
send_bg() { # operator: in the background, $! its own pid (kill -9 reaches demarche itself)
	(exec "$DEMARCHE" --config "$1.ini" send appeal --to roster.csv \
		--via "smtp://127.0.0.1:$PORT" --yes >"$1.out" 2>"$1.err") &
}
q() { pg_psql "$WORK/pg" "$DB" "$1"; }
wait_sending() { # operator n: until n of the operator's deliveries went to sending (2 min)
	local i
	for i in $(seq 1200); do
		[ "$(q "SELECT count(*) FROM events WHERE operator = '$1' AND to_state = 'sending'" \
			2>/dev/null)" -ge "$2" ] 2>/dev/null && return 0
		sleep 0.1
	done
	fail "$1 did not start sending: $(cat "$1.out" "$1.err")"
}
unique_rcpts() { faulty_log "$WORK/f" | awk '{print $3}' | tr ',' '\n' | sort | uniq -d | wc -l; }

# --- 1. three senders, one campaign ------------------------------------------------------
DBC=$(pg_createdb "$WORK/pg" team) || fail "createdb"
DB=team
team_ini "$DBC" 60
faulty_start "$WORK/f" "$PORT" --dot-delay 300 || fail "faulty_smtp"
# each starts once the one before is sending (a slow start, under valgrind say, still
# finds missions left)
for who in alice bob carol; do
	send_bg "$who"
	eval "pid_$who=$!"
	[ "$who" = carol ] || wait_sending "$who" 1
done
for who in alice bob carol; do
	eval "wait \$pid_$who"
	expect_rc 0 $? "$who's send: $(cat "$who.out" "$who.err")"
done
[ "$(faulty_count "$WORK/f")" = 125 ] || fail "$(faulty_count "$WORK/f") messages for 125 missions"
[ "$(unique_rcpts)" = 0 ] || fail "a mission got two messages: $(faulty_log "$WORK/f" | sort -k3 | head)"
[ "$(q "SELECT count(*) FROM deliveries WHERE state = 'sent'")" = 125 ] ||
	fail "sent: $(q "SELECT state, count(*) FROM deliveries GROUP BY state")"
ops=$(q "SELECT string_agg(DISTINCT operator, ',') FROM events WHERE to_state = 'sent'")
[ "$ops" = "alice,bob,carol" ] || fail "the sent events name '$ops', not the three operators"
[ "$(q "SELECT count(*) FROM events WHERE operator IS NULL OR host IS NULL")" = 0 ] ||
	fail "events without operator or host"
"$DEMARCHE" --config alice.ini verify >verify.out 2>&1 || fail "verify: $(cat verify.out)"
# audit shows who sent what
"$DEMARCHE" --config alice.ini audit asp22-priorities --columns key,state,operator >audit.out 2>&1 ||
	fail "audit --columns operator: $(cat audit.out)"
grep -q "carol" audit.out || fail "audit shows no operator: $(head -5 audit.out)"
# a rerun sends nothing
send carol >rerun.out 2>&1 || fail "rerun: $(cat rerun.out)"
[ "$(faulty_count "$WORK/f")" = 125 ] || fail "a rerun sent again"
faulty_stop "$WORK/f"

# --- 2. one sender killed -9 mid-run ------------------------------------------------------
DBC=$(pg_createdb "$WORK/pg" killed) || fail "createdb"
DB=killed
team_ini "$DBC" 4
: >"$WORK/f/faulty.log"
faulty_start "$WORK/f" "$PORT" --dot-delay 400 || fail "faulty_smtp"
# bob dies while one of his messages is being handed over, the others sending too
send_bg bob
pid_bob=$!
wait_sending bob 2
for who in alice carol; do
	send_bg "$who"
	eval "pid_$who=$!"
done
wait_sending alice 1
# the moment bob holds a mission (a lease on a delivery in sending), not between two
for _ in $(seq 1000); do
	[ "$(q "SELECT count(*) FROM deliveries d JOIN leases l ON l.delivery = d.id
		WHERE d.state = 'sending' AND l.holder LIKE 'bob@%'")" -ge 1 ] && break
	sleep 0.02
done
kill -9 "$pid_bob"
wait "$pid_bob" 2>/dev/null
wait "$pid_alice" || fail "alice's send: $(cat alice.err)"
wait "$pid_carol" || fail "carol's send: $(cat carol.err)"
held=$(q "SELECT count(*) FROM deliveries WHERE state = 'sending'")
[ "$held" -ge 1 ] || fail "bob's mission in flight is not in state sending ($held): $(q "SELECT state, count(*) FROM deliveries GROUP BY state") $(q "SELECT operator, to_state, count(*) FROM events GROUP BY 1, 2") $(cat bob.out bob.err)"
[ "$(unique_rcpts)" = 0 ] || fail "a mission got two messages"
# after the lease: in doubt, never resent
sleep 5
send alice >after.out 2>&1
expect_rc 75 $? "the run after the lease: $(cat after.out)"
[ "$(q "SELECT count(*) FROM deliveries WHERE state = 'sending'")" = 0 ] || fail "still sending"
unknown=$(q "SELECT count(*) FROM deliveries WHERE state = 'unknown'")
[ "$unknown" = "$held" ] || fail "$unknown in doubt, $held were held by bob"
q "SELECT detail FROM events WHERE to_state = 'unknown'" | grep -q "lease of bob@" ||
	fail "the unknown event does not name bob's lease"
[ "$(q "SELECT count(*) FROM deliveries WHERE state IN ('sent', 'unknown')")" = 125 ] ||
	fail "states: $(q "SELECT state, count(*) FROM deliveries GROUP BY state")"
[ "$(unique_rcpts)" = 0 ] || fail "a mission got two messages"
n=$(faulty_count "$WORK/f")
send carol >again.out 2>&1
[ "$(faulty_count "$WORK/f")" = "$n" ] || fail "missions in doubt were resent without --retry-unknown"
"$DEMARCHE" --config carol.ini verify >verify.out 2>&1 || fail "verify: $(cat verify.out)"

# --- 3. the daily cap counts what the other senders send meanwhile -------------------------
# Three senders start together under daily_cap = 30: each counts the ledger again before
# every message, so together they stop at 30, passing it at most by the messages the others
# had in flight and not yet recorded (one each, and one waiting for its commit).
faulty_stop "$WORK/f"
DBC=$(pg_createdb "$WORK/pg" capped) || fail "createdb"
DB=capped
team_ini "$DBC" 60
sed -i 's/^\[smtp\]$/[smtp]\ndaily_cap = 30/' alice.ini bob.ini carol.ini
: >"$WORK/f/faulty.log"
faulty_start "$WORK/f" "$PORT" --dot-delay 300 || fail "faulty_smtp"
for who in alice bob carol; do
	send_bg "$who"
	eval "pid_$who=$!"
done
for who in alice bob carol; do
	eval "wait \$pid_$who"
	rc=$?
	[ $rc = 0 ] || [ $rc = 75 ] || fail "$who's capped send exited $rc: $(cat "$who.out" "$who.err")"
done
n=$(faulty_count "$WORK/f")
[ "$n" -ge 30 ] && [ "$n" -le 34 ] ||
	fail "daily_cap 30 across three senders, $n sent: $(cat alice.out bob.out carol.out)"
[ "$(q "SELECT count(*) FROM deliveries WHERE state = 'sent'")" = "$n" ] || fail "the ledger disagrees"
cat alice.err bob.err carol.err | grep -q "daily cap" || fail "no word of the daily cap"
[ "$(unique_rcpts)" = 0 ] || fail "a mission got two messages"
pass
