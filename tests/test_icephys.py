"""Current-clamp sweeps from files (load_icephys), eFEL settings and checks, fit warnings, units,
and interchange (Neo, Elephant, NWB export read back by Neo and checked by nwbinspector).

The synthetic cell is a leaky integrate-and-fire membrane integrated exactly between samples:
τ_m = 20 ms, R_in = 150 MΩ, V_rest = −65 mV, threshold −45 mV, a 1 ms spike to +30 mV, reset −70 mV.
16 sweeps of 1 s at 10 kHz, steps −200 … +550 pA (50 pA apart) from 200 to 700 ms.  The NWB
files store sweeps at absolute times (100 s + 5 s · k) and the voltage with NWB's ``offset``
attribute of −15 mV (raw numbers 15 mV above the true potential), so a reader that ignores
either gets them wrong.
"""

import subprocess
import sys
import warnings
from datetime import datetime, timezone

import numpy as np
import pytest
import xarray as xr

from microcircuit import ephys
from microcircuit.ephys import (BaselineAboveThresholdWarning, EphysFileError, EphysUnitsError, FitWarning,
                                StimulusWindowError)

pynwb = pytest.importorskip("pynwb")
efel = pytest.importorskip("efel")

DT, T_SWEEP, ON, OFF = 0.1, 1000.0, 200.0, 700.0  # ms
TAU, R_IN, V_REST = 20.0, 150.0, -65.0  # ms, MΩ, mV
AMPS = np.arange(-200.0, 551.0, 50.0)  # pA, 16 sweeps
NWB_OFFSET_MV = -15.0


def lif_sweeps(amps=AMPS, noise=0.05, seed=1):
    """(t ms, V mV (sweep, time), I pA (sweep, time)) of the LIF cell; exact exponential steps."""
    t = np.arange(0.0, T_SWEEP, DT)
    decay = np.exp(-DT / TAU)
    rng = np.random.default_rng(seed)
    V = np.empty((len(amps), t.size))
    I = np.zeros((len(amps), t.size))
    for k, a in enumerate(amps):
        I[k, (t >= ON - 1e-9) & (t < OFF - 1e-9)] = a
        v, hold = V_REST, 0
        for n in range(t.size):
            if hold > 0:  # spike (10 samples at +30 mV), then reset
                hold -= 1
                v = 30.0 if hold > 0 else -70.0
            else:
                v_inf = V_REST + R_IN * I[k, n] * 1e-3  # MΩ · nA = mV
                v = v_inf + (v - v_inf) * decay
                if v >= -45.0:
                    v, hold = 30.0, 11
            V[k, n] = v
    return t, V + rng.normal(0, noise, V.shape), I


def write_icephys_nwb(path, V, I, table=True, v_shift=0.0, names=("ic__", "ics__")):
    """NWB file of the sweeps via pynwb's icephys API: CurrentClampSeries (volts; conversion 1e-3,
    offset −0.015 V) + CurrentClampStimulusSeries (amperes; conversion 1e-12), absolute sweep
    start times, paired in the intracellular_recordings table (``table=True``) or only by name.
    ``v_shift`` (mV) is added to the true potential (an uncorrected amplifier offset)."""
    nwb = pynwb.NWBFile(session_description="synthetic LIF cell", identifier="lif-16",
                        session_start_time=datetime(2024, 1, 1, tzinfo=timezone.utc))
    dev = nwb.create_device(name="amplifier")
    elec = nwb.create_icephys_electrode(name="elec0", description="synthetic", device=dev)
    for k in range(V.shape[0]):
        start = 100.0 + 5.0 * k  # s
        resp = pynwb.icephys.CurrentClampSeries(
            name=f"{names[0]}{k:03d}", data=V[k] + v_shift - NWB_OFFSET_MV, conversion=1e-3, offset=NWB_OFFSET_MV * 1e-3,
            starting_time=start, rate=1e3 / DT, electrode=elec, gain=1.0,
            sweep_number=np.uint32(k) if table else None)
        stim = pynwb.icephys.CurrentClampStimulusSeries(
            name=f"{names[1]}{k:03d}", data=I[k], conversion=1e-12, starting_time=start, rate=1e3 / DT,
            electrode=elec, gain=1.0, sweep_number=np.uint32(k) if table else None)
        if table:
            nwb.add_intracellular_recording(electrode=elec, stimulus=stim, response=resp)
        else:
            nwb.add_acquisition(resp)
            nwb.add_stimulus(stim)
    with pynwb.NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)
    return path


