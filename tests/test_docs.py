"""The Sphinx documentation builds offline with warnings as errors, and its key pages exist.

``sphinx-build -W --keep-going`` runs the whole site: the MyST pages, autodoc of every module
(docstring formatting errors fail here), the notebooks rendered from their committed outputs
(myst-nb, not executed) and the generated reference pages (``microcircuit.docgen``, called by
``docs/conf.py``). Needs the packages of the ``test`` extra: sphinx, myst-nb.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


@pytest.fixture(scope="module")
def html(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("docs")
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONWARNINGS="ignore::DeprecationWarning")
    cmd = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
           "-d", str(out / "doctrees"), str(DOCS), str(out / "html")]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, (f"sphinx-build failed (exit {proc.returncode}):\n"
                                  f"{proc.stderr[-6000:]}\n{proc.stdout[-2000:]}")
    return out / "html"


def _read(html: Path, page: str) -> str:
    path = html / page
    assert path.is_file(), f"{page} missing from the built site"
    return path.read_text(encoding="utf-8")


def test_key_pages_exist(html):
    pages = ["index.html", "getting-started.html", "concepts.html", "datasets.html",
             "reproductions.html", "api.html", "notebooks.html",
             "models/le.html", "models/gle.html", "models/microcircuit.html",
             "models/error-populations.html",
             "howto/write-a-scenario.html", "howto/sweep.html", "howto/resume.html",
             "howto/compare-with-recording.html", "howto/jupyter.html",
             "reference/index.html"]
    for page in pages:
        _read(html, page)


def test_generated_reference_pages(html):
    """docs/conf.py writes the generated references at build start; each page is in the site."""
    for name in ("models", "schema", "registries", "cli"):
        text = _read(html, f"reference/generated/{name}.html")
        assert "<h1>" in text, name
    index = _read(html, "reference/index.html")
    for name in ("models", "schema", "registries", "cli"):
        assert f"generated/{name}.html" in index
    cli = _read(html, "reference/generated/cli.html")     # one section per subcommand, linked from the table
    for cmd in ("run", "validate", "info", "models", "schema"):
        assert f'id="microcircuit-{cmd}"' in cli and f'href="#microcircuit-{cmd}"' in cli, cmd


def test_api_reference_documents_the_modules(html):
    api = _read(html, "api.html")
    for obj in ("microcircuit.compile.compile_circuit", "microcircuit.simulation.Simulation",
                "microcircuit.recording.ZarrRecorder", "microcircuit.circuit.layered",
                "microcircuit.microcircuit.dendritic_microcircuit", "microcircuit.gle.gle_layered"):
        assert f'id="{obj}"' in api, obj


def test_notebook_pages_show_their_figures(html):
    """The notebooks of analysis/ are rendered from their committed outputs, figures included."""
    notebooks = sorted(p.stem for p in (ROOT / "analysis").glob("*.ipynb"))
    assert notebooks
    for name in notebooks:
        text = _read(html, f"notebooks/{name}.html")
        assert re.search(r"<img[^>]+src=\"[^\"]+\.png\"", text), f"{name}: no figure"
    images = list((html / "_images").glob("*.png"))
    assert images, "no notebook image copied into the site"


def test_equations_are_rendered_as_math(html):
    le = _read(html, "models/le.html")
    assert 'class="math' in le


def test_reproductions_page_quotes_results_and_shows_figures(html):
    text = _read(html, "reproductions.html")
    assert "91.7" in text and "<img" in text     # the paper's MNIST-1D number next to ours
