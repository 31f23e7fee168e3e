"""Every command in README.md's fenced ```bash and ```python blocks runs, as a new user would run it.

A README example that fails is the first thing a user meets (``--set populations.le1.tau_m=5``
exited 2 for months). So the blocks are extracted from the README itself, in order, and run in one
temporary directory that holds links to the repository's ``scenarios/`` and ``benchmarks/`` (the
README's relative paths work there, and outputs such as ``bars.zarr`` land there and are read by
later blocks, as in a user's session). Bash lines run one by one with ``bash -e -o pipefail``;
python blocks are ``exec``'d in a fresh namespace in a fresh interpreter under ``-W error`` (so
opening ``bars.zarr`` with plain xarray must not warn about consolidated metadata).

Transformed lines, each stated in :data:`TRANSFORMS` with its reason, and each required to match
exactly once, so a README edit cannot silently drop one:

* ``pip install -e . && microcircuit run ...`` runs its ``microcircuit`` part only: the package is
  installed in the test environment already, and the install itself is exercised by CI.
* ``pip install -e ".[test]" && python -m pytest -q -p no:cacheprovider`` runs ``python -m pytest
  -q -p no:cacheprovider --collect-only`` in the repository: running the suite from inside the suite
  would recurse; collecting checks the command line and that every test module imports.
* ``python benchmarks/bench_*.py`` run with ``--help``: the README says they run on demand, never in
  the tests (minutes each); ``--help`` checks the script exists and parses its arguments.

Nothing else is changed; the main job runs in full (300 epochs, about 10 s on the 2-core VM).
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BLOCK = re.compile(r"^```(bash|python)\n(.*?)^```", re.S | re.M)

# (README line prefix, replacement, run in the repository root?, why)
TRANSFORMS = [
    ("pip install -e . && ", "", False, "installed already; CI runs the install"),
    ('pip install -e ".[test]" && python -m pytest -q -p no:cacheprovider',
     "python -m pytest -q -p no:cacheprovider --collect-only", True, "the suite cannot run itself"),
    ("python benchmarks/bench_roofline.py", "python benchmarks/bench_roofline.py --help", False, "minutes long"),
    ("python benchmarks/bench_sweep.py", "python benchmarks/bench_sweep.py --help", False, "minutes long"),
    ("python benchmarks/bench_engine.py", "python benchmarks/bench_engine.py --help", False, "minutes long"),
    ("python benchmarks/bench_threads.py", "python benchmarks/bench_threads.py --help", False, "minutes long"),
    ("python benchmarks/bench_gpu.py", "python benchmarks/bench_gpu.py --help", False, "needs a GPU"),
]


def readme_blocks() -> list[tuple[str, str]]:
    """``[(language, text)]`` of every fenced bash/python block, in README order."""
    return [(m.group(1), m.group(2)) for m in BLOCK.finditer(README.read_text())]


def bash_commands(text: str) -> list[str]:
    """The command lines of a bash block (blank lines and whole-line comments are not commands)."""
    return [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]


def transform(line: str, used: list[int]) -> tuple[str, bool]:
    """The line to run and whether it runs in the repository root (see :data:`TRANSFORMS`)."""
    for i, (prefix, replacement, in_repo, _why) in enumerate(TRANSFORMS):
        if line.startswith(prefix):
            used.append(i)
            rest = line[len(prefix):]
            if replacement.startswith("python benchmarks/"):   # keep nothing after the script: --help
                return replacement, in_repo
            return replacement + rest, in_repo
    return line, False


def _env() -> dict:
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONWARNINGS="")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # this venv's microcircuit
    return env


def _run_bash(line: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-e", "-o", "pipefail", "-c", line], cwd=cwd, env=_env(),
                          capture_output=True, text=True, timeout=300)


def _run_python(code: str, cwd: Path, label: str) -> subprocess.CompletedProcess:
    runner = "import sys; exec(compile(sys.stdin.read(), %r, 'exec'), {'__name__': '__main__'})" % label
    return subprocess.run([sys.executable, "-W", "error", "-c", runner], input=code, cwd=cwd, env=_env(),
                          capture_output=True, text=True, timeout=300)


def test_readme_has_the_blocks_this_test_expects():
    """5 bash blocks (quick start, command line, documentation, sweeps/checkpoints, benchmarks) and 2
    python blocks (the main job's recording in Jupyter, the Python API): a block lost to a broken fence
    fails here."""
    langs = [lang for lang, _ in readme_blocks()]
    assert langs.count("bash") == 5 and langs.count("python") == 2, langs


@pytest.mark.slow
def test_every_readme_command_runs(tmp_path):
    """Each README command exits 0 (python blocks: without any warning), in README order, and the
    5 transformations each apply exactly once."""
    for name in ("scenarios", "benchmarks"):
        (tmp_path / name).symlink_to(ROOT / name)
    used: list[int] = []
    ran = 0
    for k, (lang, text) in enumerate(readme_blocks()):
        if lang == "python":
            proc = _run_python(text, tmp_path, f"README python block {k}")
            assert proc.returncode == 0, f"README python block {k} failed:\n{text}\n{proc.stderr[-3000:]}"
            ran += 1
            continue
        for line in bash_commands(text):
            cmd, in_repo = transform(line, used)
            proc = _run_bash(cmd, ROOT if in_repo else tmp_path)
            assert proc.returncode == 0, (f"README command failed (exit {proc.returncode}): {line}\n"
                                          f"ran: {cmd}\n{proc.stdout[-1500:]}\n{proc.stderr[-3000:]}")
            ran += 1
    assert sorted(used) == list(range(len(TRANSFORMS))), f"transformations applied: {used}"
    # 15 bash lines (quick start 2, command line 5, documentation 2, sweeps 3, benchmarks 3) and 2 python blocks
    assert ran == 20, f"{ran} commands and blocks ran"
