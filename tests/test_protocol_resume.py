"""Protocol runs (a scenario's [protocol] table) checkpoint at epoch ends, resume bit-identically after
SIGKILL or Ctrl-C, refuse a changed scenario unless allowed, and run under `microcircuit sweep`.

The scenario carries every kind of state a protocol checkpoint must restore: membrane noise (sigma > 0,
the program's RNG), shuffled training order (the protocol's own RNG), a plateau learning-rate schedule
(its best loss / bad-epoch counter and the current scale, reported as the lr_scale metric), learned
weights and biases, and a strided circuit recording whose records after the checkpoint must be cut.
"""
import os
import re
import signal
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest
import zarr

import microcircuit.protocols as protocols
from microcircuit.checkpoint import InputsChangedError, resume
from microcircuit.cli import main
from microcircuit.recording import read_checkpoint
from microcircuit.scenario import load_scenario
from microcircuit.sweep import _seed_values, open_sweep, run_sweep

EPOCHS = 30
SCENARIO = f"""
[scenario]
name = "proto_resume"

[simulation]
dt = 0.1
seed = 4
batch = 2

[[templates]]
kind = "layered"
sizes = [9, 12, 3]
input = "input"
prefix = "layer"
output_name = "output"
hidden = {{ tau_m = 1.0, activation = "tanh", sigma = 0.05 }}
output = {{ tau_m = 1.0, activation = "logistic", loss = "rate", beta = 0.1 }}
eta = 1.0
weights = {{ dist = "normal", std = 0.5 }}

[protocol]
dataset = "bars"
dataset_args = {{ noise = 0.1, seed = 2 }}
t_pres = 1.0
epochs = {EPOCHS}
lr = 50.0
phases = ["train", "val", "test"]
lr_schedule = "plateau"
plateau_patience = 0
plateau_factor = 0.9
checkpoint_every = 5

[[recordings]]
population = "layer1"
variables = ["r"]
stride = 7
"""


def _metrics(store):
    g = zarr.open_group(str(store), mode="r")["metrics"]
    return {k: a[:] for k, a in g.arrays()}


def _final_state(store):
    arrays, attrs = read_checkpoint(store)
    return arrays, attrs


def _assert_same_run(a, b):
    """Metrics (all but wall_time_s), the final checkpoint (program state, weights, filters, learned g0 and
    bias, both RNG states) and the circuit's records of two stores are equal bit for bit."""
    ma, mb = _metrics(a), _metrics(b)
    assert sorted(ma) == sorted(mb)
    assert list(ma["epoch"]) == list(range(EPOCHS + 1))
    for k in ma:
        if k != "wall_time_s":
            np.testing.assert_array_equal(mb[k], ma[k], err_msg=k)
    ca, aa = _final_state(a)
    cb, ab = _final_state(b)
    assert aa["protocol"]["epoch"] == ab["protocol"]["epoch"] == EPOCHS
    assert aa["step"] == ab["step"]
    assert aa["rng_state"] == ab["rng_state"]
    assert aa["protocol"]["shuffle_rng_state"] == ab["protocol"]["shuffle_rng_state"]
    assert sorted(ca) == sorted(cb)
    names = aa["protocol"]["metric_names"]
    assert ab["protocol"]["metric_names"] == names
    timed = names.index("wall_time_s")         # the only metric that differs: the time spent running
    for k in ca:
        x, y = (np.delete(ca[k], timed, 0), np.delete(cb[k], timed, 0)) if k == "protocol_metrics" else (ca[k], cb[k])
        np.testing.assert_array_equal(y, x, err_msg=k)
    ra, rb = zarr.open_group(str(a), mode="r")["layer1"], zarr.open_group(str(b), mode="r")["layer1"]
    for k, arr in ra.arrays():
        np.testing.assert_array_equal(rb[k][...], arr[...], err_msg=f"layer1/{k}")


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """Scenario file and the store of the uninterrupted run (A)."""
    d = tmp_path_factory.mktemp("proto_resume")
    path = d / "proto.toml"
    path.write_text(SCENARIO)
    a_store = d / "a.zarr"
    assert main(["run", str(path), "--out", str(a_store), "--no-progress"]) == 0
    # not trivial: learning moved the weights, the schedule reduced the rate at least once, noise drew
    ck0 = zarr.open_group(str(a_store), mode="r")
    assert ck0.attrs["status"] == "complete"
    m = _metrics(a_store)
    assert np.nanmin(m["lr_scale"]) < 1.0
    assert m["train_loss"][-1] < m["train_loss"][1]
    return path, a_store


