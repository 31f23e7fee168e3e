"""Benchmark: engine throughput against the machine's own roofline, measured in the same run.

Workloads (plasticity on everywhere):
  (i)   LE 784-300-100-10, batch 1            (error rule, transpose feedback, synchronous)
  (ii)  LE 784-300-100-10, batch 128
  (iii) Bars dendritic microcircuit 9-30-3 with interneurons (Urbanczik-Senn + apical homeostasis), batch 1
  (iv)  GLE 32-750-750-750-12, batch 1 (prospective errors)
  (v)   recording overhead: all variables of (iii) every step, to memory and to Zarr (codecs zstd, lz4,
        none; float64 and float32) vs no recording, measured back to back; the Zarr writer alone

For each: steps/s of the Numba kernel and of the NumPy reference stepper in the same process, their
ratio, synapse updates/s (= steps/s x synapses x batch), and two roofs measured here, now:

* weight-traffic floor (the issue's definition for (i)): a step must read and write every weight at
  least once, so its time is at least 2 x weight bytes / copy bandwidth, with the copy bandwidth
  (bytes read + written per second by ``np.copyto``) measured on an array of the weights' size, i.e.
  the floor is the time of one copy of the weights. ``% floor`` = floor time / step time.
* GEMM roof (for (ii)): per weight matrix a step does the forward ``W r`` and the update ``e r^T``,
  and the backward ``W^T e`` where errors go back (not into an input population); the roof time is
  the sum of NumPy's (BLAS) times for exactly these products at this batch, and
  ``% GEMM`` = roof time / step time.

The LE workloads present random "images" held for 10 steps each (as a dataset protocol does) with
random targets; (iii) and (iv) use Ornstein-Uhlenbeck inputs. If torch is installed, a per-step
PyTorch loop of (i)/(ii) is timed too. Finally, the second-run start-up time of a scenario
(cache=True) in a fresh subprocess.

    python benchmarks/bench_roofline.py [--quick]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

import microcircuit as mc
from microcircuit.simulation import Simulation, Recording
from microcircuit.stimuli import ArrayStimulus, OrnsteinUhlenbeck


# ------------------------------------------------------------------------------- workloads
def le_prog(batch):
    c = mc.layered([784, 300, 100, 10], hidden={"tau_m": 10.0, "activation": "hard_sigmoid"},
                   output={"tau_m": 10.0, "activation": "linear", "loss": "rate", "beta": 0.1}, eta=0.01)
    rng = np.random.default_rng(1)
    n_samples = 64
    stim = [ArrayStimulus("input", rng.random((n_samples, 784, batch)), hold_steps=10, repeat=True),
            ArrayStimulus("output", rng.random((n_samples, 10, batch)), hold_steps=10, repeat=True, kind="target")]
    return mc.compile(c, dt=0.1, batch=batch, stimuli=stim, seed=0)


def bars_prog():
    from microcircuit.microcircuit import dendritic_microcircuit
    c = dendritic_microcircuit((9, 30, 3), preset="bern", latent_equilibrium=True,
                               eta={"up": [0.5, 0.05], "ip": 0.1, "pi": 0.1}, seed=0)
    stim = [OrnsteinUhlenbeck("input", sigma=0.5, tau=5.0, seed=1, mean=0.5),
            OrnsteinUhlenbeck("output", kind="target", sigma=0.3, tau=5.0, seed=2, mean=0.5)]
    return mc.compile(c, dt=0.1, batch=1, stimuli=stim, seed=0)


def gle_prog():
    from microcircuit.gle import gle_layered
    pl = {"rule": "error", "eta": 1e-3}
    layers = [dict(size=750, tau_m=1.0, tau_r=0.5, activation="tanh", plasticity=pl) for _ in range(3)]
    layers.append(dict(size=12, tau_m=1.0, tau_r=0.5, activation="linear", loss="rate", beta=0.1, plasticity=pl))
    c = gle_layered(32, layers)
    stim = [OrnsteinUhlenbeck("input", sigma=1.0, tau=1.0, seed=1),
            OrnsteinUhlenbeck("output", kind="target", sigma=0.5, tau=5.0, seed=2)]
    return mc.compile(c, dt=0.05, batch=1, stimuli=stim, seed=0)


def matrices(prog):
    """(n_post, n_pre) of every plastic/forward weight matrix."""
    out = []
    for p in prog.proj_names:
        shp = tuple(np.shape(prog.weight(p)))
        out.append(shp if len(shp) == 2 else (int(np.prod(shp)), 1))
    return out


def n_synapses(prog):
    return sum(a * b for a, b in matrices(prog))


def steps_per_second(prog_fn, backend, steps, chunk, recordings=(), output=None):
    prog = prog_fn()
    sim = Simulation(prog, backend=backend, chunk_steps=chunk, recordings=recordings, output=output,
                     overwrite=True)
    sim.run(steps=min(steps, 20))  # warm-up (JIT load, caches)
    best = 0.0
    for _ in range(2):
        t0 = time.perf_counter()
        sim.run(steps=steps)
        best = max(best, steps / (time.perf_counter() - t0))
    sim.close()
    return best


# ------------------------------------------------------------------------------- roofline
def _best_time(fn, reps):
    fn()
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        best = min(best, (time.perf_counter() - t0) / reps)
    return best


def gemm_roof_time(prog):
    """Seconds of NumPy's products per weight matrix at this batch: W r and e r^T always, W^T e only
    where the step needs it (the projection sends errors back: not from an input population)."""
    from microcircuit.compile import PJ_FB
    B = prog.batch
    total = 0.0
    for j, (n_post, n_pre) in enumerate(matrices(prog)):
        backward = int(prog.proj_int[j, PJ_FB]) != 0
        rng = np.random.default_rng(0)
        W = rng.standard_normal((n_post, n_pre))
        X = rng.standard_normal((n_pre, B))
        E = rng.standard_normal((n_post, B))
        reps = min(max(3, int(2e7 / max(1, n_post * n_pre * B))), 20000)
        total += _best_time(lambda: W @ X, reps) + _best_time(lambda: E @ X.T, reps)
        if backward:
            total += _best_time(lambda: W.T @ E, reps)
    return total


def copy_time(n_floats):
    """Seconds of one np.copyto of an array of n_floats doubles (read + write every element once)."""
    a = np.random.default_rng(0).standard_normal(max(n_floats, 1))
    b = np.empty_like(a)
    reps = min(max(5, int(5e7 / a.size)), 20000)
    return _best_time(lambda: np.copyto(b, a), reps)


def roofs(prog):
    """(floor time, copy GB/s, GEMM roof time, GEMM GFLOP/s) measured now for this program."""
    nw = n_synapses(prog)
    t_copy = copy_time(nw)
    t_gemm = gemm_roof_time(prog)
    from microcircuit.compile import PJ_FB
    flops = sum((3 if prog.proj_int[j, PJ_FB] else 2) * 2 * a * b * prog.batch
                for j, (a, b) in enumerate(matrices(prog)))
    return t_copy, 2 * 8 * nw / t_copy / 1e9, t_gemm, flops / t_gemm / 1e9


# ------------------------------------------------------------------------------- torch
def torch_steps(batch, steps):
    try:
        import torch
    except ImportError:
        return None
    torch.set_grad_enabled(False)
    sizes = [784, 300, 100, 10]
    Ws = [torch.randn(b, a, dtype=torch.float64) * 0.05 for a, b in zip(sizes[:-1], sizes[1:])]
    us = [torch.zeros(batch, n, dtype=torch.float64) for n in sizes[1:]]
    x = torch.randn(batch, 784, dtype=torch.float64)
    y = torch.randn(batch, 10, dtype=torch.float64)

    def step():
        r = x
        rs = [x]
        for i, W in enumerate(Ws):
            us[i] += 0.01 * (r @ W.T - us[i])
            r = torch.clamp(us[i], 0, 1) if i < 2 else us[i]
            rs.append(r)
        e = 0.1 * (y - rs[-1])
        for i in range(len(Ws) - 1, -1, -1):
            Ws[i] += 1e-3 * e.T @ rs[i] / batch
            if i:
                e = (e @ Ws[i]) * ((us[i - 1] > 0) & (us[i - 1] < 1))
    for _ in range(10):
        step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return steps / (time.perf_counter() - t0)


# ------------------------------------------------------------------------------- compile time
STARTUP = textwrap.dedent("""
    import time; t0 = time.perf_counter()
    import microcircuit
    from microcircuit.scenario import load_scenario
    t1 = time.perf_counter()
    sc = load_scenario({path!r}, ["simulation.duration=1.0"])
    sc.data["output"].pop("path", None)
    sim = sc.build(output=None)
    sim.run(steps=1)
    t2 = time.perf_counter()
    print(f"{{t1 - t0:.3f}} {{t2 - t1:.3f}}")
