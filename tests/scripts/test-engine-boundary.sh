#!/bin/bash
# No file outside engine/ includes engine/dd-internal.h: the kernel glue, the
# tools, the tests and the benchmarks stand on dd-engine.h (and dd-walk.h for
# a read-only look inside the metadata), so the engine's internals can change
# without them.
#
#   tests/scripts/test-engine-boundary.sh [ROOT]    (default: this tree)
#
# Looks at C sources and headers (#include "dd-internal.h", <...>, with any
# path in front) and at the build files (Makefile, *.mk, Kbuild: a forced
# -include).  Proves itself first on a planted tree: the offenders it must
# find, and the files it must let through.  Exit status 0 if the tree is
# clean, 1 with each offender named otherwise.
set -euo pipefail

ROOT=${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}

# offenders DIR: every file outside DIR/engine that includes dd-internal.h.
offenders() {
	local dir=$1
	(
		cd "$dir"
		find . \( -path ./build -o -path ./.git -o -path ./engine \) -prune -o -type f \
			\( -name '*.[ch]' -o -name '*.cc' -o -name '*.cpp' \) -print0 |
			xargs -0 -r grep -lE '^[[:space:]]*#[[:space:]]*include[[:space:]]*["<]([^">]*/)?dd-internal\.h[">]' || true
		find . \( -path ./build -o -path ./.git -o -path ./engine \) -prune -o -type f \
			\( -name Makefile -o -name '*.mk' -o -name Kbuild \) -print0 |
			xargs -0 -r grep -lE 'dd-internal\.h' || true
	) | sed 's|^\./||' | sort
}

# The scan finds what it must, and only that.
self_test() {
	local t want got
	t=$(mktemp -d)
	trap 'rm -rf "$t"' RETURN
	mkdir -p "$t/engine" "$t/tools" "$t/tests/lib" "$t/mk" "$t/build" "$t/kernel"
	echo '#include "dd-internal.h"' >"$t/engine/dd-x.c"			# allowed
	echo '#include "dd-internal.h"' >"$t/build/gen.c"			# build output
	echo '#include "dd-internal.h"' >"$t/tools/bad.c"
	echo '  #  include <../engine/dd-internal.h>' >"$t/tests/lib/bad.h"
	echo 'CFLAGS += -include dd-internal.h' >"$t/mk/bad.mk"
	printf '#include "dd-walk.h"\n/* not dd-internal.h */\n' >"$t/tools/good.c"
	echo '#include "dd-internal-notes.h"' >"$t/kernel/good.c"
	want=$(printf '%s\n' mk/bad.mk tests/lib/bad.h tools/bad.c)
	got=$(offenders "$t")
	if [ "$got" != "$want" ]; then
		echo "not ok 1 - the scan finds exactly the planted includes"
		echo "# wanted: $(echo $want)"
		echo "# got:    $(echo $got)"
		return 1
	fi
	echo "ok 1 - the scan finds exactly the planted includes"
}

rc=0
self_test || rc=1
bad=$(offenders "$ROOT")
if [ -n "$bad" ]; then
	echo "not ok 2 - no file outside engine/ includes dd-internal.h"
	sed 's/^/# includes dd-internal.h: /' <<<"$bad"
	rc=1
else
	echo "ok 2 - no file outside engine/ includes dd-internal.h"
fi
exit $rc
