#!/usr/bin/env bash
# Ledger benchmark: cost of one durable transition, and `audit CAMPAIGN` (and verify) on a
# generated store of 1,000,000 sent deliveries. Usage: bench/ledger/run.sh [N] [DIR]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
N=${1:-1000000}
DIR=${2:-$(mktemp -d /tmp/demarche-bench-XXXXXX)}
BUILD=$ROOT/build/bench
. "$ROOT/bench/lib/ledger-bench.bash"
# shellcheck disable=SC2086
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DDEMARCHE_TESTS=OFF \
	${BENCH_CMAKE_ARGS:-} >/dev/null
cmake --build "$BUILD" -j2 >/dev/null
build_ledger_bench "$BUILD"
DEMARCHE=$BUILD/demarche

echo "== $(date -u +%FT%TZ) $(uname -m), $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)," \
	"SQLite $(pkg-config --modversion sqlite3), store in $DIR"
"$BUILD/ledger_bench" durable "$DIR/durable.db" 2000
"$BUILD/ledger_bench" generate "$DIR/big.db" "$N"
ls -l "$DIR/big.db" | awk '{printf "store: %.0f MB\n", $5 / 1048576}'
# Wall and CPU (user + sys) time of the second of two runs (the first warms the page cache).
timeit() { # label, command...
	local label=$1 t
	shift
	"$@" >/dev/null || [ $? -eq 1 ] # audit CAMPAIGN exits 1 when not all are sent
	t=$( {
		TIMEFORMAT='%R %U %S'
		time "$@" >/dev/null 2>&1
	} 2>&1) || true
	read -r wall user sys <<<"$t"
	printf '%-34s %6.3f s wall, %6.3f s cpu\n' "$label" "$wall" "$(echo "$user + $sys" | bc)"
}
timeit "audit bench (table, $N rows)" "$DEMARCHE" --store "$DIR/big.db" audit bench
timeit "audit bench --format csv" "$DEMARCHE" --store "$DIR/big.db" audit bench --format csv
timeit "audit bench --format json" "$DEMARCHE" --store "$DIR/big.db" audit bench --format json
timeit "audit (campaign summary)" "$DEMARCHE" --store "$DIR/big.db" audit
timeit "verify ($((3 * N + 1)) events)" "$DEMARCHE" --store "$DIR/big.db" verify
# the quick check send, audit and bounces run first (must stay under 0.2 s at 1M deliveries)
"$BUILD/ledger_bench" check "$DIR/big.db" 7
[ -n "${2:-}" ] || rm -rf "$DIR"
