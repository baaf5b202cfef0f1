#!/bin/sh
# Profiling aid (not a test): perf over fio 4 KiB random writes and reads on a dedup
# volume whose blocks are exclusive, and on fresh (allocating) blocks, and over 1 MiB
# sequential first writes to a fresh volume, on brd.  The reports land in
# $DD_OUT/perf-*.txt.  Run: scripts/vm/run.sh bench-profile
# vm: timeout=900 mem=3G prealloc=1
. "$(dirname "$0")/lib.sh"

command -v perf >/dev/null || die "perf is not in the guest image"
echo 0 >/proc/sys/kernel/kptr_restrict
echo -1 >/proc/sys/kernel/perf_event_paranoid
dd_load_module || die "dm-dedup does not load"
dd_brd 2 600 || die "no brd"
# brd allocates a page at its first write: fill the data disk, as the benchmarks do.
dd if=/dev/zero of=/dev/ram0 bs=1M 2>/dev/null
check "pool" dd_pool_create ddt-pool /dev/ram1 /dev/ram0
check "volume" dd_volume_create ddt-pool 1 ddt-d 262144
D=/dev/mapper/ddt-d
FIO="fio --ioengine=libaio --direct=1 --iodepth=16 --bs=4k --refill_buffers --randrepeat=0 --name=p --filename=$D --size=128M"
prof() { # prof NAME FIO_ARGS...
	_n=$1
	shift
	perf record -a -o "$DD_TMP/perf.data" -- $FIO "$@" >"$DD_OUT/fio-$_n.txt" 2>&1
	perf report -i "$DD_TMP/perf.data" --stdio --percent-limit 0.25 \
		--sort symbol >"$DD_OUT/perf-$_n.txt" 2>/dev/null
	ok "profiled $_n: $(grep -o 'IOPS=[^,]*' "$DD_OUT/fio-$_n.txt" | head -1)"
}
prof alloc --rw=randwrite
sleep 2
prof excl --rw=randwrite --time_based --runtime=8
prof read --rw=randread --time_based --runtime=8
check "a fresh volume" dd_volume_create ddt-pool 2 ddt-f 819200
FIO="fio --ioengine=libaio --direct=1 --iodepth=16 --bs=1m --refill_buffers --name=p --filename=/dev/mapper/ddt-f --size=400M"
prof seqfirst --rw=write
dmsetup remove ddt-f
check "linear over the data device for comparison" sh -c "echo '0 262144 linear /dev/ram0 262144' | dmsetup create ddt-lin"
D=/dev/mapper/ddt-lin
FIO="fio --ioengine=libaio --direct=1 --iodepth=16 --bs=4k --refill_buffers --randrepeat=0 --name=p --filename=$D --size=128M"
prof linear-write --rw=randwrite --time_based --runtime=8
prof linear-read --rw=randread --time_based --runtime=8
dmsetup remove ddt-lin
dmsetup remove ddt-d
dmsetup remove ddt-pool
finish
