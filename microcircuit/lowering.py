"""How a population becomes rows of the program's tables.

A neuron model lowers itself: ``NeuronModel.lower(ctx, i, pop)`` (``models/*.py``) fills row ``i`` of
``pop_int`` / ``pop_float`` and the population's slice of the per-neuron arrays, reading its
parameters with :func:`param` / :func:`per_neuron`. The compiler only loops over the populations
(:func:`microcircuit.compile.compile_circuit`); it knows no model by name. A new neuron model is a
new module in ``models/`` with its variables, parameters and ``lower`` — plus kernel code only if it
needs arithmetic the soma op does not have.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .activations import activation_id, DEFAULT_PARAMS
from .errors import CircuitError
from .layout import PP_ACT, PP_GATED, PP_NOISE, PPF_A0, PPF_A2


@dataclass
class Lowering:
    """What a model's ``lower`` may read and write while the compiler builds a program."""
    circuit: object
    dt: float
    scheme: str
    offsets: dict              # population name -> first neuron
    pop_index: dict            # population name -> row
    pop_int: np.ndarray
    pop_float: np.ndarray
    neuron: dict               # per-neuron arrays (N,): g_lk, g0, g1, g_nud, tau_r, gamma, sigma, bias, err_tau
    targeted: set              # populations a ``target`` stimulus drives
    nudged_by_proj: set        # populations a projection nudges
    rngs: dict                 # population name -> generator of its per-neuron parameter draws
    n_total: int = 0           # neurons in the circuit

    def slice(self, pop) -> slice:
        off = self.offsets[pop.name]
        return slice(off, off + pop.size)

    def draw(self, pop, value, name):
        """Per-neuron values of parameter ``name`` (scalar, list or distribution) for ``pop``."""
        return per_neuron(value, pop.size, self.rngs[pop.name], f"population '{pop.name}'.{name}")


def param(pop, name, default):
    """A population's parameter, or ``default`` when unset."""
    v = pop.params.get(name, None)
    return default if v is None else v


def per_neuron(value, n, rng, where):
    """Scalar, list of n values, or a distribution dict -> array (n,)."""
    if isinstance(value, dict):
        dist = value.get("dist", "normal")
        if dist == "normal":
            x = rng.normal(value.get("mean", 0.0), value.get("std", 1.0), n)
        elif dist == "uniform":
            x = rng.uniform(value.get("low", 0.0), value.get("high", 1.0), n)
        elif dist == "lognormal":
            x = rng.lognormal(value.get("mean", 0.0), value.get("sigma", 1.0), n)
        elif dist == "relative_normal":   # value * N(1, width), as the LE tau-noise experiments
            x = value["value"] * rng.normal(1.0, value.get("width", 0.0), n)
        else:
            raise CircuitError(f"{where}: unknown distribution '{dist}' (normal, uniform, lognormal, "
                               f"relative_normal)")
        return np.clip(x, value.get("min", -np.inf), value.get("max", np.inf))
    arr = np.asarray(value, dtype=float)
    if arr.ndim == 0:
        return np.full(n, float(arr))
    if arr.shape != (n,):
        raise CircuitError(f"{where}: expected one value or {n} values (one per neuron), got shape {arr.shape}")
    return arr.copy()


def lower_soma(ctx: Lowering, i: int, p) -> slice:
    """What every somatic (rate or dendritic) model shares: transfer function and its parameters,
    white noise, a bias, and nudging gated when a target stimulus drives the population."""
    m = p.neuron_model
    sl = ctx.slice(p)
    act = param(p, "activation", m.parameters["activation"].default)
    ctx.pop_int[i, PP_ACT] = activation_id(act)
    ap = list(param(p, "activation_params", DEFAULT_PARAMS.get(act, (0.0, 0.0, 0.0))))
    if act in DEFAULT_PARAMS and not any(ap):
        ap = list(DEFAULT_PARAMS[act])
    ctx.pop_float[i, PPF_A0:PPF_A2 + 1] = (ap + [0.0, 0.0, 0.0])[:3]
    ctx.neuron["sigma"][sl] = ctx.draw(p, param(p, "sigma", 0.0), "sigma")
    ctx.neuron["bias"][sl] = ctx.draw(p, param(p, "bias", 0.0), "bias")
    ctx.pop_int[i, PP_NOISE] = int(np.any(ctx.neuron["sigma"][sl] > 0))
    ctx.pop_int[i, PP_GATED] = int(p.name in ctx.targeted)
    return sl
