#!/bin/bash
# make install / make uninstall into a staging root (DESTDIR), then what DKMS would do
# with the installed module sources.  One TAP line per check.
#   - every tool, man page, the systemd unit and the module sources with dkms.conf
#     are where mk/install.mk says, the tools run, the man pages format without a
#     warning, the unit names the installed dedupctl and passes systemd-analyze verify
#     (its man: link resolved in the staged man pages), also as enabled, pulled in by
#     local-fs-pre.target, without an ordering cycle
#   - the module builds from the installed sources alone (dkms.conf's MAKE line, run
#     against this host's headers for the guest kernel) and carries the alias that
#     lets device-mapper load it for a "dedup-pool" table
#   - dkms.conf's version is the targets' version
#   - make uninstall leaves no file behind
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
T=$(mktemp -d /tmp/dd-install.XXXXXX)
trap 'rm -rf "$T"' EXIT
n=0 failed=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
notok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $*"; }
check() { local d=$1; shift; if "$@" >"$T/out" 2>&1; then ok "$d"; else notok "$d"; sed 's/^/#   /' "$T/out" | head -20; fi; }

M=(make --no-print-directory -s)
STAGE=$T/root
VER=$(sed -n 's/^DD_VERSION := //p' mk/install.mk)
check "make install DESTDIR=... PREFIX=/usr DKMS=0" "${M[@]}" install DESTDIR="$STAGE" PREFIX=/usr DKMS=0
for t in dedupctl dedup_check dedup_dump; do
	check "$t installed in /usr/sbin and runs (--help)" "$STAGE/usr/sbin/$t" --help
	check "$t.8 installed and formats without a warning" \
		bash -c "[ -f '$STAGE/usr/share/man/man8/$t.8' ] && ! groff -man -Tutf8 -ww -z '$STAGE/usr/share/man/man8/$t.8' 2>&1 | grep ."
done
unit=$STAGE/lib/systemd/system/dedupctl.service
check "the unit starts /usr/sbin/dedupctl activate --all and stops with deactivate --all" \
	bash -c "grep -qx 'ExecStart=/usr/sbin/dedupctl activate --all' '$unit' && grep -qx 'ExecStop=/usr/sbin/dedupctl deactivate --all' '$unit'"
# systemd-analyze verify wants the programs the unit runs to exist: a copy of the
# unit that names the staged dedupctl.
if command -v systemd-analyze >/dev/null; then
	sed "s|/usr/sbin/dedupctl|$STAGE/usr/sbin/dedupctl|" "$unit" >"$T/dedupctl.service"
	check "systemd-analyze verify accepts the unit" \
		bash -c "MANPATH='$STAGE/usr/share/man' systemd-analyze verify '$T/dedupctl.service' 2>&1 | grep -v 'lvm2-\\|udev-settle' | { ! grep .; }"
	# Enabled, it is pulled in by local-fs-pre.target (WantedBy): no ordering cycle then.
	mkdir -p "$T/enabled"
	sed '/^\[Unit\]/a Wants=local-fs-pre.target' "$T/dedupctl.service" >"$T/enabled/dedupctl.service"
	check "enabled (pulled in by local-fs-pre.target), it makes no ordering cycle" \
		bash -c "MANPATH='$STAGE/usr/share/man' systemd-analyze verify '$T/enabled/dedupctl.service' 2>&1 | { ! grep -i cycle; }"
fi
src=$STAGE/usr/src/dm-dedup-$VER
check "dkms.conf and the module sources in /usr/src/dm-dedup-$VER" \
	bash -c "[ -f '$src/dkms.conf' ] && [ -f '$src/kernel/Kbuild' ] && [ -f '$src/engine/engine.mk' ] && [ -f '$src/include/dm-dedup/format.h' ]"
check "dkms.conf's version is the targets' version ($VER)" \
	bash -c "grep -qx 'PACKAGE_VERSION=\"$VER\"' '$src/dkms.conf' && grep -q '\\.version = {$(echo "$VER" | sed 's/\./, /g')}' kernel/dm-dedup-target.c"
# What dkms does: copy the tree to its build directory, run MAKE[0] there.
kver=$(cat build/kver 2>/dev/null || uname -r)
if [ -d "/lib/modules/$kver/build" ]; then
	dkms_tree=$T/dkms
	mkdir -p "$dkms_tree/dm-dedup/$VER"
	cp -a "$src" "$dkms_tree/dm-dedup/$VER/build"
	mk=$(kernel_source_dir=/lib/modules/$kver/build dkms_tree=$dkms_tree bash -c \
		". '$src/dkms.conf'; echo \"\${MAKE[0]}\"")
	check "the module builds from the installed sources alone (dkms.conf's MAKE[0], $kver)" \
		bash -c "$mk && [ -f '$dkms_tree/dm-dedup/$VER/build/kernel/dm-dedup.ko' ]"
	check "the module is named dm-dedup and aliased dm-dedup-pool (a table loads it)" \
		bash -c "modinfo -F alias '$dkms_tree/dm-dedup/$VER/build/kernel/dm-dedup.ko' | grep -qx dm-dedup-pool && modinfo -F name '$dkms_tree/dm-dedup/$VER/build/kernel/dm-dedup.ko' | grep -qx dm_dedup"
else
	notok "no headers for $kver: the module's build from the installed sources is not checked"
fi
check "make uninstall" "${M[@]}" uninstall DESTDIR="$STAGE" PREFIX=/usr
check "nothing is left behind" bash -c "! find '$STAGE' -type f | grep ."
echo "# test-install: $n checks, $failed failed"
[ "$failed" = 0 ]