def true_spike_counts(t, V, threshold=-20.0):
    """Upward crossings of ``threshold`` in [ON, OFF) per sweep: the generator's own spikes."""
    up = (V[:, :-1] < threshold) & (V[:, 1:] >= threshold)
    tt = t[1:]
    return np.sum(up & (tt >= ON) & (tt < OFF), axis=1)


def efel_direct(t, V, amps, start, end, features, settings=None):
    """eFEL called by hand, one trace at a time, from its defaults plus ``settings`` and the step
    amplitude as ``stimulus_current`` (nA): the reference our wrapper must reproduce."""
    out = {f: [] for f in features}
    for v, a in zip(V, amps):
        efel.reset()
        for k, val in (settings or {}).items():
            efel.set_setting(k, val)
        if a:
            efel.set_setting("stimulus_current", float(a) * 1e-3)
        res = efel.get_feature_values([{"T": t, "V": v, "stim_start": [start], "stim_end": [end]}], features,
                                      raise_warnings=False)[0]
        for f in features:
            out[f].append(float(res[f][0]) if res[f] is not None and len(res[f]) else np.nan)
    efel.reset()
    return {f: np.array(v) for f, v in out.items()}


@pytest.fixture(scope="module")
def cell():
    return lif_sweeps()


@pytest.fixture(scope="module")
def nwb_files(cell, tmp_path_factory):
    t, V, I = cell
    d = tmp_path_factory.mktemp("icephys")
    return {"table": write_icephys_nwb(d / "table.nwb", V, I),
            "names": write_icephys_nwb(d / "names.nwb", V, I, table=False),
            "shifted": write_icephys_nwb(d / "shifted.nwb", V, I, v_shift=60.0)}


# ----------------------------------------------------------------------------------- loading


def test_nwb_icephys_table_gives_16_aligned_labelled_sweeps(cell, nwb_files):
    # 16 sweeps at absolute times 100 … 175 s: each must start at time 0 (no NaN, no 75 s axis);
    # the step window 200–700 ms and amplitudes −200 … 550 pA detected from the stimulus series;
    # the NWB offset attribute (−15 mV) applied, so voltages equal the generator's to float precision.
    t, V, I = cell
    ds = ephys.load_icephys(nwb_files["table"])
    assert ds.attrs["pairing"] == "intracellular_recordings table"
    assert ds.sizes == {"sweep": 16, "time": 10000}
    assert ds["time"].values[0] == 0.0 and ds["time"].values[-1] == pytest.approx(999.9)
    assert not np.isnan(ds["voltage"].values).any()
    assert (ds.attrs["stim_start"], ds.attrs["stim_end"]) == (pytest.approx(ON), pytest.approx(OFF))
    np.testing.assert_allclose(ds["amplitude"].values, AMPS, atol=1e-6)
    np.testing.assert_allclose(ds["voltage"].values, V, atol=1e-9)
    np.testing.assert_allclose(ds["current"].values, I, atol=1e-9)
    assert ds["time_from_onset"].sel(time=ON, method="nearest").item() == pytest.approx(0.0, abs=1e-9)
    np.testing.assert_array_equal(ds["sweep"].values, np.arange(16))
    np.testing.assert_allclose(ds["sweep_start_time"].values, 100.0 + 5.0 * np.arange(16))  # kept, in s
    assert ds["voltage"].attrs["units"] == "mV" and ds["current"].attrs["units"] == "pA"


def test_nwb_without_table_pairs_series_by_name(nwb_files):
    # Same sweeps stored as acquisition ic__NNN + stimulus ics__NNN with no sweep_number and no
    # table: pairing by the trailing number must give the identical Dataset values.
    a = ephys.load_icephys(nwb_files["table"])
    b = ephys.load_icephys(nwb_files["names"])
    assert b.attrs["pairing"].startswith("acquisition/stimulus")
    np.testing.assert_array_equal(b["voltage"].values, a["voltage"].values)
    np.testing.assert_array_equal(b["amplitude"].values, a["amplitude"].values)


