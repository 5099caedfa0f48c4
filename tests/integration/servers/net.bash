# Loopback ports for the test servers: a free one, and a wait until one listens. Sourced
# (bash) by servers/*.bash, which stand alone without lib.bash (C tests source dovecot.bash).
#
#   free_port              prints a free TCP port on 127.0.0.1 (bound and released by
#                          python; raced only by ourselves)
#   wait_port PORT [DELAY] returns 0 once something listens on 127.0.0.1:PORT, 1 after 100
#                          tries DELAY seconds apart (default 0.1: 10 s)
#   pidfile_stop FILE      stops the background server whose pid FILE holds (started by this
#                          shell) and removes FILE; safe when FILE is missing

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0))
print(s.getsockname()[1]); s.close()'
}

wait_port() {
	local i
	for i in $(seq 1 100); do
		(exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
		sleep "${2:-0.1}"
	done
	return 1
}

pidfile_stop() {
	local pid
	[ -f "$1" ] || return 0
	pid=$(cat "$1")
	rm -f "$1"
	[ -n "$pid" ] || return 0
	kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	return 0
}
