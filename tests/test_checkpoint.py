"""Checkpoint/resume: an interrupted and resumed run equals an uninterrupted one bit for bit.

The scenario exercises every piece of mutable state a checkpoint must carry: membrane noise
(sigma > 0, draws from prog.rng inside the Numba kernel), error-driven plasticity with a tau_w
low-pass (weights, dw_filter), learned biases (eta_bias -> neuron["bias"]) and learned time
constants (tau_learning = "gle" -> neuron["g0"]), an OU stimulus and a target.
"""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import microcircuit as mc
from microcircuit.checkpoint import resume, scenario_from_store
from microcircuit.cli import main
from microcircuit.recording import read_checkpoint
from microcircuit.scenario import load_scenario

SCENARIO = """
[scenario]
name = "ckpt"

[simulation]
dt = 0.1
duration = 100.0     # 1000 steps
seed = 3
chunk_steps = 100

[[templates]]
kind = "layered"
sizes = [4, 6, 3]
hidden = {{ tau_m = 5.0, activation = "tanh", sigma = 0.3, eta_bias = 0.05, tau_learning = "gle", eta_tau = 0.01 }}
output = {{ tau_m = 5.0, activation = "linear", loss = "rate", beta = 0.5, eta_bias = 0.05 }}
eta = 0.05
weights = {{ dist = "normal", std = 0.5 }}

[[projections]]
pre = "layer0"
post = "layer1"
name = "extra"
plasticity = {{ rule = "error", eta = 0.02, tau_w = 3.0 }}

[[stimuli]]
target = "layer0"
waveform = "ou"
sigma = 1.0
tau = 2.0
seed = 5

[[stimuli]]
target = "layer2"
kind = "target"
waveform = "sines"
amplitude = [0.5, 0.3]
frequency_hz = [20.0, 31.0]

[[recordings]]
population = "layer1"
variables = ["u", "r", "e"]

[[recordings]]
population = "layer2"
variables = ["r"]
stride = 7

[output]
checkpoint_every_steps = {every}
"""


def _scenario(tmp_path, every=250):
    p = tmp_path / "ckpt.toml"
    p.write_text(SCENARIO.format(every=every))
    return p


def _arrays(store):
    tree = mc.open_recording(store)
    out = {}
    for pop in ("layer1", "layer2"):
        ds = tree[pop].to_dataset()
        for name, da in ds.data_vars.items():
            out[f"{pop}/{name}"] = np.asarray(da.values)
        for c in ds.coords:
            if c.startswith("time"):
                out[f"{pop}/{c}"] = np.asarray(ds[c].values)
    return out, tree.attrs


def _final_program(store):
    arrays, attrs = read_checkpoint(store)
    return arrays, attrs


def _interrupt_at(step):
    def gates(k0, k1):
        if k0 >= step:
            raise KeyboardInterrupt
        return np.ones((k1 - k0, 2))
    return gates


def test_interrupted_and_resumed_run_is_bit_identical(tmp_path):
    """Run A: 1000 steps uninterrupted. Run B: same scenario, interrupted by a KeyboardInterrupt at step
    600 (last checkpoint at step 500, records of steps 500..599 already on disk and must be cut), then
    resumed from the store. Every recorded array, the final weights, dw_filter, the learned bias and
    1/tau_m and the RNG state must be identical (==, not allclose), and B's time axis must hold exactly
    1000 steps (layer1) / ceil(1000/7) = 143 records (layer2, stride 7), i.e. nothing is duplicated."""
    path = _scenario(tmp_path)
    sc = load_scenario(path)
    a_store, b_store = tmp_path / "a.zarr", tmp_path / "b.zarr"
    assert main(["run", str(path), "--out", str(a_store), "--no-progress"]) == 0
    # checkpoints were written every 250 steps, so A's last one is at step 1000
    assert read_checkpoint(a_store)[1]["step"] == 1000

    sim_b = sc.build(output=str(b_store), gates=_interrupt_at(600))
    sim_b.checkpoint_every = 250
    with pytest.raises(KeyboardInterrupt):
        sim_b.run(100.0)
    assert sim_b.step == 600
    assert read_checkpoint(b_store)[1]["step"] == 500
    assert mc.open_recording(b_store).attrs["complete"] is False
    assert mc.open_recording(b_store)["layer1"].sizes["time"] == 600

    assert main(["run", "--resume", str(b_store), "--no-progress"]) == 0

    ra, attrs_a = _arrays(a_store)
    rb, attrs_b = _arrays(b_store)
    assert attrs_b["complete"] is True and attrs_b["resumed"] == 1
    assert rb["layer1/u"].shape == (1000, 1, 6)
    assert rb["layer2/r"].shape == (143, 1, 3)
    assert sorted(ra) == sorted(rb)
    for k in ra:
        np.testing.assert_array_equal(rb[k], ra[k], err_msg=k)
    ca, aa = read_checkpoint(a_store)
    cb, ab = read_checkpoint(b_store)
    assert ab["step"] == 1000
    assert json.loads(ab["rng_state"]) == json.loads(aa["rng_state"])
    for k in ("weights", "dw_filter", "neuron_bias", "neuron_g0", "state", "prev"):
        np.testing.assert_array_equal(cb[k], ca[k], err_msg=k)


