#!/usr/bin/env bash
# bench.sh - the benchmark: bufferengine against what a user would pick instead, side by
# side in one run on this machine (what `make bench` runs; not part of make check or CI).
#
# usage: scripts/bench.sh [BUILD_DIR]        (default: build)
#
# First installs the benchmark-only Debian packages (scripts/bench-deps.sh: rsyslog,
# redis-server, fio, gnuplot-nox; BENCH_NO_DEPS=1 skips that, and a system whose
# program is missing is then reported as not available).  Then runs, from
# $BUILD/bench/ (each prints one CSV line per figure: median, min and max of its runs):
#
#   bench_compare      the append path, payloads 16/64/256/1024 B, 1/2/4 writer
#                      processes: bufferengine, its batch call, the same ring under a
#                      plain mutex, memcpy, write(2) O_APPEND, a UNIX datagram socket and
#                      a pipe to a reader process, rsyslog (imuxsock -> omfile), Redis
#                      Streams (XADD, unpipelined and pipelined x32)
#   bench_durable      writers to fdatasync-ed segments through bufferengined, against
#                      fio writing the same bytes with the same fdatasync cadence; the
#                      daemon's CPU per GB; append latency while the daemon flushes
#   bench_groupcommit  be_flush latency and acknowledgements/s with 1, 2 and 8
#                      processes, against the disk's bare write + fdatasync
#   bench_idle         the daemon's CPU with 8 idle stores, over 10 s windows
#   bench_scale        records/s through the daemon as the ring grows (64 KiB..256 MiB)
#                      and as the stores multiply (1..64)
#
# and bench_report turns their lines into, under bench-results/ (gitignored):
#   bench-<stamp>.md    one table (rate, MB/s, latency percentiles, bufferengine's
#                       ratio, targets met or missed), the targets, the notes, the machine
#   bench-<stamp>.csv   every figure, one line each, with the machine's columns
#   bench-<stamp>.png   the plot (gnuplot): append throughput by payload, and scaling
#   bench-<stamp>.log   the programs' progress output (every run)
#   bench-<stamp>.rows  the programs' CSV lines as printed (build/bench/bench_report --in)
#   latest.md, latest.csv, latest.png   copies of the newest
# and prints the Markdown.  Exits non-zero if a benchmark failed.
#
# Environment:
#   BENCH_DATA_DIR   the filesystem measured: segments, fio's file, write(2)'s file
#                    (default /tmp)
#   BENCH_SCALE_DIR  the scaling runs' data directories (default /dev/shm: the ring and
#                    the daemon, not the disk)
#   BENCH_QUICK=1    fewer records and runs (a smoke test, not figures to quote)
#   BENCH_NO_DEPS=1  do not run scripts/bench-deps.sh
#   BENCH_COMPARE_ARGS, BENCH_DURABLE_ARGS, BENCH_GROUPCOMMIT_ARGS, BENCH_IDLE_ARGS,
#   BENCH_SCALE_ARGS extra options for each program (see its --help)
#   BENCH_TIMEOUT    seconds allowed to each program (default 300)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-build}
case $BUILD in
/*) ;;
*) BUILD=$ROOT/$BUILD ;;
esac
BENCH_BIN=$BUILD/bench
DATA_DIR=${BENCH_DATA_DIR:-/tmp}
SCALE_DIR=${BENCH_SCALE_DIR:-/dev/shm}
TIMEOUT=${BENCH_TIMEOUT:-300}
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

PROGS=(bench_compare bench_durable bench_groupcommit bench_idle bench_scale bench_report)
for prog in "${PROGS[@]}"; do
	[[ -x $BENCH_BIN/$prog ]] || die "$BENCH_BIN/$prog is missing: run make bench"
done
for d in "$DATA_DIR" "$SCALE_DIR"; do
	[[ -d $d ]] || die "$d is not a directory (BENCH_DATA_DIR / BENCH_SCALE_DIR)"
done
DATA_DIR=$(cd "$DATA_DIR" && pwd)
SCALE_DIR=$(cd "$SCALE_DIR" && pwd)

if [[ ${BENCH_NO_DEPS:-0} != 1 ]]; then
	bash "$ROOT/scripts/bench-deps.sh" >&2 ||
		printf 'bench: scripts/bench-deps.sh failed: the systems it would install are left out\n' >&2
fi

mkdir -p "$OUT"
CSV=$OUT/bench-$STAMP.csv
MD=$OUT/bench-$STAMP.md
LOG=$OUT/bench-$STAMP.log
PLOT=$OUT/bench-$STAMP
ROWS=$(mktemp "${TMPDIR:-/tmp}/bench-rows.XXXXXX")

child=
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
	# An interrupted benchmark first: timeout passes the TERM on to it, and it
	# stops its writers, its servers and its daemon.
	if [[ -n $child ]]; then
		kill -TERM "$child" 2>/dev/null || true
		wait "$child" 2>/dev/null || true
	fi
	rm -f "$ROWS"
	rm -rf "/tmp/be-test-$RUN_ID"
	rm -rf "$DATA_DIR"/be-bench-ck"$RUN_ID"x* "$DATA_DIR"/be-bench-cmp-"$RUN_ID"-* \
		"$DATA_DIR"/be-bench-fio-"$RUN_ID"-* "$SCALE_DIR"/be-bench-scale-ck"$RUN_ID"x*
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
data_src=$(df -P -T "$DATA_DIR" | awk 'NR == 2 { print $1 }')
data_mnt=$(df -P -T "$DATA_DIR" | awk 'NR == 2 { print $7 }')
scale_fs=$(df -P -T "$SCALE_DIR" | awk 'NR == 2 { print $2 }')
shm_fs=$(df -P -T /dev/shm | awk 'NR == 2 { print $2 }')
# The disk under it: its model, size and whether it spins (sysfs), when it is a block device.
disk=$data_src
if [[ $data_src == /dev/* ]]; then
	dev=$(basename "$(readlink -f "$data_src")")
	parent=$(lsblk -no PKNAME "/dev/$dev" 2>/dev/null | head -n1 || true)
	blk=${parent:-$dev}
	if [[ -d /sys/block/$blk ]]; then
		model=$(xargs <"/sys/block/$blk/device/model" 2>/dev/null || true)
		vendor=$(xargs <"/sys/block/$blk/device/vendor" 2>/dev/null || true)
		# 0x1af4: the PCI vendor of virtio devices (a virtual machine's disk).
		[[ $vendor == 0x1af4 ]] && vendor="virtio (vendor 0x1af4)"
		size=$(awk '{ printf "%.0f GB", $1 * 512 / 1e9 }' "/sys/block/$blk/size" 2>/dev/null || true)
		rota=$(cat "/sys/block/$blk/queue/rotational" 2>/dev/null || echo '?')
		sched=$(sed -n 's/.*\[\(.*\)\].*/\1/p' "/sys/block/$blk/queue/scheduler" 2>/dev/null || true)
		kind=$([[ $rota == 1 ]] && echo rotational || echo non-rotational)
		disk="$blk (${vendor:+$vendor }${model:-no model string}; $size; $kind${sched:+; scheduler $sched})"
	fi
