"""The circuit as a graph: a population is a node, a projection an edge.

``Circuit`` wraps a :class:`networkx.MultiDiGraph` (a DiGraph that allows two projections
between the same populations, e.g. into two compartments). Node attributes hold a
:class:`Population`, edge attributes (keyed by projection name) a :class:`Projection`.
Nothing here is compiled; :func:`microcircuit.compile.compile_circuit` turns the graph into
flat arrays.
"""
from __future__ import annotations

import html
from dataclasses import dataclass, field

import networkx as nx
import numpy as np

from .errors import CircuitError
from .models import get_model, MODELS


@dataclass
class Population:
    """A group of ``size`` neurons of one model, with parameters (scalars, per-neuron lists
    or distributions ``{dist=..., ...}``)."""
    name: str
    model: str
    size: int
    params: dict = field(default_factory=dict)

    @property
    def neuron_model(self):
        return get_model(self.model)


@dataclass
class Projection:
    """A projection ``pre --(signal)--> post.target``.

    connector: ``{kind = all_to_all | one_to_one | fixed_probability | from_array, p, array}``.
    weights: ``{dist = normal | uniform | constant | array | kaiming_uniform | zeros, ...}``.
    plasticity: ``{rule = none | error | urbanczik_senn | apical_homeostasis, eta, tau_w,
    w_max, t_on, t_off}``.
    feedback: how errors travel back through this projection (LE/GLE): ``transpose`` (weight
    transport, ``W^T``), ``random`` (feedback alignment, fixed ``B ~ N(0, feedback_std^2)``),
    ``none``; ``auto`` = ``transpose`` into the basal port of a rate neuron, else ``none``.
    """
    name: str
    pre: str
    post: str
    target: str = "basal"
    signal: str = "r"
    connector: dict = field(default_factory=lambda: {"kind": "all_to_all"})
    weights: dict = field(default_factory=lambda: {"dist": "normal", "mean": 0.0, "std": 0.05})
    plasticity: dict = field(default_factory=lambda: {"rule": "none"})
    feedback: str = "auto"
    feedback_std: float = 0.05

    @property
    def rule(self):
        return self.plasticity.get("rule", "none")


class Circuit:
    """Populations (nodes) and projections (edges) of a network."""

    def __init__(self, name: str = "circuit"):
        self.name = name
        self.graph = nx.MultiDiGraph(name=name)

    # ----------------------------------------------------------------- building
    def add_population(self, name, model="rate", size=1, **params) -> Population:
        if name in self.graph:
            raise CircuitError(f"population '{name}' already exists; choose another name")
        if model not in MODELS:
            raise CircuitError(f"population '{name}': unknown model '{model}'; available: {sorted(MODELS)}")
        if int(size) < 1:
            raise CircuitError(f"population '{name}': size must be >= 1, got {size}")
        pop = Population(name, model, int(size), dict(params))
        self.graph.add_node(name, population=pop, order=self.graph.number_of_nodes())
        return pop

    def add_projection(self, pre, post, target="basal", name=None, signal="r", connector=None,
                       weights=None, plasticity=None, feedback="auto", feedback_std=0.05) -> Projection:
        for end, label in ((pre, "pre"), (post, "post")):
            if end not in self.graph:
                raise CircuitError(f"projection {name or pre + '->' + post}: {label} names no population "
                                   f"'{end}'; populations are {list(self.graph.nodes)}")
        name = name or f"{pre}->{post}.{target}"
        if any(k == name for _, _, k in self.graph.edges(keys=True)):
            raise CircuitError(f"projection '{name}' already exists; give it another name")
        post_model = self.population(post).neuron_model
        if target not in post_model.ports:
            raise CircuitError(f"projection '{name}': population '{post}' ({post_model.name}) has no "
                               f"compartment '{target}'; use one of {list(post_model.ports)}")
        proj = Projection(name, pre, post, target, signal,
                          dict(connector or {"kind": "all_to_all"}),
                          dict(weights or {"dist": "normal", "mean": 0.0, "std": 0.05}),
                          dict(plasticity or {"rule": "none"}), feedback, feedback_std)
        self.graph.add_edge(pre, post, key=name, projection=proj)
        return proj

    # ------------------------------------------------------------------ access
    def population(self, name) -> Population:
        try:
            return self.graph.nodes[name]["population"]
        except KeyError:
            raise CircuitError(f"unknown population '{name}'; populations are {list(self.graph.nodes)}") from None

    @property
    def populations(self) -> list[Population]:
        nodes = sorted(self.graph.nodes(data=True), key=lambda n: n[1]["order"])
        return [d["population"] for _, d in nodes]

    @property
    def projections(self) -> list[Projection]:
        return [d["projection"] for _, _, d in self.graph.edges(data=True)]

    def projection(self, name) -> Projection:
        for p in self.projections:
            if p.name == name:
                return p
        raise CircuitError(f"unknown projection '{name}'; projections are {[p.name for p in self.projections]}")

    def order(self) -> list[str]:
        """Update order for the sequential scheme: topological when the graph is acyclic
        (ties broken by declaration order), else the declaration order (back edges then read
        the previous step)."""
        decl = {p.name: i for i, p in enumerate(self.populations)}
        if nx.is_directed_acyclic_graph(self.graph):
            return list(nx.lexicographical_topological_sort(self.graph, key=lambda n: decl[n]))
        return [p.name for p in self.populations]

    # -------------------------------------------------------------- inspection
    def parameter_table(self, population: str):
        """Rows of (parameter, value, unit, doc) for one population, defaults filled in."""
        pop = self.population(population)
        rows = []
        for p in pop.neuron_model.parameters.values():
            val = pop.params.get(p.name, p.default)
            rows.append({"parameter": p.name, "value": val, "unit": p.unit, "doc": p.doc})
        return rows

    def describe(self) -> str:
        lines = [f"Circuit '{self.name}': {len(self.populations)} populations, "
                 f"{len(self.projections)} projections"]
        lines.append("Populations:")
        for pop in self.populations:
            extra = ", ".join(f"{k}={_short(v)}" for k, v in pop.params.items())
            lines.append(f"  {pop.name:<14} {pop.model:<17} n={pop.size:<6} {extra}")
        lines.append("Projections:")
        for pr in self.projections:
            plast = pr.rule if pr.rule != "none" else "fixed"
            lines.append(f"  {pr.name:<28} {pr.pre} --{pr.signal}--> {pr.post}.{pr.target} "
                         f"[{pr.connector.get('kind', 'all_to_all')}, {plast}]")
        return "\n".join(lines)

    __str__ = describe

    def __repr__(self):
        return f"<Circuit '{self.name}': {len(self.populations)} populations, {len(self.projections)} projections>"

    def _repr_html_(self):
        esc = html.escape
        out = [f"<b>Circuit '{esc(self.name)}'</b>",
               "<table><tr><th>population</th><th>model</th><th>size</th><th>parameters</th></tr>"]
        for pop in self.populations:
            params = "<br>".join(f"{esc(k)} = {esc(_short(v))}" for k, v in pop.params.items())
            out.append(f"<tr><td>{esc(pop.name)}</td><td>{esc(pop.model)}</td><td>{pop.size}</td>"
                       f"<td>{params}</td></tr>")
        out.append("</table><table><tr><th>projection</th><th>pre</th><th>post.compartment</th>"
                   "<th>signal</th><th>connector</th><th>plasticity</th></tr>")
        for pr in self.projections:
            out.append(f"<tr><td>{esc(pr.name)}</td><td>{esc(pr.pre)}</td><td>{esc(pr.post)}.{esc(pr.target)}"
                       f"</td><td>{esc(pr.signal)}</td><td>{esc(pr.connector.get('kind', ''))}</td>"
                       f"<td>{esc(str(pr.plasticity))}</td></tr>")
        out.append("</table>")
        return "".join(out)


