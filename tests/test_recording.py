"""Tests for microcircuit.recording: labelled Zarr v3 recordings streamed chunk by chunk.

Every test runs with warnings turned into errors (module-level filterwarnings mark), because the
store must be written and read with no Zarr v3 / xarray warnings under `python -W error`.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import textwrap
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from microcircuit.recording import (
    RecordedVariable,
    RecordingError,
    RecordingExistsError,
    RecordingNotFoundError,
    ZarrRecorder,
    describe_store,
    open_recording,
    read_checkpoint,
)

pytestmark = pytest.mark.filterwarnings("error")

DT = 0.1
BATCH = 2


def _specs():
    return [
        RecordedVariable(population="hidden", name="u", neurons=np.arange(30), compartments=None,
                         units="mV", long_name="somatic membrane potential", dtype=np.float32, stride=1),
        RecordedVariable(population="pyr1", name="v", neurons=np.array([0, 3, 5]),
                         compartments=("soma", "basal", "apical"), units="mV",
                         long_name="compartment potentials", dtype=np.float64, stride=10),
    ]


def _blocks(rng, k_steps):
    """One engine chunk of k_steps steps: stride-1 u has k_steps records, stride-10 v has k_steps/10."""
    return {
        ("hidden", "u"): rng.standard_normal((k_steps, BATCH, 30)),  # float64 in, float32 stored
        ("pyr1", "v"): rng.standard_normal((k_steps // 10, BATCH, 3, 3)),
    }


def _write_run(path, n_chunks=3, k_steps=100, close=True, **kw):
    rng = np.random.default_rng(0)
    rec = ZarrRecorder(path, _specs(), dt=DT, batch=BATCH, chunk_records=k_steps,
                       attrs={"scenario": "[circuit]\nn = 30\n", "seed": np.int64(1)}, **kw)
    written = []
    for c in range(n_chunks):
        blocks = _blocks(rng, k_steps)
        rec.append(blocks, first_step=c * k_steps)
        written.append(blocks)
    if close:
        rec.close(complete=True)
    u = np.concatenate([b[("hidden", "u")] for b in written])
    v = np.concatenate([b[("pyr1", "v")] for b in written])
    return rec, u, v


# ------------------------------------------------------------------------------------------ round trip
def test_round_trip_values_dims_coords_and_attrs(tmp_path):
    """What is appended reads back with the documented dims, coords, dtypes and attrs."""
    path = tmp_path / "run.zarr"
    _, u, v = _write_run(path)
    tree = open_recording(path)
    hidden, pyr1 = tree["hidden"].to_dataset(), tree["pyr1"].to_dataset()

    # values: float32 variable is the float32 cast of what the engine gave; float64 is exact
    assert hidden.u.dims == ("time", "batch", "neuron")
    assert hidden.u.dtype == np.float32
    np.testing.assert_array_equal(hidden.u.values, u.astype(np.float32))
    assert pyr1.v.dims == ("time", "batch", "neuron", "compartment")
    assert pyr1.v.dtype == np.float64
    np.testing.assert_array_equal(pyr1.v.values, v)

    # coords: time = step * dt with the variable's stride, as the decimal labels a user types (0.3, not
    # 0.30000000000000004: one decimal, as dt = 0.1); neuron indices; compartment names; batch rows
    np.testing.assert_array_equal(hidden.time.values, np.round(np.arange(300) * DT, 1))
    assert hidden.time.values[3] == 0.3 and float(hidden.u.sel(time=0.3)[0, 0]) == u[3, 0, 0].astype(np.float32)
    np.testing.assert_array_equal(pyr1.time.values, np.round(np.arange(0, 300, 10) * DT, 1))
    np.testing.assert_array_equal(hidden.neuron.values, np.arange(30))
    np.testing.assert_array_equal(pyr1.neuron.values, [0, 3, 5])
    assert list(pyr1.compartment.values) == ["soma", "basal", "apical"]
    np.testing.assert_array_equal(hidden.batch.values, [0, 1])
    # label-based selection works, which is the point of labelled recordings
    np.testing.assert_array_equal(pyr1.v.sel(compartment="apical", neuron=3).values, v[:, :, 1, 2])

    # attrs: CF-style on every variable, population on groups, run metadata on the root
    assert (hidden.u.attrs["units"], hidden.u.attrs["long_name"]) == ("mV", "somatic membrane potential")
    assert (pyr1.v.attrs["units"], pyr1.v.attrs["long_name"]) == ("mV", "compartment potentials")
    assert hidden.time.attrs["units"] == "ms"
    assert hidden.attrs["population"] == "hidden" and pyr1.attrs["population"] == "pyr1"
    root = tree.attrs
    assert root["scenario"] == "[circuit]\nn = 30\n" and root["seed"] == 1
    assert root["complete"] is True and root["status"] == "complete" and root["reason"] == ""
    assert root["dt"] == DT and root["batch"] == BATCH
    assert isinstance(root["microcircuit_version"], str) and root["microcircuit_version"]
    assert root["created"].startswith("20")


def test_time_is_step_times_dt_and_does_not_drift(tmp_path):
    """Time is computed as step*dt in float64 per record (rounded to dt's one decimal), so late times
    equal the decimal label of index*dt exactly, unlike a running sum of dt, which is off after many steps."""
    spec = RecordedVariable("p", "u", np.arange(2), dtype=np.float64, stride=1)
    rec = ZarrRecorder(tmp_path / "t.zarr", [spec], dt=DT, batch=1, chunk_records=50)
    first = 1_000_000
    rec.append({("p", "u"): np.zeros((50, 1, 2))}, first_step=first)
    rec.close()
    t = open_recording(tmp_path / "t.zarr")["p"].time.values
    expected = np.array([float(f"{k // 10}.{k % 10}") for k in range(first, first + 50)])  # parsed decimals
    np.testing.assert_array_equal(t, expected)
    drifting = np.cumsum(np.full(first + 50, DT))[first - 1:first + 49]
    assert not np.array_equal(t, drifting)  # guards the test: a running sum really would differ


def test_explicit_steps_and_irregular_blocks(tmp_path):
    """append(steps=...) stores the given steps; blocks of any length (partial chunks) round-trip."""
    spec = RecordedVariable("p", "u", np.arange(4), dtype=np.float64, stride=5)
    rec = ZarrRecorder(tmp_path / "s.zarr", [spec], dt=0.5, batch=1, chunk_records=20)  # 4 records per chunk
    data = np.arange(9 * 4, dtype=np.float64).reshape(9, 1, 4)
    rec.append({("p", "u"): data[:3]}, steps={("p", "u"): np.array([0, 5, 10])})
    rec.append({("p", "u"): data[3:9]}, steps={("p", "u"): np.array([100, 105, 110, 115, 120, 125])})
    rec.close()
    ds = open_recording(tmp_path / "s.zarr")["p"]
    np.testing.assert_array_equal(ds.u.values, data)
    np.testing.assert_array_equal(ds.time.values, np.array([0, 5, 10, 100, 105, 110, 115, 120, 125]) * 0.5)


def test_variables_with_different_strides_or_neurons_get_their_own_dims(tmp_path):
    """In one population, a variable whose stride or neuron set differs from the first one gets dims
    suffixed with its name, so both fit in one Dataset; equal ones share the plain dims."""
    specs = [
        RecordedVariable("pyr", "u", np.arange(5), units="mV", stride=1),
        RecordedVariable("pyr", "r", np.arange(5), units="1", stride=1),
        RecordedVariable("pyr", "v", np.array([1, 2]), ("soma", "basal"), units="mV", stride=10),
    ]
    rec = ZarrRecorder(tmp_path / "d.zarr", specs, dt=DT, batch=1, chunk_records=20)
    rec.append({("pyr", "u"): np.ones((20, 1, 5)), ("pyr", "r"): np.ones((20, 1, 5)),
                ("pyr", "v"): np.ones((2, 1, 2, 2))}, first_step=0)
    rec.close()
    ds = open_recording(tmp_path / "d.zarr")["pyr"]
    assert ds.u.dims == ds.r.dims == ("time", "batch", "neuron")
    assert ds.v.dims == ("time_v", "batch", "neuron_v", "compartment")
    np.testing.assert_array_equal(ds.time_v.values, [0.0, 1.0])
    assert ds.sizes["time"] == 20 and ds.sizes["time_v"] == 2


# ------------------------------------------------------------------------------------------ existing paths
def test_existing_path_is_refused_without_overwrite(tmp_path):
    """A second run must not silently clobber a recording: typed error naming path and '--overwrite'."""
    path = tmp_path / "run.zarr"
    _write_run(path, n_chunks=1)
    with pytest.raises(RecordingExistsError) as info:
        ZarrRecorder(path, _specs(), dt=DT, batch=BATCH)
    assert isinstance(info.value, FileExistsError)
    assert str(path) in str(info.value) and "--overwrite" in str(info.value)
    assert open_recording(path)["hidden"].sizes["time"] == 100  # untouched


def test_overwrite_replaces_the_store(tmp_path):
    """overwrite=True starts a fresh store: old variables and data are gone."""
    path = tmp_path / "run.zarr"
    _write_run(path, n_chunks=2)
    spec = RecordedVariable("other", "w", np.arange(3), units="1")
    rec = ZarrRecorder(path, [spec], dt=0.2, batch=1, overwrite=True)
    rec.append({("other", "w"): np.zeros((4, 1, 3))}, first_step=0)
    rec.close()
    tree = open_recording(path)
    assert set(tree.children) == {"other"}
    assert tree.attrs["dt"] == 0.2 and "scenario" not in tree.attrs


def test_overwrite_never_deletes_a_directory_that_is_not_a_store(tmp_path):
    """--overwrite on a typo'd path such as a data directory must not rmtree it."""
    precious = tmp_path / "data"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    with pytest.raises(RecordingError, match="refusing to delete"):
        ZarrRecorder(precious, _specs(), dt=DT, batch=BATCH, overwrite=True)
    assert (precious / "notes.txt").read_text() == "keep me"


# ------------------------------------------------------------------------------------------ incomplete runs
def test_store_closed_incomplete_is_readable_and_flagged(tmp_path):
    """An interrupted run keeps everything appended so far, with complete=False and the reason."""
    path = tmp_path / "run.zarr"
    rec, u, _ = _write_run(path, n_chunks=2, close=False)
    rec.set_attrs(n_steps_done=200)
    rec.close(complete=False, reason="interrupted: KeyboardInterrupt at step 200")
    tree = open_recording(path)
    assert tree.attrs["complete"] is False
    assert tree.attrs["status"] == "interrupted"
    assert tree.attrs["reason"] == "interrupted: KeyboardInterrupt at step 200"
    assert tree.attrs["n_steps_done"] == 200
    np.testing.assert_array_equal(tree["hidden"].u.values, u.astype(np.float32))


def test_failure_in_the_middle_of_an_append_leaves_the_committed_records(tmp_path, monkeypatch):
    """If the process dies after the arrays were grown and written but before n_records was
    committed, readers see exactly the records of the earlier appends (the in-flight block is dropped)."""
    path = tmp_path / "run.zarr"
    rec, u, v = _write_run(path, n_chunks=2, close=False)

    def die(*args, **kwargs):
        raise KeyboardInterrupt("killed")

    # fault injection at the commit point: data and time are written, n_records not yet updated
    monkeypatch.setattr(ZarrRecorder, "_group_progress", die)
    with pytest.raises(KeyboardInterrupt):
        rec.append(_blocks(np.random.default_rng(5), 100), first_step=200)
    del rec  # never closed
    import zarr

    # really grown on disk (at least by the in-flight block; appends grow arrays ahead by room for 16 blocks)
    assert zarr.open_array(str(path / "hidden" / "u"), mode="r").shape[0] >= 300
    tree = open_recording(path)
    assert tree.attrs["complete"] is False and tree.attrs["status"] == "running"
    assert tree["hidden"].sizes["time"] == 200
    np.testing.assert_array_equal(tree["hidden"].u.values, u.astype(np.float32))
    np.testing.assert_array_equal(tree["hidden"].time.values, np.round(np.arange(200) * DT, 1))  # decimal time labels
    assert "running" in describe_store(path) and "time: 200" in describe_store(path)


def test_process_killed_between_appends_leaves_a_readable_store(tmp_path):
    """A hard kill (os._exit, no close, no finally) after 3 appends leaves 3 blocks readable."""
    path = tmp_path / "killed.zarr"
    script = textwrap.dedent(f"""
        import os, numpy as np
        from microcircuit.recording import RecordedVariable, ZarrRecorder
        spec = RecordedVariable("p", "u", np.arange(3), units="mV", dtype=np.float32)
        rec = ZarrRecorder({str(path)!r}, [spec], dt=0.1, batch=1, chunk_records=10)
        for c in range(3):
            rec.append({{("p", "u"): np.full((10, 1, 3), c, np.float32)}}, first_step=10 * c)
        os._exit(3)
    """)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]) + os.pathsep
           + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, "-W", "error", "-c", script], env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 3, proc.stderr
    ds = open_recording(path)["p"]
    assert ds.sizes["time"] == 30
    np.testing.assert_array_equal(ds.u.values[:, 0, 0], np.repeat([0, 1, 2], 10))
    assert open_recording(path).attrs["complete"] is False


