# tests/vm/lib.sh: helpers for guest test scripts.  POSIX sh: the guest runs busybox sh,
# a real host runs /bin/sh (see docs/testing.md).  A script sources it, makes its checks,
# and ends with `finish`:
#
#     . "$(dirname "$0")/lib.sh"
#     dd_load_module
#     check "targets are registered" dmsetup targets
#     finish
#
# Environment (set by the guest's /init, or by run-native.sh on a real host):
#   DD_TEST    the script's name (01-load)
#   DD_OUT     a directory for result files; it comes back to the host
#              (build/vm/out/<name>/share/results/)
#   DD_TMP     scratch space (a tmpfs in the guest)
#   DD_TESTS   the directory holding the guest scripts and this file
#   DD_NATIVE  1 on a real host, 0 in the guest
#   DD_DISKS   the virtio disks asked for with "# vm: disks=N" (guest only; empty natively)
#   DD_BOOT    which boot this is (1..N with "# vm: boots=N"; the disks persist)
#   DD_MODULE  natively: the dm-dedup.ko to insmod
#
# Names: dm devices made by tests start with "ddt" ("ddt-NAME"; dedupctl pools are
# "ddtNAME", since a pool name has no '-'); dd_cleanup removes them and the
# loop devices made with dd_loop, on exit.

: "${DD_TEST:=$(basename "$0" .sh)}"
: "${DD_TMP:=/tmp}"
: "${DD_OUT:=$DD_TMP/dd-out-$DD_TEST}"
: "${DD_NATIVE:=0}"
: "${DD_BOOT:=1}"
: "${DD_TESTS:=$(cd "$(dirname "$0")" && pwd)}"
# Without udev (the guest) libdevmapper makes the /dev/mapper nodes itself.
[ "$DD_NATIVE" = 1 ] || export DM_DISABLE_UDEV=1
mkdir -p "$DD_OUT"

DD_CHECKS=0
DD_FAILED=0
DD_STATE=$DD_TMP/.dd-state-$DD_TEST.$$
mkdir -p "$DD_STATE"
: >"$DD_STATE/loops"

# Kernel messages that mean the kernel is in trouble (the harness scans for the same).
DD_KPAT='WARNING: CPU|WARNING: at |BUG: |kernel BUG at|Oops|Call Trace|Kernel panic|general protection fault|UBSAN:|KASAN:|list_(add|del) corruption|blocked for more than [0-9]+ seconds|Initramfs unpacking failed'
# A script whose "# vm:" line says oom=1 provokes the OOM killer: the stack dumps of its
# reports are not trouble (oom-reports.awk; the harness takes them out as well).
DD_OOM_EXPECTED=0
sed -n 's/^# vm:.*\boom=\([^ ]*\).*/\1/p' "$0" 2>/dev/null | grep -qx 1 && DD_OOM_EXPECTED=1

log() { echo "# $*"; }

ok() {
	DD_CHECKS=$((DD_CHECKS + 1))
	echo "ok $DD_CHECKS - $*"
}

fail() {
	DD_CHECKS=$((DD_CHECKS + 1))
	DD_FAILED=$((DD_FAILED + 1))
	echo "not ok $DD_CHECKS - $*"
}

# Show a file indented, so that it can never be read as a result line.
_dd_show() { sed 's/^/#   | /' "$1"; }

# check DESC CMD [ARGS...]: CMD must succeed.  Its output is shown when it fails.
check() {
	_desc=$1
	shift
	if "$@" >"$DD_STATE/out" 2>&1; then
		ok "$_desc"
	else
		fail "$_desc (exit $?: $*)"
		_dd_show "$DD_STATE/out"
	fi
}

# expect_fail DESC CMD [ARGS...]: CMD must fail.
expect_fail() {
	_desc=$1
	shift
	if "$@" >"$DD_STATE/out" 2>&1; then
		fail "$_desc (succeeded, expected a failure: $*)"
		_dd_show "$DD_STATE/out"
	else
		ok "$_desc"
	fi
}

