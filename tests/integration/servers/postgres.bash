# A throwaway PostgreSQL 15 for tests (Debian postgresql-15): initdb in DIR, the server on a
# unix socket in DIR only (no TCP), run as the unprivileged user `postgres` when started as
# root. Sourced (bash).
#
#   pg_start DIR          initdb + pg_ctl start; sets PG_BASE: a libpq key=value string
#                         (host=DIR/sock port=... user=demarche) without dbname
#   pg_createdb DIR NAME  a new empty database NAME; prints its connection string
#   pg_psql DIR NAME SQL  runs SQL in database NAME (prints the rows, unaligned)
#   pg_stop DIR           stops it (safe when not running)

. "$(dirname "${BASH_SOURCE[0]}")/net.bash"

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}

_pg_as() { # runs a command as the server's owner
	if [ "$(id -u)" = 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

pg_start() {
	local dir=$1 port
	[ -x "$PG_BIN/initdb" ] || {
		echo "PostgreSQL 15 is not installed ($PG_BIN/initdb): apt-get install postgresql-15" >&2
		return 1
	}
	mkdir -p "$dir/data" "$dir/sock" || return 1
	chmod 755 "$dir"
	[ "$(id -u)" = 0 ] && chown postgres "$dir/data" "$dir/sock"
	chmod 700 "$dir/data"
	# a port number only names the socket file; nothing listens on TCP
	port=$(free_port)
	_pg_as "$PG_BIN/initdb" -D "$dir/data" -U demarche --auth=trust -E UTF8 --locale=C.UTF-8 \
		>"$dir/initdb.out" 2>&1 || {
		echo "initdb failed: $(tail -3 "$dir/initdb.out")" >&2
		return 1
	}
	_pg_as "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/data/server.log" -w -t 60 \
		-o "-c listen_addresses='' -c unix_socket_directories='$dir/sock' -p $port -c fsync=off -c max_connections=40" \
		start >"$dir/pg_ctl.out" 2>&1 || {
		echo "PostgreSQL did not start: $(tail -5 "$dir/data/server.log" 2>/dev/null)" >&2
		return 1
	}
	echo "$port" >"$dir/port"
	PG_BASE="host=$dir/sock port=$port user=demarche"
	export PG_BASE
}

pg_createdb() {
	local dir=$1 name=$2 port
	port=$(cat "$dir/port")
	"$PG_BIN/psql" -X -q -h "$dir/sock" -p "$port" -U demarche -d postgres \
		-c "CREATE DATABASE \"$name\"" >/dev/null || return 1
	echo "host=$dir/sock port=$port user=demarche dbname=$name"
}

pg_psql() {
	local dir=$1 name=$2 port
	port=$(cat "$dir/port")
	"$PG_BIN/psql" -X -q -A -t -h "$dir/sock" -p "$port" -U demarche -d "$name" -c "$3"
}

pg_stop() {
	local dir=$1
	[ -f "$dir/data/postmaster.pid" ] || return 0
	_pg_as "$PG_BIN/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1
}
