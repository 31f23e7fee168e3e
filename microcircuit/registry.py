"""One registry of the engine's pluggable pieces: plasticity rules, output losses, time-constant rules
and optimisers — each with its name (what scenario files say), kernel id (:mod:`microcircuit.layout`),
meaning (what the docs and ``microcircuit schema`` print), the keys it takes, and the previous-step
signals it reads in the synchronous schemes.

The compiler copies to the previous-step buffer only the rows some op reads (``compile.build_ops``:
at batch 128 the copy is a tenth of a step). A rule that reads a signal of its pre or post
population beyond the signal the projection sends declares it in ``reads_prev``; the compiler adds it,
so a new rule cannot silently read a stale value. Adding a rule: an entry here, its id in
``layout``, its post factor in ``kernel._plasticity`` (and ``reference._plasticity``).
"""
from __future__ import annotations

from dataclasses import dataclass

from .layout import (RULE_NONE, RULE_ERROR, RULE_URBANCZIK_SENN, RULE_APICAL_HOMEOSTASIS, RULE_TARGET_PROP,
                     LOSS_NONE, LOSS_RATE, LOSS_VOLTAGE, LOSS_CROSS_ENTROPY, TAU_RULE_NONE, TAU_RULE_GLE,
                     TAU_RULE_LE_ADAPT, OPT_SGD, OPT_MOMENTUM, OPT_ADAM)


@dataclass(frozen=True)
class Entry:
    name: str
    id: int                   # kernel id (layout)
    doc: str                  # the equation, in the papers' symbols
    keys: tuple = ()          # keys of the plasticity table / population it takes
    reads_prev: tuple = ()    # (signal name, "pre" | "post") read from the previous step besides the sent signal


def _table(*entries):
    ids = [e.id for e in entries]
    assert ids == list(range(len(ids))), "kernel ids must be 0..n-1 in order"
    return {e.name: e for e in entries}


PLASTICITY_RULES = _table(
    Entry("none", RULE_NONE, "no plasticity: the weights stay fixed"),
    Entry("error", RULE_ERROR,
          "dW/dt = eta e_post r_pre^T with the error e of the post population (LE / GLE), or of the error "
          "population named by error_source (cortical mapping)", keys=("eta", "error_source")),
    Entry("urbanczik_senn", RULE_URBANCZIK_SENN,
          "dendritic prediction of somatic activity (Urbanczik & Senn 2014): dW/dt = eta "
          "(r_post - phi(g_port / (g_lk + g_B + g_A) v_port)) r_pre^T (Sacramento 2018 forward and "
          "interneuron weights)", keys=("eta", "w_max", "tau_w")),
    Entry("apical_homeostasis", RULE_APICAL_HOMEOSTASIS,
          "dW/dt = -eta v_A r_pre^T: silences the apical potential (Sacramento 2018 "
          "interneuron-to-pyramidal weights)", keys=("eta",)),
    Entry("target_prop", RULE_TARGET_PROP,
          "dW/dt = eta (r_post - phi(W r_pre)) r_pre^T with the projection's own weights (Sacramento "
          "2018 Eq. 10: learned top-down weights)", keys=("eta",)),
)

LOSSES = _table(
    Entry("none", LOSS_NONE, "no output error (a hidden population)"),
    Entry("rate", LOSS_RATE, "e_trg = phi'(u_pros) (y - phi(u_pros))", keys=("beta",)),
    Entry("voltage", LOSS_VOLTAGE, "e_trg = y - u_pros", keys=("beta",)),
    Entry("cross_entropy", LOSS_CROSS_ENTROPY, "e_trg = onehot(y) - softmax(r)", keys=("beta",)),
)

TAU_RULES = _table(
    Entry("none", TAU_RULE_NONE, "tau_m fixed"),
    Entry("gle", TAU_RULE_GLE, "d tau_m / dt = -eta_tau e du/dt (GLE)", keys=("eta_tau", "tau_min")),
    Entry("le_adapt", TAU_RULE_LE_ADAPT,
          "d tau_m / dt = eta_tau (tau_r - tau_m) (du/dt)^2: drives tau_m to tau_r without nudging (LE paper §6)",
          keys=("eta_tau", "tau_min")),
)

OPTIMIZERS = _table(
    Entry("sgd", OPT_SGD, "plain gradient step: W += eta dt g"),
    Entry("momentum", OPT_MOMENTUM, "heavy ball: m = momentum m + g, W += eta dt m", keys=("momentum",)),
    Entry("adam", OPT_ADAM,
          "Adam: bias-corrected first / second moments (beta1, beta2, eps), W += eta dt m_hat / (sqrt(v_hat) + eps)",
          keys=("beta1", "beta2", "eps")),
)


def ids(table) -> dict:
    """name -> kernel id."""
    return {n: e.id for n, e in table.items()}


def docs(table) -> dict:
    """name -> meaning."""
    return {n: e.doc for n, e in table.items()}


RULE_IDS, LOSS_IDS, TAU_RULE_IDS, OPTIMIZER_IDS = (ids(t) for t in (PLASTICITY_RULES, LOSSES, TAU_RULES, OPTIMIZERS))
