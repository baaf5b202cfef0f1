#!/bin/sh
# A filesystem on a volume: mkfs.ext4, a file tree written, unmounted, e2fsck -fn
# clean; the pool and volume are removed and recreated, and the tree's checksums are
# identical after mounting again.
# vm: timeout=400 smp=1
. "$(dirname "$0")/lib.sh"

dd_mark "$DD_TEST.start"
dd_load_module || die "dm-dedup does not load"
meta=$(dd_loop 16M) && data=$(dd_loop 512M) || die "cannot set up loop devices"
SZ=786432 # 384 MiB
V=/dev/mapper/ddt-fs
check "pool is created" dd_pool_create ddt-pool "$meta" "$data"
check "volume is created" dd_volume_create ddt-pool 1 ddt-fs $SZ
check "mkfs.ext4" mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 $V
mkdir -p /mnt/fs
check "mount" mount -t ext4 $V /mnt/fs
tree() { (cd /mnt/fs && find . -type f | sort | xargs sha256sum) | sha256sum | cut -d' ' -f1; }
check "a file tree is copied in (/usr/lib/modules, /usr/bin)" \
	sh -c 'cp -a /lib/modules /mnt/fs/ && mkdir -p /mnt/fs/bin && cp -a /usr/bin/. /mnt/fs/bin/'
check "some random files" sh -c '
	for i in 1 2 3 4 5 6 7 8; do
		head -c $((i * 777777)) /dev/urandom >/mnt/fs/rand$i || exit 1
	done'
sum1=$(tree)
log "tree sum $sum1"
check "unmount" umount /mnt/fs
check "e2fsck -fn is clean" e2fsck -fn $V
log "pool: $(dmsetup status ddt-pool)"
check "volume is removed" dmsetup remove ddt-fs
check "pool is removed" dmsetup remove ddt-pool
check "the metadata checks clean" dd_check_metadata "$meta"
check "pool is recreated" dd_pool_create ddt-pool "$meta" "$data"
check "volume is reactivated" dd_volume_activate ddt-pool 1 ddt-fs $SZ
check "e2fsck -fn is clean after the reload" e2fsck -fn $V
check "mount again" mount -t ext4 $V /mnt/fs
check_eq "the tree is identical" "$(tree)" "$sum1"
check "unmount" umount /mnt/fs
check "volume is removed" dmsetup remove ddt-fs
check "pool is removed" dmsetup remove ddt-pool
check "the metadata checks clean" dd_check_metadata "$meta"
check "no WARN/BUG/oops in the kernel log" dd_kernel_clean_since "$DD_TEST.start"
finish
