"""Self-prediction from random weights (Sacramento et al. 2018 Fig. S1 idea).

Acceptance: docs/models/microcircuit.md, "Checks the tests rely on".

Sacramento parameters, 30-20-10, logistic, weights U(-1, 1), inputs U(0, 1) held 100 ms (tau_in
3 ms), eta_PI 5e-4, eta_IP 2.375e-4 (1/ms), tau_w 30 ms, forward weights frozen. Metric: mean v_A^2
of pyr1 over the last 10 ms of each pattern (``microcircuit.microcircuit_tasks.self_prediction_curve``).

Acceptance: v_A^2 drops >= 50x within 20 patterns, 3 seeds (also shown: sigma = 0.1 noise).

    python analysis/mc_self_prediction.py [--quick]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from microcircuit.microcircuit_tasks import self_prediction_curve  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    suffix = "_quick" if a.quick else ""
    n_pat = 20 if a.quick else 100
    seeds = [0, 1, 2]
    sigmas = [0.0] if a.quick else [0.0, 0.1]
    t0 = time.time()
    curves = {(s, sg): self_prediction_curve(seed=s, n_patterns=n_pat, sigma=sg) for sg in sigmas for s in seeds}
    wall = time.time() - t0
    rows, ok_all = [], True
    for sg in sigmas:
        for s in seeds:
            c = curves[(s, sg)]
            drop20 = c[0] / c[:20].min()
            ok = drop20 >= 50
            if sg == 0.0:
                ok_all &= ok
            rows.append(f"| {sg:g} | {s} | {c[0]:.3e} | {c[:20].min():.3e} | {drop20:.0f} | "
                        f"{c[0] / c.min():.0f} | {'yes' if ok else 'NO'} |")
    md = [f"# Self-prediction from random weights{' (quick)' if a.quick else ''}", "",
          f"`python analysis/mc_self_prediction.py{' --quick' if a.quick else ''}` — 30-20-10 Sacramento, "
          f"logistic, {n_pat} patterns x 100 ms, dt 0.1 ms. Wall {wall:.1f} s.", "",
          "| sigma | seed | v_A^2 pattern 1 | min v_A^2, patterns 1-20 | drop within 20 | drop within "
          f"{n_pat} | >= 50x within 20 |",
          "|---|---|---|---|---|---|---|", *rows, "",
          f"Acceptance (docs/models/microcircuit.md, \"Checks the tests rely on\"; sigma = 0, 3 seeds): **{'PASS' if ok_all else 'FAIL'}**", ""]
    (RESULTS / f"mc_self_prediction{suffix}.md").write_text("\n".join(md))
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for (s, sg), c in curves.items():
        ax.semilogy(np.arange(1, len(c) + 1), c, "-" if sg == 0 else "--", color=f"C{s}",
                    label=f"seed {s}, sigma {sg:g}")
    ax.axvline(20, color="gray", lw=0.8, ls=":")
    ax.set_xlabel("pattern"); ax.set_ylabel(r"mean $v_A^2$ (last 10 ms)"); ax.legend(fontsize=7)
    ax.set_title("Self-prediction from random weights, 30-20-10")
    fig.tight_layout(); fig.savefig(RESULTS / f"mc_self_prediction{suffix}.png", dpi=120)
    print("\n".join(md))


if __name__ == "__main__":
    main()
