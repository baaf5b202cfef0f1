#!/bin/sh
# The dedup-pool and dedup constructors reject malformed table lines, each with its own
# ti->error message and no kernel trouble; well-formed lines are accepted and
# `dmsetup table` prints lines that `dmsetup load` accepts again.
# vm: timeout=300 smp=1
. "$(dirname "$0")/lib.sh"

dd_mark "$DD_TEST.start"
dd_load_module || die "dm-dedup does not load"

# Zeroed devices, big enough for a pool that formats its metadata.
meta=$(dd_loop 16M) && data=$(dd_loop 64M) && meta2=$(dd_loop 16M) &&
	data2=$(dd_loop 64M) && small=$(dd_loop 1M) && tiny=$(dd_loop 2K) ||
	die "cannot set up loop devices"
M=$(dd_devno "$meta")
D=$(dd_devno "$data")
M2=$(dd_devno "$meta2")
D2=$(dd_devno "$data2")
LEN=$(dd_sectors "$data") # 131072
log "metadata $meta ($M), data $data ($D), metadata2 $meta2 ($M2), data2 $data2 ($D2)"
log "small $small ($(dd_sectors "$small") sectors), tiny $tiny ($(dd_sectors "$tiny") sectors)"

P="0 $LEN dedup-pool"
T=expect_table_error

# 2^64: one more than the largest 64-bit number.
TWO64=18446744073709551616

log "--- malformed dedup-pool lines"
$T "pool: no arguments at all" ddt-bad dedup-pool "Too few pool arguments" \
	"$P"
$T "pool: too few arguments" ddt-bad dedup-pool "Too few pool arguments" \
	"$P $meta $data 8"
$T "pool: non-numeric block size" ddt-bad dedup-pool "Invalid data block size" \
	"$P $meta $data 4k 1024"
$T "pool: block size not a multiple of 8 sectors" ddt-bad dedup-pool "Invalid data block size" \
	"$P $meta $data 12 1024"
$T "pool: block size 0" ddt-bad dedup-pool "Invalid data block size" \
	"$P $meta $data 0 1024"
$T "pool: valid but unsupported block size (64 KiB)" ddt-bad dedup-pool "Unsupported data block size" \
	"$P $meta $data 128 1024"
$T "pool: block size 2^64" ddt-bad dedup-pool "Invalid data block size" \
	"$P $meta $data $TWO64 1024"
$T "pool: negative block size" ddt-bad dedup-pool "Invalid data block size" \
	"$P $meta $data -8 1024"
$T "pool: block size below 4 KiB (4 sectors)" ddt-bad dedup-pool "Invalid data block size" \
	"$P $meta $data 4 1024"
$T "pool: block size above 1 GiB (2^21 + 8 sectors)" ddt-bad dedup-pool "Invalid data block size" \
	"$P $meta $data $(((1 << 21) + 8)) 1024"
$T "pool: block size a multiple of 4 KiB but not a power of two (24)" ddt-bad dedup-pool \
	"Unsupported data block size" "$P $meta $data 24 1024"
$T "pool: the largest valid block size (1 GiB) is unsupported" ddt-bad dedup-pool \
	"Unsupported data block size" "$P $meta $data $((1 << 21)) 1024"
$T "pool: non-numeric low water mark" ddt-bad dedup-pool "Invalid low water mark" \
	"$P $meta $data 8 lots"
$T "pool: low water mark overflows 64 bits" ddt-bad dedup-pool "Invalid low water mark" \
	"$P $meta $data 8 99999999999999999999999"
$T "pool: negative low water mark" ddt-bad dedup-pool "Invalid low water mark" \
	"$P $meta $data 8 -1"
$T "pool: low water mark 2^64" ddt-bad dedup-pool "Invalid low water mark" \
	"$P $meta $data 8 $TWO64"
$T "pool: non-numeric feature count" ddt-bad dedup-pool "Invalid feature count" \
	"$P $meta $data 8 1024 one read_only"
$T "pool: negative feature count" ddt-bad dedup-pool "Invalid feature count" \
	"$P $meta $data 8 1024 -1 read_only"
$T "pool: feature count 2^32" ddt-bad dedup-pool "Invalid feature count" \
	"$P $meta $data 8 1024 4294967296 read_only"
$T "pool: feature count 0 followed by a feature" ddt-bad dedup-pool "Too many pool arguments" \
	"$P $meta $data 8 1024 0 read_only"
$T "pool: feature count above the number of features" ddt-bad dedup-pool "Too many features" \
	"$P $meta $data 8 1024 9 a b c d e f g h i"
$T "pool: feature count above the arguments given" ddt-bad dedup-pool \
	"Feature count exceeds the arguments given" \
	"$P $meta $data 8 1024 2 read_only"
