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
#
# The task the OOM killer killed may then fail a page allocation of its own user memory
# while it dies: "<comm>: page allocation failure: ... mode:...(GFP_HIGHUSER...)" with a
# stack dump.  That dump is excused the same way, but only for the task named by the
# last "Killed process PID (comm)" line (name, and PID on the dump's "CPU:" line) and
# only for user memory (GFP_HIGHUSER): an
# allocation failure of any other task, or of kernel memory (GFP_NOIO, GFP_KERNEL,
# ...), shows.
{
	msg = $0
	sub(/^\[ *[0-9]+\.[0-9]+\] /, "", msg)
	if (match(msg, /Killed process [0-9]+ \([^)]*\)/)) {
		killed = substr(msg, RSTART, RLENGTH)
		sub(/^Killed process /, "", killed)
		killed_pid = killed
		sub(/ .*/, "", killed_pid)
		sub(/^[0-9]+ \(/, "", killed)
		sub(/\)$/, "", killed)
	}
	if (pending) {
		# The dump's "CPU: ... PID: N Comm: ..." line: the killed task itself?
		pending = 0
		if (index(msg, " PID: " killed_pid " ") > 0)
			dump = 80
	}
	if (msg ~ /invoked oom-killer: /) {
		dump = 80
	} else if (killed != "" && msg ~ /GFP_HIGHUSER/ &&
		   index(msg, killed ": page allocation failure: ") == 1) {
		pending = 1
	} else if (dump > 0) {
		dump--
		if (msg ~ /^ *<\/TASK>/)
			dump = 0
		else if (msg ~ /^Call Trace:/ || msg ~ /^RIP: [0-9][0-9][0-9][0-9]:/)
			next
	}
	print
}
