# Sourced by the benchmarks: build_ledger_bench BUILD compiles bench/ledger/ledger_bench.c
# against BUILD's libdemarche_core.a, with every library the core archive may pull in (the
# same list as tests/fuzz/Makefile).
build_ledger_bench() {
	local root
	root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
	# shellcheck disable=SC2046
	cc -O2 -std=c17 -D_GNU_SOURCE -Wall -Wextra -I"$root/src" -o "$1/ledger_bench" \
		"$root/bench/ledger/ledger_bench.c" "$1/libdemarche_core.a" \
		$(pkg-config --libs libcurl libetpan sqlite3 libcmark jansson inih libcrypto xlsxwriter \
			libsodium libmicrohttpd libpq pangocairo cairo-pdf librsvg-2.0 fontconfig) -lcsv -lm
}
