#!/usr/bin/env bash
# Issue 14, points 5 and 6, through `demarche send` against real servers: each address's own
# RCPT answer decides its delivery (a refused Cc does not fail the main address; a server
# taking one recipient per transaction gets them all in turn), the summary and the exit code
# tell the truth about the whole campaign (missions still in doubt, a send stopped by an
# unreachable server), and SIGHUP stops like SIGTERM.
set -u
. "$(dirname "$0")/lib.bash"
. "$(dirname "$0")/servers/sink.bash"
. "$(dirname "$0")/servers/faulty.bash"

R="$SRCDIR/recipients"
draft_original asp-session
test_ini
ROSTER=(--to "$R/missions.example.csv" --join "$R/states-parties.csv")
send() { # store url [args...]
	local store=$1 url=$2
	shift 2
	"$DEMARCHE" --store "$store" send appeal "${ROSTER[@]}" --via "$url" --yes "$@" \
		>out.txt 2>err.txt
}
state() { # store key address -> its delivery's state
	sqlite3 "$1" "select state from deliveries where key='$2' and address='$3'"
}

# 6a. The server refuses AFG's Cc (550): the main address still gets the letter.
P=$(free_port)
CLEANUP+=("faulty_stop $WORK/f1")
faulty_start "$WORK/f1" "$P" --refuse-rcpt afg.ny@ || fail "faulty server"
send f1.db "smtp://127.0.0.1:$P" --only AFG,ALB
expect_rc 69 $? "a refused Cc is a permanent failure of that address: $(cat out.txt err.txt)"
[ "$(state f1.db AFG afg@missions.example)" = sent ] || fail "AFG main: $(state f1.db AFG afg@missions.example)"
[ "$(state f1.db AFG afg.ny@missions.example)" = failed ] || fail "AFG cc not failed"
[ "$(state f1.db ALB alb@missions.example)" = sent ] || fail "ALB not sent"
sqlite3 f1.db "select last_code from deliveries where address='afg.ny@missions.example'" |
	grep -qx 550 || fail "the Cc's own reply code is not kept"
grep -q "1 address was refused" out.txt || fail "summary does not name the refused address: $(cat out.txt)"
faulty_log "$WORK/f1" | grep -q "afg@missions.example" || fail "the main address never reached the server"
faulty_log "$WORK/f1" | grep -q "afg.ny@" && fail "the refused Cc was delivered"
# A rerun leaves the failed address alone and sends nothing twice.
send f1.db "smtp://127.0.0.1:$P" --only AFG,ALB
expect_rc 69 $? "rerun with the failed Cc"
[ "$(faulty_count "$WORK/f1")" = 2 ] || fail "rerun sent again: $(faulty_log "$WORK/f1")"
faulty_stop "$WORK/f1"

# 6b. One recipient per transaction (452 after the first RCPT): every address, in turn.
P=$(free_port)
CLEANUP+=("faulty_stop $WORK/f2")
faulty_start "$WORK/f2" "$P" --max-rcpt 1 || fail "faulty server"
send f2.db "smtp://127.0.0.1:$P" --only AFG
expect_rc 0 $? "452 too many recipients: $(cat out.txt err.txt)"
[ "$(sqlite3 f2.db "select count(*) from deliveries where state='sent'")" = 2 ] ||
	fail "not every address sent: $(sqlite3 f2.db 'select address, state from deliveries')"
[ "$(faulty_count "$WORK/f2")" = 2 ] || fail "not two transactions: $(faulty_log "$WORK/f2")"
[ "$(faulty_log "$WORK/f2" | awk '{print $2}' | sort -u | wc -l)" = 1 ] ||
	fail "the second transaction did not reuse the connection"
faulty_stop "$WORK/f2"

