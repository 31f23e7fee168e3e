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
