"""Checkpoint and resume of a single long run.

A checkpoint is everything the kernel mutates, written into the run's own Zarr store
(``checkpoint/v<k>``, see :meth:`microcircuit.recording.ZarrRecorder.write_checkpoint`):

* arrays: ``state``, ``prev``, ``ports``, ``ext`` (signals), ``weights``, ``dw_filter`` (tau_w
  low-pass), ``masks``, ``pop_float``/``proj_float`` (population/projection tables, which hold
  learned time constants' and optimisers' running state where the models keep any) and every
  per-neuron parameter array ``neuron_<name>`` (``g0`` = 1/tau_m and ``bias`` are learned by
  ``tau_learning``/``eta_bias``);
* attrs: ``step`` (the next step to simulate), the noise generator's
  ``bit_generator.state`` (Numba draws from ``prog.rng`` advance that very state, so restoring it
  continues the same random stream), and ``n_records`` per population time dim at the moment of
  the checkpoint, so a resumed run can cut away records written after it.

Stimuli are pure functions of the step index (:mod:`microcircuit.stimuli`), so they need no state.

Resuming (``microcircuit run --resume STORE`` or :func:`resume`) rebuilds the program from the
scenario text and overrides stored in the root attrs (``scenario``, ``overrides``), restores the
checkpoint, reopens the store for appending (:meth:`ZarrRecorder.reopen`, which truncates every
time dim to the checkpoint) and runs to ``simulation.duration``. The result equals an
uninterrupted run bit for bit (``tests/test_checkpoint.py``).

Runs with a ``[protocol]`` table (epochs, metrics) are not resumable by this module.
"""
from __future__ import annotations

import json
import tomllib
from pathlib import Path

import numpy as np

from .errors import SimulationError

_ARRAYS = ("state", "prev", "ports", "ext", "weights", "dw_filter", "masks", "pop_float", "proj_float")


def _rng_state_to_attr(rng):
    # PCG64 state holds 128-bit integers: keep them exact as JSON text
    return json.dumps(rng.bit_generator.state, default=int)


def program_checkpoint(prog):
    """``(arrays, attrs)`` of a program's full mutable state (copies)."""
    arrays = {name: np.array(getattr(prog, name)) for name in _ARRAYS}
    for k, v in prog.neuron.items():
        arrays[f"neuron_{k}"] = np.array(v)
    attrs = {"step": int(prog.step), "rng_state": _rng_state_to_attr(prog.rng),
             "dt": float(prog.dt), "batch": int(prog.batch), "seed": int(prog.seed)}
    return arrays, attrs


def restore_program(prog, arrays, attrs):
    """Write a checkpoint back into ``prog`` in place (arrays keep their identity)."""
    for name in _ARRAYS:
        dst = getattr(prog, name)
        src = np.asarray(arrays[name])
        if dst.shape != src.shape:
            raise SimulationError(f"checkpoint array '{name}' has shape {src.shape}, the program has {dst.shape}; "
                                  "the scenario changed since the checkpoint was written")
        dst[...] = src
    for k, dst in prog.neuron.items():
        src = np.asarray(arrays[f"neuron_{k}"])
        if dst.shape != src.shape:
            raise SimulationError(f"checkpoint array 'neuron_{k}' has shape {src.shape}, expected {dst.shape}")
        dst[...] = src
    prog.rng.bit_generator.state = json.loads(attrs["rng_state"])
    prog.step = int(attrs["step"])


def write_checkpoint(sim):
    """Write the simulation's program state into its Zarr store (needs a Zarr output)."""
    rec = sim.recorder
    if not hasattr(rec, "write_checkpoint"):
        raise SimulationError("checkpoints need a Zarr output store (Simulation(output=...))")
    arrays, attrs = program_checkpoint(sim.program)
    attrs["n_records"] = {f"{pop}/{dim}": int(ts.n) for (pop, dim), ts in rec._times.items()}
    attrs["last_step"] = {f"{pop}/{dim}": ts.last_step for (pop, dim), ts in rec._times.items()}
    return rec.write_checkpoint(arrays, attrs)


def _parse_override(item):
    k, v = item.split("=", 1)
    v = v.strip()
    # build.py stores overrides as f"{key}={python value}": map Python literals back to TOML
    if v in ("True", "False"):
        v = v.lower()
    return f"{k.strip()}={v}"


def scenario_from_store(path):
    """The scenario a store was written from (text + overrides in its root attrs)."""
    from .recording import _open_root
    from .scenario.load import scenario_from_dict
    root = _open_root(Path(path))
    a = dict(root.attrs)
    text = a.get("scenario")
    if not text:
        raise SimulationError(f"{path}: has no 'scenario' attr; only stores written by `microcircuit run` "
                              "from a scenario file can be resumed")
    src = a.get("scenario_source") or None
    base = Path(src).parent if src else Path(path).parent
    ovs = [_parse_override(o) for o in a.get("overrides", [])]
    return scenario_from_dict(tomllib.loads(text), source=src, text=text, base_dir=base, overrides=ovs)


def resume(path, *, progress=False, backend=None, run=True):
    """Resume the run stored at ``path`` from its last checkpoint; returns the (closed) Simulation.

    With ``run=False`` the restored, reopened simulation is returned without running it.
    """
    from .recording import ZarrRecorder, read_checkpoint
    sc = scenario_from_store(path)
    if "protocol" in sc.data:
        raise SimulationError(f"{path}: runs with a [protocol] table cannot be resumed yet")
    arrays, attrs = read_checkpoint(path)
    sim = sc.build(output=False, progress=progress, backend=backend)
    restore_program(sim.program, arrays, attrs)
    sim.recorder = ZarrRecorder.reopen(path, sim._specs, n_records=attrs.get("n_records"),
                                       last_step=attrs.get("last_step"))
    sim.output_path = path
    sim.checkpoint_every = checkpoint_steps(sc)
    if not run:
        return sim
    dur = sc.data["simulation"].get("duration")
    if dur is None:
        raise SimulationError(f"{path}: the stored scenario has no simulation.duration")
    total = int(round(dur / sim.program.dt))
    if total > sim.program.step:
        sim.run(steps=total - sim.program.step)
    sim.close()
    return sim


def checkpoint_steps(sc):
    """``[output] checkpoint_every`` (ms) or ``checkpoint_every_steps`` as a step count, or None."""
    out = sc.data.get("output", {})
    dt = sc.data["simulation"]["dt"]
    if out.get("checkpoint_every_steps"):
        return int(out["checkpoint_every_steps"])
    if out.get("checkpoint_every"):
        n = int(round(out["checkpoint_every"] / dt))
        if abs(n * dt - out["checkpoint_every"]) > 1e-6 * max(dt, out["checkpoint_every"]) or n < 1:
            raise SimulationError(f"output.checkpoint_every = {out['checkpoint_every']} ms is not a whole "
                                  f"number of steps of dt = {dt}")
        return n
    return None
