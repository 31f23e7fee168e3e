"""Presentation-time sweep (LE paper Figs. 2b / 4a idea) on Yin-Yang (4-120-3) and digits (64-100-10).

Models: LE (tau_r = tau_m = 10 ms), the non-prospective leaky network (tau_r = 0, r = phi(u)) and
BP (microcircuit/baseline.py, same initial parameters, SGD minibatch 16, cosine schedule).
t_pres in {0.1, 0.3, 1, 3, 10, 30} * tau with 50 steps per presentation (dt = t_pres / 50);
3 seeds. Continuous sample stream, no reset; readout = output rate at the last step.

Acceptance: BP >= 96 %; LE within 1.5 points of BP at every t_pres; leaky >= 10 points below BP at
t_pres <= tau.

Finished runs are appended to analysis/results/le_presentation_time_runs[_quick].partial.jsonl; an
interrupted sweep resumes from that file when started again (it is removed once the tables are
written). ``LE_WORKERS`` sets the number of worker processes (default 2).

    python analysis/le_presentation_time.py [--quick]
"""
from __future__ import annotations

import sys
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import le_common as C  # noqa: E402

FACTORS = [0.1, 0.3, 1.0, 3.0, 10.0, 30.0]
SEEDS = [1, 2, 3]


def job(args):
    task, model, factor, seed, quick = args
    t0 = time.time()
    if model == "bp":
        acc = C.run_bp(task, seed, quick)["test_accuracy"]
    else:
        res = C.run_le(task, seed, factor * C.TAU, model=model, quick=quick)
        acc = res.final("test_accuracy")
    return {"task": task, "model": model, "t_pres_over_tau": factor, "seed": seed,
            "test_accuracy": float(acc), "wall_s": time.time() - t0}


def _key(task, model, factor, seed):
    """Identity of one run; BP runs do not depend on t_pres (factor NaN)."""
    return (task, model, None if model == "bp" else round(float(factor), 6), int(seed))


def load_partial(path, jobs):
    """Rows of finished runs from the partial JSONL file of an interrupted sweep (only those that
    belong to `jobs`, i.e. the same quick/full settings); an unreadable last line is ignored."""
    import json
    wanted = {_key(*j[:4]) for j in jobs}
    rows, seen = [], set()
    if not path.exists():
        return rows
    for line in path.read_text().splitlines():
        try:
            r = json.loads(line)
        except ValueError:
            continue
        k = _key(r["task"], r["model"], r["t_pres_over_tau"], r["seed"])
        if k in wanted and k not in seen:
            seen.add(k)
            rows.append(r)
    return rows


