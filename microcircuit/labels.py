"""Labels and parameters a recording carries about its circuit, so that a store read months later
(or in another lab's notebook) says what each population is without the code that made it.

* :func:`population_labels`: per population its cell type (the neuron model: ``pyramidal``,
  ``interneuron``, ``output_pyramidal``, ``rate``, ``input``), its ``layer`` and its size. The
  recorders put them in each population group's attrs and as per-neuron coordinates
  (``cell_type``, ``layer`` along ``neuron``), so ``xr.concat`` of two populations keeps them apart.
* :func:`model_parameters`: every population's parameters with the model defaults filled in and
  their units, and every projection's wiring and plasticity, as one JSON-able dict stored in the
  root attr ``parameters`` next to the scenario text (the text says what was asked for, this what
  the model used).

``layer`` is the processing depth: the fewest projections from an input population (model
``input``, layer 0) to the population, following projections in their direction. In the
dendritic-error microcircuit the hidden pyramids are layer 1 and the output pyramids layer 2; the
interneurons of hidden layer 1 are layer 2 too, as they mirror the layer above them (Sacramento et
al. 2018). A population no input reaches gets layer -1.
"""
from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np

__all__ = ["population_labels", "model_parameters"]


def _depths(circuit) -> dict[str, int]:
    """Breadth-first distance in projections from the input populations (see the module docstring)."""
    depth = {p.name: 0 for p in circuit.populations if p.model == "input"}
    queue = deque(depth)
    while queue:
        pre = queue.popleft()
        for post in circuit.graph.successors(pre):
            if post not in depth:
                depth[post] = depth[pre] + 1
                queue.append(post)
    return depth


def name_in(program, name: str) -> bool:
    return name in getattr(program, "pop_index", {})


def population_labels(circuit) -> dict[str, dict[str, Any]]:
    """``{population: {"cell_type", "layer", "size"}}`` for every population of ``circuit``."""
    depth = _depths(circuit)
    return {p.name: {"cell_type": p.model, "layer": int(depth.get(p.name, -1)), "size": int(p.size)}
            for p in circuit.populations}


def _plain(value: Any) -> Any:
    """A JSON value: numpy scalars and arrays as Python numbers and lists, anything else as text."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain(v) for v in np.asarray(value, dtype=object).tolist()]
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def _projection(pr) -> dict[str, Any]:
    """A projection's wiring and plasticity; an explicit weight array stays in the scenario text."""
    weights = {k: v for k, v in pr.weights.items() if not (k == "value" and pr.weights.get("dist") == "array")}
    return _plain({"pre": pr.pre, "post": pr.post, "target": pr.target, "signal": pr.signal,
                   "connector": pr.connector, "weights": weights, "plasticity": pr.plasticity,
                   "feedback": pr.feedback})


COMPILED_DOC = ("per-neuron values the kernel integrates (one number when all neurons agree): g_lk leak, "
                "g0 first dendrite (basal g_B, interneuron g_D; rate neurons 1/tau_m), g1 apical g_A, "
                "g_nud somatic nudging g_som (all 1/ms), tau_r prospective time constant (ms), gamma, "
                "sigma noise (1/sqrt(ms)), bias")


def _compiled(program, name: str) -> dict[str, Any]:
    """The values a preset or distribution resolved to, read back from the compiled program."""
    sl = program.pop_slice(name)
    out = {}
    for key in ("g_lk", "g0", "g1", "g_nud", "tau_r", "gamma", "sigma", "bias"):
        v = np.asarray(program.neuron[key][sl], dtype=float)
        out[key] = float(v[0]) if v.size and np.all(v == v[0]) else v.tolist()
    return out


def model_parameters(circuit, program=None) -> dict[str, Any]:
    """Every population's parameters (defaults filled in) with units, and every projection; with the
    compiled ``program`` also the values presets and distributions resolved to (``compiled``)."""
    pops = {}
    for p in circuit.populations:
        rows = circuit.parameter_table(p.name)
        pops[p.name] = {"model": p.model, "size": int(p.size),
                        "values": _plain({r["parameter"]: r["value"] for r in rows}),
                        "units": {r["parameter"]: r["unit"] for r in rows}}
        if program is not None and name_in(program, p.name):
            pops[p.name]["compiled"] = _compiled(program, p.name)
    if program is not None:
        pops_doc = {"compiled": COMPILED_DOC}
    else:
        pops_doc = {}
    return {"circuit": circuit.name, **pops_doc, "populations": pops,
            "projections": {pr.name: _projection(pr) for pr in circuit.projections}}