fi
version=$(sed -n 's/^#define BE_VERSION_STRING "\(.*\)"/\1/p' "$ROOT/include/bufferengine.h")
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
# Whatever else keeps the CPUs busy skews every figure here: name it (1 s of ps's %CPU
# is a life-time average; top's one-second sample is what is running now).
others=$(top -b -n 2 -d 1 2>/dev/null | awk '/^top -/ { n++ } n == 2 && $1 ~ /^[0-9]+$/ && $9 + 0 >= 10 \
	{ printf "%s%s %.0f%%", sep, $12, $9; sep = ", " }' || true)
[[ -n $others ]] || others=none
tool_versions=$(
	{
		command -v rsyslogd >/dev/null 2>&1 || [[ -x /usr/sbin/rsyslogd ]] &&
			printf 'rsyslog %s; ' "$( (rsyslogd -v 2>/dev/null || /usr/sbin/rsyslogd -v) | awk 'NR == 1 { print $2 }')"
		command -v redis-server >/dev/null 2>&1 &&
			printf 'redis %s; ' "$(redis-server --version | sed -n 's/.* v=\([^ ]*\).*/\1/p')"
		command -v fio >/dev/null 2>&1 && printf '%s; ' "$(fio --version)"
		printf 'gcc %s' "$(gcc -dumpfullversion 2>/dev/null || echo '?')"
	} 2>/dev/null || true
)

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
	echo "data dir $DATA_DIR: $data_fs on $disk; scaling data in $SCALE_DIR ($scale_fs)"
	echo "load average before: $load_before; processes using >= 10% CPU: $others"
} | tee "$LOG" >&2

