#!/usr/bin/env bash
# kill -9 of demarche send at random moments, then a rerun: every mission ends with exactly
# one delivered copy, except those the ledger lists as unknown (in doubt), which got at most
# one and are never more than the concurrency. 20 trials at concurrency 4, the server taking
# a second to answer each final dot, so that four messages wait for their reply at once.
set -u
. "$(dirname "$0")/lib.bash"
. "$(dirname "$0")/servers/sink.bash"

R="$SRCDIR/recipients"
export DEMARCHE_TEMPLATES="$SRCDIR/templates"
draft_original asp-session
test_ini
SEL=(--where "asp_regional_group=Western European and other States")
CONC=${CONC:-4}
TRIALS=${TRIALS:-20}

for trial in $(seq 1 "$TRIALS"); do
	PORT=$(free_port)
	dir="$WORK/t$trial"
	sink_start "$dir" "$PORT" -W .:1 || fail "smtp-sink"
	CLEANUP+=("sink_stop $dir")
	args=(--store "$dir/ledger.db" send appeal --to "$R/missions.example.csv"
		--join "$R/states-parties.csv" "${SEL[@]}" --via "smtp://127.0.0.1:$PORT" --yes
		--concurrency "$CONC")
	# 25 missions, four at a time, a second each: killed at a random moment once the first
	# messages are out (however slow the binary starts, under valgrind say).
	"$DEMARCHE" "${args[@]}" >/dev/null 2>&1 &
	pid=$!
	for _ in $(seq 600); do
		n=$(sqlite3 "$dir/ledger.db" "select count(*) from deliveries where state = 'sending'" \
			2>/dev/null) || n=0
		[ "${n:-0}" -ge 1 ] && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	sleep "$((RANDOM % 2)).$((RANDOM % 10))"
	kill -9 "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	# The rerun against a quick sink, dumping into the same folder.
	sink_stop "$dir"
	sink_start "$dir" "$PORT" || fail "smtp-sink again"
	"$DEMARCHE" "${args[@]}" >"$dir/out.txt" 2>&1
	rc=$?
	[ "$rc" = 0 ] || [ "$rc" = 75 ] || fail "trial $trial: rerun exited $rc: $(cat "$dir/out.txt")"
	"$DEMARCHE" --store "$dir/ledger.db" verify >/dev/null || fail "trial $trial: verify"
	python3 - "$dir" "$CONC" <<'PY' || fail "trial $trial: see above"
import collections, os, re, sqlite3, sys
d, conc = sys.argv[1], int(sys.argv[2])
copies = collections.Counter()
for name in os.listdir(os.path.join(d, "dump")):
    raw = open(os.path.join(d, "dump", name), "rb").read()
    m = re.search(rb"^Message-ID: <[^.]+\.([A-Z]{3})\.", raw, re.M)
    if not m:
        # what smtp-sink kept of a DATA the kill cut short, when the sink was stopped in turn
        # before it read the end of that connection: never accepted (no final dot), not a
        # copy. A whole message (its closing MIME boundary) always has its Message-ID.
        if raw.rstrip().endswith(b"--"):
            sys.exit(f"{name}: a whole letter without its Message-ID")
        continue
    copies[m.group(1).decode()] += 1
db = sqlite3.connect(os.path.join(d, "ledger.db"))
states = collections.defaultdict(set)
for key, state in db.execute("select key, state from deliveries"):
    states[key].add(state)
if len(states) != 25:
    sys.exit(f"{len(states)} missions in the ledger, expected 25")
unknown = [k for k, s in states.items() if "unknown" in s]
if len(unknown) > conc:
    sys.exit(f"{len(unknown)} missions in doubt, more than the concurrency {conc}")
open(os.path.join(d, "..", "in-doubt.txt"), "a").write(f"{len(unknown)}\n")
for key, s in states.items():
    if key in unknown:
        if copies[key] > 1:
            sys.exit(f"{key}: in doubt but {copies[key]} copies")
    elif s != {"sent"} or copies[key] != 1:
        sys.exit(f"{key}: states {s}, {copies[key]} copies")
PY
	sink_stop "$dir"
done
# The kills must have caught messages waiting for their reply, several at once.
max=$(sort -n "$WORK/in-doubt.txt" | tail -1)
echo "missions in doubt per trial: $(tr '\n' ' ' <"$WORK/in-doubt.txt")"
[ "$max" -ge 2 ] || fail "no trial had two messages in flight: the test does not test concurrency"
pass
