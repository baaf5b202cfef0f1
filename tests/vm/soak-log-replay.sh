#!/bin/sh
# The long crash replay of `make soak`: tests/vm/39-log-replay.sh with 40 rounds of
# workload (about 1,800 flush and FUA entries), every 4th of them and every mark checked
# through the kernel, new writes and a metadata check after them at every 5th point;
# make soak then checks every point on the host through the userspace engine
# (tests/scripts/replay-engine.sh).
# vm: timeout=5400 disks=1 disk_size=8G
DD_REPLAY_ROUNDS=${DD_REPLAY_ROUNDS:-40}
DD_REPLAY_STRIDE=${DD_REPLAY_STRIDE:-4}
DD_REPLAY_FULL=${DD_REPLAY_FULL:-5}
. "$(dirname "$0")/39-log-replay.sh"
