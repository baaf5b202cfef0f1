#!/bin/sh
# The long crash replay of `make soak`: tests/vm/39-log-replay.sh with 25 rounds of
# workload, every flush and FUA entry of the log checked, new writes and a metadata
# check after them at every 5th point.
# vm: timeout=5400 disks=1 disk_size=8G
DD_REPLAY_ROUNDS=${DD_REPLAY_ROUNDS:-25}
DD_REPLAY_STRIDE=${DD_REPLAY_STRIDE:-1}
DD_REPLAY_FULL=${DD_REPLAY_FULL:-5}
. "$(dirname "$0")/39-log-replay.sh"
