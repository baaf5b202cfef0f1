#!/bin/sh
# A snapshot that runs out of metadata space part-way fails with ENOSPC, and the
# references its partial copy took are given back by the pool's reclaim in the
# background: the origin's blocks become exclusive again (no shared blocks, the
# mapped count back to the origin's), the snapshot id can be used again, and the
# origin's data reads back.
# vm: timeout=300 smp=1
. "$(dirname "$0")/lib.sh"

dd_mark "$DD_TEST.start"
dd_load_module || die "dm-dedup does not load"
# 2 MiB of metadata: about 250 blocks free after the journal and the bitmap.
meta=$(dd_loop 2M) && data=$(dd_loop 64M) || die "cannot set up loop devices"
check "pool on a 2 MiB metadata device" dd_pool_create ddt-pool "$meta" "$data"
N=150	# one block in each of 150 map leaves (508 LBNs per leaf)
SZ=$((N * 508 * 8))
check "origin volume 1" dd_volume_create ddt-pool 1 ddt-origin $SZ
O=/dev/mapper/ddt-origin
head -c $((N * 4096)) /dev/urandom >"$DD_TMP/blocks"
i=0
while [ $i -lt $N ]; do
	dd if="$DD_TMP/blocks" of=$O bs=4096 skip=$i seek=$((i * 508)) count=1 oflag=direct \
		conv=notrunc 2>/dev/null || break
	i=$((i + 1))
done
check_eq "origin: $N blocks in $N map leaves" "$i" $N
check "flushed" sync $O
check_eq "mapped blocks: $N" "$(dd_pool_field ddt-pool 4)" $N
check "origin suspended" dmsetup suspend ddt-origin
expect_fail "create_snap 2 1 runs out of metadata space" dmsetup message ddt-pool 0 create_snap 2 1
check "origin resumed" dmsetup resume ddt-origin
# The partial copy was handed to reclaim: wait for it (a few worker passes).
t=0
while [ $t -lt 30 ] && [ "$(dd_pool_field ddt-pool 5)" != 0 ]; do
	sleep 1
	t=$((t + 1))
done
check_eq "no block is shared any more (the partial copy was reclaimed)" \
	"$(dd_pool_field ddt-pool 5)" 0
check_eq "mapped blocks: $N again" "$(dd_pool_field ddt-pool 4)" $N
check_eq "data used: $N" "$(dd_pool_data_used ddt-pool)" $N
check "the id 2 can be used again" dmsetup message ddt-pool 0 create_volume 2
ok_all=1
i=0
while [ $i -lt $N ]; do
	a=$(dd if=$O bs=4096 skip=$((i * 508)) count=1 iflag=direct 2>/dev/null | sha256sum)
	b=$(dd if="$DD_TMP/blocks" bs=4096 skip=$i count=1 2>/dev/null | sha256sum)
	[ "$a" = "$b" ] || ok_all=0
	i=$((i + 1))
done
check_eq "the origin reads back all $N blocks" $ok_all 1
check "volume removed" dmsetup remove ddt-origin
check "pool removed" dmsetup remove ddt-pool
check "the metadata checks clean" dd_check_metadata "$meta"
check "no WARN/BUG/oops in the kernel log" dd_kernel_clean_since "$DD_TEST.start"
finish
