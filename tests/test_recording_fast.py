"""Tests for the fast recording path (issue 7 (v)): the kernel's recording block, the zero-copy
hand-over of recorded blocks, the double buffer of the Zarr writer, concurrent writes that grow
arrays ahead, and the ``codec`` option.

The oracle for recorded values is the engine state itself: a run advanced one step at a time,
reading ``prog.state[code * N * B + (offset + neuron) * B + b]`` after every step, gives the value
that the recording of that step must hold, bit for bit.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

import microcircuit as mc
from microcircuit.microcircuit import dendritic_microcircuit
from microcircuit.models import get_model
from microcircuit.recording import CODECS, RecordedVariable, RecordingError, ZarrRecorder, open_recording
from microcircuit.simulation import Recording, Simulation
from microcircuit.stimuli import OrnsteinUhlenbeck

pytestmark = pytest.mark.filterwarnings("error")


def _prog(batch=1):
    c = dendritic_microcircuit((4, 6, 2), preset="bern", latent_equilibrium=True,
                               eta={"up": [0.5, 0.05], "ip": 0.1, "pi": 0.1}, seed=0)
    stim = [OrnsteinUhlenbeck("input", sigma=0.5, tau=5.0, seed=1, mean=0.5),
            OrnsteinUhlenbeck("output", kind="target", sigma=0.3, tau=5.0, seed=2, mean=0.5)]
    return mc.compile(c, dt=0.1, batch=batch, stimuli=stim, seed=0)


# (population, variable, neurons, stride): contiguous (all, a range), gathered (unordered list,
# stepped range), compartments (3 codes per neuron), strides that do not divide the chunk length.
# Two groups, each recorded by one Simulation: within a population a group uses one neuron selection
# (the in-memory recorder aligns variables of one population on a shared neuron coordinate).
GROUPS = [
    [("pyr1", "u", "all", 1), ("pyr1", "v", "all", 1), ("input", "r", {"start": 0, "stop": 4, "step": 2}, 7),
     ("output", "v", [1], 2), ("inter1", "r", [1, 0], 5)],
    [("pyr1", "r", {"start": 1, "stop": 5}, 1), ("pyr1", "v_A", {"start": 1, "stop": 5}, 3),
     ("output", "u", "all", 1), ("inter1", "u", "all", 4)],
]
CASES = [c for g in GROUPS for c in g]


def _expected(batch, n_steps):
    """Values of every case after every step, read from prog.state of a one-step-at-a-time run."""
    prog = _prog(batch)
    sim = Simulation(prog)
    N, B = prog.n_total, prog.batch
    out = {(p, v): [] for p, v, _, _ in CASES}
    for _ in range(n_steps):
        sim.run(steps=1)
        for pop, var, neurons, _ in CASES:
            i = prog.pop_index[pop]
            off, n = int(prog.pop_int[i, 0]), int(prog.pop_int[i, 1])
            idx = np.arange(n) if neurons == "all" else (
                np.arange(n)[slice(neurons.get("start"), neurons.get("stop"), neurons.get("step"))]
                if isinstance(neurons, dict) else np.asarray(neurons))
            code = get_model(prog.pop_models[i]).variables[var].code
            codes = code if isinstance(code, tuple) else (code,)
            rec = np.stack([prog.state[c * N * B + ((off + idx)[:, None] * B + np.arange(B))].T for c in codes], -1)
            out[(pop, var)].append(rec if isinstance(code, tuple) else rec[..., 0])
    return {k: np.asarray(v) for k, v in out.items()}, sim


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("output", ["memory", "zarr"])
def test_recorded_values_equal_the_engine_state_bit_for_bit(tmp_path, batch, output):
    """Chunks of 11 steps over two run() calls (60 + 47 steps): record j of a stride-s variable is
    taken at the end of step k = j*s (steps count from 0) and must equal the state after that step,
    compared on the bits (no tolerance: a recording is a copy)."""
    n_steps = 107
    ref, _ = _expected(batch, n_steps)
    for g, cases in enumerate(GROUPS):
        _check_group(tmp_path / f"r{g}.zarr", batch, output, cases, ref, n_steps)


def _check_group(path, batch, output, cases, ref, n_steps):
    recs = [Recording(p, [v], neurons=nrn, stride=s) for p, v, nrn, s in cases]
    sim = Simulation(_prog(batch), recordings=recs, chunk_steps=11,
                     output=None if output == "memory" else str(path))
    sim.run(steps=60)
    sim.run(steps=47)
    sim.close()
    tree = sim.results()
    for pop, var, _, s in cases:
        got = tree[pop][var].values
        want = ref[(pop, var)][::s]          # steps 0, s, 2s, ... < n_steps
        assert got.shape == want.shape, (pop, var)
        assert np.array_equal(got.view(np.uint64), want.view(np.uint64)), (pop, var)
        tdim = tree[pop][var].dims[0]
        # time labels: step * dt rounded to dt's one decimal (exact decimals, so sel(time=0.3) works)
        np.testing.assert_array_equal(tree[pop][tdim].values, np.round(np.arange(0, n_steps, s) * 0.1, 1))


@pytest.mark.parametrize("prefault", [False, True])
def test_memory_blocks_do_not_alias_between_chunks(monkeypatch, prefault):
    """The memory recorder keeps views of a fresh buffer per chunk (allocated in place, or prepared
    by the helper thread for large buffers: forced here by a threshold of 0): a later chunk must not
    overwrite an earlier one (then the 3 chunks of 20 steps would repeat the last chunk's values)."""
    import microcircuit.simulation as simulation

    if prefault:
        monkeypatch.setattr(simulation, "_PREFAULT_MIN", 0)
    ref, _ = _expected(1, 60)
    sim = Simulation(_prog(), recordings=[Recording("pyr1", ["u"])], chunk_steps=20)
    sim.run(steps=60)
    blocks = sim.recorder.blocks[("pyr1", "u")]
    assert len(blocks) == 3
    assert not any(np.shares_memory(a, b) for i, a in enumerate(blocks) for b in blocks[i + 1:])
    np.testing.assert_array_equal(np.concatenate(blocks), ref[("pyr1", "u")])
    assert (sim._helper is not None) == prefault
    sim.close()
    assert sim._helper is None


def test_slow_zarr_writer_never_sees_the_next_chunk(tmp_path, monkeypatch):
    """The Zarr writer reads a block (a view of one of two alternating buffers) while the kernel
    fills the other. With a writer that sleeps 30 ms before writing, a shared buffer would be
    overwritten by the next chunk before it is written; the store must still equal the state."""
    ref, _ = _expected(1, 50)
    orig = ZarrRecorder.append

    def slow_append(self, *args, **kwargs):
        time.sleep(0.03)
        return orig(self, *args, **kwargs)

    monkeypatch.setattr(ZarrRecorder, "append", slow_append)
    sim = Simulation(_prog(), recordings=[Recording("pyr1", ["u", "v"])], chunk_steps=5,
                     output=str(tmp_path / "r.zarr"))
    sim.run(steps=50)
    sim.close()
    tree = open_recording(tmp_path / "r.zarr")
    np.testing.assert_array_equal(tree["pyr1"]["u"].values, ref[("pyr1", "u")])


def _spec(dtype=np.float64):
    return [RecordedVariable("hidden", "u", np.arange(5), dtype=dtype)]


@pytest.mark.parametrize("codec", CODECS)
def test_codec_option_is_stored_and_round_trips_exactly(tmp_path, codec):
    """Each codec is written into the array metadata (zarr v3 codecs: bytes, then zstd / blosc
    lz4+shuffle / nothing, then the crc32c checksum) and the values read back are the written ones,
    bit for bit."""
    import zarr

    rng = np.random.default_rng(0)
    data = rng.standard_normal((40, 1, 5))
    rec = ZarrRecorder(tmp_path / "r.zarr", _spec(), dt=0.1, chunk_records=10, codec=codec)
    rec.append({("hidden", "u"): data[:25]}, first_step=0)
    rec.append({("hidden", "u"): data[25:]}, first_step=25)
    rec.close()
    names = [type(c).__name__ for c in zarr.open_array(str(tmp_path / "r.zarr" / "hidden" / "u"), mode="r").metadata.codecs]
    assert names == {"zstd": ["BytesCodec", "ZstdCodec", "Crc32cCodec"],
                     "lz4": ["BytesCodec", "BloscCodec", "Crc32cCodec"],
                     "none": ["BytesCodec", "Crc32cCodec"]}[codec]
    np.testing.assert_array_equal(open_recording(tmp_path / "r.zarr")["hidden"]["u"].values, data)


def test_unknown_codec_is_refused_with_the_choices(tmp_path):
    with pytest.raises(RecordingError, match=r"codec 'snappy' is not one of \['zstd', 'lz4', 'none'\]"):
        ZarrRecorder(tmp_path / "r.zarr", _spec(), dt=0.1, codec="snappy")
    assert not (tmp_path / "r.zarr").exists()


def test_simulation_passes_the_codec_and_float32_is_the_rounded_float64(tmp_path):
    """Simulation(codec=...) reaches the store; a float32 recording holds float32(x) of the
    float64 value x of the same run (round to nearest), i.e. it differs by at most half an ulp."""
    import zarr

    sim64 = Simulation(_prog(), recordings=[Recording("pyr1", ["u"])], output=str(tmp_path / "a.zarr"),
                       codec="none", chunk_steps=16)
    sim64.run(steps=40).close()
    sim32 = Simulation(_prog(), recordings=[Recording("pyr1", ["u"], dtype="float32")],
                       output=str(tmp_path / "b.zarr"), codec="lz4", chunk_steps=16)
    sim32.run(steps=40).close()
    assert [type(c).__name__ for c in zarr.open_array(str(tmp_path / "a.zarr" / "pyr1" / "u")).metadata.codecs] == [
        "BytesCodec", "Crc32cCodec"]
    u64 = open_recording(tmp_path / "a.zarr")["pyr1"]["u"].values
    u32 = open_recording(tmp_path / "b.zarr")["pyr1"]["u"].values
    assert u64.dtype == np.float64 and u32.dtype == np.float32
    np.testing.assert_array_equal(u32, u64.astype(np.float32))


def test_arrays_grow_ahead_and_close_trims_them_to_the_records(tmp_path):
    """Appends grow an array by room for 16 blocks (metadata written once per 16 appends); readers
    see only committed records, and close() cuts every array back to them (3 blocks of 10 -> 30)."""
    import zarr

    rec = ZarrRecorder(tmp_path / "r.zarr", _spec(), dt=0.1, chunk_records=10)
    data = np.arange(30.0).reshape(30, 1, 1) + np.zeros((30, 1, 5))
    for i in range(3):
        rec.append({("hidden", "u"): data[10 * i:10 * (i + 1)]}, first_step=10 * i)
    arr = zarr.open_array(str(tmp_path / "r.zarr" / "hidden" / "u"), mode="r")
    assert arr.shape[0] == 16 * 10             # grown once, at the first append: room for 16 blocks of 10
    assert open_recording(tmp_path / "r.zarr")["hidden"].sizes["time"] == 30
    rec.close()
    for name in ("u", "time"):
        assert zarr.open_array(str(tmp_path / "r.zarr" / "hidden" / name), mode="r").shape[0] == 30
    np.testing.assert_array_equal(open_recording(tmp_path / "r.zarr")["hidden"]["u"].values, data)


def test_scenario_output_codec_reaches_the_store(tmp_path):
    """[output] codec = "none" in a scenario: the recorded arrays carry only the bytes codec;
    a misspelt codec is refused naming the field and the choices."""
    import zarr
    from microcircuit import load_scenario
    from microcircuit.errors import ScenarioError
    root = Path(__file__).resolve().parents[1]
    sc = load_scenario(root / "scenarios" / "le_chain.toml", overrides=["output.codec=none",
                                                                         "simulation.duration=5.0"])
    out = tmp_path / "c.zarr"
    sim = sc.build(output=str(out), overwrite=True)
    sim.run(5.0)
    sim.close()
    g = zarr.open_group(str(out), mode="r")
    coords = ("time", "neuron", "batch", "compartment", "cell_type", "layer")    # labels keep zstd
    arrays = [a for _, grp in g.groups() for name, a in grp.arrays() if name not in coords]
    assert arrays and all([type(c).__name__ for c in a.metadata.codecs] == ["BytesCodec", "Crc32cCodec"]
                          for a in arrays)
    with pytest.raises(ScenarioError, match="output.codec"):
        load_scenario(root / "scenarios" / "le_chain.toml", overrides=["output.codec=snappy"])


def test_runs_rejoin_the_chunk_grid_so_later_blocks_are_whole_zarr_chunks(tmp_path):
    """After a short run (20 steps), the next chunk is shortened to end on the grid of chunk_steps, so
    that every later block is one whole Zarr chunk (written by the recorder directly, never read back):
    chunk lengths 20 | 80, 100, 100, 20 for chunk_steps = 100; the store equals a one-piece run."""
    out = tmp_path / "grid.zarr"
    sim = Simulation(_prog(), recordings=[Recording("pyr1", ["u"])], chunk_steps=100, output=str(out))
    lengths = []
    chunk = sim._chunk
    sim._chunk = lambda k0, K: (lengths.append(K), chunk(k0, K))
    sim.run(steps=20)
    sim.run(steps=300)
    sim.close()
    assert lengths == [20, 80, 100, 100, 20]
    ref = Simulation(_prog(), recordings=[Recording("pyr1", ["u"])], chunk_steps=320)
    ref.run(steps=320)
    got = open_recording(out)["pyr1"].to_dataset().u.values
    np.testing.assert_array_equal(got, ref.results()["pyr1"].to_dataset().u.values)
    chunks = sorted(p.relative_to(out / "pyr1" / "u" / "c").parts[0] for p in (out / "pyr1" / "u" / "c").rglob("*")
                    if p.is_file())
    assert chunks == ["0", "1", "2", "3"]       # steps 0-99, 100-199, 200-299, 300-319
