#!/bin/bash
# Boot Debian's kernel under QEMU (TCG) and run ONE guest script from tests/vm/.
#
#   scripts/vm/run.sh [-q] [-t SECONDS] [--no-build] [--disk SERIAL=FILE]... <script>
#     <script>    tests/vm/01-load.sh, 01-load.sh or 01-load
#     -q          do not stream the console (it is still saved; its tail is shown on failure)
#     -t SECONDS  timeout for the whole boot (default: the script's "# vm: timeout=" or 300)
#     --no-build  do not (re)build the module/initramfs first (the runner builds once)
#     --disk SERIAL=FILE
#                 give the guest FILE as one more virtio disk, read-only, after the
#                 script's own disks, with the serial SERIAL (at most 20 characters; the
#                 guest finds it with lib.sh's dd_disk_by_serial, from
#                 /sys/block/vdX/serial).  The guest images of scripts/images/ go in so.
#
# A guest script may ask for resources on a line of its own:
#   # vm: timeout=120 disks=2 disk_size=2G mem=2G prealloc=1 boots=2 oom=1 smp=1
# (disks are sparse raw files in build/vm/out/<name>/, the guest's /dev/vda, /dev/vdb, ...;
# prealloc=1 adds -mem-prealloc, which benchmarks want; boots=N runs the script N times
# in N boots over the same disks, with DD_BOOT=1..N, to test persistence across reboots;
# smp=1 gives the guest one vCPU instead of two (below); oom=1: the script provokes
# the OOM killer, whose reports' stack dumps are not kernel trouble
# (tests/vm/oom-reports.awk); mem= below 512M cannot hold the initramfs;
# append=WORD adds one word to the kernel command line, for the harness self-tests).
#
# Results land in build/vm/out/<name>/: console.log, share/{test.log,dmesg.txt,rc,results/}.
#
# The guest kernel: Debian's 6.1 by default; DD_GUEST=6.12 boots bookworm-backports' 6.12
# with build/vm/initramfs-6.12.cpio, results in build/vm/out-6.12/<name>/
# (scripts/lib/guest-kernel.sh; make test-6.12).
# A boot that dies (kernel problem or no result) before the guest script started is
# retried once, saying so (6.12 under TCG sometimes oopses in early boot); a failure
# after "dd-harness: running" is never retried.
# The last line printed is "VM-RESULT <name>: PASS" or "VM-RESULT <name>: FAIL: <reasons>".
# Exit status: 0 pass; 1 the script failed; 2 kernel WARN/BUG/oops/panic/hung task;
# 3 timeout; 4 no result file (guest died before the end); 5 harness error.
# With several reasons the order of precedence is 3, 2, 4, 1.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
quiet=0
timeout_override=
build=1
extra=()
while [ $# -gt 0 ]; do
	case "$1" in
	-q) quiet=1; shift ;;
	-t) timeout_override=$2; shift 2 ;;
	--no-build) build=0; shift ;;
	--disk)
		[ $# -ge 2 ] && [[ "$2" == ?*=?* ]] || { echo "run.sh: --disk SERIAL=FILE" >&2; exit 5; }
		serial=${2%%=*} file=${2#*=}
		[[ "$serial" =~ ^[A-Za-z0-9._-]{1,20}$ ]] || { echo "run.sh: bad disk serial '$serial'" >&2; exit 5; }
		[ -f "$file" ] || { echo "run.sh: no disk image $file" >&2; exit 5; }
		file=$(realpath "$file")
		[[ "$file" != *,* ]] || { echo "run.sh: a comma in $file" >&2; exit 5; }
		extra+=(-drive "file=$file,if=none,id=img$((${#extra[@]} / 4)),format=raw,readonly=on,cache=none,aio=threads"
			-device "virtio-blk-pci,drive=img$((${#extra[@]} / 4)),serial=$serial")
		shift 2 ;;
	-*) echo "run.sh: unknown option $1" >&2; exit 5 ;;
	*) break ;;
	esac
