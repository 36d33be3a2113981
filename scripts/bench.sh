#!/usr/bin/env bash
# bench.sh - run the benchmarks and keep their results (what `make bench` runs).
#
# usage: scripts/bench.sh [BUILD_DIR]        (default: build)
#
# Environment:
#   BENCH_DATA_DIR   where bench_durable puts the daemon's data directories
#                    (default /tmp; the filesystem there is what is measured)
#   BENCH_APPEND_ARGS, BENCH_DURABLE_ARGS
#                    extra options for bench_append / bench_durable (see --help)
#   BENCH_TIMEOUT    seconds allowed to each benchmark program (default 150)
#
# Runs $BUILD/bench/bench_append (the append path alone, no daemon) and
# $BUILD/bench/bench_durable (through bufferengined to disk, and be_flush
# latency) and $BUILD/bench/bench_groupcommit (acknowledgements per second
# with 1, 2 and 8 processes flushing at once).  Each prints one CSV line per figure (median, min and max of its
# runs); this script adds the machine (nproc, kernel, CPU model, the
# filesystem of the data directory) and writes, under bench-results/
# (gitignored):
#   bench-<stamp>.csv   every figure, one line each, with the machine's columns
#   bench-<stamp>.md    the same as a Markdown table, with the notes and the machine
#   bench-<stamp>.log   the programs' progress output (every run)
#   latest.csv, latest.md  copies of the newest
# and prints the Markdown.  Exits non-zero if a benchmark failed.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-build}
case $BUILD in
/*) ;;
*) BUILD=$ROOT/$BUILD ;;
esac
BENCH_BIN=$BUILD/bench
DATA_DIR=${BENCH_DATA_DIR:-/tmp}
TIMEOUT=${BENCH_TIMEOUT:-150}
OUT=$ROOT/bench-results
STAMP=$(date -u +%Y%m%d-%H%M%S)
# Every instance, ring, scratch and data directory the programs make is named
# after this run id (tests/testutil.h): what an interrupted run leaves is
# found by it and removed on exit.
RUN_ID=bench$$
export BE_TEST_RUN=$RUN_ID

die() {
	printf 'bench: %s\n' "$*" >&2
	exit 1
}

for prog in bench_append bench_durable bench_groupcommit; do
	[[ -x $BENCH_BIN/$prog ]] || die "$BENCH_BIN/$prog is missing: run make bench"
done
[[ -d $DATA_DIR ]] || die "BENCH_DATA_DIR=$DATA_DIR is not a directory"
DATA_DIR=$(cd "$DATA_DIR" && pwd)

mkdir -p "$OUT"
CSV=$OUT/bench-$STAMP.csv
MD=$OUT/bench-$STAMP.md
LOG=$OUT/bench-$STAMP.log
ROWS=$(mktemp "${TMPDIR:-/tmp}/bench-rows.XXXXXX")

child=
cleanup() {
	# An interrupted benchmark first: timeout passes the TERM on to it, and it
	# stops its writers and its daemon.
	if [[ -n $child ]]; then
		kill -TERM "$child" 2>/dev/null || true
		wait "$child" 2>/dev/null || true
	fi
	rm -f "$ROWS"
	rm -rf "/tmp/be-test-$RUN_ID"
	rm -rf "$DATA_DIR"/be-bench-ck"$RUN_ID"x*
	rm -f /dev/shm/bufferengine.ck"$RUN_ID"x*
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------
# The machine.

cpu_model=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -n1)
[[ -n $cpu_model ]] || cpu_model=$(lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -n1)
[[ -n $cpu_model ]] || cpu_model=unknown
ncpu=$(nproc)
kernel=$(uname -r)
mem=$(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
# df -T: the type and the device of the filesystem holding the data directory.
data_fs=$(df -P -T "$DATA_DIR" | awk 'NR == 2 { print $2 }')
data_dev=$(df -P -T "$DATA_DIR" | awk 'NR == 2 { print $1 " mounted on " $7 }')
shm_fs=$(df -P -T /dev/shm | awk 'NR == 2 { print $2 }')
version=$(sed -n 's/^#define BE_VERSION_STRING "\(.*\)"/\1/p' "$ROOT/include/bufferengine.h")
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------------------
# The benchmarks.  stdout: CSV lines; stderr: progress, shown and logged.

status=0
run() {
	local name=$1
	shift
	printf '\n== %s %s\n' "$name" "$*" | tee -a "$LOG" >&2
	local start=$SECONDS rc=0
	# In the background and waited for, so that a signal to this script is
	# handled at once (the trap stops the benchmark), not after it ends.
	timeout --signal=TERM --kill-after=10 "$TIMEOUT" "$BENCH_BIN/$name" "$@" \
		>>"$ROWS" 2> >(tee -a "$LOG" >&2) &
	child=$!
	wait "$child" || rc=$?
	child=
	if ((rc != 0)); then
		printf 'bench: %s failed (exit %d%s)\n' "$name" "$rc" \
			"$( ((rc == 124)) && echo ", timed out after ${TIMEOUT}s")" | tee -a "$LOG" >&2
		status=1
	fi
	printf '== %s: %ds\n' "$name" $((SECONDS - start)) | tee -a "$LOG" >&2
}

{
	echo "bench.sh $STAMP: $ncpu CPUs ($cpu_model), kernel $kernel, $mem"
	echo "data dir $DATA_DIR: $data_fs ($data_dev); rings in /dev/shm: $shm_fs"
	echo "load average before: $load_before"
} | tee "$LOG" >&2

# shellcheck disable=SC2086 # the *_ARGS are word lists on purpose
run bench_append ${BENCH_APPEND_ARGS:-}
# shellcheck disable=SC2086
run bench_durable --data-dir "$DATA_DIR" ${BENCH_DURABLE_ARGS:-}
run bench_groupcommit
# Give the >(tee) of the last run time to finish writing.
wait
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------------------
# CSV: the programs' columns, then the machine's.

csvq() { printf '"%s"' "${1//\"/\'}"; }
{
	echo "timestamp,bench,system,writers,payload_bytes,metric,unit,median,min,max,runs,note,nproc,kernel,cpu,data_fs"
	machine="$ncpu,$(csvq "$kernel"),$(csvq "$cpu_model"),$(csvq "$data_fs")"
	while IFS= read -r line; do
		[[ -n $line ]] && printf '%s,%s,%s\n' "$STAMP" "$line" "$machine"
	done <"$ROWS"
} >"$CSV"

# ---------------------------------------------------------------------------
# Markdown: one table, the notes numbered below it, then the machine.

{
	echo "# bufferengine benchmarks, $STAMP"
	echo
	echo "| | |"
	echo "|---|---|"
	echo "| CPUs (nproc) | $ncpu |"
	echo "| CPU model | $cpu_model |"
	echo "| memory | $mem |"
	echo "| kernel | $kernel |"
	echo "| data dir | \`$DATA_DIR\`: $data_fs ($data_dev) |"
	echo "| rings | /dev/shm: $shm_fs |"
	echo "| bufferengine | $version, built in \`$BUILD\` |"
	echo "| load average | before $load_before; after $load_after |"
	echo
	echo "Each figure: median of the runs, with min and max. MB = 10^6 bytes."
	echo "Throughput and latency of the append path are measured in separate runs"
	echo "(timing every call perturbs throughput)."
	echo
	awk -F, '
	function fmt(v, unit) {
		if (unit == "records/s") return sprintf("%.2f", v / 1e6)
		if (unit == "MB/s" || unit == "us") return sprintf("%.1f", v)
		if (unit == "ns") return sprintf("%.0f", v)
		return sprintf("%.4g", v)
	}
	function shown_unit(unit) { return unit == "records/s" ? "M records/s" : unit == "us" ? "µs" : unit }
	{
		# The note is the last field, quoted, without commas (bench.h).
		note = $11
		gsub(/^"|"$/, "", note)
		if (!(note in idx)) { idx[note] = ++n; notes[n] = note }
		printf "| %s | %s | %s | %s | %s | **%s** | %s | %s | %s | %s | %s |\n", \
			$1, $2, $3, $4, $5, fmt($7, $6), fmt($8, $6), fmt($9, $6), \
			shown_unit($6), $10, "[" idx[note] "]"
	}
	BEGIN {
		print "| bench | system | writers | payload (B) | metric | median | min | max | unit | runs | note |"
		print "|---|---|---:|---:|---|---:|---:|---:|---|---:|---|"
	}
	END {
		print ""
		for (i = 1; i <= n; i++) printf "%d. %s\n", i, notes[i]
	}' "$ROWS"
	if ((status != 0)); then
		echo
		echo "**A benchmark failed: see $(basename "$LOG").**"
	fi
} >"$MD"

cp "$CSV" "$OUT/latest.csv"
cp "$MD" "$OUT/latest.md"
echo
cat "$MD"
echo
echo "bench: results in ${OUT#"$ROOT"/}/$(basename "$MD") and $(basename "$CSV") (log: $(basename "$LOG"))"
exit "$status"
