#!/usr/bin/env bash
# demarche review (issue 23): the time to fetch every mission page of the example campaign
# (124 missions, en/fr/es) plus the campaign page, 125 pages, with the session cookie:
#   - one curl fetching the 125 URLs over one kept-alive connection: the sum of curl's own
#     time_total per page (first byte sent to last byte received), of the server's part
#     (time_starttransfer - time_pretransfer), and the wall time of the curl process;
#   - a shell loop of 125 curl processes, a new connection each: the sum of curl's own
#     time_total (connect to last byte), and the loop's wall time (mostly starting curl).
# Medians of --reps runs; every page must answer 200.
#
# usage: bench/review/run.sh [--reps N] [--bin DEMARCHE]
#   without --bin a release binary is built in build/bench.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
reps=5 bin=
while [ $# -gt 0 ]; do
	case $1 in
	--reps) reps=$2 && shift ;;
	--bin) bin=$2 && shift ;;
	-h | --help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//' && exit 0 ;;
	*) echo "bench/review/run.sh: unknown option $1 (see --help)" >&2 && exit 64 ;;
	esac
	shift
done
if [ -z "$bin" ]; then
	cmake -S "$ROOT" -B "$ROOT/build/bench" -DCMAKE_BUILD_TYPE=Release -DDEMARCHE_TESTS=OFF >/dev/null
	cmake --build "$ROOT/build/bench" -j2 >/dev/null
	bin=$ROOT/build/bench/demarche
fi
bin=$(realpath "$bin")
W=$(mktemp -d /tmp/demarche-review-bench.XXXXXX)
PID=
trap '[ -n "$PID" ] && kill $PID 2>/dev/null; rm -rf "$W"' EXIT
cd "$W"
export DEMARCHE_TEMPLATES=$ROOT/templates
"$bin" draft asp-session -o appeal --params "$ROOT/templates/asp-session/original.json" >/dev/null 2>&1
"$bin" review appeal --to "$ROOT/recipients/missions.example.csv" \
	--join "$ROOT/recipients/states-parties.csv" >url.txt 2>review.err &
PID=$!
for _ in $(seq 600); do
	grep -q '^http' url.txt 2>/dev/null && break
	sleep 0.1
done
URL=$(head -1 url.txt)
ORIGIN=${URL%%/?token=*}
curl -s -c jar -o /dev/null "$URL"
N=$(grep -o '<b id="kpi-missions">[0-9]*' <(curl -s -b jar "$ORIGIN/") | grep -o '[0-9]*$')
urls=("$ORIGIN/")
for i in $(seq "$N"); do urls+=("$ORIGIN/m/$i"); done
nulls=() # one curl, every page to /dev/null
for u in "${urls[@]}"; do nulls+=(-o /dev/null "$u"); done
median() { sort -g | awk '{v[NR] = $1} END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
now() { date +%s.%N; }

echo "demarche review: ${#urls[@]} pages ($N missions + the campaign), $(nproc) CPUs," \
	"load $(cut -d' ' -f1 /proc/loadavg), $reps runs, medians"
one=() loop=() sum=() onesum=() server=()
for _ in $(seq "$reps"); do
	t0=$(now)
	curl -s -b jar -w '%{http_code} %{time_pretransfer} %{time_starttransfer} %{time_total}\n' \
		"${nulls[@]}" >w.txt
	t1=$(now)
	codes=$(cut -d' ' -f1 w.txt | sort -u)
	[ "$codes" = 200 ] || { echo "a page did not answer 200: $codes" >&2; exit 1; }
	onesum+=("$(awk '{ t += $4 } END { print t }' w.txt)")
	server+=("$(awk '{ t += $3 - $2 } END { print t }' w.txt)")
	one+=("$(echo "$t1 - $t0" | bc -l)")
	t0=$(now)
	total=0
	for u in "${urls[@]}"; do
		read -r code t < <(curl -s -b jar -o /dev/null -w '%{http_code} %{time_total}\n' "$u")
		[ "$code" = 200 ] || { echo "$u did not answer 200" >&2; exit 1; }
		total=$(echo "$total + $t" | bc -l)
	done
	t1=$(now)
	loop+=("$(echo "$t1 - $t0" | bc -l)")
	sum+=("$total")
done
bytes=$(curl -s -b jar "${urls[@]}" | wc -c)
printf '%-52s %8s\n' "what" "seconds"
printf '%-52s %8.3f\n' "${#urls[@]} pages on one connection: transfers (sum)" "$(printf '%s\n' "${onesum[@]}" | median)"
printf '%-52s %8.3f\n' "  of which the server's time to first byte (sum)" "$(printf '%s\n' "${server[@]}" | median)"
printf '%-52s %8.3f\n' "  the curl process, wall (with its start)" "$(printf '%s\n' "${one[@]}" | median)"
printf '%-52s %8.3f\n' "${#urls[@]} connections, one request each (sum)" "$(printf '%s\n' "${sum[@]}" | median)"
printf '%-52s %8.3f\n' "the shell loop of ${#urls[@]} curl processes, wall" "$(printf '%s\n' "${loop[@]}" | median)"
echo "bytes served per pass: $bytes"
