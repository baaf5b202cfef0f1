#!/bin/sh
# /init of the test guest (copied into the initramfs by build-initramfs.sh).
# Runs the guest script named by dd.test= on the kernel command line, with its output
# on the console and in /out/test.log, then writes /out/dmesg.txt and, last of all,
# /out/rc (the script's exit status): a missing rc means the guest never got there.
export PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p /run/lock /run/lvm
# As on Debian: /var/lock is /run/lock (qemu-nbd --connect keeps its socket there).
[ -e /var/lock ] || { mkdir -p /var && ln -s /run/lock /var/lock; }
[ -e /dev/fd ] || ln -s /proc/self/fd /dev/fd

test=
boot=1
timeout=
for arg in $(cat /proc/cmdline); do
	case "$arg" in
	dd.test=*) test=${arg#dd.test=} ;;
	dd.boot=*) boot=${arg#dd.boot=} ;;
	dd.timeout=*) timeout=${arg#dd.timeout=} ;;
	esac
done

halt_guest() {
	sync
	umount /out 2>/dev/null
	poweroff -f
	sleep 60 # poweroff -f does not return
}

for m in virtio_pci virtio_blk 9pnet_virtio 9p; do
	modprobe "$m" || echo "dd-harness: cannot load $m"
done
if ! mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 out /out; then
	echo "dd-harness: cannot mount the 9p result share"
	halt_guest
fi

# A task stuck in D state is reported (and the harness fails the run on it).
echo 60 >/proc/sys/kernel/hung_task_timeout_secs 2>/dev/null

if [ -z "$test" ] || [ ! -f "/tests/$test" ]; then
	echo "dd-harness: no such guest script: '$test'"
	dmesg >/out/dmesg.txt
	echo 127 >/out/rc
	halt_guest
fi

export DD_TEST="${test%.sh}"
export DD_OUT=/out/results
export DD_TMP=/tmp
export DD_TESTS=/tests
export DD_NATIVE=0
export DD_BOOT="$boot"
# The script's own disks: the ones run.sh --disk attached carry a serial, these do not.
DD_DISKS=$(for d in /dev/vd?; do
	[ -b "$d" ] || continue
	[ -s "/sys/block/${d#/dev/}/serial" ] && [ -n "$(cat "/sys/block/${d#/dev/}/serial")" ] && continue
	echo "$d"
done | tr '\n' ' ')
export DD_DISKS
export DM_DISABLE_UDEV=1
export LVM_SYSTEM_DIR=/etc/lvm
mkdir -p "$DD_OUT"

echo "dd-harness: running $test" >/dev/kmsg
echo "dd-harness: running $test (disks: ${DD_DISKS:-none})"
cd /tmp || halt_guest
# Near run.sh's timeout, say where the script's tasks are before the guest is killed:
# each user task's state, wait channel and kernel stack, then the blocked tasks (sysrq w).
watchdog() {
	sleep "$1"
	echo "dd-harness: $test still runs near the timeout; its tasks:"
	for p in /proc/[0-9]*; do
		[ "${p#/proc/}" = 1 ] && continue
		c=$(tr '\0' ' ' <"$p/cmdline" 2>/dev/null | cut -c1-120)
		set -- $(cat "$p/stat" 2>/dev/null)
		# (no command line: a kernel thread, or a zombie, which is shown)
		[ -n "$c" ] || [ "$3" = Z ] || continue
		echo "dd-harness: task ${p#/proc/} [$3] parent $4" \
			"wchan $(cat "$p/wchan" 2>/dev/null): ${c:-$2}"
		sed 's/^/dd-harness:     /' "$p/stack" 2>/dev/null
	done
	echo w >/proc/sysrq-trigger 2>/dev/null
}
wd=
if [ -n "$timeout" ] && [ "$timeout" -gt 60 ]; then
	watchdog $((timeout - 30)) &
	wd=$!
	echo "dd-harness: task report in $((timeout - 30)) s unless the script ends"
fi
{
	sh "/tests/$test" </dev/null
	echo $? >/tmp/rc
} 2>&1 | tee /out/test.log
rc=$(cat /tmp/rc 2>/dev/null || echo 126)
[ -z "$wd" ] || kill "$wd" 2>/dev/null
echo "dd-harness: $test exited $rc" >/dev/kmsg
echo "dd-harness: $test exited $rc"

dmesg >/out/dmesg.txt
echo "$rc" >/out/rc
halt_guest
