#!/bin/sh
# A resume of the origin while create_snap copies its map waits until the copy has
# ended.  The origin is suspended, create_snap starts (slowed down: the pool was
# reopened, so the copy reads the origin's block records from a metadata device that
# delays reads by 100 ms), the origin is resumed at once and overwritten in place
# (its mappings are in the lookup cache, as exclusive).  The snapshot must hold
# exactly the origin's content at suspend time, the origin its new writes on top of it.
# vm: timeout=300
. "$(dirname "$0")/lib.sh"

dd_mark "$DD_TEST.start"
dd_load_module || die "dm-dedup does not load"
modprobe dm-delay || die "no dm-delay"
meta=$(dd_loop 16M) && data=$(dd_loop 128M) || die "cannot set up loop devices"
MS=$(dd_sectors "$meta")
MIB=32
SZ=$((MIB * 2048))
NEW=1 # MiB overwritten
O=/dev/mapper/ddt-origin
S=/dev/mapper/ddt-snap
M=/dev/mapper/ddt-meta
# dsum DEV [MIB [SKIP_MIB]]: checksum past the page cache.
dsum() {
	dd if="$1" bs=1M count="${2:-$MIB}" skip="${3:-0}" iflag=direct 2>/dev/null |
		sha256sum | cut -d' ' -f1
}
now() { cut -d' ' -f1 /proc/uptime; }
meta_table() { # meta_table TABLE: switch the metadata device's table
	echo "$1" | dmsetup load ddt-meta && dmsetup suspend --noflush ddt-meta &&
		dmsetup resume ddt-meta
}
check "metadata passes through a linear device" \
	sh -c "echo '0 $MS linear $meta 0' | dmsetup create ddt-meta"
check "pool is created" dd_pool_create ddt-pool $M "$data"
check "origin volume 1 is created" dd_volume_create ddt-pool 1 ddt-origin $SZ
check "origin: $MIB MiB written in random 4 KiB order" \
	fio --name=fill --filename=$O --rw=randwrite --bs=4k --size=${MIB}M --ioengine=libaio \
		--direct=1 --iodepth=16 --randrepeat=0 --refill_buffers --output="$DD_OUT/fio-fill.txt"
check_eq "data used $((MIB * 256))" "$(dd_pool_data_used ddt-pool)" $((MIB * 256))
check "origin and pool are removed (the metadata cache goes with it)" \
	sh -c "dmsetup remove ddt-origin && dmsetup remove ddt-pool"
check "pool is recreated" dd_pool_create ddt-pool $M "$data"
check "origin is reactivated" dd_volume_activate ddt-pool 1 ddt-origin $SZ
check "origin is read: its mappings are in the lookup cache" \
	dd if=$O of=/dev/null bs=1M iflag=direct
check "metadata reads are delayed by 100 ms" meta_table "0 $MS delay $meta 0 100 $meta 0 0"
# prepare: the origin's state at suspend time and new data for the overwrite.
prepare() {
	old=$(dsum $O)
	oldnew=$(dsum $O $NEW)
	head -c $((NEW * 1048576)) /dev/urandom >"$DD_TMP/new" || die "no random data"
	newsum=$(dd_sum "$DD_TMP/new")
}

# One attempt: 0 done, 1 create_snap found the origin running (the resume came
# first: a longer head start may help), 2 another failure.
attempt() { # attempt HEAD_START_SECONDS
	dmsetup suspend ddt-origin || return 2
	t0=$(now)
	dmsetup message ddt-pool 0 create_snap 2 1 >"$DD_TMP/snap.out" 2>&1 &
	snap=$!
	sleep "$1"
	dmsetup resume ddt-origin || return 2
	t1=$(now)
	# In place over blocks the snapshot shares, while the copy may still run.
	dd if="$DD_TMP/new" of=$O bs=4096 oflag=direct conv=notrunc 2>/dev/null || return 2
	t2=$(now)
	wait $snap
	src=$?
	t3=$(now)
	log "create_snap started at 0, resume returned at +$(echo "$t1 $t0" | awk '{print $1 - $2}') s," \
		"the overwrite ended at +$(echo "$t2 $t0" | awk '{print $1 - $2}') s," \
		"create_snap ended by +$(echo "$t3 $t0" | awk '{print $1 - $2}') s (exit $src)"
	[ $src = 0 ] && return 0
	_dd_show "$DD_TMP/snap.out"
	grep -q -i busy "$DD_TMP/snap.out" && return 1
	return 2
}
r=1
for hs in 0.3 1 3; do
	prepare
	attempt $hs
	r=$?
	[ $r = 1 ] || break
	log "create_snap came after the resume; again with a longer head start"
done
check_eq "create_snap 2 1 succeeded with the resume racing it" "$r" 0
check "metadata reads are no longer delayed" meta_table "0 $MS linear $meta 0"
check "the snapshot is activated" dd_volume_activate ddt-pool 2 ddt-snap $SZ
check_eq "the snapshot holds the origin's content at suspend time" "$(dsum $S)" "$old"
check_eq "the origin holds its new writes" "$(dsum $O $NEW)" "$newsum"
check_eq "the snapshot does not: it holds what the origin held there" "$(dsum $S $NEW)" "$oldnew"
check_eq "the rest of the origin is unchanged" "$(dsum $O $((MIB - NEW)) $NEW)" \
	"$(dsum $S $((MIB - NEW)) $NEW)"
log "pool status: $(dmsetup status ddt-pool)"
check_eq "the overwrite split $((NEW * 256)) shared blocks" "$(dd_pool_field ddt-pool 8)" \
	$((NEW * 256))
check_eq "data used $(((MIB + NEW) * 256))" "$(dd_pool_data_used ddt-pool)" $(((MIB + NEW) * 256))
check "devices are removed" \
	sh -c "dmsetup remove ddt-snap && dmsetup remove ddt-origin && dmsetup remove ddt-pool"
check "the metadata checks clean" dd_check_metadata $M
check "the metadata device is removed" dmsetup remove ddt-meta
check "no WARN/BUG/oops in the kernel log" dd_kernel_clean_since "$DD_TEST.start"
finish
