"""Sphinx configuration of the microcircuit documentation.

Everything is built offline: no intersphinx, no downloads, notebooks are rendered from their
committed outputs (myst-nb with ``nb_execution_mode = "off"``).

At build start this file

* copies ``analysis/*.ipynb`` into ``docs/notebooks/`` (gitignored), so that the notebooks live
  under the source directory without symlinks and are rendered with the outputs committed in
  ``analysis/``;
* writes the generated reference pages (``models.md``, ``schema.md``, ``registries.md``,
  ``cli.md``) into
  ``docs/reference/generated/`` (gitignored) with
  :func:`microcircuit.docgen.write_reference_pages`.
"""

from __future__ import annotations

import re
import shutil
import sys
import tempfile
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))

import microcircuit  # noqa: E402

project = "microcircuit"
author = "microcircuit developers"
copyright = "microcircuit developers"
release = microcircuit.__version__
version = release

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
]

# -- sources -----------------------------------------------------------------------------------
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "**.ipynb_checkpoints"]
root_doc = "index"

# -- MyST / notebooks --------------------------------------------------------------------------
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3
nb_execution_mode = "off"          # render the outputs committed with the notebooks
nb_merge_streams = True

# -- autodoc -----------------------------------------------------------------------------------
autodoc_default_options = {"members": True, "ignore-module-all": True}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
napoleon_numpy_docstring = True
napoleon_google_docstring = False
napoleon_use_rtype = False

# -- HTML --------------------------------------------------------------------------------------
html_theme = "alabaster"
html_title = f"microcircuit {release}"
html_static_path: list[str] = []


# -- build-start hooks -------------------------------------------------------------------------
def _copy_notebooks() -> None:
    """Mirror ``analysis/*.ipynb`` (with their committed outputs) into ``docs/notebooks/``."""
    target = DOCS / "notebooks"
    target.mkdir(exist_ok=True)
    sources = {p.name: p for p in sorted((ROOT / "analysis").glob("*.ipynb"))}
    for stale in target.glob("*.ipynb"):
        if stale.name not in sources:
            stale.unlink()
    for name, src in sources.items():
        dst = target / name
        if not dst.exists() or dst.read_bytes() != src.read_bytes():
            shutil.copyfile(src, dst)


def _write_reference() -> None:
    """Write the generated reference pages; a missing generator is an error, not a warning."""
    from microcircuit.docgen import write_reference_pages  # ImportError: fail the build loudly

    out = DOCS / "reference" / "generated"
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        written = [Path(p) for p in write_reference_pages(Path(tmp))]
        missing = {"models.md", "schema.md", "registries.md"} - {p.name for p in written}
        if missing:
            raise RuntimeError("microcircuit.docgen.write_reference_pages did not write "
                               f"{sorted(missing)}")
        for page in written:  # rewrite only what changed, so incremental builds stay incremental
            dst = out / page.name
            if not dst.exists() or dst.read_bytes() != page.read_bytes():
                shutil.copyfile(page, dst)


_copy_notebooks()
_write_reference()


# -- parameters written as "name : description" ------------------------------------------------
# Some docstrings list their parameters as ``name : what it is`` (prose) instead of the numpydoc
# ``name : type`` line followed by an indented description. Napoleon would show the prose as a
# type; this hook (run before napoleon) moves prose to the description line. Rendering only.
_ENTRY = re.compile(r"^(?P<name>\*{0,2}[A-Za-z_][\w, *]*?) : (?P<text>.+)$")


def _is_prose(text: str) -> bool:
    words = re.sub(r"``[^`]*``|:\w+:`[^`]*`|\{[^}]*\}", "X", text).split()
    return len(words) > 5 or text.rstrip().endswith(".")


def _prose_parameters(app, what, name, obj, options, lines) -> None:
    in_params = False
    for i, line in enumerate(list(lines)):
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if nxt and set(nxt.strip()) == {"-"} and line.strip():
            in_params = line.strip() in ("Parameters", "Other Parameters", "Keyword Arguments")
            continue
        if not in_params or line.startswith(" "):
            continue
        m = _ENTRY.match(line)
        if m and _is_prose(m.group("text")):
            lines[i] = m.group("name")
            lines.insert(i + 1, "    " + m.group("text"))
            # the inserted line shifts the rest; re-run on the new list from here
            return _prose_parameters(app, what, name, obj, options, lines)


def setup(app):
    app.connect("autodoc-process-docstring", _prose_parameters, priority=400)
