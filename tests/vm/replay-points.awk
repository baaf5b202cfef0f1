# replay-points.awk: how many points of a dm-log-writes log `dd_logreplay replay --at
# flush --stride STRIDE` hands to tests/vm/replay-point.sh that it must check, from the
# output of `dd_logreplay list LOG`:
#   awk -v stride=N -f replay-points.awk LIST
# dd_logreplay runs the check at every mark and at every STRIDE-th entry with a flush
# or FUA (counted from the first, whatever mark it follows); replay-point.sh checks
# those that follow a mark mK (K a number): not the ones before m1 (the pool being
# made) nor the mark dm-log-writes writes when the log is closed.
/^#/ { next }
$2 ~ /M/ {
	last = $5
	if (last ~ /^m[0-9]+$/)
		n++
	next
}
$2 ~ /[FU]/ {
	if (c++ % stride == 0 && last ~ /^m[0-9]+$/)
		n++
}
END { print n + 0 }
