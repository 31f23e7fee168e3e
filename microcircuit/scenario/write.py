"""Writing scenarios: a :class:`~microcircuit.circuit.Circuit` as ``[[populations]]`` and
``[[projections]]`` TOML tables, so that a network built (or initialised, e.g. self-predicting) in
Python becomes a scenario file a user runs with ``microcircuit run``. Weight arrays are written as
``dist = "array"`` tables (6 decimals)."""
from __future__ import annotations

import numpy as np

__all__ = ["toml_value", "toml_table", "circuit_toml"]


def toml_value(x) -> str:
    """One TOML value: bool, str, number, inline table (dict) or (nested) array."""
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, str):
        return f'"{x}"'
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    if isinstance(x, (float, np.floating)):
        return repr(float(x))
    if isinstance(x, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in x.items()) + " }"
    a = np.asarray(x)
    if a.ndim == 2 and a.dtype.kind == "f":
        return "[" + ", ".join("[" + ", ".join(f"{v:.6f}" for v in row) + "]" for row in a) + "]"
    return "[" + ", ".join(toml_value(v) for v in x) + "]"


def toml_table(name, d) -> list:
    """Lines of a ``[name]`` table."""
    return [f"[{name}]"] + [f"{k} = {toml_value(v)}" for k, v in d.items()] + [""]


def scenario_text(header, tables, body) -> str:
    """A scenario file: ``header`` lines as a comment block, then the ``tables`` (lists of lines, e.g.
    from :func:`toml_table`) and the ``body`` lines (e.g. :func:`circuit_toml`)."""
    return "\n".join(["# " + h if h else "#" for h in header] + [""] + sum(tables, []) + list(body))


def circuit_toml(c, weights=None, population_keys=None) -> list:
    """Lines of the ``[[populations]]`` and ``[[projections]]`` of circuit ``c``.

    ``weights``: {projection name: weights table} written instead of the circuit's own (e.g. a fresh
    draw instead of an array). ``population_keys``: write only these population parameters (default:
    every parameter that is set)."""
    weights = weights or {}
    lines = []
    for p in c.populations:
        lines += ["[[populations]]", f'name = "{p.name}"', f'model = "{p.model}"', f"size = {p.size}"]
        lines += [f"{k} = {toml_value(v)}" for k, v in p.params.items()
                  if v is not None and (population_keys is None or k in population_keys)]
        lines.append("")
    for pr in c.projections:
        lines += ["[[projections]]", f'name = "{pr.name}"', f'pre = "{pr.pre}"', f'post = "{pr.post}"',
                  f'target = "{pr.target}"', f'signal = "{pr.signal}"']
        if pr.connector.get("kind", "all_to_all") != "all_to_all":
            lines.append(f'connector = {{ kind = "{pr.connector["kind"]}" }}')
        lines.append(f"weights = {toml_value(weights.get(pr.name, pr.weights))}")
        if pr.rule != "none":
            pl = {k: v for k, v in pr.plasticity.items()
                  if k in ("rule", "eta", "w_max", "tau_w", "optimizer", "momentum", "beta1", "beta2", "eps",
                           "error_source") and v and not (k == "optimizer" and v == "sgd")}
            lines.append(f"plasticity = {toml_value(pl)}")
        lines.append("")
    return lines