$T "pool: unknown feature" ddt-bad dedup-pool "Unknown pool feature" \
	"$P $meta $data 8 1024 1 compress"
$T "pool: feature given twice" ddt-bad dedup-pool "Duplicate pool feature" \
	"$P $meta $data 8 1024 2 read_only read_only"
$T "pool: index_memory without its size" ddt-bad dedup-pool \
	"index_memory needs a size in MiB (1..1048576)" "$P $meta $data 8 1024 1 index_memory"
$T "pool: index_memory 0" ddt-bad dedup-pool \
	"index_memory needs a size in MiB (1..1048576)" "$P $meta $data 8 1024 2 index_memory 0"
$T "pool: index_memory not a number" ddt-bad dedup-pool \
	"index_memory needs a size in MiB (1..1048576)" "$P $meta $data 8 1024 2 index_memory 1G"
$T "pool: index_memory above the limit" ddt-bad dedup-pool \
	"index_memory needs a size in MiB (1..1048576)" "$P $meta $data 8 1024 2 index_memory 1048577"
$T "pool: feature count covers index_memory but not its size" ddt-bad dedup-pool \
	"index_memory needs a size in MiB (1..1048576)" "$P $meta $data 8 1024 1 index_memory 8"
$T "pool: index_memory 2^64" ddt-bad dedup-pool \
	"index_memory needs a size in MiB (1..1048576)" "$P $meta $data 8 1024 2 index_memory $TWO64"
$T "pool: index_memory 2^32 + 8 (wraps to 8 in 32 bits)" ddt-bad dedup-pool \
	"index_memory needs a size in MiB (1..1048576)" "$P $meta $data 8 1024 2 index_memory 4294967304"
$T "pool: negative index_memory" ddt-bad dedup-pool \
	"index_memory needs a size in MiB (1..1048576)" "$P $meta $data 8 1024 2 index_memory -1"
$T "pool: a feature given twice in different case" ddt-bad dedup-pool "Duplicate pool feature" \
	"$P $meta $data 8 1024 2 READ_ONLY read_only"
$T "pool: index_memory given twice" ddt-bad dedup-pool "Duplicate pool feature" \
	"$P $meta $data 8 1024 4 index_memory 8 index_memory 8"
$T "pool: argument after the features" ddt-bad dedup-pool "Too many pool arguments" \
	"$P $meta $data 8 1024 1 read_only extra"
$T "pool: same path for metadata and data" ddt-bad dedup-pool \
	"Metadata and data devices must differ" \
	"$P $meta $meta 8 1024"
$T "pool: same device for metadata and data under two names" ddt-bad dedup-pool \
	"Metadata and data devices must differ" \
	"$P $M $meta 8 1024"
$T "pool: metadata device does not exist" ddt-bad dedup-pool "Error opening metadata device" \
	"$P /dev/ddt-no-such-device $data 8 1024"
$T "pool: data device does not exist" ddt-bad dedup-pool "Error opening data device" \
	"$P $meta /dev/ddt-no-such-device 8 1024"
$T "pool: metadata device below the 2 MiB minimum" ddt-bad dedup-pool "Metadata device too small" \
	"$P $small $data 8 1024"
$T "pool: data device smaller than one block" ddt-bad dedup-pool \
	"Data device smaller than one data block" \
	"0 4 dedup-pool $meta $tiny 8 1024"
$T "pool: target longer than the data device" ddt-bad dedup-pool "Pool length exceeds data device" \
	"0 $((LEN * 2)) dedup-pool $meta $data 8 1024"
$T "pool: zero-length target (refused by dm core)" ddt-bad - "zero-length target" \
	"0 0 dedup-pool $meta $data 8 1024"
$T "pool: shorter than one data block (7 sectors)" ddt-bad dedup-pool \
	"Pool length smaller than one data block" "0 7 dedup-pool $meta $data 8 1024"
# dm core takes lengths up to 2^54 sectors; the pool must refuse what it accepts.
$T "pool: 2^53 sectors long" ddt-bad dedup-pool "Pool length exceeds data device" \
	"0 $((1 << 53)) dedup-pool $meta $data 8 1024"
$T "pool: 2^62 sectors long (refused by dm core)" ddt-bad - "too large device" \
	"0 $((1 << 62)) dedup-pool $meta $data 8 1024"
$T "pool: read_only over a zeroed metadata device (it would need formatting)" ddt-bad dedup-pool \
	"Cannot format a metadata device in read_only mode" "$P $meta $data 8 1024 1 read_only"
check "a metadata device holding something else" \
	sh -c "yes junk | head -c 65536 | dd of=$meta2 conv=notrunc 2>/dev/null"
