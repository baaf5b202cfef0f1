#!/bin/sh
# The freeing of a deleted volume resumes after a crash: a large volume (written in
# random order, so that its reclaim takes several worker passes) is deleted, and right
# after the message returned the metadata device starts dropping every write (a
# dm-flakey table, the crash); the pool is removed, the device restored and the pool
# recreated.  The deleted volume's blocks must be freed within seconds (data used back
# to the remaining volume's blocks), its id must become usable again, and the remaining
# volume must read back its data.
# vm: timeout=300
. "$(dirname "$0")/lib.sh"

dd_mark "$DD_TEST.start"
dd_load_module || die "dm-dedup does not load"
modprobe dm-flakey || die "no dm-flakey"
meta=$(dd_loop 16M) && data=$(dd_loop 256M) || die "cannot set up loop devices"
MS=$(dd_sectors "$meta")
BIG=64 # MiB written to the volume that is deleted
KEEP=256 # blocks of the volume that stays
check "metadata passes through a linear device" \
	sh -c "echo '0 $MS linear $meta 0' | dmsetup create ddt-meta"
M=/dev/mapper/ddt-meta
check "pool is created" dd_pool_create ddt-pool $M "$data"
check "volume 1 is created" dd_volume_create ddt-pool 1 ddt-v1 65536
check "volume 1: $KEEP blocks" \
	dd if=/dev/urandom of=/dev/mapper/ddt-v1 bs=4096 count=$KEEP oflag=direct
sum1=$(dd if=/dev/mapper/ddt-v1 bs=4096 count=$KEEP iflag=direct 2>/dev/null | sha256sum)
check "volume 2 is created" dd_volume_create ddt-pool 2 ddt-v2 $((BIG * 2048))
check "volume 2: $BIG MiB in random 4 KiB order" \
	fio --name=fill --filename=/dev/mapper/ddt-v2 --rw=randwrite --bs=4k --size=${BIG}M \
		--ioengine=libaio --direct=1 --iodepth=16 --randrepeat=0 --output="$DD_OUT/fio-fill.txt"
check_eq "data used" "$(dd_pool_data_used ddt-pool)" $((KEEP + BIG * 256))
check "volume 2's device is removed" dmsetup remove ddt-v2
check "a table that drops every write is loaded (inactive) for the metadata device" \
	sh -c "echo '0 $MS flakey $meta 0 0 1 1 drop_writes' | dmsetup load ddt-meta"
check "volume 2 is deleted; at once the metadata device drops all writes" \
	sh -c "dmsetup message ddt-pool 0 delete_volume 2 &&
		dmsetup suspend --noflush ddt-meta && dmsetup resume ddt-meta"
# The pool goes on freeing volume 2 in memory; what it commits is lost.  It is removed
# only once that has ended (removing a pool while a reclaim runs is another matter).
settled() {
	_i=0
	while [ "$(dd_pool_field ddt-pool 4)" != $KEEP ] && [ "$(dd_pool_field ddt-pool 9)" = rw ] &&
		[ $_i -lt 180 ]; do
		sleep 0.5
		_i=$((_i + 1))
	done
	[ "$(dd_pool_field ddt-pool 4)" = $KEEP ] || [ "$(dd_pool_field ddt-pool 9)" != rw ]
}
check "the pool stops freeing (done in memory, or a metadata error)" settled
log "pool status after the crash: $(dmsetup status ddt-pool)"
check "devices are removed (nothing they write reaches the metadata)" \
	sh -c "dmsetup remove ddt-v1 && dmsetup remove ddt-pool"
check "the metadata device works again" \
	sh -c "echo '0 $MS linear $meta 0' | dmsetup load ddt-meta &&
		dmsetup suspend ddt-meta && dmsetup resume ddt-meta"
check "the metadata after the crash checks clean" dedup_check $M
dedup_dump $M >"$DD_OUT/dump-after-crash.txt" 2>&1
vol2=$(awk '$1 == 2 && $2 ~ /deleting/ {print $4}' "$DD_OUT/dump-after-crash.txt")
log "after the crash, volume 2 (deleting) still has ${vol2:-no} mapped blocks"
check "the crash came before the reclaim was done (volume 2 deleting, blocks mapped)" \
	test "${vol2:-0}" -gt 0
check "pool is recreated" dd_pool_create ddt-pool $M "$data"
freed() { # true once data used is back to KEEP, waiting at most 60 s
	_i=0
	while [ "$(dd_pool_data_used ddt-pool)" != $KEEP ] && [ $_i -lt 120 ]; do
		sleep 0.5
		_i=$((_i + 1))
	done
	[ "$(dd_pool_data_used ddt-pool)" = $KEEP ]
}
check "the reclaim resumes: data used returns to $KEEP" freed
log "data used $(dd_pool_data_used ddt-pool) after about $((_i / 2)) s"
check_eq "mapped blocks $KEEP" "$(dd_pool_field ddt-pool 4)" $KEEP
check "volume 1 is reactivated" dd_volume_activate ddt-pool 1 ddt-v1 65536
check_eq "volume 1 reads back its data" \
	"$(dd if=/dev/mapper/ddt-v1 bs=4096 count=$KEEP iflag=direct 2>/dev/null | sha256sum)" "$sum1"
if dmsetup message ddt-pool 0 create_volume 2; then
	ok "id 2 can be created again"
	check "the new volume 2 is activated" dd_volume_activate ddt-pool 2 ddt-v2 $((BIG * 2048))
	check_eq "it is empty" "$(dmsetup status ddt-v2 | cut -d' ' -f4-)" "0 -"
	check "16 blocks of random data" dd if=/dev/urandom of="$DD_TMP/w" bs=4096 count=16
	check "... written to it" dd if="$DD_TMP/w" of=/dev/mapper/ddt-v2 bs=4096 oflag=direct conv=fsync
	check_eq "... read back" \
		"$(dd if=/dev/mapper/ddt-v2 bs=4096 count=16 iflag=direct 2>/dev/null | sha256sum)" \
		"$(sha256sum <"$DD_TMP/w")"
	check "volume 2 is removed" dmsetup remove ddt-v2
else
	fail "id 2 can be created again"
fi
check "devices are removed" sh -c "dmsetup remove ddt-v1 && dmsetup remove ddt-pool"
check "the metadata checks clean" dedup_check $M
check "the metadata device is removed" dmsetup remove ddt-meta
check "no WARN/BUG/oops in the kernel log" dd_kernel_clean_since "$DD_TEST.start"
finish