def test_onsets_that_differ_between_sweeps_are_aligned(cell, tmp_path):
    # Sweep 1's step starts 30 ms later than sweep 0's: sweeps are cropped so both onsets sit at
    # the common stim_start (200 ms, the earlier onset), and the window keeps its 500 ms length.
    t, V, I = cell
    V2, I2 = V[[0, 10]].copy(), I[[0, 10]].copy()
    V2[1], I2[1] = np.roll(V2[1], 300), np.roll(I2[1], 300)
    ds = ephys.load_icephys(write_icephys_nwb(tmp_path / "late.nwb", V2, I2))
    assert ds.attrs["stim_start"] == pytest.approx(200.0) and ds.attrs["stim_end"] == pytest.approx(700.0)
    assert ds.sizes["time"] == 10000 - 300
    np.testing.assert_allclose(ds["current"].values[1, :2000], 0.0)
    np.testing.assert_allclose(ds["current"].values[1, 2000:7000], AMPS[10])


def test_offset_argument_subtracts_a_junction_potential(nwb_files):
    # offset=60 removes the +60 mV the 'shifted' file carries: voltages equal the true file's.
    a = ephys.load_icephys(nwb_files["table"])
    b = ephys.load_icephys(nwb_files["shifted"], offset=60.0)
    np.testing.assert_allclose(b["voltage"].values, a["voltage"].values, atol=1e-9)
    assert b.attrs["offset_mV"] == 60.0


def test_igor_waves_load_like_the_bundled_cell():
    # The shipped B6 sweep-181 waves (voltage Ch3, current Ch0, 14 mV LJP) give the bundled
    # cell's sweep: voltage to 1e-4 mV, amplitude 117.8 pA to 0.5 pA, window 700–2700 ms to one
    # sample (0.25 ms).
    ref = ephys.load_bundled_cell("B6").sel(sweep=[181])
    ds = ephys.load_icephys(ephys.DATA_DIR / "B6_Ch3_IDRest_181.ibw", current=ephys.DATA_DIR / "B6_Ch0_IDRest_181.ibw",
                            offset=14.0)
    assert ds.attrs["stim_start"] == pytest.approx(700.0, abs=0.25)
    assert ds.attrs["stim_end"] == pytest.approx(2700.0, abs=0.25)
    assert ds["amplitude"].item() == pytest.approx(ref["amplitude"].item(), abs=0.5)
    np.testing.assert_allclose(ds["voltage"].values, ref["voltage"].values, atol=1e-4)


def test_abf_needs_a_window_when_the_command_is_flat(cell, tmp_path):
    # pyabf's ABF1 writer stores no command waveform: no step can be detected, so the loader must
    # say so and take the window from stim_start/stim_end; then eFEL counts the generator's
    # spikes (ABF int16 coding changes voltages by < 0.1 mV).
    abfwriter = pytest.importorskip("pyabf.abfWriter")
    t, V, I = cell
    path = tmp_path / "cell.abf"
    abfwriter.writeABF1(V, str(path), 1e3 / DT * 1.0, units="mV")
    with pytest.raises(EphysFileError, match="cell.abf: no current step found.*stim_start="):
        ephys.load_icephys(path)
    with pytest.raises(StimulusWindowError, match="cell.abf: step window .* does not fit"):
        ephys.load_icephys(path, stim_start=0.2, stim_end=1200.0)  # no baseline, past the 1 s sweep
    ds = ephys.load_icephys(path, stim_start=ON, stim_end=OFF)
    assert ds.sizes == {"sweep": 16, "time": 10000}
    np.testing.assert_allclose(ds["voltage"].values, V, atol=0.1)
    counts = ephys.extract_features(ds, features=["Spikecount_stimint"])["Spikecount_stimint"].values
    np.testing.assert_array_equal(counts, true_spike_counts(t, V))


def test_neo_readable_formats_load_through_neo(nwb_files, tmp_path):
    # Neo as the reading layer for other formats: the NWB sweeps, converted by to_neo and written
    # with Neo's MATLAB writer, load back identical (voltage, amplitudes, window, sweep numbers).
    # A .pkl is refused although Neo would read it (unpickling runs code from the file).
    neo = pytest.importorskip("neo")
    from microcircuit.interchange import to_neo

    a = ephys.load_icephys(nwb_files["table"])
    path = tmp_path / "cell.mat"
    neo.io.NeoMatlabIO(str(path)).write_block(to_neo(a))
    b = ephys.load_icephys(path)
    assert b.attrs["pairing"].startswith("Neo segments")
    np.testing.assert_array_equal(b["voltage"].values, a["voltage"].values)
    np.testing.assert_allclose(b["amplitude"].values, AMPS, atol=1e-6)
    assert b.attrs["stim_start"] == pytest.approx(ON) and b.attrs["stim_end"] == pytest.approx(OFF)
    np.testing.assert_array_equal(b["sweep"].values, np.arange(16))
    (tmp_path / "cell.pkl").write_bytes(b"\x80\x04N.")
    with pytest.raises(EphysFileError, match="cell.pkl: unknown recording format"):
        ephys.load_icephys(tmp_path / "cell.pkl")


