#!/bin/sh
# Memory pressure: two ext4 volumes of a pool are written with buffered I/O (new files,
# copies of them, whole-file rewrites) while a hog holds all but a few MiB of the guest's
# memory, so their dirty pages are written back through the pool under pressure; twice
# another hog grows until the OOM killer kills it, the writers going on.  Each writer
# snapshots its own volume half-way (suspend: ext4 frozen, dirty pages flushed), the
# scanner merges the copies meanwhile.  Proves: no deadlock (hung tasks are reported
# after 20 s and fail the run), no allocation failure turned into an I/O error or lost
# data (every file and every snapshot's files read back with the checksums of what was
# written, after sync and drop_caches; e2fsck clean), the pool still rw without
# needs_check, and the metadata checks clean offline.
# vm: timeout=400 mem=512M disks=2 disk_size=256M oom=1 solo=1
. "$(dirname "$0")/lib.sh"

[ "$DD_NATIVE" = 1 ] && die "exhausts the machine's memory: run it in the guest"
dd_mark "$DD_TEST.start"
t0=$(dd_uptime_cs)
# A task stuck for 20 s is reported (the harness fails the run on it).
echo 20 >/proc/sys/kernel/hung_task_timeout_secs ||
	die "no kernel.hung_task_timeout_secs"
# Only the hogs may be chosen by the OOM killer: everything else (this script and its
# children, the harness's tee and init) is exempt.
for p in /proc/[0-9]*; do echo -1000 >"$p/oom_score_adj" 2>/dev/null; done

