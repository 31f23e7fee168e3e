"""Benchmark: one run on every core — steps/s of the same program with BLAS limited to 1 thread and to
every usable core ([simulation] threads), measured back to back in this process, and their ratio.

Workloads (plasticity on): LE 784-300-100-10 at batch 128 and the GLE speech-shaped network
32-750x3-12 at batch 256 (the shapes of issue 18), plus LE 784-300-100-10 and the Bars microcircuit
9-30-3 at batch 1, where ``threads = 0`` keeps one thread (below 2^20 multiply-adds per product; the
Bars products never reach BLAS): these rows check that choice. Results are equal bit for bit
(tests/test_threads.py). Run on a quiet machine:

    python benchmarks/bench_threads.py [--quick]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np  # noqa: E402

import bench_roofline as br  # noqa: E402
from microcircuit.simulation import Simulation, blas_threads  # noqa: E402


def gle_prog(batch):
    import microcircuit as mc
    from microcircuit.gle import gle_layered
    from microcircuit.stimuli import OrnsteinUhlenbeck
    pl = {"rule": "error", "eta": 1e-3}
    layers = [dict(size=750, tau_m=1.0, tau_r=0.5, activation="tanh", plasticity=pl) for _ in range(3)]
    layers.append(dict(size=12, tau_m=1.0, tau_r=0.5, activation="linear", loss="rate", beta=0.1, plasticity=pl))
    stim = [OrnsteinUhlenbeck("input", sigma=1.0, tau=1.0, seed=1, size=batch),
            OrnsteinUhlenbeck("output", kind="target", sigma=0.5, tau=5.0, seed=2, size=batch)]
    return mc.compile(gle_layered(32, layers), dt=0.05, batch=batch, stimuli=stim, seed=0)


def rate(make, threads, steps, reps):
    best = 0.0
    for _ in range(reps):
        sim = Simulation(make(), chunk_steps=steps, threads=threads)
        sim.run(steps=2)                       # compile / warm caches outside the timing
        t0 = time.perf_counter()
        sim.run(steps=steps)
        best = max(best, steps / (time.perf_counter() - t0))
    return best


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args(argv)
    cores = len(os.sched_getaffinity(0))
    work = [("LE 784-300-100-10, batch 128", lambda: br.le_prog(128), 40 if a.quick else 200),
            ("GLE 32-750x3-12, batch 256", lambda: gle_prog(256), 10 if a.quick else 60),
            ("LE 784-300-100-10, batch 1", lambda: br.le_prog(1), 2000 if a.quick else 20000),
            ("Bars 9-30-3 microcircuit, batch 1", br.bars_prog, 20000 if a.quick else 200000)]
    reps = 2 if a.quick else 3
    print(f"{cores} usable cores; load average before: {os.getloadavg()[0]:.2f}")
    print("| workload | threads=0 picks | 1 thread (steps/s) | all cores (steps/s) | ratio |")
    print("|---|---|---|---|---|")
    for name, make, steps in work:
        auto = blas_threads(make(), 0)
        r1, rn = [], []
        for _ in range(reps):        # interleaved, so drift of the machine hits both alike
            r1.append(rate(make, 1, steps, 1))
            rn.append(rate(make, cores, steps, 1))
        print(f"| {name} | {auto} | {max(r1):.1f} | {max(rn):.1f} | {max(rn) / max(r1):.2f}x |", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