# A server that dropped the idle connection just as it was reused: the message was not
# accepted (no final dot), so it goes again at once on a fresh connection, not deferred.
P=$(free_port)
CLEANUP+=("faulty_stop $WORK/f4")
faulty_start "$WORK/f4" "$P" --drop-reused || fail "faulty server"
send f4.db "smtp://127.0.0.1:$P" --only ALB,KEN,NLD
expect_rc 0 $? "a reused connection found dead: $(cat out.txt err.txt)"
[ "$(faulty_count "$WORK/f4")" = 3 ] || fail "not three messages: $(faulty_log "$WORK/f4")"
[ "$(faulty_log "$WORK/f4" | awk '{print $2}' | sort -u | wc -l)" = 3 ] ||
	fail "not a fresh connection each: $(faulty_log "$WORK/f4")"
faulty_stop "$WORK/f4"

# 5a. Missions in doubt stay counted: AFG's link drops after the dot (in doubt); a rerun that
# sends ALB and KEN still exits 75 and says one mission is in doubt.
P=$(free_port)
CLEANUP+=("sink_stop $WORK/s1")
sink_start "$WORK/s1" "$P" -q . || fail "smtp-sink"
send s5.db "smtp://127.0.0.1:$P" --only AFG
expect_rc 75 $? "dropped after the dot"
sink_stop "$WORK/s1"
sink_start "$WORK/s1" "$P" || fail "smtp-sink"
send s5.db "smtp://127.0.0.1:$P" --only AFG,ALB,KEN
expect_rc 75 $? "the rest sent while AFG is in doubt: $(cat out.txt)"
grep -q "2 sent" out.txt || fail "ALB and KEN not sent: $(cat out.txt)"
grep -q "selected: 3: 2 sent, 0 deferred, 0 failed, 1 in doubt, 0 not started" out.txt ||
	fail "the summary hides the mission in doubt: $(cat out.txt)"
sink_stop "$WORK/s1"

# 5b. The server cannot be reached: the message that was to go is deferred, not "not started".
P=$(free_port)
send s6.db "smtp://127.0.0.1:$P" --only ALB,KEN
expect_rc 75 $? "unreachable server"
grep -Eq "deferred: .*Failed to connect|Failed to connect" err.txt || fail "no reason: $(cat err.txt)"
grep -q "deferredFailed" err.txt out.txt && fail "run-on message: $(cat err.txt)"
grep -q "1 deferred" out.txt || fail "the message that was to go is not deferred: $(cat out.txt)"
grep -q "selected: 2: 0 sent, 1 deferred, 0 failed, 0 in doubt, 1 not started" out.txt ||
	fail "campaign summary: $(cat out.txt)"

# SIGHUP stops like SIGTERM: the message in flight finishes, the summary is printed, 75.
P=$(free_port)
CLEANUP+=("faulty_stop $WORK/f3")
faulty_start "$WORK/f3" "$P" --dot-delay 400 || fail "faulty server"
"$DEMARCHE" --store hup.db send appeal "${ROSTER[@]}" --via "smtp://127.0.0.1:$P" --yes \
	--where asp_regional_group="African States" >out.txt 2>err.txt &
pid=$!
for _ in $(seq 400); do # until messages are out (the handlers are set by then)
	[ "$(sqlite3 hup.db "select count(*) from deliveries where state = 'sent'" 2>/dev/null)" \
		-ge 1 ] 2>/dev/null && break
	sleep 0.05
done
kill -HUP $pid
wait $pid
expect_rc 75 $? "SIGHUP"
grep -q "interrupted" err.txt || fail "no interrupted notice: $(cat err.txt)"
grep -q "missions of .* selected" out.txt || fail "no summary after SIGHUP: $(cat out.txt)"
[ "$(sqlite3 hup.db "select count(*) from deliveries where state='sending'")" = 0 ] ||
	fail "deliveries left sending after SIGHUP"
sent=$(sqlite3 hup.db "select count(*) from deliveries where state='sent'")
[ "$sent" -ge 1 ] && [ "$sent" = "$(faulty_log "$WORK/f3" | tr ' ,' '\n\n' | grep -c '@')" ] ||
	fail "ledger ($sent sent) and server disagree: $(faulty_log "$WORK/f3")"
pass
