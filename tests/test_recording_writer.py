"""The recorder's fast chunk writer against zarr's public API (``[output] writer``).

The fast writer encodes whole chunks itself and writes them at zarr's chunk keys; ``writer = "zarr"``
goes through ``Array.resize`` / ``array[a:b] = block`` only. The same run recorded both ways must give
the same chunk files byte for byte (every array, every chunk, a partial last chunk included) and the
same data when opened; the public path must never call the fast writer."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import microcircuit as mc
from microcircuit import recording
from microcircuit.recording import open_recording
from microcircuit.simulation import Simulation, Recording
from microcircuit.stimuli import OrnsteinUhlenbeck


def _sim(out, writer, codec):
    c = mc.layered([3, 5, 2], hidden={"tau_m": 2.0, "activation": "tanh"},
                   output={"tau_m": 2.0, "loss": "rate", "beta": 0.1}, eta=0.1)
    stim = [OrnsteinUhlenbeck("input", sigma=1.0, tau=1.0, seed=1), OrnsteinUhlenbeck("output", kind="target", seed=2)]
    prog = mc.compile(c, dt=0.1, batch=2, stimuli=stim, seed=4)
    recs = [Recording("layer1", ["u", "r"]), Recording("output", ["u"], stride=3)]
    return Simulation(prog, recordings=recs, output=str(out), chunk_steps=40, codec=codec, writer=writer)


def _chunk_files(store: Path) -> dict:
    return {str(f.relative_to(store)): f.read_bytes() for f in sorted(store.rglob("*"))
            if f.is_file() and "/c/" in str(f.relative_to(store)).replace("\\", "/") + "/"
            and f.name != "zarr.json"}


@pytest.mark.parametrize("codec", ["zstd", "none"])
def test_fast_writer_writes_what_zarr_writes(tmp_path, monkeypatch, codec):
    """130 steps in chunks of 40 (three whole chunks and a partial one, a stride-3 variable): the same
    chunk files (names and bytes) and the same data from either writer. Expected: identical."""
    _sim(tmp_path / "fast.zarr", "fast", codec).run(steps=130).close()

    def refuse(*a, **k):
        raise AssertionError("writer = 'zarr' must not use the fast chunk writer")
    monkeypatch.setattr(recording, "_resize_and_write", refuse)
    _sim(tmp_path / "zarr.zarr", "zarr", codec).run(steps=130).close()
    fast, pub = _chunk_files(tmp_path / "fast.zarr"), _chunk_files(tmp_path / "zarr.zarr")
    assert len(fast) >= 10 and fast.keys() == pub.keys()
    for k in fast:
        assert fast[k] == pub[k], k
    a, b = open_recording(tmp_path / "fast.zarr"), open_recording(tmp_path / "zarr.zarr")
    for grp in ("layer1", "output"):
        for var in a[grp].data_vars:
            np.testing.assert_array_equal(a[grp][var].values, b[grp][var].values)
    assert a["layer1"]["u"].shape[0] == 130


def test_unknown_writer_is_refused(tmp_path):
    with pytest.raises(recording.RecordingError, match="writer must be one of"):
        _sim(tmp_path / "x.zarr", "turbo", "zstd")
