"""The on-disk Numba cache never runs stale code after an edit to another engine module.

Numba keys a cached function by its own file only; the kernel inlines ``activations.phi_and_dphi``,
so before :mod:`microcircuit.jit` an edit to ``activations.py`` left the kernel running the old
activation from the cache. Here a copy of the package runs a linear neuron driven by a constant
input, the copy's linear activation is edited to ``phi(x) = 2 x``, and a fresh process must see
the doubled rate."""
import shutil
import subprocess
import sys
from pathlib import Path

import microcircuit

PROGRAM = """
import microcircuit as mc
from microcircuit.stimuli import Step
c = mc.layered([1, 1], output={"tau_m": 1.0, "activation": "linear"}, weights={"dist": "constant", "value": 1.0})
prog = mc.compile(c, dt=0.1, scheme="sequential", stimuli=[Step("input", amplitude=0.5)])
sim = mc.Simulation(prog, recordings=[mc.simulation.Recording("output", ["r"])])
sim.run(50.0)
print(repr(float(sim.results()["output"]["r"].values[-1, 0, 0])))
"""


def _rate(root):
    out = subprocess.run([sys.executable, "-c", PROGRAM], cwd=root, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    return float(out.stdout.strip().splitlines()[-1])


def test_edit_to_an_inlined_module_recompiles_the_kernel(tmp_path, monkeypatch):
    pkg = tmp_path / "microcircuit"
    # copy2 keeps time stamps, so the copy starts with a valid cache (as an installed package would)
    shutil.copytree(Path(microcircuit.__file__).parent, pkg)
    before = _rate(tmp_path)
    # 50 tau_m of a constant drive: r = phi(u) with u at its fixed point 0.5 (the input rate times w = 1)
    assert abs(before - 0.5) < 1e-9
    act = pkg / "activations.py"
    text = act.read_text()
    assert "    if kind == 0:\n        return x, 1.0\n" in text
    act.write_text(text.replace("    if kind == 0:\n        return x, 1.0\n", "    if kind == 0:\n        return 2.0 * x, 2.0\n", 1))
    after = _rate(tmp_path)
    # the kernel reads phi_and_dphi: the output rate doubles (the soma's u itself does not depend on phi)
    assert abs(after - 1.0) < 1e-9, f"stale compiled kernel: rate {after}, expected 1.0 from the edited activation"
