r"""Dendritic-error microcircuit neurons (Sacramento et al. 2018; LE paper §5).

Capacitance 1, rest 0, conductances in 1/ms; dendrites are instantaneous.

Hidden pyramidal neuron (soma, basal, apical):

.. math::

    \dot u = -g_{lk} u + g_B (v_B - u) + g_A (v_A - u) + \sigma \xi
           = g_{tot}(u_{ss} - u) + \sigma\xi,

with :math:`v_B = W^{PP}_{k,k-1} r_{k-1}` and :math:`v_A = W^{PP}_{k,k+1} r_{k+1} + W^{PI} r_I`.

Output pyramidal neuron (soma, basal; no apical), nudged toward a target voltage:
:math:`\dot u = -g_{lk} u + g_B (v_B - u) + g_{som} (u_{tgt} - u) + \sigma\xi` (the conductance
pair with :math:`E_{exc}, E_{inh}` reduces to this form exactly).

Interneuron (soma, dendrite), nudged one-to-one toward its partner pyramidal neuron above:
:math:`\dot u_I = -g_{lk} u_I + g_D (v_I - u_I) + g_{som}(u_{P,k+1} - u_I) + \sigma\xi`.

Rates: the original model sends :math:`r = \varphi(u)`; with ``latent_equilibrium`` the neuron
sends :math:`r = \varphi(\breve u)`, :math:`\breve u = u + \dot u / g_{tot}`, which equals
:math:`u_{ss}` exactly (the instantaneous fixed point is transmitted).

Presets: ``sacramento2018`` (g_lk, g_B, g_A, g_D, g_som) = (0.1, 1.0, 0.8, 1.0, 0.8);
``bern`` (LE paper) = (0.03, 0.1, 0.06, 0.1, 0.06).
"""
from .base import (NeuronModel, Parameter, Variable, SIG_U, SIG_UPROS, SIG_R, SIG_RP, SIG_UDOT,
                   SIG_V0, SIG_V1, SIG_UTGT, PORT_PROXIMAL, PORT_APICAL, PORT_NUDGE, PORT_CURRENT)
from ..activations import ACTIVATIONS
from ..layout import PP_TAUR_MODE
from ..lowering import lower_soma, param

PRESETS = {
    "sacramento2018": {"g_lk": 0.1, "g_B": 1.0, "g_A": 0.8, "g_D": 1.0, "g_som": 0.8},
    "bern": {"g_lk": 0.03, "g_B": 0.1, "g_A": 0.06, "g_D": 0.1, "g_som": 0.06},
}


def conductances(pop) -> dict:
    """g_lk, g_B, g_A, g_D, g_som of a dendritic population: its own values, else those derived from
    its ``morphology``, else its ``preset``'s."""
    preset = PRESETS[param(pop, "preset", "sacramento2018")]
    g = {k: pop.params.get(k) for k in ("g_lk", "g_B", "g_A", "g_D", "g_som")}
    morph = pop.params.get("morphology")
    if morph:
        from ..morphology import derive_conductances   # noqa: PLC0415  (morphology reading is optional)
        derived = derive_conductances(morph)
        for k, v in derived.items():
            if k in g and g[k] is None:
                g[k] = v
    return {k: (preset[k] if v is None else v) for k, v in g.items()}


def lower(ctx, i, p):
    """Conductances per neuron: g_lk; g0 = g_D (interneuron dendrite) or g_B (basal); g1 = g_A where
    there is an apical compartment; g_nud = g_som where a target or a projection nudges. Latent
    equilibrium: tau_r = 1/g_tot in the kernel; otherwise r = phi(u) (tau_r = 0), or phi(u_new)
    (tau_r = dt) under the published_microcircuit scheme (microcircuit.compile). Error neurons: none
    (err_tau = dt)."""
    sl = lower_soma(ctx, i, p)
    m = p.neuron_model
    g = conductances(p)
    ctx.neuron["g_lk"][sl] = ctx.draw(p, g["g_lk"], "g_lk")
    proximal = "g_D" if "dendrite" in m.ports else "g_B"
    ctx.neuron["g0"][sl] = ctx.draw(p, g[proximal], proximal)
    if "apical" in m.ports:
        ctx.neuron["g1"][sl] = ctx.draw(p, g["g_A"], "g_A")
    if p.name in ctx.targeted or p.name in ctx.nudged_by_proj:
        ctx.neuron["g_nud"][sl] = ctx.draw(p, g["g_som"], "g_som")
    le = bool(param(p, "latent_equilibrium", False))
    ctx.pop_int[i, PP_TAUR_MODE] = int(le)
    if not le and ctx.scheme == "published_microcircuit":
        ctx.neuron["tau_r"][sl] = ctx.dt
    ctx.neuron["err_tau"][sl] = ctx.dt


