#!/usr/bin/env bash
# bench-deps.sh - the Debian packages that only `make bench` needs (rsyslog,
# redis-server, fio, gnuplot-nox): scripts/deps.sh --bench, which also checks the
# build's own.  `make check` never needs them.
set -euo pipefail
exec bash "$(dirname "$0")/deps.sh" --bench
