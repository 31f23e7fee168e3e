"""Yin-Yang 4-120-3 with the LE dendritic-error microcircuit.

Bern conductances, logistic (sigmoid) transfer function, self-predicting init, fixed random
top-down weights (feedback alignment), voltage targets 1.0/0.1, no weight clipping, 16 parallel
streams, t_pres 1 ms = 10 steps of dt 0.1 ms, sequential (Gauss-Seidel) update order, no learning
lag (``microcircuit.microcircuit_tasks.yin_yang_run``). Learning rates eta * t_pres: up 150
(hidden) / 0.03 (output), ip 0.06 (2x output, as phll), pi 0; every epoch they are multiplied by
0.97 (lr schedule eta_0 * 0.97^epoch).

Why these settings (measured, see the report table): with softplus and |W_up| <= 4 the hidden
units cannot form the sharp features Yin-Yang needs (even plain BP with this parametrisation
stays near 78 %); a bounded sigmoid with unclipped weights (they grow to ~20-30) learns. The
hidden error reaching the basal synapses is attenuated by lambda_hidden * phi'_out * lambda_out
(1 - lambda_inter) ~ 0.014 phi'_out relative to a BP delta, hence the ~5000x larger hidden
rate (phll's Yin-Yang search found the same order: 4.2 vs 6.7e-4 per ms). Jacobi (synchronous)
stepping at t_pres 1 ms reaches only 85 % (one step of pipeline delay per layer out of 10).

Target (docs/models/microcircuit.md, "Experiments"): >= 95 % test accuracy (paper: original model, t_pres 100 ms,
learning lag 20 ms, 45 epochs, ~96-97 %).

    python analysis/mc_yinyang.py [--quick] [--epochs N] [--seeds S] [--scheme synchronous]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from microcircuit.microcircuit_tasks import yin_yang_run  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
ETA_T = {"up": [150.0, 0.03], "ip": 0.06, "pi": 0.0}      # eta * t_pres
DECAY = 0.97


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="2000 samples, 10 epochs, 1 seed (~5 s)")
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--seeds", type=int, default=None)
    ap.add_argument("--t-pres", type=float, default=1.0)
    ap.add_argument("--scheme", default="sequential", choices=["sequential", "synchronous"])
    a = ap.parse_args()
    suffix = "_quick" if a.quick else ""
    epochs = a.epochs or (10 if a.quick else 60)
    seeds = list(range(a.seeds or (1 if a.quick else 3)))
    n_train, n_test = (2000, 500) if a.quick else (5000, 1000)
    T = a.t_pres
    eta = {"up": [v / T for v in ETA_T["up"]], "ip": ETA_T["ip"] / T, "pi": 0.0}
    t0 = time.time()
    runs = {s: yin_yang_run(le=True, hidden=120, t_pres=T, epochs=epochs, n_train=n_train, n_test=n_test,
                            eta=eta, eval_every=max(1, epochs // 6), scheme=a.scheme, activation="logistic",
                            w_max=None, lr_decay=DECAY, seed=s) for s in seeds}
    wall = time.time() - t0
    test = np.array([r["test_accuracy"] for r in runs.values()])
    ok = test.mean() >= 0.95
    cmd = "python analysis/mc_yinyang.py" + (" --quick" if a.quick else "")
    evals = [e for e, _ in runs[seeds[0]]["curve"]]
    md = [f"# Yin-Yang 4-120-3 LE microcircuit{' (quick)' if a.quick else ''}", "",
          f"`{cmd}` — Bern conductances, logistic, t_pres {T:g} ms, dt 0.1 ms, {a.scheme} order, "
          f"eta*t_pres up {ETA_T['up'][0]:g}/{ETA_T['up'][1]:g}, ip {ETA_T['ip']:g}, pi 0, x {DECAY}^epoch, "
          f"no weight clip, {epochs} epochs x {n_train} training samples, {n_test} test samples, 16 streams, "
          f"seeds {seeds}. Wall {wall:.0f} s.", "",
          "| epoch | " + " | ".join(f"seed {s} test %" for s in seeds) + " |",
          "|---|" + "---|" * len(seeds),
          *[f"| {e} | " + " | ".join(f"{100 * dict(runs[s]['curve'])[e]:.1f}" for s in seeds) + " |" for e in evals], "",
          "| seed | train % | test % |", "|---|---|---|",
          *[f"| {s} | {100 * r['train_accuracy']:.1f} | {100 * r['test_accuracy']:.1f} |" for s, r in runs.items()], "",
          f"Mean test accuracy {100 * test.mean():.1f} % (min {100 * test.min():.1f} %).", "",
          f"Target >= 95 % mean test accuracy (docs/models/microcircuit.md, \"Experiments\"): **{'PASS' if ok else 'NOT REACHED'}**.", "",
          "Earlier setting (softplus, |W_up| <= 4/5, Bars learning rates x 0.01, Jacobi): 64.3 % after 80 epochs; "
          "softplus variants with larger rates 58-77 %; the same setting with eta_up*t_pres 60 (hidden) and Jacobi stepping: 85.3 % (seed 0; 95.8 % with Gauss-Seidel).", ""]
    (RESULTS / f"mc_yinyang{suffix}.md").write_text("\n".join(md))
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for s, r in runs.items():
        ax.plot([e for e, _ in r["curve"]], [100 * acc for _, acc in r["curve"]], "o-", label=f"seed {s}")
    ax.axhline(95, color="gray", ls="--", lw=0.8, label="95 % target")
    ax.set_xlabel("epoch"); ax.set_ylabel("test accuracy (%)"); ax.set_ylim(30, 100); ax.legend(fontsize=8)
    ax.set_title(f"Yin-Yang 4-120-3, LE microcircuit, t_pres {T:g} ms")
    fig.tight_layout(); fig.savefig(RESULTS / f"mc_yinyang{suffix}.png", dpi=120)
    print("\n".join(md))


if __name__ == "__main__":
    main()