def _short(v):
    if isinstance(v, (list, tuple, np.ndarray)) and len(v) > 4:
        return f"[{len(v)} values]"
    return str(v)


# ---------------------------------------------------------------------- builders
def layered_tables(sizes, *, hidden=None, output=None, weights=None, eta=0.0, eta_factors=None,
                   feedback="transpose", input_name="input", output_name="output", prefix="layer",
                   projection_prefix=""):
    """The populations and projections of a feed-forward rate network as scenario tables (dicts):
    ``input_name``, ``{prefix}1`` ... ``{prefix}N-1``, ``output_name``; projections
    ``{projection_prefix}W{i}`` into the basal port with the LE/GLE rule ``dW = eta e r^T`` (``eta`` per
    unit time times ``eta_factors[i-1]``; no plasticity when 0) and ``weights`` (None: the default).
    One builder for :func:`layered` and the scenario template ``kind = "layered"``."""
    n_layers = len(sizes) - 1
    factors = eta_factors or [1.0] * n_layers
    pops = [{"name": input_name, "model": "input", "size": sizes[0]}]
    projs = []
    for i in range(1, n_layers + 1):
        last = i == n_layers
        pops.append({"name": output_name if last else f"{prefix}{i}", "model": "rate", "size": sizes[i],
                     **dict((output if last else hidden) or {})})
        proj = {"name": f"{projection_prefix}W{i}", "pre": pops[-2]["name"], "post": pops[-1]["name"],
                "target": "basal", "feedback": feedback}
        if weights is not None:
            proj["weights"] = dict(weights)
        if eta and factors[i - 1]:
            proj["plasticity"] = {"rule": "error", "eta": float(eta) * float(factors[i - 1])}
        projs.append(proj)
    return pops, projs


def layered(sizes, *, hidden=None, output=None, weights=None, eta=0.0, eta_factors=None,
            feedback="transpose", name="layered", input_name="input", prefix="layer") -> Circuit:
    """A feed-forward network of rate neurons, e.g. ``layered([784, 300, 100, 10])``.

    ``hidden``/``output`` are parameter dicts for the rate-neuron populations; every projection
    uses the LE/GLE rule ``dW = eta e r^T`` (``eta`` per unit time, ``eta_factors`` per layer).
    Populations are named ``input``, ``layer1`` ... ``layerN-1`` and ``output`` (:func:`layered_tables`).
    """
    sizes = [int(s) for s in sizes]
    if len(sizes) < 2:
        raise CircuitError("layered() needs at least two sizes (input and output)")
    pops, projs = layered_tables(sizes, hidden=hidden, output=output, eta=eta, eta_factors=eta_factors,
                                 weights=weights or {"dist": "normal", "mean": 0.0, "std": 0.05},
                                 feedback=feedback, input_name=input_name, prefix=prefix)
    c = Circuit(name)
    for p in pops:
        c.add_population(p["name"], p["model"], p["size"], **{k: v for k, v in p.items()
                                                             if k not in ("name", "model", "size")})
    for pr in projs:
        c.add_projection(pr["pre"], pr["post"], pr["target"], name=pr["name"], weights=pr["weights"],
                         plasticity=pr.get("plasticity", {"rule": "none"}), feedback=pr["feedback"])
    return c
