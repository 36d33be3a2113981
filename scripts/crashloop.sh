#!/usr/bin/env bash
# crashloop.sh - SIGKILL bufferengined again and again while writers write, then
# check that every record is on disk exactly once and in order.
#
# usage: scripts/crashloop.sh [--rounds N] [--writers W] [--seed S] [--daemon PATH]
#                             [--keep] [--crash-points] [--verbose]
#
# Builds what it needs (make in the repo root), then runs
# $BUILD/tests/helper-crashloop with the arguments (--rounds defaults to 1000
# here), and exits with its status: 0 nothing lost, duplicated or reordered;
# 1 the check failed; 2 bad arguments; 3 the run could not be carried out.
# The helper prints its seed: --seed S replays the same kill schedule.
# --crash-points runs the test build of the daemon, each start with its own
# BE_CRASH_AT=<point>:<N> (server/hooks.h), on top of the random SIGKILLs.
#
# Environment:
#   SANITIZE   passed to make (e.g. address,undefined): the helper and the
#              daemon of that build are used (build-address-undefined/)
#   AUTO_DEPS  passed to make (0: do not run scripts/deps.sh)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SANITIZE=${SANITIZE:-}
BUILD=$ROOT/build${SANITIZE:+-${SANITIZE//,/-}}
HELPER=$BUILD/tests/helper-crashloop

usage() {
	sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"
}

have_rounds=0
keep=0
for arg in "$@"; do
	case $arg in
	-h | --help)
		usage
		exit 0
		;;
	--rounds | --rounds=*) have_rounds=1 ;;
	--keep) keep=1 ;;
	esac
done
args=("$@")
if ((!have_rounds)); then
	args=(--rounds 1000 "${args[@]}")
fi

make_args=(-s -C "$ROOT" --no-print-directory)
[[ -n $SANITIZE ]] && make_args+=("SANITIZE=$SANITIZE")
[[ -n ${AUTO_DEPS:-} ]] && make_args+=("AUTO_DEPS=$AUTO_DEPS")
if ! make "${make_args[@]}" all "${HELPER#"$ROOT"/}" "${BUILD#"$ROOT"/}/tests/bufferengined-hooks" >&2; then
	printf 'crashloop: the build failed\n' >&2
	exit 3
fi

# Everything the helper makes is named after this run id (tests/testutil.h);
# what an interrupted run leaves is found by it and removed on exit.
RUN_ID=cl$$
export BE_TEST_RUN=$RUN_ID
cleanup() {
	((keep)) && return 0
	rm -rf "/tmp/be-test-$RUN_ID"
	rm -f /dev/shm/bufferengine.ck"$RUN_ID"x*
}
trap cleanup EXIT

start=$(date +%s.%N)
set +e
"$HELPER" "${args[@]}"
rc=$?
set -e
end=$(date +%s.%N)
awk -v rc="$rc" -v a="$start" -v b="$end" \
	'BEGIN { printf "crashloop.sh: exit %d, wall time %.1f s\n", rc, b - a }' </dev/null
exit "$rc"