def test_load_icephys_bad_inputs(tmp_path, cell):
    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(EphysFileError, match="x.txt: unknown recording format"):
        ephys.load_icephys(tmp_path / "x.txt")
    for name, problem in [("garbage.nwb", "not a readable NWB"), ("garbage.mat", "not readable by Neo")]:
        (tmp_path / name).write_bytes(np.random.default_rng(0).bytes(3000))
        with pytest.raises(EphysFileError, match=f"{name}: {problem}"):
            ephys.load_icephys(tmp_path / name)


# ------------------------------------------------------------------------- eFEL agreement


FEATS = ["ohmic_input_resistance", "time_constant", "Spikecount_stimint"]


def test_features_equal_efel_direct_on_the_nwb_cell(cell, nwb_files):
    # Through load_icephys + extract_features (amplitude detected, window detected) vs eFEL called
    # by hand on the generator's arrays with the known window and amplitudes: R_in, τ_m and spike
    # counts within 1 % (same NaN pattern).  Against the model: R_in = 150 MΩ within 1 % and
    # τ_m = 20 ms within 5 % on the four hyperpolarising sweeps; spike counts equal the
    # generator's threshold crossings (0 below rheobase, 10 … 63 above).
    t, V, I = cell
    ds = ephys.load_icephys(nwb_files["table"])
    ours = ephys.extract_features(ds, features=FEATS)
    ref = efel_direct(t, V, AMPS, ON, OFF, FEATS)
    for f in FEATS:
        np.testing.assert_allclose(ours[f].values, ref[f], rtol=0.01, err_msg=f)
    neg = AMPS < 0
    np.testing.assert_allclose(ours["ohmic_input_resistance"].values[neg], R_IN, rtol=0.01)
    np.testing.assert_allclose(ours["time_constant"].values[neg], TAU, rtol=0.05)
    np.testing.assert_array_equal(ours["Spikecount_stimint"].values, true_spike_counts(t, V))
    fi = ephys.fi_curve(ds)
    np.testing.assert_allclose(fi.values, true_spike_counts(t, V) / 0.5)  # 500 ms window


@pytest.mark.parametrize("name", ["B6", "B8"])
def test_features_equal_efel_direct_on_bundled_cells(name):
    # Bundled sweeps (all suprathreshold): eFEL's R_in, decay τ after the step and spike count,
    # via extract_features(sweep Dataset) vs eFEL by hand with the bundled amplitudes: within 1 %.
    ds = ephys.load_bundled_cell(name)
    feats = ["ohmic_input_resistance", "decay_time_constant_after_stim", "Spikecount_stimint"]
    ours = ephys.extract_features(ds, features=feats)
    ref = efel_direct(ds["time"].values, ds["voltage"].values, ds["amplitude"].values, 700.0, 2700.0, feats)
    for f in feats:
        assert np.isfinite(ref[f]).all(), f
        np.testing.assert_allclose(ours[f].values, ref[f], rtol=0.01, err_msg=f)


def test_baseline_above_threshold_warns_and_threshold_fixes_it(cell, nwb_files):
    # +60 mV uncorrected offset: baseline −5 mV sits above eFEL's −20 mV threshold.  The default
    # call must warn (it reads 0 Hz everywhere otherwise: the silent failure of the issue);
    # threshold=40 mV (−20 + 60) restores the true rates, as does load_icephys(offset=60).
    t, V, I = cell
    truth = true_spike_counts(t, V) / 0.5
    ds = ephys.load_icephys(nwb_files["shifted"])
    with pytest.warns(BaselineAboveThresholdWarning, match="above the spike threshold -20 mV"):
        silent = ephys.fi_curve(ds)
    assert not np.array_equal(silent.values, truth)
    with warnings.catch_warnings():
        warnings.simplefilter("error", BaselineAboveThresholdWarning)
        np.testing.assert_allclose(ephys.fi_curve(ds, threshold=40.0).values, truth)
        np.testing.assert_allclose(ephys.fi_curve(ds, settings={"Threshold": 40.0}).values, truth)
        fixed = ephys.load_icephys(nwb_files["shifted"], offset=60.0)
        np.testing.assert_allclose(ephys.fi_curve(fixed).values, truth)
        np.testing.assert_allclose(ephys.fi_curve(fixed, method="threshold").values, truth)
    with pytest.warns(BaselineAboveThresholdWarning):
        ephys.fi_curve(ds, method="threshold")


