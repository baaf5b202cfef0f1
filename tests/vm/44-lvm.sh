#!/bin/sh
# A pool stacked on LVM, and LVM on a pool: the pool's metadata and data are LVs of
# one VG (made with `dedupctl create`); the data LV grows by hand (lvextend, then
# `dedupctl resize`) and by `dedupctl monitor` while fio fills a volume with more
# than the pool holds (autoextend on the low-water event, as lvm2 does for thin
# pools): fio never sees an error and verifies every block; a dedup volume is a PV
# of a second VG whose LV reads back what was written; after the pool and both VGs
# are deactivated and the VG activated again, `dedupctl activate --all` finds the
# pool on its LVs and everything reads back; the metadata checks clean.  The
# metadata LV grows too (lvextend, then `dedupctl resize`): the pool's metadata
# space follows it at resume, survives the reactivation, and a resize with
# nothing grown is refused with one line.
# vm: timeout=600 disks=2 disk_size=1G smp=1
. "$(dirname "$0")/lib.sh"

dd_mark "$DD_TEST.start"
dd_load_module || die "dm-dedup does not load"
# shellcheck disable=SC2086 # two names
set -- $DD_DISKS
[ $# -ge 2 ] || die "two virtio disks wanted, got '$DD_DISKS'"
C=dedupctl
P=ddtlp
META=/dev/mapper/ddt--vg-meta
DATA=/dev/mapper/ddt--vg-data
V=/dev/mapper/$P-v1
blocks_of() { echo $(($(blockdev --getsize64 "$1") / 4096 - 1)); }	# the pool's size on DEV
data_total() { dd_pool_field $P 3 | cut -d/ -f2; }
vfio() { # vfio ARGS...: fio with crc32c verification over 400 MiB of v1
	fio --name=v1 --filename=$V --size=400M --bs=1M --direct=1 --ioengine=libaio \
		--iodepth=4 --verify=crc32c --verify_fatal=1 --output="$DD_TMP/fio.out" "$@"
}

check "two PVs, one VG" sh -c "pvcreate -q -y $1 $2 && vgcreate -q ddt-vg $1 $2"
check "LVs for the metadata (64 MiB) and the data (128 MiB)" \
	sh -c "lvcreate -q -y -L 64M -n meta ddt-vg && lvcreate -q -y -L 128M -n data ddt-vg"
check "dedupctl create on the two LVs (low water 16 MiB)" \
	$C create --low-water 4096 $P $META $DATA
check_eq "the pool spans the data LV" "$(data_total)" "$(blocks_of $DATA)"
check "a 1 GiB volume" $C create-volume $P v1 1G

# By hand: lvextend, then resize.
before=$(data_total)
check "lvextend the data LV by 64 MiB" lvextend -q -L +64M ddt-vg/data
check "dedupctl resize" $C resize $P
check_eq "the pool grew with it (16384 blocks)" "$(data_total)" $((before + 16384))

# The metadata LV: lvextend, then resize (the pool's resume takes the room).
meta_total() { dd_pool_field $P 2 | cut -d/ -f2; }
mbefore=$(meta_total)
check "lvextend the metadata LV by 32 MiB" lvextend -q -L +32M ddt-vg/meta
check "dedupctl resize (metadata)" sh -c "$C resize $P >$DD_TMP/resize.out 2>&1"
log "$(cat "$DD_TMP/resize.out")"
check_eq "the metadata space grew with it (8192 blocks)" "$(meta_total)" $((mbefore + 8192))
check "resize said so" grep -q "metadata space grown" "$DD_TMP/resize.out"
check_eq "the data space did not change" "$(data_total)" $((before + 16384))
$C resize $P >/dev/null 2>"$DD_TMP/err"
check_eq "resize with nothing grown: exit 1, one line" \
	"$?:$(wc -l <"$DD_TMP/err"):$(grep -c 'neither' "$DD_TMP/err")" "1:1:1"
check_eq "pool mode is rw after the metadata growth" "$(dd_pool_field $P 9)" rw
check "the kernel logged the growth" sh -c "dmesg | grep -q 'metadata space grown'"

$C monitor ddtnone --extend-by 64M >/dev/null 2>"$DD_TMP/err"
check_eq "monitor of a pool that is not active: exit 1, one line" \
	"$?:$(wc -l <"$DD_TMP/err"):$(grep -c 'pool ddtnone is not active' "$DD_TMP/err")" "1:1:1"
# Autoextend: 400 MiB of unique blocks into a pool of 192 MiB.
$C monitor $P --extend-by 64M --max 768M >"$DD_TMP/monitor.log" 2>&1 &
mon=$!
sleep 1
check "dedupctl monitor runs" kill -0 $mon
check "fio writes 400 MiB into the 192 MiB pool while the monitor extends it" vfio --rw=write --do_verify=0
check "fio verifies every block" vfio --rw=write --verify_only=1
grep -c extended "$DD_TMP/monitor.log" >"$DD_TMP/n" 2>/dev/null
n=$(cat "$DD_TMP/n")
log "monitor: $n extension(s); $(tail -n 1 "$DD_TMP/monitor.log")"
check "the monitor extended the data LV at least 3 times (from 192 MiB)" test "$n" -ge 3
check_eq "the pool spans the extended LV" "$(data_total)" "$(blocks_of $DATA)"
check "the data LV is within --max" test "$(blockdev --getsize64 $DATA)" -le $((768 << 20))
check_eq "pool mode is rw" "$(dd_pool_field $P 9)" rw
before=$(data_total)
check "--once with free space above low water does nothing" $C monitor $P --extend-by 64M --once
check_eq "(the pool did not grow)" "$(data_total)" "$before"

# LVM on a dedup volume (the monitor still extends the pool when it needs to).
check "a 256 MiB volume for a PV" $C create-volume $P pv 256M
check "the volume is a PV of a second VG" \
	sh -c "pvcreate -q -y /dev/mapper/$P-pv && vgcreate -q ddt-in /dev/mapper/$P-pv"
check "an LV on it" lvcreate -q -y -L 64M -n lv ddt-in
INNER=/dev/mapper/ddt--in-lv
check "64 MiB of random data" sh -c "head -c $((64 << 20)) /dev/urandom >$DD_TMP/pat"
check "written to the inner LV" dd if="$DD_TMP/pat" of=$INNER bs=1M oflag=direct conv=fsync status=none
sum=$(dd_sum "$DD_TMP/pat")
check_eq "the inner LV reads it back" "$(dd_sum $INNER)" "$sum"
check "the monitor is stopped" kill $mon
# (watched in /proc, not waited for: busybox sh's wait once hung for a dead child)
n=0
while grep -q '^[0-9]* (dedupctl) [RSD]' /proc/$mon/stat 2>/dev/null && [ $n -lt 100 ]; do
	sleep 0.1
	n=$((n + 1))
done
grep -q "monitoring" "$DD_TMP/monitor.log" || { fail "the monitor said nothing"; _dd_show "$DD_TMP/monitor.log"; }

# Everything down, then up again from the devices alone.
check "the inner VG deactivates" vgchange -q -an ddt-in
check "dedupctl deactivate" $C deactivate $P
check "the outer VG deactivates and activates again" sh -c "vgchange -q -an ddt-vg && vgchange -q -ay ddt-vg"
check "dedupctl activate --all finds the pool on its LVs" $C activate --all
check "fio verifies v1 after the reactivation" vfio --rw=write --verify_only=1
check_eq "the metadata space is still grown after the reactivation" "$(meta_total)" $((mbefore + 8192))
check "the inner VG activates on the dedup volume" vgchange -q -ay ddt-in
check "echo 3 > drop_caches" sh -c 'echo 3 >/proc/sys/vm/drop_caches'
check_eq "the inner LV reads back after the reactivation" "$(dd_sum $INNER)" "$sum"
check "the inner VG deactivates" vgchange -q -an ddt-in
check "dedupctl deactivate --all" $C deactivate --all
check "dedupctl check on the metadata LV" $C check $META
check "no WARN/BUG/oops/hung task in the kernel log" dd_kernel_clean_since "$DD_TEST.start"
finish
