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

Inputs: a run from a scenario records in its root attr ``inputs`` (:func:`input_hashes`, at the
start of the run) the SHA-256 of the scenario text with its overrides and of every file the scenario
reads (stimulus arrays, weight files, morphologies). Resuming re-hashes them and refuses, with
:class:`InputsChangedError` naming each changed file, if any differs, or if the scenario file at
``scenario_source`` was edited (the resume would silently ignore the edit: it runs the stored text);
``allow_changed_inputs=True`` (``--allow-changed-inputs``) resumes anyway, notes the changes and the
step in the root attr ``resumed_with_changed_inputs`` and records the new hashes in ``inputs`` (the run
uses those inputs from then on, so a later resume with them is consistent; an edited scenario file
still differs from the stored text and needs the flag every time).

Protocol runs. A run with a ``[protocol]`` table writes the same program checkpoint at epoch
boundaries (``protocol.checkpoint_every`` epochs, default 1, and after the setup as epoch 0), with the
protocol's own state added (the shuffling generator's state in the attrs, the metrics so far, the initial
learning rates and the plateau schedule as float64 arrays; :func:`microcircuit.protocols.resume_protocol`).
:func:`resume` checks the inputs the same way (a protocol run also hashes the files its data set reads,
``protocol.dataset_args.<key>``) and hands such a store to ``resume_protocol``, which continues after the
checkpoint's epoch to the metrics and weights of the uninterrupted run, bit for bit
(``tests/test_protocol_resume.py``).
"""
from __future__ import annotations

import hashlib
import json
import tomllib
import warnings
from pathlib import Path

import numpy as np

from .errors import SimulationError
from .scenario.validate import resolve_path

_HASH_READ = 1 << 20     # bytes per read when hashing an input file (memory stays flat for any size)


class InputsChangedError(SimulationError):
    """The inputs of a stored run changed since it started; resuming would mix two different runs."""

    def __init__(self, store, changes, step=None):
        self.store, self.changes = store, list(changes)
        at = f" (records after step {step} would come from the changed inputs)" if step is not None else ""
        super().__init__(
            f"{store}: cannot resume: the run's inputs changed since it started:\n"
            + "".join(f"  - {c}\n" for c in self.changes)
            + "Restore them to resume bit-identically, or pass --allow-changed-inputs "
              f"(resume(..., allow_changed_inputs=True)) to continue with them as they are now{at}")

_ARRAYS = ("state", "prev", "ports", "ext", "weights", "dw_filter", "masks", "pop_float", "proj_float")


def rng_state_to_attr(rng):
    """A numpy Generator's ``bit_generator.state`` as JSON text (PCG64 state holds 128-bit integers:
    kept exact as text; never pickled). Restore with ``rng.bit_generator.state = json.loads(text)``."""
    return json.dumps(rng.bit_generator.state, default=int)


_rng_state_to_attr = rng_state_to_attr


def record_positions(rec):
    """``{"n_records": ..., "last_step": ...}`` of a Zarr recorder (:meth:`ZarrRecorder.position`)."""
    return rec.position()


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
    attrs.update(record_positions(rec))
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


def file_sha256(path):
    """SHA-256 (hex) of a file read 1 MiB at a time; of a directory (a ``.zarr`` store), of its files in
    sorted order, each as its relative path and its bytes (so a renamed or moved chunk counts too).
    ``None`` if the path does not exist."""
    p = Path(path)
    if not p.exists():
        return None
    h = hashlib.sha256()
    files = sorted((f.relative_to(p).as_posix(), f) for f in p.rglob("*") if f.is_file()) if p.is_dir() else [("", p)]
    for rel, f in files:
        if p.is_dir():
            h.update(rel.encode() + b"\0")
        with open(f, "rb") as fh:
            while block := fh.read(_HASH_READ):
                h.update(block)
    return h.hexdigest()


def _resolve(name, base_dir):
    return resolve_path(name, base_dir).resolve()


def _morphology_file(name, base_dir):
    """The SWC file a population's ``morphology`` reads: a path (relative to the scenario or the working
    directory) or a bundled cell id (see :func:`microcircuit.morphology.load_morphology`)."""
    from .morphology import MORPHOLOGY_DIR
    for cand in (_resolve(name, base_dir), Path(name).resolve(), MORPHOLOGY_DIR / f"{name}_m.swc",
                 MORPHOLOGY_DIR / f"{name}.swc"):
        if cand.is_file():
            return cand
    return None


def input_files(sc):
    """``{field: absolute path}`` of every file the scenario reads: array stimuli (``stimuli[i].file``),
    weight files (``projections[j].weights.file``) and morphologies (``populations[k].morphology``,
    bundled cells included). Paths resolve as the build does, against the scenario's folder."""
    out = {}
    base = sc.base_dir
    for i, s in enumerate(sc.data.get("stimuli", [])):
        if s.get("waveform") == "array" and isinstance(s.get("file"), str):
            out[f"stimuli[{i}].file"] = _resolve(s["file"], base)
    for j, pr in enumerate(sc.data.get("projections", [])):
        w = pr.get("weights")
        if isinstance(w, dict) and w.get("dist") == "array" and "value" not in w and isinstance(w.get("file"), str):
            out[f"projections[{j}].weights.file"] = _resolve(w["file"], base)
    for k, pop in enumerate(sc.data.get("populations", [])):
        if isinstance(pop.get("morphology"), str):
            f = _morphology_file(pop["morphology"], base)
            if f is not None:
                out[f"populations[{k}].morphology"] = f
    out.update(_dataset_files(sc))
    return out


