# bench/guest/images-lib.sh: the guest images of scripts/images/ in a dm-dedup pool,
# for the demo (demo-scan.sh) and the scanner benchmark (scanner.sh).  Sourced after
# lib.sh.  The host attaches the images read-only with
#   scripts/vm/run.sh --disk minbase=build/images/minbase.img --disk server=... --disk dev=...
# (the serial is the image's name).

IMAGES="minbase server dev"

# The functions below print their results, so they run in $(...): on an error they
# say so on stderr and return 1 (a die in a subshell would clean up the script's state).

# img_disk NAME: the virtio disk holding image NAME (fails if it is not attached).
img_disk() {
	dd_disk_by_serial "$1" && return 0
	echo "image $1 is not attached (run.sh --disk $1=build/images/$1.img)" >&2
	return 1
}

# img_pool_fill POOL: volumes 1, 2, 3 of POOL (devices ddt-minbase, ddt-server, ddt-dev)
# as large as the images, each a copy of its image (direct I/O, 1 MiB writes; the zero
# blocks are elided by the pool).  Prints the wall time of the copy in seconds.
img_pool_fill() {
	_id=1
	_t0=$(dd_uptime_cs)
	for _n in $IMAGES; do
		_src=$(img_disk "$_n") || return 1
		_sz=$(dd_sectors "$_src")
		dd_volume_create "$1" "$_id" "ddt-$_n" "$_sz" || { echo "volume $_id ($_n)" >&2; return 1; }
		dd if="$_src" of="/dev/mapper/ddt-$_n" bs=1M iflag=direct oflag=direct 2>/dev/null || {
			echo "copying $_n into volume $_id failed" >&2
			return 1
		}
		_id=$((_id + 1))
	done
	sync
	_t1=$(dd_uptime_cs)
	awk -v a="$_t0" -v b="$_t1" 'BEGIN {printf "%.1f\n", (b - a) / 100}'
}

# img_pool_remove POOL: the three volumes, then the pool.
img_pool_remove() {
	for _n in $IMAGES; do
		dmsetup remove "ddt-$_n" || return 1
	done
	dmsetup remove "$1"
}

# img_ideal: "nonzero distinct" of the three images together, counted by
# dd_blockcount (bytes compared), the whole output in $DD_OUT/ideal-guest.txt.
img_ideal() {
	_devs=
	for _n in $IMAGES; do
		_devs="$_devs $(img_disk "$_n")" || return 1
	done
	# shellcheck disable=SC2086 # three device names
	dd_blockcount $_devs >"$DD_OUT/ideal-guest.txt" || return 1
	awk '$1 == "total" {print $7, $9}' "$DD_OUT/ideal-guest.txt"
}

# img_scan POOL TIMEOUT: `scan run 1` (as set: rate etc. are the caller's) and wait for
# the pass to end; prints its wall time in seconds.
img_scan() {
	scan_note "$1"
	_t0=$(dd_uptime_cs)
	scan_msg "$1" run 1 || return 1
	scan_wait_idle "$1" "$2" || return 1
	_t1=$(dd_uptime_cs)
	awk -v a="$_t0" -v b="$_t1" 'BEGIN {printf "%.1f\n", (b - a) / 100}'
}

# pct A B: 100 * A / B with one decimal
pct() { awk -v a="$1" -v b="$2" 'BEGIN {if (b == 0) print "-"; else printf "%.1f\n", 100 * a / b}'; }
