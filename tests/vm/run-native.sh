#!/bin/bash
# Run guest test scripts on a real host (root, module support, no VM): the same
# scripts and tests/vm/lib.sh, with the freshly built kernel/dm-dedup.ko insmod'ed.
#
#   make module && sudo tests/vm/run-native.sh tests/vm/01-load.sh [more scripts...]
#
# Each script's output goes to the terminal; its result files to
# build/native/out/<name>/.  Like the VM harness, a WARN/BUG/oops/hung task in the
# kernel log while a script ran fails it.  The harness self-tests (selftest-*) are
# refused unless DD_NATIVE_SELFTESTS=1: they WARN or crash the host's kernel on purpose;
# so are scripts that provoke the OOM killer ("# vm: ... oom=1") unless DD_NATIVE_OOM=1.
# Exit status: 0 if every script passed.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
[ $# -ge 1 ] || { sed -n '2,12s/^# \{0,1\}//p' "$0" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "run-native: needs root" >&2; exit 2; }

export DD_MODULE=${DD_MODULE:-$ROOT/kernel/dm-dedup.ko}
[ -f "$DD_MODULE" ] || { echo "run-native: $DD_MODULE missing: run 'make module'" >&2; exit 2; }
if [ -d "$ROOT/build/bin" ]; then
	export PATH=$ROOT/build/bin:$PATH
fi

# (oom=1 scripts: the stack dumps of OOM-killer reports are left out, tests/vm/oom-reports.awk)
KPAT='WARNING: CPU|WARNING: at |BUG: |kernel BUG at|Oops|Call Trace|Kernel panic|general protection fault|UBSAN:|KASAN:|list_(add|del) corruption|blocked for more than [0-9]+ seconds'

failures=0
for s in "$@"; do
	name=$(basename "$s" .sh)
	script=$ROOT/tests/vm/$name.sh
	if [ ! -f "$script" ]; then
		echo "run-native: no such script $script" >&2
		failures=$((failures + 1))
		continue
	fi
	case "$name" in
	selftest-*)
		if [ "${DD_NATIVE_SELFTESTS:-0}" != 1 ]; then
			echo "run-native: $name is a harness self-test (WARNs or crashes the kernel): skipped" >&2
			continue
		fi
		;;
	esac
	oom=$(sed -n 's/^# vm:.*\boom=\([^ ]*\).*/\1/p' "$script" | head -n1)
	if [ "$oom" = 1 ] && [ "${DD_NATIVE_OOM:-0}" != 1 ]; then
		echo "run-native: $name exhausts the machine's memory (oom=1): skipped (DD_NATIVE_OOM=1 to run it)" >&2
		continue
	fi
	out=$ROOT/build/native/out/$name
	rm -rf "$out"
	mkdir -p "$out"
	tmp=$(mktemp -d "/tmp/dd-native-$name.XXXXXX")
	mark="dd-native: running $name $$"
	echo "$mark" >/dev/kmsg

	set +e
	DD_TEST=$name DD_OUT=$out DD_TMP=$tmp DD_TESTS=$ROOT/tests/vm DD_NATIVE=1 DD_DISKS='' \
		sh "$script" </dev/null 2>&1 | tee "$out/test.log"
	rc=${PIPESTATUS[0]}
	set -e
	rm -rf "$tmp"

	dmesg | sed -n "/$mark\$/,\$p" >"$out/dmesg.txt"
	if { if [ "$oom" = 1 ]; then awk -f "$ROOT/tests/vm/oom-reports.awk" "$out/dmesg.txt"; else cat "$out/dmesg.txt"; fi; } |
		grep -E "$KPAT" >"$out/kernel-problems.txt"; then
		echo "NATIVE-RESULT $name: FAIL: kernel problem: $(head -n1 "$out/kernel-problems.txt")"
		failures=$((failures + 1))
	elif [ "$rc" -ne 0 ]; then
		echo "NATIVE-RESULT $name: FAIL: test failed (exit $rc)"
		failures=$((failures + 1))
	else
		echo "NATIVE-RESULT $name: PASS"
	fi
done
[ "$failures" -eq 0 ]
