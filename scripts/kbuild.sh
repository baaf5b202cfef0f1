#!/bin/bash
# Build an out-of-tree kernel module against Debian's guest kernel headers and fail on
# any warning.
#   scripts/kbuild.sh [--w1|--sparse|--clean] <module dir>
#     (default)  rebuild from clean with the default flags; any compiler or modpost
#                warning fails the build
#     --w1       the same with W=1 (extra warnings)
#     --sparse   check every source with sparse (C=2); warnings in our own files
#                (kernel/, engine/, include/, tests/) fail, those inside kernel headers are shown
#     --clean    remove the build products
# The kernel ABI comes from build/kver, written by scripts/deps.sh.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mode=default
case "${1:-}" in
--w1 | --sparse | --clean) mode=${1#--}; shift ;;
esac
[ $# -eq 1 ] || { echo "usage: $0 [--w1|--sparse|--clean] <module dir>" >&2; exit 2; }
dir=$(cd "$1" && pwd)
name=$(basename "$dir")

[ "${DD_DEPS_DONE:-0}" = 1 ] || "$ROOT/scripts/deps.sh"
K=$(cat "$ROOT/build/kver")
KDIR=/lib/modules/$K/build
kmake=(make -C "$KDIR" M="$dir" DD_KSRC="$ROOT/build/ksrc")

if [ "$mode" = clean ]; then
	"${kmake[@]}" clean >/dev/null
	[ "$name" != kernel ] || rm -f "$ROOT"/engine/*.o "$ROOT"/engine/.*.o.cmd
	exit 0
fi

mkdir -p "$ROOT/build/logs"
# One build at a time per module directory (kbuild writes into it).
exec 9>"$ROOT/build/.kbuild-$name.lock"
flock 9
log=$ROOT/build/logs/kbuild-$name-$mode.log
# A cached object would hide its warnings: always compile from clean.
"${kmake[@]}" clean >/dev/null
# The module compiles the engine from ../engine (kernel/Kbuild), whose objects
# kbuild's clean of this directory does not reach.
if [ "$name" = kernel ]; then
	rm -f "$ROOT"/engine/*.o "$ROOT"/engine/.*.o.cmd
fi
rc=0
case "$mode" in
default) "${kmake[@]}" modules >"$log" 2>&1 || rc=$? ;;
w1) "${kmake[@]}" W=1 modules >"$log" 2>&1 || rc=$? ;;
sparse) "${kmake[@]}" C=2 CHECK=sparse modules >"$log" 2>&1 || rc=$? ;;
esac
# The full log is shown when the build fails (or with DD_VERBOSE=1).
if [ "$rc" -ne 0 ] || [ "${DD_VERBOSE:-0}" = 1 ]; then
	cat "$log"
fi

if [ "$rc" -ne 0 ]; then
	echo "kbuild: $name: build failed (make exit $rc)" >&2
	exit 1
fi
if [ "$mode" = sparse ]; then
	own=$(grep -E "^$ROOT/(kernel|engine|include|tests)/[^:]*:[0-9]+:([0-9]+:)? *(warning|error):" "$log" || true)
	if [ -n "$own" ]; then
		echo "kbuild: $name: sparse warnings in our files:" >&2
		echo "$own" >&2
		exit 1
	fi
	echo "kbuild: $name: sparse clean"
	exit 0
fi
warn=$(grep -E '(warning|error|WARNING|ERROR)( [a-z]+)?:' "$log" || true)
if [ -n "$warn" ]; then
	cat "$log"
	echo "kbuild: $name: warnings ($mode flags):" >&2
	echo "$warn" >&2
	exit 1
fi
echo "kbuild: $name: built with no warnings ($mode flags)"
