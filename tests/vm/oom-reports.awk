# oom-reports.awk: a kernel log with the stack dumps of the OOM killer's reports taken
# out, for scripts that provoke the OOM killer on purpose ("# vm: oom=1"; docs/testing.md).
#
#   awk -f oom-reports.awk [LOG]     (lines may carry printk timestamps)
#
# Each OOM-killer report begins with "<comm> invoked oom-killer:" and dumps the stack of
# the task that ran out of memory, which prints "Call Trace:" and, for the page fault
# the task was in, "RIP: 0033:..." (or "RIP: 0010:..." if it faulted inside the kernel),
# the lines the harness otherwise takes for kernel trouble.  Only those two kinds of
# line are dropped, and only inside a report's dump, which ends at its "</TASK>" (at
# most 80 lines on): a WARN, BUG or hung-task line printed in the middle by another CPU
# still shows, and a Call Trace anywhere else too.  Every other line passes unchanged.
{
	msg = $0
	sub(/^\[ *[0-9]+\.[0-9]+\] /, "", msg)
	if (msg ~ /invoked oom-killer: /) {
		dump = 80
	} else if (dump > 0) {
		dump--
		if (msg ~ /^ *<\/TASK>/)
			dump = 0
		else if (msg ~ /^Call Trace:/ || msg ~ /^RIP: [0-9][0-9][0-9][0-9]:/)
			next
	}
	print
}
