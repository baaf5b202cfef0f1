#!/bin/bash
# The test runner behind `make test` (and `make check` with --quick).
#
# Stages, in order:
#   1. dependencies      scripts/deps.sh
#   2. unit tests        `make unit-tap` (ASan+UBSan; one TAP line per test case), then
#                        `make kglue-tsan` (the glue's lock-free cache and epochs, TSan),
#                        tests/scripts/test-backports-pin.sh (the package plan of
#                        `make module-backports` on canned apt output; offline, one test)
#                        tests/scripts/test-engine-boundary.sh (no file outside
#                        engine/ includes dd-internal.h; one test) and
#                        tests/scripts/test-oom-reports.sh (the harness's filter of
#                        OOM-killer reports, on a canned log; one test)
#   3. userspace build   `make userspace` (library + tools into build/bin/)
#   4. module build      dm-dedup.ko with the default flags: no warning allowed
#                        (W=1 is also built and its warnings are reported, not counted)
#   5. sparse            `make sparse`: no warning in our files
#   6. fuzz smoke        `make fuzz-smoke` (TAP lines)
#   7. guest tests       every tests/vm/NN-*.sh, each in its own boot of the test guest
#   8. harness self-tests tests/vm/selftest-*.sh: each must make the harness report the
#                        failure it provokes (so each counts as passed when it does)
# Stages 2, 3 and 6 come from mk/userspace.mk; a target that does not exist (yet) is
# zero tests, not a failure.
#
# Counting: each TAP line ("ok N ..." / "not ok N ...", at the start of a line) is one
# test; "ok N ... # SKIP" is skipped; a TAP stage that exits non-zero without any
# "not ok" line adds one failure.  Each build/check stage, guest script and self-test
# is one test.  The last line printed is "N passed, N failed" (", N skipped" follows
# when there are skipped tests).  Exit status 1 if anything failed.
#
# --quick (make check): stages 1-4 and the guest tests 01 and 03, no self-tests.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
quick=0
[ "${1:-}" = --quick ] && quick=1

PASSED=0
FAILED=0
SKIPPED=0
FAILED_NAMES=()
T0=$SECONDS
LOGS=$ROOT/build/logs
MAKE=(make --no-print-directory -s)

stage() { printf '\n=== [%4ds] %s\n' $((SECONDS - T0)) "$*"; }
pass() { PASSED=$((PASSED + 1)); echo "PASS: $*"; }
failed() { FAILED=$((FAILED + 1)); FAILED_NAMES+=("$*"); echo "FAIL: $*"; }

