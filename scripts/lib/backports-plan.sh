# shellcheck shell=bash
# The decisions behind scripts/kbuild-backports.sh, kept apart from the apt calls so that
# tests/scripts/test-backports-pin.sh can run them on canned apt output.  Sourced, not run.
#
#   bp_q_*            the only functions that ask apt or dpkg; a test redefines them
#   bp_plan           the exact "package version" list to install: the versioned headers
#                     the bookworm-backports linux-headers-amd64 names, and what they need
#                     that is not installed yet, each at one exact version
#   bp_sim_check      reads `apt-get install -s` output: refuses if it would install,
#                     upgrade or remove a meta-package, remove anything, or install
#                     anything outside the plan or at another version than the plan's
#   bp_plan_checked   both: the plan, apt's simulation of it, the verdict
#   bp_meta_state     the meta-packages' "name version status" lines (dpkg-query)
#   bp_meta_moved     compares two bp_meta_state outputs, one line if they differ
#   bp_meta_in_suite  the meta-packages already at a bookworm-backports version
#
# Messages go to stderr prefixed "kbuild-backports: ".

BP_SUITE=${BP_SUITE:-bookworm-backports}
# The meta-packages scripts/deps.sh reads the guest kernel's ABI from: never moved.
BP_META=(linux-image-amd64 linux-headers-amd64)
# apt options of both the simulation and the real install.  Never -t: with the target
# release at priority 990 apt's "upgrade all binaries of a source package" (apt >= 2.5)
# upgrades linux-image-amd64 and linux-headers-amd64 with the versioned image they share
# a source package with.  Pinned versions keep their candidates at bookworm's; the
# option below says the same once more.
# shellcheck disable=SC2034 # used by scripts/kbuild-backports.sh
BP_APT_OPTS=(--no-install-recommends -o APT::Get::Upgrade-By-Source-Package=false)

bp_err() { printf 'kbuild-backports: %s\n' "$*" >&2; }

# --- queries (the test replaces these) ---------------------------------------------------
# apt-cache madison PKG
bp_q_madison() { apt-cache madison "$1" 2>/dev/null </dev/null || true; }
# apt-cache show PKG=VERSION
bp_q_show() { apt-cache show "$1=$2" 2>/dev/null </dev/null || true; }
# the candidate version, or nothing
bp_q_candidate() {
	apt-cache policy "$1" 2>/dev/null </dev/null | awk '$1 == "Candidate:" && $2 != "(none)" {print $2; exit}'
}
# the installed version (dpkg status "ii", or "hi" if held), or nothing
bp_q_installed() {
	dpkg-query -W -f='${db:Status-Abbrev} ${Version}\n' "$1" 2>/dev/null | awk '$1 ~ /^[hi]i/ {print $2; exit}'
}
# installed packages that provide the virtual package $1, one a line
bp_q_providers() {
	dpkg-query -W -f='${db:Status-Abbrev}|${Package}|${Provides}\n' 2>/dev/null |
		awk -F'|' -v want="$1" '$1 ~ /^[hi]i/ {
			n = split($3, p, /, */)
			for (i = 1; i <= n; i++) { sub(/ .*/, "", p[i]); if (p[i] == want) { print $2; break } }
		}'
}
# apt-get's simulation of installing "$@" (pkg=version words) with BP_APT_OPTS; its
# exit status is apt-get's
bp_q_simulate() { apt-get install -s "${BP_APT_OPTS[@]}" "$@" </dev/null 2>&1; }
# "name version status" of each meta-package ("name - not-installed" if dpkg has none)
bp_q_meta_state() {
	local p s
	for p in "${BP_META[@]}"; do
		s=$(dpkg-query -W -f='${Version} ${db:Status-Abbrev}' "$p" 2>/dev/null || true)
		s=${s%% }
		echo "$p ${s:-- not-installed}"
	done
}
bp_meta_state() { bp_q_meta_state; }

# --- decisions ---------------------------------------------------------------------------
bp_is_meta() {
	local m
	for m in "${BP_META[@]}"; do [ "$1" = "$m" ] && return 0; done
	return 1
}

# stdin: `apt-cache madison` output.  Prints the versions of package $1 that suite $2
# offers, in madison's order (newest first).
bp_suite_versions() {
	awk -F'|' -v pkg="$1" -v suite="$2" '{
		for (i = 1; i <= 3; i++) gsub(/^ +| +$/, "", $i)
		if ($1 == pkg && index(" " $3, " " suite "/")) print $2
	}'
}