def _dataset_files(sc):
    """The files a ``[protocol]`` data set reads by name (``dataset_args`` of type "file", e.g. the IDX
    files of ``mnist_idx``; relative to the working directory, as the loader reads them). Cache folders
    (type "path") are not hashed: they are large and the loaders check their files themselves."""
    proto = sc.data.get("protocol")
    if not isinstance(proto, dict):
        return {}
    from .datasets.registry import DATASETS
    entry = DATASETS.get(proto.get("dataset"))
    args = proto.get("dataset_args") or {}
    if entry is None or not isinstance(args, dict):
        return {}
    return {f"protocol.dataset_args.{k}": Path(v).resolve() for k, v in args.items()
            if k in entry.args and entry.args[k].type == "file" and isinstance(v, str)}


def scenario_sha256(text, overrides):
    """SHA-256 of a scenario's text together with its overrides (as stored: ``["key=value", ...]``)."""
    return hashlib.sha256(json.dumps({"text": text, "overrides": list(overrides)}).encode()).hexdigest()


def input_hashes(sc):
    """The root attr ``inputs`` of a run from ``sc``: ``{"scenario_sha256": ..., "files": {field: {"path",
    "sha256"}}}``, hashed when the run starts so that a resume can tell whether anything changed since."""
    ovs = [f"{k}={v}" for k, v in sc.overrides]
    return {"scenario_sha256": scenario_sha256(sc.text, ovs),
            "files": {label: {"path": str(p), "sha256": file_sha256(p)} for label, p in input_files(sc).items()}}


