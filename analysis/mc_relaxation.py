"""Relaxation problem: spurious hidden-layer error of the LE vs original microcircuit.

docs/models/microcircuit.md, "The Latent-Equilibrium variant" and "Checks the tests rely on".

9-30-3 Bern microcircuit, softplus, self-predicting weights, no plasticity, no target, abrupt
input switches every t_pres, dt 0.1 ms. Metric: mean |phi(u) - phi(v_B_hat)| of pyr1 over the whole
run (``microcircuit.microcircuit_tasks.relaxation_error``). In the self-predicting state this is
exactly the spurious error the hidden layer would learn from. Both models are run with the same
update scheme: sequential (Gauss-Seidel; pyramids bottom-up, then interneurons) for the
acceptance, and synchronous (Jacobi, the published codes' stepping) for comparison.

Acceptance: LE's error >= 30x lower than the original's at every presentation time.

    python analysis/mc_relaxation.py [--quick]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from microcircuit.microcircuit_tasks import relaxation_error  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    t_pres = [0.3, 1.0, 5.0, 30.0] if a.quick else [0.1, 0.3, 1.0, 3.0, 5.0, 10.0, 30.0, 100.0]
    seeds = [0] if a.quick else [0, 1, 2]
    n_pat = 8 if a.quick else 16
    suffix = "_quick" if a.quick else ""
    t0 = time.time()
    err = {(T, le): [relaxation_error(le, t_pres=T, n_patterns=n_pat, seed=s) for s in seeds]
           for T in t_pres for le in (False, True)}
    jac = {(T, le): [relaxation_error(le, t_pres=T, n_patterns=n_pat, seed=s, scheme="synchronous")
                     for s in seeds] for T in t_pres for le in (False, True)}
    wall = time.time() - t0
    rows, ok_all = [], True
    for T in t_pres:
        o, l = np.array(err[(T, False)]), np.array(err[(T, True)])
        ratio = o / l
        ok = bool(np.all(ratio >= 30))
        ok_all &= ok
        jo, jl = np.array(jac[(T, False)]), np.array(jac[(T, True)])
        rows.append(f"| {T:g} | {o.mean():.3e} | {l.mean():.3e} | {ratio.min():.3g} | {'yes' if ok else 'NO'} | "
                    f"{jo.mean():.3e} | {jl.mean():.3e} | {(jo / jl).min():.0f} |")
    md = [f"# Relaxation problem: spurious hidden-layer error{' (quick)' if a.quick else ''}", "",
          f"`python analysis/mc_relaxation.py{' --quick' if a.quick else ''}` — 9-30-3 Bern, softplus, "
          f"self-predicting, frozen weights, {n_pat} patterns U(0,1) with abrupt switches, dt 0.1 ms, "
          f"seeds {seeds}. Metric mean |phi(u) - phi(v_B_hat)| of pyr1. Wall {wall:.1f} s.", "",
          "| t_pres (ms) | original | LE | ratio original/LE (min over seeds) | >= 30x | "
          "Jacobi: original | Jacobi: LE | Jacobi ratio (min) |",
          "|---|---|---|---|---|---|---|---|", *rows, "",
          f"Acceptance (docs/models/microcircuit.md, \"Checks the tests rely on\"): **{'PASS' if ok_all else 'FAIL'}**", "",
          "Why the Jacobi (synchronous) LE residual exists: under LE a pyramid sends r = phi(u_ss), "
          "u_ss = a_B v_B + lambda_A v_A, so the metric is the distortion by a non-zero apical potential. "
          "In Jacobi stepping inter1 is nudged by the output's u_pros of the previous step while its dendrite "
          "already sees pyr1's current rate, so right after each switch v_A ~ lambda_inter (X_k - X_{k-1}) "
          "(X = a_out W_up2 r_1) for 1-2 steps. This is a fixed per-switch discretisation error (mean ~1.7e-3 "
          "x 1 ms / t_pres), not relaxation, and it dominates at t_pres = 1-3 steps (ratio 11x / 25x at 0.1 / "
          "0.3 ms). Updating the populations in order (Gauss-Seidel: pyramids bottom-up, then interneurons, "
          "back edges read the previous step) removes the delay; LE's error is then at float precision at "
          "every t_pres, while the original model's (true relaxation, tau_eff = 5.3 ms) is unchanged.", ""]
    (RESULTS / f"mc_relaxation{suffix}.md").write_text("\n".join(md))
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for le, lab, m in ((False, "original", "s--"), (True, "LE microcircuit", "o-")):
        ax.plot(t_pres, [max(np.mean(err[(T, le)]), 1e-18) for T in t_pres], m, label=lab + " (Gauss-Seidel)")
        ax.plot(t_pres, [np.mean(jac[(T, le)]) for T in t_pres], m, alpha=0.4, label=lab + " (Jacobi)")
    ax.set_xscale("log"); ax.set_yscale("log"); ax.set_xlabel("presentation time (ms)")
    ax.set_ylabel(r"mean $|\varphi(u) - \varphi(\hat v_B)|$ (pyr1)"); ax.legend(fontsize=8)
    ax.set_title("Relaxation problem, 9-30-3")
    fig.tight_layout(); fig.savefig(RESULTS / f"mc_relaxation{suffix}.png", dpi=120)
    print("\n".join(md))


if __name__ == "__main__":
    main()
