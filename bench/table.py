#!/usr/bin/env python3
"""Turns rep,workload,device,value rows into medians and per-repetition ratios.

Values are IOPS, except for workloads ending in -us (latencies in microseconds,
lower is better); the ratios are dedup/linear and thin/linear either way."""
import csv
import statistics
import sys
from collections import defaultdict

rows = list(csv.reader(open(sys.argv[1])))
iops = defaultdict(dict)  # (workload, rep) -> device -> iops
for rep, wl, dev, v in rows:
    iops[(wl, int(rep))][dev] = float(v)

workloads = []
for (wl, _rep) in iops:
    if wl not in workloads:
        workloads.append(wl)

def spread(xs):
    return f"{min(xs):.2f}-{max(xs):.2f}"

print(f"{'workload':16} {'unit':>4} {'linear':>9} {'dedup':>9} {'thin':>9}"
      f" {'dedup/linear':>13} {'spread':>11} {'thin/linear':>12} {'spread':>11}  reps")
for wl in workloads:
    reps = sorted(r for (w, r) in iops if w == wl)
    lin = [iops[(wl, r)]['linear'] for r in reps]
    ded = [iops[(wl, r)]['dedup'] for r in reps]
    thn = [iops[(wl, r)]['thin'] for r in reps]
    rd = [d / l for d, l in zip(ded, lin)]
    rt = [t / l for t, l in zip(thn, lin)]
    unit = "us" if wl.endswith("-us") else "IOPS"
    print(f"{wl:16} {unit:>4} {statistics.median(lin):9.0f} {statistics.median(ded):9.0f}"
          f" {statistics.median(thn):9.0f} {statistics.median(rd):13.2f} {spread(rd):>11}"
          f" {statistics.median(rt):12.2f} {spread(rt):>11}  {len(reps)}")
