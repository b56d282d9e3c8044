#!/usr/bin/env python3
"""Convolution time per training step, from a oneDNN verbose log (ONEDNN_VERBOSE=1).

usage: conv_time.py LOG BATCH

Reads the `onednn_verbose,exec,...` lines one process wrote and prints one JSON object: for every
convolution primitive run on training batches (minibatch BATCH, backward passes present), the
implementation, pass, problem, calls per training step and median milliseconds per call, and their
sum, `conv_ms_per_step`. A training step runs each convolution layer's forward, backward-data
(all but a first layer) and backward-weights once, so the calls per step of a problem are its
backward-weights calls over the training steps the log holds (the steps of its one first-layer
convolution). Medians, since the machines are noisy. bench/conv_time.sh runs it on lockstep and on
the PyTorch peer, which both run oneDNN's convolutions.
"""
import collections
import json
import statistics
import sys


def main() -> int:
    if len(sys.argv) != 3 or sys.argv[1] in ("-h", "--help"):
        print(__doc__.strip().splitlines()[2], file=sys.stderr if len(sys.argv) != 2 else sys.stdout)
        return 0 if len(sys.argv) == 2 else 2
    path, batch = sys.argv[1], sys.argv[2]
    if not batch.isdigit():
        print(f"conv_time.py: BATCH must be a whole number, got {batch!r}", file=sys.stderr)
        return 2
    calls = collections.defaultdict(list)
    try:
        lines = open(path, encoding="utf-8", errors="replace").read().splitlines()
    except OSError as e:
        print(f"conv_time.py: {path}: {e.strerror}", file=sys.stderr)
        return 2
    for line in lines:
        f = line.split(",")
        if len(f) < 10 or f[1] != "exec" or f[3] != "convolution":
            continue
        impl, prop, problem = f[4], f[5], f[-2]
        if not problem.startswith(f"mb{batch}_"):
            continue
        try:
            calls[(impl, prop, problem)].append(float(f[-1]))
        except ValueError:
            continue
    weights = {k: v for k, v in calls.items() if k[1] == "backward_weights"}
    if not weights:
        print(f"conv_time.py: {path}: no backward-weights convolution on batch {batch} (was ONEDNN_VERBOSE=1 set?)",
              file=sys.stderr)
        return 1
    steps = min(len(v) for v in weights.values())  # the first layer's: one call per step
    per_problem = collections.Counter()
    for (impl, prop, problem), v in weights.items():
        per_problem[problem] = round(len(v) / steps)
    rows, total = [], 0.0
    for (impl, prop, problem), v in sorted(calls.items()):
        if prop not in ("forward_training", "backward_data", "backward_weights") or problem not in per_problem:
            continue
        n = per_problem[problem]
        ms = statistics.median(v)
        total += n * ms
        rows.append({"impl": impl, "pass": prop, "problem": problem, "calls_per_step": n, "median_ms": round(ms, 3)})
    print(json.dumps({"steps": steps, "conv_ms_per_step": round(total, 2), "primitives": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