def test_context_manager_marks_failed_runs(tmp_path):
    """Leaving the with-block by an exception closes the store incomplete, naming the exception."""
    path = tmp_path / "ctx.zarr"
    with pytest.raises(FloatingPointError):
        with ZarrRecorder(path, _specs(), dt=DT, batch=BATCH) as rec:
            rec.append(_blocks(np.random.default_rng(1), 100), first_step=0)
            raise FloatingPointError("diverged at step 100")
    attrs = open_recording(path).attrs
    assert attrs["complete"] is False and attrs["status"] == "failed"
    assert "FloatingPointError" in attrs["reason"] and "diverged at step 100" in attrs["reason"]


# ------------------------------------------------------------------------------------------ bad input
def test_bad_blocks_raise_and_write_nothing(tmp_path):
    """Wrong shapes, undeclared variables and out-of-order steps raise RecordingError naming the path,
    and validation happens before any write, so the store is unchanged."""
    path = tmp_path / "bad.zarr"
    rec, _, _ = _write_run(path, n_chunks=1, close=False)
    good = _blocks(np.random.default_rng(2), 100)
    cases = [
        ({**good, ("pyr1", "v"): np.zeros((10, BATCH, 3))}, dict(first_step=100), "shape"),
        ({**good, ("pyr1", "w"): np.zeros((10, BATCH, 3))}, dict(first_step=100), "undeclared"),
        (good, dict(first_step=50), "not after the last recorded step"),
        ({("hidden", "u"): good[("hidden", "u")]}, dict(), "exactly one of"),
    ]
    for blocks, kw, words in cases:
        with pytest.raises(RecordingError, match=words) as info:
            rec.append(blocks, **kw)
        assert str(path) in str(info.value)
    assert rec.n_records == {("hidden", "u"): 100, ("pyr1", "v"): 10}
    rec.close()
    assert open_recording(path)["hidden"].sizes["time"] == 100