$T "pool: metadata device holds something that is not a pool" ddt-bad dedup-pool \
	"Metadata device holds something other than a dedup pool" \
	"$P $meta2 $data2 8 1024"
check "the junk is zeroed again" \
	sh -c "dd if=/dev/zero of=$meta2 bs=65536 count=1 conv=notrunc 2>/dev/null"
$T "pool: not alone in its table" ddt-bad dedup-pool \
	"singleton target type must appear alone in table" \
	"0 8 linear $data2 0
8 $LEN dedup-pool $meta $data 8 1024"

log "--- well-formed dedup-pool lines"
check "pool: a well-formed line is accepted" \
	sh -c "echo '$P $meta $data 8 1024' | dmsetup create ddt-pool"
check_eq "pool: dmsetup table prints the line back" \
	"$(dmsetup table ddt-pool)" "$P $M $D 8 1024"
check "pool: dmsetup load accepts the printed line" \
	sh -c 'dmsetup table ddt-pool | dmsetup load ddt-pool && dmsetup resume ddt-pool'
check_eq "pool: the reloaded table is unchanged" "$(dmsetup table ddt-pool)" "$P $M $D 8 1024"

$T "pool: metadata device already used by another pool" ddt-bad dedup-pool \
	"Metadata device already in use by another pool" \
	"$P $meta $data2 8 1024"
$T "pool: data device already used by another pool" ddt-bad dedup-pool \
	"Data device already in use by another pool" \
	"$P $meta2 $data 8 1024"
DD_CASE=$((DD_CASE + 1))
dd_mark "$DD_TEST.replace"
expect_fail "pool: a reload naming other devices is refused" \
	sh -c "echo '$P $meta2 $data2 8 1024' | dmsetup load ddt-pool"
check "pool: ... with 'Pool cannot be replaced by a pool on other devices'" \
	sh -c "dmesg | sed -n '/dd-mark: $DD_TEST.replace\$/,\$p' |
		grep -F ': dedup-pool: Pool cannot be replaced by a pool on other devices ('"
check_eq "pool: ... and the live table is unchanged" "$(dmsetup table ddt-pool)" "$P $M $D 8 1024"

check "pool: a line with five features and index_memory is accepted" \
	sh -c "echo '$P $meta2 $data2 8 0 7 index_memory 4 share_snapshots skip_zero_detect no_discard_passdown error_if_no_space ignore_discard' |
		dmsetup create ddt-pool2"
FEAT="7 error_if_no_space ignore_discard no_discard_passdown skip_zero_detect share_snapshots index_memory 4"
check_eq "pool: features are printed back in canonical order" \
	"$(dmsetup table ddt-pool2)" "$P $M2 $D2 8 0 $FEAT"
check "pool: dmsetup load accepts the printed line with features" \
	sh -c 'dmsetup table ddt-pool2 | dmsetup load ddt-pool2 && dmsetup resume ddt-pool2'
check_eq "pool: the reloaded table with features is unchanged" \
	"$(dmsetup table ddt-pool2)" "$P $M2 $D2 8 0 $FEAT"
IB=$(dmsetup message ddt-pool2 0 scan stats | sed -n 's/^index_bytes //p')
check "pool: index_memory 4 sizes the index to 4 MiB (index_bytes $IB)" \
	test "$IB" -gt $((3 << 20)) -a "$IB" -le $((4 << 20))
check "pool: the second pool is removed" dmsetup remove ddt-pool2

log "--- malformed dedup lines"
POOLDEV=/dev/mapper/ddt-pool
PN=$(dd_devno "$POOLDEV")
V="0 2048 dedup"
check "a linear device to pose as a pool" sh -c "echo '0 2048 linear $data2 0' | dmsetup create ddt-linear"
$T "volume: no arguments at all" ddt-vbad dedup "Too few volume arguments" \
	"$V"
$T "volume: too few arguments" ddt-vbad dedup "Too few volume arguments" \
	"$V $POOLDEV"
$T "volume: too many arguments" ddt-vbad dedup "Too many volume arguments" \
	"$V $POOLDEV 1 2"
$T "volume: non-numeric volume id" ddt-vbad dedup "Invalid volume id" \
	"$V $POOLDEV vol1"
$T "volume: negative volume id" ddt-vbad dedup "Invalid volume id" \
	"$V $POOLDEV -1"
$T "volume: hexadecimal volume id" ddt-vbad dedup "Invalid volume id" \
	"$V $POOLDEV 0x10"
$T "volume: volume id with trailing garbage" ddt-vbad dedup "Invalid volume id" \
	"$V $POOLDEV 12abc"
$T "volume: volume id 2^24" ddt-vbad dedup "Volume id out of range" \
	"$V $POOLDEV 16777216"
