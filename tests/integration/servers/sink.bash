# Postfix's smtp-sink on loopback for tests: dumps every message it accepts, injects faults.
# Sourced (bash). As root it drops to nobody (smtp-sink requires it), so DIR/dump is 0777.
#
#   sink_start DIR PORT [OPTION...]   e.g. sink_start "$WORK/sink" 2525 -r RCPT
#                                     (-r/-f CMD 4xx/5xx, -q . drop after the dot, -Q MAIL
#                                     421, -w N slow DATA, -W .:N slow after the dot)
#   sink_stop DIR                     stops it (safe when not running)
#   sink_count DIR                    how many messages it has dumped
#   sink_dumps DIR                    their file names, one a line
#
# Each dump holds X-Mail-Args: <from>, one X-Rcpt-Args: <rcpt> per RCPT, then the message
# with LF line ends. A probe connection made while waiting for the port is a session too.

. "$(dirname "${BASH_SOURCE[0]}")/net.bash"

sink_start() {
	local dir=$1 port=$2
	shift 2
	mkdir -p "$dir/dump" || return 1
	chmod 755 "$dir"
	chmod 777 "$dir/dump"
	local user=()
	[ "$(id -u)" = 0 ] && user=(-u nobody)
	smtp-sink "${user[@]}" -d "$dir/dump/%M." "$@" "127.0.0.1:$port" 256 \
		>"$dir/sink.out" 2>&1 &
	echo $! >"$dir/sink.pid"
	wait_port "$port" 0.05 && return 0
	echo "smtp-sink did not listen on 127.0.0.1:$port" >&2
	return 1
}

sink_stop() {
	pidfile_stop "$1/sink.pid"
}

sink_dumps() {
	find "$1/dump" -type f | sort
}

sink_count() {
	find "$1/dump" -type f | wc -l
}
