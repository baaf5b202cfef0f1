#!/bin/bash
# Tests of the package plan behind `make module-backports` (scripts/lib/backports-plan.sh):
# it installs the versioned 6.12 headers and what they need at pinned versions, and never
# moves the meta-packages linux-image-amd64 / linux-headers-amd64.
#   tests/scripts/test-backports-pin.sh          offline, on canned apt output recorded on
#                                                a Debian 12 machine (backports-pin/); well
#                                                under a second; part of `make test`
#   tests/scripts/test-backports-pin.sh --live   also against this machine's apt cache,
#                                                in simulation only (apt-get -s; installs
#                                                nothing; needs bookworm-backports in the
#                                                apt sources, else its tests are skipped)
# TAP output; exit status 1 if a test failed.
# The checks are eval strings: they expand when they run.
# shellcheck disable=SC2016,SC2034,SC2001
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DATA=$ROOT/tests/scripts/backports-pin
live=0
[ "${1:-}" = --live ] && live=1
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

N=0
FAILS=0
ok() { N=$((N + 1)); echo "ok $N - $*"; }
notok() { N=$((N + 1)); FAILS=$((FAILS + 1)); echo "not ok $N - $*"; }
skip() { N=$((N + 1)); echo "ok $N - $1 # SKIP $2"; }
# check NAME CMD...: one test
check() {
	local name=$1
	shift
	if "$@"; then ok "$name"; else notok "$name"; fi
}
# same WANT GOT: equal, else show both
same() {
	[ "$1" = "$2" ] && return 0
	echo "# want:"
	sed 's/^/#   /' <<<"$1"
	echo "# got:"
	sed 's/^/#   /' <<<"$2"
	return 1
}

# shellcheck source=scripts/lib/backports-plan.sh
. "$ROOT/scripts/lib/backports-plan.sh"

# --- the canned apt: the queries read backports-pin/ ------------------------------------
# FAKE_* name the files (or hold the text) each query reads; a test changes them.
FAKE_PACKAGES=$DATA/packages.txt
FAKE_STATUS=$(cat "$DATA/status.txt")
FAKE_PROVIDES='' # "virtual provider" lines
FAKE_SIM=$DATA/sim-pinned.txt
canned() {
	bp_q_madison() {
		awk -F'|' -v p="$1" '{ n = $1; gsub(/ /, "", n); if (n == p) print }' "$DATA/madison.txt"
	}
	bp_q_show() {
		awk -v p="$1" -v v="$2" 'BEGIN { RS = "" } index($0, "Package: " p "\n") == 1 && index($0 "\n", "\nVersion: " v "\n") { print; print ""; exit }' "$FAKE_PACKAGES"
	}
	bp_q_candidate() { awk -v p="$1" '$1 == p {print $2; exit}' "$DATA/candidates.txt"; }
	bp_q_installed() { awk -v p="$1" '$1 == p && $3 ~ /^[hi]i/ {print $2; exit}' <<<"$FAKE_STATUS"; }
	bp_q_providers() { awk -v p="$1" '$1 == p {print $2}' <<<"$FAKE_PROVIDES"; }
	bp_q_meta_state() {
		local p
		for p in "${BP_META[@]}"; do
			awk -v p="$p" '$1 == p {print; f = 1} END { if (!f) print p " - not-installed" }' <<<"$FAKE_STATUS"
		done
	}
	bp_q_simulate() { cat "$FAKE_SIM"; }
}
canned

A=6.12.95+deb12
V=6.12.95-1~bpo12+1
PLAN="linux-headers-$A-amd64 $V
linux-headers-$A-common $V
linux-image-$A-amd64 $V
linux-kbuild-$A $V
pahole 1.24-4.1"

echo "# offline: canned apt output from $DATA"

# --- parsing ---------------------------------------------------------------------------
check "madison: the bookworm-backports version of linux-headers-amd64" \
	same "$V" "$(bp_q_madison linux-headers-amd64 | bp_suite_versions linux-headers-amd64 bookworm-backports)"
check "madison: suite 'bookworm' is not bookworm-backports nor bookworm-security" \
	same "6.1.176-1" "$(bp_q_madison linux-headers-amd64 | bp_suite_versions linux-headers-amd64 bookworm)"