$T "volume: volume id 2^32 (0 in 32 bits)" ddt-vbad dedup "Volume id out of range" \
	"$V $POOLDEV 4294967296"
$T "volume: volume id 2^64" ddt-vbad dedup "Volume id out of range" \
	"$V $POOLDEV $TWO64"
$T "volume: volume id beyond 64 bits" ddt-vbad dedup "Volume id out of range" \
	"$V $POOLDEV 99999999999999999999999"
$T "volume: pool device does not exist" ddt-vbad dedup "Error opening pool device" \
	"$V /dev/ddt-no-such-device 1"
$T "volume: pool device is not a device-mapper device" ddt-vbad dedup \
	"Pool device is not a device-mapper device" \
	"$V $data2 1"
$T "volume: pool device is a dm device but not a dedup-pool" ddt-vbad dedup \
	"Pool device is not a dedup-pool" \
	"$V /dev/mapper/ddt-linear 1"
check "the linear device is removed" dmsetup remove ddt-linear

$T "volume: the volume was never created in the pool" ddt-vbad dedup \
	"Volume does not exist (create_volume first)" \
	"$V $POOLDEV 16777215"

log "--- well-formed dedup lines"
check "pool: create_volume 16777215" dmsetup message ddt-pool 0 create_volume 16777215
# LBNs are 48-bit: 2^48 blocks of 8 sectors is the longest volume.
MAXLEN=$((1 << 51))
$T "volume: one sector longer than 2^48 blocks" ddt-vbad dedup \
	"Volume longer than the address space (2^48 blocks)" \
	"0 $((MAXLEN + 1)) dedup $POOLDEV 16777215"
$T "volume: 2^53 sectors long (the most dm core takes)" ddt-vbad dedup \
	"Volume longer than the address space (2^48 blocks)" \
	"0 $((1 << 53)) dedup $POOLDEV 16777215"
check "volume: a volume of exactly 2^48 blocks is accepted" \
	sh -c "echo '0 $MAXLEN dedup $POOLDEV 16777215' | dmsetup create ddt-vmax"
check_eq "volume: its last block reads as zeroes" \
	"$(dd if=/dev/mapper/ddt-vmax bs=4096 skip=$(((1 << 48) - 1)) count=1 iflag=direct 2>/dev/null | sha256sum | cut -d' ' -f1)" \
	"$(head -c 4096 /dev/zero | sha256sum | cut -d' ' -f1)"
check "volume: its last block is written" \
	sh -c "head -c 4096 /dev/urandom >$DD_TMP/last.blk &&
		dd if=$DD_TMP/last.blk of=/dev/mapper/ddt-vmax bs=4096 seek=$(((1 << 48) - 1)) oflag=direct conv=notrunc 2>/dev/null"
check_eq "volume: ... and reads back" \
	"$(dd if=/dev/mapper/ddt-vmax bs=4096 skip=$(((1 << 48) - 1)) count=1 iflag=direct 2>/dev/null | sha256sum | cut -d' ' -f1)" \
	"$(sha256sum <$DD_TMP/last.blk | cut -d' ' -f1)"
check_eq "pool: still rw after I/O at the last LBN" "$(dd_pool_field ddt-pool 9)" rw
check "volume: the 2^48-block device is removed" dmsetup remove ddt-vmax
check "volume: a well-formed line is accepted (largest id)" \
	sh -c "echo '$V $POOLDEV 16777215' | dmsetup create ddt-vol"
check_eq "volume: dmsetup table prints the line back" \
	"$(dmsetup table ddt-vol)" "$V $PN 16777215"
check "volume: dmsetup load accepts the printed line" \
	sh -c 'dmsetup table ddt-vol | dmsetup load ddt-vol && dmsetup resume ddt-vol'
check_eq "volume: the reloaded table is unchanged" "$(dmsetup table ddt-vol)" "$V $PN 16777215"
$T "volume: the volume is active in another device" ddt-vbad dedup \
	"Volume is already in use by another device" \
	"$V $POOLDEV 16777215"
$T "volume: pool device is a dedup volume, not a dedup-pool" ddt-vbad dedup \
	"Pool device is not a dedup-pool" \
	"$V /dev/mapper/ddt-vol 16777215"
expect_fail "pool: cannot be removed while a volume holds it" dmsetup remove ddt-pool
check "volume: removed" dmsetup remove ddt-vol
check "pool: removed once its volume is gone" dmsetup remove ddt-pool

check "dm-dedup unloads with no pool left behind" dd_unload_module
check "no WARN/BUG/oops in the kernel log" dd_kernel_clean_since "$DD_TEST.start"
log "$DD_CASE malformed table lines checked"
finish