def test_efel_settings_pass_through_and_caller_settings_survive():
    # Another caller set eFEL's global Threshold to 0 mV: extract_features must start from eFEL's
    # defaults (so the bundled B6 counts are the reference 26/50/68/82/89), and leave 0 mV behind.
    ds = ephys.load_bundled_cell("B6")
    efel.reset()
    efel.set_setting("Threshold", 0.0)
    try:
        counts = ephys.extract_features(ds, features=["Spikecount_stimint"])["Spikecount_stimint"].values
        assert efel.get_settings().Threshold == 0.0
    finally:
        efel.reset()
    np.testing.assert_array_equal(counts, [26, 50, 68, 82, 89])  # 13/25/34/41/44.5 Hz × 2 s
    with pytest.raises(ValueError, match=r"unknown eFEL setting\(s\) \['Treshold'\]"):
        ephys.extract_features(ds, settings={"Treshold": 0.0})


SEGFAULT_PROBE = """
import numpy as np, xarray as xr
from microcircuit import ephys
t = np.arange(0, 3000, 0.25)
tr = xr.DataArray(np.full(t.size, -80.0), dims="time", coords={"time": ("time", t, {"units": "ms"})},
                  attrs={"units": "mV"})
for window in [(0.7, 2.7), (3500.0, 4000.0), (-5.0, 100.0)]:
    try:
        ephys.extract_features(tr, *window)
    except ephys.StimulusWindowError as exc:
        print("ERR", exc)
"""


def test_bad_window_is_a_clear_error_not_a_segfault():
    # eFEL 5.7's time_constant segfaults (exit −11) on a window given in seconds for ms data
    # (0.7–2.7) or outside the trace (3500–4000 ms).  In a child process: exit 0 and three typed
    # errors, the first suggesting seconds.
    proc = subprocess.run([sys.executable, "-c", SEGFAULT_PROBE], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("ERR")]
    assert len(lines) == 3
    assert "holds 8 samples" in lines[0] and "seconds" in lines[0]
    assert "outside the trace" in lines[1] and "outside the trace" in lines[2]


# ------------------------------------------------------------------------------ units, R_in


def _trace(v, t, vunit="mV", tunit="ms"):
    attrs = {} if tunit is None else {"units": tunit}
    return xr.DataArray(v, dims="time", coords={"time": ("time", t, attrs)}, attrs={"units": vunit})


def test_units_parsed_by_quantities(cell):
    # Sweep 0 (−200 pA) of the LIF cell: voltage_base −65 mV and steady state −95 mV whatever the
    # spelling of the units; time in s works with the window in ms; no time units or a current
    # unit on a voltage are errors; a unit string that is an expression is refused unparsed.
    t, V, I = cell
    feats = ["voltage_base", "steady_state_voltage_stimend"]
    ref = ephys.extract_features(_trace(V[0], t), ON, OFF, features=feats)
    assert ref["voltage_base"].item() == pytest.approx(-65.0, abs=0.05)
    assert ref["steady_state_voltage_stimend"].item() == pytest.approx(-95.0, abs=0.1)
    for vunit, scale in [("millivolt", 1.0), ("volts", 1e-3), ("V", 1e-3), ("uV", 1e3), ("µV", 1e3)]:
        got = ephys.extract_features(_trace(V[0] * scale, t, vunit), ON, OFF, features=feats)
        assert got["voltage_base"].item() == pytest.approx(ref["voltage_base"].item(), rel=1e-9), vunit
    for tunit, scale in [("s", 1e-3), ("second", 1e-3), ("ms", 1.0), ("us", 1e3)]:
        got = ephys.extract_features(_trace(V[0], t * scale, tunit=tunit), ON, OFF, features=feats)
        assert got["steady_state_voltage_stimend"].item() == pytest.approx(
            ref["steady_state_voltage_stimend"].item(), rel=1e-9), tunit
    with pytest.raises(EphysUnitsError, match="'time' axis has no 'units'"):
        ephys.extract_features(_trace(V[0], t, tunit=None), ON, OFF)
    with pytest.raises(EphysUnitsError, match="'pA' cannot be expressed in 'mV'"):
        ephys.extract_features(_trace(V[0], t, "pA"), ON, OFF)
    with pytest.raises(EphysUnitsError, match="not a unit name"):
        ephys.unit_scale("9**9**9", "mV")
    for iunit, scale in [("pA", 1.0), ("nA", 1e-3), ("amperes", 1e-12), ("A", 1e-12)]:
        step = ephys.detect_step(_trace(I[3] * scale, t, iunit))
        assert step["amplitude"].item() == pytest.approx(-50.0, rel=1e-9), iunit
        assert (step["stim_start"].item(), step["stim_end"].item()) == (pytest.approx(ON), pytest.approx(OFF))


