"""Stimuli as time-indexed arrays: closed forms of each waveform and file loading."""
import numpy as np
import pytest
import zarr

from microcircuit.stimuli import (Step, Ramp, Sines, OrnsteinUhlenbeck, ArrayStimulus, load_array,
                                  StimulusError)


def test_step_ramp_sines_closed_forms():
    dt = 0.5
    s = Step("x", amplitude=2.0, start=1.0, stop=3.0, baseline=0.5).values(0, 10, dt, 1, 1)[:, 0, 0]
    # t = 0, .5, 1, ..., 4.5: on for 1 <= t < 3
    np.testing.assert_array_equal(s, [0.5, 0.5, 2.5, 2.5, 2.5, 2.5, 0.5, 0.5, 0.5, 0.5])
    r = Ramp("x", start=1.0, stop=2.0, start_value=0.0, stop_value=4.0).values(0, 6, dt, 1, 1)[:, 0, 0]
    np.testing.assert_allclose(r, [0, 0, 0, 2, 4, 4])
    t = np.arange(100) * 0.1
    y = Sines("x", omega=[1.0, 3.0], amplitude=[1.0, 0.5]).values(0, 100, 0.1, 1, 1)[:, 0, 0]
    np.testing.assert_allclose(y, np.sin(t) + 0.5 * np.sin(3 * t), atol=1e-12)
    hz = Sines("x", frequency_hz=10.0).values(0, 100, 1.0, 1, 1)[:, 0, 0]   # 10 Hz, t in ms: period 100 ms
    np.testing.assert_allclose(hz, np.sin(2 * np.pi * np.arange(100) / 100), atol=1e-12)


def test_ou_statistics_and_chunk_independence():
    """Exact OU discretisation: stationary std = sigma, lag-1 correlation = exp(-dt/tau) (within 3 %);
    values for steps k0..k1 do not depend on how the run is chunked."""
    ou = OrnsteinUhlenbeck("x", mean=1.0, sigma=0.5, tau=2.0, seed=3)
    x = ou.values(0, 200_000, 0.1, 1, 1)[:, 0, 0]
    assert x[20_000:].std() == pytest.approx(0.5, rel=0.03)
    assert x.mean() == pytest.approx(1.0, abs=0.03)
    c = np.corrcoef(x[:-1], x[1:])[0, 1]
    assert c == pytest.approx(np.exp(-0.1 / 2.0), abs=0.01)
    ou2 = OrnsteinUhlenbeck("x", mean=1.0, sigma=0.5, tau=2.0, seed=3)
    parts = np.concatenate([ou2.values(a, b, 0.1, 1, 1)[:, 0, 0] for a, b in ((0, 5000), (5000, 9000), (9000, 10000))])
    np.testing.assert_array_equal(parts, x[:10000])


def test_ou_resumes_at_step_ten_million():
    """A resumed run asks the OU stimulus for steps after 10^7 in a fresh object (nothing cached):
    block 2441 of 4096 steps must come from the same chain of blocks as an uninterrupted run, bit for
    bit. Before, the block start values were found by recursion one level per block, which raised
    RecursionError past ~4 million steps."""
    k = 10_000_000
    resumed = OrnsteinUhlenbeck("x", mean=0.2, sigma=0.5, tau=2.0, seed=7).values(k, k + 100, 0.1, 2, 1)
    walked = OrnsteinUhlenbeck("x", mean=0.2, sigma=0.5, tau=2.0, seed=7)
    for a in range(0, k, 1_000_000):       # the uninterrupted run, chunk by chunk
        walked.values(a, a + 1_000_000, 0.1, 2, 1)
    np.testing.assert_array_equal(resumed, walked.values(k, k + 100, 0.1, 2, 1))
    assert resumed.shape == (100, 2, 1) and np.isfinite(resumed).all()


def test_array_stimulus_files(tmp_path):
    arr = np.arange(12.0).reshape(4, 3)
    np.save(tmp_path / "a.npy", arr)
    np.savez(tmp_path / "b.npz", inputs=arr, other=arr * 2)
    z = zarr.open_group(str(tmp_path / "c.zarr"), mode="w")
    z.create_array("inputs", data=arr)
    for path, key in ((tmp_path / "a.npy", None), (tmp_path / "b.npz", "inputs"), (tmp_path / "c.zarr", "inputs")):
        np.testing.assert_array_equal(load_array(path, key), arr)
    with pytest.raises(StimulusError, match="holds"):
        load_array(tmp_path / "b.npz")          # two arrays: which one?
    with pytest.raises(StimulusError, match="does not exist"):
        load_array(tmp_path / "missing.npy")
    st = ArrayStimulus("x", arr, hold_steps=2)
    v = st.values(0, 10, 0.1, 3, 1)[:, :, 0]
    np.testing.assert_array_equal(v[:, 0], [0, 0, 3, 3, 6, 6, 9, 9, 9, 9])   # held, then last row
    with pytest.raises(StimulusError, match="population 'x' has 5 neurons"):
        st.values(0, 2, 0.1, 5, 1)


def test_second_rate_stimulus_on_one_input_population_is_refused(tmp_path):
    """Rates of an input population are set, not summed, so a second rate stimulus on the same
    population would silently replace the first: compile and scenario validation refuse it by name."""
    import pytest
    import microcircuit as mc
    from microcircuit.errors import CircuitError, ScenarioError
    from microcircuit.scenario import load_scenario
    from microcircuit.stimuli import Step
    with pytest.raises(CircuitError, match="already has its rate set"):
        mc.compile(mc.layered([2, 3, 1]), dt=0.1, stimuli=[Step("input", amplitude=1.0, name="a"),
                                                            Step("input", amplitude=2.0, name="b")])
    p = tmp_path / "two.toml"
    p.write_text('[simulation]\ndt = 0.1\nduration = 1.0\n[[populations]]\nname = "x"\nmodel = "input"\nsize = 1\n'
                 '[[populations]]\nname = "y"\nmodel = "rate"\nsize = 1\n[[projections]]\npre = "x"\npost = "y"\n'
                 '[[stimuli]]\ntarget = "x"\nwaveform = "step"\namplitude = 1.0\n'
                 '[[stimuli]]\ntarget = "x"\nwaveform = "step"\namplitude = 2.0\n')
    with pytest.raises(ScenarioError, match=r"stimuli\[1\]\.target"):
        load_scenario(p)