def test_invalid_specs_are_rejected():
    """Spec mistakes are caught when declared, not deep inside a run."""
    with pytest.raises(RecordingError, match="neurons"):
        RecordedVariable("p", "u", np.array([0, 0, 1]))
    with pytest.raises(RecordingError, match="stride"):
        RecordedVariable("p", "u", np.arange(3), stride=0)
    with pytest.raises(RecordingError, match="reserved"):
        RecordedVariable("metrics", "u", np.arange(3))
    with pytest.raises(RecordingError, match="compartments"):
        RecordedVariable("p", "v", np.arange(3), compartments="soma")


def test_open_recording_errors_name_the_path(tmp_path):
    """Missing paths and foreign Zarr stores give typed errors naming the path."""
    missing = tmp_path / "nope.zarr"
    with pytest.raises(RecordingNotFoundError, match="nope.zarr") as info:
        open_recording(missing)
    assert isinstance(info.value, FileNotFoundError)
    import zarr

    zarr.create_group(store=str(tmp_path / "foreign.zarr"), zarr_format=3)
    with pytest.raises(RecordingError, match="not a microcircuit recording") as info:
        open_recording(tmp_path / "foreign.zarr")
    assert "foreign.zarr" in str(info.value)
    (tmp_path / "plain").mkdir()
    with pytest.raises(RecordingError, match="not a Zarr v3 store"):
        describe_store(tmp_path / "plain")