def test_sigkill_then_resume_is_bit_identical(uninterrupted, tmp_path):
    """B: the same scenario as a `microcircuit run` subprocess, SIGKILLed right after its checkpoint at epoch
    5 (the store stays "running", later epochs never ran). A resume with an edited scenario file, or with
    another scenario named on the command line, is refused and leaves the store as it was; the resume with
    the scenario as it was (`run X.toml --out B --resume`) ends with B equal to A bit for bit."""
    path, a_store = uninterrupted
    b_store = tmp_path / "b.zarr"
    proc = subprocess.Popen([sys.executable, "-m", "microcircuit.cli", "run", str(path), "--out", str(b_store),
                             "--no-progress"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ck = b_store / "checkpoint" / "zarr.json"
    deadline = time.time() + 240      # a cold Numba cache compiles the kernel first
    try:
        while time.time() < deadline and proc.poll() is None:
            if ck.exists():
                m = re.search(r'"current": "v(\d+)"', ck.read_text())
                if m and int(m.group(1)) >= 1:      # v0: epoch 0 (setup), v1: epoch 5
                    break
            time.sleep(0.005)
        finished = proc.poll() is not None
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert not finished, "the run ended before it was killed (returncode %s): it must be killed mid-run" % proc.returncode
    root = zarr.open_group(str(b_store), mode="r")
    assert root.attrs["status"] == "running"          # killed: nobody closed the store
    _, attrs = read_checkpoint(b_store)
    killed_at = attrs["protocol"]["epoch"]
    assert 5 <= killed_at < EPOCHS
    assert int(root["metrics"].attrs["n_records"]["epoch"]) < EPOCHS + 1

    # a changed scenario is refused (the existing rule), and the refusal touches nothing
    text = path.read_text()
    path.write_text(text.replace("lr = 50.0", "lr = 51.0"))
    try:
        assert main(["run", "--resume", str(b_store), "--no-progress"]) == 2
    finally:
        path.write_text(text)
    other = tmp_path / "other.toml"
    other.write_text(text.replace("lr = 50.0", "lr = 51.0"))
    assert main(["run", str(other), "--out", str(b_store), "--resume", "--no-progress"]) == 2
    with pytest.raises(InputsChangedError):
        path.write_text(text + "\n# edited\n")
        try:
            resume(b_store)
        finally:
            path.write_text(text)
    root = zarr.open_group(str(b_store), mode="r")
    assert root.attrs["status"] == "running" and "resumed" not in root.attrs
    assert read_checkpoint(b_store)[1]["protocol"]["epoch"] == killed_at

    assert main(["run", str(path), "--out", str(b_store), "--resume", "--no-progress"]) == 0
    root = zarr.open_group(str(b_store), mode="r")
    assert root.attrs["status"] == "complete" and root.attrs["resumed"] == 1
    assert root.attrs["epochs_done"] == EPOCHS + 1
    _assert_same_run(a_store, b_store)


def test_ctrl_c_then_resume_with_allowed_change(uninterrupted, tmp_path, monkeypatch):
    """C: interrupted in-process (KeyboardInterrupt during epoch 13, as Ctrl-C or SIGTERM does), so the store
    is closed "interrupted" with its last checkpoint at epoch 10. The scenario file then gets a comment:
    the resume is refused unless allowed; allowed, it notes the change and, since the stored scenario text
    runs, still ends equal to A."""
    path, a_store = uninterrupted
    c_store = tmp_path / "c.zarr"
    calls = {"n": 0}
    real = protocols._metrics

    def interrupting(*a, **k):
        calls["n"] += 1
        if calls["n"] == 2 + 3 * 12 + 2:        # epoch 0: 2 phases; epochs 1..12: 3 each; then inside epoch 13
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(protocols, "_metrics", interrupting)
    assert main(["run", str(path), "--out", str(c_store), "--no-progress"]) == 130
    monkeypatch.setattr(protocols, "_metrics", real)
    root = zarr.open_group(str(c_store), mode="r")
    assert root.attrs["status"] == "interrupted"
    assert read_checkpoint(c_store)[1]["protocol"]["epoch"] == 10
    assert _metrics(a_store)["lr_scale"][10] < 1.0     # the schedule had already lowered the rate there
    assert list(root["metrics"]["epoch"][:]) == list(range(13))   # epochs 11, 12 are cut on resume

    text = path.read_text()
    path.write_text(text + "\n# a comment\n")
    try:
        with pytest.raises(InputsChangedError, match="was edited"):
            resume(c_store)
        res = resume(c_store, allow_changed_inputs=True)
    finally:
        path.write_text(text)
    assert res.epochs.tolist() == list(range(EPOCHS + 1))
    root = zarr.open_group(str(c_store), mode="r")
    assert root.attrs["status"] == "complete"
    assert root.attrs["resumed_with_changed_inputs"][0]["epoch"] == 10
    _assert_same_run(a_store, c_store)
    np.testing.assert_array_equal(res.metrics["test_loss"], _metrics(a_store)["test_loss"])


def test_protocol_sweep_rows_equal_single_runs(uninterrupted, tmp_path):
    """`microcircuit sweep` over protocol.t_pres = 1, 2 x 1 seed: 2 rows whose metrics (every epoch) and
    final weights equal those of the single protocol run of the same point; a protocol.seed fixed in the
    scenario makes --seeds refuse."""
    path, _ = uninterrupted
    out = tmp_path / "sw.zarr"
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*recordings.*")
        assert main(["sweep", str(path), "--grid", "protocol.t_pres=1.0,2.0", "--seeds", "1", "--workers", "0",
                     "--set", "protocol.epochs=3", "--out", str(out), "--no-progress"]) == 0
    ds = open_sweep(out)
    table = ds[[v for v in ds.data_vars if v.startswith("final.")]].to_dataframe()
    assert len(table) == 2
    assert ds["done"].values.all()
    seed = _seed_values(4, 1)[0]
    assert int(ds["seed"].values[0]) == seed
    for i, tp in enumerate((1.0, 2.0)):
        sc = load_scenario(path, ["protocol.epochs=3", f"protocol.t_pres={tp}", f"simulation.seed={seed}"])
        single = protocols.run_protocol(sc, output=None, progress=False)
        pt = ds.isel({"protocol.t_pres": i, "seed": 0})
        assert float(pt["final.test_loss"]) == single.final("test_loss")
        for name in ("test_loss", "test_accuracy", "train_loss", "val_loss", "lr_scale"):
            np.testing.assert_array_equal(pt[f"metrics.{name}"].values, single.metrics[name], err_msg=name)
        for proj in single.program.proj_names:
            np.testing.assert_array_equal(pt[f"W.{proj}"].values, single.program.weight(proj), err_msg=proj)
    assert not np.array_equal(ds["metrics.test_loss"].values[0], ds["metrics.test_loss"].values[1])

    fixed = tmp_path / "fixed.toml"
    fixed.write_text(path.read_text().replace("checkpoint_every = 5", "checkpoint_every = 5\nseed = 3"))
    with pytest.raises(Exception, match="protocol.seed"):
        run_sweep(fixed, {"protocol.t_pres": [1.0]}, seeds=2, out=tmp_path / "f.zarr", workers=0)