want_clauses="linux-base >= 4.12~
linux-headers-$A-common = $V
linux-image-$A-amd64 = $V|linux-image-$A-amd64-unsigned = $V
linux-kbuild-$A
gcc-12"
check "clauses: the 6.12 headers' Depends, alternatives kept" \
	same "$want_clauses" "$(bp_q_show "linux-headers-$A-amd64" "$V" | bp_clauses)"
check "clauses: Pre-Depends read, epochs kept, architecture qualifiers dropped" \
	same "linux-base >= 4.12~
python3 >= 3.11|libbpf1 >= 1:1.0.0
kmod" "$(printf 'Package: x\nPre-Depends: linux-base (>= 4.12~)\nDepends: python3:any (>= 3.11) | libbpf1 (>= 1:1.0.0), kmod\n\nPackage: y\nDepends: z\n' | bp_clauses)"

# --- the plan ---------------------------------------------------------------------------
check "plan: versioned headers, -common, the image they depend on, kbuild, pahole; nothing installed" \
	same "$PLAN" "$(bp_plan 2>&1)"
out=$(bp_plan 2>&1)
check "plan: names no meta-package" eval '! grep -qE "^linux-(image|headers)-amd64 " <<<"$out"'

saved=$FAKE_STATUS
FAKE_STATUS+=$'\n'"linux-image-$A-amd64-unsigned $V ii"
check "plan: an installed unsigned image satisfies the image alternative" \
	same "$(grep -v "^linux-image-" <<<"$PLAN")" "$(bp_plan 2>&1)"
FAKE_STATUS=$saved$'\n'"pahole 1.24-4.1 ii"
check "plan: an installed dependency (pahole) is left out" \
	same "$(grep -v "^pahole " <<<"$PLAN")" "$(bp_plan 2>&1)"
FAKE_STATUS=$(grep -v '^linux-base ' <<<"$saved")$'\n'"linux-base 4.11 ii"
check "plan: an installed version too old for '>= 4.12~' is upgraded to the candidate" \
	same "$(sed "1a linux-base 4.12.1~deb12u1" <<<"$PLAN")" "$(bp_plan 2>&1)"
FAKE_STATUS=$saved

sed "s/^Depends: libc6 (>= 2.34), libelf1/Depends: linux-headers-amd64 (= $V), libc6 (>= 2.34), libelf1/" \
	"$DATA/packages.txt" >"$TMP/packages-meta.txt"
FAKE_PACKAGES=$TMP/packages-meta.txt
out=$(bp_plan 2>&1)
rc=$?
check "plan: refused when a dependency pulls in the backports linux-headers-amd64" \
	eval '[ $rc != 0 ] && grep -q "meta-package linux-headers-amd64 $V.*refusing" <<<"$out"'
FAKE_PACKAGES=$DATA/packages.txt

out=$(BP_SUITE=bullseye-backports bp_plan 2>&1)
rc=$?
check "plan: a readable failure when the suite has no headers" \
	eval '[ $rc != 0 ] && [ "$(wc -l <<<"$out")" = 1 ] && grep -q "^kbuild-backports: no linux-headers-amd64 in bullseye-backports" <<<"$out"'

# --- the simulation check -----------------------------------------------------------------
check "simulation: the pinned install (recorded apt-get -s) is accepted" \
	bp_sim_check "$PLAN" <"$DATA/sim-pinned.txt"
out=$(bp_sim_check "$PLAN" <"$DATA/sim-target-release.txt")
rc=$?
check "simulation: the old '-t bookworm-backports' install (recorded apt-get -s) is refused" \
	eval '[ $rc != 0 ] &&
		grep -qxF "meta-package linux-image-amd64 would be upgraded from 6.1.192-3 to $V" <<<"$out" &&
		grep -qxF "meta-package linux-headers-amd64 would be upgraded from 6.1.192-3 to $V" <<<"$out" &&
		grep -q "^linux-libc-dev would be upgraded .* not in the plan" <<<"$out"'