# check_eq DESC GOT WANT
check_eq() {
	if [ "$2" = "$3" ]; then
		ok "$1"
	else
		fail "$1"
		log "  got:  '$2'"
		log "  want: '$3'"
	fi
}

# die MSG: a failure the script cannot go on after.
die() {
	fail "$*"
	finish
}

# finish: clean up, print the tally, exit 1 if any check failed (or none ran).
finish() {
	trap - EXIT
	dd_cleanup
	if [ "$DD_CHECKS" -eq 0 ]; then
		echo "# $DD_TEST: no check was made"
		exit 1
	fi
	echo "# $DD_TEST: $DD_CHECKS checks, $DD_FAILED failed"
	[ "$DD_FAILED" -eq 0 ] || exit 1
	exit 0
}

# --- kernel log ----------------------------------------------------------------------

# dd_mark TAG: put a marker line into the kernel log.
dd_mark() { echo "dd-mark: $1" >/dev/kmsg; }

# dd_dmesg_since TAG: the kernel log from the marker TAG on.
dd_dmesg_since() { dmesg | sed -n "/dd-mark: $1\$/,\$p"; }

_dd_oom_filter() {
	if [ "$DD_OOM_EXPECTED" = 1 ]; then awk -f "$DD_TESTS/oom-reports.awk"; else cat; fi
}

# dd_kernel_clean_since TAG: no WARN/BUG/oops/... since the marker TAG (with oom=1,
# the stack dumps of OOM-killer reports left out).
dd_kernel_clean_since() {
	if dd_dmesg_since "$1" | _dd_oom_filter | grep -E "$DD_KPAT" >"$DD_STATE/kbad"; then
		_dd_show "$DD_STATE/kbad"
		return 1
	fi
	return 0
}

# --- module --------------------------------------------------------------------------

dd_module_loaded() { grep -q '^dm_dedup ' /proc/modules; }