if [[ ${BENCH_QUICK:-0} == 1 ]]; then
	q_compare=(--scale 0.2 --runs 3 --slow-runs 2)
	q_durable=(--runs 2 --volume 50000000 --paced-seconds 1)
	q_gc=(-t 1 -n 2)
	q_idle=(-t 2 -n 2)
	q_scale=(-n 2 --seconds 0.3)
else
	q_compare=()
	q_durable=(--runs 3 --paced-seconds 2)
	q_gc=(-t 2 -n 3)
	q_idle=(-t 10 -n 3)
	q_scale=(-n 3 --seconds 0.5)
fi
start_all=$SECONDS
# shellcheck disable=SC2086 # the *_ARGS are word lists on purpose
run bench_compare --data-dir "$DATA_DIR" "${q_compare[@]}" ${BENCH_COMPARE_ARGS:-}
# shellcheck disable=SC2086
run bench_durable --data-dir "$DATA_DIR" --no-flush "${q_durable[@]}" ${BENCH_DURABLE_ARGS:-}
# shellcheck disable=SC2086
run bench_groupcommit "${q_gc[@]}" ${BENCH_GROUPCOMMIT_ARGS:-}
# shellcheck disable=SC2086
run bench_idle "${q_idle[@]}" ${BENCH_IDLE_ARGS:-}
# shellcheck disable=SC2086
run bench_scale --data-dir "$SCALE_DIR" "${q_scale[@]}" ${BENCH_SCALE_ARGS:-}
# Give the >(tee) of the last run time to finish writing.
wait
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
printf '\n== all benchmarks: %ds\n' $((SECONDS - start_all)) | tee -a "$LOG" >&2

# ---------------------------------------------------------------------------
# The report: Markdown, CSV, plot.

failed=()
((status == 0)) || failed=(--failed)
"$BENCH_BIN/bench_report" --in "$ROWS" --stamp "$STAMP" --md "$MD" --csv "$CSV" --plot "$PLOT" \
	--machine "CPUs=$ncpu ($cpu_model)" \
	--machine "memory=$mem" \
	--machine "kernel=$kernel" \
	--machine "disk=$disk" \
	--machine "data dir=\`$DATA_DIR\`: $data_fs on $data_src mounted on $data_mnt" \
	--machine "rings=/dev/shm: $shm_fs; scaling data: \`$SCALE_DIR\` ($scale_fs)" \
	--machine "bufferengine=$version, built in \`${BUILD#"$ROOT"/}\`" \
	--machine "others=$tool_versions" \
	--machine "load average=before $load_before; after $load_after" \
	--machine "other load at the start=processes at 10% CPU or more: $others" \
	--machine "command=\`make bench\` (scripts/bench.sh${BENCH_QUICK:+, BENCH_QUICK=$BENCH_QUICK}), $((SECONDS - start_all)) s of benchmarks" \
	"${failed[@]}"

if command -v gnuplot >/dev/null 2>&1; then
	if gnuplot "$PLOT.gp" 2>>"$LOG"; then
		cp "$PLOT.png" "$OUT/latest.png"
		echo "![bench-$STAMP.png](bench-$STAMP.png)" >>"$MD"
	else
		printf 'bench: gnuplot failed (see the log): no plot\n' | tee -a "$LOG" >&2
	fi
else
	printf 'bench: gnuplot is not installed: no plot (scripts/bench-deps.sh installs it)\n' |
		tee -a "$LOG" >&2
fi

# The programs' own lines too: bench_report can be run again on them.
cp "$ROWS" "$OUT/bench-$STAMP.rows"
cp "$CSV" "$OUT/latest.csv"
cp "$MD" "$OUT/latest.md"
echo
cat "$MD"
echo
echo "bench: results in ${OUT#"$ROOT"/}/: $(basename "$MD"), $(basename "$CSV"), $(basename "$PLOT").png (log: $(basename "$LOG"))"
exit "$status"
