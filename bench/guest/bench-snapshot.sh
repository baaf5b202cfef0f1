#!/bin/sh
# Snapshot benchmark (not a test: bench/snapshot.sh runs it and makes the table).
# For origins of 256 MiB, 1 GiB and 8 GiB, each written whole in random order and
# fsynced, a dedup volume and a dm-thin volume (64 KiB blocks, skip_block_zeroing) are
# snapshotted REPS times each, interleaved (the kind that goes first alternates): the
# origin is suspended, `create_snap` is sent, the origin resumed.  Recorded: the wall
# time of the message ioctl alone (what a resume of the origin, and every other pool
# message, waits for), and of suspend + message + resume, in microseconds.  Each snapshot is
# deleted before the next one.  Then, on the 8 GiB pair: a 4 KiB random-write fio on a
# second volume of the same pool, time-based, once alone and once while the 8 GiB
# origin is snapshotted (and the snapshot deleted) every second; and the first writes
# after a snapshot (every write breaks sharing) against dm-linear.
# The data of both pools is on virtio disks (sparse files on the host, cache=none; the
# dedup pool's and dm-linear's written whole first), their metadata on a brd RAM disk;
# the origins are written with 4 KiB random writes (256 MiB, 1 GiB) and 64 KiB random
# writes (8 GiB: 131,072 of them, every map leaf still touched in random order), each
# block once.
# Results: $DD_OUT/snap.csv "rep,size,kind,what,value".
# vm: timeout=3600 disks=3 disk_size=10G mem=3G
. "$(dirname "$0")/lib.sh"
S=2048 # sectors per MiB

REPS=$(cat "$DD_TESTS/bench-reps" 2>/dev/null || echo 5)
CSV=$DD_OUT/snap.csv
: >"$CSV"

dd_load_module || die "dm-dedup does not load"
modprobe dm-thin-pool || die "no dm-thin"
set -- $DD_DISKS
DDATA=$1 TDATA=$2 LDATA=$3
[ -b "$DDATA" ] && [ -b "$TDATA" ] && [ -b "$LDATA" ] || die "three disks wanted, got '$DD_DISKS'"
dd_brd 1 768 || die "no brd"
# The host backs each disk with a sparse file: a block's first write there allocates it
# on the host too.  The COW runs below write new dedup blocks against dm-linear
# overwriting its own: both disks are written whole first, so that neither pays for that.
for _d in "$DDATA" "$LDATA"; do
	check "$_d written whole before the runs" \
		dd if=/dev/zero of="$_d" bs=1M count=$(($(dd_sectors "$_d") / S)) oflag=direct
done
slice() { echo "0 $(($4 * S)) linear $2 $(($3 * S))" | dmsetup create "$1"; }
check "dedup metadata slice" slice ddt-smeta /dev/ram0 0 512
check "thin metadata slice" slice ddt-stmeta /dev/ram0 512 256
check "dedup pool (share_snapshots)" dd_pool_create ddt-spool /dev/mapper/ddt-smeta "$DDATA" 0 share_snapshots
check "thin pool" sh -c "echo '0 $(dd_sectors "$TDATA") thin-pool /dev/mapper/ddt-stmeta $TDATA 128 0 1 skip_block_zeroing' | dmsetup create ddt-stpool"

ms() { echo $(($(dd_uptime_cs) * 10)); }
command -v dd_dmmsg >/dev/null || die "dd_dmmsg is not installed"
FIO="fio --ioengine=libaio --direct=1 --iodepth=32 --randrepeat=0 --norandommap=0 --refill_buffers --minimal --terse-version=3"

# make_origin ID MB BS: dedup volume ddt-so$ID and thin volume ddt-to$ID, written whole.
make_origin() {
	_s=$(($2 * S))
	dd_volume_create ddt-spool "$1" "ddt-so$1" $_s || return 1
	dmsetup message ddt-stpool 0 "create_thin $1" || return 1
	echo "0 $_s thin /dev/mapper/ddt-stpool $1" | dmsetup create "ddt-to$1" || return 1
	for _d in "ddt-so$1" "ddt-to$1"; do
		_t0=$(ms)
		$FIO --name=fill --filename=/dev/mapper/$_d --rw=randwrite --bs="$3" --size=${2}M \
			--fsync_on_close=1 >/dev/null || return 1
		log "$_d: $2 MiB written in random $3 writes in $(($(ms) - _t0)) ms"
	done
	sync
}

