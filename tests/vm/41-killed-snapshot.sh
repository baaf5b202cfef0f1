#!/bin/sh
# A create_snap whose dmsetup is killed (SIGKILL) in the middle of the copy, while a hog
# leaves the guest almost no memory, still ends cleanly: the pool stays rw without
# needs_check, flushes keep working, the origin reads back what fio wrote, and the
# metadata checks clean.  (The message runs in the killed task: once it is being
# killed, vmalloc gives up at once, and kvmalloc of a shadow block, which does not fit
# in a page, fell back to it: ENOMEM in the middle of the copy aborted the transaction,
# the pool went read-only with needs_check and failed every later flush.)
# vm: timeout=300 mem=512M disks=2 disk_size=256M oom=1 solo=1
. "$(dirname "$0")/lib.sh"

[ "$DD_NATIVE" = 1 ] && die "exhausts the machine's memory: run it in the guest"
dd_mark "$DD_TEST.start"
echo 20 >/proc/sys/kernel/hung_task_timeout_secs || die "no kernel.hung_task_timeout_secs"
# Only the hog may be chosen by the OOM killer.
for p in /proc/[0-9]*; do echo -1000 >"$p/oom_score_adj" 2>/dev/null; done
set -- $DD_DISKS
[ $# -ge 2 ] || die "needs two disks, got: $DD_DISKS"
meta=$1 data=$2
P=ddt-pool
O=/dev/mapper/ddt-o
TRIES=4
LEAVE=6		# MiB of MemAvailable the hog leaves

dd_load_module || die "dm-dedup does not load"
check "pool is created" dd_pool_create $P "$meta" "$data"
check "origin volume 1 is created" dd_volume_create $P 1 ddt-o 262144
vfio() { # vfio ARGS...: fio with crc32c verification over the origin's 96 MiB
	fio --name=o --filename=$O --size=96M --bs=64k --direct=1 --ioengine=libaio \
		--iodepth=4 --verify=crc32c --verify_fatal=1 --output="$DD_TMP/fio.out" "$@"
}
check "fio writes 96 MiB to the origin (crc32c headers)" vfio --rw=write --do_verify=0
check "the origin is suspended (create_snap needs it)" dmsetup suspend ddt-o

# hold: a hog holds all but LEAVE MiB (a new one if the OOM killer took the last).
# MemAvailable is an estimate: a hog may overshoot into the OOM killer while it
# grows (it is the only task the killer may pick), and the kernel's watermark boost
# after a fragmentation event moves the line it must stay above.  Each hog that dies
# before it holds is followed by one that leaves 4 MiB more (up to 8 hogs, 34 MiB):
# the copy still runs short of memory, which is what the test needs.  The hog is
# detached (dd_memhog --detach returns once it holds): no child of this shell is
# killed behind its back (busybox sh, waiting for a foreground command while the
# OOM killer took a background child, once never woke up).
hog=
hog_alive() {
	[ -n "$hog" ] && grep -q '^[0-9]* (dd_memhog) [RSD]' /proc/$hog/stat 2>/dev/null
}
hold() {
	hog_alive && return 0
	_leave=$LEAVE
	for _s in 1 2 3 4 5 6 7 8; do
		if _h=$(sh -c 'echo 1000 >/proc/self/oom_score_adj; exec dd_memhog leave '$_leave' --detach'); then
			hog=${_h%% *}
			log "hog $_s (pid $hog): ${_h#* }"
			return 0
		fi
		log "hog $_s (leave $_leave MiB) died before it held (the OOM killer); the next leaves 4 MiB more"
		_leave=$((_leave + 4))
	done
	return 1
}

# try ID: create_snap ID 1 in the background; as soon as its stack shows the copy,
# SIGKILL it.  Prints "in-copy" if the kill landed in the copy.
try() {
	dmsetup message $P 0 create_snap "$1" 1 >"$DD_TMP/msg.$1" 2>&1 &
	_m=$!
	_where=missed
	_n=0
	while kill -0 $_m 2>/dev/null && [ $_n -lt 2000 ]; do
		if grep -q dd_snapshot_create /proc/$_m/stack 2>/dev/null; then
			kill -9 $_m
			_where=in-copy
			break
		fi
		_n=$((_n + 1))
	done
	wait $_m
	echo $_where
}
landed=0
for k in $(seq 1 $TRIES); do
	id=$((k + 1))
	check "try $k: a hog holds all but $LEAVE MiB (or a few MiB more)" hold
	where=$(try $id 2>/dev/null)
	[ "$where" = in-copy ] && landed=$((landed + 1))
	mode=$(dd_pool_field $P 9) nc=$(dd_pool_field $P 10)
	log "try $k: the kill $where; pool $mode $nc"
	check_eq "try $k: the pool is still rw after the killed create_snap $id" "$mode" rw
	check_eq "try $k: no needs_check" "$nc" -
	# The snapshot exists or not; either way its id is freed again.
	dmsetup message $P 0 delete_volume $id 2>/dev/null
done
check "at least one kill landed in the middle of a copy ($landed of $TRIES)" test $landed -gt 0
hog_alive && kill $hog

check "the origin resumes" dmsetup resume ddt-o
check "a flush of the origin succeeds" sync $O
check "fio verifies the origin" vfio --rw=write --verify_only=1
check_eq "pool mode is rw" "$(dd_pool_field $P 9)" rw
check "devices are removed" sh -c "dmsetup remove ddt-o && dmsetup remove $P"
check "the metadata checks clean" dd_check_metadata "$meta"
check "no WARN/BUG/oops/hung task in the kernel log (OOM reports aside)" \
	dd_kernel_clean_since "$DD_TEST.start"
finish