# dd_load_module [PARAM=VALUE...]: load dm-dedup (and dm-mod etc.): modprobe in the
# guest, insmod of the freshly built $DD_MODULE on a real host.  With module parameters
# (rmw_pages=1) a module loaded already is unloaded first, so that they apply.
dd_load_module() {
	if dd_module_loaded; then
		[ $# -eq 0 ] && return 0
		dd_unload_module || return 1
	fi
	if [ "$DD_NATIVE" = 1 ]; then
		_deps=$(modinfo -F depends "$DD_MODULE" | tr ',' ' ')
		for _m in dm-mod $_deps; do
			modprobe "$_m" || return 1
		done
		insmod "$DD_MODULE" "$@"
	else
		modprobe dm-dedup "$@"
	fi
}

dd_unload_module() { rmmod dm_dedup; }

# dd_module_param NAME: the value of a dm-dedup module parameter (fails if it has none).
dd_module_param() { cat "/sys/module/dm_dedup/parameters/$1"; }

# --- scratch block devices -------------------------------------------------------------

# dd_loop SIZE: a zeroed loop device backed by a sparse file in $DD_TMP; prints its
# name.  SIZE as truncate takes it (16M, 2K).  Detached by dd_cleanup.
dd_loop() {
	modprobe loop 2>/dev/null
	_n=$(wc -l <"$DD_STATE/loops")
	_f=$DD_STATE/loop$_n.img
	rm -f "$_f"
	truncate -s "$1" "$_f" || return 1
	# Both busybox and util-linux losetup accept this form.
	_d=$(losetup -f) || return 1
	losetup "$_d" "$_f" || return 1
	echo "$_d $_f" >>"$DD_STATE/loops"
	echo "$_d"
}

# dd_brd COUNT SIZE_MIB: load brd with COUNT ram disks (/dev/ram0...) of SIZE_MIB each.
dd_brd() {
	if grep -q '^brd ' /proc/modules; then
		echo "brd is already loaded" >&2
		return 1
	fi
	modprobe brd rd_nr="$1" rd_size=$(($2 * 1024))
}

# dd_sectors DEV: size in 512-byte sectors.
dd_sectors() { blockdev --getsz "$1"; }

# dd_devno DEV: "major:minor" of a block device, as dm tables print it.
dd_devno() {
	# shellcheck disable=SC2046 # two hex numbers, major and minor
	set -- $(stat -L -c '%t %T' "$1") || return 1
	printf '%d:%d\n' "0x$1" "0x$2"
}

# expect_table_error DESC NAME TARGET MESSAGE TABLE
#   Creating dm device NAME from TABLE (one or more lines) must fail, the kernel log
#   must show "<TARGET>: <MESSAGE> (" (how dm reports a constructor's ti->error; with
#   TARGET "-" just MESSAGE), and the kernel must stay clean (no WARN/BUG/oops).
DD_CASE=0
expect_table_error() {
	DD_CASE=$((DD_CASE + 1))
	_tag="$DD_TEST.case$DD_CASE.$$"
	if [ "$3" = - ]; then _want=$4; else _want=": $3: $4 ("; fi
	dd_mark "$_tag"
	if printf '%s\n' "$5" | dmsetup create "$2" >"$DD_STATE/out" 2>&1; then
		fail "$1: the table was accepted"
		dmsetup remove "$2" >/dev/null 2>&1
		return
	fi
	dmsetup remove "$2" >/dev/null 2>&1
	if ! dd_dmesg_since "$_tag" | grep -F -- "$_want" >/dev/null; then
		fail "$1: no '$_want' in the kernel log"
		dd_dmesg_since "$_tag" >"$DD_STATE/klog"
		_dd_show "$DD_STATE/klog"
		_dd_show "$DD_STATE/out"
		return
	fi
	if ! dd_kernel_clean_since "$_tag"; then
		fail "$1: kernel trouble after the rejection"
		return
	fi
	ok "$1: rejected with '$4'"
}

# expect_message_error DESC DEV ERROR LOG MESSAGE...
#   `dmsetup message DEV 0 MESSAGE...` must fail, dmsetup must print ERROR (the errno's
#   text: "Invalid argument", "Read-only file system"...), the kernel log must show LOG
#   (e.g. "dedup: 253:1: delete_volume 9: does not exist"), and the kernel must stay
#   clean.  Counted in DD_CASE with the table errors.
expect_message_error() {
	_desc=$1 _dev=$2 _err=$3 _want=$4
	shift 4
	DD_CASE=$((DD_CASE + 1))
	_tag="$DD_TEST.case$DD_CASE.$$"
	# "--" keeps dmsetup from taking a negative number for an option.
	_dd_dash=
	for _a in "$@"; do
		case $_a in -*) _dd_dash=-- ;; esac
	done
	dd_mark "$_tag"
	if dmsetup message "$_dev" 0 $_dd_dash "$@" >"$DD_STATE/out" 2>&1; then
		fail "$_desc: the message was accepted ($*)"
		_dd_show "$DD_STATE/out"
		return
	fi
	if ! grep -F -- "$_err" "$DD_STATE/out" >/dev/null; then
		fail "$_desc: dmsetup did not say '$_err' ($*)"
		_dd_show "$DD_STATE/out"
		return
	fi
	if ! dd_dmesg_since "$_tag" | grep -F -- "$_want" >/dev/null; then
		fail "$_desc: no '$_want' in the kernel log ($*)"
		dd_dmesg_since "$_tag" >"$DD_STATE/klog"
		_dd_show "$DD_STATE/klog"
		return
	fi
	if ! dd_kernel_clean_since "$_tag"; then
		fail "$_desc: kernel trouble after the refusal"
		return
	fi
	ok "$_desc: refused, '$_err', '$_want'"
}

