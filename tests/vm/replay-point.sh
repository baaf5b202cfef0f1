#!/bin/sh
# One check point of tests/vm/39-log-replay.sh, run by `dd_logreplay replay --exec`
# after the replay devices were brought to a flush in the log (see that script).
#
# Environment: DD_REPLAY_INDEX, DD_REPLAY_MARK, DD_REPLAY_POINT (from dd_logreplay);
# RP_DIR (the workload's model), RP_META, RP_DATA (the replayed devices), RP_COWM,
# RP_COWD (scratch devices for the snapshots that take the pool's writes), RP_MS,
# RP_DS (their sizes in sectors), RP_FULL (every RP_FULL-th point also writes new
# data, reads it back and checks the metadata the pool left).
#
# RP_MODE=engine checks the point without the kernel (tests/scripts/replay-engine.sh
# runs it on the host, at every flush of the log the guest recorded): `dedup_check`,
# then every volume read through the userspace engine (`dd_tokens verify ID --pool`:
# the pool opened as the kernel opens it after a crash, every metadata write kept in
# memory, and it must come up read-write without needs_check) against the same spec;
# RP_META and RP_DATA may be image files, and
# RP_COWM, RP_COWD, RP_MS, RP_DS and RP_FULL are not used.
#
# A point after mark mK is checked against $RP_DIR/iK/spec, one line per volume id:
#   ID must ARGS   the volume existed at mark K and was not deleted before mark K+1: it
#                  must open, and read back what `dd_tokens verify ARGS` accepts (the
#                  map read at mark K, after its flush, or any write issued after it)
#   ID may ARGS    created or deleted between the marks: if it opens, the same
#   ID gone        deleted (and flushed) before mark K: it must not open
# Points before mark m0 (the pool being made) promise nothing and are not counted.
# Each checked point appends a line to $RP_DIR/checked.  Exit 0 when the point holds.
# The spec's file names are relative to $RP_DIR.

cd "$RP_DIR" || exit 1
case "$DD_REPLAY_MARK" in
m[0-9]*) k=${DD_REPLAY_MARK#m} ;;
*) exit 0 ;;
esac
spec=$RP_DIR/i$k/spec
where="point $DD_REPLAY_POINT (log entry $DD_REPLAY_INDEX, after mark $DD_REPLAY_MARK)"
vols=

# vol_devs: the device names of the volumes opened so far.
vol_devs() { for _v in $vols; do printf ' rp-v%s' "$_v"; done; }

cleanup() {
	[ "${RP_MODE:-kernel}" = kernel ] || return 0
	# shellcheck disable=SC2046
	dmsetup remove $(vol_devs) rp-pool rp-meta rp-data 2>/dev/null
	:
}

bad() {
	echo "not ok - $where: $*"
	[ -f "$RP_DIR/out" ] && sed 's/^/#   | /' "$RP_DIR/out" | head -n 20
	cleanup
	exit 1
}

[ -f "$spec" ] || bad "no model for mark $DD_REPLAY_MARK ($spec)"

# The metadata as the crash left it (dedup_check replays the journal in memory only).
[ ! -b "$RP_META" ] || blockdev --flushbufs "$RP_META"
dedup_check "$RP_META" >"$RP_DIR/out" 2>&1 || bad "dedup_check of the replayed metadata fails"

if [ "${RP_MODE:-kernel}" = engine ]; then
	# Every volume through the engine: must/may read back, gone/may may be absent (3).
	while read -r id how args; do
		# shellcheck disable=SC2086
		dd_tokens verify "$id" --pool "$RP_META,$RP_DATA" --sectors "$(cat "size.$id")" \
			$args --name "volume $id" >"$RP_DIR/out" 2>&1
		rc=$?
		case "$how:$rc" in
		must:0 | may:0 | may:3 | gone:3) ;;
		gone:0 | gone:1) bad "volume $id, deleted before this mark, is in the pool" ;;
		must:3) bad "volume $id is not in the pool" ;;
		*:1) bad "volume $id does not read back what was written" ;;
		*) bad "volume $id: dd_tokens verify exited $rc" ;;
		esac
	done <"$spec"
	echo "$DD_REPLAY_INDEX" >>"$RP_DIR/checked"
	exit 0