# stdin: `apt-cache show` output (the first stanza is used).  Prints its Pre-Depends and
# Depends, one clause a line, alternatives separated by "|", each "name" or
# "name op version" (architecture qualifiers dropped).
bp_clauses() {
	local line clause alt out sep
	local -a clauses alts
	while IFS= read -r line; do
		[ -n "$line" ] || break
		case "$line" in
		Pre-Depends:* | Depends:*) ;;
		*) continue ;;
		esac
		line=${line#*:}
		IFS=',' read -ra clauses <<<"$line"
		for clause in "${clauses[@]}"; do
			IFS='|' read -ra alts <<<"$clause"
			out='' sep=''
			for alt in "${alts[@]}"; do
				if [[ $alt =~ ^[[:space:]]*([^[:space:]\(]+)[[:space:]]*(\(([<>=]+)[[:space:]]*([^\)[:space:]]+)[[:space:]]*\))? ]]; then
					out+="$sep${BASH_REMATCH[1]%%:*}"
					[ -z "${BASH_REMATCH[3]}" ] || out+=" ${BASH_REMATCH[3]} ${BASH_REMATCH[4]}"
					sep='|'
				fi
			done
			[ -z "$out" ] || echo "$out"
		done
	done
}

# bp_version_ok HAVE [OP WANT]: does version HAVE satisfy "OP WANT" (no OP: any version)?
bp_version_ok() {
	[ -n "$1" ] || return 1
	[ -n "${2:-}" ] || return 0
	dpkg --compare-versions "$1" "$2" "$3"
}

# The plan being built: parallel arrays, filled by bp_plan.
BP_PLAN_NAMES=()
BP_PLAN_VERS=()

# bp_alt_done NAME [OP VER]: installed, provided (unversioned only) or already planned?
bp_alt_done() {
	local i
	bp_version_ok "$(bp_q_installed "$1")" "${2:-}" "${3:-}" && return 0
	[ -z "${2:-}" ] && [ -n "$(bp_q_providers "$1")" ] && return 0
	for i in "${!BP_PLAN_NAMES[@]}"; do
		[ "${BP_PLAN_NAMES[i]}" = "$1" ] && bp_version_ok "${BP_PLAN_VERS[i]}" "${2:-}" "${3:-}" && return 0
	done
	return 1
}

# bp_pick NAME [OP VER]: the version to install: the candidate if it satisfies, else the
# newest version $BP_SUITE offers that does.  Nothing if neither.
bp_pick() {
	local v
	v=$(bp_q_candidate "$1")
	if bp_version_ok "$v" "${2:-}" "${3:-}"; then
		echo "$v"
		return 0
	fi
	while IFS= read -r v; do
		if bp_version_ok "$v" "${2:-}" "${3:-}"; then
			echo "$v"
			return 0
		fi
	done < <(bp_q_madison "$1" | bp_suite_versions "$1" "$BP_SUITE")
	return 1
}

# Prints the plan, "name version" a line, the versioned headers package first.  Fails
# (one message) if the suite has no headers, a dependency cannot be met, or the plan
# would name a meta-package.
bp_plan() {
	local mv clause name op ver i p v alt found
	local -a alts f
	BP_PLAN_NAMES=()
	BP_PLAN_VERS=()
	mv=$(bp_q_madison linux-headers-amd64 | bp_suite_versions linux-headers-amd64 "$BP_SUITE" | head -n1)
	if [ -z "$mv" ]; then
		bp_err "no linux-headers-amd64 in $BP_SUITE (is the suite in the apt sources, and has apt-get update run?)"
		return 1
	fi
	# The meta-package's own dependency names the versioned headers package.
	clause=$(bp_q_show linux-headers-amd64 "$mv" | bp_clauses | grep -E '^linux-headers-[0-9]' | head -n1 || true)
	read -r name op ver <<<"${clause%%|*}"
	if [ -z "$name" ]; then
		bp_err "linux-headers-amd64 $mv in $BP_SUITE names no versioned headers package"
		return 1
	fi
	v=$(bp_pick "$name" "${op:-}" "${ver:-}") || {
		bp_err "no installable version of $name ${op:-} ${ver:-}"
		return 1
	}
	BP_PLAN_NAMES=("$name")
	BP_PLAN_VERS=("$v")
	i=0
	while [ "$i" -lt "${#BP_PLAN_NAMES[@]}" ]; do
		p=${BP_PLAN_NAMES[i]}
		v=${BP_PLAN_VERS[i]}
		if bp_is_meta "$p"; then
			bp_err "the plan would install the meta-package $p $v (needed by ${BP_PLAN_NAMES[0]}): refusing"
			return 1
		fi
		while IFS= read -r clause; do
			IFS='|' read -ra alts <<<"$clause"
			found=0
			for alt in "${alts[@]}"; do
				read -ra f <<<"$alt"
				if bp_alt_done "${f[@]}"; then
					found=1
					break
				fi
			done
			[ $found = 0 ] || continue
			for alt in "${alts[@]}"; do
				read -ra f <<<"$alt"
				if ver=$(bp_pick "${f[@]}"); then
					BP_PLAN_NAMES+=("${f[0]}")
					BP_PLAN_VERS+=("$ver")
					found=1
					break
				fi
			done
			if [ $found = 0 ]; then
				bp_err "cannot satisfy '$clause' (needed by $p $v)"
				return 1
			fi
		done < <(bp_q_show "$p" "$v" | bp_clauses)
		i=$((i + 1))
	done
	for i in "${!BP_PLAN_NAMES[@]}"; do
		echo "${BP_PLAN_NAMES[i]} ${BP_PLAN_VERS[i]}"
	done
}

