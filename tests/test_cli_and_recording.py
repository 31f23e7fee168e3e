"""End-to-end: the CLI on the bundled scenario, recordings on disk, faults (divergence, interrupt,
existing output), bounded memory."""
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

import microcircuit as mc
from microcircuit.cli import main
from microcircuit.errors import DivergenceError
from microcircuit.simulation import Simulation, Recording
from microcircuit.stimuli import Step, Sines
from microcircuit.analysis.estimators import lag

ROOT = Path(__file__).resolve().parents[1]


def test_le_chain_cli_lags(tmp_path, capsys):
    """`microcircuit run scenarios/le_chain.toml`: the 5-layer LE chain's output lags the input by at
    most layers*dt = 0.5 ms (sequential scheme: 0), the leaky chain by at least 0.5*layers*tau_m = 25 ms
    (each layer adds ~tau_m = 10 ms at these low frequencies)."""
    out = tmp_path / "lc.zarr"
    assert main(["run", str(ROOT / "scenarios" / "le_chain.toml"), "--out", str(out), "--no-progress"]) == 0
    tree = mc.open_recording(out)
    x = tree["stim"]["r"].isel(batch=0, neuron=0)
    le = float(lag(x, tree["le5"]["r"].isel(batch=0, neuron=0)))
    leaky = float(lag(x, tree["leaky5"]["r"].isel(batch=0, neuron=0)))
    assert le <= 5 * 0.1
    assert leaky >= 0.5 * 5 * 10.0
    assert tree.attrs["complete"] is True or tree.attrs["complete"] == True
    assert "le_chain" in tree.attrs["scenario"]
    assert tree["le5"]["r"].attrs["units"] == "1"
    assert tree["le5"]["r"].dims == ("time", "batch", "neuron")
    # second run refuses to overwrite
    assert main(["run", str(ROOT / "scenarios" / "le_chain.toml"), "--out", str(out), "--no-progress"]) != 0
    assert "--overwrite" in capsys.readouterr().err
    assert main(["info", str(out)]) == 0
    assert "le5" in capsys.readouterr().out


def test_cli_bad_input_exits_without_traceback(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[simulation]\ndt = 0.1\nduration = 1.0\n[[populations]]\nname = "x"\nmodel = "inpt"\nsize = 1\n')
    p = subprocess.run([sys.executable, "-m", "microcircuit.cli", "validate", str(bad)], capture_output=True, text=True)
    assert p.returncode == 2
    assert "populations[0].model" in p.stderr and "did you mean 'input'?" in p.stderr
    assert "Traceback" not in p.stderr
    p = subprocess.run([sys.executable, "-m", "microcircuit.cli", "run", str(ROOT / "scenarios" / "le_chain.toml"),
                        "--set", "simulation.dt=-1", "--out", str(tmp_path / "x.zarr")], capture_output=True, text=True)
    assert p.returncode == 2 and "simulation.dt: must be > 0" in p.stderr and "Traceback" not in p.stderr


def _unstable_circuit():
    c = mc.Circuit()
    c.add_population("x", "input", 1)
    c.add_population("a", "rate", 2, tau_m=1.0, activation="linear")
    c.add_projection("x", "a", weights={"dist": "constant", "value": 1.0})
    c.add_projection("a", "a", name="recurrent", weights={"dist": "constant", "value": 30.0})
    return c


def test_divergence_names_population_step_and_keeps_data(tmp_path):
    """A runaway recurrent loop overflows: the error names population 'a', variable 'u' and the step;
    the store keeps every record before that step and is marked incomplete."""
    prog = mc.compile(_unstable_circuit(), dt=0.1, stimuli=[Step("x", 1.0)])
    out = tmp_path / "div.zarr"
    sim = Simulation(prog, recordings=[Recording("a", ["u"])], output=out, chunk_steps=50)
    with pytest.raises(DivergenceError) as ei:
        sim.run(steps=2000)
    err = ei.value
    assert err.population == "a" and err.variable == "u"
    assert "population 'a'" in str(err) and f"step {err.step}" in str(err)
    tree = mc.open_recording(out)
    assert bool(tree.attrs["complete"]) is False
    u = tree["a"]["u"].values
    assert u.shape[0] == err.step            # everything before the failing step is there
    assert np.all(np.isfinite(u[:-1]))


def test_interrupt_leaves_readable_incomplete_store(tmp_path, monkeypatch):
    """Ctrl-C between chunks: the store stays readable, holds the chunks done, complete = False."""
    c = mc.layered([2, 3, 1], hidden={"tau_m": 1.0})
    prog = mc.compile(c, dt=0.1, stimuli=[Sines("input", omega=1.0)])
    out = tmp_path / "int.zarr"
    sim = Simulation(prog, recordings=[Recording("output", ["r"])], output=out, chunk_steps=100)
    calls = {"n": 0}
    orig = sim._chunk

    def chunk(k0, K):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        orig(k0, K)
    monkeypatch.setattr(sim, "_chunk", chunk)
    with pytest.raises(KeyboardInterrupt):
        sim.run(steps=1000)
    tree = mc.open_recording(out)
    assert tree["output"]["r"].shape[0] == 300
    assert bool(tree.attrs["complete"]) is False
    assert "interrupted" in tree.attrs["reason"]


def _peak_for(steps, tmp_path, name):
    c = mc.layered([20, 50, 10], hidden={"tau_m": 1.0})
    prog = mc.compile(c, dt=0.1, stimuli=[Sines("input", omega=1.0)])
    sim = Simulation(prog, recordings=[Recording("layer1", ["r", "u", "e"]), Recording("output", ["r"])],
                     output=tmp_path / name, chunk_steps=500)
    sim.run(steps=500)  # warm-up: compile, allocate
    tracemalloc.start()
    sim.run(steps=steps)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    sim.close()
    return peak


def test_memory_bounded_by_chunk(tmp_path):
    """A run 10x longer does not raise peak memory: one chunk buffer is 500 steps x 160 values x 8 B
    = 0.64 MB; the peak for 5,000 and 50,000 steps stays within 1.5x of each other and below 8 MB."""
    short = _peak_for(5_000, tmp_path, "s.zarr")
    long = _peak_for(50_000, tmp_path, "l.zarr")
    assert long < 1.5 * short + 200_000
    assert long < 8e6


def test_output_into_a_closed_pipe_is_silent():
    """`microcircuit models pyramidal | head -1`: when the reader leaves, the CLI stops without a
    message and with 141 (128 + SIGPIPE), as Unix tools do; it used to print 'error: Broken pipe'."""
    r, w = os.pipe()
    os.close(r)                                   # the reader is gone before anything is written
    proc = subprocess.run([sys.executable, "-m", "microcircuit.cli", "models", "pyramidal"], stdout=w,
                          stderr=subprocess.PIPE, text=True, timeout=120)
    os.close(w)
    assert proc.returncode == 141, proc.stderr
    assert proc.stderr == ""
