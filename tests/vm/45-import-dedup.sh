#!/bin/sh
# Dedup at import: a second machine similar to one already in the pool is imported
# with almost nothing written to the data device (the pool compares each block the
# import names with the copy it holds, and maps it there instead of writing it).
# The first import is not scanned before: what an import writes is indexed as it
# goes.  Both volumes equal their images byte for byte, and their filesystems check
# clean.  A volume written by the guest while a copy of it is imported (its blocks
# are what the import compares with), the scanner running, keeps exactly what the
# guest wrote, and the copies equal the image; a copy in another dedup domain shares
# nothing.  Two imports into two volumes run at once while a third dedupctl creates,
# renames, snapshots and deletes volumes in a loop: every change stays in the label
# (each dedupctl takes the pool's lock and re-reads the label), both copies equal
# their images, and the pool deactivates.  The pool checks clean afterwards.
# vm: timeout=720 disks=2 disk_size=1G
. "$(dirname "$0")/lib.sh"

dd_mark "$DD_TEST.start"
dd_load_module || die "dm-dedup does not load"
modprobe loop
# shellcheck disable=SC2086 # two names
set -- $DD_DISKS
[ $# -ge 2 ] || die "two virtio disks wanted, got '$DD_DISKS'"
P=ddtx
C=dedupctl
A=$DD_TMP/a.img
B=$DD_TMP/b.img
MNT=$DD_TMP/mnt
mkdir -p "$MNT"
DATA=$(basename "$2")
# sectors written to the pool's data device so far
data_written() { awk '{print $7}' "/sys/block/$DATA/stat"; }
# field NAME of an import report ("... NAME N, ..." or "... NAME N")
field() { sed -n "s/.*$2 \([0-9]*\).*/\1/p" "$1"; }

# mkfs IMAGE SIZE: ext4 without a journal (a journal replayed at each mount rewrites
# blocks the test would count), its free blocks zero.
mkfs() { truncate -s "$2" "$1" && mkfs.ext4 -q -F -b 4096 -O ^has_journal -E lazy_itable_init=0 "$1"; }
# files DIR N: N distinct random files of 1 to 2 MiB
files() {
	i=0
	while [ $i -lt "$2" ]; do
		dd if=/dev/urandom of="$1/f$i" bs=256K count=$((4 + i % 5)) 2>/dev/null
		i=$((i + 1))
	done
}

# Machine A: distinct random files and a copy of /usr/sbin.
check "image A: 160 MiB of ext4" mkfs "$A" 160M
check "image A: mounted" mount -o loop -t ext4 "$A" "$MNT"
files "$MNT" 40
check "image A: /usr/sbin copied in" cp -a /usr/sbin "$MNT/sbin"
check "image A: unmounted" umount "$MNT"
# Machine B: A with new files and bytes changed in place (no block freed: B's free
# blocks stay zero, so its import equals it byte for byte).
check "image B: a copy of A" cp "$A" "$B"
check "image B: mounted" mount -o loop -t ext4 "$B" "$MNT"
check "image B: 2 MiB of new files" sh -c "for j in 0 1; do dd if=/dev/urandom of=$MNT/new\$j bs=1M count=1 2>/dev/null; done"
check "image B: 12 blocks of 6 files changed in place" sh -c \
	"for j in 1 7 13 19 25 31; do dd if=/dev/urandom of=$MNT/f\$j bs=4K count=2 seek=\$((j % 4)) conv=notrunc 2>/dev/null; done"
check "image B: unmounted" umount "$MNT"
asum=$(dd_sum "$A")
bsum=$(dd_sum "$B")

check "a pool" $C create $P "$1" "$2"
check "import machine A into vm-a" sh -c "$C import $A $P vm-a >$DD_TMP/ia 2>&1"
_dd_show "$DD_TMP/ia"
check_eq "vm-a equals image A" "$(dd_sum /dev/mapper/$P-vm-a)" "$asum"
wa=$(field "$DD_TMP/ia" written)
sa=$(field "$DD_TMP/ia" "shared at import")
check_eq "vm-a maps what was written or shared" \
	"$(dmsetup status $P-vm-a | awk '{print $4}')" "$((wa + sa))"

before=$(data_written)
check "import machine B into vm-b" sh -c "$C import $B $P vm-b >$DD_TMP/ib 2>&1"
after=$(data_written)
_dd_show "$DD_TMP/ib"
wb=$(field "$DD_TMP/ib" written)
sb=$(field "$DD_TMP/ib" "shared at import")
nz=$((wb + sb))
dev_blocks=$(((after - before) / 8))
log "machine B: $nz non-zero blocks in use, $sb shared at import, $wb written ($dev_blocks blocks to the data device)"
check "most of B was shared at import ($sb of $nz)" test "$sb" -gt $((nz * 9 / 10))
check "at most 10 % of B's non-zero blocks reached the data device ($dev_blocks of $nz)" \
	test "$dev_blocks" -le $((nz / 10))
check_eq "vm-b equals image B byte for byte" "$(dd_sum /dev/mapper/$P-vm-b)" "$bsum"
check "vm-b's ext4 checks clean" e2fsck -fn /dev/mapper/$P-vm-b
check "vm-a still equals image A" test "$(dd_sum /dev/mapper/$P-vm-a)" = "$asum"
check "the pool counts the shares" sh -c "$C scan $P stats | grep -Eq '^import_shared [1-9]'"

# Races: machine D is imported again while the guest writes the first copy (vm-p,
# whose blocks, owned by it alone, are what the import compares with), the scanner
# running at full speed; then once more.
D=$DD_TMP/d.img
check "image D: 64 MiB of ext4 with its own files" mkfs "$D" 64M
check "image D: mounted" mount -o loop -t ext4 "$D" "$MNT"
files "$MNT" 20
check "image D: unmounted" umount "$MNT"
dsum=$(dd_sum "$D")
check "import machine D into vm-p" sh -c "$C import $D $P vm-p >$DD_TMP/ip 2>&1"
check "the scanner at full speed" $C scan $P start
check "scan rate unlimited" dmsetup message $P 0 scan rate 0
check "8 MiB of new data for vm-p" dd if=/dev/urandom of="$DD_TMP/x" bs=1M count=8
$C import "$D" $P vm-q >"$DD_TMP/iq" 2>&1 &
pq=$!
cp "$D" "$DD_TMP/p2"
k=0
while [ $k -lt 6 ]; do
	# over the files (past the metadata at the start), each write overlapping the next
	dd if="$DD_TMP/x" of=/dev/mapper/$P-vm-p bs=1M seek=$((4 + k * 5)) conv=notrunc oflag=direct 2>/dev/null
	dd if="$DD_TMP/x" of="$DD_TMP/p2" bs=1M seek=$((4 + k * 5)) conv=notrunc 2>/dev/null
	k=$((k + 1))
done
wait $pq; rq=$?
_dd_show "$DD_TMP/iq"
check_eq "import of vm-q succeeded" "$rq" 0
check "import D again into vm-r, the scanner still running" sh -c "$C import $D $P vm-r >$DD_TMP/ir 2>&1"
check_eq "vm-q equals image D" "$(dd_sum /dev/mapper/$P-vm-q)" "$dsum"
check_eq "vm-r equals image D" "$(dd_sum /dev/mapper/$P-vm-r)" "$dsum"
check_eq "vm-p holds exactly what the guest wrote" "$(dd_sum /dev/mapper/$P-vm-p)" "$(dd_sum "$DD_TMP/p2")"
rm -f "$DD_TMP/p2" "$DD_TMP/x" "$D"
check "vm-b still equals image B" test "$(dd_sum /dev/mapper/$P-vm-b)" = "$bsum"

# Another domain: nothing shared across it.
check "import B into vm-e in domain 1" sh -c "$C import --domain 1 $B $P vm-e >$DD_TMP/ie 2>&1"
check_eq "nothing shared across domains" "$(field "$DD_TMP/ie" "shared at import")" 0
check_eq "vm-e equals image B" "$(dd_sum /dev/mapper/$P-vm-e)" "$bsum"
check "bad hints are refused" sh -c "! dmsetup message $P 0 import_hint 1 0 xyz 2>/dev/null"
check "hints for a volume that does not exist are refused" \
	sh -c "! dmsetup message $P 0 import_hint 999 0 - 2>/dev/null"

# Label updates at once: two imports (checkpoints every 5 s, --rate keeps them
# going for several) and a loop of volume changes, all on one pool's label.
$C import --rate 16 "$A" $P vm-s1 >"$DD_TMP/is1" 2>&1 &
p1=$!
$C import --rate 16 "$B" $P vm-s2 >"$DD_TMP/is2" 2>&1 &
p2=$!
: >"$DD_TMP/loop-err"
: >"$DD_TMP/loop-kept"
# step CMD...: a dedupctl command of the loop; a failure is noted with its line
step() {
	$C "$@" >/dev/null 2>"$DD_TMP/le" || echo "$*: $(cat "$DD_TMP/le")" >>"$DD_TMP/loop-err"
}
i=0
while [ $i -lt 40 ] && { [ $i -lt 4 ] || kill -0 $p1 2>/dev/null || kill -0 $p2 2>/dev/null; }; do
	step create-volume $P c$i 4M
	step rename-volume $P c$i r$i
	if [ $((i % 2)) = 1 ]; then
		step delete-volume $P r$i
	else
		echo r$i >>"$DD_TMP/loop-kept"
	fi
	if [ $((i % 4)) = 0 ]; then
		step snapshot $P r$i s$i
		echo s$i >>"$DD_TMP/loop-kept"
	fi
	i=$((i + 1))
done
wait $p1; r1=$?
wait $p2; r2=$?
log "$i rounds of volume changes ran beside the two imports"
_dd_show "$DD_TMP/is1"
_dd_show "$DD_TMP/is2"
check_eq "import into vm-s1 beside the others succeeded" "$r1" 0
check_eq "import into vm-s2 beside the others succeeded" "$r2" 0
_dd_show "$DD_TMP/loop-err"
check_eq "every volume change of the loop succeeded" "$(wc -l <"$DD_TMP/loop-err")" 0
want=$( (printf '%s\n' vm-a vm-b vm-e vm-p vm-q vm-r vm-s1 vm-s2; cat "$DD_TMP/loop-kept") | sort | tr '\n' ' ')
check_eq "dedupctl list has every volume, and no other" \
	"$($C list $P | awk 'NR > 1 {print $1}' | sort | tr '\n' ' ')" "$want"
check_eq "every volume is ok (none left creating or importing)" \
	"$($C list $P | awk 'NR > 1 && $(NF - 1) != "ok" {print $1 ": " $(NF - 1)}')" ""
check_eq "vm-s1 equals image A" "$(dd_sum /dev/mapper/$P-vm-s1)" "$asum"
check_eq "vm-s2 equals image B" "$(dd_sum /dev/mapper/$P-vm-s2)" "$bsum"
check "vm-a still equals image A" test "$(dd_sum /dev/mapper/$P-vm-a)" = "$asum"

check "deactivate" $C deactivate $P
check "the metadata checks clean" $C check "$1"
check "no WARN/BUG/oops/hung task in the kernel log" dd_kernel_clean_since "$DD_TEST.start"
finish
