#!/bin/bash
# Build dm-dedup against Debian's bookworm-backports kernel headers (6.12), to keep
# dd-kcompat.h honest: every kernel-API difference must compile on both kernels.
#   scripts/kbuild-backports.sh      (root; installs the headers once)
# The backports suite is added with the mirror URI read from the existing apt
# sources at run time.  Zero warnings required, as for the 6.1 build.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export DEBIAN_FRONTEND=noninteractive

src=/etc/apt/sources.list.d/dd-backports.sources
if ! grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
	uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
	[ -n "$uri" ] || uri=$(awk '$1 == "deb" && $3 ~ /^bookworm$/ {print $2; exit}' /etc/apt/sources.list)
	[ -n "$uri" ] || { echo "kbuild-backports: cannot find the Debian mirror in the apt sources" >&2; exit 1; }
	printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
		"$uri" >"$src"
	apt-get update -qq
fi
if ! ls -d /usr/src/linux-headers-6.12*-amd64 >/dev/null 2>&1; then
	# The versioned package only: the meta-packages must keep naming the 6.1
	# kernel the test guest boots (scripts/deps.sh reads them).
	pkg=$(apt-cache -t bookworm-backports show linux-headers-amd64 | awk -F': ' '/^Depends:/ {print $2; exit}' |
		tr ',' '\n' | sed -n 's/^ *\(linux-headers-6\.12[^ ]*-amd64\).*/\1/p' | head -n1)
	[ -n "$pkg" ] || { echo "kbuild-backports: no 6.12 headers in bookworm-backports" >&2; exit 1; }
	apt-get install -y -qq -t bookworm-backports "$pkg" >/dev/null
fi
hdr=$(ls -d /usr/src/linux-headers-6.12*-amd64 | sort -V | tail -n1)
echo "kbuild-backports: building against $hdr"
out=$ROOT/build/kbuild-612
rm -rf "$out"
mkdir -p "$out"
cp -a "$ROOT/dm-dedup" "$out/"
rm -f "$out"/dm-dedup/*.o "$out"/dm-dedup/kernel/*.o
ln -s "$ROOT/include" "$out/include"
log=$ROOT/build/logs/kbuild-612.log
mkdir -p "$ROOT/build/logs"
make -C "$hdr" M="$out/dm-dedup" modules >"$log" 2>&1 || { cat "$log"; exit 1; }
if grep -E '(warning|error):' "$log"; then
	echo "kbuild-backports: warnings" >&2
	exit 1
fi
echo "kbuild-backports: dm-dedup.ko built for $(basename "$hdr") with no warnings"
