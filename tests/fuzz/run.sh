#!/bin/bash
# Runs the libFuzzer targets (built by mk/fuzz.mk).
#
#   run.sh fuzz  SECONDS TARGET...   long runs; the corpus grows in build/fuzz/corpus/<target>
#   run.sh smoke SECONDS TARGET...   CI: a fresh copy of the seeds, one TAP line per target
#
# Each run prints the executions, libFuzzer's coverage (cov = covered edges,
# ft = features) and the corpus size.  Crashes, leaks, UB, timeouts and
# out-of-memory are written to build/fuzz/artifacts/ and make the exit
# status non-zero.  Saved regression inputs (tests/fuzz/regress/<target>/)
# are run first, every time.
set -uo pipefail

mode=$1 secs=$2
shift 2
B=build/fuzz
mkdir -p "$B/artifacts" "$B/logs"

# Flags common to both modes.  -timeout: an input that runs this long is a hang.
common=(-timeout=25 -rss_limit_mb=2048 -print_final_stats=1 -max_total_time="$secs"
	-dict=tests/fuzz/dd.dict)
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

max_len() {
	case $1 in
	fuzz_block) echo 4098 ;;
	*) echo 1024 ;;
	esac
}

# summary LOG: "N execs, cov C ft F, corpus K" (fork mode, -fork=N: the
# parent's "#N: cov: ..." lines, whose cov counts differently)
summary() {
	local log=$1 execs cov ft corp last
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	[ -n "$execs" ] || execs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$log" | tail -1)
	last=$(grep -E '^#[0-9]+[[:space:]]' "$log" | grep ' cov: ' | tail -1)
	if [ -z "$last" ]; then
		last=$(grep -E '^#[0-9]+: cov: ' "$log" | tail -1)
		[ -n "$execs" ] || execs=$(sed -n 's/^#\([0-9]*\): .*/\1/p' <<<"$last")
		corp=$(sed -n 's/.* corp: \([0-9]*\) .*/\1/p' <<<"$last")
	else
		corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9]*[a-zA-Z]*\).*/\1/p' <<<"$last")
	fi
	cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
	ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
	echo "${execs:-0} execs, cov ${cov:-?} ft ${ft:-?}, corpus ${corp:-?}"
}

n=0 rc=0
[ "$mode" = smoke ] && echo "1..$#"
for t in "$@"; do
	n=$((n + 1))
	bin=$B/$t
	log=$B/logs/$t-$mode.log
	if [ "$mode" = smoke ]; then
		corpus=$B/smoke/$t
		rm -rf "$corpus"
	else
		corpus=$B/corpus/$t
	fi
	mkdir -p "$corpus"
	[ -n "$(ls -A "$corpus")" ] || cp "$B/seeds/$t"/* "$corpus"/
	dirs=("$corpus")
	[ -d "tests/fuzz/regress/$t" ] && dirs+=("tests/fuzz/regress/$t")
	before=$(ls "$B/artifacts" | grep -c "^$t-" || true)
	"$bin" "${common[@]}" -max_len="$(max_len "$t")" \
		-artifact_prefix="$B/artifacts/$t-" ${FUZZ_FLAGS:-} "${dirs[@]}" >"$log" 2>&1
	status=$?
	sum=$(summary "$log")
	# Fork mode with -ignore_crashes=1 exits 0: count what it saved.
	after=$(ls "$B/artifacts" | grep -c "^$t-" || true)
	[ $status -eq 0 ] && [ "$after" -gt "$before" ] && status=1 &&
		echo "# $t: $((after - before)) new inputs in $B/artifacts/ (fork mode kept going)"
	if [ $status -eq 0 ]; then
		if [ "$mode" = smoke ]; then
			echo "ok $n - $t ($sum)"
		else
			echo "$t: ok, $secs s: $sum"
		fi
	else
		rc=1
		art=$(sed -n 's/.*Test unit written to \(.*\)/\1/p' "$log" | tail -1)
		if [ "$mode" = smoke ]; then
			echo "not ok $n - $t (exit $status after $sum; input ${art:-?})"
		else
			echo "$t: FAILED (exit $status) after $sum; input ${art:-?}"
		fi
		grep -E 'ERROR|SUMMARY|fuzz oracle|BUG|#[0-9]+ 0x' "$log" | head -25 | sed 's/^/# /'
		echo "# full log: $log"
	fi
done
exit $rc