fi

# The pool opens read-write; its writes go to snapshots, the replay devices stay as
# the log left them.
# (One dmsetup call for the three devices: each call costs much under emulation.)
dmsetup create --concise "rp-meta,,,rw,0 $RP_MS snapshot $RP_META $RP_COWM N 8;rp-data,,,rw,0 $RP_DS snapshot $RP_DATA $RP_COWD N 8;rp-pool,,,rw,0 $RP_DS dedup-pool /dev/mapper/rp-meta /dev/mapper/rp-data 8 0" \
	2>"$RP_DIR/out" || bad "the pool does not open (over snapshots of the replayed devices)"
# The volumes that must exist, in one call; then the others one by one.
must=
spec_concise=
while read -r id how args; do
	[ "$how" = must ] || continue
	must="$must $id"
	spec_concise="$spec_concise${spec_concise:+;}rp-v$id,,,rw,0 $(cat "$RP_DIR/size.$id") dedup /dev/mapper/rp-pool $id"
done <"$spec"
if [ -n "$must" ]; then
	dmsetup create --concise "$spec_concise" 2>"$RP_DIR/out" || {
		for id in $must; do dmsetup info "rp-v$id" >/dev/null 2>&1 && vols="$vols $id"; done
		bad "not every volume of ($must ) opens"
	}
	vols=$must
fi
first=
while read -r id how args; do
	case $how in
	gone)
		if echo "0 $(cat "$RP_DIR/size.$id") dedup /dev/mapper/rp-pool $id" |
			dmsetup create "rp-v$id" 2>/dev/null; then
			vols="$vols $id"
			bad "volume $id, deleted before this mark, opens"
		fi
		continue
		;;
	may)
		echo "0 $(cat "$RP_DIR/size.$id") dedup /dev/mapper/rp-pool $id" |
			dmsetup create "rp-v$id" 2>/dev/null || continue
		vols="$vols $id"
		;;
	must) ;;
	*) bad "bad line in $spec: $id $how" ;;
	esac
	# shellcheck disable=SC2086
	dd_tokens verify "/dev/mapper/rp-v$id" $args --name "volume $id" \
		--out "$RP_DIR/pmap.$id" >"$RP_DIR/out" 2>&1 ||
		bad "volume $id does not read back what was written"
	[ -n "$first" ] || first=$id
done <"$spec"

if [ -n "$first" ] && [ $((DD_REPLAY_POINT % RP_FULL)) = 0 ]; then
	# The recovered pool takes new work: writes read back, and the metadata it
	# leaves at its removal checks clean.
	rm -f "$RP_DIR/pj"
	dd_tokens write "/dev/mapper/rp-v$first" "$RP_DIR/pj" --seed $((60000000 + DD_REPLAY_POINT)) \
		--count 24 --dups 8 >"$RP_DIR/out" 2>&1 || bad "new writes to volume $first fail"
	dd_tokens verify "/dev/mapper/rp-v$first" --map "$RP_DIR/pmap.$first" --journal "$RP_DIR/pj" \
		--name "volume $first after new writes" >"$RP_DIR/out" 2>&1 ||
		bad "new writes to volume $first do not read back"
	# shellcheck disable=SC2046
	dmsetup remove $(vol_devs) rp-pool >"$RP_DIR/out" 2>&1 || bad "the volumes and the pool cannot be removed"
	vols=
	dedup_check /dev/mapper/rp-meta >"$RP_DIR/out" 2>&1 ||
		bad "dedup_check after the recovered pool was used and removed fails"
	dmsetup remove rp-meta rp-data >"$RP_DIR/out" 2>&1 || bad "the snapshots cannot be removed"
	echo "$DD_REPLAY_INDEX full" >>"$RP_DIR/checked"
else
	echo "$DD_REPLAY_INDEX" >>"$RP_DIR/checked"
	cleanup
fi
exit 0
