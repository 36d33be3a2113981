#!/usr/bin/env bash
# run.sh - run the libFuzzer targets that `make fuzz` built, one after the other,
# and print what each did: executions, executions a second, coverage, crashes.
#
#   run.sh FUZZ_DIR SECONDS TARGET...
#
# FUZZ_DIR holds the binaries fuzz_TARGET.  Each runs for SECONDS on
#   FUZZ_DIR/corpus/TARGET/        its working corpus (grows, kept across runs)
#   tests/fuzz/corpus/TARGET/      the committed seeds (read only)
#   tests/fuzz/regress/TARGET/     inputs that once crashed it (read only)
# with tests/fuzz/TARGET.dict when there is one; its output goes to
# FUZZ_DIR/TARGET.log, a crash to FUZZ_DIR/artifacts/TARGET/.  FUZZ_ARGS adds
# libFuzzer options to every run.  Exit status: 0 when no target crashed.
set -uo pipefail

if (($# < 3)); then
	echo "usage: run.sh FUZZ_DIR SECONDS TARGET..." >&2
	exit 2
fi
dir=$1
secs=$2
shift 2
src=$(cd "$(dirname "$0")" && pwd)

# The largest input worth trying, per target.
max_len() {
	case $1 in
	segment) echo 65536 ;;
	collect) echo 65600 ;;
	ring_validate) echo 4104 ;;
	config) echo 8192 ;;
	*) echo 16384 ;;
	esac
}

failed=()
summary=()
for t in "$@"; do
	bin=$dir/fuzz_$t
	if [[ ! -x $bin ]]; then
		echo "fuzz: $bin: not built" >&2
		failed+=("$t")
		continue
	fi
	mkdir -p "$dir/corpus/$t" "$dir/artifacts/$t"
	seeds=()
	for d in "$src/corpus/$t" "$src/regress/$t"; do
		[[ -d $d ]] && seeds+=("$d")
	done
	opts=(-max_total_time="$secs" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048
	      -max_len="$(max_len "$t")" -artifact_prefix="$dir/artifacts/$t/")
	[[ -f $src/$t.dict ]] && opts+=(-dict="$src/$t.dict")
	log=$dir/$t.log
	printf 'fuzz: %-14s %s s ...\n' "$t" "$secs"
	# shellcheck disable=SC2086
	UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
		"$bin" "${opts[@]}" ${FUZZ_ARGS:-} "$dir/corpus/$t" "${seeds[@]}" >"$log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
	rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -1)
	last=$(grep -E '^#[0-9]+' "$log" | tail -1)
	cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
	ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
	corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9a-zA-Z]*\).*/\1/p' <<<"$last")
	line=$(printf '%-14s execs %-10s exec/s %-7s cov %-6s ft %-6s corpus %-12s rss %s MB' \
		"$t" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "${rss:-?}")
	if ((rc != 0)); then
		line+="  CRASH (exit $rc): see $log"
		failed+=("$t")
		grep -E '^(==[0-9]+==ERROR|SUMMARY|.*fuzz check failed|.*runtime error)' "$log" | head -5 |
			sed 's/^/    /'
		ls -1 "$dir/artifacts/$t/" 2>/dev/null | sed "s|^|    artifact: $dir/artifacts/$t/|"
	fi
	echo "  $line"
	summary+=("$line")
done

echo "fuzz: summary ($secs s a target)"
printf '  %s\n' "${summary[@]}"
if ((${#failed[@]})); then
	echo "fuzz: FAILED: ${failed[*]}" >&2
	exit 1
fi