# bp_sim_check PLAN < simulation: PLAN is bp_plan's output.  Prints one line per thing
# the simulation would do that the plan does not allow and fails if there is any.
bp_sim_check() {
	local plan=$1 op name rest old new want what bad=0
	while read -r op name rest; do
		case "$op" in
		Inst)
			old='' new=''
			if [[ $rest =~ ^\[([^]]*)\] ]]; then old=${BASH_REMATCH[1]}; fi
			if [[ $rest =~ \(([^[:space:]\)]+) ]]; then new=${BASH_REMATCH[1]}; fi
			want=$(awk -v n="$name" '$1 == n {print $2; exit}' <<<"$plan")
			if [ -n "$old" ]; then what="upgraded from $old to $new"; else what="installed at $new"; fi
			if bp_is_meta "$name"; then
				echo "meta-package $name would be $what"
				bad=1
			elif [ -z "$want" ]; then
				echo "$name would be $what, but it is not in the plan"
				bad=1
			elif [ "$want" != "$new" ]; then
				echo "$name would be installed at $new, the plan says $want"
				bad=1
			fi
			;;
		Remv | Purg)
			if bp_is_meta "$name"; then
				echo "meta-package $name would be removed"
			else
				echo "$name would be removed"
			fi
			bad=1
			;;
		esac
	done
	[ $bad = 0 ]
}

# bp_meta_moved BEFORE AFTER (bp_meta_state outputs): prints nothing and succeeds if
# they are equal, else one line naming each change.
bp_meta_moved() {
	local before=$1 after=$2 p b a out=''
	[ "$before" != "$after" ] || return 0
	for p in "${BP_META[@]}"; do
		b=$(awk -v n="$p" '$1 == n {$1 = ""; sub(/^ /, ""); print; exit}' <<<"$before")
		a=$(awk -v n="$p" '$1 == n {$1 = ""; sub(/^ /, ""); print; exit}' <<<"$after")
		[ "$b" = "$a" ] || out+="${out:+; }$p ${b:-?} -> ${a:-?}"
	done
	echo "${out:-meta-package state changed}"
	return 1
}

# Prints "name version other" for each meta-package installed at a version $BP_SUITE
# offers (moved by an earlier `apt-get install -t bookworm-backports`, or by hand);
# "other" is the newest version another suite offers ("-" if none): the one to go back to.
bp_meta_in_suite() {
	local m v mad other
	for m in "${BP_META[@]}"; do
		v=$(bp_q_installed "$m")
		[ -n "$v" ] || continue
		mad=$(bp_q_madison "$m")
		grep -qxF -- "$v" < <(bp_suite_versions "$m" "$BP_SUITE" <<<"$mad") || continue
		other=$(awk -F'|' -v pkg="$m" -v suite="$BP_SUITE" '{
			for (i = 1; i <= 3; i++) gsub(/^ +| +$/, "", $i)
			if ($1 == pkg && !index(" " $3, " " suite "/")) { print $2; exit }
		}' <<<"$mad")
		echo "$m $v ${other:--}"
	done
}

# bp_plan_checked PLANFILE SIMFILE: writes the plan and apt's simulation of installing
# it; fails, having printed why (what apt would do, then one line), if there is no plan,
# apt cannot install it or bp_sim_check refuses the simulation.
bp_plan_checked() {
	local planf=$1 simf=$2 p v
	local -a args=()
	bp_plan >"$planf" || return 1
	while read -r p v; do args+=("$p=$v"); done <"$planf"
	if ! bp_q_simulate "${args[@]}" >"$simf"; then
		cat "$simf" >&2
		bp_err "apt-get cannot install the plan: ${args[*]}"
		return 1
	fi
	if ! bp_sim_check "$(cat "$planf")" <"$simf" >"$simf.refused"; then
		echo "apt-get install -s ${args[*]} would do:" >&2
		grep -E '^(Inst|Remv|Purg) ' "$simf" | sed 's/^/  /' >&2
		bp_err "refusing: $(paste -sd';' "$simf.refused" | sed 's/;/; /g')"
		return 1
	fi
}
