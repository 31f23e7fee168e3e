r"""Prospective rate neuron: Latent Equilibrium (LE) and Generalized LE (GLE).

Representation neuron (Haider et al. 2021; Ellenberger et al. 2024), with the layer's
input :math:`s = W r_{l-1} + b`:

.. math::

    \tau_m \dot u = -u + W r_{l-1} + b + \gamma e, \qquad
    \breve u = u + \tau_r \dot u, \qquad r = \varphi(\breve u)

* ``tau_r == tau_m``: LE — :math:`\breve u = s + \gamma e` at every instant, no lag per layer.
* ``tau_r < tau_m``: retrospective (GLE), lead–lag filter :math:`H(s)=(1+s\tau_r)/(1+s\tau_m)`.
* ``tau_r == 0``: plain leaky integrator, :math:`r = \varphi(u)` (the non-prospective baseline).

Errors. A hidden neuron receives :math:`\varepsilon = \varphi'(\breve u) \odot W_{l+1}^T e_{l+1}`
(or :math:`B e_{l+1}` with feedback alignment); an output neuron receives
:math:`\varepsilon = \beta\, e_{trg}` with ``loss``:

* ``rate``: :math:`e_{trg} = \varphi'(\breve u)\odot(y - \varphi(\breve u))`
* ``voltage``: :math:`e_{trg} = y - \breve u`
* ``cross_entropy``: :math:`e_{trg} = \mathrm{onehot}(y) - \mathrm{softmax}(r)`

With ``prospective_errors`` the error is passed through a GLE error neuron with the constants
swapped, :math:`\tau_r \dot v = -v + \varepsilon`, :math:`e = v + \tau_m \dot v`
(transfer :math:`(1+s\tau_m)/(1+s\tau_r)`); otherwise :math:`e = \varepsilon`.

Time-constant learning (``tau_learning``): ``gle`` :math:`\dot\tau_m = -\eta_\tau e\,\dot u`;
``le_adapt`` :math:`\dot\tau_m = \eta_\tau (\breve u - s - \gamma e)\,\dot u = \eta_\tau(\tau_r-\tau_m)\dot u^2`,
which drives :math:`\tau_m \to \tau_r` without nudging (LE paper §6). Both clamp
:math:`\tau_m \ge` ``tau_min``. ``tau_optimizer`` = ``momentum`` or ``adam`` passes the
per-step estimate through the same optimisers as the weights (see ``kernel._opt_step``).
"""
import numpy as np

from .base import (LOSSES, NeuronModel, Parameter, Variable, SIG_U, SIG_UPROS, SIG_R, SIG_RP, SIG_E,
                   SIG_UDOT, SIG_V0, SIG_EPS, SIG_VERR, PORT_PROXIMAL, PORT_CURRENT)
from ..activations import ACTIVATIONS
from ..errors import CircuitError
from ..registry import LOSS_IDS, TAU_RULE_IDS, OPTIMIZER_IDS, TAU_RULES as _TAU_RULES, docs
from ..layout import (PP_LOSS, PP_ERRMODE, PP_TAU_RULE, PP_GATED,
                      PPF_BETA, PPF_ETA_TAU, PPF_TAU_MIN, PPF_ETA_BIAS, PPF_TOPT, PPF_TOPT_A, PPF_TOPT_B,
                      PPF_TOPT_EPS)
from ..lowering import lower_soma, param


def lower(ctx, i, p):
    """g0 = 1/tau_m, tau_r (default tau_m), error neurons (err_tau = max(tau_r, dt)), gamma, the output
    loss and its nudging, tau_m / bias learning and the optimiser of tau_m learning."""
    sl = lower_soma(ctx, i, p)
    tau_m = ctx.draw(p, param(p, "tau_m", 10.0), "tau_m")
    tau_r_spec = p.params.get("tau_r", None)
    tau_r = tau_m.copy() if tau_r_spec is None else ctx.draw(p, tau_r_spec, "tau_r")
    if np.any(tau_m <= 0):
        raise CircuitError(f"population '{p.name}'.tau_m: must be > 0 ms (got min {tau_m.min():g})")
    ctx.neuron["g0"][sl] = 1.0 / tau_m
    ctx.neuron["tau_r"][sl] = tau_r
    ctx.neuron["err_tau"][sl] = np.maximum(tau_r, ctx.dt)   # error neuron integrates with tau_r
    ctx.neuron["gamma"][sl] = ctx.draw(p, param(p, "gamma", 1.0), "gamma")
    loss = param(p, "loss", "none")
    pi, pf = ctx.pop_int[i], ctx.pop_float[i]
    pi[PP_LOSS] = LOSS_IDS[loss]
    pf[PPF_BETA] = float(param(p, "beta", 0.1))
    pi[PP_ERRMODE] = int(bool(param(p, "prospective_errors", False)))
    pi[PP_TAU_RULE] = TAU_RULE_IDS[param(p, "tau_learning", "none")]
    pf[PPF_ETA_TAU] = float(param(p, "eta_tau", 0.0))
    pf[PPF_TAU_MIN] = float(param(p, "tau_min", 10 * ctx.dt))
    pf[PPF_ETA_BIAS] = float(param(p, "eta_bias", 0.0))
    topt = param(p, "tau_optimizer", "sgd")
    if topt not in OPTIMIZER_IDS:
        raise CircuitError(f"population '{p.name}'.tau_optimizer: unknown optimizer '{topt}'; use one of "
                           f"{list(OPTIMIZER_IDS)}")
    pf[PPF_TOPT] = OPTIMIZER_IDS[topt]
    pf[PPF_TOPT_A] = float(param(p, "tau_momentum", 0.9) if topt == "momentum" else param(p, "tau_beta1", 0.9))
    pf[PPF_TOPT_B] = float(param(p, "tau_beta2", 0.999))
    pf[PPF_TOPT_EPS] = float(param(p, "tau_eps", 1e-8))
    if loss != "none":
        pi[PP_GATED] = 1