def changed_inputs(path, sc, root_attrs):
    """What differs between the inputs recorded when the run at ``path`` started and those a resume
    would read now (human-readable lines; empty: nothing changed)."""
    stored = root_attrs.get("inputs")
    changes = []
    src = root_attrs.get("scenario_source")
    if src and Path(src).is_file() and Path(src).read_text() != root_attrs.get("scenario"):
        changes.append(f"the scenario file {src} was edited; a resume runs the scenario text stored in the "
                       "store and would ignore the edits")
    if not isinstance(stored, dict):
        warnings.warn(f"{path}: the store records no input hashes (written before microcircuit kept them); "
                      "cannot check that its input files are unchanged", stacklevel=3)
        return changes
    if stored.get("scenario_sha256") != scenario_sha256(root_attrs.get("scenario", ""), root_attrs.get("overrides", [])):
        changes.append("the stored scenario text or overrides no longer match their hash (root attrs edited)")
    now = input_hashes(sc)["files"]
    old = stored.get("files", {})
    for label in sorted(set(old) | set(now)):
        a, b = old.get(label), now.get(label)
        if a is None or b is None:
            changes.append(f"{label}: {'new input ' + b['path'] if a is None else 'no longer read (' + a['path'] + ')'}")
        elif a["path"] != b["path"]:
            changes.append(f"{label}: was {a['path']}, now resolves to {b['path']}")
        elif a["sha256"] != b["sha256"]:
            what = "is missing" if b["sha256"] is None else "changed"
            changes.append(f"{label}: {b['path']} {what} since the run started (sha256 "
                           f"{str(a['sha256'])[:12]}... then, {str(b['sha256'])[:12]}... now)")
    return changes


def resume(path, *, progress=False, backend=None, run=True, allow_changed_inputs=False):
    """Resume the run stored at ``path`` from its last checkpoint; returns the (closed) Simulation, or
    for a ``[protocol]`` run the :class:`~microcircuit.protocols.TrainResult` (``run`` must be True).

    With ``run=False`` the restored, reopened simulation is returned without running it. Raises
    :class:`InputsChangedError` if the run's input files or scenario file changed since it started
    (see the module docstring), unless ``allow_changed_inputs``.
    """
    from .recording import ZarrRecorder, _open_root, read_checkpoint
    sc = scenario_from_store(path)
    arrays, attrs = read_checkpoint(path)
    root_attrs = dict(_open_root(Path(path)).attrs)
    changes = changed_inputs(path, sc, root_attrs)
    if changes and not allow_changed_inputs:
        raise InputsChangedError(path, changes, attrs.get("step"))
    if "protocol" in sc.data:
        return _resume_protocol(path, sc, arrays, attrs, root_attrs, changes, progress, run)
    sim = sc.build(output=False, progress=progress, backend=backend)
    restore_program(sim.program, arrays, attrs)
    sim.recorder = ZarrRecorder.reopen(path, sim.specs, n_records=attrs.get("n_records"),
                                       last_step=attrs.get("last_step"))
    if changes:  # allowed: the records from here on use the inputs as they are now; keep the history
        noted = list(root_attrs.get("resumed_with_changed_inputs", []))
        sim.recorder.set_attrs(inputs=input_hashes(sc),
                               resumed_with_changed_inputs=[*noted, {"step": attrs.get("step"), "changes": changes}])
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


def _resume_protocol(path, sc, arrays, attrs, root_attrs, changes, progress, run):
    """The protocol branch of :func:`resume`: returns the :class:`~microcircuit.protocols.TrainResult`."""
    from .protocols import ProtocolCheckpoint, resume_protocol
    if not run:
        raise SimulationError(f"{path}: resume(run=False) returns a plain run's simulation; a protocol run "
                              "resumes as a whole (resume(path))")
    if "protocol" not in attrs:
        raise SimulationError(f"{path}: the scenario has a [protocol] table but the checkpoint was written by a "
                              "plain run; it cannot be resumed as a protocol run")
    extra = {}
    if changes:  # allowed: as for plain runs, the new hashes and the history of the changes
        noted = list(root_attrs.get("resumed_with_changed_inputs", []))
        extra = {"inputs": input_hashes(sc),
                 "resumed_with_changed_inputs": [*noted, {"epoch": attrs["protocol"].get("epoch"),
                                                          "step": attrs.get("step"), "changes": changes}]}
    return resume_protocol(sc, path, ProtocolCheckpoint(arrays, attrs, extra), progress=progress)


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
