"""Feedback alignment: LE with fixed random feedback B ~ N(0, 0.05^2) (projection feedback="random")
instead of weight transport (W^T), vs LE with W^T and BP, on Yin-Yang and digits at t_pres = tau.

Hidden error with feedback alignment: ``e_1 = phi'(u_pros_1) * B e_2`` instead of
``phi'(u_pros_1) * W_2^T e_2``; the output layer's update is unchanged. All other settings as the
presentation-time sweep (analysis/le_common.py), from the same initial parameters.

The LE (W^T) and BP runs are the sweep's runs at t_pres = tau with the same seeds (identical
settings); they are read from analysis/results/le_presentation_time_runs[_quick].csv (or its
.partial.jsonl) when present, else run here. ``--rerun`` always runs them.

    python analysis/le_feedback_alignment.py [--quick] [--rerun]
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import le_common as C  # noqa: E402


def job(args):
    task, fb, seed, quick = args
    t0 = time.time()
    if fb == "bp":
        acc = C.run_bp(task, seed, quick)["test_accuracy"]
    else:
        acc = C.run_le(task, seed, C.TAU, quick=quick, feedback=fb).final("test_accuracy")
    return {"task": task, "model": MODEL_NAMES[fb], "seed": seed, "test_accuracy": float(acc),
            "wall_s": time.time() - t0, "source": "this script"}


MODEL_NAMES = {"bp": "BP", "transpose": "LE (W^T)", "random": "LE + FA"}


def sweep_rows(quick):
    """BP and LE (W^T, t_pres = tau) runs of analysis/le_presentation_time.py with identical settings."""
    import csv
    import json
    tag = "_quick" if quick else ""
    recs = []
    done = C.RESULTS / f"le_presentation_time_runs{tag}.csv"
    part = C.RESULTS / f"le_presentation_time_runs{tag}.partial.jsonl"
    if done.exists():
        with open(done) as f:
            recs = list(csv.DictReader(f))
    elif part.exists():
        for line in part.read_text().splitlines():
            try:
                recs.append(json.loads(line))
            except ValueError:
                pass
    out, seen = [], set()
    for r in recs:
        model, f = r["model"], float(r["t_pres_over_tau"])
        if model == "bp" or (model == "le" and abs(f - 1.0) < 1e-9):
            name = MODEL_NAMES["bp" if model == "bp" else "transpose"]
            key = (r["task"], name, int(r["seed"]))
            if key not in seen:
                seen.add(key)
                out.append({"task": r["task"], "model": name, "seed": int(r["seed"]),
                            "test_accuracy": float(r["test_accuracy"]), "wall_s": float(r["wall_s"]),
                            "source": f"le_presentation_time_runs{tag}"})
    return out


def main():
    quick = C.quick_flag()
    seeds = [1] if quick else [1, 2]
    jobs = [(t, fb, s, quick) for s in seeds for t in C.TASKS for fb in ("random", "transpose", "bp")]
    rows = [] if "--rerun" in sys.argv[1:] else sweep_rows(quick)
    have = {(r["task"], r["model"], r["seed"]) for r in rows}
    rows = [r for r in rows if r["seed"] in seeds]
    jobs = [j for j in jobs if (j[0], MODEL_NAMES[j[1]], j[2]) not in have]
    print(f"{len(rows)} runs reused from the presentation-time sweep, {len(jobs)} to run", flush=True)
    rows = C.run_jobs(job, jobs, "le_feedback_alignment", key=lambda r: (r["task"], r["model"], r["seed"]),
                      quick=quick, rows=rows)
    tag = "_quick" if quick else ""
    summ = []
    for t in C.TASKS:
        for m in ("BP", "LE (W^T)", "LE + FA"):
            a = 100 * np.array([r["test_accuracy"] for r in rows if r["task"] == t and r["model"] == m])
            summ.append({"task": t, "model": m, "acc_mean": a.mean(), "acc_std": a.std(), "n_seeds": len(a)})
    for r in summ:
        bp = next(q for q in summ if q["task"] == r["task"] and q["model"] == "BP")
        r["minus_BP_points"] = r["acc_mean"] - bp["acc_mean"]
    md = C.write_table(summ, f"le_feedback_alignment{tag}")
    text = (f"# Feedback alignment{' (quick)' if quick else ''}\n\nt_pres = tau = {C.TAU} ms, seeds {seeds}; "
            f"settings as analysis/le_common.py; feedback B ~ N(0, 0.05^2) fixed. Test accuracy (%).\n\n{md}\n")
    (C.RESULTS / f"le_feedback_alignment{tag}.md").write_text(text)
    print(text)
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 3.5))
    labels = [f"{r['task']}\n{r['model']}" for r in summ]
    ax.bar(range(len(summ)), [r["acc_mean"] for r in summ], yerr=[r["acc_std"] for r in summ],
           color=["k", "C0", "C2"] * len(C.TASKS))
    ax.set_xticks(range(len(summ)), labels, fontsize=7)
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 100)
    fig.tight_layout()
    fig.savefig(C.RESULTS / f"le_feedback_alignment{tag}.png", dpi=120)
    return 0


if __name__ == "__main__":
    sys.exit(main())
