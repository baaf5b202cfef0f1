#!/bin/sh
# The test bed gives guest scripts what docs/testing.md promises: the virtio disks asked
# for, ram disks, a working dm-thin pool checked by thin_check, LVM with its private
# configuration, ext4 and btrfs, duperemove, fio with libaio and O_DIRECT, xxhsum.
# Later tests (and the peers they compare with) rely on each of these.
# vm: timeout=300 disks=2 disk_size=1G smp=1
. "$(dirname "$0")/lib.sh"

dd_mark "$DD_TEST.start"

# --- disks ---------------------------------------------------------------------------
if [ "$DD_NATIVE" = 1 ]; then
	disk1=$(dd_loop 1G) && disk2=$(dd_loop 1G) || die "no loop devices"
else
	set -- $DD_DISKS
	check_eq "two virtio disks were attached" "$#" 2
	disk1=${1:-/dev/vda}
	disk2=${2:-/dev/vdb}
	check_eq "disk 1 has the size asked for (1 GiB)" "$(dd_sectors "$disk1")" 2097152
fi

check "brd makes two 16 MiB ram disks" dd_brd 2 16
check_eq "ram disk size" "$(dd_sectors /dev/ram1)" 32768
check "brd unloads" rmmod brd

# --- fio ------------------------------------------------------------------------------
check "fio: 4 KiB random writes with libaio and O_DIRECT, verified" \
	fio --name=testbed --filename="$disk1" --size=16M --bs=4k --rw=randwrite \
	--ioengine=libaio --direct=1 --iodepth=8 --verify=crc32c --do_verify=1 \
	--output="$DD_OUT/fio.txt"

# --- dm-thin + thin_check ----------------------------------------------------------------
meta=$(dd_loop 16M) && data=$(dd_loop 128M) || die "no loop devices"
check "dm-thin-pool loads" modprobe dm-thin-pool
check "a thin pool is created" sh -c \
	"echo '0 262144 thin-pool $meta $data 128 0 1 skip_block_zeroing' | dmsetup create ddt-thinpool"
check "a thin device is created in it" dmsetup message ddt-thinpool 0 "create_thin 0"
check "the thin device is activated" sh -c \
	"echo '0 131072 thin /dev/mapper/ddt-thinpool 0' | dmsetup create ddt-thin"
check "the thin device takes 8 MiB of writes" \
	dd if=/dev/urandom of=/dev/mapper/ddt-thin bs=1M count=8 oflag=direct
check "the thin device is removed" dmsetup remove ddt-thin
check "the thin pool is removed" dmsetup remove ddt-thinpool
check "thin_check finds the pool's metadata clean" thin_check "$meta"

# --- LVM ----------------------------------------------------------------------------
check "pvcreate" pvcreate -q "$disk2"
check "vgcreate" vgcreate -q ddt-vg "$disk2"
check "lvcreate (64 MiB)" lvcreate -q -y -L 64M -n lv ddt-vg
check "the LV node exists" test -b /dev/ddt-vg/lv -o -b /dev/mapper/ddt--vg-lv
lvdev=/dev/mapper/ddt--vg-lv

# --- ext4 -----------------------------------------------------------------------------
check "mkfs.ext4 on the LV" mkfs.ext4 -q -F "$lvdev"
check "e2fsck finds it clean" e2fsck -fn "$lvdev"
check "lvremove" lvremove -q -y ddt-vg/lv
check "vgremove" vgremove -q -y ddt-vg
check "pvremove" pvremove -q -y "$disk2"

# --- btrfs + duperemove ---------------------------------------------------------------
mnt=$DD_TMP/btrfs
mkdir -p "$mnt"
check "mkfs.btrfs" mkfs.btrfs -q -f "$disk1"
check "btrfs mounts" mount -t btrfs "$disk1" "$mnt"
check "two identical 4 MiB files" sh -c \
	"dd if=/dev/urandom of=$mnt/a bs=1M count=4 2>/dev/null && dd if=$mnt/a of=$mnt/b bs=1M 2>/dev/null && sync"
check "duperemove dedupes them" duperemove -dq "$mnt/a" "$mnt/b"
check_eq "the files are still identical" "$(sha256sum <"$mnt/a")" "$(sha256sum <"$mnt/b")"
sync
btrfs filesystem du -s --raw "$mnt" | sed 's/^/# /'
shared=$(btrfs filesystem du -s --raw "$mnt" | awk 'NR == 2 { print $3 }')
check "4 MiB of the two files are shared on disk (got '$shared' bytes)" \
	test "${shared:-0}" -ge 4194304
check "btrfs unmounts" umount "$mnt"

# --- xxhsum ---------------------------------------------------------------------------
check_eq "xxhsum -H1 (XXH64) of 'abc'" "$(printf abc | xxhsum -H1 | cut -d' ' -f1)" 44bc2cf5ad770999

check "no WARN/BUG/oops in the kernel log" dd_kernel_clean_since "$DD_TEST.start"
finish
