#!/bin/bash
# The test runner behind `make test` (and `make check` with --quick).
#
# Stages (1, the guest images of 7 and 8, then 8 in the foreground with 2-6 beside it,
# niced, in one background job whose output and counts are printed when 8 ends; then 9):
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
#   5. sparse            `make sparse`: no warning in our files, after
#                        tests/scripts/test-install.sh (make install / uninstall into a
#                        staging root, the module built from the installed sources)
#   6. fuzz smoke        `make fuzz-smoke` (TAP lines)
#   7. the 6.12 kernel   the module built against bookworm-backports' 6.12 headers
#                        (scripts/kbuild-backports.sh installs them, and the image, at
#                        pinned versions, never moving the meta-packages) and its guest
#                        image
#   8. guest tests       every tests/vm/NN-*.sh, each in its own boot of the test guest,
#                        and the tests of GUEST_612 below booted on 6.12, DD_VM_JOBS
#                        guests at a time (default 2), "solo=1" scripts last and alone
#   9. harness self-tests tests/vm/selftest-*.sh: each must make the harness report the
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
# --guest-6.12 (make test-6.12): stages 1 and 3, then every guest test on the 6.12 kernel.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# The 6.1 tests boot 6.1 whatever the caller's environment says; guest_item sets it.
unset DD_GUEST
quick=0
only612=0
case "${1:-}" in
--quick) quick=1 ;;
--guest-6.12) only612=1 ;;
"") ;;
*) echo "usage: $0 [--quick|--guest-6.12]" >&2; exit 2 ;;
esac
# The guest tests `make test` also runs on 6.12 (all of them: make test-6.12).  Chosen
# for the kernel interfaces they reach: table and message parsing, bio splitting, flush
# and FUA, discards, dm-bufio under a real filesystem, the scanner's kthread, crash
# replay through dm-log-writes, device faults, memory pressure (docs/testing.md).
GUEST_612=(01-load 03-table-parse 16-ext4 31-multiblock 34-device-faults
	39-log-replay 40-memory-pressure)

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

# Guest tests run in DD_VM_JOBS lanes at once (default 2: a test guest is mostly one
# busy vCPU, or waiting for its disks).  Each item is KERNEL:SCRIPT; its output is
# printed whole when it ends.  After 39-log-replay, the host replays its log at every
# flush through the userspace engine (tests/scripts/replay-engine.sh) in the same
# lane: one more test, at least REPLAY_MIN points.
REPLAY_MIN=1000
VM_JOBS=${DD_VM_JOBS:-2}

# guest_item KERNEL SCRIPT DIR: one item; its output in DIR/log, its results (PASS/FAIL
# lines, counted by the caller in order) in DIR/result.
guest_item() {
	local kernel=$1 t=$2 dir=$3 label out
	label=guest
	[ "$kernel" = 6.1 ] || label="guest $kernel"
	: >"$dir/result"
	if DD_GUEST=$kernel scripts/vm/run.sh -q --no-build "$t" >"$dir/log" 2>&1; then
		echo "PASS $label: ${t%.sh}" >>"$dir/result"
	else
		echo "FAIL $label: ${t%.sh}" >>"$dir/result"
		[ "${t%.sh}" != 39-log-replay ] ||
			echo "FAIL $label: 39-log-replay's log through the userspace engine (no log)" >>"$dir/result"
		return 0
	fi
	[ "${t%.sh}" = 39-log-replay ] || return 0
	out=$(export DD_GUEST=$kernel && . scripts/lib/guest-kernel.sh && guest_kernel_select && echo "$GUEST_OUT")
	local name="$label: 39-log-replay's log, every flush point through the userspace engine (>= $REPLAY_MIN)"
	if tests/scripts/replay-engine.sh "$out/39-log-replay" "$REPLAY_MIN" >>"$dir/log" 2>&1; then
		echo "PASS $name" >>"$dir/result"
	else
		echo "FAIL $name" >>"$dir/result"
	fi
}

