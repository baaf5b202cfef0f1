#!/bin/bash
# tests/vm/oom-reports.awk takes out of a kernel log only the lines of an OOM-killer
# report's stack dump that the harness would take for trouble ("Call Trace:", "RIP:"),
# and nothing else: a WARN printed inside a report, a Call Trace after it or without
# one, and a dump that never ends (past 80 lines) still show; the killed task's own
# page-fault failure is excused, another task's or a kernel allocation's is not.  Run
# with the host's awk
# and with busybox awk (the guest's), when there is one.  The report is a real one, from
# a guest of the test harness (oom-reports/report.txt).
#
#   tests/scripts/test-oom-reports.sh        exit status 0 if every case passed
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
FILTER=$ROOT/tests/vm/oom-reports.awk
REPORT=$ROOT/tests/scripts/oom-reports/report.txt
# The OOM killer's victim failing a page fault while it dies (a 6.12 guest's log).
VICTIM=$ROOT/tests/scripts/oom-reports/victim-alloc-failure.txt
KPAT='WARNING: CPU|WARNING: at |BUG: |kernel BUG at|Oops|Call Trace|Kernel panic|general protection fault|UBSAN:|KASAN:|list_(add|del) corruption|blocked for more than [0-9]+ seconds|RIP: [0-9]{4}:'
n=0
failed=0

# case NAME WANT INPUT_FILE: the trouble lines left after the filter must be WANT.
case_is() {
	local got
	n=$((n + 1))
	got=$($AWK -f "$FILTER" "$3" | grep -aE "$KPAT" | sed 's/^\[ *[0-9.]*\] //')
	if [ "$got" = "$2" ]; then
		echo "ok $n - $AWK: $1"
	else
		echo "not ok $n - $AWK: $1"
		echo "# want: $(echo "$2" | tr '\n' '|')"
		echo "# got:  $(echo "$got" | tr '\n' '|')"
		failed=$((failed + 1))
	fi
}

t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
warn='[   20.000001] WARNING: CPU: 1 PID: 7 at kernel/x.c:1 f+0x1/0x2'
trace='[   20.000002] Call Trace:'

# The canned report has trouble lines to take out (else the first case proves nothing).
if [ "$(grep -cE "$KPAT" "$REPORT")" -lt 2 ]; then
	echo "not ok 1 - the canned report holds a Call Trace and a RIP line"
	exit 1
fi
cp "$REPORT" "$t/plain"
{ sed -n '1,12p' "$REPORT"; echo "$warn"; sed -n '13,$p' "$REPORT"; } >"$t/inside"
{ cat "$REPORT"; echo "$warn"; echo "$trace"; echo '[   20.000003] RIP: 0010:f+0x1/0x2'; } >"$t/after"
{ echo "$trace"; echo '[   20.000003] RIP: 0010:f+0x1/0x2'; } >"$t/alone"
{ sed -n '1,4p' "$REPORT"; for i in $(seq 100); do echo "[   20.1] frame$i+0x1/0x2"; done
  echo "$trace"; } >"$t/endless"
# The victim's user-memory failure, then the same failure by another task, and a kernel
# allocation (GFP_NOIO) by the victim.
cp "$VICTIM" "$t/victim"
sed 's/dd_memhog: page allocation failure/kworker\/1:2: page allocation failure/' "$VICTIM" >"$t/other"
sed 's/(GFP_HIGHUSER_MOVABLE|__GFP_COMP|__GFP_ZERO)/(GFP_NOIO)/' "$VICTIM" >"$t/noio"
# Another task of the same name (another PID).
sed 's/ PID: 402 Comm: dd_memhog/ PID: 499 Comm: dd_memhog/' "$VICTIM" >"$t/samename"

awks=(awk)
command -v busybox >/dev/null && awks+=("busybox awk")
for AWK in "${awks[@]}"; do
	case_is "a report alone leaves nothing" "" "$t/plain"
	n=$((n + 1))
	if [ "$($AWK -f "$FILTER" "$t/plain" | wc -l)" -eq $(($(wc -l <"$t/plain") - 2)) ]; then
		echo "ok $n - $AWK: only its Call Trace and RIP lines are taken out"
	else
		echo "not ok $n - $AWK: it took out $(($(wc -l <"$t/plain") - $($AWK -f "$FILTER" "$t/plain" | wc -l))) lines, not 2"
		failed=$((failed + 1))
	fi
	case_is "a WARN inside a report shows" "${warn#*] }" "$t/inside"
	case_is "a WARN after a report shows, with its trace" \
		"$(printf '%s\n%s\n%s' "${warn#*] }" 'Call Trace:' 'RIP: 0010:f+0x1/0x2')" "$t/after"
	case_is "a trace without a report shows" \
		"$(printf '%s\n%s' 'Call Trace:' 'RIP: 0010:f+0x1/0x2')" "$t/alone"
	case_is "a dump without its end stops being excused after 80 lines" "Call Trace:" "$t/endless"
	case_is "the killed task failing a page fault of its own is excused" "" "$t/victim"
	case_is "a page allocation failure of another task shows" \
		"$(printf '%s\n%s' 'Call Trace:' 'RIP: 0033:0x7fd1bb1de54a')" "$t/other"
	case_is "a kernel allocation failure (GFP_NOIO) of the killed task shows" \
		"$(printf '%s\n%s' 'Call Trace:' 'RIP: 0033:0x7fd1bb1de54a')" "$t/noio"
	case_is "a page allocation failure of another task with the killed one's name shows" \
		"$(printf '%s\n%s' 'Call Trace:' 'RIP: 0033:0x7fd1bb1de54a')" "$t/samename"
done
echo "# $n cases, $failed failed"
[ "$failed" -eq 0 ]
