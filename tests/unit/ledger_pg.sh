# Runs the ledger's unit suite (the binary given) against a throwaway PostgreSQL 15.
set -u
. "$(dirname "$0")/../integration/servers/postgres.bash"
DIR=$(mktemp -d /tmp/demarche-ledger-pg-XXXXXX)
chmod 755 "$DIR"
trap 'pg_stop "$DIR"; rm -rf "$DIR"' EXIT
pg_start "$DIR" || exit 1
# each crash run opens a connection: fewer runs than on SQLite keep the suite quick
export LEDGER_CRASH_RUNS=${LEDGER_CRASH_RUNS:-15}
DEMARCHE_TEST_STORE=$PG_BASE "$1"
