#!/usr/bin/env bash
# demo.sh - show bufferengine working end to end (what `make run` runs).
#
# usage: scripts/demo.sh [BUILD_DIR]     (default: build)
#
# Starts bufferengined with its built-in config (no -c) under a fresh instance name
# ($BE_INSTANCE=demo<pid>, which the built-in config follows), from ./run/ so that the
# config's data_dir, ./be-data, is run/be-data in the checkout.  Once the rings exist it
# starts the three demo collectors, each linked against libbufferengine:
#   demo-metrics  CPU, memory, load and disk metrics every 100 ms  -> store metrics
#   demo-procs    a snapshot of the process table every second      -> store processes
#   demo-logs     the lines of /var/log/dpkg.log                   -> store logs
# Halfway it kills the daemon with SIGKILL: the collectors keep writing into the rings,
# and a new daemon takes over where the dead one stopped.  After DEMO_SECONDS (20) it
# stops the collectors with SIGTERM (each flushes and prints how many records it
# wrote), shows the rings with shm-dump and the first records of each store with
# be-read, and checks per store that be-read finds exactly the records the collectors
# wrote.  Then it stops the daemon with SIGTERM and removes the rings; the segments
# stay in run/be-data/ to look at, and the next run starts afresh.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-build}
case $BUILD in
/*) ;;
*) BUILD=$ROOT/$BUILD ;;
esac
BIN=$BUILD/bin
RUN=$ROOT/run
DATA=$RUN/be-data # the built-in config's data_dir, ./be-data, seen from $RUN
INSTANCE=demo$$
DEMO_SECONDS=${DEMO_SECONDS:-20}
KILL_AT=$((DEMO_SECONDS * 3 / 10)) # SIGKILL the daemon here ...
DOWN_SECONDS=6 # ... and start another this much later (shm-dump: "stale" after 5 s)
SHM=/dev/shm/bufferengine.$INSTANCE
# store, and the collector that writes it
STORES=(metrics processes logs)
COLLECTORS=(demo-metrics demo-procs demo-logs)
declare -A COLLECTOR=([metrics]=demo-metrics [processes]=demo-procs [logs]=demo-logs)

export BE_INSTANCE=$INSTANCE

daemon_pid=
daemon_runs=0
declare -A collector_pid=()

step() { printf '\n== [t+%2ds] %s\n' "$((SECONDS - t0))" "$*"; }
die() {
	printf 'demo: %s\n' "$*" >&2
	exit 1
}

# Stop a process of ours: SIGTERM, up to 5 s, then SIGKILL.
stop_pid() {
	local pid=$1
	kill -0 "$pid" 2>/dev/null || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for _ in $(seq 50); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

cleanup() {
	local rc=$? name
	trap - EXIT INT TERM
	for name in "${!collector_pid[@]}"; do
		stop_pid "${collector_pid[$name]}"
	done
	[[ -z $daemon_pid ]] || stop_pid "$daemon_pid"
	rm -f "$SHM".* "$SHM"
	if ((rc != 0)) && ((daemon_runs > 0)) && [[ -s $RUN/bufferengined.$daemon_runs.log ]]; then
		printf '\n== daemon log (%s)\n' "$RUN/bufferengined.$daemon_runs.log" >&2
		tail -n 20 "$RUN/bufferengined.$daemon_runs.log" >&2
	fi
	exit "$rc"
}

# Start bufferengined with the built-in config, in $RUN; log to bufferengined.N.log.
start_daemon() {
	daemon_runs=$((daemon_runs + 1))
	(cd "$RUN" && exec "$BIN/bufferengined") >"$RUN/bufferengined.$daemon_runs.log" 2>&1 &
	daemon_pid=$!
}

# Wait until the daemon has created or attached the ring of every store.
wait_rings() {
	local log=$RUN/bufferengined.$daemon_runs.log s ready
	for _ in $(seq 100); do
		kill -0 "$daemon_pid" 2>/dev/null ||
			die "bufferengined exited early: $(tail -n 1 "$log")"
		ready=1
		for s in "${STORES[@]}"; do
			[[ -e $SHM.$s ]] && grep -q "\[$s\] info: ring \(created\|attached\)" "$log" ||
				ready=
		done
		[[ -z $ready ]] || return 0
		sleep 0.05
	done
	die "bufferengined did not set up the rings of ${STORES[*]} within 5 s (log: $log)"
}

for prog in bufferengined shm-dump be-read "${COLLECTORS[@]}"; do
	[[ -x $BIN/$prog ]] || die "$BIN/$prog is missing: run make first"
done

trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
t0=$SECONDS

rm -rf "$RUN"
mkdir -p "$RUN"

# demo-logs reads /var/log/dpkg.log itself when it is there; else it gets another real
# log on its standard input, or at least the log of the daemon's start.
log_args=()
log_input=/dev/null
if [[ ! -r /var/log/dpkg.log ]]; then
	log_input=
	for f in /var/log/apt/history.log /var/log/alternatives.log /var/log/bootstrap.log; do
		if [[ -r $f && -s $f ]]; then
			log_input=$f
			break
		fi
	done
fi

step "bufferengined, built-in config, instance $INSTANCE, in $RUN"
"$BIN/bufferengined" --check-config
start_daemon
wait_rings
echo "daemon pid $daemon_pid; data in $DATA; log $RUN/bufferengined.$daemon_runs.log"
sed 's/^/  /' "$RUN/bufferengined.$daemon_runs.log"
if [[ -z $log_input ]]; then
	log_input=$RUN/bufferengined.1.log
	log_args=(--category bufferengined)
fi

step "collectors for ${DEMO_SECONDS} s: ${COLLECTORS[*]}"
for s in "${STORES[@]}"; do
	name=${COLLECTOR[$s]}
	args=(--instance "$INSTANCE" --store "$s" --duration $((DEMO_SECONDS + 30)))
	input=/dev/null
	if [[ $s == logs ]]; then
		args+=("${log_args[@]}")
		input=$log_input
		[[ $input == /dev/null ]] || args+=(-)
	fi
	"$BIN/$name" "${args[@]}" <"$input" >"$RUN/$name.out" 2>"$RUN/$name.err" &
	collector_pid[$name]=$!
	printf '%-13s pid %-7s %s\n' "$name" "$!" "${args[*]}"
done
[[ $log_input == /dev/null ]] && echo "demo-logs reads /var/log/dpkg.log" ||
	echo "demo-logs reads $log_input on its standard input"

sleep "$KILL_AT"
step "SIGKILL bufferengined ($daemon_pid): the collectors keep writing into the rings"
kill -KILL "$daemon_pid"
{ wait "$daemon_pid"; } 2>/dev/null || true # no "Killed" notice from bash
daemon_pid=
sleep "$DOWN_SECONDS"
echo "after ${DOWN_SECONDS} s without a daemon: UNFLUSHED grows, the heartbeat (HB) is stale"
"$BIN/shm-dump" -i "$INSTANCE"

step "a new bufferengined takes over"
start_daemon
wait_rings
echo "daemon pid $daemon_pid; log $RUN/bufferengined.$daemon_runs.log"
sed 's/^/  /' "$RUN/bufferengined.$daemon_runs.log"

sleep $((DEMO_SECONDS - KILL_AT - DOWN_SECONDS))
step "SIGTERM to the collectors: each flushes, then says what it wrote"
for s in "${STORES[@]}"; do
	kill -TERM "${collector_pid[${COLLECTOR[$s]}]}" 2>/dev/null || true
done
failed=
for s in "${STORES[@]}"; do
	name=${COLLECTOR[$s]}
	rc=0
	wait "${collector_pid[$name]}" || rc=$?
	unset "collector_pid[$name]"
	cat "$RUN/$name.out"
	if ((rc != 0)); then
		sed "s/^/  /" "$RUN/$name.err"
		echo "  $name exited with status $rc"
		failed=1
	fi
done
[[ -z $failed ]] || die "a collector failed"

step "shm-dump -i $INSTANCE"
"$BIN/shm-dump" -i "$INSTANCE"

declare -A read_back=()
for s in "${STORES[@]}"; do
	step "be-read --json $DATA/$s | head -n 3   (lines cut at 300 characters)"
	rc=0
	"$BIN/be-read" --json "$DATA/$s" >"$RUN/$s.jsonl" 2>"$RUN/$s.read.err" || rc=$?
	head -n 3 "$RUN/$s.jsonl" | awk '{ if (length($0) > 300) $0 = substr($0, 1, 300) "..."; print }'
	read_back[$s]=$(wc -l <"$RUN/$s.jsonl")
	[[ ! -s $RUN/$s.read.err ]] || sed 's/^/  /' "$RUN/$s.read.err"
	((rc == 0)) || die "be-read $DATA/$s exited with status $rc"
done

step "records written by the collectors vs read back from the segments"
printf '%-10s %-13s %9s %10s\n' store collector written "read back"
status=0
for s in "${STORES[@]}"; do
	name=${COLLECTOR[$s]}
	written=$(sed -n "s/^$name: \([0-9]*\) records written to .*/\1/p" "$RUN/$name.out")
	[[ -n $written ]] || die "no summary line from $name in $RUN/$name.out"
	verdict=OK
	if [[ $written != "${read_back[$s]}" ]]; then
		verdict=MISMATCH
		status=1
	fi
	printf '%-10s %-13s %9s %10s  %s\n' "$s" "$name" "$written" "${read_back[$s]}" "$verdict"
done

step "SIGTERM to bufferengined ($daemon_pid)"
kill -TERM "$daemon_pid"
rc=0
wait "$daemon_pid" || rc=$?
daemon_pid=
((rc == 0)) || die "bufferengined exited with status $rc"
echo "bufferengined exited 0; the end of its log:"
tail -n 3 "$RUN/bufferengined.$daemon_runs.log" | sed 's/^/  /'
rm -f "$SHM".* "$SHM"
echo "rings of instance $INSTANCE removed from /dev/shm"
((status == 0)) || die "records written and read back differ (see above)"

step "done in $((SECONDS - t0)) s"
cat <<EOF
Shown: bufferengined (built-in config, instance $INSTANCE) draining the rings of the
stores ${STORES[*]} into segment files, while three collectors wrote
metrics, process snapshots and log lines through libbufferengine.  The daemon was
killed with SIGKILL after ${KILL_AT} s; the collectors kept writing into the rings, and a
new daemon carried on from them: every record written was read back, exactly once.
The segments stay in $DATA; be-read decodes them.
EOF
