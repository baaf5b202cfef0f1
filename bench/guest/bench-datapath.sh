#!/bin/sh
# Data-path benchmark (not a test: bench/datapath.sh runs it and makes the
# table).  In one boot, 4 KiB fio workloads run on dm-linear, a dedup volume and a
# dm-thin volume (64 KiB blocks, skip_block_zeroing), interleaved, REPS times, the
# order of the three devices rotated from one repetition to the next.  Each device
# sits on its own brd RAM disk (identical, filled before the runs) with no layer in
# between: linear on ram0, the dedup pool's data on ram1, the thin pool's on ram2,
# both metadata devices on ram3.
#   excl   random writes to blocks the volume owns exclusively (in place)
#   alloc  random writes that are all first writes (allocation)
#   cow    random writes that all break sharing (after a snapshot)
#   read   random reads of mapped blocks
# and, on 256 MiB volumes written once sequentially with 1 MiB bios (contiguous on
# every device; a commit after), made once and used by every repetition:
#   seqread-1m / seqwrite-1m   1 MiB sequential reads / overwrites (in place)
#   randread-64k / randwrite-64k  64 KiB random reads / overwrites
#   randread-4k-2j / randwrite-4k-2j  4 KiB random, two fio jobs (QD16 each)
# The excl run also gives excl-p99-us: the p99 completion latency of its 4 KiB
# random writes, in microseconds (lower is better).
# Each run's IOPS goes to $DD_OUT/bench.csv as "rep,workload,device,iops".
# vm: timeout=3000 mem=3G prealloc=1
. "$(dirname "$0")/lib.sh"

REPS=$(cat "$DD_TESTS/bench-reps" 2>/dev/null || echo 6)
SIZE_MB=64             # per workload and device
RUNTIME=8              # seconds for the time-based workloads (excl, read)
LARGE_MB=256           # the volumes of the large and two-job workloads
LARGE_RUNTIME=5        # seconds for each of those
CSV=$DD_OUT/bench.csv
: >"$CSV"

dd_load_module || die "dm-dedup does not load"
. "$(dirname "$0")/bench-devices.sh"
bench_devices

# shellcheck disable=SC2034 # new_volumes (bench-devices.sh) reads it
VS=$((SIZE_MB * S))
FIO="fio --ioengine=libaio --direct=1 --iodepth=16 --bs=4k --refill_buffers --randrepeat=0
	--norandommap=0 --minimal --terse-version=3"
iops() { # iops FIO_TERSE_LINE RW(read|write)
	if [ "$2" = read ]; then echo "$1" | cut -d';' -f8; else echo "$1" | cut -d';' -f49; fi
}
# p99 completion latency (usec) of the writes of a terse line: the percentile
# fields of the write side are 59-78.
p99w() {
	echo "$1" | awk -F';' '{ for (i = 59; i <= 78; i++) if ($i ~ /^99\.000000%=/) { sub(/^[^=]*=/, "", $i); print $i } }'
}
# fio_large DEV RW BS [JOBS]: time-based, over the large volume.
fio_large() {
	$FIO --name=b --filename="$1" --rw="$2" --bs="$3" --numjobs="${4:-1}" --group_reporting \
		--size=${LARGE_MB}M --time_based --runtime=$LARGE_RUNTIME
}
fio_run() { # fio_run DEV RW TIMED
	if [ "$3" = timed ]; then
		$FIO --name=b --filename="$1" --rw="$2" --size=${SIZE_MB}M --time_based --runtime=$RUNTIME
	else
		$FIO --name=b --filename="$1" --rw="$2" --size=${SIZE_MB}M
	fi
}
large_of() { # large_of DEVICE-KIND: the 256 MiB device
	case $1 in
	linear) echo /dev/mapper/ddt-lin ;;
	dedup) echo /dev/mapper/ddt-dL ;;
	thin) echo /dev/mapper/ddt-tL ;;
	esac
}
record() { # record REP WORKLOAD DEVICE RW TERSE
	v=$(iops "$5" "$4")
	echo "$1,$2,$3,$v" >>"$CSV"
	log "rep $1 $2 $3: $v IOPS"
}
fill() { dd if=/dev/urandom of="$1" bs=1M count=$SIZE_MB oflag=direct 2>/dev/null; }

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

# The large volumes: 256 MiB each, written once with 1 MiB sequential writes (each
# device then holds them contiguously), committed before the first run.
LS=$((LARGE_MB * S))
check "large dedup volume" dd_volume_create ddt-pool 1000 ddt-dL $LS
check "large thin volume" sh -c "dmsetup message ddt-tpool 0 'create_thin 1000' &&
	echo '0 $LS thin /dev/mapper/ddt-tpool 1000' | dmsetup create ddt-tL"
for d in /dev/mapper/ddt-lin /dev/mapper/ddt-dL /dev/mapper/ddt-tL; do
	check "$d written sequentially" dd if=/dev/urandom of=$d bs=1M count=$LARGE_MB oflag=direct
	fio_large $d read 1m >/dev/null	# warm-up, uncounted
done
sleep 2
log "dedup pool with the large volume: $(dmsetup status ddt-pool)"

id=10
for rep in $(seq "$REPS"); do
	log "=== repetition $rep"
	# alloc: every write a first write (randommap: each block once)
	new_volumes $id || die "volumes"
	for k in $(order $rep); do
		record $rep alloc $k write "$(fio_run $(dev_of $k) randwrite)"
	done
	# excl: the blocks now belong to the volume (commit first)
	sleep 2
	for k in $(order $rep); do
		t=$(fio_run $(dev_of $k) randwrite timed)
		record $rep excl $k write "$t"
		echo "$rep,excl-p99-us,$k,$(p99w "$t")" >>"$CSV"
	done
	# read
	for k in $(order $rep); do
		record $rep read $k read "$(fio_run $(dev_of $k) randread timed)"
	done
	# cow: snapshot, then every write to the origin splits a shared block
	snapshot_both $id $((id + 1)) || die "snapshots"
	sleep 2
	for k in $(order $rep); do
		record $rep cow $k write "$(fio_run $(dev_of $k) randwrite)"
	done
	log "dedup pool: $(dmsetup status ddt-pool)"
	drop_volumes $id $((id + 1))
	id=$((id + 2))
	# The large workloads, over the volumes made before the first repetition.
	for w in read:1m:1:seqread-1m write:1m:1:seqwrite-1m randread:64k:1:randread-64k \
		randwrite:64k:1:randwrite-64k randread:4k:2:randread-4k-2j \
		randwrite:4k:2:randwrite-4k-2j; do
		rw=${w%%:*} rest=${w#*:}
		bs=${rest%%:*} rest=${rest#*:}
		jobs=${rest%%:*} name=${rest#*:}
		dir=write
		case $rw in *read) dir=read ;; esac
		for k in $(order $rep); do
			record $rep $name $k $dir "$(fio_large $(large_of $k) $rw $bs $jobs)"
		done
	done
done
check "every run produced a number" sh -c "! grep -q ',$' $CSV"
dmsetup remove ddt-dL
dmsetup remove ddt-tL
dmsetup remove ddt-pool
dmsetup remove ddt-tpool
check "the dedup metadata checks clean" dd_check_metadata /dev/mapper/ddt-dmeta
check "thin_check is clean" thin_check /dev/mapper/ddt-tmeta
finish
