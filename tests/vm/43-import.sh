#!/bin/sh
# dedupctl import (P2V): a GPT disk image with an ext4 partition and a raw one is
# copied into volumes.  The copy equals the image byte for byte (its free ext4 blocks
# hold zeroes) and is written without the zero and free blocks; after files are
# deleted (free blocks with stale data), the copy's filesystem checks clean and its
# files equal the image's; --all-blocks copies every non-zero block; an import killed
# (SIGKILL) halfway resumes where its last checkpoint was and still matches; qcow2 and
# vmdk images of the changed image are imported through qemu-nbd (read-only, detached
# afterwards), free blocks skipped, and equal its raw import; a qcow2 import stopped
# by SIGTERM detaches its nbd device and the same command finishes it; --raw imports
# the image file itself; a read error in the middle of the source stops the import
# with status 1 and one line.
# vm: timeout=600 disks=2 disk_size=1G smp=1
. "$(dirname "$0")/lib.sh"

dd_mark "$DD_TEST.start"
dd_load_module || die "dm-dedup does not load"
modprobe loop
# shellcheck disable=SC2086 # two names
set -- $DD_DISKS
[ $# -ge 2 ] || die "two virtio disks wanted, got '$DD_DISKS'"
P=ddti
C=dedupctl
IMG=$DD_TMP/disk.img
MNT=$DD_TMP/mnt
mkdir -p "$MNT"
P2=$(((2048 + 327680) * 512))

check "a 192 MiB image with a GPT" sh -c "truncate -s 192M $IMG && printf 'label: gpt\nstart=2048, size=327680, type=linux\nstart=329728, size=16384, type=linux\n' | sfdisk -q $IMG"
lo=$(losetup -f) && losetup -P "$lo" "$IMG" && lp=${lo}p1 && test -b "$lp" || die "no loop for p1"
# part VOLUME: p1 of the volume, read-only (dm-linear), printed
part() {
	dmsetup create --readonly ddt-$1p1 --table "0 327680 linear /dev/mapper/$P-$1 2048" &&
		echo /dev/mapper/ddt-$1p1
}
check "p1: ext4" mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "$lp"
check "p1: mounted" mount -t ext4 "$lp" "$MNT"
i=0
while [ $i -lt 48 ]; do
	dd if=/dev/urandom of="$MNT/f$i" bs=256K count=$((1 + i % 5)) 2>/dev/null
	i=$((i + 1))
done
check "p1: a copy of /usr/sbin too" cp -a /usr/sbin "$MNT/sbin"
check "p1: unmounted" umount "$MNT"
check "p2: 8 MiB of random data" \
	dd if=/dev/urandom of="$IMG" bs=1M count=8 seek=$((P2 >> 20)) conv=notrunc,fsync
isum=$(dd_sum "$IMG")

check "a pool" $C create $P "$1" "$2"
check "import the image into vm1" sh -c "$C import $IMG $P vm1 >$DD_TMP/imp1 2>&1"
_dd_show "$DD_TMP/imp1"
check_eq "vm1 equals the image byte for byte" "$(dd_sum /dev/mapper/$P-vm1)" "$isum"
check "the import skipped free and zero blocks" \
	grep -Eq "skipped as zero [1-9][0-9]*, skipped as free [1-9]" "$DD_TMP/imp1"
written=$(sed -n 's/.*written \([0-9]*\),.*/\1/p' "$DD_TMP/imp1")
shared=$(sed -n 's/.*shared at import \([0-9]*\).*/\1/p' "$DD_TMP/imp1")
check "it wrote less than half the image's blocks ($written of 49152)" test "$written" -lt 24576
check_eq "the volume maps what was written or shared at import" \
	"$(dmsetup status $P-vm1 | awk '{print $4}')" "$((written + shared))"
lv=$(part vm1) || fail "p1 of vm1"
check "vm1's ext4 checks clean (e2fsck -fn)" e2fsck -fn "$lv"
dmsetup remove ddt-vm1p1

# free blocks with stale data: deleted files
check "p1: mounted again" mount -t ext4 "$lp" "$MNT"
check "p1: every other file deleted" sh -c "rm -f $MNT/f*[02468] && rm -rf $MNT/sbin/[a-m]*"
( cd "$MNT" && find . -type f | sort | xargs sha256sum ) >"$DD_TMP/files"
check "p1: unmounted" umount "$MNT"
losetup -d "$lo"
isum2=$(dd_sum "$IMG")
check "import the changed image into vm2" sh -c "$C import $IMG $P vm2 >$DD_TMP/imp2 2>&1"
lv=$(part vm2) || fail "p1 of vm2"
check "vm2's ext4 checks clean" e2fsck -fn "$lv"
check "vm2's ext4 mounts read-only" mount -t ext4 -o ro,noload "$lv" "$MNT"
( cd "$MNT" && find . -type f | sort | xargs sha256sum ) >"$DD_TMP/files2"
check "vm2's files equal the image's" cmp "$DD_TMP/files" "$DD_TMP/files2"
umount "$MNT"; dmsetup remove ddt-vm2p1
check_eq "p2 of vm2 equals the image's" \
	"$(dd if=/dev/mapper/$P-vm2 bs=1M skip=$((P2 >> 20)) count=8 2>/dev/null | sha256sum)" \
	"$(dd if="$IMG" bs=1M skip=$((P2 >> 20)) count=8 2>/dev/null | sha256sum)"
check "import --all-blocks into vm3" sh -c "$C import --all-blocks $IMG $P vm3 >$DD_TMP/imp3 2>&1"
check_eq "vm3 equals the changed image byte for byte" "$(dd_sum /dev/mapper/$P-vm3)" "$isum2"
fails_exist() { $C import "$IMG" $P vm3 >/dev/null 2>"$DD_TMP/err"; test $? -eq 1 && grep -q "already" "$DD_TMP/err"; }
check "import onto an existing volume is refused" fails_exist

# killed halfway, then resumed
$C import --all-blocks --rate 8 "$IMG" $P vm4 >"$DD_TMP/imp4" 2>&1 &
k=$!
sleep 9
kill -9 $k
wait $k 2>/dev/null
check "vm4 is left importing" sh -c "$C list $P | grep -q '^vm4 .* importing '"
check "the import of vm4 is started again" sh -c "$C import --all-blocks $IMG $P vm4 >$DD_TMP/imp5 2>&1"
_dd_show "$DD_TMP/imp5"
check "it resumed after the start" grep -Eq "resuming vm4 at [1-9]" "$DD_TMP/imp5"
check_eq "vm4 equals the image byte for byte" "$(dd_sum /dev/mapper/$P-vm4)" "$isum2"
check "vm4 is ok now" sh -c "$C list $P | grep -q '^vm4 .* ok '"

# Virtual-disk images: attached read-only through qemu-nbd, detached afterwards.
modprobe nbd
vm2sum=$(dd_sum /dev/mapper/$P-vm2)
for f in qcow2 vmdk; do
	check "the changed image converted to $f" qemu-img convert -f raw -O $f "$IMG" "$DD_TMP/disk.$f"
	check "import the $f image into vm-$f (through qemu-nbd)" \
		sh -c "$C import $DD_TMP/disk.$f $P vm-$f >$DD_TMP/imp-$f 2>&1"
	_dd_show "$DD_TMP/imp-$f"
	check "it said so" grep -q "is a $f image, read through qemu-nbd on /dev/nbd" "$DD_TMP/imp-$f"
	check_eq "vm-$f equals vm2, the import of the same image raw" "$(dd_sum /dev/mapper/$P-vm-$f)" "$vm2sum"
	check "free blocks were skipped through nbd too" grep -Eq "skipped as free [1-9]" "$DD_TMP/imp-$f"
	check "no nbd device is left connected" sh -c "! grep -qv '^0\$' /sys/block/nbd*/size"
	rm -f "$DD_TMP/disk.$f"
done
# SIGTERM in the middle of a qcow2 import: it stops, qemu-nbd is detached, and the
# same command finishes it.  (No `wait` for the killed child: busybox sh's wait once
# hung for a child that had died; the process is watched in /proc instead.)
check "a qcow2 image for the interrupted import" qemu-img convert -f raw -O qcow2 "$IMG" "$DD_TMP/int.qcow2"
$C import --rate 2 "$DD_TMP/int.qcow2" $P vm-int >"$DD_TMP/imp-int" 2>&1 &
ipid=$!
sleep 3
check "the slow import is running" grep -q '^[0-9]* (dedupctl) [RSD]' /proc/$ipid/stat
kill -TERM $ipid
gone() { ! grep -q '^[0-9]* (dedupctl) [RSD]' /proc/$ipid/stat 2>/dev/null; }
n=0
while ! gone && [ $n -lt 300 ]; do sleep 0.1; n=$((n + 1)); done
check "SIGTERM stops it" gone
check "it says how to resume" grep -q "stopped by signal 15: run the same command to resume" "$DD_TMP/imp-int"
check "its nbd device is detached" sh -c "! grep -qv '^0\$' /sys/block/nbd*/size"
check "vm-int is left importing" sh -c "$C list $P | grep -q '^vm-int .* importing '"
check "the same command finishes it" sh -c "$C import $DD_TMP/int.qcow2 $P vm-int >$DD_TMP/imp-int2 2>&1"
check_eq "vm-int equals vm2" "$(dd_sum /dev/mapper/$P-vm-int)" "$vm2sum"
check "no nbd device is left connected" sh -c "! grep -qv '^0\$' /sys/block/nbd*/size"
rm -f "$DD_TMP/int.qcow2"
check "--raw imports the qcow2 file itself" sh -c "qemu-img convert -f raw -O qcow2 $IMG $DD_TMP/q && $C import --raw $DD_TMP/q $P vm-raw >/dev/null 2>&1"
check_eq "vm-raw equals the qcow2 file" "$(dd_sum /dev/mapper/$P-vm-raw $(stat -c %s "$DD_TMP/q"))" "$(dd_sum "$DD_TMP/q")"
rm -f "$DD_TMP/q"

# A read error in the middle of the source (dm-error over 4 MiB at 96 MiB): the reader
# thread hands it to the copy, which stops with status 1 and one line naming the byte.
eloop=$(losetup -f) && losetup -r "$eloop" "$IMG" &&
	dmsetup create --readonly ddt-esrc --table "0 196608 linear $eloop 0
196608 8192 error
204800 188416 linear $eloop 204800" || fail "a source with a bad stretch"
$C import --all-blocks /dev/mapper/ddt-esrc $P vm-err >"$DD_TMP/imp-err" 2>"$DD_TMP/imp-err.2"
rc=$?
_dd_show "$DD_TMP/imp-err.2"
check_eq "the import of a source with a read error exits 1" "$rc" 1
check_eq "with one line on stderr" "$(wc -l <"$DD_TMP/imp-err.2")" 1
eb=$(sed -n 's/.*source: read at byte \([0-9]*\): Input\/output error$/\1/p' "$DD_TMP/imp-err.2")
check "it names the failed byte, inside the bad stretch (${eb:-none})" \
	sh -c "[ -n '$eb' ] && [ '$eb' -ge $((196608 * 512)) ] && [ '$eb' -lt $((204800 * 512)) ]"
check "vm-err is left importing" sh -c "$C list $P | grep -q '^vm-err .* importing '"
dmsetup remove ddt-esrc; losetup -d "$eloop"

check "deactivate" $C deactivate $P
check "the metadata checks clean" $C check "$1"
check "no WARN/BUG/oops/hung task in the kernel log" dd_kernel_clean_since "$DD_TEST.start"
finish
