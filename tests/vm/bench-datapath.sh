#!/bin/sh
# Data-path benchmark (not a test: scripts/bench/datapath.sh runs it and makes the
# table).  In one boot, on one brd RAM disk sliced by dm-linear (so every device has
# the same backing), 4 KiB fio workloads run on dm-linear, a dedup volume and a
# dm-thin volume (64 KiB blocks, skip_block_zeroing), interleaved, REPS times:
#   excl   random writes to blocks the volume owns exclusively (in place)
#   alloc  random writes that are all first writes (allocation)
#   cow    random writes that all break sharing (after a snapshot)
#   read   random reads of mapped blocks
# Each run's IOPS goes to $DD_OUT/bench.csv as "rep,workload,device,iops".
# vm: timeout=3000 mem=3G prealloc=1
. "$(dirname "$0")/lib.sh"

REPS=$(cat "$DD_TESTS/bench-reps" 2>/dev/null || echo 5)
SIZE_MB=64             # per workload and device
RUNTIME=8              # seconds for the time-based workloads (excl, read)
CSV=$DD_OUT/bench.csv
: >"$CSV"

dd_load_module || die "dm-dedup does not load"
modprobe dm-thin-pool || die "no dm-thin"
dd_brd 2 1400 || die "no brd"
RAM=/dev/ram0 META=/dev/ram1
S=2048 # sectors per MiB
slice() { # slice NAME DEV START_MB LEN_MB
	echo "0 $(($4 * S)) linear $2 $(($3 * S))" | dmsetup create "$1"
}
# Regions of ram0: linear 0-255 MiB, dedup data 256-1023, thin data 1024-1375.
check "linear slice" slice ddt-lin $RAM 0 256
check "dedup data slice" slice ddt-ddata $RAM 256 768
check "thin data slice" slice ddt-tdata $RAM 1024 352
check "dedup metadata slice" slice ddt-dmeta $META 0 128
check "thin metadata slice" slice ddt-tmeta $META 128 128
# Fill everything once: sparse brd pages would bias the first runs.
check "ram disks are filled" sh -c "dd if=/dev/zero of=$RAM bs=1M count=1375 2>/dev/null; true"
check "metadata slices are zeroed" sh -c \
	"dd if=/dev/zero of=/dev/mapper/ddt-dmeta bs=1M count=128 2>/dev/null; dd if=/dev/zero of=/dev/mapper/ddt-tmeta bs=1M count=128 2>/dev/null; true"
check "dedup pool" dd_pool_create ddt-pool /dev/mapper/ddt-dmeta /dev/mapper/ddt-ddata
check "thin pool" sh -c "echo '0 $((352 * S)) thin-pool /dev/mapper/ddt-tmeta /dev/mapper/ddt-tdata 128 0 1 skip_block_zeroing' | dmsetup create ddt-tpool"

VS=$((SIZE_MB * S))
FIO="fio --ioengine=libaio --direct=1 --iodepth=16 --bs=4k --refill_buffers --randrepeat=0
	--norandommap=0 --minimal --terse-version=3"
iops() { # iops FIO_TERSE_LINE RW(read|write)
	if [ "$2" = read ]; then echo "$1" | cut -d';' -f8; else echo "$1" | cut -d';' -f49; fi
}
fio_run() { # fio_run DEV RW TIMED
	if [ "$3" = timed ]; then
		$FIO --name=b --filename="$1" --rw="$2" --size=${SIZE_MB}M --time_based --runtime=$RUNTIME
	else
		$FIO --name=b --filename="$1" --rw="$2" --size=${SIZE_MB}M
	fi
}
record() { # record REP WORKLOAD DEVICE RW TERSE
	v=$(iops "$5" "$4")
	echo "$1,$2,$3,$v" >>"$CSV"
	log "rep $1 $2 $3: $v IOPS"
}
fill() { dd if=/dev/urandom of="$1" bs=1M count=$SIZE_MB oflag=direct 2>/dev/null; }

# A fresh volume of each kind: dedup id / thin id $1, devices ddt-d / ddt-t.
new_volumes() {
	dd_volume_create ddt-pool "$1" ddt-d $VS &&
		dmsetup message ddt-tpool 0 "create_thin $1" &&
		echo "0 $VS thin /dev/mapper/ddt-tpool $1" | dmsetup create ddt-t
}
drop_volumes() { # drop_volumes ID...
	dmsetup remove ddt-d; dmsetup remove ddt-t
	for id in "$@"; do
		dmsetup message ddt-pool 0 delete_volume "$id"
		dmsetup message ddt-tpool 0 "delete $id"
	done
	sleep 1
}
snapshot_both() { # snapshot_both ORIGIN SNAP: the origin's writes then split sharing
	dmsetup suspend ddt-d && dmsetup message ddt-pool 0 create_snap "$2" "$1" &&
		dmsetup resume ddt-d &&
		dmsetup suspend ddt-t && dmsetup message ddt-tpool 0 "create_snap $2 $1" &&
		dmsetup resume ddt-t
}

log "warm-up (uncounted)"
check "warm-up volumes" new_volumes 1
for d in /dev/mapper/ddt-lin /dev/mapper/ddt-d /dev/mapper/ddt-t; do
	fill $d
	fio_run $d randwrite timed >/dev/null
done
drop_volumes 1

id=10
for rep in $(seq "$REPS"); do
	log "=== repetition $rep"
	# alloc: every write a first write (randommap: each block once)
	new_volumes $id || die "volumes"
	record $rep alloc linear write "$(fio_run /dev/mapper/ddt-lin randwrite)"
	record $rep alloc dedup write "$(fio_run /dev/mapper/ddt-d randwrite)"
	record $rep alloc thin write "$(fio_run /dev/mapper/ddt-t randwrite)"
	# excl: the blocks now belong to the volume (commit first)
	sleep 2
	record $rep excl linear write "$(fio_run /dev/mapper/ddt-lin randwrite timed)"
	record $rep excl dedup write "$(fio_run /dev/mapper/ddt-d randwrite timed)"
	record $rep excl thin write "$(fio_run /dev/mapper/ddt-t randwrite timed)"
	# read
	record $rep read linear read "$(fio_run /dev/mapper/ddt-lin randread timed)"
	record $rep read dedup read "$(fio_run /dev/mapper/ddt-d randread timed)"
	record $rep read thin read "$(fio_run /dev/mapper/ddt-t randread timed)"
	# cow: snapshot, then every write to the origin splits a shared block
	snapshot_both $id $((id + 1)) || die "snapshots"
	sleep 2
	record $rep cow linear write "$(fio_run /dev/mapper/ddt-lin randwrite)"
	record $rep cow dedup write "$(fio_run /dev/mapper/ddt-d randwrite)"
	record $rep cow thin write "$(fio_run /dev/mapper/ddt-t randwrite)"
	log "dedup pool: $(dmsetup status ddt-pool)"
	drop_volumes $id $((id + 1))
	id=$((id + 2))
done
check "every run produced a number" sh -c "! grep -q ',$' $CSV"
dmsetup remove ddt-pool
dmsetup remove ddt-tpool
check "the dedup metadata checks clean" dd_check_metadata /dev/mapper/ddt-dmeta
check "thin_check is clean" thin_check /dev/mapper/ddt-tmeta
finish
