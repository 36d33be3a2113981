#!/usr/bin/env bash
# deps.sh - install the Debian packages that building and testing bufferengine need.
#
# Idempotent: each package is checked with dpkg-query and only the missing ones are
# installed (apt-get update once, then apt-get install --no-install-recommends).
# Runs apt-get directly as root, through sudo otherwise.  Debian 12 package names.
#
#   deps.sh          what building and `make check` need
#   deps.sh --fuzz   those, and clang with libFuzzer for `make fuzz`
#   deps.sh --lint   those, and cppcheck and clang-tidy for `make lint`
#   deps.sh --bench  those, and what `make bench` compares with (never `make check`)
set -euo pipefail

PACKAGES=(
	gcc make libc6-dev      # the compiler; libc6-dev is only a Recommends of gcc
	pkg-config              # the Makefile asks it for every library's flags
	liburing-dev            # io_uring: the daemon's writes and syncs
	libbsd-dev              # strlcpy and friends
	check                   # the unit-test framework (pulls in libsubunit-dev)
	libinih-dev             # the daemon's INI config parser
)

# --fuzz: clang and its runtime (libFuzzer, the sanitizers) for `make fuzz`.
FUZZ_PACKAGES=(clang-14 libclang-rt-14-dev)
# --lint: the static checkers of `make lint` (clang-tidy 14: .clang-tidy's checks).
LINT_PACKAGES=(cppcheck clang-tidy-14)
# --bench: rsyslogd (imuxsock -> omfile), Redis Streams, fio (the disk with the daemon's
# fdatasync cadence), gnuplot (the plot).  The benchmark starts its own rsyslogd and
# redis-server with private configs; installing them starts nothing it uses.
BENCH_PACKAGES=(rsyslog redis-server fio gnuplot-nox)

say() { printf 'deps.sh: %s\n' "$*"; }

for arg in "$@"; do
	case $arg in
	--fuzz) PACKAGES+=("${FUZZ_PACKAGES[@]}") ;;
	--lint) PACKAGES+=("${LINT_PACKAGES[@]}") ;;
	--bench) PACKAGES+=("${BENCH_PACKAGES[@]}") ;;
	*)
		say "unknown option '$arg' (usage: deps.sh [--fuzz] [--lint] [--bench])" >&2
		exit 2
		;;
	esac
done

if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
	say "no dpkg-query/apt-get here: install these (Debian names) by hand: ${PACKAGES[*]}" >&2
	exit 1
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
	status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
	if [[ $status == "install ok installed" ]]; then
		continue
	fi
	missing+=("$pkg")
done

if ((${#missing[@]} == 0)); then
	say "all packages present: ${PACKAGES[*]}"
	exit 0
fi
say "missing: ${missing[*]}"

sudo=()
if [[ $(id -u) != 0 ]]; then
	if ! command -v sudo >/dev/null 2>&1; then
		say "not root and no sudo: as root, run: apt-get install ${missing[*]}" >&2
		exit 1
	fi
	sudo=(sudo)
fi

# Wait for a concurrent apt/dpkg (another make, unattended-upgrades) instead of failing.
apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300)
say "running: ${sudo[*]:+${sudo[*]} }apt-get update"
"${apt[@]}" update -q </dev/null
say "running: ${sudo[*]:+${sudo[*]} }apt-get install -y --no-install-recommends ${missing[*]}"
"${apt[@]}" install -y -q --no-install-recommends "${missing[@]}" </dev/null
say "installed: ${missing[*]}"