# dd_cleanup: remove the ddt* dm devices and the loop devices this script made.
dd_cleanup() {
	if command -v dmsetup >/dev/null 2>&1 && [ -e /dev/mapper/control ]; then
		# Volumes before pools: a pool is held open by its volumes.
		for _pass in 1 2 3; do
			for _dev in $(dmsetup ls 2>/dev/null | awk '$1 ~ /^ddt/ {print $1}'); do
				dmsetup remove "$_dev" >/dev/null 2>&1
			done
		done
	fi
	if [ -f "$DD_STATE/loops" ]; then
		while read -r _d _f; do
			losetup -d "$_d" 2>/dev/null
			rm -f "$_f"
		done <"$DD_STATE/loops"
	fi
	rm -rf "$DD_STATE"
}
trap dd_cleanup EXIT

# --- dm-dedup pools and volumes --------------------------------------------------------

# dd_pool_create NAME METADATA_DEV DATA_DEV [LOW_WATER [FEATURE...]]: a dedup-pool over
# the whole data device (a zeroed metadata device is formatted).
dd_pool_create() {
	_name=$1 _meta=$2 _data=$3
	_lw=${4:-0}
	shift 3
	[ $# -gt 0 ] && shift
	_feat=
	[ $# -gt 0 ] && _feat=" $# $*"
	echo "0 $(dd_sectors "$_data") dedup-pool $_meta $_data 8 $_lw$_feat" |
		dmsetup create "$_name"
}

# dd_volume_create POOL ID NAME SIZE_SECTORS: create_volume + a dedup device.
dd_volume_create() {
	dmsetup message "$1" 0 create_volume "$2" &&
		echo "0 $4 dedup /dev/mapper/$1 $2" | dmsetup create "$3"
}

# dd_volume_activate POOL ID NAME SIZE_SECTORS: a dedup device for an existing volume.
dd_volume_activate() {
	echo "0 $4 dedup /dev/mapper/$1 $2" | dmsetup create "$3"
}

# dd_pool_field NAME N: the Nth field of the pool's status after the target name
# (1 transaction id, 2 metadata used/total, 3 data used/total, 4 mapped, 5 shared,
# 6 zero writes elided, 7 discarded, 8 cow splits, 9 mode, 10 needs_check).
dd_pool_field() {
	dmsetup status "$1" | awk -v n="$2" '{print $(3 + n)}'
}

# dd_pool_data_used NAME: used data blocks.
dd_pool_data_used() { dd_pool_field "$1" 3 | cut -d/ -f1; }

# dd_check_metadata DEV: dedup_check on a metadata device no pool holds; clean or fail.
dd_check_metadata() {
	if ! command -v dedup_check >/dev/null 2>&1; then
		echo "dedup_check is not installed" >&2
		return 1
	fi
	dedup_check "$1"
}

# dd_sum FILE_OR_DEV [BYTES]: a checksum of the first BYTES (default: all) bytes.
dd_sum() {
	if [ -n "${2:-}" ]; then
		head -c "$2" "$1" | sha256sum | cut -d' ' -f1
	else
		sha256sum <"$1" | cut -d' ' -f1
	fi
}

# dd_fio_loop N DEV ARGS...: `$DD_FIO --name=fN --filename=DEV ARGS` (DD_FIO: fio and
# the options the caller's runs share) run after run, until $DD_TMP/stop exists.  The
# runs done so far go to $DD_TMP/fioN.runs, one line per run that failed to
# $DD_TMP/fioN.failed (its output to $DD_OUT/fioN-failed-runR.txt).  Run it in the
# background; touch $DD_TMP/stop and wait for it.
dd_fio_loop() {
	_fv=$1 _fdev=$2
	shift 2
	_fn=0
	while [ ! -e "$DD_TMP/stop" ]; do
		_fn=$((_fn + 1))
		if ! $DD_FIO --name=f$_fv --filename="$_fdev" "$@" --output="$DD_TMP/fio$_fv.out"; then
			cp "$DD_TMP/fio$_fv.out" "$DD_OUT/fio$_fv-failed-run$_fn.txt"
			echo "run $_fn failed" >>"$DD_TMP/fio$_fv.failed"
		fi
		echo $_fn >"$DD_TMP/fio$_fv.runs"
	done
}

# --- the scanner ----------------------------------------------------------------------
# `dmsetup message POOL 0 scan ...` (docs/dm-dedup.rst, "Scanner").  `scan stats` prints
# one "name value" pair a line.

# scan_msg POOL ARGS...: dmsetup message POOL 0 scan ARGS...
scan_msg() {
	_p=$1
	shift
	dmsetup message "$_p" 0 scan "$@"
}

# scan_stats POOL: the text of `scan stats`.
scan_stats() { dmsetup message "$1" 0 scan stats; }

# scan_stat POOL NAME: one value of `scan stats` (empty if there is no such line).
scan_stat() { scan_stats "$1" | awk -v n="$2" '$1 == n {print $2; exit}'; }

# scan_note POOL: remember the pool's completed passes; the next scan_wait_idle waits
# for more.  Call it before the writes (or the `scan run 1`, `scan full`) that the
# pass to wait for must see: a pass can start and end before scan_wait_idle is called.
scan_note() {
	_n=$(scan_stat "$1" passes)
	echo "${_n:-0}" >"$DD_STATE/scan-passes.$1"
}

# scan_wait_idle POOL [TIMEOUT_SECONDS]: wait until the scanner is idle, nothing is
# marked and a pass completed since scan_note (since 0 if scan_note was never
# called).  Polls `scan stats` twice a second; on a timeout the stats are printed and
# it fails.  Default timeout 240 s.  Remembers the passes for the next wait.
scan_wait_idle() {
	_p=$1
	_tmo=${2:-240}
	_since=$(cat "$DD_STATE/scan-passes.$_p" 2>/dev/null || echo 0)
	_t=0
	while :; do
		scan_stats "$_p" >"$DD_STATE/scanstats" 2>&1 || {
			echo "scan_wait_idle: scan stats failed on $_p:" >&2
			sed 's/^/#   | /' "$DD_STATE/scanstats" >&2
			return 1
		}
		_st=$(awk '$1 == "state" {print $2}' "$DD_STATE/scanstats")
		_mk=$(awk '$1 == "marked" {print $2}' "$DD_STATE/scanstats")
		_ps=$(awk '$1 == "passes" {print $2}' "$DD_STATE/scanstats")
		if [ "$_st" = idle ] && [ "${_mk:-1}" = 0 ] && [ "${_ps:-0}" -gt "$_since" ]; then
			echo "$_ps" >"$DD_STATE/scan-passes.$_p"
			return 0
		fi
		if [ "$_t" -ge $((_tmo * 2)) ]; then
			echo "scan_wait_idle: $_p not idle after ${_tmo}s (want state idle, marked 0," \
				"passes > $_since); scan stats:" >&2
			sed 's/^/#   | /' "$DD_STATE/scanstats" >&2
			return 1
		fi
		sleep 0.5
		_t=$((_t + 1))
	done
}

# scan_wait_state POOL STATE [TIMEOUT_SECONDS]: wait until `scan stats` says state
# STATE (e.g. off after `scan run 2`); prints the stats and fails on a timeout.
scan_wait_state() {
	_t=0
	while [ "$(scan_stat "$1" state)" != "$2" ]; do
		if [ "$_t" -ge $((${3:-240} * 2)) ]; then
			echo "scan_wait_state: $1 not $2 after ${3:-240}s; scan stats:" >&2
			scan_stats "$1" 2>&1 | sed 's/^/#   | /' >&2
			return 1
		fi
		sleep 0.5
		_t=$((_t + 1))
	done
}

# dd_uptime_cs: the guest's uptime in hundredths of a second (for wall times; busybox
# date has no sub-second format).
dd_uptime_cs() { awk '{printf "%d\n", $1 * 100}' /proc/uptime; }

# dd_disk_by_serial SERIAL: the virtio disk that scripts/vm/run.sh --disk attached
# with this serial (/dev/vdX), or fails.
dd_disk_by_serial() {
	for _s in /sys/block/vd*/serial; do
		[ -f "$_s" ] || continue
		if [ "$(cat "$_s")" = "$1" ]; then
			_b=${_s%/serial}
			echo "/dev/${_b##*/}"
			return 0
		fi
	done
	return 1
}
