"""Shared pieces of the Latent Equilibrium learning experiments (analysis/le_*.py).

The LE network and the BP baseline start from *identical* parameters: an
:class:`microcircuit.baseline.MLP` is built with the seed and its weights and biases are copied
into a :func:`microcircuit.layered` circuit of rate neurons. LE then learns with
``lr_le = lr_bp / beta`` per presentation (the LE error carries beta, see
``microcircuit/protocols.py``), batch = the BP minibatch size (parallel copies), the same cosine
schedule and the same number of epochs, so that in the ideal limit (LE = BP) the two runs
coincide.
"""
from __future__ import annotations

import csv
import os
import sys
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"

# Task settings shared by the sweep, the robustness and the feedback-alignment scripts.
TASKS = {
    "yin_yang": dict(sizes=[4, 120, 3], data_args=dict(), epochs=40, quick_epochs=6,
                     quick_data_args=dict(n_train=1500, n_val=0, n_test=500)),
    "digits": dict(sizes=[64, 100, 10], data_args=dict(seed=0), epochs=20, quick_epochs=5,
                   quick_data_args=dict(seed=0)),
}
HIDDEN = "relu"          # cheap in the kernel; BP reaches >= 96 % on both tasks with it
OUTPUT = "logistic"
LR_BP = 1.0              # SGD, minibatch 16, cosine schedule, MSE on output rates, one-hot 0/1 targets
BATCH = 16
BETA = 0.1
TAU = 10.0               # ms
STEPS = 50               # steps per presentation (dt = t_pres / 50)


def load(task, quick=False):
    from microcircuit.datasets import yin_yang, digits
    cfg = TASKS[task]
    args = cfg["quick_data_args"] if quick else cfg["data_args"]
    return (yin_yang if task == "yin_yang" else digits)(**args)


def make_mlp(sizes, seed):
    from microcircuit.baseline import MLP
    return MLP(sizes, hidden_activation=HIDDEN, output_activation=OUTPUT, init="kaiming", seed=seed)


def mlp_circuit(mlp, *, tau_m=TAU, tau_r=None, beta=BETA, feedback="transpose", hidden_extra=None,
                output_extra=None):
    """A layered rate-neuron circuit with the MLP's weights and biases (LE when tau_r is None)."""
    from microcircuit import layered
    hidden = {"tau_m": tau_m, "activation": HIDDEN}
    out = {"tau_m": tau_m, "activation": OUTPUT, "loss": "rate", "beta": beta}
    if tau_r is not None:
        hidden["tau_r"] = tau_r
        out["tau_r"] = tau_r
    hidden.update(hidden_extra or {})
    out.update(output_extra or {})
    c = layered(mlp.sizes, hidden=hidden, output=out, eta=1.0, feedback=feedback)
    names = [p.name for p in c.populations][1:]
    for l, (W, b) in enumerate(zip(mlp.weights, mlp.biases)):
        c.projection(f"W{l + 1}").weights = {"dist": "array", "value": W.tolist()}
        c.population(names[l]).params["bias"] = b.tolist()
    return c


def run_bp(task, seed, quick=False):
    from microcircuit.baseline import train_bp
    data = load(task, quick)
    cfg = TASKS[task]
    m = make_mlp(cfg["sizes"], seed)
    h = train_bp(m, data, epochs=cfg["quick_epochs" if quick else "epochs"], lr=LR_BP, batch_size=BATCH,
                 seed=seed, lr_schedule="cosine")
    return {"test_accuracy": h["test_accuracy"][-1], "test_loss": h["test_loss"][-1],
            "curve": list(h["test_accuracy"])}


def run_le(task, seed, t_pres, *, model="le", quick=False, feedback="transpose", tau_noise=0.0, adapt=False,
           adapt_presentations=0, eta_tau=0.0, epochs=None, progress=False):
    """Train LE (model="le") or the non-prospective leaky network (model="leaky", tau_r = 0)."""
    from microcircuit.protocols import train
    data = load(task, quick)
    cfg = TASKS[task]
    m = make_mlp(cfg["sizes"], seed)
    extra = {}
    tau_m = TAU
    tau_r = 0.0 if model == "leaky" else None
    if tau_noise > 0:
        noisy = {"dist": "relative_normal", "value": TAU, "width": tau_noise, "min": 0.1 * TAU}
        tau_m, tau_r = dict(noisy), dict(noisy)
    if adapt:
        extra = {"tau_learning": "le_adapt", "eta_tau": eta_tau}
    c = mlp_circuit(m, tau_m=tau_m, tau_r=tau_r, feedback=feedback, hidden_extra=extra, output_extra=extra)
    E = epochs if epochs is not None else cfg["quick_epochs" if quick else "epochs"]
    res = train(c, data, t_pres=t_pres, steps_per_presentation=STEPS, epochs=E, lr=LR_BP / BETA, batch=BATCH,
                seed=seed, phases=("train", "test"), eval_initial=False, eval_every=max(E // 4, 1),
                lr_schedule="cosine", adapt_presentations=adapt_presentations, progress=progress,
                tau_learning_in_training=False)    # LE paper: tau_m adapts before training only
    return res


def write_table(rows, name, columns=None):
    """Write rows (list of dicts) as CSV and Markdown into analysis/results/."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    columns = columns or list(rows[0])
    with open(RESULTS / f"{name}.csv", "w", newline="") as f:
        w = csv.DictWriter(f, columns, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for r in rows:
        lines.append("| " + " | ".join(_fmt(r.get(c, "")) for c in columns) + " |")
    return "\n".join(lines)


def _fmt(v):
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1e4 else f"{v:.3e}"
    return str(v)


def quick_flag():
    return "--quick" in sys.argv[1:]


def n_workers():
    return int(os.environ.get("LE_WORKERS", min(2, os.cpu_count() or 1)))


def run_jobs(job, jobs, name, key, quick=False, rows=()):
    """Run ``job`` over ``jobs`` on :func:`n_workers` processes (printing each result), add them to
    ``rows`` (runs reused from elsewhere), sort by ``key`` and write the per-run table
    ``<name>_runs[_quick]``. Returns the rows."""
    from multiprocessing import Pool
    rows = list(rows)
    with Pool(n_workers()) as pool:
        for r in pool.imap_unordered(job, jobs):
            rows.append(r)
            print(r, flush=True)
    rows.sort(key=key)
    write_table(rows, f"{name}_runs{'_quick' if quick else ''}")
    return rows
