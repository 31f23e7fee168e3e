"""Writing an analysis script's results: a Markdown report and the CSV table behind it."""
from __future__ import annotations

import csv
from pathlib import Path


def write_report(out, stem, lines, rows):
    """Write ``<out>/<stem>.md`` (the Markdown ``lines``) and ``<out>/<stem>.csv`` (``rows``, a list of
    dicts with the same keys); creates ``out``. Returns the Markdown path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    md = out / f"{stem}.md"
    md.write_text("\n".join(lines) + "\n")
    with open(out / f"{stem}.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return md


def plot_accuracy(path, curves, references=(), title="", ylabel="test accuracy"):
    """An accuracy-vs-epoch figure: ``curves`` = [(label, epochs, values), ...], ``references`` =
    [(label, value, linestyle), ...] drawn as horizontal lines (e.g. a paper's number)."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    for label, x, y in curves:
        ax.plot(x, y, label=label)
    for label, value, ls in references:
        ax.axhline(value, color="k" if ls == ":" else "gray", ls=ls, lw=0.9, label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, 1)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return path