def _common(extra):
    return {p.name: p for p in [
        Parameter("preset", "sacramento2018", "", "parameter preset: sacramento2018 | bern", kind="str",
                  choices=tuple(PRESETS), per_neuron=False),
        Parameter("g_lk", None, "1/ms", "leak conductance (default from preset)", low=0.0),
        *extra,
        Parameter("g_som", None, "1/ms", "somatic nudging conductance (default from preset)", low=0.0),
        Parameter("sigma", 0.0, "1/sqrt(ms)", "somatic white-noise amplitude", low=0.0),
        Parameter("activation", "softplus", "", "transfer function phi", kind="str",
                  choices=tuple(ACTIVATIONS), per_neuron=False),
        Parameter("activation_params", [0.0, 0.0, 0.0], "", "parameters of phi", kind="list",
                  per_neuron=False),
        Parameter("latent_equilibrium", False, "", "send phi(u + du/dt / g_tot) instead of phi(u)",
                  kind="bool", per_neuron=False),
        Parameter("bias", 0.0, "1", "constant added to the basal/dendritic potential"),
        Parameter("morphology", None, "", "bundled cell id or SWC path to derive conductances from",
                  kind="str", per_neuron=False),
    ]}


_soma_vars = [
    Variable("u", "1", "somatic membrane potential", SIG_U),
    Variable("u_pros", "1", "prospective potential u + du/dt / g_tot", SIG_UPROS),
    Variable("r", "1", "output rate", SIG_R),
    Variable("phi_prime", "1", "derivative phi'", SIG_RP),
    Variable("udot", "1/ms", "membrane derivative du/dt", SIG_UDOT),
    Variable("u_tgt", "1", "nudging target potential", SIG_UTGT),
]

PYRAMIDAL = NeuronModel(
    name="pyramidal",
    doc=__doc__,
    compartments=("soma", "basal", "apical"),
    parameters=_common([
        Parameter("g_B", None, "1/ms", "basal-to-soma coupling conductance", low=0.0),
        Parameter("g_A", None, "1/ms", "apical-to-soma coupling conductance", low=0.0),
    ]),
    variables={v.name: v for v in _soma_vars + [
        Variable("v_B", "1", "basal dendritic potential", SIG_V0),
        Variable("v_A", "1", "apical dendritic potential", SIG_V1),
        Variable("v", "1", "compartment potentials", (SIG_U, SIG_V0, SIG_V1), ("soma", "basal", "apical")),
    ]},
    ports={"basal": PORT_PROXIMAL, "apical": PORT_APICAL, "nudge": PORT_NUDGE, "soma": PORT_CURRENT},
    lower=lower,
)

OUTPUT_PYRAMIDAL = NeuronModel(
    name="output_pyramidal",
    doc=__doc__,
    compartments=("soma", "basal"),
    parameters=_common([
        Parameter("g_B", None, "1/ms", "basal-to-soma coupling conductance", low=0.0),
    ]),
    variables={v.name: v for v in _soma_vars + [
        Variable("v_B", "1", "basal dendritic potential", SIG_V0),
        Variable("v", "1", "compartment potentials", (SIG_U, SIG_V0), ("soma", "basal")),
    ]},
    ports={"basal": PORT_PROXIMAL, "nudge": PORT_NUDGE, "soma": PORT_CURRENT},
    lower=lower,
)

INTERNEURON = NeuronModel(
    name="interneuron",
    doc=__doc__,
    compartments=("soma", "dendrite"),
    parameters=_common([
        Parameter("g_D", None, "1/ms", "dendrite-to-soma coupling conductance", low=0.0),
    ]),
    variables={v.name: v for v in _soma_vars + [
        Variable("v_D", "1", "dendritic potential", SIG_V0),
        Variable("v", "1", "compartment potentials", (SIG_U, SIG_V0), ("soma", "dendrite")),
    ]},
    ports={"dendrite": PORT_PROXIMAL, "nudge": PORT_NUDGE, "soma": PORT_CURRENT},
    lower=lower,
)
