r"""GLE error neurons as their own population: the cortical mapping of GLE (Ellenberger et al.
2024, Fig. 4; see the error-populations page of the docs, docs/models/error-populations.md).

In the fused form every ``rate`` neuron carries its own error neuron. Here the error neurons
of one layer form a separate population that is the one-to-one *partner* of a representation
population (``partner = "<rate population>"``) and mirrors it with the time constants swapped:

.. math::

    \tau_r \dot v = -v + \varepsilon, \qquad e = v + \tau_m \dot v, \qquad
    \varepsilon = \varphi'(\breve u) \odot \textstyle\sum_k M_k e_{k} + \beta\, e_{trg}

with :math:`\tau_m, \tau_r, \varphi'(\breve u)` read from the partner neuron (so a learned
:math:`\tau_m` is followed), and :math:`M_k` the top-down error projections into this
population (``target = "error"``, ``signal = "e"``): either tied to a forward weight,
``weights = {transpose_of = "W2"}`` (:math:`M = W_2^T`, exact weight transport), or a fixed
matrix :math:`B` (feedback alignment). Fixed projections of rates may also enter the error
input, e.g. ``+beta r_teacher`` and ``-beta r_student`` give the mimic loss
:math:`\varepsilon = \beta\varphi'(\breve u)(r_{teacher} - r_{student})` inside one circuit
(``scenarios/gle_lagline.toml``). The output error population computes
:math:`e_{trg}` from its partner's rate and the target given to it (``loss``: ``rate``,
``voltage`` or ``cross_entropy``, as for ``rate``). ``prospective_errors = false`` gives
:math:`e = \varepsilon` (LE errors).

The error reaches its representation partner through a one-to-one projection
``err -> rep`` with ``target = "error"``, ``signal = "e"`` and weight :math:`\gamma`, which adds
:math:`\gamma e` to the partner's basal potential :math:`v_0`. The forward weights learn from
the partner error population, ``plasticity = {rule = "error", error_source = "err2"}`` (the
default when the post population has a partner): :math:`\dot W = \eta\, e\, r_{pre}^T`.

Schedule: error populations run in the error phase of a step in place of their partner
(reverse layer order); a projection carrying ``e`` reads the error of the current step. One
step therefore equals the fused step in both schemes, to rounding.
"""
from .base import LOSSES, NeuronModel, Parameter, Variable, SIG_E, SIG_EPS, SIG_VERR, PORT_CURRENT
from ..checks import error_partner_problem
from ..errors import CircuitError
from ..registry import LOSS_IDS
from ..layout import PP_PARTNER, PP_LOSS, PP_ERRMODE, PP_GATED, PPF_BETA
from ..lowering import param


def lower(ctx, i, p):
    """Link the error population and its representation partner (``pop_int[:, PP_PARTNER]`` both ways);
    its loss, beta and error-neuron mode; nudging (beta) gated like an output's."""
    where = f"population '{p.name}' (model error)"
    partner = p.params.get("partner")
    pops = ctx.circuit.populations
    info = {q.name: (q.model, q.size, q.params.get("loss", "none")) for q in pops}
    taken = {q.name for q in pops if q.name in ctx.pop_index and ctx.pop_int[ctx.pop_index[q.name], PP_PARTNER] >= 0}
    problem = error_partner_problem(p.name, p.size, partner, info, taken)
    if problem is not None:
        field, msg = problem
        raise CircuitError(f"{where}.partner: {msg}" if field == "partner" else f"population '{partner}'.loss: {msg}")
    k = ctx.pop_index[partner]
    ctx.pop_int[i, PP_PARTNER] = ctx.offsets[partner]
    ctx.pop_int[k, PP_PARTNER] = ctx.offsets[p.name]
    loss = param(p, "loss", "none")
    if loss not in LOSS_IDS:
        raise CircuitError(f"{where}.loss: unknown loss '{loss}'; use one of {list(LOSS_IDS)}")
    ctx.pop_int[i, PP_LOSS] = LOSS_IDS[loss]
    ctx.pop_float[i, PPF_BETA] = float(param(p, "beta", 0.1))
    ctx.pop_int[i, PP_ERRMODE] = int(bool(param(p, "prospective_errors", True)))
    ctx.pop_int[i, PP_GATED] = 1

ERROR = NeuronModel(
    name="error",
    doc=__doc__,
    compartments=("soma",),
    parameters={p.name: p for p in [
        Parameter("partner", None, "", "representation (rate) population this population computes the errors of "
                  "(one-to-one, same size); its tau_m, tau_r and phi'(u_pros) are used", kind="str",
                  per_neuron=False),
        Parameter("prospective_errors", True, "", "GLE error neuron (constants swapped); false: e = eps",
                  kind="bool", per_neuron=False),
        Parameter("loss", "none", "", "output error: none | rate | voltage | cross_entropy (from the partner's "
                  "rate and the target given to this population)", kind="str",
                  choices=tuple(LOSSES), per_neuron=False),
        Parameter("beta", 0.1, "1", "output nudging strength", low=0.0, per_neuron=False),
    ]},
    variables={v.name: v for v in [
        Variable("e", "1", "error (error-neuron output)", SIG_E),
        Variable("eps", "1", "error-neuron input", SIG_EPS),
        Variable("v_err", "1", "error-neuron membrane potential", SIG_VERR),
    ]},
    # top-down errors from the error population above (W^T e or B e); the kernel accumulates them
    # in the error input, not in a dendritic port
    ports={"error": PORT_CURRENT},
    error_role="population",
    lower=lower,
)