out=$(printf 'Remv linux-image-amd64 [6.1.192-3]\n' | bp_sim_check "$PLAN")
rc=$?
check "simulation: removing a meta-package is refused" \
	eval '[ $rc != 0 ] && [ "$out" = "meta-package linux-image-amd64 would be removed" ]'
out=$(printf 'Remv linux-perf [6.1.192-3]\nPurg foo [1]\n' | bp_sim_check "$PLAN")
rc=$?
check "simulation: removing anything is refused" \
	eval '[ $rc != 0 ] && [ "$(wc -l <<<"$out")" = 2 ]'
out=$(printf 'Inst linux-image-amd64 (6.1.192-3 Debian:12.15/oldstable [amd64])\n' | bp_sim_check "$PLAN")
rc=$?
check "simulation: installing a meta-package (even at 6.1) is refused" \
	eval '[ $rc != 0 ] && [ "$out" = "meta-package linux-image-amd64 would be installed at 6.1.192-3" ]'
out=$(sed 's/^pahole 1.24-4.1$/pahole 1.24-4/' <<<"$PLAN")
out=$(bp_sim_check "$out" <"$DATA/sim-pinned.txt")
rc=$?
check "simulation: a version other than the plan's is refused" \
	eval '[ $rc != 0 ] && [ "$out" = "pahole would be installed at 1.24-4.1, the plan says 1.24-4" ]'
out=$(grep -v '^pahole' <<<"$PLAN")
out=$(bp_sim_check "$out" <"$DATA/sim-pinned.txt")
rc=$?
check "simulation: a package outside the plan is refused" \
	eval '[ $rc != 0 ] && [ "$out" = "pahole would be installed at 1.24-4.1, but it is not in the plan" ]'

FAKE_SIM=$DATA/sim-target-release.txt
bp_plan_checked "$TMP/plan" "$TMP/sim" 2>"$TMP/err"
rc=$?
check "plan_checked: refuses a simulation that moves the meta-packages, shows apt's Inst lines, ends with one line" \
	eval '[ $rc != 0 ] && grep -qF "  Inst linux-image-amd64 [6.1.192-3]" "$TMP/err" &&
		[ "$(grep -c "^kbuild-backports: " "$TMP/err")" = 1 ] &&
		tail -n1 "$TMP/err" | grep -q "^kbuild-backports: refusing: .*meta-package linux-image-amd64 would be upgraded"'
FAKE_SIM=$DATA/sim-pinned.txt
check "plan_checked: accepts the pinned simulation, writes the plan" \
	eval 'bp_plan_checked "$TMP/plan" "$TMP/sim" && [ "$(cat "$TMP/plan")" = "$PLAN" ]'

# --- did the meta-packages move? -----------------------------------------------------------
before=$(bp_meta_state)
check "meta state: both meta-packages, version and status" \
	same "linux-image-amd64 6.1.192-3 ii
linux-headers-amd64 6.1.192-3 ii" "$before"
check "meta moved: no change, no output" eval '[ -z "$(bp_meta_moved "$before" "$before")" ] && bp_meta_moved "$before" "$before"'
FAKE_STATUS=$(sed "s/^linux-image-amd64 6.1.192-3 ii/linux-image-amd64 $V ii/" <<<"$saved")
out=$(bp_meta_moved "$before" "$(bp_meta_state)")
rc=$?
check "meta moved: an upgrade of linux-image-amd64 is one line" \
	eval '[ $rc != 0 ] && [ "$out" = "linux-image-amd64 6.1.192-3 ii -> $V ii" ]'
FAKE_STATUS=$(sed "s/^linux-headers-amd64 6.1.192-3 ii/linux-headers-amd64 6.1.192-3 rc/" <<<"$saved")
out=$(bp_meta_moved "$before" "$(bp_meta_state)")
rc=$?
check "meta moved: a removed linux-headers-amd64 (status rc) counts" \
	eval '[ $rc != 0 ] && [ "$out" = "linux-headers-amd64 6.1.192-3 ii -> 6.1.192-3 rc" ]'
FAKE_STATUS=$(grep -v '^linux-headers-amd64 ' <<<"$saved")
out=$(bp_meta_moved "$before" "$(bp_meta_state)")
rc=$?
check "meta moved: a purged linux-headers-amd64 counts" \
	eval '[ $rc != 0 ] && [ "$out" = "linux-headers-amd64 6.1.192-3 ii -> - not-installed" ]'
