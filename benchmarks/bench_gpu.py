"""Benchmark: the CUDA back end (``backend = "cuda"``) against the Numba CPU kernel, in the same run.

Workloads (plasticity on, synthetic input, no recording):

  (a) GLE 32-750x3-12 speech-shaped network at batch 256: the circuit of
      scenarios/gle_speech_shaped.toml (float32, Adam on every projection, cross-entropy output, the
      bias unit of its [[stimuli]]), with Ornstein-Uhlenbeck input and one-hot targets held 40 steps;
  (b) LE 784-300-100-10 at batch 128: the circuit of scenarios/le_mnist_784_300_100_10.toml (its
      MNIST files are not needed) with random "images" and one-hot targets held 10 steps each.

For each: steps/s of backend numba and of backend cuda after a warm-up run (compilation), their
ratio, and the largest deviation of the weights after the same steps from the same start (on a GPU
the products use fused multiply-adds and libdevice's exp/tanh, and the CPU kernel sums large products
through BLAS: the deviation is rounding, relative to the weights' size).

    python benchmarks/bench_gpu.py [--quick] [--only a,b]

Without a CUDA GPU (or without numba-cuda) it prints why to stderr and exits with status 2.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def gle_speech_prog(batch=256):
    import microcircuit as mc
    from microcircuit.scenario.build import build_stimuli
    from microcircuit.stimuli import ArrayStimulus, OrnsteinUhlenbeck
    sc = mc.load_scenario(ROOT / "scenarios" / "gle_speech_shaped.toml")
    sim = sc.simulation
    rng = np.random.default_rng(0)
    targets = np.eye(12)[rng.integers(0, 12, (16, batch))].transpose(0, 2, 1)     # (samples, 12, batch)
    stim = list(build_stimuli(sc)) + [
        OrnsteinUhlenbeck("input", sigma=1.0, tau=1.0, seed=1),
        ArrayStimulus("output", targets, hold_steps=40, repeat=True, kind="target")]
    return mc.compile(sc.circuit(), dt=sim["dt"], batch=batch, scheme=sim.get("scheme", "synchronous"),
                      dtype=sim.get("dtype", "float64"), seed=sim.get("seed", 0), stimuli=stim)


def le_mnist_prog(batch=128):
    import microcircuit as mc
    from microcircuit.scenario.build import build_stimuli
    from microcircuit.stimuli import ArrayStimulus
    sc = mc.load_scenario(ROOT / "scenarios" / "le_mnist_784_300_100_10.toml")
    sim = sc.simulation
    rng = np.random.default_rng(1)
    n = 32
    stim = list(build_stimuli(sc)) + [
        ArrayStimulus("input", rng.random((n, 784, batch)), hold_steps=10, repeat=True),
        ArrayStimulus("output", np.eye(10)[rng.integers(0, 10, (n, batch))].transpose(0, 2, 1), hold_steps=10,
                      repeat=True, kind="target")]
    return mc.compile(sc.circuit(), dt=sim["dt"], batch=batch, scheme=sim.get("scheme", "synchronous"),
                      dtype=sim.get("dtype", "float64"), seed=sim.get("seed", 0), stimuli=stim)


def steps_per_second(prog, backend, steps, chunk, warm):
    from microcircuit.simulation import Simulation
    sim = Simulation(prog, backend=backend, chunk_steps=chunk)
    t0 = time.perf_counter()
    sim.run(steps=warm)                    # compilation (cuda: every kernel; numba: the cache load)
    t_warm = time.perf_counter() - t0
    t0 = time.perf_counter()
    sim.run(steps=steps)
    return steps / (time.perf_counter() - t0), t_warm


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer steps (noisier numbers)")
    ap.add_argument("--only", default="", help="workloads to run, e.g. a or a,b (default: all)")
    args = ap.parse_args(argv)
    from microcircuit.cuda_backend import cuda_problem
    why = cuda_problem()
    if why:
        print(f"bench_gpu: {why}", file=sys.stderr)
        return 2
    from numba import cuda
    dev = cuda.get_current_device()
    name = dev.name.decode() if isinstance(dev.name, bytes) else dev.name
    print(f"GPU: {name} (compute capability {dev.compute_capability}); CPU cores: {os.cpu_count()}")
    q = 0.25 if args.quick else 1.0
    only = {w.strip() for w in args.only.split(",") if w.strip()}
    cases = [  # key, label, program, numba steps, cuda steps, chunk
        ("a", "(a) GLE 32-750x3-12 speech b256", gle_speech_prog, int(40 * q), int(400 * q), 200),
        ("b", "(b) LE 784-300-100-10 b128", le_mnist_prog, int(100 * q), int(1000 * q), 500),
    ]
    print(f"{'workload':<36}{'dtype':>8}{'numba st/s':>12}{'cuda st/s':>12}{'ratio':>9}{'cuda warm-up s':>16}"
          f"{'max |dW|':>11}{'max |W|':>10}")
    for key, label, fn, n_nb, n_cu, chunk in cases:
        if only and key not in only:
            continue
        nb, _ = steps_per_second(fn(), "numba", max(n_nb, 4), chunk, warm=4)
        cu, warm = steps_per_second(fn(), "cuda", max(n_cu, 10), chunk, warm=10)
        # agreement: the same steps from the same start on both back ends
        pa, pb = fn(), fn()
        k = max(n_nb // 2, 4)
        from microcircuit.simulation import Simulation
        Simulation(pa, backend="numba", chunk_steps=chunk).run(steps=k)
        Simulation(pb, backend="cuda", chunk_steps=chunk).run(steps=k)
        dw = float(np.max(np.abs(pa.weights.astype(float) - pb.weights.astype(float))))
        print(f"{label:<36}{str(pa.dtype):>8}{nb:>12.1f}{cu:>12.1f}{cu / nb:>8.1f}x{warm:>16.1f}"
              f"{dw:>11.2e}{float(np.max(np.abs(pa.weights))):>10.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