done
[ $# -eq 1 ] || { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 5; }

name=$(basename "$1")
name=${name%.sh}
# Guest scripts: the tests (tests/vm/) and the benchmarks (bench/guest/).
script=$ROOT/tests/vm/$name.sh
[ -f "$script" ] || script=$ROOT/bench/guest/$name.sh
[ -f "$script" ] || { echo "run.sh: no guest script $name.sh in tests/vm/ or bench/guest/" >&2; exit 5; }

if [ "$build" = 1 ]; then
	make -s --no-print-directory -C "$ROOT" "$([ "${DD_GUEST:-6.1}" = 6.1 ] && echo initramfs || echo "initramfs-${DD_GUEST}")"
fi
# shellcheck source=scripts/lib/guest-kernel.sh
. "$ROOT/scripts/lib/guest-kernel.sh"
guest_kernel_select || exit 5
K=$GUEST_K
INITRD=$GUEST_INITRD
[ -f "$INITRD" ] || { echo "run.sh: $INITRD missing" >&2; exit 5; }
# The same kernel, uncompressed when it has a PVH entry (scripts/vm/guest-vmlinux.sh):
# the bzImage's decompressor took 8-9 s of every boot under TCG.
KIMAGE=$("$ROOT/scripts/vm/guest-vmlinux.sh" "$K") || exit 5

# Per-script resources.
opt() { # opt KEY DEFAULT
	local v
	v=$(sed -n 's/^# vm:.*\b'"$1"'=\([^ ]*\).*/\1/p' "$script" | head -n1)
	echo "${v:-$2}"
}
tmo=${timeout_override:-$(opt timeout 300)}
ndisks=$(opt disks 0)
disk_size=$(opt disk_size 1G)
mem=$(opt mem 2G)
prealloc=()
[ "$(opt prealloc 0)" = 1 ] && prealloc=(-mem-prealloc)
boots=$(opt boots 1)
oom=$(opt oom 0)
append=$(opt append "")
# vCPUs: 2 unless the script says smp=1 (DD_VM_SMP overrides both).  Under TCG each vCPU
# is a host thread; two guests of two vCPUs on the 2-core host leave a vCPU spinning on
# a lock its descheduled sibling holds, so scripts that race nothing inside the guest
# run on one (docs/testing.md, "Guest lanes").
smp=${DD_VM_SMP:-$(opt smp 2)}

OUT=$GUEST_OUT/$name
rm -rf "$OUT"
mkdir -p "$OUT/share"
drives=()
for ((i = 0; i < ndisks; i++)); do
	truncate -s "$disk_size" "$OUT/disk$i.img"
	drives+=(-drive "file=$OUT/disk$i.img,if=virtio,format=raw,cache=none,aio=threads")
done
drives+=("${extra[@]}")

run_boot() { # run_boot BOOT: one boot; sets code and reasons
local boot=$1
cmd=(timeout --kill-after=10 "$tmo"
	qemu-system-x86_64 -accel tcg,thread=multi,tb-size=512 -cpu max -smp "$smp" -m "$mem"
	-nographic -nic none -no-reboot -kernel "$KIMAGE" -initrd "$INITRD"
	-append "console=ttyS0 panic=-1 oops=panic quiet loglevel=5 dd.test=$name.sh dd.boot=$boot dd.timeout=$tmo${append:+ $append}"
	-virtfs "local,path=$OUT/share,mount_tag=out,security_model=none,id=out"
	"${prealloc[@]}" "${drives[@]}")

echo "vm: $name: booting ($K$([ "$KIMAGE" != "/boot/vmlinuz-$K" ] || echo ", bzImage"), timeout ${tmo}s, ${ndisks} disk(s)$([ ${#extra[@]} -eq 0 ] || echo " + $((${#extra[@]} / 4)) read-only"), $mem, $smp vCPU$([ "$smp" = 1 ] || echo s), boot $boot/$boots)"
rm -rf "$OUT/share"
mkdir -p "$OUT/share"
start=$SECONDS
set +e
if [ "$quiet" = 1 ]; then
	"${cmd[@]}" </dev/null 2>&1 | sed -u -e 's/\x1b\[[0-9;?]*[a-zA-Z]//g' -e 's/\x1bc//g' -e 's/\r$//' >"$OUT/console.log"
else
	"${cmd[@]}" </dev/null 2>&1 | sed -u -e 's/\x1b\[[0-9;?]*[a-zA-Z]//g' -e 's/\x1bc//g' -e 's/\r$//' | tee "$OUT/console.log" | sed -u 's/^/  | /'
fi
qrc=${PIPESTATUS[0]}
set -e
elapsed=$((SECONDS - start))

# --- verdict -----------------------------------------------------------------------
# Kernel trouble, in dmesg or on the console.  On the console only what follows a printk
# timestamp is scanned, so a test's own output cannot match by accident.
# An initramfs that did not fit the guest's memory leaves programs out: trouble too.
KPAT='WARNING: CPU|WARNING: at |BUG: |kernel BUG at|Oops|Call Trace|Kernel panic|general protection fault|UBSAN:|KASAN:|list_(add|del) corruption|blocked for more than [0-9]+ seconds|RIP: [0-9]{4}:|Initramfs unpacking failed'
# With oom=1 the stack dumps of the OOM killer's reports are taken out first.
oom_filter() {
	if [ "$oom" = 1 ]; then awk -f "$ROOT/tests/vm/oom-reports.awk"; else cat; fi
}
kernel_lines=$(
	{
		{ grep -aoE '\[ *[0-9]+\.[0-9]{6}\] .*' "$OUT/console.log" || true; } | oom_filter
		{ cat "$OUT/share/dmesg.txt" 2>/dev/null || true; } | oom_filter
	} | grep -aE "$KPAT" | head -n 5 || true
)

reasons=()
code=0
if [ "$qrc" -eq 124 ] || [ "$qrc" -eq 137 ]; then
	reasons+=("timeout after ${tmo}s")
	code=3
fi
if [ -n "$kernel_lines" ]; then
	reasons+=("kernel problem: $(echo "$kernel_lines" | head -n1 | sed 's/^\[ *[0-9.]*\] //')")
	[ "$code" -eq 0 ] && code=2
fi
if [ ! -f "$OUT/share/rc" ]; then
	if [ "$code" -eq 0 ]; then
		reasons+=("no result file: the guest stopped before the end (qemu exit $qrc)")
		code=4
	fi
else
	trc=$(cat "$OUT/share/rc")
	if [ "$trc" != 0 ]; then
		reasons+=("test failed (exit $trc)")
		[ "$code" -eq 0 ] && code=1
	fi
fi

if [ "$code" -ne 0 ]; then
	if [ -n "$kernel_lines" ]; then
		echo "vm: $name: kernel lines:"
		echo "$kernel_lines" | sed 's/^/    /'
	fi
	if grep -q '^not ok' "$OUT/share/test.log" 2>/dev/null; then
		echo "vm: $name: failed checks:"
		grep '^not ok' "$OUT/share/test.log" | sed 's/^/    /'
	fi
	echo "vm: $name: last 50 console lines:"
	tail -n 50 "$OUT/console.log" | sed 's/^/  | /'
	printf -v joined '%s; ' "${reasons[@]}"
	echo "VM-RESULT $name: FAIL: ${joined%; } (${elapsed}s)"
else
	echo "VM-RESULT $name: PASS (${elapsed}s)"
fi
}

final=0
for ((boot = 1; boot <= boots; boot++)); do
	run_boot "$boot"
	# Died before the guest script started (the guest prints "dd-harness: running"
	# first): an early-boot failure of the kernel, not of the test.  Once.
	if { [ "$code" -eq 2 ] || [ "$code" -eq 4 ]; } && ! grep -aq 'dd-harness: running' "$OUT/console.log"; then
		cp "$OUT/console.log" "$OUT/console-boot$boot-died-early.log"
		echo "vm: $name: the guest died before the script started (${reasons[0]}); retrying this boot once (console kept in ${OUT#"$ROOT"/}/console-boot$boot-died-early.log)"
		run_boot "$boot"
	fi
	if [ "$boots" -gt 1 ]; then
		mkdir -p "$OUT/boot$boot"
		cp -a "$OUT/console.log" "$OUT/share" "$OUT/boot$boot/" 2>/dev/null || true
	fi
	if [ "$code" -ne 0 ]; then
		final=$code
		break
	fi
done
exit "$final"