# run_guest_items ITEM...: the items in VM_JOBS lanes, longest first (by their
# "# vm: timeout="), each one's output and verdict printed as it ends.
run_guest_items() {
	local work=$LOGS/guest-items i item n=0 running=0 kernel t v name solo_from=0
	rm -rf "$work"
	mkdir -p "$work"
	local -a order
	mapfile -t order < <(for item in "$@"; do
		t=${item#*:}
		printf '%s %s\n' "$(sed -n 's/^# vm:.*\btimeout=\([0-9]*\).*/\1/p' "tests/vm/$t" | head -n1)" "$item"
	done | sort -s -k1,1nr | cut -d' ' -f2)
	local -A pid_of
	show() { # show N: the output and verdicts of item N
		cat "$work/$1/log"
		while read -r v name; do
			if [ "$v" = PASS ]; then pass "$name"; else failed "$name"; fi
		done <"$work/$1/result"
	}
	# "# vm: solo=1" scripts (a hung-task or OOM deadline that another guest's CPU
	# use could stretch) run after the others, alone.
	local -a solo=() shared=()
	for item in "${order[@]}"; do
		if grep -qE '^# vm:.*\bsolo=1\b' "tests/vm/${item#*:}"; then solo+=("$item"); else shared+=("$item"); fi
	done
	order=("${shared[@]}" "${solo[@]}")
	for item in "${order[@]}"; do
		local lanes=$VM_JOBS
		if [ ${#solo[@]} -gt 0 ] && [ "$item" = "${solo[0]}" ]; then
			solo_from=1
			# Alone means beside nothing: the host stages end first too.
			[ -z "${HOST_PID:-}" ] || wait "$HOST_PID" 2>/dev/null || true
		fi
		[ "${solo_from:-0}" = 0 ] || lanes=1
		while [ "$running" -ge "$lanes" ]; do
			wait -n || true
			for i in "${!pid_of[@]}"; do
				kill -0 "${pid_of[$i]}" 2>/dev/null && continue
				wait "${pid_of[$i]}" 2>/dev/null || true
				show "$i"
				unset "pid_of[$i]"
			done
			running=${#pid_of[@]}
		done
		n=$((n + 1))
		kernel=${item%%:*} t=${item#*:}
		mkdir -p "$work/$n"
		guest_item "$kernel" "$t" "$work/$n" &
		pid_of[$n]=$!
		running=$((running + 1))
	done
	for i in $(printf '%s\n' "${!pid_of[@]}" | sort -n); do
		wait "${pid_of[$i]}" 2>/dev/null || true
		show "$i"
	done
}

# build_612: the module for 6.12 and its guest image; 0 when both are there.
build_612() {
	stage "the 6.12 kernel: module build (scripts/kbuild-backports.sh)"
	if ! scripts/kbuild-backports.sh; then
		failed "dm-dedup.ko builds for 6.12 with no warnings"
		return 1
	fi
	pass "dm-dedup.ko builds for 6.12 with no warnings"
	DD_GUEST=6.12 scripts/vm/build-initramfs.sh || { failed "the 6.12 guest image builds"; return 1; }
}

mkdir -p "$LOGS"
echo "dm-dedup tests ($([ $quick = 1 ] && echo quick || { [ $only612 = 1 ] && echo 'all guest tests on 6.12'; } || echo full)), $(date -u '+%Y-%m-%d %H:%M:%S UTC'), $(nproc) cores"

stage "dependencies"
if ! scripts/deps.sh; then
	failed "dependency install (scripts/deps.sh)"
	summary
	exit 1
fi
export DD_DEPS_DONE=1

if [ $only612 = 1 ]; then
	stage "userspace build (make userspace)"
	counted "userspace library and tools build" "${MAKE[@]}" userspace
	mapfile -t all < <(cd tests/vm && ls [0-9][0-9]-*.sh)
	if build_612; then
		stage "guest tests on $(cat build/kver-6.12) (${#all[@]} scripts, $VM_JOBS at a time)"
		run_guest_items "${all[@]/#/6.12:}"
	else
		for t in "${all[@]}"; do failed "guest 6.12: ${t%.sh} (no module or guest image)"; done
	fi
	summary
	exit $?
fi

# host_stages: stages 2-6, everything that runs on the host alone.  They run beside the
# guest tests (below), niced: a test guest leaves a core idle whenever it waits for its
# disks or sleeps, and these fill it.  Their output goes to $LOGS/host-stages.out and
# their counts to $LOGS/host-stages.state, which the runner prints and adds once the
# guest tests are done.
host_stages() {
	PASSED=0 FAILED=0 SKIPPED=0
	FAILED_NAMES=()
	stage "unit tests (make unit-tap)"
	tap_stage unit-tap 2700
	# Offline (canned apt output, under a second); the live check against the apt cache is
	# `make test-backports-pin`, not run here.
	counted "module-backports plan never moves the meta-packages (canned apt output)" \
		logged "$LOGS/backports-pin.log" tests/scripts/test-backports-pin.sh
	counted "no file outside engine/ includes dd-internal.h" \
		logged "$LOGS/engine-boundary.log" tests/scripts/test-engine-boundary.sh
	counted "the harness excuses only the stack dumps of OOM-killer reports (oom=1)" \
		logged "$LOGS/oom-reports.log" tests/scripts/test-oom-reports.sh
	counted "import never calls a block with data free (partition tables, ext2/3/4 bitmaps)" \
		logged "$LOGS/import-source.log" bash -c "make -s srcmap && tests/scripts/test-import-source.sh"

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
		stage "make install / uninstall into a staging root (tests/scripts/test-install.sh)"
		counted "make install puts tools, man pages, unit and module sources in place; the module builds from them; uninstall removes all" \
			logged "$LOGS/install.log" tests/scripts/test-install.sh

		stage "sparse (make sparse)"
		counted "sparse finds nothing in our files" "${MAKE[@]}" sparse

		stage "fuzz smoke (make fuzz-smoke)"
		tap_stage fuzz-smoke 900
	fi

	{
		echo "H_COUNTS $PASSED $FAILED $SKIPPED"
		[ ${#FAILED_NAMES[@]} -eq 0 ] || printf 'H_NAME %s\n' "${FAILED_NAMES[@]}"
	} >"$LOGS/host-stages.state"
}

# host_stages_collect: wait for host_stages, print its output, add its counts.
host_stages_collect() {
	local line tag h_p=0 h_f=0 h_s=0
	wait "$HOST_PID" 2>/dev/null || true
	HOST_PID=
	cat "$LOGS/host-stages.out"
	if [ ! -f "$LOGS/host-stages.state" ]; then
		failed "host stages (unit, builds, sparse, fuzz) ended without their counts"
		return
	fi
	while read -r line; do
		case "$line" in
		"H_COUNTS "*) read -r tag h_p h_f h_s <<<"$line" ;;
		"H_NAME "*) FAILED_NAMES+=("${line#H_NAME }") ;;
		esac
	done <"$LOGS/host-stages.state"
	PASSED=$((PASSED + h_p))
	FAILED=$((FAILED + h_f))
	SKIPPED=$((SKIPPED + h_s))
}

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

# The 6.12 subset runs in the same lanes as the 6.1 tests (make check: none).
items=()
[ "$guest_ok" = 0 ] || items=("${guest_tests[@]/#/6.1:}")
if [ $quick = 0 ]; then
	if build_612; then
		for t in "${GUEST_612[@]}"; do items+=("6.12:$t.sh"); done
	else
		for t in "${GUEST_612[@]}"; do failed "guest 6.12: $t (no module or guest image)"; done
	fi
fi
# Stages 2-6 start now, beside the guest tests.
rm -f "$LOGS/host-stages.out" "$LOGS/host-stages.state"
( renice -n 15 "$BASHPID" >/dev/null 2>&1 || true; host_stages ) >"$LOGS/host-stages.out" 2>&1 &
HOST_PID=$!
stage "guest tests (${#guest_tests[@]} scripts on 6.1$([ $quick = 1 ] || echo ", ${#GUEST_612[@]} on 6.12"), $VM_JOBS at a time)"
if [ "$guest_ok" = 0 ]; then
	for t in "${guest_tests[@]}"; do failed "guest: ${t%.sh} (no guest image)"; done
fi
[ ${#items[@]} -eq 0 ] || run_guest_items "${items[@]}"
stage "host stages, run beside the guest tests (output as they printed it)"
host_stages_collect

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
	selftest-early) echo "2 kernel problem: " ;;
	*) echo "" ;;
	esac
}
# They run VM_JOBS at a time (short boots, none timing-sensitive: the hang's timeout is
# the harness's own), each into $LOGS/NAME.out and its exit status into $LOGS/NAME.rc;
# the verdicts below are read in order.
selftest_run() { # selftest_run SCRIPT
	local name=${1%.sh}
	if scripts/vm/run.sh -q --no-build "$1" >"$LOGS/$name.out" 2>&1; then
		echo 0 >"$LOGS/$name.rc"
	else
		echo $? >"$LOGS/$name.rc"
	fi
}
if [ "$guest_ok" = 1 ]; then
	for t in "${selftests[@]}"; do
		rm -f "$LOGS/${t%.sh}.rc"
		[ -n "$(expect_selftest "${t%.sh}")" ] || continue
		while [ "$(jobs -rp | wc -l)" -ge "$VM_JOBS" ]; do wait -n || true; done
		selftest_run "$t" &
	done
	wait
fi
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
	rc=$(cat "$LOGS/$name.rc" 2>/dev/null || echo "none")
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
	# Died before the script started: retried once, saying so, and no more.
	selftest-early) [ "$(grep -c 'retrying this boot once' "$LOGS/$name.out")" = 1 ] || extra_ok=0 ;;
	esac
	# Every other failure came after the script started: never retried.
	if [ "$name" != selftest-early ] && grep -q 'retrying this boot once' "$LOGS/$name.out"; then
		extra_ok=0
	fi
	if [ "$rc" = "$want_rc" ] && [[ "$verdict" == *"FAIL: "*"$want_reason"* ]] && [ $extra_ok = 1 ]; then
		pass "harness self-test: $name fails the run as it should"
	else
		cat "$LOGS/$name.out"
		failed "harness self-test: $name (wanted exit $want_rc and '$want_reason', got exit $rc)"
	fi
done

summary
