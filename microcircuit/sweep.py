"""Parameter sweeps on Dask distributed: ``microcircuit sweep SCENARIO --grid key=v1,v2 ...``.

Every grid point (the cartesian product of the ``--grid`` values, times ``--seeds`` seeds) is one
independent run of the scenario with the point's values applied as ``--set`` overrides. All points
write into **one** Zarr store that opens as one xarray Dataset with the sweep dims in front::

    microcircuit sweep scenarios/le_chain.toml --grid populations.le1.tau_m=5,10,20 --seeds 2 \\
        --workers 4 --out tau.zarr
    >>> xr.open_zarr("tau.zarr")   # dims: populations.le1.tau_m: 3, seed: 2, time: 10000, batch: 1, ...

Layout. Before any point runs, the client writes a lazy template (``to_zarr(compute=False)``)
whose variables are the scenario's recordings flattened as ``<population>.<variable>`` (dims: the
sweep dims, ``time`` or ``time_<stride>``, ``batch``, ``<population>.neuron``[,
``<population>.compartment``]), the final weights of every projection as ``W.<projection>`` (dims
``<projection>.post``, ``<projection>.pre``), the per-point ``wall_s`` and the ``done`` flag. Chunks
are 1 along every sweep dim, so each point writes its own whole chunks with a region write
(``to_zarr(region=...)``): no locks and no conflicts between workers. ``done`` is written last, so a
sweep that is stopped and started again skips completed points (a point killed mid-write is simply
rerun). The root attrs hold the scenario text, the grid, the seeds and the base overrides; a re-run
with a different grid or scenario refuses to touch the store unless ``--overwrite`` is given.

Seeds. ``--seeds N`` adds a ``seed`` dim of length N; seed ``i`` is
``SeedSequence(simulation.seed).spawn(N)[i]`` turned into a 63-bit integer, set as
``simulation.seed`` of the point (the same seeds for every grid point: common random numbers). A
point's result depends only on its scenario, grid values and seed index, never on the number of
workers or on which worker ran it. To sweep seeds explicitly use ``--grid simulation.seed=1,2,3``
instead.

Parallelism. By default a ``LocalCluster(n_workers=--workers, threads_per_worker=1,
processes=True, dashboard_address=None, env=SINGLE_THREADED)`` (one single-threaded
process per core: Numba and BLAS limited to one thread each; the Numba kernel is compiled with ``cache=True``, so workers load it from the
on-disk cache instead of recompiling). ``--workers 0`` runs the points sequentially in this process
(no Dask). ``--scheduler tcp://host:8786`` uses an existing cluster; its workers must see the same
paths (the store and any array files the scenario reads).

SLURM / PBS with dask-jobqueue (``pip install dask-jobqueue``)::

    from dask_jobqueue import SLURMCluster
    from distributed import Client
    from microcircuit.sweep import run_sweep
    cluster = SLURMCluster(cores=1, processes=1, memory="4GB", walltime="02:00:00",
                           job_script_prologue=["export NUMBA_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1"])
    cluster.scale(jobs=32)
    run_sweep("model.toml", {"populations.hidden.tau_m": [5, 10, 20]}, seeds=4,
              client=Client(cluster), out="/scratch/me/sweep.zarr")

or start ``dask scheduler`` / ``dask worker`` yourself in a batch script and pass
``--scheduler ADDRESS``.

Protocol scenarios. A scenario with a ``[protocol]`` table (learning from a data set,
:func:`microcircuit.protocols.run_protocol`) is swept the same way; each point is one protocol run in
memory, and the store keeps, per point, its per-epoch metrics as ``metrics.<name>`` (dims: the sweep
dims, ``epoch``; ``<phase>_loss`` / ``<phase>_accuracy`` for the phases run, ``lr_scale`` with
``lr_schedule = "plateau"``, ``wall_time_s``; NaN where an epoch did not evaluate), the last epoch's
values as ``final.<name>`` (dims: the sweep dims only, so ``ds[[v for v in ds if v.startswith("final.")]]
.to_dataframe()`` is the table of results), the final weights ``W.<projection>``, ``wall_s`` and
``done``::

    microcircuit sweep scenarios/mc_bars_le.toml --grid protocol.t_pres=0.3,1,3,10,30 --seeds 2 \
        --workers 4 --out mc_bars_tpres.zarr

A protocol point records no ``[[recordings]]`` (their length would differ between points); values
that change the epochs, ``eval_initial``, the phases, the plateau schedule or the network's sizes
are refused (one store of one shape). ``--seeds`` sets ``simulation.seed``, which seeds the network
and the shuffling unless the scenario fixes ``protocol.seed`` (then ``--seeds`` is refused: sweep
``protocol.seed`` with ``--grid``).
"""
from __future__ import annotations

