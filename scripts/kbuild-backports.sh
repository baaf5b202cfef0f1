#!/bin/bash
# Build dm-dedup against Debian's bookworm-backports kernel headers (6.12), to keep
# dd-kcompat.h honest (every kernel-API difference must compile on both kernels) and for
# the 6.12 test guest: the module lands in build/kbuild-612/kernel/, the kernel's ABI in
# build/kver-6.12 (make test-6.12, scripts/lib/guest-kernel.sh).
#   scripts/kbuild-backports.sh          (root; installs the headers once, then builds)
#   scripts/kbuild-backports.sh --plan   print what it would install and apt's simulation
#                                        of it; install and build nothing
# The backports suite is added with the mirror URI read from the existing apt
# sources at run time.  Zero warnings required, as for the 6.1 build.
#
# What it installs: exactly the packages of the plan (scripts/lib/backports-plan.sh), each
# as `pkg=version`, with `apt-get install --no-install-recommends` and no `-t`:
#   linux-headers-6.12.N+deb12-amd64   the versioned headers the backports
#                                      linux-headers-amd64 names
#   linux-headers-6.12.N+deb12-common, linux-kbuild-6.12.N+deb12,
#   linux-image-6.12.N+deb12-amd64     what the headers depend on (the image too: the
#                                      headers depend on it)
#   anything else they need that is not installed yet (pahole), at its candidate version
# It never moves the meta-packages linux-image-amd64 and linux-headers-amd64: they keep
# naming the 6.1 kernel the test guest boots (scripts/deps.sh reads its ABI from them).
# (`apt-get install -t bookworm-backports <headers>` did move them: apt upgrades every
# installed binary of the image's source package to its candidate, and -t makes the
# candidates backports'.)  Before installing, apt simulates the install (-s) and the
# script refuses, printing what apt would do, if that would install, upgrade or remove a
# meta-package, remove anything, or install anything outside the plan.  After, it checks
# that `dpkg-query -W linux-image-amd64 linux-headers-amd64` (version, status) did not
# change, and fails with one line saying how to restore them if it did.
# On a machine that boots from GRUB the new 6.12 image gets a boot entry all the same.
# Works as root without a terminal or stdin (CI).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export DEBIAN_FRONTEND=noninteractive
# shellcheck source=scripts/lib/backports-plan.sh
. "$ROOT/scripts/lib/backports-plan.sh"

mode=build
case "${1:-}" in
"") ;;
--plan) mode=plan ;;
*) echo "usage: $0 [--plan]" >&2; exit 2 ;;
esac
LOGS=$ROOT/build/logs
mkdir -p "$LOGS"

src=/etc/apt/sources.list.d/dd-backports.sources
if ! grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
	[ "$(id -u)" -eq 0 ] || { bp_err "bookworm-backports is not in the apt sources, and adding it needs root"; exit 1; }
	uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
	[ -n "$uri" ] || uri=$(awk '$1 == "deb" && $3 ~ /^bookworm$/ {print $2; exit}' /etc/apt/sources.list)
	[ -n "$uri" ] || { bp_err "cannot find the Debian mirror in the apt sources"; exit 1; }
	printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
		"$uri" >"$src"
	apt-get update -qq </dev/null
fi

# A machine where the old `-t bookworm-backports` install ran: say so (the guest tests
# would boot 6.12), but leave the choice to whoever runs this.
moved=$(bp_meta_in_suite)
if [ -n "$moved" ]; then
	bp_err "warning: meta-packages already at a $BP_SUITE version:" \
		"$(awk '{printf "%s%s %s", (NR > 1 ? ", " : ""), $1, $2}' <<<"$moved")" \
		"(make test would use that kernel; to go back: apt-get install --allow-downgrades" \
		"$(awk '$3 != "-" {printf "%s%s=%s", (NR > 1 ? " " : ""), $1, $3}' <<<"$moved"))"
fi

if [ $mode = plan ]; then
	bp_plan_checked "$LOGS/backports-plan.txt" "$LOGS/backports-sim.txt" || exit 1
	echo "kbuild-backports: plan (apt-get install ${BP_APT_OPTS[*]}):"
	sed 's/^/  /' "$LOGS/backports-plan.txt"
	echo "kbuild-backports: the simulation would do:"
	grep -E '^(Inst|Remv|Purg) ' "$LOGS/backports-sim.txt" | sed 's/^/  /' || echo "  nothing (all installed)"
	echo "kbuild-backports: meta-packages untouched by the plan: $(bp_meta_state | paste -sd',' | sed 's/,/, /g')"
	exit 0
fi

if ! ls -d /usr/src/linux-headers-6.12*-amd64 >/dev/null 2>&1; then
	[ "$(id -u)" -eq 0 ] || { bp_err "installing the 6.12 headers needs root"; exit 1; }
	planf=$LOGS/backports-plan.txt
	before=$(bp_meta_state)
	bp_plan_checked "$planf" "$LOGS/backports-sim.txt" || exit 1
	args=()
	while read -r p v; do args+=("$p=$v"); done <"$planf"
	echo "kbuild-backports: installing ${args[*]}"
	rc=0
	apt-get install -y -q "${BP_APT_OPTS[@]}" \
		-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
		"${args[@]}" </dev/null >"$LOGS/backports-install.log" 2>&1 || rc=$?
	[ $rc = 0 ] || tail -n 30 "$LOGS/backports-install.log" >&2
	# Checked even after a failed install: part of it may have been done.
	after=$(bp_meta_state)
	if ! moved=$(bp_meta_moved "$before" "$after"); then
		restore=$(awk '$2 != "-" {printf " %s=%s", $1, $2}' <<<"$before")
		bp_err "FAILED: the meta-packages moved ($moved); restore them with: apt-get install --allow-downgrades$restore"
		exit 1
	fi
	[ $rc = 0 ] || { bp_err "apt-get install failed (exit $rc; log: ${LOGS#"$ROOT"/}/backports-install.log)"; exit 1; }
	while read -r p v; do
		[ "$(bp_q_installed "$p")" = "$v" ] || { bp_err "$p $v is not installed after apt-get install"; exit 1; }
	done <"$planf"
	echo "kbuild-backports: installed; meta-packages unchanged: $(paste -sd',' <<<"$after" | sed 's/,/, /g')"
fi
hdr=$(ls -d /usr/src/linux-headers-6.12*-amd64 | sort -V | tail -n1)
echo "kbuild-backports: building against $hdr"
out=$ROOT/build/kbuild-612
rm -rf "$out"
mkdir -p "$out"
cp -a "$ROOT/kernel" "$ROOT/engine" "$out/"
rm -f "$out"/kernel/*.o "$out"/engine/*.o
ln -s "$ROOT/include" "$out/include"
log=$LOGS/kbuild-612.log
make -C "$hdr" M="$out/kernel" modules >"$log" 2>&1 || { cat "$log"; exit 1; }
if grep -E '(warning|error):' "$log"; then
	echo "kbuild-backports: warnings" >&2
	exit 1
fi
# The ABI of the kernel the 6.12 test guest boots (scripts/lib/guest-kernel.sh).
abi=${hdr##*/linux-headers-}
for f in "/boot/vmlinuz-$abi" "/lib/modules/$abi/modules.dep"; do
	[ -e "$f" ] || { bp_err "$f is missing: the 6.12 image does not match the headers $abi"; exit 1; }
done
[ "$(cat "$ROOT/build/kver-6.12" 2>/dev/null || true)" = "$abi" ] || echo "$abi" >"$ROOT/build/kver-6.12"
echo "kbuild-backports: dm-dedup.ko built for $(basename "$hdr") with no warnings"