# snap_once KIND ORIGIN_ID SNAP_ID: one timed snapshot (tools/dd_dmmsg.c: the ioctls
# alone, timed with CLOCK_MONOTONIC); prints "message_us total_us".
snap_once() {
	if [ "$1" = dedup ]; then
		dd_dmmsg -s "ddt-so$2" ddt-spool create_snap "$3" "$2"
	else
		dd_dmmsg -s "ddt-to$2" ddt-stpool create_snap "$3" "$2"
	fi
}
snap_delete() { # snap_delete KIND SNAP_ID
	if [ "$1" = dedup ]; then dmsetup message ddt-spool 0 "delete_volume $2"
	else dmsetup message ddt-stpool 0 "delete $2"; fi
}

id=1 sid=100
for mb in 256 1024 8192; do
	bs=4k
	[ $mb -le 1024 ] || bs=64k
	check "origins of $mb MiB written" make_origin $id $mb $bs
	log "dedup pool: $(dmsetup status ddt-spool)"
	for rep in $(seq "$REPS"); do
		if [ $((rep % 2)) = 1 ]; then kinds="dedup thin"; else kinds="thin dedup"; fi
		for k in $kinds; do
			r=$(snap_once $k $id $sid) || die "snapshot $k of $mb MiB"
			echo "$rep,$mb,$k,message-us,${r% *}" >>"$CSV"
			echo "$rep,$mb,$k,total-us,${r#* }" >>"$CSV"
			log "rep $rep: $k create_snap of $mb MiB: message ${r% *} us, suspend+message+resume ${r#* } us"
			snap_delete $k $sid || die "delete of snapshot $sid ($k)"
			sid=$((sid + 1))
		done
	done
	[ $mb = 8192 ] || id=$((id + 1))
done

# Guest I/O on another volume while the 8 GiB origin is snapshotted every second.
big=$id
VS=$((256 * S))
check "second dedup volume" dd_volume_create ddt-spool 50 ddt-sx $VS
check "second volume written" dd if=/dev/urandom of=/dev/mapper/ddt-sx bs=1M count=256 oflag=direct
snap_loop() {
	_n=0
	while [ ! -e "$DD_TMP/snap-stop" ]; do
		snap_once dedup $big $((5000 + _n)) >/dev/null || { echo "snap_loop: snapshot failed" >&2; return 1; }
		snap_delete dedup $((5000 + _n)) || return 1
		_n=$((_n + 1))
		sleep 1
	done
	echo $_n >"$DD_TMP/snap-count"
}
fio_x() {
	$FIO --name=x --filename=/dev/mapper/ddt-sx --rw=randwrite --bs=4k --size=256M \
		--time_based --runtime=10 | cut -d';' -f49
}
for rep in $(seq "$REPS"); do
	v=$(fio_x)
	echo "$rep,8192,dedup,iops-alone,$v" >>"$CSV"
	rm -f "$DD_TMP/snap-stop" "$DD_TMP/snap-count"
	snap_loop &
	lp=$!
	w=$(fio_x)
	touch "$DD_TMP/snap-stop"
	wait $lp || die "the snapshot loop failed"
	echo "$rep,8192,dedup,iops-during-snapshots,$w" >>"$CSV"
	echo "$rep,8192,dedup,snapshots-during-run,$(cat "$DD_TMP/snap-count")" >>"$CSV"
	log "rep $rep: 4 KiB random writes on another volume: $v IOPS alone, $w IOPS with $(cat "$DD_TMP/snap-count") snapshots of the 8 GiB origin"
done

# First writes after a snapshot: every 4 KiB random write to the origin breaks sharing
# (a COW of the data block, and of the shared map page on its first change), against
# dm-linear over the third disk.  64 MiB of writes, each block once.
check "dm-linear over the third disk" sh -c "echo '0 $((1024 * S)) linear $LDATA 0' | dmsetup create ddt-slin"
check "dm-linear written" dd if=/dev/urandom of=/dev/mapper/ddt-slin bs=1M count=1024 oflag=direct
cow=6000
for rep in $(seq "$REPS"); do
	check "snapshot of the 1 GiB origin" snap_once dedup 2 $cow
	off=$(((rep - 1) * 64))
	if [ $((rep % 2)) = 1 ]; then kinds="cow linear"; else kinds="linear cow"; fi
	for k in $kinds; do
		if [ $k = cow ]; then d=/dev/mapper/ddt-so2; else d=/dev/mapper/ddt-slin; fi
		v=$($FIO --name=c --filename=$d --rw=randwrite --bs=4k --offset=${off}M --size=64M | cut -d';' -f49)
		echo "$rep,1024,$k,first-write-iops,$v" >>"$CSV"
		log "rep $rep: $k first writes after a snapshot: $v IOPS"
	done
	snap_delete dedup $cow || die "delete of the COW snapshot"
	cow=$((cow + 1))
done
log "dedup pool at the end: $(dmsetup status ddt-spool)"
log "thin pool at the end: $(dmsetup status ddt-stpool)"
dd_cleanup
