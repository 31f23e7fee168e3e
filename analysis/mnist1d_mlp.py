"""MNIST-1D reference: an MLP trained by backpropagation on the whole 360-sample sequence at once
(NumPy, :mod:`microcircuit.baseline`), the BP reference of issue 5's MNIST-1D experiment.

The MLP sees the full sample as one static 360-vector (no time, no memory needed), so it is the
"spatial" baseline of the GLE paper's Fig. 10 (MLP, BP: 65.5 +- 1.0 % reported for the tuned MLP;
the MNIST-1D paper reports about 68 % for its MLP). Network 360 -> 100 -> 100 -> 10, ReLU,
cross-entropy, SGD with momentum 0.9, lr 0.01, batch 100, cosine schedule, 100 epochs; 3 seeds.

    python analysis/mnist1d_mlp.py            # 3 seeds, ~20 s (set OPENBLAS_NUM_THREADS=1 next to other jobs)
    python analysis/mnist1d_mlp.py --quick    # 1 seed, 10 epochs

Writes analysis/results/mnist1d_mlp.{md,csv}.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from microcircuit.analysis.report import plot_accuracy, write_report  # noqa: E402
from microcircuit.baseline import MLP, train_bp  # noqa: E402
from microcircuit.datasets import mnist1d  # noqa: E402


def run(seed, epochs=200, hidden=100, lr=0.01):
    d = mnist1d(360)
    m = MLP([360, hidden, hidden, 10], hidden_activation="relu", output_activation="linear", init="uniform",
            seed=seed)
    h = train_bp(m, d, epochs=epochs, lr=lr, batch_size=100, loss="cross_entropy", seed=seed, momentum=0.9,
                 lr_schedule="cosine")
    return h


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--out", default=str(ROOT / "analysis" / "results"))
    a = ap.parse_args(argv)
    seeds, epochs = ([0], 10) if a.quick else (a.seeds, a.epochs)
    rows, curves = [], []
    for s in seeds:
        h = run(s, epochs)
        curves.append(h["test_accuracy"])
        rows.append(dict(seed=s, epochs=epochs, train_acc=h["train_accuracy"][-1], test_acc=h["test_accuracy"][-1],
                         best_test_acc=float(np.max(h["test_accuracy"])), wall_s=h["wall_time_s"]))
        print(rows[-1], flush=True)
    acc = np.array([r["test_acc"] for r in rows])
    lines = ["# MNIST-1D, MLP reference trained by backpropagation (NumPy)" + (" (quick)" if a.quick else ""), "",
             "360 -> 100 -> 100 -> 10, ReLU, cross-entropy, SGD momentum 0.9, lr 0.01, batch 100, cosine "
             f"schedule, {epochs} epochs; the whole sequence as one input vector.", "",
             "| seed | train acc | test acc (final) | best test acc | wall s |", "|---|---|---|---|---|"]
    lines += [f"| {r['seed']} | {r['train_acc']:.3f} | {r['test_acc']:.3f} | {r['best_test_acc']:.3f} | "
              f"{r['wall_s']:.1f} |" for r in rows]
    lines += ["", f"Final test accuracy: {100 * acc.mean():.1f} +- {100 * acc.std():.1f} % (mean +- std over "
              f"{len(acc)} seeds). GLE paper, tuned MLP: 65.5 +- 1.0 %; GLE 15k network: 91.7 +- 0.8 %."]
    out = Path(a.out)
    stem = "mnist1d_mlp_quick" if a.quick else "mnist1d_mlp"
    write_report(out, stem, lines, rows)
    plot_accuracy(out / f"{stem}.png",
                  [(f"MLP (BP), seed {r['seed']}", np.arange(len(c)), c) for r, c in zip(rows, curves)],
                  [("GLE paper, tuned MLP: 65.5 %", 0.655, "--"), ("GLE paper, 15k GLE network: 91.7 %", 0.917, ":")],
                  "MNIST-1D: MLP reference (whole sequence as one vector)")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