# time-constant learning (parameter ``tau_learning``): microcircuit.registry.TAU_RULES
TAU_RULES = docs(_TAU_RULES)

RATE = NeuronModel(
    name="rate",
    doc=__doc__,
    compartments=("soma", "basal"),
    parameters={p.name: p for p in [
        Parameter("tau_m", 10.0, "ms", "membrane time constant", low=0.0, strict_low=True),
        Parameter("tau_r", None, "ms", "prospective (rate) time constant; default = tau_m (LE); 0 = leaky",
                  low=0.0),
        Parameter("activation", "tanh", "", "transfer function phi", kind="str",
                  choices=tuple(ACTIVATIONS), per_neuron=False),
        Parameter("activation_params", [0.0, 0.0, 0.0], "", "parameters of phi (soft_rectifier: gamma, beta, theta; logistic: r_max, beta, theta)",
                  kind="list", per_neuron=False),
        Parameter("bias", 0.0, "1", "bias b added to the basal input"),
        Parameter("eta_bias", 0.0, "1/ms", "learning rate of the bias, db/dt = eta_bias * e", low=0.0,
                  per_neuron=False),
        Parameter("gamma", 1.0, "1", "gain of error injection into the membrane", low=0.0),
        Parameter("prospective_errors", False, "", "GLE error neuron with swapped constants", kind="bool",
                  per_neuron=False),
        Parameter("loss", "none", "", "output error: none | rate | voltage | cross_entropy", kind="str",
                  choices=tuple(LOSSES), per_neuron=False),
        Parameter("beta", 0.1, "1", "output nudging strength", low=0.0, per_neuron=False),
        Parameter("tau_learning", "none", "", "time-constant learning: none | gle | le_adapt", kind="str",
                  choices=tuple(TAU_RULES), per_neuron=False),
        Parameter("eta_tau", 0.0, "1/ms", "learning rate of tau_m", low=0.0, per_neuron=False),
        Parameter("tau_min", None, "ms", "lower clamp of tau_m under learning (default 10 dt)", low=0.0,
                  per_neuron=False),
        Parameter("sigma", 0.0, "1/sqrt(ms)", "white-noise amplitude on the membrane", low=0.0),
        Parameter("tau_optimizer", "sgd", "", "optimiser of tau_m learning: sgd | momentum | adam", kind="str",
                  choices=("sgd", "momentum", "adam"), per_neuron=False),
        Parameter("tau_momentum", 0.9, "1", "momentum coefficient (tau_optimizer = momentum)", low=0.0,
                  per_neuron=False),
        Parameter("tau_beta1", 0.9, "1", "Adam first-moment decay for tau_m", low=0.0, per_neuron=False),
        Parameter("tau_beta2", 0.999, "1", "Adam second-moment decay for tau_m", low=0.0, per_neuron=False),
        Parameter("tau_eps", 1e-8, "1", "Adam epsilon for tau_m", low=0.0, per_neuron=False),
    ]},
    variables={v.name: v for v in [
        Variable("u", "1", "somatic membrane potential", SIG_U),
        Variable("u_pros", "1", "prospective potential u + tau_r du/dt", SIG_UPROS),
        Variable("r", "1", "output rate phi(u_pros)", SIG_R),
        Variable("phi_prime", "1", "derivative phi'(u_pros)", SIG_RP),
        Variable("e", "1", "error (error-neuron output)", SIG_E),
        Variable("udot", "1/ms", "membrane derivative du/dt", SIG_UDOT),
        Variable("eps", "1", "error-neuron input", SIG_EPS),
        Variable("v_err", "1", "error-neuron membrane potential", SIG_VERR),
        Variable("v", "1", "compartment potentials", (SIG_U, SIG_V0), ("soma", "basal")),
    ]},
    # "error": the one-to-one error input from a partner error population (models/error.py), which
    # joins the basal potential v0 with the projection weight gamma
    ports={"basal": PORT_PROXIMAL, "soma": PORT_CURRENT, "error": PORT_PROXIMAL},
    error_role="fused",
    lower=lower,
)