def test_input_resistance_from_the_detected_amplitude(nwb_files):
    # Without an amplitude coord, a sweep Dataset's current gives the amplitude: R_in 150 MΩ
    # within 1 % on the hyperpolarising sweeps.  A bare voltage DataArray has no amplitude: a
    # warning says so and R_in is NaN.
    ds = ephys.load_icephys(nwb_files["table"]).drop_vars("amplitude")
    rin = ephys.extract_features(ds, features=["ohmic_input_resistance"])["ohmic_input_resistance"].values
    np.testing.assert_allclose(rin[AMPS < 0], R_IN, rtol=0.01)
    with pytest.warns(ephys.EphysWarning, match="needs the step amplitude"):
        bare = ephys.extract_features(ds["voltage"], ON, OFF, features=["ohmic_input_resistance"])
    assert np.isnan(bare["ohmic_input_resistance"].values).all()


# ------------------------------------------------------------------------------------- fits


def test_transfer_fit_at_its_bound_warns():
    # A linear f–I (0.05 Hz/pA over 0–1000 pA) has no saturation: the exponential model's I_s runs
    # to its upper bound 100·span = 1e5 pA — the case of the issue — and must say so.
    I = np.linspace(0, 1000, 11)
    with pytest.warns(FitWarning, match="I_s = .* sits at its upper bound 100000"):
        ephys.fit_transfer_function(I, 0.05 * I, model="exponential")


def test_good_fits_stay_quiet():
    # The bundled B6 f–I fitted by a sigmoid and a passive τ = 15 ms step fitted over 150 ms
    # constrain every parameter: no FitWarning (warnings are specific, not blanket).
    ds = ephys.load_bundled_cell("B6")
    t = np.arange(0, 3000, 0.25)
    v = np.where((t >= 700) & (t < 2700), -80 - 10 * (1 - np.exp(-(t - 700) / 15.0)), -80.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FitWarning)
        ephys.fit_transfer_function(None, ephys.fi_curve(ds), model="sigmoid")
        assert ephys.fit_membrane_tau(_trace(v, t), 700, 2700, fit_duration=150)["tau"].item() == pytest.approx(15, rel=1e-3)


def test_tau_fit_on_a_window_too_short_warns():
    # τ = 500 ms observed for 20 ms: the decay is barely begun, τ > 10× the window → FitWarning.
    t = np.arange(0, 3000, 0.25)
    v = np.where((t >= 700) & (t < 2700), -80 - 10 * (1 - np.exp(-(t - 700) / 500.0)), -80.0)
    with pytest.warns(FitWarning, match="not observed"):
        ephys.fit_membrane_tau(_trace(v, t), 700, 2700, fit_duration=20)


# -------------------------------------------------------------------- Neo, Elephant, NWB export


def _simulated_tree():
    """A short real run: the dendritic microcircuit (4-6-2) with OU input, 300 steps of 0.1 ms."""
    import microcircuit as mc
    from microcircuit.microcircuit import dendritic_microcircuit
    from microcircuit.simulation import Recording, Simulation
    from microcircuit.stimuli import OrnsteinUhlenbeck

    c = dendritic_microcircuit((4, 6, 2), preset="bern", latent_equilibrium=True, seed=0)
    stim = [OrnsteinUhlenbeck("input", sigma=0.5, tau=5.0, seed=1, mean=0.5)]
    sim = Simulation(mc.compile(c, dt=0.1, batch=2, stimuli=stim, seed=0),
                     recordings=[Recording("pyr1", ["u", "r"]), Recording("output", ["u"])])
    sim.run(steps=300)
    return sim.results()