summary() {
	stage "done in $((SECONDS - T0)) s"
	if [ ${#FAILED_NAMES[@]} -gt 0 ]; then
		echo "failed:"
		printf '  %s\n' "${FAILED_NAMES[@]}"
	fi
	if [ "$SKIPPED" -gt 0 ]; then
		echo "$PASSED passed, $FAILED failed, $SKIPPED skipped"
	else
		echo "$PASSED passed, $FAILED failed"
	fi
	[ "$FAILED" -eq 0 ]
}

# Does the Makefile (with mk/userspace.mk) have a rule for this target?
# (make -q exits non-zero and grep -q closes the pipe early: read the database first.)
have_target() {
	local db
	db=$("${MAKE[@]}" -pRrq : 2>/dev/null || true)
	grep -qE "^$1:" <<<"$db"
}

# tap_stage TARGET LIMIT_SECONDS: run `make TARGET`, count its TAP lines.
tap_stage() {
	local target=$1 limit=$2 log rc p f s
	if ! have_target "$target"; then
		echo "(no '$target' target yet: 0 tests)"
		return 0
	fi
	log=$LOGS/$target.log
	set +e
	timeout --kill-after=10 "$limit" "${MAKE[@]}" "$target" 2>&1 | tee "$log"
	rc=${PIPESTATUS[0]}
	set -e
	p=$(grep -cE '^ok [0-9]+' "$log" || true)
	s=$(grep -cE '^ok [0-9]+.*# *(SKIP|skip)' "$log" || true)
	f=$(grep -cE '^not ok [0-9]+' "$log" || true)
	PASSED=$((PASSED + p - s))
	SKIPPED=$((SKIPPED + s))
	FAILED=$((FAILED + f))
	while read -r line; do FAILED_NAMES+=("$target: $line"); done < <(grep -E '^not ok [0-9]+' "$log" || true)
	echo "$target: $((p - s)) passed, $f failed, $s skipped (make exit $rc)"
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
			failed "make $target timed out after ${limit}s"
		else
			failed "make $target exited $rc without a failing test line"
		fi
	fi
}

# counted CMD...: one test named by the command, output kept in the log.
counted() {
	local name=$1
	shift
	if "$@"; then pass "$name"; else failed "$name"; fi
}

# logged LOG CMD...: CMD's output goes to LOG; if it fails, its lines other than "ok ..."
# are shown, indented.
logged() {
	local log=$1
	shift
	"$@" >"$log" 2>&1 && return 0
	grep -vE '^ok [0-9]+' "$log" | sed 's/^/  /' || true
	return 1
}

mkdir -p "$LOGS"
echo "dm-dedup tests ($([ $quick = 1 ] && echo quick || echo full)), $(date -u '+%Y-%m-%d %H:%M:%S UTC'), $(nproc) cores"

stage "dependencies"
if ! scripts/deps.sh; then
	failed "dependency install (scripts/deps.sh)"
	summary
	exit 1
fi
export DD_DEPS_DONE=1

stage "unit tests (make unit-tap)"
tap_stage unit-tap 1500
# Offline (canned apt output, under a second); the live check against the apt cache is
# `make test-backports-pin`, not run here.
counted "module-backports plan never moves the meta-packages (canned apt output)" \
	logged "$LOGS/backports-pin.log" tests/scripts/test-backports-pin.sh
counted "no file outside engine/ includes dd-internal.h" \
	logged "$LOGS/engine-boundary.log" tests/scripts/test-engine-boundary.sh
counted "the harness excuses only the stack dumps of OOM-killer reports (oom=1)" \
	logged "$LOGS/oom-reports.log" tests/scripts/test-oom-reports.sh

stage "lock-free glue under ThreadSanitizer (make kglue-tsan)"
tap_stage kglue-tsan 300

stage "userspace build (make userspace)"
if have_target userspace; then
	counted "userspace library and tools build" "${MAKE[@]}" userspace
else
	echo "(no 'userspace' target yet: 0 tests)"
fi

stage "module build (no warnings)"
counted "dm-dedup.ko builds with no warnings" scripts/kbuild.sh kernel
if scripts/kbuild.sh --w1 kernel >"$LOGS/module-w1.out" 2>&1; then
	echo "info: W=1 build has no warnings either"
else
	echo "info: W=1 build reports warnings (not counted):"
	grep -E '(warning|error):' "$LOGS/module-w1.out" | head -n 20 || true
fi

if [ $quick = 0 ]; then
	stage "sparse (make sparse)"
	counted "sparse finds nothing in our files" "${MAKE[@]}" sparse

	stage "fuzz smoke (make fuzz-smoke)"
	tap_stage fuzz-smoke 900
fi

# --- the test guest --------------------------------------------------------------
mapfile -t guest_tests < <(cd tests/vm && ls [0-9][0-9]-*.sh 2>/dev/null)
if [ $quick = 1 ]; then
	mapfile -t guest_tests < <(printf '%s\n' "${guest_tests[@]}" | grep -E '^(01|03)-' || true)
fi
selftests=()
[ $quick = 1 ] || mapfile -t selftests < <(cd tests/vm && ls selftest-*.sh 2>/dev/null)

stage "test guest image"
guest_ok=1
# (Re)builds the module with the default flags, the self-test module, our tools.
if ! "${MAKE[@]}" initramfs; then
	guest_ok=0
	echo "the guest image cannot be built: every guest test fails"
fi

stage "guest tests (${#guest_tests[@]} scripts)"
for t in "${guest_tests[@]}"; do
	if [ "$guest_ok" = 0 ]; then
		failed "guest: ${t%.sh} (no guest image)"
		continue
	fi
	if scripts/vm/run.sh -q --no-build "$t"; then
		pass "guest: ${t%.sh}"
	else
		failed "guest: ${t%.sh}"
	fi
done

if [ ${#selftests[@]} -gt 0 ]; then
	stage "harness self-tests (each must FAIL for the stated reason)"
fi
# expected exit status of scripts/vm/run.sh and the reason it must give, per self-test
expect_selftest() {
	case "$1" in
	selftest-fail) echo "1 test failed (exit 1)" ;;
	selftest-hang) echo "3 timeout after" ;;
	selftest-warn) echo "2 kernel problem: " ;;
	selftest-panic) echo "2 kernel problem: " ;;
	selftest-noresult) echo "4 no result file" ;;
	*) echo "" ;;
	esac
}
for t in "${selftests[@]}"; do
	name=${t%.sh}
	if [ "$guest_ok" = 0 ]; then
		failed "harness self-test: $name (no guest image)"
		continue
	fi
	want=$(expect_selftest "$name")
	if [ -z "$want" ]; then
		failed "harness self-test: $name (no expected result known to run-tests.sh)"
		continue
	fi
	want_rc=${want%% *}
	want_reason=${want#* }
	set +e
	scripts/vm/run.sh -q --no-build "$t" >"$LOGS/$name.out" 2>&1
	rc=$?
	set -e
	verdict=$(grep '^VM-RESULT ' "$LOGS/$name.out" | tail -n1)
	echo "$name: harness said: $verdict (exit $rc)"
	share=build/vm/out/$name/share
	extra_ok=1
	case "$name" in
	# The script itself passed: the WARN alone must have failed the run.
	selftest-warn) [ "$(cat "$share/rc" 2>/dev/null)" = 0 ] || extra_ok=0 ;;
	# The guest died: no result file, and a panic on the console.
	selftest-panic) [ ! -f "$share/rc" ] && grep -q 'Kernel panic' "build/vm/out/$name/console.log" || extra_ok=0 ;;
	# The guest powered off cleanly: nothing else may be reported.
	selftest-noresult) [ ! -f "$share/rc" ] || extra_ok=0 ;;
	esac
	if [ "$rc" = "$want_rc" ] && [[ "$verdict" == *"FAIL: "*"$want_reason"* ]] && [ $extra_ok = 1 ]; then
		pass "harness self-test: $name fails the run as it should"
	else
		cat "$LOGS/$name.out"
		failed "harness self-test: $name (wanted exit $want_rc and '$want_reason', got exit $rc)"
	fi
done

summary