import itertools
import json
import math
import time
import tomllib
from pathlib import Path

import numpy as np

from .errors import MicrocircuitError
from .recording import time_labels

__all__ = ["run_sweep", "parse_grid", "sweep_points", "run_point", "add_sweep_command"]

SWEEP_FORMAT = "sweep"
# environment of a LocalCluster's workers: one process per core, each single-threaded (Numba and BLAS;
# [simulation] threads = 0 then picks 1, simulation.blas_threads)
SINGLE_THREADED = {"NUMBA_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
                   "MKL_NUM_THREADS": "1"}


class SweepError(MicrocircuitError):
    """A sweep cannot be set up as asked; the message names the field and the fix."""


# ------------------------------------------------------------------------------------ grid

def parse_grid(items):
    """``["a.b=1,2,3", "c=x,y"]`` -> ``{"a.b": [1, 2, 3], "c": ["x", "y"]}`` (TOML values)."""
    from .scenario.load import parse_value
    grid = {}
    for item in items or []:
        if "=" not in item:
            raise SweepError(f"--grid {item!r}: needs the form dotted.key=v1,v2,...")
        k, v = item.split("=", 1)
        k = k.strip()
        vals = [parse_value(x.strip()) for x in _split_values(v)]
        if not k or not vals:
            raise SweepError(f"--grid {item!r}: needs a key and at least one value")
        if k in grid:
            raise SweepError(f"--grid {k}: given twice")
        grid[k] = vals
    return grid


def _shape_signature(data):
    """What fixes the shape of the sweep store (its template is built from the base scenario): the
    step count, the batch, the populations' sizes, the recordings and the projections; for a protocol
    scenario the epochs and metrics (:func:`_protocol_layout`), the sizes and the projections."""
    sim = data["simulation"]
    pops = data.get("populations", [])
    if "protocol" in data:
        epochs, names = _protocol_layout(data)
        return {
            "the epochs recorded (protocol.epochs, protocol.eval_initial)": epochs,
            "the metrics (protocol.phases, protocol.lr_schedule)": names,
            "the population sizes": [(p.get("name"), p.get("size")) for p in pops],
            "the projections": [(pr.get("name"), pr.get("pre"), pr.get("post"),
                                 (pr.get("connector") or {}).get("kind", "all_to_all"))
                                for pr in data.get("projections", [])],
        }
    return {
        "the number of steps (simulation.duration / simulation.dt)": int(round(sim["duration"] / sim["dt"])),
        "simulation.batch": sim.get("batch", 1),
        "the population sizes": [(p.get("name"), p.get("size")) for p in pops],
        "the recordings": json.dumps(data.get("recordings", []), sort_keys=True, default=str),
        "the projections": [(pr.get("name"), pr.get("pre"), pr.get("post"),
                             (pr.get("connector") or {}).get("kind", "all_to_all"))
                            for pr in data.get("projections", [])],
    }


