#!/bin/sh
# dedupctl, every subcommand and its errors.  Boot 1: a pool on two virtio disks made
# with `dedupctl create`; volumes by name (create, snapshot, rename, delete, list),
# written and read back; the scanner through `dedupctl scan` and the savings through
# `dedupctl status` (and --json); each refusal (too small a metadata device, the same
# device twice, a name or device in use, a busy volume or pool, a bad size, ...) exits
# non-zero with its own line; a dedupctl holding the pool's lock makes another wait,
# or give up past DEDUPCTL_LOCK_TIMEOUT with one line; a dedupctl killed at each step
# of a volume change (DEDUPCTL_FAULT) is finished by the next activation; deactivate,
# `dedupctl check`, activate again; the pool is left active at the end of the boot.
# Boot 2 (nothing kept but the disks): `dedupctl activate --all` finds the pool on the
# disks alone, and every volume reads back what boot 1 wrote; a second pool on loop
# devices grows its data device (`dedupctl resize`) and is found again after that;
# `pools --json` (a quote and a backslash in a device path escaped); `deactivate
# --all` with one pool busy removes the other and names the busy one.
# vm: timeout=600 disks=3 disk_size=256M boots=2 smp=1
. "$(dirname "$0")/lib.sh"

dd_mark "$DD_TEST.start"
dd_load_module || die "dm-dedup does not load"
# shellcheck disable=SC2086 # three names
set -- $DD_DISKS
[ $# -ge 3 ] || die "three virtio disks wanted, got '$DD_DISKS'"
meta=$1 data=$2 notes=$3
P=ddtp
C=dedupctl
note_get() { head -c 4096 "$notes" | tr -d '\0' | awk -v k="$1" '$1 == k {print $2}'; }
# fails DESC PATTERN CMD...: CMD exits 1 and its one stderr line matches PATTERN.
fails() {
	_d=$1 _p=$2
	shift 2
	"$@" >"$DD_TMP/out" 2>"$DD_TMP/err"
	_rc=$?
	if [ $_rc -eq 1 ] && [ "$(wc -l <"$DD_TMP/err")" -eq 1 ] && grep -q -- "$_p" "$DD_TMP/err"; then
		ok "$_d: $(cat "$DD_TMP/err")"
	else
		fail "$_d (exit $_rc, wanted 1 and one line matching '$_p')"
		_dd_show "$DD_TMP/err"
	fi
}
vsum() { dd_sum "/dev/mapper/$P-$1" $((32 << 20)); }

if [ "$DD_BOOT" = 1 ]; then
	small=$(dd_loop 5M) || die "no loop device"
	fails "create: metadata device too small" "metadata device too small.*suggested" \
		$C create ddtx "$small" "$data"
	fails "create: the same device twice" "same device" $C create ddtx "$data" "$data"
	fails "create: a missing device" "/dev/nonexistent" $C create ddtx /dev/nonexistent "$data"
	fails "create: a bad pool name" "bad pool name" $C create "a/b" "$meta" "$data"
	fails "create: an unknown feature" "unknown feature" \
		$C create --feature frobnicate ddtx "$meta" "$data"
	fails "create: a regular file" "not a block device" $C create ddtx /etc/passwd "$data"
	check "create: a pool on the two disks" $C create $P "$meta" "$data"
	check "the pool is a dedup-pool over ${P}_tmeta" \
		sh -c "dmsetup table $P | grep -q ' dedup-pool ' && dmsetup table ${P}_tmeta | grep -q linear"
	fails "create: the name in use" "exists already" $C create $P "$small" "$notes"
	fails "create: a device in use" "busy" $C create ddty "$meta" "$notes"
	fails "status: no such pool" "not active" $C status ddtnone

	check "create-volume v1 (64 MiB)" $C create-volume $P v1 64M
	check "create-volume v2 (64 MiB, domain 0)" $C create-volume $P v2 64M --domain 0
	fails "create-volume: the name in use" "already" $C create-volume $P v1 64M
	fails "create-volume: a size not a multiple of 4 KiB" "bad size" $C create-volume $P v3 12345
	fails "create-volume: a bad name" "bad volume name" $C create-volume $P "a/b" 64M
	fails "create-volume: a bad domain" "bad --domain" $C create-volume $P v3 64M --domain 300
	fails "create-volume: no such pool" "not active" $C create-volume ddtnone v3 64M
	# Pool names take no '-' and no _tmeta suffix: POOL-VOLUME and POOL_tmeta are dm names.
	fails "create: a pool named like volume v1's device" "bad pool name .*no '-'" \
		$C create "$P-v1" "$small" "$notes"
	fails "create: a pool named like a metadata device" "bad pool name .*_tmeta" \
		$C create "${P}_tmeta" "$small" "$notes"
	check_eq "v1's device is still the dedup volume" \
		"$(dmsetup table "$P-v1" | awk '{print $3}')" dedup
	check_eq "v1 is /dev/mapper/$P-v1, 64 MiB" "$(blockdev --getsize64 /dev/mapper/$P-v1)" 67108864
	check "v1: 32 MiB of random data" \
		dd if=/dev/urandom of=/dev/mapper/$P-v1 bs=1M count=32 oflag=direct conv=fsync
	s1=$(vsum v1)
	check "v2: the same 32 MiB (duplicates for the scanner)" \
		dd if=/dev/mapper/$P-v1 of=/dev/mapper/$P-v2 bs=1M count=32 oflag=direct conv=fsync
	check "snapshot s1 of v1 (v1 active: suspended for the copy)" $C snapshot $P v1 s1
	check_eq "s1 reads what v1 holds" "$(vsum s1)" "$s1"
	check "v1 is resumed" sh -c "dmsetup info $P-v1 | grep -q ACTIVE"
	check "v1: 1 MiB overwritten" \
		dd if=/dev/urandom of=/dev/mapper/$P-v1 bs=1M count=1 oflag=direct conv=fsync
	check_eq "s1 keeps the old data (copy-on-write)" "$(vsum s1)" "$s1"
	s1v1=$(vsum v1)
	fails "snapshot: no such origin" "no volume" $C snapshot $P nothere s2
	fails "snapshot: the name in use" "already" $C snapshot $P v1 s1

	check "rename-volume v2 to v2b" $C rename-volume $P v2 v2b
	check "/dev/mapper/$P-v2b is there, $P-v2 is gone" \
		sh -c "test -b /dev/mapper/$P-v2b && ! dmsetup info $P-v2 >/dev/null 2>&1"
	check_eq "v2b reads what v2 held" "$(vsum v2b)" "$s1"
	fails "rename-volume: to a name in use" "already" $C rename-volume $P v2b v1
	fails "rename-volume: no such volume" "no volume" $C rename-volume $P nothere x
	check "list shows v1, v2b, s1" sh -c "$C list $P | awk 'NR > 1 {print \$1}' | sort | tr '\n' ' ' | grep -qx 's1 v1 v2b '"
	check "list --json" sh -c "$C list $P --json | grep -q '\"name\": \"v2b\"'"

	# The pool's lock: while one dedupctl holds it (DEDUPCTL_FAULT=locked holds it until
	# the file goes), another waits for it; past DEDUPCTL_LOCK_TIMEOUT it gives up.
	hold=$DD_TMP/hold
	touch "$hold"
	DEDUPCTL_FAULT=locked DEDUPCTL_FAULT_WAIT=$hold $C create-volume $P h1 8M >/dev/null 2>&1 &
	ph=$!
	n=0
	while [ ! -e "$hold.locked" ] && [ $n -lt 600 ]; do sleep 0.1; n=$((n + 1)); done
	check "a create-volume holds the pool's lock" test -e "$hold.locked"
	fails "create-volume: the lock held past DEDUPCTL_LOCK_TIMEOUT" \
		"another dedupctl (pid [0-9]*) has held its lock (flock on /dev/.*) for more than 1 s" \
		env DEDUPCTL_LOCK_TIMEOUT=1 $C create-volume $P h2 8M
	$C create-volume $P h3 8M >"$DD_TMP/h3" 2>&1 &
	pw=$!
	rm -f "$hold"
	wait $ph
	check_eq "the create-volume that held the lock succeeded" $? 0
	wait $pw
	check_eq "the create-volume that waited for it succeeded" $? 0
	_dd_show "$DD_TMP/h3"
	check_eq "h1 and h3 are in the label, h2 is not" \
		"$($C list $P | awk 'NR > 1 && $1 ~ /^h/ {print $1}' | sort | tr '\n' ' ')" "h1 h3 "
	check "delete-volume h1" $C delete-volume $P h1
	check "delete-volume h3" $C delete-volume $P h3

	check "scan rate 0 (no limit)" $C scan $P rate 0
	check "scan start" $C scan $P start
	check "scan full" $C scan $P full
	scan_wait_idle $P 300 || fail "the scanner does not finish its pass"
	$C status $P >"$DD_TMP/status" 2>&1
	_dd_show "$DD_TMP/status"
	check "status shows a saving" grep -Eq "saving +[1-9][0-9.]* %" "$DD_TMP/status"
	check "status --json: freed bytes and the scanner state" \
		sh -c "$C status --json $P | grep -Eq '\"bytes_freed\": [1-9]' && $C status $P --json | grep -q '\"state\": \"idle\"'"
	check "scan stats" sh -c "$C scan $P stats | grep -q '^merged_blocks [1-9]'"
	$C scan $P frobnicate 2>"$DD_TMP/err"
	check_eq "scan: a bad command is a usage error (exit 2)" "$?:$(grep -c usage "$DD_TMP/err")" 2:1
	check "scan stop" $C scan $P stop
	check_eq "after the merges v2b still reads its data" "$(vsum v2b)" "$s1"

	# busy: a volume held open
	exec 3</dev/mapper/$P-v2b
	fails "delete-volume: an open volume" "is open" $C delete-volume $P v2b
	fails "deactivate: a pool whose volume is open" "busy" $C deactivate $P
	exec 3<&-
	check "create-volume tmp" $C create-volume $P tmp 8M
	check "delete-volume tmp" $C delete-volume $P tmp
	check "tmp is gone" sh -c "! dmsetup info $P-tmp >/dev/null 2>&1 && ! $C list $P | grep -q '^tmp '"
	fails "delete-volume: no such volume" "no volume" $C delete-volume $P tmp

	# A dedupctl that dies at each step of a volume change; activation finishes it.
	DEDUPCTL_FAULT=create-recorded $C create-volume $P c1 8M 2>/dev/null
	check_eq "killed after recording c1 (exit 99)" $? 99
	DEDUPCTL_FAULT=create-done $C create-volume $P c2 8M 2>/dev/null
	check_eq "killed after creating c2 in the pool (exit 99)" $? 99
	DEDUPCTL_FAULT=delete-recorded $C delete-volume $P s1 2>/dev/null
	check_eq "killed after recording the deletion of s1 (exit 99)" $? 99
	DEDUPCTL_FAULT=create-recorded $C snapshot $P v1 c3 2>/dev/null
	check_eq "killed in a snapshot, v1 left suspended (exit 99)" $? 99
	check "activate finishes them" $C activate $P
	check "v1 is resumed by activate" sh -c "dmsetup info $P-v1 | grep -q ACTIVE"
	check_eq "c1 was dropped, c2 kept, s1 deleted, c3 dropped" \
		"$($C list $P | awk 'NR > 1 {print $1}' | sort | tr '\n' ' ')" "c2 v1 v2b "
	check "c2 is active" test -b /dev/mapper/$P-c2

	check "deactivate $P" $C deactivate $P
	check "no device of $P is left" sh -c "! dmsetup ls | grep -q '^$P'"
	check "check: the metadata is clean" $C check "$meta"
	check "activate $P (named, the devices found by scanning)" $C activate $P
	check_eq "v1 reads back" "$(vsum v1)" "$s1v1"
	fails "check: refused while the pool is active" "is active" $C check "$meta"
	check "pools lists it" sh -c "$C pools | grep -q '^$P .*active'"
	printf 'v1 %s\nv2b %s\n' "$s1v1" "$s1" | dd of="$notes" bs=4096 conv=sync,fsync 2>/dev/null
	check "a flush of v1 and v2b" sh -c "sync /dev/mapper/$P-v1 /dev/mapper/$P-v2b"
	# the pool stays active: boot 2 starts with nothing but the disks
	check "no WARN/BUG/oops/hung task in the kernel log" dd_kernel_clean_since "$DD_TEST.start"
	finish
fi

check "boot 2: no dm device yet" sh -c "! dmsetup ls | grep -q '^$P'"
check "activate --all" $C activate --all
check_eq "v1 reads back what boot 1 wrote" "$(vsum v1)" "$(note_get v1)"
check_eq "v2b reads back what boot 1 wrote" "$(vsum v2b)" "$(note_get v2b)"
check "status of every pool" sh -c "$C status | grep -q '^pool $P'"

# resize: a pool on loop devices whose data device grows
lm=$(dd_loop 16M) && ld=$(dd_loop 64M) || die "no loop devices"
ldf=$(awk -v d="$ld" '$1 == d {print $2}' "$DD_STATE/loops")
check "create ddtr on loop devices" $C create ddtr "$lm" "$ld"
check "create-volume ddtr big 1G" $C create-volume ddtr big 1G
fails "resize: nothing grew" "neither .* nor .* has grown" $C resize ddtr
check "big: 32 MiB" dd if=/dev/urandom of=/dev/mapper/ddtr-big bs=1M count=32 oflag=direct conv=fsync
rs=$(dd_sum /dev/mapper/ddtr-big $((32 << 20)))
check "the data file grows to 128 MiB" sh -c "truncate -s 128M $ldf && losetup -c $ld"
check "resize ddtr" $C resize ddtr
check_eq "the data space is 128 MiB less the label block" \
	"$(dd_pool_field ddtr 3 | cut -d/ -f2)" $((32768 - 1))
check "big: 64 MiB more (past the old end)" \
	dd if=/dev/urandom of=/dev/mapper/ddtr-big bs=1M count=64 seek=32 oflag=direct conv=fsync
rs2=$(dd_sum /dev/mapper/ddtr-big $((96 << 20)))
check "deactivate ddtr" $C deactivate ddtr
check "activate ddtr from its two devices" $C activate ddtr "$lm" "$ld"
check_eq "big reads back after the resize" "$(dd_sum /dev/mapper/ddtr-big $((96 << 20)))" "$rs2"
check_eq "its first 32 MiB unchanged" "$(dd_sum /dev/mapper/ddtr-big $((32 << 20)))" "$rs"
fails "activate: no such pool" "no pool named" $C activate ddtnone "$lm" "$ld"

check "pools --json lists both pools" \
	sh -c "$C pools --json | grep -q '\"name\": \"$P\"' && $C pools --json | grep -q '\"name\": \"ddtr\"'"
odd=$DD_TMP/'m"q\x'
ln -s "$lm" "$odd"
printf '"metadata": "%s/m\\"q\\\\x"' "$DD_TMP" >"$DD_TMP/want"
$C pools --json "$odd" "$ld" >"$DD_TMP/pj" 2>&1
_dd_show "$DD_TMP/pj"
check "pools --json escapes a quote and a backslash in a device path" \
	grep -qF -f "$DD_TMP/want" "$DD_TMP/pj"
# deactivate --all with one pool busy: the other still goes, the busy one is named.
exec 3</dev/mapper/ddtr-big
fails "deactivate --all: one pool busy" "ddtr is busy" $C deactivate --all
check "the pool that was not busy is gone" sh -c "! dmsetup info $P >/dev/null 2>&1"
check "the busy one is still there" dmsetup info ddtr
exec 3<&-
check "deactivate --all" $C deactivate --all
check "no dedup device is left" sh -c "! dmsetup table | grep -q dedup"
check "check $P" $C check "$meta"
check "check ddtr" $C check "$lm"
# needs_check set by hand (DD_SB_NEEDS_CHECK, byte 44 of both superblock slots, the
# metadata blocks 0 and 1 after the 4 MiB label): the pool opens read-only until
# check --clear-needs-check.
check "needs_check set in ddtr's two superblocks" \
	sh -c "dd_bitflip --restamp $lm 1024 44 1 && dd_bitflip --restamp $lm 1025 44 1"
check "activate ddtr with needs_check" $C activate ddtr "$lm" "$ld"
check_eq "ddtr is read-only, needs_check" "$(dd_pool_field ddtr 9) $(dd_pool_field ddtr 10)" \
	"ro needs_check"
fails "check: the pool is active" "is active" $C check --clear-needs-check "$lm"
check "deactivate ddtr" $C deactivate ddtr
check "check --clear-needs-check ddtr" $C check --clear-needs-check "$lm"
check "activate ddtr again" $C activate ddtr "$lm" "$ld"
check_eq "ddtr is read-write, needs_check clear" \
	"$(dd_pool_field ddtr 9) $(dd_pool_field ddtr 10)" "rw -"
check_eq "big still reads back" "$(dd_sum /dev/mapper/ddtr-big $((96 << 20)))" "$rs2"
check "deactivate ddtr" $C deactivate ddtr
check "no WARN/BUG/oops/hung task in the kernel log" dd_kernel_clean_since "$DD_TEST.start"
finish
