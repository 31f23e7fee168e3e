"""Fourier synthesis (LE paper Fig. 2a; docs/models/le.md, "Experiments and what this package
reproduces"; docs/datasets.md, "Fourier synthesis").

50 sines (10 ... 500 Hz) -> 20 Hz sawtooth with a 50-30-1 network: linear inputs, tanh hidden rate
neurons, linear output whose prospective potential u_pros is compared with the target (voltage
target, e_trg = y - u_pros); tau_m = 10 ms; beta = 0.1 while learning, then 0 (gates switch nudging
and plasticity off); eta = 0.25 /ms (SGD lr = dt * 0.25 per step), weights and biases learn;
Kaiming-uniform weights. One continuous stream, no reset. Compared: LE (tau_r = tau_m) and the same
network without prospective coding (tau_r = 0).

Acceptance: over the test period (after learning stops) the LE output MSE is < 10 % of the target
variance; the non-prospective network's > 50 %.

    python analysis/le_fourier_synthesis.py [--quick]      # full: the paper's dt = 0.005 ms, 400 + 200 ms
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import le_common as C  # noqa: E402


def fourier_circuit(prospective=True, seed_bias=None):
    from microcircuit import Circuit
    c = Circuit("fourier_synthesis")
    c.add_population("input", "input", 50)
    tr = None if prospective else 0.0
    hid = {"tau_m": 10.0, "activation": "tanh", "eta_bias": 0.25,
           "bias": {"dist": "uniform", "low": -1 / np.sqrt(50), "high": 1 / np.sqrt(50)}}
    out = {"tau_m": 10.0, "activation": "linear", "loss": "voltage", "beta": 0.1, "eta_bias": 0.25,
           "bias": {"dist": "uniform", "low": -1 / np.sqrt(30), "high": 1 / np.sqrt(30)}}
    if tr is not None:
        hid["tau_r"] = tr
        out["tau_r"] = tr
    c.add_population("hidden", "rate", 30, **hid)
    c.add_population("output", "rate", 1, **out)
    pl = {"rule": "error", "eta": 0.25}
    c.add_projection("input", "hidden", name="W1", weights={"dist": "kaiming_uniform"}, plasticity=pl)
    c.add_projection("hidden", "output", name="W2", weights={"dist": "kaiming_uniform"}, plasticity=pl)
    return c


def run(prospective, *, dt, t_learn, t_test, seed=1234):
    """Return (t, output u_pros, target) of the whole run and the test-period MSE / target variance."""
    from microcircuit import compile, Simulation, Recording
    from microcircuit.datasets import fourier_synthesis
    from microcircuit.stimuli import ArrayStimulus
    task = fourier_synthesis(dt=dt, duration=t_learn + t_test)
    stim = [ArrayStimulus("input", task.x, kind="rate"), ArrayStimulus("output", task.y, kind="target")]
    prog = compile(fourier_circuit(prospective), dt=dt, seed=seed, stimuli=stim)
    k_learn = int(round(t_learn / dt))

    def gates(k0, k1):
        on = (np.arange(k0, k1) < k_learn).astype(float)
        return np.stack([on, on], axis=1)

    stride = max(1, int(round(0.05 / dt)))     # record every 0.05 ms
    sim = Simulation(prog, recordings=[Recording("output", ["u_pros"], stride=stride)], gates=gates,
                     chunk_steps=20000)
    sim.run(steps=task.n_steps)
    res = sim.results()
    u = np.asarray(res["output"]["u_pros"].values)[:, 0, 0]
    t = np.asarray(res["output"]["u_pros"].coords[res["output"]["u_pros"].dims[0]].values)
    y = task.y[::stride, 0][:len(u)]
    test = t >= t_learn
    mse = float(np.mean((u[test] - y[test]) ** 2))
    var = float(np.var(task.y[int(round(t_learn / dt)):, 0]))
    return t, u, y, mse / var, prog


def main():
    quick = C.quick_flag()
    dt, t_learn, t_test = (0.01, 400.0, 100.0) if quick else (0.005, 400.0, 200.0)
    rows, traces = [], {}
    for name, pros in (("LE (tau_r = tau_m)", True), ("non-prospective (tau_r = 0)", False)):
        t0 = time.time()
        t, u, y, rel, _ = run(pros, dt=dt, t_learn=t_learn, t_test=t_test)
        traces[name] = (t, u, y)
        # MSE in the last 50 ms of learning as well
        w = (t >= t_learn - 50) & (t < t_learn)
        rel_learn = float(np.mean((u[w] - y[w]) ** 2) / np.var(y[t >= t_learn]))
        rows.append({"model": name, "dt_ms": dt, "learn_ms": t_learn, "test_ms": t_test,
                     "mse_over_var_last50ms_learning": rel_learn, "mse_over_var_test": rel,
                     "wall_s": time.time() - t0})
        print(rows[-1], flush=True)
    tag = "_quick" if quick else ""
    md = C.write_table(rows, f"le_fourier_synthesis{tag}")
    le, leaky = rows[0]["mse_over_var_test"], rows[1]["mse_over_var_test"]
    checks = [("LE test MSE < 10 % of target variance", le < 0.10, f"{100 * le:.2f} %"),
              ("non-prospective test MSE > 50 % of target variance", leaky > 0.50, f"{100 * leaky:.1f} %")]
    lines = [f"# Fourier synthesis{' (quick)' if quick else ''}", "",
             f"50-30-1, tau = 10 ms, dt = {dt} ms, learning (beta = 0.1, eta = 0.25/ms) for {t_learn} ms, then "
             f"beta = 0 and plasticity off for {t_test} ms. MSE of the output u_pros against the sawtooth, relative "
             f"to the target variance.", "", md, "", "| check | pass | value |", "|---|---|---|"]
    lines += [f"| {n} | {'yes' if ok else 'NO'} | {v} |" for n, ok, v in checks]
    (C.RESULTS / f"le_fourier_synthesis{tag}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(2, 1, figsize=(9, 5), sharex=False)
    for ax, (lo, hi, title) in zip(axes, ((0, 100, "start of learning"),
                                          (t_learn - 50, t_learn + 100, "learning stops at the dashed line"))):
        name0 = next(iter(traces))
        t, _, y = traces[name0]
        m = (t >= lo) & (t < hi)
        ax.plot(t[m], y[m], "k", lw=1, label="target")
        for (name, (t, u, _)), col in zip(traces.items(), ("C0", "C3")):
            ax.plot(t[m], u[m], col, lw=1, label=name)
        if lo < t_learn < hi:
            ax.axvline(t_learn, color="gray", ls="--")
        ax.set_title(title, fontsize=9)
        ax.set_ylim(-2, 2)
        ax.set_ylabel("output u_pros")
    axes[-1].set_xlabel("t (ms)")
    axes[0].legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    fig.savefig(C.RESULTS / f"le_fourier_synthesis{tag}.png", dpi=120)
    return 0 if all(ok for _, ok, _ in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