def check_grid(sc, grid, seeds=None, base_overrides=(), workers=0, local=True):
    """Validate a whole sweep before its first point runs: the argument ranges, the number of points
    (grid product x seeds) against ``max_sweep_points``, and every value of every key applied to the
    scenario (schema, cross-references, the limits: memory estimate and steps). A value that changes
    the shape of the store (steps, batch, sizes, recordings, projections) is refused: all points write
    into one store of one shape. With ``local`` workers, ``workers`` points run at once on this machine:
    their summed memory estimate must fit the limit. Raises SweepError or one ScenarioError listing every
    bad value."""
    from .errors import ScenarioError
    from .limits import current, estimate_memory, fmt_bytes
    from .scenario.load import scenario_from_dict
    lim = current()
    if seeds is not None and (isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1):
        raise SweepError(f"--seeds must be an integer >= 1, got {seeds!r}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise SweepError(f"--workers must be an integer >= 0 (0 = sequential in this process), got {workers!r}")
    n_values = sum(len(v) for v in grid.values())
    n_points = math.prod(len(v) for v in grid.values()) * (seeds or 1)
    if n_points > lim.max_sweep_points or n_values > lim.max_sweep_points:
        shape = [str(len(v)) for v in grid.values()] + ([f"{seeds} seeds"] if seeds else [])
        raise SweepError(f"the sweep has {n_points:,} points ({' x '.join(shape)}), over the limit of "
                         f"{lim.max_sweep_points:,} "
                         f"(max_sweep_points); split it into smaller sweeps or raise "
                         f"MICROCIRCUIT_MAX_SWEEP_POINTS")
    for k, vals in grid.items():
        if not vals:
            raise SweepError(f"--grid {k}: needs at least one value")
    if not base_overrides and sc.overrides:      # the overrides the base scenario was loaded with
        base_overrides = [f"{k}={_fmt(v)}" for k, v in sc.overrides]
    base = tomllib.loads(sc.text) if sc.text else sc.data
    base_sig = _shape_signature(sc.data)
    problems = []
    # a point records in memory, then writes its region: every recorded value counts
    peak = estimate_memory(sc.data, sc.base_dir, in_memory=True)[0]
    for k, vals in grid.items():
        for v in vals:
            label = f"--grid {k}={_fmt(v)}"
            try:
                pt = scenario_from_dict(base, source=sc.source, text=sc.text, base_dir=sc.base_dir,
                                        overrides=list(base_overrides) + [f"{k}={_fmt(v)}"], limits=lim)
            except ScenarioError as exc:
                problems += [(f"{label}: {p}" if p else label, m) for p, m in exc.problems]
                continue
            if ("protocol" in pt.data) != ("protocol" in sc.data) or (
                    "protocol" not in pt.data and pt.data["simulation"].get("duration") is None):
                problems.append((label, "the point has no simulation.duration (or adds or drops the [protocol] "
                                        "table); a sweep runs plain scenarios with a duration or protocol "
                                        "scenarios"))
                continue
            peak = max(peak, estimate_memory(pt.data, pt.base_dir, in_memory=True)[0])
            sig = _shape_signature(pt.data)
            changed = [what for what in base_sig if sig[what] != base_sig[what]]
            if changed:
                problems.append((label, f"changes {' and '.join(changed)}; every point of a sweep writes into "
                                        f"one store of one shape, so sweeping {k} is not supported: run one "
                                        f"sweep (or run) per value with its own --out, or set it with --set"))
    if problems:
        raise ScenarioError(problems, sc.source)
    at_once = min(workers, n_points) if local and workers > 0 else 1
    if peak * at_once > lim.max_memory_bytes:
        raise SweepError(f"--workers {workers}: {at_once} points at once need about {fmt_bytes(peak * at_once)} "
                         f"({fmt_bytes(peak)} each), over the limit of {fmt_bytes(lim.max_memory_bytes)} "
                         f"(max_memory_bytes); use fewer --workers, or raise MICROCIRCUIT_MAX_MEMORY / --max-memory")
    return n_points


def _protocol_layout(data):
    """``(epochs, metric names)`` a protocol run of ``data`` records: epoch 0 (``eval_initial``) and
    1..``epochs``; ``<phase>_loss`` and ``<phase>_accuracy`` per phase, ``lr_scale`` (plateau schedule)
    and ``wall_time_s`` (:func:`microcircuit.protocols.train`)."""
    proto = data["protocol"]
    E = int(proto.get("epochs", 1))
    epochs = ([0] if proto.get("eval_initial", True) else []) + list(range(1, E + 1))
    names = [f"{ph}_{m}" for ph in proto.get("phases", ("train", "val", "test")) for m in ("loss", "accuracy")]
    if proto.get("lr_schedule", "constant") == "plateau":
        names.append("lr_scale")
    return epochs, names + ["wall_time_s"]


def _protocol_dataset(data, result, prog):
    """A protocol point's Dataset: ``metrics.<name>`` (epoch), ``final.<name>`` and ``W.<projection>``;
    ``result`` None gives the empty (NaN) layout of the template."""
    import xarray as xr
    epochs, names = _protocol_layout(data)
    out = {}
    for nm in names:
        v = np.full(len(epochs), np.nan)
        if result is not None and nm in result.metrics:
            got = dict(zip((int(e) for e in result.epochs), np.asarray(result.metrics[nm], float)))
            v = np.array([got.get(e, np.nan) for e in epochs])
        out[f"metrics.{nm}"] = xr.DataArray(v, dims=("epoch",), attrs={"long_name": f"{nm} per epoch"})
        out[f"final.{nm}"] = xr.DataArray(v[-1] if len(v) else np.nan,
                                          attrs={"long_name": f"{nm} after the last epoch"})
    for proj in prog.proj_names:
        W = np.array(prog.weight(proj))
        dims = (f"{proj}.post", f"{proj}.pre")[:W.ndim]     # one_to_one: the diagonal only
        out[f"W.{proj}"] = xr.DataArray(W, dims=dims, attrs={"long_name": f"final weights of {proj}", "units": "1"})
    return xr.Dataset(out, coords={"epoch": ("epoch", np.asarray(epochs, np.int64))})


def _protocol_program(sc):
    """The compiled network of a protocol scenario (for the template's weight shapes; nothing runs)."""
    from .compile import compile_circuit
    sim = sc.data["simulation"]
    return compile_circuit(sc.circuit(), dt=float(sim["dt"]), batch=1, scheme=sim.get("scheme", "synchronous"),
                           seed=int(sim.get("seed", 0)), stimuli=[])


def _split_values(text):
    # split on commas outside brackets, so list values like [1,2],[3,4] work
    out, depth, cur = [], 0, ""
    for ch in text:
        if ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        out.append(cur)
    return out


def _seed_values(base_seed, n):
    ss = np.random.SeedSequence(int(base_seed))
    return [int(c.generate_state(1, np.uint64)[0] >> np.uint64(1)) for c in ss.spawn(n)]


def sweep_points(grid, seeds=None, base_seed=0):
    """List of ``(index_tuple, overrides_dict)`` in C order over (grid dims..., seed)."""
    keys = list(grid)
    axes = [list(range(len(grid[k]))) for k in keys]
    seed_vals = _seed_values(base_seed, seeds) if seeds else None
    if seeds:
        axes.append(list(range(seeds)))
    pts = []
    for idx in itertools.product(*axes):
        ov = {k: grid[k][i] for k, i in zip(keys, idx)}
        if seeds:
            ov["simulation.seed"] = seed_vals[idx[-1]]
        pts.append((tuple(idx), ov))
    return pts


def _fmt(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return json.dumps(v)
    return json.dumps(v) if isinstance(v, (list, dict)) else repr(v)


# ------------------------------------------------------------------------------------ points
def _load(text, source, base_dir, overrides):
    from .scenario.load import scenario_from_dict
    ovs = list(overrides)
    sc = scenario_from_dict(tomllib.loads(text), source=source, text=text,
                            base_dir=Path(base_dir) if base_dir else None, overrides=ovs)
    return _in_memory(sc)


def _in_memory(sc):
    # a sweep point records in memory and writes its region of the sweep store itself
    sc.data.get("output", {}).pop("path", None)
    return sc


def _flatten(tree, prog, total_steps=None, specs=()):
    """A run's DataTree + final weights -> one Dataset with population-prefixed dims; time dims are
    shared across populations by stride (``time``, ``time_<stride>``; a recording names them per
    population group, ``specs`` gives each variable's stride)."""
    import xarray as xr
    stride = {(sp.population, sp.name): sp.stride for sp in specs}
    out = {}
    for node in tree.children.values():
        pop = node.name
        ds = node.to_dataset()
        ren = {d: f"{pop}.{d}" for d in ds.dims if not d.startswith("time") and d != "batch"}
        # neuron labels (cell_type, layer) are per population too: prefixed, so populations do not clash
        ren.update({c: f"{pop}.{c}" for c in ds.coords if c not in ds.dims and not c.startswith("time")})
        ds = ds.rename(ren)
        for name, da in ds.data_vars.items():
            da = da.drop_vars([c for c in da.coords if c.startswith("time")])
            st = stride.get((pop, name), 1)
            da = da.rename({da.dims[0]: "time" if st == 1 else f"time_{st}"})
            out[f"{pop}.{name}"] = da.assign_attrs(population=pop)
    for proj in prog.proj_names:
        W = np.array(prog.weight(proj))
        out[f"W.{proj}"] = xr.DataArray(W, dims=(f"{proj}.post", f"{proj}.pre"),
                                        attrs={"long_name": f"final weights of {proj}", "units": "1"})
    return xr.Dataset(out)


def run_point(text, source, base_dir, overrides, dims, index, store=None):
    """Run one sweep point; write it into ``store`` (region) if given, return ``(index, dataset, wall_s)``."""
    import xarray as xr
    t0 = time.perf_counter()
    sc = _load(text, source, base_dir, overrides)
    if "protocol" in sc.data:
        from .protocols import run_protocol
        res = run_protocol(sc, output=None, progress=False)
        ds = _protocol_dataset(sc.data, res, res.program)
    else:
        dur = sc.data["simulation"].get("duration")
        if dur is None:
            raise SweepError(f"{source}: simulation.duration is needed for a sweep")
        sim = sc.build(output=None)
        sim.run(dur)
        sim.close()
        ds = _flatten(sim.results(), sim.program, specs=sim.specs)
    wall = time.perf_counter() - t0
    if store is None:
        return index, ds, wall
    region = {d: slice(i, i + 1) for d, i in zip(dims, index)}
    ds = ds.drop_vars(list(ds.coords))
    ds = ds.expand_dims({d: 1 for d in dims})
    ds["wall_s"] = xr.DataArray(np.full((1,) * len(dims), wall), dims=dims)
    ds.to_zarr(str(store), region=region, mode="r+", consolidated=False, zarr_format=3)
    done = xr.Dataset({"done": xr.DataArray(np.ones((1,) * len(dims), bool), dims=dims)})
    done.to_zarr(str(store), region=region, mode="r+", consolidated=False, zarr_format=3)
    return index, None, wall


def _template(sc, grid, seed_count, dims, text):
    """A lazy Dataset with the full sweep shape (dask zeros, chunk 1 along the sweep dims)."""
    import dask.array as da
    import xarray as xr
    if "protocol" in sc.data:
        empty = _protocol_dataset(sc.data, None, _protocol_program(sc))
        total = 0
    else:
        sim = _in_memory(sc).build(output=None)
        dt = sim.program.dt
        total = int(round(sc.data["simulation"]["duration"] / dt))
        empty = _flatten(sim.results(), sim.program, specs=sim.specs)
    sweep_shape = tuple(len(grid[k]) for k in grid) + ((seed_count,) if seed_count else ())
    sizes = dict(empty.sizes)
    for d in list(sizes):
        if d.startswith("time"):
            stride = 1 if d == "time" else int(d.split("_", 1)[1])
            sizes[d] = len(range(0, total, stride))
    coords = {}
    for d in sizes:
        if d.startswith("time"):
            stride = 1 if d == "time" else int(d.split("_", 1)[1])
            coords[d] = (d, time_labels(np.arange(0, total, stride), dt), {"units": "ms", "long_name": "time"})
    for c in empty.coords:
        if not c.startswith("time"):
            coords[c] = empty[c]
    fill = {name: (np.nan if name.startswith(("metrics.", "final.")) else 0) for name in empty.data_vars}
    for k in grid:
        coords[k] = (k, np.asarray(grid[k]) if not any(isinstance(v, (list, dict)) for v in grid[k])
                     else np.asarray([json.dumps(v) for v in grid[k]]))
    if seed_count:
        coords["seed"] = ("seed", np.asarray(_seed_values(sc.data["simulation"].get("seed", 0), seed_count),
                                             np.int64))
    ones = (1,) * len(dims)
    data = {}
    for name, v in empty.data_vars.items():
        shape = sweep_shape + tuple(sizes[d] for d in v.dims)
        data[name] = xr.DataArray(da.full(shape, fill[name], dtype=v.dtype,
                                          chunks=ones + tuple(sizes[d] for d in v.dims)),
                                  dims=tuple(dims) + v.dims, attrs=v.attrs)
    data["wall_s"] = xr.DataArray(da.zeros(sweep_shape, chunks=ones), dims=dims,
                                  attrs={"units": "s", "long_name": "wall time of the point"})
    data["done"] = xr.DataArray(da.zeros(sweep_shape, dtype=bool, chunks=ones), dims=dims,
                                attrs={"long_name": "point completed"})
    return xr.Dataset(data, coords=coords)


def _spec_attrs(sc, grid, seeds, base_overrides):
    return {"microcircuit_format": SWEEP_FORMAT, "scenario": sc.text, "scenario_source": str(sc.source or ""),
            "grid": json.dumps(grid), "seeds": int(seeds or 0), "overrides": list(base_overrides),
            "dt": float(sc.data["simulation"]["dt"])}


def run_sweep(scenario, grid=None, *, seeds=None, out=None, workers=2, scheduler=None, client=None,
              overrides=(), overwrite=False, progress=False):
    """Run every point of ``grid`` (x ``seeds``) and write them into one Zarr store.

    Returns a dict: ``store``, ``dims``, ``n_points``, ``ran`` (indices run now), ``skipped``
    (indices already done), ``wall_s`` (total). ``workers=0`` runs sequentially in-process.
    """
    from .scenario import load_scenario
    t_start = time.perf_counter()
    base_overrides = list(overrides)
    sc = load_scenario(scenario, base_overrides)
    protocol = "protocol" in sc.data
    if not protocol and sc.data["simulation"].get("duration") is None:
        raise SweepError(f"{scenario}: simulation.duration: needed for a sweep")
    if not grid:
        grid = dict((sc.data.get("sweep") or {}).get("grid") or {})
    if not grid and not seeds:
        raise SweepError("nothing to sweep: give --grid dotted.key=v1,v2,... and/or --seeds N")
    grid = {k: list(v) if isinstance(v, (list, tuple)) else [v] for k, v in grid.items()}
    if "simulation.seed" in grid and seeds:
        raise SweepError("--grid simulation.seed and --seeds both set the seed; use one")
    if protocol and seeds and "protocol.seed" in grid:
        raise SweepError("--grid protocol.seed and --seeds: protocol.seed fixes the seed of each point, so --seeds "
                         "would change nothing; use one")
    if protocol and seeds and "seed" in sc.data["protocol"]:
        raise SweepError(f"{scenario}: protocol.seed fixes the seed of every point, so --seeds would change "
                         "nothing; remove protocol.seed (it defaults to simulation.seed, which --seeds sets) or "
                         "sweep it with --grid protocol.seed=1,2,...")
    if protocol and sc.data.get("recordings"):
        import warnings
        warnings.warn(f"{scenario}: a protocol sweep keeps each point's metrics and final weights; the "
                      "scenario's [[recordings]] are not recorded", stacklevel=2)
    # every value of every key, before any point runs
    check_grid(sc, grid, seeds, base_overrides, workers, local=scheduler is None and client is None)
    dims = list(grid) + (["seed"] if seeds else [])
    out = Path(out or f"{Path(scenario).stem}_sweep.zarr")
    attrs = _spec_attrs(sc, grid, seeds, base_overrides)
    lock, fresh = _claim_sweep_store(out, attrs, overwrite)
    try:    # the client holds the store's lock for the whole sweep; its workers write regions unlocked
        _write_template(out, lock, fresh, sc, grid, seeds, dims, attrs)
        return _run_points(out, sc, grid, seeds, dims, base_overrides, workers, scheduler, client, progress,
                           t_start)
    finally:
        _release_sweep_store(out, lock)


def _claim_sweep_store(out, attrs, overwrite):
    """Lock the sweep's store for this client; returns ``(lock, fresh)``.

    A new path, or any path with ``overwrite``, is claimed like a recording's store (race-free
    creation; only a store of this package or an empty directory is emptied, under its lock:
    :func:`microcircuit.storelock.claim_new_store`). An existing sweep store of the same sweep is
    continued (``fresh`` False) once its lock is ours, so two clients never run one sweep at once.
    """
    from .storelock import StoreLock, claim_new_store, store_format
    import zarr
    if overwrite or not (out.exists() or out.is_symlink()):
        out.parent.mkdir(parents=True, exist_ok=True)
        return claim_new_store(out, overwrite=overwrite), True
    if store_format(out) != SWEEP_FORMAT:
        raise SweepError(f"{out}: exists and is not a sweep store (root attr microcircuit_format is not "
                         f"{SWEEP_FORMAT!r}); choose another --out, or pass --overwrite if it is an empty "
                         "directory or a store written by microcircuit")
    lock = StoreLock.acquire(out)
    try:
        old = dict(zarr.open_group(str(out), mode="r", zarr_format=3).attrs)
    except BaseException:
        lock.release()
        raise
    if not all(old.get(k) == v for k, v in attrs.items() if k != "scenario_source"):
        lock.release()
        raise SweepError(f"{out}: holds a different sweep (scenario, grid, seeds or overrides differ); "
                         "pass --overwrite to replace it or choose another --out")
    return lock, False


def _write_template(out, lock, fresh, sc, grid, seeds, dims, attrs):
    """Write the empty sweep store (a fresh claim) or mark a continued one with this client as writer.
    A template that fails half-way is removed again (only what this claim made, see discard_new_store)."""
    import zarr
    from .storelock import WRITER_ATTR, discard_new_store
    if not fresh:
        # opened without the consolidated copy, so this rewrite drops it until the sweep is released
        zarr.open_group(str(out), mode="r+", zarr_format=3, use_consolidated=False).update_attributes(
            {WRITER_ATTR: lock.writer})
        return
    try:
        tmpl = _template(sc, grid, seeds, dims, sc.text)
        tmpl.attrs.update(attrs)
        tmpl.attrs[WRITER_ATTR] = lock.writer
        # mode "a", not "w": "w" would rmtree the locked directory; the claim left it empty
        tmpl.to_zarr(str(out), compute=False, mode="a", consolidated=False, zarr_format=3)
    except BaseException:
        discard_new_store(lock)
        raise


def _release_sweep_store(out, lock):
    """Clear the ``writer`` attr and consolidate the metadata, so plain ``xr.open_zarr(out)`` opens the
    store without a warning (best effort: a full disk must not hide the sweep's own error); unlock."""
    import zarr
    from .recording import consolidate
    from .storelock import WRITER_ATTR
    try:
        if lock.held:
            zarr.open_group(str(out), mode="r+", zarr_format=3, use_consolidated=False).update_attributes(
                {WRITER_ATTR: None})
            consolidate(out)
    except Exception:
        pass
    finally:
        lock.release()


def _run_points(out, sc, grid, seeds, dims, base_overrides, workers, scheduler, client, progress, t_start):
    """Run the points of the sweep not yet ``done`` (in this process or on Dask) into ``out``."""
    import xarray as xr
    done = xr.open_zarr(str(out), consolidated=False, zarr_format=3)["done"].values
    points = sweep_points(grid, seeds, sc.data["simulation"].get("seed", 0))
    todo = [(idx, ov) for idx, ov in points if not done[idx]]
    skipped = [idx for idx, _ in points if done[idx]]
    text, source = sc.text, str(sc.source or "")
    base_dir = str(sc.base_dir) if sc.base_dir else None
    jobs = [(idx, base_overrides + [f"{k}={_fmt(v)}" for k, v in ov.items()]) for idx, ov in todo]
    ran = []
    walls = {}
    if jobs and workers == 0 and scheduler is None and client is None:
        for idx, ovs in jobs:
            _, _, w = run_point(text, source, base_dir, ovs, dims, idx, out)
            ran.append(idx)
            walls[idx] = w
            if progress:
                print(f"point {idx} done in {w:.2f} s", flush=True)
    elif jobs:
        own_cluster = None
        if client is None:
            from distributed import Client, LocalCluster
            if scheduler is not None:
                client = Client(scheduler)
            else:
                own_cluster = LocalCluster(n_workers=int(workers), threads_per_worker=1, processes=True,
                                           dashboard_address=None, env=SINGLE_THREADED)
                client = Client(own_cluster)
        try:
            from distributed import as_completed
            futs = [client.submit(run_point, text, source, base_dir, ovs, dims, idx, str(out.resolve()),
                                  pure=False, key=f"mc-point-{'-'.join(map(str, idx))}-{time.time_ns()}")
                    for idx, ovs in jobs]
            for fut in as_completed(futs):
                idx, _, w = fut.result()
                ran.append(tuple(idx))
                walls[tuple(idx)] = w
                if progress:
                    print(f"point {tuple(idx)} done in {w:.2f} s", flush=True)
        finally:
            if own_cluster is not None:
                client.close()
                own_cluster.close()
    return {"store": str(out), "dims": dims, "n_points": len(points), "ran": sorted(ran),
            "skipped": skipped, "wall_s": time.perf_counter() - t_start, "point_wall_s": walls}


def open_sweep(path):
    """Open a sweep store as one xarray Dataset (lazy, dask-backed along the sweep dims)."""
    import xarray as xr
    return xr.open_zarr(str(path), consolidated=False, zarr_format=3)


# ------------------------------------------------------------------------------------ CLI
def cmd_sweep(args):
    """Run the scenario once per grid point (the cartesian product of the ``--grid`` values, times
    ``--seeds`` seeds) on Dask workers, all into one Zarr store that opens as one xarray Dataset with
    the sweep dims in front; a stopped sweep started again skips the completed points."""
    from .cli import apply_limit_flags
    apply_limit_flags(args)
    grid = parse_grid(args.grid)
    res = run_sweep(args.scenario, grid, seeds=args.seeds, out=args.out, workers=args.workers,
                    scheduler=args.scheduler, overrides=args.set, overwrite=args.overwrite,
                    progress=not args.no_progress)
    print(f"sweep over {' x '.join(res['dims'])}: {res['n_points']} points, ran {len(res['ran'])}, "
          f"skipped {len(res['skipped'])} already done, {res['wall_s']:.1f} s; store: {res['store']}")
    return 0


def _int_at_least(low):
    """An argparse type: an integer >= low (``1e8`` and ``-1`` are refused with a message, not a hang)."""
    import argparse

    def parse(text):
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {text!r}") from None
        if v < low:
            raise argparse.ArgumentTypeError(f"must be >= {low}, got {v}")
        return v
    return parse


def add_sweep_command(subparsers):
    s = subparsers.add_parser("sweep", help="run a scenario over a parameter grid (Dask), into one Zarr store")
    s.add_argument("scenario")
    s.add_argument("--grid", action="append", default=[], metavar="dotted.key=v1,v2,...",
                   help="values of one scenario field; several --grid give their cartesian product")
    s.add_argument("--seeds", type=_int_at_least(1), default=None, metavar="N",
                   help="N seeds per grid point, derived with SeedSequence(simulation.seed).spawn(N)")
    s.add_argument("--workers", type=_int_at_least(0), default=2,
                   help="local worker processes (default 2; 0 = sequential in this process)")
    s.add_argument("--scheduler", default=None, metavar="ADDRESS", help="use an existing Dask scheduler")
    s.add_argument("--out", default=None, metavar="STORE", help="Zarr store (default <scenario>_sweep.zarr)")
    s.add_argument("--set", action="append", default=[], metavar="dotted.key=value",
                   help="override a scenario field for every point")
    s.add_argument("--overwrite", action="store_true", help="replace an existing sweep store")
    s.add_argument("--no-progress", action="store_true")
    from .cli import add_limit_flags
    add_limit_flags(s)
    s.set_defaults(func=cmd_sweep)
    return s