# ------------------------------------------------------------------------------------------ memory
def _peak_append_bytes(path, n_chunks, k_steps=500, n_neurons=400, chunk_records="k_steps"):
    """Peak traced bytes while appending n_chunks engine chunks from reused buffers (as the kernel does)."""
    chunk_records = k_steps if chunk_records == "k_steps" else chunk_records
    specs = [
        RecordedVariable("hidden", "u", np.arange(n_neurons), units="mV", dtype=np.float32),
        RecordedVariable("pyr", "v", np.arange(50), ("soma", "basal", "apical"), units="mV",
                         dtype=np.float64, stride=10),
    ]
    rec = ZarrRecorder(path, specs, dt=DT, batch=BATCH, chunk_records=chunk_records)
    rng = np.random.default_rng(0)
    buf_u = np.empty((k_steps, BATCH, n_neurons), np.float32)
    buf_v = np.empty((k_steps // 10, BATCH, 50, 3))
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        for c in range(n_chunks):
            rng.standard_normal(out=buf_u, dtype=np.float32)  # generated in place, like the kernel's buffers
            rng.standard_normal(out=buf_v)
            rec.append({("hidden", "u"): buf_u, ("pyr", "v"): buf_v}, first_step=c * k_steps)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    rec.close()
    return peak, buf_u.nbytes + buf_v.nbytes


@pytest.mark.parametrize("chunk_records", ["k_steps", None], ids=["chunk=engine_chunk", "chunk=auto"])
def test_peak_memory_does_not_grow_with_run_length(tmp_path, chunk_records):
    """Appends stream to disk: a 10x longer run with the same chunk size has the same peak memory,
    and that peak is within ~2x of one chunk's buffers (measured ~1.0-1.1x: zarr encodes chunk by chunk).
    With chunk_records=None the chunks adapt to the first block, so the bound is the same."""
    short, buffer_bytes = _peak_append_bytes(tmp_path / "short.zarr", 3, chunk_records=chunk_records)
    long, _ = _peak_append_bytes(tmp_path / "long.zarr", 30, chunk_records=chunk_records)
    assert open_recording(tmp_path / "long.zarr")["hidden"].sizes["time"] == 30 * 500
    assert short < 2.0 * buffer_bytes, (short, buffer_bytes)
    assert long < 2.0 * buffer_bytes, (long, buffer_bytes)
    # the long run wrote 10x the data (~48 MB); holding it would be 10x the short peak
    assert long < 1.3 * short + 1_000_000, (short, long)


# ------------------------------------------------------------------------------------------ warnings
def test_write_read_and_describe_raise_no_warnings(tmp_path):
    """Zarr v3 + xarray emit no warnings for this layout (object strings, no consolidated metadata),
    so runs and tests work under `python -W error`. Explicit here in addition to the module mark."""
    path = tmp_path / "w.zarr"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rec, _, _ = _write_run(path, n_chunks=2, close=False)
        rec.append_metrics({"loss": 1.0}, epoch=0)
        rec.write_checkpoint({"W": np.ones(3)}, {"step": 200})
        rec.close()
        tree = open_recording(path)
        tree["pyr1"].v.values  # force a read of lazy data
        lazy = open_recording(path, chunks={})  # dask-backed, chunked like the store
        assert lazy["hidden"].u.chunks is not None
        float(lazy["hidden"].u.mean())
        describe_store(path)
        read_checkpoint(path)
        xr.open_datatree(path, engine="zarr", consolidated=False)  # the plain xarray route also works


# ------------------------------------------------------------------------------------------ metrics
def test_metrics_round_trip(tmp_path):
    """Per-epoch metrics append row by row; a metric that starts later reads NaN before it starts."""
    path = tmp_path / "m.zarr"
    rec, _, _ = _write_run(path, n_chunks=1, close=False)
    rec.append_metrics({"train_loss": 0.5}, epoch=0)
    rec.append_metrics({"train_loss": 0.3, "test_accuracy": 0.8}, epoch=1)
    rec.write_metrics({"train_loss": [0.2, 0.1], "test_accuracy": [0.85, 0.9]})  # epochs 2, 3
    with pytest.raises(RecordingError, match="increase"):
        rec.append_metrics({"train_loss": 0.0}, epoch=3)
    rec.close()
    m = open_recording(path)["metrics"]
    np.testing.assert_array_equal(m.epoch.values, [0, 1, 2, 3])
    np.testing.assert_array_equal(m.train_loss.values, [0.5, 0.3, 0.2, 0.1])
    np.testing.assert_array_equal(m.test_accuracy.values, [np.nan, 0.8, 0.85, 0.9])
    assert m.train_loss.dims == ("epoch",)


# ------------------------------------------------------------------------------------------ checkpoint
def test_checkpoint_round_trip_keeps_only_the_latest(tmp_path):
    """read_checkpoint returns the last written arrays and attrs (incl. a 128-bit RNG state),
    and older versions are removed once the pointer moved."""
    path = tmp_path / "c.zarr"
    rec, _, _ = _write_run(path, n_chunks=1, close=False)
    state = np.random.default_rng(3).bit_generator.state
    rec.write_checkpoint({"W": np.ones((3, 4)), "u": np.zeros((BATCH, 30), np.float32)}, {"step": 100})
    rec.write_checkpoint({"W": np.full((3, 4), 2.0), "step": np.int64(200)}, {"step": 200, "rng": state})
    rec.close()
    arrays, attrs = read_checkpoint(path)
    assert set(arrays) == {"W", "step"}
    np.testing.assert_array_equal(arrays["W"], np.full((3, 4), 2.0))
    assert arrays["step"] == 200 and arrays["step"].dtype == np.int64
    assert attrs["step"] == 200 and attrs["rng"] == json.loads(json.dumps(state))
    versions = sorted(p.name for p in (path / "checkpoint").iterdir() if p.is_dir())
    assert versions == ["v1"]


def test_half_written_checkpoint_is_ignored(tmp_path):
    """A crash while writing a new checkpoint leaves the pointer on the previous, complete one."""
    path = tmp_path / "c.zarr"
    rec, _, _ = _write_run(path, n_chunks=1, close=False)
    rec.write_checkpoint({"W": np.ones(4)}, {"step": 100})
    cgrp = rec.root["checkpoint"]
    cgrp.create_group("v1").create_array("W", data=np.zeros(2), dimension_names=("W_dim0",))  # crashed write
    arrays, attrs = read_checkpoint(path)
    np.testing.assert_array_equal(arrays["W"], np.ones(4))
    rec.write_checkpoint({"W": np.full(4, 3.0)}, {"step": 300})  # replaces the leftover cleanly
    arrays, attrs = read_checkpoint(path)
    np.testing.assert_array_equal(arrays["W"], np.full(4, 3.0))
    assert attrs == {"step": 300}


def test_read_checkpoint_without_one_raises(tmp_path):
    path = tmp_path / "n.zarr"
    _write_run(path, n_chunks=1)
    with pytest.raises(RecordingError, match="no checkpoint") as info:
        read_checkpoint(path)
    assert str(path) in str(info.value)


# ------------------------------------------------------------------------------------------ describe
def test_describe_store_mentions_variables_units_and_status(tmp_path):
    """The `microcircuit info` text names every population, variable, its dims, units, dt and status."""
    path = tmp_path / "run.zarr"
    rec, _, _ = _write_run(path, n_chunks=2, close=False)
    rec.append_metrics({"train_loss": 0.1}, epoch=0)
    rec.close(complete=False, reason="diverged: NaN in hidden.u at step 200")
    text = describe_store(path)
    for needle in ["hidden", "pyr1", "u ", "v ", "[mV]", "somatic membrane potential",
                   "time: 200", "neuron: 30", "compartment: 3", "soma, basal, apical",
                   "dt: 0.1", "complete: False", "diverged: NaN in hidden.u at step 200", "train_loss",
                   "seed: 1"]:
        assert needle in text, f"{needle!r} missing from:\n{text}"
    assert "status: diverged" in text


# ------------------------------------------------------------------------------------------ engine-style use
def test_auto_chunks_follow_the_first_block_and_engine_reasons_set_status(tmp_path):
    """chunk_records=None sizes each variable's zarr chunk to its first block (here 250 steps -> 250
    and 25 records), so equal engine chunks are whole zarr chunks; the engine's reason wording
    'interrupted (KeyboardInterrupt) at step ...' gives status 'interrupted'."""
    import zarr

    path = tmp_path / "auto.zarr"
    rec = ZarrRecorder(path, _specs(), dt=DT, batch=BATCH, chunk_records=None,
                       attrs={"dt": DT, "batch": BATCH, "seed": 4})  # engine repeats dt/batch: allowed if equal
    rng = np.random.default_rng(0)
    for c in range(2):
        blocks = _blocks(rng, 250)
        steps = {("hidden", "u"): c * 250 + np.arange(250), ("pyr1", "v"): c * 250 + 10 * np.arange(25)}
        rec.append(blocks, steps=steps)
    rec.close(complete=False, reason="interrupted (KeyboardInterrupt) at step 500, t = 50 ms")
    assert zarr.open_array(str(path / "hidden" / "u"), mode="r").chunks == (250, BATCH, 30)
    assert zarr.open_array(str(path / "pyr1" / "v"), mode="r").chunks == (25, BATCH, 3, 3)
    tree = open_recording(path)
    assert tree.attrs["status"] == "interrupted" and tree.attrs["complete"] is False
    assert tree["pyr1"].sizes["time"] == 50 and tree["hidden"].sizes["time"] == 500


def test_conflicting_reserved_attr_is_refused(tmp_path):
    """attrs may not contradict what the recorder stores itself (dt here), or readers would see a lie."""
    with pytest.raises(RecordingError, match="dt") as info:
        ZarrRecorder(tmp_path / "x.zarr", _specs(), dt=DT, batch=BATCH, attrs={"dt": 0.5})
    assert "x.zarr" in str(info.value)
    assert not (tmp_path / "x.zarr").exists()


def test_recorder_without_variables_holds_metrics_only(tmp_path):
    """A run that records no variables still writes a valid store for metrics and checkpoints."""
    path = tmp_path / "empty.zarr"
    rec = ZarrRecorder(path, [], dt=DT, batch=1)
    rec.append_metrics({"loss": 2.0})
    rec.append_metrics({"loss": 1.0})
    rec.close()
    tree = open_recording(path)
    assert set(tree.children) == {"metrics"}
    np.testing.assert_array_equal(tree["metrics"].loss.values, [2.0, 1.0])
    np.testing.assert_array_equal(tree["metrics"].epoch.values, [0, 1])
    assert "metrics (epoch: 2): loss" in describe_store(path)


def test_store_killed_between_two_resizes_reads_committed_records(tmp_path):
    """A SIGKILL between the resizes of two arrays of one group leaves them with different lengths;
    the reader must return exactly the committed n_records (here 30 steps) of every variable, not fail."""
    import zarr
    import microcircuit as mc
    from microcircuit.recording import open_recording
    from microcircuit.simulation import Simulation, Recording
    from microcircuit.stimuli import Sines

    c = mc.layered([2, 3, 1])
    prog = mc.compile(c, dt=0.1, stimuli=[Sines("input", amplitude=1.0, omega=1.0)])
    out = tmp_path / "r.zarr"
    sim = Simulation(prog, recordings=[Recording("layer1", ["u", "r"])], output=str(out), chunk_steps=10)
    sim.run(steps=30)
    sim.close()
    g = zarr.open_group(str(out), mode="r+")["layer1"]
    u = g["u"]
    u.resize((u.shape[0] + 7, *u.shape[1:]))          # the first array grew, then the process died
    tree = open_recording(out)
    ds = tree["layer1"].to_dataset()
    assert ds.sizes["time"] == 30
    assert ds["u"].shape[0] == ds["r"].shape[0] == 30
