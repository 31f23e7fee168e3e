"""Memory and Zarr recorders follow one contract (``recording.Recorder``) and are interchangeable:
the same run recorded either way gives the same labelled data and the same position."""
from __future__ import annotations

import numpy as np

import microcircuit as mc
from microcircuit.recording import Recorder, ZarrRecorder
from microcircuit.simulation import MemoryRecorder, Simulation, Recording
from microcircuit.stimuli import OrnsteinUhlenbeck


def _sim(out=None):
    c = mc.layered([3, 4, 2], hidden={"tau_m": 2.0}, output={"tau_m": 2.0, "loss": "rate"}, eta=0.1)
    stim = [OrnsteinUhlenbeck("input", sigma=1.0, tau=1.0, seed=1), OrnsteinUhlenbeck("output", kind="target", seed=2)]
    prog = mc.compile(c, dt=0.1, batch=2, stimuli=stim, seed=3)
    recs = [Recording("layer1", ["u", "r"]), Recording("output", ["u"], stride=4)]
    return Simulation(prog, recordings=recs, output=out, chunk_steps=25)


def test_both_recorders_follow_the_contract_and_agree(tmp_path):
    """90 steps in chunks of 25: same dims, values, time coordinates and positions (90 records of
    layer1, 23 of output at stride 4: steps 0, 4, ..., 88), whichever recorder holds them."""
    mem, zs = _sim(), _sim(str(tmp_path / "r.zarr"))
    assert isinstance(mem.recorder, MemoryRecorder) and isinstance(zs.recorder, ZarrRecorder)
    for sim in (mem, zs):
        assert isinstance(sim.recorder, Recorder)
        sim.run(steps=90)
    # each population group names its first time step "time" (output records every 4th step)
    pos = {"n_records": {"layer1/time": 90, "output/time": 23}, "last_step": {"layer1/time": 89, "output/time": 88}}
    assert mem.recorder.position() == pos
    assert zs.recorder.position() == pos
    a, b = mem.results(), zs.close().results()
    for grp, var in (("layer1", "u"), ("layer1", "r"), ("output", "u")):
        assert a[grp][var].dims == b[grp][var].dims
        np.testing.assert_array_equal(a[grp][var].values, b[grp][var].values)
        np.testing.assert_array_equal(a[grp][var].coords[a[grp][var].dims[0]].values,
                                      b[grp][var].coords[b[grp][var].dims[0]].values)