def _layout_tree():
    """A recording with the layout of open_recording (root attrs, population groups over time,
    batch, neuron[, compartment], a metrics group without time), 0.1 ms steps, random values."""
    T, B = 300, 2
    rng = np.random.default_rng(5)
    tc = ("time", np.arange(1, T + 1) * 0.1, {"units": "ms"})
    pyr = xr.Dataset({"u": (("time", "batch", "neuron"), rng.normal(size=(T, B, 6)), {"units": "mV"}),
                      "r": (("time", "batch", "neuron"), rng.uniform(size=(T, B, 6)), {"units": "Hz"})},
                     coords={"time": tc, "neuron": np.arange(6)}, attrs={"population": "pyr1"})
    out = xr.Dataset({"u": (("time", "batch", "neuron"), rng.normal(size=(T, B, 2)), {"units": "mV"})},
                     coords={"time": tc, "neuron": np.arange(2)}, attrs={"population": "output"})
    tree = xr.DataTree.from_dict({"/pyr1": pyr, "/output": out, "/metrics": xr.Dataset({"loss": ("epoch", [1.0])})})
    tree.attrs.update(dt=0.1, seed=0, complete=True)
    return tree


@pytest.mark.parametrize("source", ["layout", "simulation"])
def test_to_neo_of_a_recording_keeps_values_units_and_labels(source):
    # Each population/variable becomes one AnalogSignal: values equal the recording (time, batch·
    # neuron), units from the attrs, sampling period = the recorded time step (0.1 ms), channel
    # labels in array_annotations; the metrics group (no time) is left out.  On a synthetic tree
    # with open_recording's layout and on a real Simulation.results().
    neo = pytest.importorskip("neo")
    import quantities as pq
    from microcircuit.interchange import to_neo

    tree = _layout_tree() if source == "layout" else _simulated_tree()
    block = to_neo(tree)
    assert isinstance(block, neo.Block) and len(block.segments) == 1
    sigs = {s.name: s for s in block.segments[0].analogsignals}
    assert {"pyr1_u", "pyr1_r", "output_u"} <= set(sigs)
    u = tree["pyr1"].to_dataset()["u"].transpose("time", ...)
    sig = sigs["pyr1_u"]
    # the simulated rate model's u is dimensionless (units "1"); the layout tree's is in mV
    expected = pq.dimensionless if u.attrs["units"] in ("", "1") else pq.Quantity(1.0, u.attrs["units"]).units
    assert sig.units == expected and sig.annotations["units_attr"] == u.attrs["units"]
    assert source == "simulation" or sig.units == pq.mV
    np.testing.assert_array_equal(sig.magnitude, u.values.reshape(u.sizes["time"], -1))
    dt = float(u["time"][1] - u["time"][0])
    assert float(sig.sampling_period.rescale("ms")) == pytest.approx(dt) == pytest.approx(0.1)
    assert float(sig.t_start.rescale("ms")) == pytest.approx(float(u["time"][0]))
    np.testing.assert_array_equal(sig.array_annotations["neuron"], np.tile(u["neuron"].values, u.sizes["batch"]))
    assert sig.annotations["population"] == "pyr1" and sig.annotations["variable"] == "u"


def test_elephant_reads_to_neo_signals_and_spike_trains(nwb_files, cell):
    # (a) A 25 Hz sine recorded at dt 0.5 ms: Elephant's Welch PSD peaks at 25 Hz (a time axis
    # mistaken for seconds would put it at 0.025 Hz).  (b) Spike trains of the NWB sweeps:
    # Elephant's mean_firing_rate over the 500 ms step equals fi_curve's rate for every firing
    # sweep (20 … 126 Hz), and sweeps below rheobase have empty trains.
    pytest.importorskip("neo")
    elephant = pytest.importorskip("elephant")
    import elephant.spectral
    import elephant.statistics
    import quantities as pq
    from microcircuit.interchange import to_neo

    t = np.arange(0, 2000, 0.5)
    ds = xr.Dataset({"u": (("time", "neuron"), np.sin(2 * np.pi * 25e-3 * t)[:, None] * [1.0, 2.0], {"units": "mV"})},
                    coords={"time": ("time", t, {"units": "ms"})}, attrs={"population": "pyr"})
    sig = to_neo(ds).segments[0].analogsignals[0]
    freqs, psd = elephant.spectral.welch_psd(sig, frequency_resolution=1 * pq.Hz)
    assert float(freqs[np.argmax(psd[0])].rescale("Hz")) == pytest.approx(25.0, abs=1.0)

    sweeps = ephys.load_icephys(nwb_files["table"])
    fi = ephys.fi_curve(sweeps)
    block = to_neo(sweeps, spike_threshold=-20.0)
    assert len(block.segments) == 16 and block.segments[10].annotations["amplitude_pA"] == pytest.approx(300.0)
    rates = []
    for seg in block.segments:
        st = seg.spiketrains[0]
        rates.append(0.0 if len(st) == 0 else
                     float(elephant.statistics.mean_firing_rate(st, t_start=ON * pq.ms, t_stop=OFF * pq.ms).rescale("Hz")))
    np.testing.assert_allclose(rates, fi.values)
    assert fi.values.max() > 100


