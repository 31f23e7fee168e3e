"""Phase identity: GLE error filter vs exact adjoint filter (docs/models/gle.md, "The exact adjoint
and the phase identity" and "Checks the tests rely on").

Run from the repository root::  python analysis/phase_identity.py [--quick]

Closed forms over a frequency grid for (tau_m, tau_r) = (1, 0.1), (1, 0.5), (0.1, 1), and the
simulated check: a sine into an engine GLE error neuron vs the backward-integrated adjoint
(microcircuit.adjoint) at omega = 0.49, 1.07, 1.98. Writes analysis/results/phase_identity.{png,md}.
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

import microcircuit as mc  # noqa: E402
from microcircuit.adjoint import GLENet, forward, gradients  # noqa: E402
from microcircuit.gle import gle_filter, adjoint_filter, gle_layered, fit_phasors  # noqa: E402
from microcircuit.simulation import Recording  # noqa: E402
from microcircuit.stimuli import Sines  # noqa: E402


def simulated(omega, tau_m=1.0, tau_r=0.1, dt=0.01, K=6000):
    t = np.arange(K) * dt
    c = gle_layered(1, [dict(size=1, tau_m=tau_m, tau_r=tau_r, activation="linear", weights=[[0.0]], gamma=0.0,
                             prospective_errors=True)])
    prog = mc.compile(c, dt=dt, stimuli=[Sines("output", omega=omega, kind="error")])
    sim = mc.Simulation(prog, recordings=[Recording("output", ["e"])])
    sim.run(steps=K)
    e = sim.results()["output"]["e"].values[:, 0, 0]
    net = GLENet([[[0.0]]], [tau_m], [tau_r], "linear", dt)
    lam = gradients(net, forward(net, np.zeros((K, 1, 1))), np.sin(omega * t)[:, None, None])["lam"][0][:, 0, 0]
    s1, s2 = slice(2000, K), slice(1000, K - 2000)
    ze = fit_phasors(e[s1], t[s1], [omega])[0]
    zl = fit_phasors(lam[s2], t[s2], [omega])[0]
    return ze, zl


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=str(ROOT / "analysis" / "results"))
    a = ap.parse_args(argv)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    om = np.logspace(-2, 2, 400)
    fig = Figure(figsize=(10, 4))
    ax1, ax2 = fig.subplots(1, 2)
    lines = ["# Phase identity: GLE error filter (1+iωτm)/(1+iωτr) vs adjoint (1−iωτr)/(1−iωτm)", "",
             "| τm | τr | max |Δphase| over ω ∈ [0.01, 100] | max ||G||A| − 1| |", "|---|---|---|---|"]
    for tm, tr in [(1.0, 0.1), (1.0, 0.5), (0.1, 1.0)]:
        G, A = gle_filter(om, tm, tr), adjoint_filter(om, tm, tr)
        ax1.semilogx(om, np.angle(G), label=f"GLE τm={tm}, τr={tr}")
        ax1.semilogx(om, np.angle(A), "--", label=f"adjoint τm={tm}, τr={tr}")
        ax2.loglog(om, np.abs(G), label=f"|GLE| {tm},{tr}")
        ax2.loglog(om, np.abs(A), "--", label=f"|adjoint| {tm},{tr}")
        lines.append(f"| {tm} | {tr} | {np.abs(np.angle(G) - np.angle(A)).max():.1e} | "
                     f"{np.abs(np.abs(G) * np.abs(A) - 1).max():.1e} |")
    ax1.set_xlabel("ω")
    ax1.set_ylabel("phase (rad)")
    ax2.set_xlabel("ω")
    ax1.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(out / "phase_identity.png", dpi=110)
    lines += ["", "Simulated (dt = 0.01; engine error neuron vs backward-integrated adjoint, τm = 1, τr = 0.1):", "",
              "| ω | phase e | phase λ | closed form | gain e | gain λ | gain product |", "|---|---|---|---|---|---|---|"]
    for w in ([1.07] if a.quick else [0.49, 1.07, 1.98]):
        ze, zl = simulated(w)
        lines.append(f"| {w} | {np.angle(ze):.4f} | {np.angle(zl):.4f} | {np.angle(gle_filter(w, 1, .1)):.4f} | "
                     f"{abs(ze):.4f} | {abs(zl):.4f} | {abs(ze) * abs(zl):.4f} |")
    (out / ("phase_identity_quick.md" if a.quick else "phase_identity.md")).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
