# Helpers for bench/run (sourced): wall clock and peak RSS of a command, medians, rates.

now() { date +%s.%N; }

# timed RSSFILE CMD...: runs CMD (stdout to out.txt, stderr to err.txt), prints its wall time
# in seconds, writes GNU time's peak RSS (KB) to RSSFILE; a failing CMD stops the bench.
timed() {
	local rssfile=$1 a b
	shift
	a=$(now)
	/usr/bin/time -f %M -o "$rssfile" "$@" >out.txt 2>err.txt || {
		echo "bench/run: failed: $*" >&2
		tail -5 err.txt >&2
		return 1
	}
	b=$(now)
	printf '%.3f\n' "$(echo "$b - $a" | bc -l)"
}

median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {
	print (NR % 2) ? v[(NR + 1) / 2] : sprintf("%.3f", (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }

rate() { awk -v n="$1" -v s="$2" 'BEGIN { printf (s > 0 ? "%.0f" : "-"), n / s }'; }

# ratio LIMIT_SECONDS SECONDS: throughput relative to the limit (>= 1 is as fast).
ratio() { awk -v l="$1" -v s="$2" 'BEGIN { printf "%.3f", l / s }'; }

kb_mb() { [ -n "${1:-}" ] && awk -v k="$1" 'BEGIN { printf "%.1f MB", k / 1024 }' || true; }

# The sink's message counter (smtp-sink -c writes "... mesg=N" with carriage returns).
sink_mesg() { tr '\r' '\n' <"$1" | sed -n 's/.*mesg=\([0-9]*\).*/\1/p' | tail -1 | grep . || echo 0; }

# check_sink FILE BEFORE N WHAT: the sink counted N more messages (it may print late).
check_sink() {
	local after _
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		after=$(sink_mesg "$1")
		[ $((after - $2)) -ge "$3" ] && return 0
		sleep 0.2
	done
	echo "bench/run: $4: the sink counted $((after - $2)) messages, expected $3" >&2
	return 1
}
