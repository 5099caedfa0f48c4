# faulty_smtp.py (aiosmtpd) on loopback for tests: the faults smtp-sink cannot inject.
# Sourced (bash). Needs Debian's python3-aiosmtpd (run with /usr/bin/python3).
#
#   faulty_start DIR PORT [OPTION...]  e.g. faulty_start "$WORK/f" 2525 --refuse-rcpt cc@
#                                      (--refuse-rcpt S 550, --defer-rcpt S 450, --max-rcpt N
#                                      452 after N RCPTs, --dot-delay MS, --malformed
#                                      mail|rcpt|dot "250ok", --multiline-dot, --drop-reused)
#   faulty_stop DIR                    stops it (safe when not running)
#   faulty_count DIR                   how many messages it accepted
#   faulty_log DIR                     one line per accepted message: "tx PEERPORT rcpt,rcpt
#                                      BYTES" (PEERPORT tells connections apart)

. "$(dirname "${BASH_SOURCE[0]}")/net.bash"

faulty_start() {
	local dir=$1 port=$2
	shift 2
	mkdir -p "$dir" || return 1
	: >"$dir/faulty.log"
	/usr/bin/python3 "$(dirname "${BASH_SOURCE[0]}")/faulty_smtp.py" --port "$port" \
		--log "$dir/faulty.log" "$@" >"$dir/faulty.out" 2>&1 &
	echo $! >"$dir/faulty.pid"
	wait_port "$port" 0.05 && return 0
	echo "faulty_smtp.py did not listen on 127.0.0.1:$port (python3-aiosmtpd missing?)" >&2
	cat "$dir/faulty.out" >&2
	return 1
}

faulty_stop() {
	pidfile_stop "$1/faulty.pid"
}

faulty_count() {
	wc -l <"$1/faulty.log"
}

faulty_log() {
	cat "$1/faulty.log"
}