FAKE_STATUS=$saved
check "meta in suite: none at a bookworm-backports version" eval '[ -z "$(bp_meta_in_suite)" ]'
FAKE_STATUS=$(sed "s/^linux-headers-amd64 6.1.192-3 ii/linux-headers-amd64 $V ii/" <<<"$saved")
check "meta in suite: linux-headers-amd64 moved by an earlier -t install is found" \
	same "linux-headers-amd64 $V 6.1.192-3" "$(bp_meta_in_suite)"
FAKE_STATUS=$saved

# --- live: this machine's apt cache, simulation only ---------------------------------------
if [ $live = 1 ]; then
	echo "# live: this machine's apt cache (apt-get -s only)"
	# the real queries again
	. "$ROOT/scripts/lib/backports-plan.sh"
	if [ -z "$(bp_q_madison linux-headers-amd64 | bp_suite_versions linux-headers-amd64 "$BP_SUITE")" ]; then
		for t in "the plan" "its simulation moves no meta-package" "the old -t approach would move them" \
			"the meta-packages name the 6.1 kernel"; do
			skip "live: $t" "no $BP_SUITE in the apt cache (make module-backports-plan, as root, adds it)"
		done
	else
		bp_plan_checked "$TMP/live-plan" "$TMP/live-sim" 2>"$TMP/live-err"
		rc=$?
		sed 's/^/# /' "$TMP/live-plan" "$TMP/live-err"
		check "live: the plan is checked (bp_plan_checked) and starts with the 6.12 headers" \
			eval '[ $rc = 0 ] && head -n1 "$TMP/live-plan" | grep -qE "^linux-headers-6\.12[^ ]*-amd64 "'
		# independent of bp_sim_check: no Inst/Remv/Purg line of the real simulation
		# names a meta-package
		meta_re='^(Inst|Remv|Purg) linux-(image|headers)-amd64 '
		grep -E "$meta_re" "$TMP/live-sim" | sed 's/^/# plan simulation: /'
		check "live: apt-get -s of the plan installs/removes no meta-package" \
			eval '[ -s "$TMP/live-sim" ] && ! grep -qE "$meta_re" "$TMP/live-sim"'
		# The old command.  Once the 6.12 packages are installed it has nothing to do;
		# reinstalling them with -t shows the same hazard.
		read -r hdr hdrv <"$TMP/live-plan"
		old=(apt-get install -s -t "$BP_SUITE" "$hdr")
		if [ -n "$(bp_q_installed "$hdr")" ]; then
			img=$(bp_q_show "$hdr" "$hdrv" | bp_clauses | sed -n 's/^\(linux-image-[^ |]*\).*/\1/p' | head -n1)
			old=(apt-get install -s -t "$BP_SUITE" --reinstall "$hdr" ${img:+"$img"})
		fi
		echo "# old approach: ${old[*]}"
		"${old[@]}" </dev/null >"$TMP/old-sim" 2>&1
		grep -E "$meta_re" "$TMP/old-sim" | sed 's/^/# old approach: /'
		check "live: the old approach (-t $BP_SUITE) would move the meta-packages, and is refused" \
			eval 'grep -qE "$meta_re" "$TMP/old-sim" &&
				! bp_sim_check "$(cat "$TMP/live-plan")" <"$TMP/old-sim" >"$TMP/old-refused" &&
				grep -q "^meta-package linux-image-amd64 would be upgraded" "$TMP/old-refused"'
		img=$(dpkg-query -W -f='${Depends}' linux-image-amd64 2>/dev/null)
		hd=$(dpkg-query -W -f='${Depends}' linux-headers-amd64 2>/dev/null)
		echo "# linux-image-amd64 depends on: $img; linux-headers-amd64 on: $hd"
		check "live: the installed meta-packages name the 6.1 kernel" \
			eval '[[ $img == linux-image-6.1.* ]] && [[ $hd == linux-headers-6.1.* ]]'
	fi
fi

echo "1..$N"
[ "$FAILS" = 0 ]
