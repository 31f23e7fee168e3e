"""LagLine (GLE Fig. 5): a two-neuron retrospective chain learns a teacher's weights and tau_m.

Run from the repository root::

    python analysis/lagline.py            # published protocol: T_init 50, T_train 4000, batch 100
    python analysis/lagline.py --quick    # T_train 300, batch 20, start (0.5, 1.5)

Learners (same input stream, same initial student, same Adam rate per time unit):
GLE (engine, prospective error neurons), BP (engine, instantaneous errors), truncated BPTT
through the same Euler dynamics with windows of 1, 2, 4 time units (microcircuit.adjoint).
Writes analysis/results/lagline.{png,md}. Acceptance (docs/models/gle.md, "Checks the tests rely
on"): GLE recovers w and tau_m to 1e-3 relative; BP's tau_m relative error > 10 %.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from microcircuit.gle import run_lagline  # noqa: E402
from microcircuit.adjoint import train_lagline_bptt  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(ROOT / "analysis" / "results"))
    a = ap.parse_args(argv)
    if a.quick:
        kw = dict(T_init=10, T_train=300, batch=20, seed=3, eta=2e-2, init=((0.5, 1.5), (0.5, 1.5)))
        windows = (1.0,)
    else:
        kw = dict(T_init=50, T_train=4000, batch=100, seed=a.seed, eta=1e-2)
        windows = (1.0, 2.0, 4.0)
    results = [run_lagline("gle", **kw), run_lagline("bp", **kw)]
    for w in windows:
        results.append(train_lagline_bptt(w, **kw))
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    name = "lagline_quick" if a.quick else "lagline"
    fig = Figure(figsize=(11, 7))
    axs = fig.subplots(2, 2)
    for r in results:
        for j in range(2):
            axs[0, j].plot(r.t, r.w[:, j], label=r.method)
            axs[1, j].plot(r.t, r.tau_m[:, j], label=r.method)
    for j in range(2):
        axs[0, j].axhline(results[0].teacher_w[j], color="k", ls=":")
        axs[1, j].axhline(results[0].teacher_tau[j], color="k", ls=":")
        axs[0, j].set_title(f"w{j + 1}")
        axs[1, j].set_title(f"tau_m{j + 1}")
        axs[1, j].set_xlabel("time (a.u.)")
    axs[0, 0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / f"{name}.png", dpi=110)
    lines = [f"# LagLine ({'quick' if a.quick else 'published protocol'})", "",
             f"Protocol: {kw}. Teacher w = (1, 2), tau_m = (1, 2), tau_r = 0.1, softplus, dt = 0.01, beta = 0.01, "
             f"Adam (eta per time unit; BPTT: one Adam step per window of size dt*eta*window_steps).", "",
             "| learner | w1 | w2 | tau_m1 | tau_m2 | max rel. err w | max rel. err tau_m | wall-clock (s) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in results:
        we, te = r.rel_err()
        lines.append(f"| {r.method} | {r.w[-1][0]:.6f} | {r.w[-1][1]:.6f} | {r.tau_m[-1][0]:.6f} | "
                     f"{r.tau_m[-1][1]:.6f} | {we.max():.2e} | {te.max():.2e} | {r.wall_s:.1f} |")
    g_w, g_t = results[0].rel_err()
    b_w, b_t = results[1].rel_err()
    lines += ["", f"Acceptance: GLE max rel. error {max(g_w.max(), g_t.max()):.2e} (< 1e-3: "
              f"{'PASS' if max(g_w.max(), g_t.max()) < 1e-3 else 'FAIL'}); BP tau_m rel. error {b_t.max():.2%} "
              f"(> 10 %: {'PASS' if b_t.max() > 0.1 else 'FAIL'})."]
    (out / f"{name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