def main():
    quick = C.quick_flag()
    factors = [0.1, 1.0, 10.0] if quick else FACTORS
    seeds = [1] if quick else SEEDS
    jobs = [(t, "bp", np.nan, s, quick) for t in C.TASKS for s in seeds]
    jobs += [(t, m, f, s, quick) for t in C.TASKS for m in ("le", "leaky") for f in factors for s in seeds]
    jobs.sort(key=lambda j: (j[3], 0 if j[0] == "yin_yang" else 1))    # seed by seed, longest first
    t0 = time.time()
    tag = "_quick" if quick else ""
    partial = C.RESULTS / f"le_presentation_time_runs{tag}.partial.jsonl"
    import json
    rows = load_partial(partial, jobs)          # resume: runs finished by an interrupted sweep
    done = {_key(r["task"], r["model"], r["t_pres_over_tau"], r["seed"]) for r in rows}
    jobs = [j for j in jobs if _key(*j[:4]) not in done]
    if rows:
        print(f"resuming: {len(rows)} runs read from {partial.name}, {len(jobs)} to go", flush=True)
    with Pool(C.n_workers()) as pool:
        for i, r in enumerate(pool.imap_unordered(job, jobs)):
            rows.append(r)
            with open(partial, "a") as f:
                f.write(json.dumps(r) + "\n")
            print(f"[{i + 1}/{len(jobs)}] {r['task']:<8} {r['model']:<5} t_pres/tau={r['t_pres_over_tau']:<5} "
                  f"seed={r['seed']} acc={r['test_accuracy']:.4f} ({r['wall_s']:.0f} s)", flush=True)
    total = time.time() - t0
    partial.unlink(missing_ok=True)
    rows.sort(key=lambda r: (r["task"], r["model"], np.nan_to_num(r["t_pres_over_tau"]), r["seed"]))
    C.write_table(rows, f"le_presentation_time_runs{tag}")
    # summary
    summ, checks = [], []
    for task in C.TASKS:
        bp = np.array([r["test_accuracy"] for r in rows if r["task"] == task and r["model"] == "bp"])
        bp_m = 100 * bp.mean()
        checks.append((f"{task}: BP >= 96 %", bp_m >= 96.0, f"{bp_m:.2f} %"))
        for f in factors:
            row = {"task": task, "t_pres_over_tau": f, "t_pres_ms": f * C.TAU, "dt_ms": f * C.TAU / C.STEPS,
                   "BP_mean": bp_m, "BP_std": 100 * bp.std()}
            for m in ("le", "leaky"):
                a = 100 * np.array([r["test_accuracy"] for r in rows if r["task"] == task and r["model"] == m
                                    and r["t_pres_over_tau"] == f])
                row[f"{m.upper()}_mean"], row[f"{m.upper()}_std"] = a.mean(), a.std()
            summ.append(row)
            checks.append((f"{task} t_pres={f:g} tau: abs(LE - BP) <= 1.5", abs(row["LE_mean"] - bp_m) <= 1.5,
                           f"LE {row['LE_mean']:.2f} vs BP {bp_m:.2f}"))
            if f <= 1.0:
                checks.append((f"{task} t_pres={f:g} tau: leaky <= BP - 10", row["LEAKY_mean"] <= bp_m - 10,
                               f"leaky {row['LEAKY_mean']:.2f} vs BP {bp_m:.2f}"))
    cols = ["task", "t_pres_over_tau", "t_pres_ms", "dt_ms", "BP_mean", "BP_std", "LE_mean", "LE_std",
            "LEAKY_mean", "LEAKY_std"]
    md = C.write_table(summ, f"le_presentation_time{tag}", cols)
    lines = [f"# Presentation-time sweep{' (quick)' if quick else ''}", "",
             f"Test accuracy (%), mean and std over seeds {seeds}; tau = {C.TAU} ms, {C.STEPS} steps per "
             f"presentation, batch {C.BATCH}, BP lr {C.LR_BP} (LE lr {C.LR_BP / C.BETA} per presentation, "
             f"beta {C.BETA}), cosine schedule, epochs "
             + ", ".join(f"{t}: {C.TASKS[t]['quick_epochs' if quick else 'epochs']}" for t in C.TASKS)
             + f". Hidden {C.HIDDEN}, output {C.OUTPUT}, MSE on rates. Wall time {total:.0f} s (this invocation; "
             f"resumed runs not counted) on "
             f"{C.n_workers()} workers.", "", md, "", "## Acceptance", "",
             "| check | pass | value |", "|---|---|---|"]
    lines += [f"| {n} | {'yes' if ok else 'NO'} | {v} |" for n, ok, v in checks]
    (C.RESULTS / f"le_presentation_time{tag}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    # figure
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(C.TASKS), figsize=(5 * len(C.TASKS), 3.8), squeeze=False)
    for ax, task in zip(axes[0], C.TASKS):
        s = [r for r in summ if r["task"] == task]
        x = [r["t_pres_over_tau"] for r in s]
        for m, col in (("LE", "C0"), ("LEAKY", "C3")):
            ax.errorbar(x, [r[f"{m}_mean"] for r in s], [r[f"{m}_std"] for r in s], marker="o", color=col,
                        label={"LE": "LE (prospective)", "LEAKY": "leaky (tau_r = 0)"}[m], capsize=3)
        ax.axhline(s[0]["BP_mean"], color="k", ls="--", label="BP")
        ax.set_xscale("log")
        ax.set_xlabel("t_pres / tau_m")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(task)
        ax.set_ylim(0, 100)
        ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(C.RESULTS / f"le_presentation_time{tag}.png", dpi=120)
    return 0 if all(ok for _, ok, _ in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
