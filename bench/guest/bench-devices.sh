# shellcheck shell=sh
# bench/guest/bench-devices.sh: the devices the data-path benchmarks compare, sourced
# after lib.sh by bench-datapath.sh and bench-seqfirst.sh.  Four identical brd RAM
# disks of 640 MiB, filled before the runs (brd allocates a page on its first write: a
# hole would make a first run cheaper), each target directly on its own: dm-linear
# over ram0 (256 MiB, ddt-lin), the dedup pool's data on ram1 (ddt-pool), the thin
# pool's on ram2 (ddt-tpool, 448 MiB, 64 KiB blocks, skip_block_zeroing), both
# metadata devices 128 MiB slices of ram3.  Volumes: ddt-d (dedup) and ddt-t (thin).

S=2048 # sectors per MiB
slice() { # slice NAME DEV START_MB LEN_MB
	echo "0 $(($4 * S)) linear $2 $(($3 * S))" | dmsetup create "$1"
}
fill_ram() {
	for _d in ram0:256 ram1:640 ram2:448 ram3:256; do
		dd if=/dev/zero of=/dev/${_d%:*} bs=1M count=${_d#*:} 2>/dev/null
	done
	true
}
# bench_devices: dm-thin and the RAM disks loaded, then the three devices and pools.
bench_devices() {
	modprobe dm-thin-pool || die "no dm-thin"
	dd_brd 4 640 || die "no brd"
	check "ram disks are filled" fill_ram
	check "linear over ram0" slice ddt-lin /dev/ram0 0 256
	check "dedup metadata slice of ram3" slice ddt-dmeta /dev/ram3 0 128
	check "thin metadata slice of ram3" slice ddt-tmeta /dev/ram3 128 128
	check "dedup pool over ram1" dd_pool_create ddt-pool /dev/mapper/ddt-dmeta /dev/ram1
	check "thin pool over ram2" sh -c "echo '0 $((448 * S)) thin-pool /dev/mapper/ddt-tmeta /dev/ram2 128 0 1 skip_block_zeroing' | dmsetup create ddt-tpool"
}
# order REP: the three devices, rotated by the repetition number (no device always
# runs first, or always after the same one).
order() {
	case $(($1 % 3)) in
	0) echo linear dedup thin ;;
	1) echo dedup thin linear ;;
	2) echo thin linear dedup ;;
	esac
}
dev_of() { # dev_of DEVICE-KIND
	case $1 in
	linear) echo /dev/mapper/ddt-lin ;;
	dedup) echo /dev/mapper/ddt-d ;;
	thin) echo /dev/mapper/ddt-t ;;
	esac
}
# A fresh volume of each kind, $VS sectors: dedup id / thin id $1, ddt-d / ddt-t.
new_volumes() {
	dd_volume_create ddt-pool "$1" ddt-d "$VS" &&
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