SCENARIO_TEXT = "# scenario\n" + "".join(f'[populations.p{k}]\nsize = {k}\nmodel = "pyramidal"\n' for k in range(600))


def test_exported_nwb_is_read_by_neo_and_passes_nwbinspector(tmp_path):
    # The export must be readable by Neo's NWBIO (1 block, the series as AnalogSignals in V at
    # 10 kHz), carry a Subject so nwbinspector reports no CRITICAL, and keep a scenario of
    # > 10,000 characters whole (the old notes were cut at 10,000: invalid text).
    neo = pytest.importorskip("neo")
    inspector = pytest.importorskip("nwbinspector")
    import json

    from microcircuit.nwb import export_nwb

    tree = _layout_tree()
    tree.attrs.update(scenario=SCENARIO_TEXT, scenario_name="teacher_student")
    assert len(SCENARIO_TEXT) > 15000
    path = export_nwb(tree, tmp_path / "rec.nwb")
    reader = neo.io.NWBIO(str(path), "r")
    blocks = reader.read_all_blocks()
    assert len(blocks) == 1
    sigs = {s.name: s for seg in blocks[0].segments for s in seg.analogsignals}
    assert {"pyr1_u", "pyr1_r", "output_u"} <= set(sigs)
    u = tree["pyr1"].to_dataset()["u"].transpose("time", ...)
    np.testing.assert_allclose(np.asarray(sigs["pyr1_u"].rescale("mV").magnitude),
                               u.values.reshape(u.sizes["time"], -1), rtol=1e-12)
    assert float(sigs["pyr1_u"].sampling_rate.rescale("Hz")) == pytest.approx(1e3 / float(u["time"][1] - u["time"][0]))
    reader.close()
    messages = list(inspector.inspect_nwbfile(nwbfile_path=str(path)))
    critical = [m for m in messages if m.importance.name == "CRITICAL"]
    assert critical == [], [m.message for m in critical]
    with pynwb.NWBHDF5IO(str(path), "r") as io:
        f = io.read()
        assert f.protocol == SCENARIO_TEXT
        assert json.loads(f.notes)["scenario"] == SCENARIO_TEXT
        assert f.subject is not None and f.subject.species == "Mus musculus"


def test_export_converts_any_parsable_unit_to_si_and_needs_time_units(tmp_path):
    # 'millivolt' → V (×1e-3), 'nA' → A (×1e-9), '1/ms' → Hz (×1e3), a dimensionless '1' kept;
    # a time axis without units is refused (it used to be taken as ms).
    from microcircuit.nwb import NWBExportError, export_nwb

    t = ("time", np.arange(4) * 0.5, {"units": "ms"})
    ds = xr.Dataset({"v": ("time", [1.0, 2, 3, 4], {"units": "millivolt"}), "i": ("time", [1.0, 2, 3, 4], {"units": "nA"}),
                     "r": ("time", [1.0, 2, 3, 4], {"units": "1/ms"}), "u": ("time", [1.0, 2, 3, 4], {"units": "1"})},
                    coords={"time": t}, attrs={"population": "p"})
    path = export_nwb(ds, tmp_path / "u.nwb")
    with pynwb.NWBHDF5IO(str(path), "r") as io:
        acq = io.read().acquisition
        got = {k: (acq[k].unit, acq[k].data[0, 0]) for k in acq}
    assert got["p_v"] == ("V", pytest.approx(1e-3)) and got["p_i"] == ("A", pytest.approx(1e-9))
    assert got["p_r"] == ("Hz", pytest.approx(1e3)) and got["p_u"] == ("1", 1.0)
    with pytest.raises(NWBExportError, match="time axis has units None"):
        export_nwb(ds.assign_coords(time=ds["time"].drop_attrs()), tmp_path / "nounits.nwb")