set -- $DD_DISKS
[ $# -ge 2 ] || die "needs two disks, got: $DD_DISKS"
meta=$1 data=$2
P=ddt-pool
FILES=12			# files per writer
LEAVE=40			# MiB of MemAvailable the holder leaves
VS=393216			# 192 MiB volumes

dd_load_module || die "dm-dedup does not load"
check "pool is created on the virtio disks" dd_pool_create $P "$meta" "$data"
check "scanner runs with no rate limit" sh -c "dmsetup message $P 0 scan rate 0 &&
	dmsetup message $P 0 scan run 1"
for v in 1 2; do
	check "volume $v is created" dd_volume_create $P $v ddt-v$v $VS
	check "mkfs.ext4 on volume $v" mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 \
		/dev/mapper/ddt-v$v
	mkdir -p /mnt/v$v
	check "volume $v is mounted" mount -t ext4 /dev/mapper/ddt-v$v /mnt/v$v
done

# --- the hogs ----------------------------------------------------------------------------
# The holder takes all but LEAVE MiB and keeps it (oom_score_adj 0: the OOM killer's
# last choice, but it has one if an OOM comes outside a round).  In an OOM round a
# grower (oom_score_adj 1000, so the OOM killer's first choice) eats the rest.
HOG=
hold_start() { # returns once the holder holds all but LEAVE MiB
	sh -c 'echo 0 >/proc/self/oom_score_adj; exec dd_memhog leave '$LEAVE \
		>"$DD_TMP/hog.out" 2>&1 &
	HOG=$!
	_i=0
	until grep -q holding "$DD_TMP/hog.out"; do
		[ $_i -lt 1200 ] || return 1
		kill -0 $HOG 2>/dev/null || return 1
		sleep 0.1
		_i=$((_i + 1))
	done
	log "$(cat "$DD_TMP/hog.out")"
}
hold_stop() {
	[ -n "$HOG" ] || return 0
	kill $HOG 2>/dev/null
	wait $HOG 2>/dev/null
	HOG=
}
# oom_round N: the grower grows until the OOM killer kills it (exit 137, SIGKILL) and the
# kernel log names it as the process killed.  The OOM killer may take the holder too
# (dirty pages are slow to free): then a new holder takes its place.
hold_again() {
	kill -0 $HOG 2>/dev/null && return 0
	log "the OOM killer took the holder too: a new one"
	wait $HOG 2>/dev/null
	hold_start
}
oom_round() {
	sh -c 'echo 1000 >/proc/self/oom_score_adj; exec dd_memhog grow' &
	_g=$!
	wait $_g 2>/dev/null
	_rc=$?
	check_eq "OOM round $1: the grower was killed by SIGKILL" "$_rc" 137
	check "OOM round $1: the kernel log says the OOM killer killed it (pid $_g)" \
		sh -c "dmesg | grep -E 'Out of memory: Killed process $_g \(dd_memhog\)'"
	check "OOM round $1: a holder holds all but $LEAVE MiB" hold_again
}

# --- the writers -------------------------------------------------------------------------
# writer V: FILES files into /mnt/vV, each written with buffered I/O and its SHA-256
# taken from the stream as it is written: random ones (1-2 MiB), every third a copy of
# the one before (the scanner's work); after every fourth, the one two before is
# rewritten (new contents, renamed over it).  Every file done appends "NAME SUM" to the
# manifest (the last line of a name counts).  Half-way the writer snapshots its volume
# (volume 10V+1, the origin suspended: ext4 frozen, its dirty pages flushed, the other
# writer going on) and keeps the manifest as it was: the snapshot must hold those files.
randfile() { # randfile FILE MIB: prints the SHA-256 of what it wrote
	head -c $(($2 * 1048576)) /dev/urandom | tee "$1" | sha256sum | cut -d' ' -f1
}
writer() {
	_v=$1 _d=/mnt/v$1 _m=$DD_TMP/man$1 _k=0
	for _i in $(seq 1 "$FILES"); do
		if [ $((_i % 3)) = 0 ]; then
			_sum=$(awk -v n=f$((_i - 1)) '$1 == n {s = $2} END {print s}' "$_m")
			cat "$_d/f$((_i - 1))" >"$_d/f$_i" || { echo "copy to f$_i failed"; return 1; }
		else
			_sum=$(randfile "$_d/f$_i" $((_i % 2 + 1)))
			[ "$(stat -c %s "$_d/f$_i")" = $(((_i % 2 + 1) * 1048576)) ] ||
				{ echo "write of f$_i failed"; return 1; }
		fi
		echo "f$_i $_sum" >>"$_m"
		if [ $((_i % 4)) = 0 ]; then
			_o=f$((_i - 2))
			_sum=$(randfile "$_d/$_o.new" 1)
			[ "$(stat -c %s "$_d/$_o.new")" = 1048576 ] && mv "$_d/$_o.new" "$_d/$_o" ||
				{ echo "rewrite of $_o failed"; return 1; }
			echo "$_o $_sum" >>"$_m"
		fi
		if [ $_i = $((FILES / 2)) ]; then
			_k=$((_k + 1))
			cp "$_m" "$_m.snap$_k"
			dmsetup suspend ddt-v$_v || { echo "suspend failed"; return 1; }
			dmsetup message $P 0 create_snap $((_v * 10 + _k)) $_v
			_r=$?
			dmsetup resume ddt-v$_v || { echo "resume failed"; return 1; }
			[ $_r = 0 ] || { echo "create_snap $((_v * 10 + _k)) failed"; return 1; }
			echo "$_k" >"$_m.nsnaps"
		fi
	done
}
# manifest_ok MANIFEST DIR: every name's last checksum matches its file in DIR.
manifest_ok() {
	awk '{s[$1] = $2} END {for (n in s) print n, s[n]}' "$1" | sort >"$DD_TMP/want"
	_bad=0
	while read -r _n _s; do
		_got=$(sha256sum <"$2/$_n" | cut -d' ' -f1)
		if [ "$_got" != "$_s" ]; then
			echo "$2/$_n: got $_got, want $_s"
			_bad=1
		fi
	done <"$DD_TMP/want"
	[ -s "$DD_TMP/want" ] && [ $_bad = 0 ]
}
progress() { wc -l <"$DD_TMP/man$1"; }

# Pages reclaimed so far (by kswapd and in direct reclaim).
reclaimed() { awk '$1 ~ /^pgsteal_(kswapd|direct)$/ {n += $2} END {print n + 0}' /proc/vmstat; }
elapsed() { echo $(( ($(dd_uptime_cs) - t0) / 100 )); }

log "--- writing under pressure: the holder leaves ${LEAVE} MiB"
check "the holder holds all but $LEAVE MiB" hold_start
log "the holder holds at $(elapsed) s"
steal0=$(reclaimed)
: >"$DD_TMP/man1"
: >"$DD_TMP/man2"
writer 1 >"$DD_TMP/w1.log" 2>&1 &
w1=$!
writer 2 >"$DD_TMP/w2.log" 2>&1 &
w2=$!
for round in 1 2; do
	# OOM rounds once writer 1 has done a sixth and a half of its files (not on a clock).
	while [ "$(progress 1)" -lt $((round == 1 ? FILES / 6 : FILES / 2)) ] &&
		kill -0 $w1 2>/dev/null; do
		sleep 0.2
	done
	log "OOM round $round at $(elapsed) s, manifest lines: $(progress 1) + $(progress 2)"
	oom_round $round
	log "OOM round $round: the grower was killed at $(elapsed) s"
done
writer_done() { # writer_done V PID
	if wait "$2"; then
		ok "writer $1 wrote $FILES files and took its snapshot under pressure"
	else
		fail "writer $1 failed"
		_dd_show "$DD_TMP/w$1.log"
	fi
}
writer_done 1 $w1
writer_done 2 $w2
check "sync under pressure" sync
steal=$(($(reclaimed) - steal0))
check "the page cache was reclaimed while the files were written ($steal pages)" \
	test "$steal" -gt 0
hold_stop
log "pool: $(dmsetup status $P)"
log "writes done at $(elapsed) s"

log "--- everything reads back"
echo 3 >/proc/sys/vm/drop_caches
for v in 1 2; do
	check "volume $v: every file has the checksum written (after drop_caches)" \
		manifest_ok "$DD_TMP/man$v" /mnt/v$v
done
log "read back at $(elapsed) s"
scan_note $P
check "a full scanner pass" sh -c "dmsetup message $P 0 scan full"
check "the scanner goes idle" scan_wait_idle $P 120
merged=$(scan_stat $P merged_blocks)
log "scanner idle at $(elapsed) s"
check "the scanner merged the copies (merged_blocks $merged)" test "${merged:-0}" -gt 0
echo 3 >/proc/sys/vm/drop_caches
for v in 1 2; do
	check "volume $v: every file reads back after the merges" manifest_ok "$DD_TMP/man$v" /mnt/v$v
	check "volume $v is unmounted" umount /mnt/v$v
	check "volume $v: e2fsck -fn is clean" e2fsck -fn /dev/mapper/ddt-v$v
done
check_eq "pool mode is rw" "$(dd_pool_field $P 9)" rw
check_eq "no needs_check" "$(dd_pool_field $P 10)" -

log "--- the snapshots taken while writing ($(elapsed) s)"
nsnaps=0
for v in 1 2; do
	n=$(cat "$DD_TMP/man$v.nsnaps" 2>/dev/null || echo 0)
	check "writer $v took its snapshot (took $n)" test "$n" = 1
	for k in $(seq 1 "$n"); do
		id=$((v * 10 + k))
		S=/dev/mapper/ddt-s$id
		check "snapshot $id is activated" dd_volume_activate $P $id ddt-s$id $VS
		check "snapshot $id: e2fsck -fn is clean" e2fsck -fn $S
		mkdir -p /mnt/s
		if mount -t ext4 -o ro,noload $S /mnt/s; then
			check "snapshot $id holds the files done before it, checksums equal" \
				manifest_ok "$DD_TMP/man$v.snap$k" /mnt/s
			umount /mnt/s
		else
			fail "snapshot $id cannot be mounted read-only"
		fi
		dmsetup remove ddt-s$id
		nsnaps=$((nsnaps + 1))
	done
done
log "pool: $(dmsetup status $P)"
check "volumes are removed" sh -c "dmsetup remove ddt-v1 && dmsetup remove ddt-v2"
check "pool is removed" dmsetup remove $P
check "the metadata checks clean" dd_check_metadata "$meta"
check "no WARN/BUG/oops/hung task in the kernel log (OOM reports aside)" \
	dd_kernel_clean_since "$DD_TEST.start"
log "$nsnaps snapshots checked; wall time $(elapsed) s"
finish
