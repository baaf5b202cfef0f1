# The kernel a test guest boots, chosen by DD_GUEST (sourced by scripts/vm/run.sh and
# scripts/vm/build-initramfs.sh; ROOT must be set).
#   DD_GUEST unset or 6.1   Debian's 6.1, the kernel of linux-image-amd64 (ABI in
#                           build/kver, written by scripts/deps.sh), with kernel/dm-dedup.ko
#   DD_GUEST=6.12           bookworm-backports' 6.12 (ABI in build/kver-6.12, written by
#                           scripts/kbuild-backports.sh, which installs it at pinned
#                           versions), with build/kbuild-612/kernel/dm-dedup.ko
# Sets GUEST_NAME, GUEST_K (the ABI), GUEST_KO (our module), GUEST_WARN_KO (the harness
# self-test module, 6.1 only: empty otherwise), GUEST_INITRD and GUEST_OUT (the directory
# that holds build/vm/out-style results).  Fails with one line on an unknown DD_GUEST or
# a missing ABI file.

guest_kernel_select() {
	GUEST_NAME=${DD_GUEST:-6.1}
	case "$GUEST_NAME" in
	6.1)
		GUEST_KVER_FILE=$ROOT/build/kver
		GUEST_KO=$ROOT/kernel/dm-dedup.ko
		GUEST_WARN_KO=$ROOT/tests/vm/selftest-warn/dd_selftest_warn.ko
		GUEST_INITRD=$ROOT/build/vm/initramfs.cpio
		GUEST_OUT=$ROOT/build/vm/out
		;;
	6.12)
		GUEST_KVER_FILE=$ROOT/build/kver-6.12
		GUEST_KO=$ROOT/build/kbuild-612/kernel/dm-dedup.ko
		GUEST_WARN_KO=
		GUEST_INITRD=$ROOT/build/vm/initramfs-6.12.cpio
		GUEST_OUT=$ROOT/build/vm/out-6.12
		;;
	*)
		echo "DD_GUEST=$GUEST_NAME: unknown guest kernel (6.1 or 6.12)" >&2
		return 1
		;;
	esac
	if [ ! -s "$GUEST_KVER_FILE" ]; then
		echo "guest $GUEST_NAME: ${GUEST_KVER_FILE#"$ROOT"/} is missing (run $([ "$GUEST_NAME" = 6.1 ] && echo scripts/deps.sh || echo 'make module-backports'))" >&2
		return 1
	fi
	GUEST_K=$(cat "$GUEST_KVER_FILE")
}
