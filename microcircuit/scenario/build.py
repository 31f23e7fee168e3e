"""Scenario -> Circuit -> Program -> Simulation."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..circuit import Circuit
from ..compile import compile_circuit
from ..errors import ScenarioError, MicrocircuitError, CircuitError
from ..simulation import Simulation, Recording
from ..stimuli import STIMULUS_TYPES, load_array, StimulusError


def build_circuit(sc) -> Circuit:
    c = Circuit(sc.name)
    for p in sc.data.get("populations", []):
        params = {k: v for k, v in p.items() if k not in ("name", "model", "size")}
        c.add_population(p["name"], p.get("model", "rate"), p["size"], **params)
    for pr in sc.data.get("projections", []):
        c.add_projection(pr["pre"], pr["post"], pr.get("target", "basal"), name=pr.get("name"),
                         signal=pr.get("signal", "r"), connector=pr.get("connector"), weights=pr.get("weights"),
                         plasticity=pr.get("plasticity"), feedback=pr.get("feedback", "auto"),
                         feedback_std=pr.get("feedback_std", 0.05))
    return c


def build_stimuli(sc):
    out = []
    for i, s in enumerate(sc.data.get("stimuli", [])):
        kw = {k: v for k, v in s.items() if k not in ("target", "kind", "waveform", "name", "file", "key")}
        cls = STIMULUS_TYPES[s["waveform"]]
        common = dict(kind=s.get("kind", "rate"), name=s.get("name") or f"stimuli[{i}]")
        try:
            if s["waveform"] == "array":
                path = Path(s["file"])
                if not path.is_absolute() and sc.base_dir is not None:
                    path = sc.base_dir / path
                arr = load_array(path, s.get("key"), f"{sc.source}: stimuli[{i}].file")
                kw.pop("delay_steps", None)
                out.append(cls(s["target"], arr, delay_steps=s.get("delay_steps", 0), **kw, **common))
            else:
                out.append(cls(s["target"], **kw, **common))
        except StimulusError as exc:
            raise ScenarioError([(f"stimuli[{i}]", str(exc))], sc.source) from exc
    return out


def _abs(source):
    """The scenario file's absolute path (stores are reopened from other working directories)."""
    from pathlib import Path
    try:
        return str(Path(source).resolve()) if source and Path(source).exists() else str(source or "")
    except (OSError, TypeError):
        return str(source or "")


def build_simulation(sc, output=None, overwrite=None, progress=False, backend=None, gates=None,
                     extra_recordings=(), chunk_steps=None):
    sim_cfg = sc.data["simulation"]
    out_cfg = sc.data.get("output", {})
    if output is False or (output is None and not out_cfg.get("path")):
        _check_in_memory(sc)
    try:
        circuit = build_circuit(sc)
        prog = compile_circuit(circuit, dt=sim_cfg["dt"], batch=sim_cfg.get("batch", 1),
                               scheme=sim_cfg.get("scheme", "synchronous"), dtype=sim_cfg.get("dtype", "float64"),
                               seed=sim_cfg.get("seed", 0), stimuli=build_stimuli(sc), base_dir=sc.base_dir)
        recs = [Recording(r["population"], list(r.get("variables", ["r"])), r.get("neurons", "all"),
                          r.get("stride", 1), r.get("dtype", "float64")) for r in sc.data.get("recordings", [])]
        recs += list(extra_recordings)
        # output=False: in memory even if the scenario names a store (resume reopens its own)
        path = None if output is False else (output if output is not None else out_cfg.get("path"))
        ow = out_cfg.get("overwrite", False) if overwrite is None else overwrite
        attrs = {"scenario": sc.text, "scenario_name": sc.name, "scenario_source": _abs(sc.source),
                 "overrides": [f"{k}={v}" for k, v in sc.overrides]}
        if path:  # hashes of the scenario and its input files at the start, checked by a resume
            from ..checkpoint import input_hashes
            attrs["inputs"] = input_hashes(sc)
        return Simulation(prog, recordings=recs, output=path, overwrite=ow,
                          chunk_steps=chunk_steps or sim_cfg.get("chunk_steps", 2000),
                          backend=backend or sim_cfg.get("backend", "numba"), gates=gates, attrs=attrs,
                          progress=progress, codec=out_cfg.get("codec", "zstd"), threads=sim_cfg.get("threads", 0),
                          writer=out_cfg.get("writer", "fast"))
    except ScenarioError:
        raise
    except CircuitError as exc:
        raise ScenarioError([(_path_of(str(exc), sc.data), str(exc))], sc.source) from exc


def _check_in_memory(sc):
    """A run that records in memory keeps every recorded value: check that total (for
    simulation.duration) against the memory limit before anything is allocated."""
    from .. import limits as L
    if "protocol" in sc.data:
        return
    lim = L.current()
    total, parts = L.estimate_memory(sc.data, sc.base_dir, in_memory=True)
    if total > lim.max_memory_bytes:
        b, where = parts["recording"]
        raise ScenarioError([(where, f"recording in memory for simulation.duration needs about {L.fmt_bytes(total)} "
                                     f"(recording {L.fmt_bytes(b)}), over the limit of "
                                     f"{L.fmt_bytes(lim.max_memory_bytes)} (max_memory_bytes); write to a store "
                                     f"(output.path, or build(output=...)), record fewer neurons or a larger "
                                     f"stride, or raise MICROCIRCUIT_MAX_MEMORY")], sc.source)


_NAMED = re.compile(r"^(projection|population|stimulus) '([^']*)'")


def _path_of(message, data):
    """The dotted path (``projections[3]``) of the entry a compile-time CircuitError names, so that an
    error only the compiler finds still points into the file ("" when the message names none)."""
    m = _NAMED.match(message)
    if not m:
        return ""
    kind, name = m.groups()
    section = {"projection": "projections", "population": "populations", "stimulus": "stimuli"}[kind]
    for i, entry in enumerate(data.get(section) or []):
        if not isinstance(entry, dict):
            continue
        own = entry.get("name")
        if kind == "projection" and not own:
            own = f"{entry.get('pre')}->{entry.get('post')}.{entry.get('target', 'basal')}"
        if kind == "stimulus" and not own:
            own = f"stimuli[{i}]"
        if own == name:
            return f"{section}[{i}]"
    return ""