def test_checkpointed_state_is_not_trivial(tmp_path):
    """Guards the test above against passing vacuously: in this scenario the learned arrays change
    (bias and g0 differ from their initial values: bias starts at 0, g0 at 1/5 = 0.2 per ms), the RNG
    advances (its state after 1000 steps differs from a fresh generator's) and the noise matters
    (another seed gives different membrane potentials)."""
    path = _scenario(tmp_path, every=1000)
    sc = load_scenario(path)
    sim = sc.build(output=str(tmp_path / "a.zarr"))
    fresh = sim.program.rng.bit_generator.state
    g0_init = sim.program.neuron["g0"].copy()
    sim.checkpoint_every = 1000
    sim.run(100.0)
    sim.close()
    arrays, attrs = read_checkpoint(tmp_path / "a.zarr")
    assert json.loads(attrs["rng_state"]) != json.loads(json.dumps(fresh, default=int))
    assert np.abs(arrays["neuron_bias"]).max() > 0
    hidden = sim.program.pop_slice("layer1")
    np.testing.assert_allclose(g0_init[hidden], 0.2)
    assert np.abs(arrays["neuron_g0"][hidden] - 0.2).max() > 0
    sc2 = load_scenario(path, ["simulation.seed=4"])
    sim2 = sc2.build()
    sim2.run(100.0)
    u1 = mc.open_recording(tmp_path / "a.zarr")["layer1"]["u"].values
    u2 = sim2.results()["layer1"]["u"].values
    assert not np.array_equal(u1, u2)


def test_resume_after_sigkill(tmp_path):
    """A `microcircuit run` subprocess killed with SIGKILL after its first checkpoint (no chance to
    close the store: status stays "running") resumes to the same numbers as an uninterrupted run."""
    path = tmp_path / "long.toml"
    text = (SCENARIO.format(every=1000).replace("duration = 100.0     # 1000 steps", "duration = 1000.0")
            .replace("chunk_steps = 100", "chunk_steps = 200"))
    path.write_text(text)
    a_store, b_store = tmp_path / "a.zarr", tmp_path / "b.zarr"
    assert main(["run", str(path), "--out", str(a_store), "--no-progress"]) == 0
    proc = subprocess.Popen([sys.executable, "-m", "microcircuit.cli", "run", str(path), "--out", str(b_store),
                             "--no-progress"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    ck = b_store / "checkpoint" / "zarr.json"
    try:
        while time.time() < deadline:
            if ck.exists() and '"current": "v' in ck.read_text():
                break
            if proc.poll() is not None:
                break
            time.sleep(0.01)
        finished = proc.poll() is not None
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    if finished:
        pytest.skip("the run finished before it could be killed")
    # read the root attrs with zarr: a store killed between two arrays' resizes can hold arrays of
    # different lengths, which xarray refuses to open before trimming (reported as a reader limitation)
    import zarr
    assert zarr.open_group(str(b_store), mode="r").attrs["status"] == "running"
    assert main(["run", "--resume", str(b_store), "--no-progress"]) == 0
    ra, _ = _arrays(a_store)
    rb, attrs_b = _arrays(b_store)
    assert attrs_b["complete"] is True
    for k in ra:
        np.testing.assert_array_equal(rb[k], ra[k], err_msg=k)


def test_scenario_from_store_roundtrips_overrides(tmp_path):
    """Overrides given at run time are replayed on resume: seed 9 and a bool override survive
    (build.py stores them as Python reprs, e.g. 'output.overwrite=True')."""
    path = _scenario(tmp_path)
    store = tmp_path / "o.zarr"
    assert main(["run", str(path), "--out", str(store), "--no-progress", "--set", "simulation.seed=9",
                 "--set", "output.overwrite=true"]) == 0
    sc = scenario_from_store(store)
    assert sc.data["simulation"]["seed"] == 9
    assert sc.data["output"]["overwrite"] is True


def test_resume_ignores_the_scenarios_own_output_path(tmp_path, monkeypatch):
    """The stored scenario names `[output] path = "named.zarr"`, which exists. Resuming another store
    (run with --out) must reopen that store only and exit 0; it used to build a second simulation on
    named.zarr and fail with 'already exists'."""
    monkeypatch.chdir(tmp_path)
    p = tmp_path / "named.toml"
    p.write_text(SCENARIO.format(every=250) + 'path = "named.zarr"\n')
    assert main(["run", str(p), "--no-progress"]) == 0
    assert (tmp_path / "named.zarr").exists()
    other = tmp_path / "other.zarr"
    assert main(["run", str(p), "--out", str(other), "--no-progress"]) == 0
    assert main(["run", "--resume", str(other), "--no-progress"]) == 0
    assert mc.open_recording(other).attrs["complete"] is True
