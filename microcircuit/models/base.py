"""The variable registry shared by every neuron model.

A model declares its parameters and recordable variables once. The same table drives
scenario validation (names, bounds), array layout in the compiled program, and the
``units``/``long_name`` attributes of recordings.

Units are fixed, never converted in the hot path: time in ms, potentials in the models'
dimensionless (or mV-like) units, rates dimensionless, conductances in 1/ms (capacitance 1).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..registry import LOSSES as _LOSSES, docs


@dataclass(frozen=True)
class Parameter:
    name: str
    default: object
    unit: str = "1"
    doc: str = ""
    kind: str = "float"          # float | int | bool | str | activation
    low: float | None = None      # inclusive bounds
    high: float | None = None
    per_neuron: bool = True       # may be given per neuron (list or distribution)
    choices: tuple | None = None
    strict_low: bool = False      # low bound exclusive (> instead of >=)


@dataclass(frozen=True)
class Variable:
    name: str
    unit: str
    long_name: str
    code: int | tuple            # kernel signal code(s); a tuple => one per compartment
    compartments: tuple | None = None


@dataclass(frozen=True)
class NeuronModel:
    """A neuron model: compartments around a soma, parameters and recordable variables."""
    name: str
    doc: str
    compartments: tuple
    parameters: dict = field(default_factory=dict)
    variables: dict = field(default_factory=dict)
    ports: dict = field(default_factory=dict)   # projection target name -> kernel port index
    is_input: bool = False
    # errors e: "fused" (the population computes its own, LE/GLE rate neurons), "population" (it is a
    # separate error population of a partner, cortical mapping) or "none" (dendritic neurons learn
    # from dendritic potentials); decides the error phase of the schedule and default feedback
    error_role: str = "none"
    # lower(ctx, i, pop): fill row i of the program's tables (microcircuit.lowering); None: nothing to
    # lower (input populations, driven by stimuli only)
    lower: object = field(default=None, compare=False, repr=False)

    def parameter_table(self):
        rows = []
        for p in self.parameters.values():
            bounds = ""
            if p.low is not None:
                bounds += (">" if p.strict_low else ">=") + f" {p.low:g}"
            if p.high is not None:
                bounds += f" <= {p.high:g}"
            if p.choices:
                bounds = " | ".join(map(str, p.choices))
            rows.append({"name": p.name, "default": p.default, "unit": p.unit, "bounds": bounds,
                         "doc": p.doc})
        return rows


# Output losses of rate and error populations (parameter ``loss``): microcircuit.registry.LOSSES
LOSSES = docs(_LOSSES)


# Kernel signal codes and ports: named once in microcircuit.layout (re-exported for the models).
from ..layout import (SIG_U, SIG_UPROS, SIG_R, SIG_RP, SIG_E, SIG_UDOT, SIG_V0, SIG_V1,  # noqa: E402,F401
                      SIG_EPS, SIG_VERR, SIG_UTGT, SIGNAL_NAMES, PORT_PROXIMAL, PORT_APICAL, PORT_NUDGE,
                      PORT_CURRENT, N_PORTS)
