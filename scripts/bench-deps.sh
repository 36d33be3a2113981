#!/usr/bin/env bash
# bench-deps.sh - install the Debian packages that only `make bench` needs: the systems
# the benchmark compares bufferengine with, and the plot.  `make check` never needs them.
#
#   rsyslog       rsyslogd: imuxsock -> omfile, end to end (bench_compare)
#   redis-server  Redis Streams: XADD over a UNIX socket, appendfsync everysec
#   fio           the disk's sequential write with the daemon's fdatasync cadence
#   gnuplot-nox   the PNG plot of bench-results/
#
# The same apt logic as scripts/deps.sh: idempotent (dpkg-query first, only the missing
# ones installed: apt-get update once, then apt-get install --no-install-recommends),
# as root directly, through sudo otherwise.  Installing rsyslog or redis-server does
# not start anything the benchmark uses: it runs its own rsyslogd and redis-server,
# each with a private config, socket, pid file and directory.
set -euo pipefail

PACKAGES=(
	rsyslog
	redis-server
	fio
	gnuplot-nox
)

say() { printf 'bench-deps.sh: %s\n' "$*"; }

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