""")


def startup_times(scenario):
    code = STARTUP.format(path=str(scenario))
    out = []
    for _ in range(2):  # first may compile (if the cache is cold), second must load from cache
        t0 = time.perf_counter()
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        wall = time.perf_counter() - t0
        imp, first = map(float, r.stdout.split())
        out.append((wall, imp, first))
    return out


# ------------------------------------------------------------------------------- main
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer steps (noisier numbers)")
    ap.add_argument("--only", default="", help="comma-separated workloads to run, e.g. i,ii (default: all)")
    args = ap.parse_args(argv)
    only = {w.strip() for w in args.only.split(",") if w.strip()}
    q = 0.25 if args.quick else 1.0
    cases = [  # name, prog_fn, numba steps, numpy steps, chunk
        ("(i) LE 784-300-100-10 b1", lambda: le_prog(1), int(4000 * q), int(400 * q), 1000),
        ("(ii) LE 784-300-100-10 b128", lambda: le_prog(128), int(200 * q), int(40 * q), 100),
        ("(iii) Bars MC 9-30-3 b1", bars_prog, int(100000 * q), int(2000 * q), 5000),
        ("(iv) GLE 32-750x3-12 b1", gle_prog, int(2000 * q), int(200 * q), 500),
    ]
    print(f"cpu cores: {os.cpu_count()}, numpy {np.__version__}")
    hdr = (f"{'workload':<30}{'synapses':>10}{'numba st/s':>12}{'numpy st/s':>12}{'ratio':>8}"
           f"{'syn-upd/s':>11}{'step us':>9}{'floor us':>9}{'% floor':>8}{'copy GB/s':>10}"
           f"{'GEMM us':>9}{'% GEMM':>8}{'GEMM GF/s':>10}")
    print(hdr)
    rows = {}
    for name, fn, n_nb, n_np, chunk in cases:
        if only and name.split(")")[0].strip("(") not in only:
            continue
        prog = fn()
        nw, B = n_synapses(prog), prog.batch
        nb = steps_per_second(fn, "numba", n_nb, chunk)
        npy = steps_per_second(fn, "numpy", max(n_np, 10), chunk)
        t_floor, bw, t_gemm, gf = roofs(prog)
        rows[name] = nb
        t_step = 1.0 / nb
        print(f"{name:<30}{nw * B:>10}{nb:>12.0f}{npy:>12.0f}{nb / npy:>7.1f}x{nb * nw * B:>11.2e}"
              f"{1e6 * t_step:>9.1f}{1e6 * t_floor:>9.1f}{100 * t_floor / t_step:>7.0f}%{bw:>10.1f}"
              f"{1e6 * t_gemm:>9.1f}{100 * t_gemm / t_step:>7.0f}%{gf:>10.1f}")

    if not only or "v" in only:
        _recording_overhead(q)
    if not only or "startup" in only:
        _startup(q, rows, cases)


def _rec_rate(steps, recordings=(), output=None, codec="zstd", reps=2):
    """(best steps/s, CPU us/step) of (iii) over ``reps`` runs of ``steps`` (after a warm-up), with these
    recordings. CPU time is that of the whole process (all threads: kernel, writer, helpers), so it
    counts the work that recording adds even where a loaded machine hides or inflates wall time."""
    sim = Simulation(bars_prog(), chunk_steps=5000, recordings=recordings, output=output, overwrite=True,
                     codec=codec)
    sim.run(steps=20)
    best, cpu = 0.0, float("inf")
    for _ in range(reps):
        t0, c0 = time.perf_counter(), time.process_time()
        sim.run(steps=steps)
        best = max(best, steps / (time.perf_counter() - t0))
        cpu = min(cpu, 1e6 * (time.process_time() - c0) / steps)
    sim.close()
    return best, cpu


def _writer_alone(recs, codec, n_blocks=4):
    """MB/s of ZarrRecorder.append alone (no kernel running) for 5000-step blocks of all variables."""
    sim = Simulation(bars_prog(), chunk_steps=5000, recordings=recs)
    sim.run(steps=5000)
    mem = sim.recorder
    blocks = {k: np.concatenate(v) for k, v in mem.blocks.items()}
    steps = {k: np.concatenate(v) for k, v in mem.steps.items()}
    from microcircuit.recording import ZarrRecorder
    with tempfile.TemporaryDirectory() as d:
        rec = ZarrRecorder(Path(d) / "w.zarr", sim._specs, dt=0.1, chunk_records=None, block_steps=5000,
                           codec=codec)
        rec.append(blocks, steps=steps)
        nbytes = sum(b.size * spec.dtype.itemsize for b, spec in zip(blocks.values(), sim._specs))
        t0 = time.perf_counter()
        for i in range(1, n_blocks + 1):
            rec.append(blocks, steps={k: v + 5000 * i for k, v in steps.items()})
        dt = time.perf_counter() - t0
        rec.close()
    return n_blocks * nbytes / dt / 1e6


def _storage_bandwidth(d, n_files=48, file_mb=4):
    """GB/s of writing fresh files into directory ``d`` (the file system the stores go to): buffered
    (``open().write``) and the recorder's own way (``recording._write_file``: O_DIRECT where allowed)."""
    from microcircuit.recording import _write_buffered, _write_file
    payload = np.random.default_rng(0).random(file_mb * 2**20 // 8)
    out = []
    for name, write in (("buffered", lambda f: _write_buffered(f, payload)), ("recorder", lambda f: _write_file(f, payload))):
        t0 = time.perf_counter()
        for i in range(n_files):
            write(Path(d) / f"{name}{i}.bin")
        out.append(n_files * payload.nbytes / (time.perf_counter() - t0) / 1e9)
        for i in range(n_files):
            (Path(d) / f"{name}{i}.bin").unlink()
    return out


def _recording_overhead(q):
    """(v): every variable of every population of (iii), every step. The rates are measured back to
    back in this process, no recording first and last (its mean is the reference), so that the
    ratios hold even when other jobs load the machine; ``uptime`` is printed with them."""
    from microcircuit.models import get_model
    prog = bars_prog()
    recs = [Recording(p, list(get_model(m).variables)) for p, m in zip(prog.pop_names, prog.pop_models)]
    recs32 = [Recording(r.population, r.variables, dtype="float32") for r in recs]
    n = int(50000 * q)
    n_vals = 0
    sim = Simulation(bars_prog(), recordings=recs)
    for spec in sim._specs:
        n_vals += int(np.prod(spec.record_shape(1)))
    print(f"(v) load average before: {os.getloadavg()[0]:.2f} (cores: {os.cpu_count()})")
    rates = {"none": _rec_rate(n)}
    with tempfile.TemporaryDirectory() as d:
        rates["memory"] = _rec_rate(n, recs)
        for codec in ("zstd", "lz4", "none"):
            rates[f"zarr {codec}"] = _rec_rate(n, recs, str(Path(d) / f"{codec}.zarr"), codec)
        rates["zarr none f32"] = _rec_rate(n, recs32, str(Path(d) / "f32.zarr"), "none")
    again = _rec_rate(n)
    rates["none"] = (0.5 * (rates["none"][0] + again[0]), min(rates["none"][1], again[1]))
    print(f"(v) load average after: {os.getloadavg()[0]:.2f}")
    ref, ref_cpu = rates["none"]
    print(f"(v) recording, Bars MC: {n_vals} values/step, 5000-step chunks")
    for k, (r, cpu) in rates.items():
        bytes_per_step = n_vals * (4 if "f32" in k else 8)
        extra = "" if k == "none" else (f"  (+{100 * (ref / r - 1):.0f} % wall time, {r * bytes_per_step / 1e6:.0f} MB/s"
                                        f", +{100 * (cpu / ref_cpu - 1):.0f} % CPU time)")
        print(f"(v)   {k:<15}{r:>9.0f} st/s {cpu:6.2f} CPU us/step{extra}")
    with tempfile.TemporaryDirectory() as d:
        buffered, direct = _storage_bandwidth(d)
    need = ref * n_vals * 8 / 1e9
    print(f"(v) storage: the run produces {need:.2f} GB/s of recorded values (float64) at the no-recording speed; "
          f"this file system takes {buffered:.2f} GB/s buffered, {direct:.2f} GB/s the recorder's way "
          f"(O_DIRECT): writing alone keeps the disk busy {100 * need / direct:.0f} % of the run's time")
    for codec in ("zstd", "none"):
        print(f"(v) Zarr writer alone (ZarrRecorder.append, 5000-step blocks, float64, codec {codec}): "
              f"{_writer_alone(recs, codec):.0f} MB/s")
    import tracemalloc
    peaks = []
    for steps in (n, 2 * n):
        with tempfile.TemporaryDirectory() as d:
            tracemalloc.start()
            sim = Simulation(bars_prog(), recordings=recs, output=str(Path(d) / "m.zarr"), chunk_steps=5000)
            sim.run(steps=steps)
            sim.close()
            peaks.append(tracemalloc.get_traced_memory()[1] / 1e6)
            tracemalloc.stop()
    print(f"(v) peak traced memory recording {n} steps to Zarr: {peaks[0]:.1f} MB, {2 * n} steps: {peaks[1]:.1f} MB "
          f"(one 5000-step chunk of all variables: {5000 * n_vals * 8 / 1e6:.1f} MB)")


def _startup(q, rows, cases):
    ts1 = torch_steps(1, int(2000 * q))
    if ts1 is None:
        print("torch: not installed (per-step PyTorch loop skipped)")
    else:
        ts128 = torch_steps(128, int(200 * q))
        print(f"torch per-step loop: b1 {ts1:.0f} st/s (numba/torch {rows.get(cases[0][0], float('nan')) / ts1:.2f}), "
              f"b128 {ts128:.0f} st/s (numba/torch {rows.get(cases[1][0], float('nan')) / ts128:.2f})")

    scen = Path(__file__).resolve().parents[1] / "scenarios" / "le_chain.toml"
    st = startup_times(scen)
    for i, (wall, imp, first) in enumerate(st, 1):
        print(f"fresh subprocess run {i}: total {wall:.2f} s (import {imp:.2f} s, build + compile/load + "
              f"first step {first:.2f} s)")


if __name__ == "__main__":
    main()
