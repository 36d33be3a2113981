#!/usr/bin/env bash
# demo.sh - show bufferengine working end to end (what `make run` runs).
#
# usage: scripts/demo.sh [BUILD_DIR]     (default: build)
#
# Writes a config with one raw store `demo` into ./demo-run/, starts bufferengined
# on it under a fresh instance name, pipes some lines through be-write, shows the ring
# with shm-dump and the segments with be-read, then stops the daemon with SIGTERM and
# removes the rings from /dev/shm.  The segments stay in demo-run/data/ to look at;
# the next run starts afresh.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-build}
case $BUILD in
/*) ;;
*) BUILD=$ROOT/$BUILD ;;
esac
BIN=$BUILD/bin
RUN=$ROOT/demo-run
INSTANCE=demo$$
STORE=demo
CONFIG=$RUN/demo.ini
DATA=$RUN/data
LOG=$RUN/bufferengined.log
daemon_pid=

step() { printf '\n== %s\n' "$*"; }
die() {
	printf 'demo: %s\n' "$*" >&2
	exit 1
}

for prog in bufferengined be-write shm-dump be-read; do
	[[ -x $BIN/$prog ]] || die "$BIN/$prog is missing: run make first"
done

cleanup() {
	local rc=$?
	if [[ -n $daemon_pid ]] && kill -0 "$daemon_pid" 2>/dev/null; then
		kill -TERM "$daemon_pid" 2>/dev/null || true
		for _ in $(seq 50); do
			kill -0 "$daemon_pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$daemon_pid" 2>/dev/null || true
		wait "$daemon_pid" 2>/dev/null || true
	fi
	rm -f "/dev/shm/bufferengine.$INSTANCE".* "/dev/shm/bufferengine.$INSTANCE"
	if ((rc != 0)) && [[ -s $LOG ]]; then
		printf '\n== daemon log (%s)\n' "$LOG" >&2
		tail -n 20 "$LOG" >&2
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

rm -rf "$RUN"
mkdir -p "$DATA"
cat >"$CONFIG" <<EOF
; written by scripts/demo.sh
[engine]
instance = $INSTANCE
data_dir = $DATA
max_workers = 1
shutdown_flush_timeout = 5s

[store $STORE]
type = raw
capacity = 1M
flush_bytes = 64K
flush_interval = 500ms
on_full = block
sync = batch
segment_bytes = 4M
retain_bytes = 0
EOF

step "config $CONFIG"
cat "$CONFIG"

step "bufferengined -c $CONFIG   (log: $LOG)"
"$BIN/bufferengined" -c "$CONFIG" >"$LOG" 2>&1 &
daemon_pid=$!
echo "daemon pid $daemon_pid, instance $INSTANCE"
up=
for _ in $(seq 50); do
	kill -0 "$daemon_pid" 2>/dev/null || die "bufferengined exited early"
	if "$BIN/shm-dump" -i "$INSTANCE" >/dev/null 2>&1; then
		up=1
		break
	fi
	sleep 0.1
done
[[ -n $up ]] || die "shm-dump -i $INSTANCE did not see the rings within 5 s"

step "ls /etc | head -50, then 3 timestamps | be-write -i $INSTANCE $STORE"
ls /etc >"$RUN/etc.txt"
{
	head -n 50 "$RUN/etc.txt"
	for i in 1 2 3; do
		echo "demo tick $i at $(date --iso-8601=ns)"
	done
} >"$RUN/input.txt"
lines=$(wc -l <"$RUN/input.txt")
"$BIN/be-write" -i "$INSTANCE" "$STORE" <"$RUN/input.txt"
echo "be-write: $lines records written and durable"

step "shm-dump -i $INSTANCE"
"$BIN/shm-dump" -i "$INSTANCE"

step "be-read $DATA/$STORE   (first 10 lines)"
"$BIN/be-read" "$DATA/$STORE" >"$RUN/read.txt"
head -n 10 "$RUN/read.txt"
read_lines=$(wc -l <"$RUN/read.txt")
echo "... $read_lines lines in all ($RUN/read.txt)"

step "be-read --json $DATA/$STORE | head -n 5"
"$BIN/be-read" --json "$DATA/$STORE" >"$RUN/read.jsonl"
head -n 5 "$RUN/read.jsonl"

step "SIGTERM to bufferengined ($daemon_pid)"
kill -TERM "$daemon_pid"
status=0
wait "$daemon_pid" || status=$?
daemon_pid=
[[ $status == 0 ]] || die "bufferengined exited with status $status"
echo "bufferengined exited 0; its log:"
sed 's/^/  /' "$LOG"

step "done"
cat <<EOF
Shown: a daemon (instance $INSTANCE) draining the shared-memory ring of the raw store
'$STORE' into segment files; $lines lines written by be-write, each one record, durable
before it exited; the ring's state in shm-dump; the records decoded back from the
segments by be-read, as text and as JSON Lines.  The rings are removed now; the
segments stay in $DATA/$STORE.
EOF
