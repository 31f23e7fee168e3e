"""Tests of microcircuit.ephys (loaders, bundled B6/B8 data, eFEL features, fits) and NWB export.

Reference numbers (eFEL on the bluepyefe 2.3.63 IDRest sweeps; the bundled cells are described in
docs/howto/compare-with-recording.md): B6 118/177/237/296/354 pA → 13.0/25.0/34.0/41.0/44.5 Hz; B8 94/139/182/227/274 pA
→ 10.0/22.0/31.0/37.5/40.5 Hz; resting potential about −84 mV.
"""

import shutil

import numpy as np
import pytest
import xarray as xr

from microcircuit import ephys
from microcircuit.ephys import EphysFileError

REF = {
    "B6": ([118, 177, 237, 296, 354], [13.0, 25.0, 34.0, 41.0, 44.5]),
    "B8": ([94, 139, 182, 227, 274], [10.0, 22.0, 31.0, 37.5, 40.5]),
}


@pytest.fixture(scope="module", params=["B6", "B8"])
def cell(request):
    return request.param, ephys.load_bundled_cell(request.param)


def _passive_step(tau=15.0, R=100.0, I_pA=-100.0, v_rest=-80.0, dt=0.25, noise=0.1, seed=0):
    """Passive membrane τ dV/dt = −(V − V_rest) + R I, I a step 700–2700 ms; R in MΩ, I in pA
    (R·I in mV = MΩ·nA).  Exact solution, plus Gaussian noise (mV)."""
    t = np.arange(0, 3000, dt)
    dv = R * I_pA * 1e-3
    v = np.full(t.size, v_rest)
    on = (t >= 700) & (t < 2700)
    v[on] += dv * (1 - np.exp(-(t[on] - 700) / tau))
    v_end = dv * (1 - np.exp(-2000 / tau))
    off = t >= 2700
    v[off] += v_end * np.exp(-(t[off] - 2700) / tau)
    v += np.random.default_rng(seed).normal(0, noise, t.size)
    return xr.DataArray(v, dims="time", coords={"time": ("time", t, {"units": "ms"})}, attrs={"units": "mV"})


# ------------------------------------------------------------------------------------ bundled data


def test_bundled_cell_layout_and_units(cell):
    name, ds = cell
    assert ds["voltage"].dims == ("sweep", "time")
    assert ds["voltage"].attrs["units"] == "mV" and ds["current"].attrs["units"] == "pA"
    assert ds["time"].attrs["units"] == "ms" and ds["amplitude"].attrs["units"] == "pA"
    assert ds.sizes == {"sweep": 5, "time": 12000}  # 3 s at dt 0.25 ms
    assert float(ds.time[1] - ds.time[0]) == 0.25
    # step amplitudes as listed in the module docstring (rounded to 1 pA there)
    np.testing.assert_allclose(ds["amplitude"].values, REF[name][0], atol=1.0)
    # resting potential after subtracting the 14 mV LJP: "about −84 mV" → within ±2 mV
    vb = ds["voltage"].sel(time=slice(630, 700)).mean().item()
    assert -86 < vb < -82


def test_bundled_matches_shipped_ibw_losslessly():
    # The npz coding of sweep 181 must equal the original .ibw samples (LJP 14 mV applied to both)
    # to float32 precision (≤ 1e-4 mV; the ADC step is 0.031 mV) and the current exactly.
    ds = ephys.load_bundled_cell("B6").sel(sweep=181)
    v = ephys.load_ibw(ephys.DATA_DIR / "B6_Ch3_IDRest_181.ibw", "voltage", dt=0.25, ljp=14.0)
    i = ephys.load_ibw(ephys.DATA_DIR / "B6_Ch0_IDRest_181.ibw", "current")
    assert v.attrs["units"] == "mV" and i.attrs["units"] == "pA"
    assert v.attrs["header_dt_ms"] == pytest.approx(0.25)  # the wave header agrees with dt
    np.testing.assert_allclose(v.values, ds["voltage"].values, atol=1e-4)
    np.testing.assert_allclose(i.values, ds["current"].values, atol=1e-4)


def test_fi_curve_reproduces_reference_rates(cell):
    name, ds = cell
    fi = ephys.fi_curve(ds, method="efel")
    assert fi.attrs["units"] == "Hz"
    np.testing.assert_allclose(fi.values, REF[name][1], atol=1e-9)
    # the threshold-crossing counter (no eFEL) agrees within one spike over 2 s (0.5 Hz)
    np.testing.assert_allclose(ephys.fi_curve(ds, method="threshold").values, REF[name][1], atol=0.5)


def test_bundled_fi_csv_matches_traces():
    pts = ephys.bundled_fi_points()
    for name in ("B6", "B8"):
        sel = pts.where(pts["cell"] == name, drop=True)
        np.testing.assert_allclose(sel["rate"].values, REF[name][1], atol=0.01)


@pytest.mark.parametrize("model", ["sigmoid", "exponential"])
def test_transfer_function_fit_on_b6_b8(cell, model):
    # Acceptance: the fitted φ(I) reproduces the measured rates with R² ≥ 0.95; a saturating model
    # must saturate at or above the highest measured rate and have its threshold below the lowest
    # suprathreshold step.
    name, ds = cell
    fi = ephys.fi_curve(ds)
    fit = ephys.fit_transfer_function(None, fi, model=model)
    assert fit["r2"].item() >= 0.95
    pred = ephys.transfer_function(fi.amplitude.values, fit)
    np.testing.assert_allclose(pred, fi.values, atol=2.0)  # within 2 Hz of every point
    assert fit["saturation"].item() >= fi.values.max()
    assert fit["threshold"].item() < fi.amplitude.values.min()
    assert fit["gain"].attrs["units"] == "Hz/pA" and fit["threshold"].attrs["units"] == "pA"


@pytest.mark.parametrize("model,params", [
    ("sigmoid", {"f_max": 50.0, "I_half": 200.0, "s": 40.0}),
    ("exponential", {"f_max": 60.0, "theta": 80.0, "I_s": 150.0}),
    ("softplus", {"theta": 100.0, "g": 0.2, "k": 20.0}),
])
def test_transfer_function_recovers_known_parameters(model, params):
    # Noise-free points from the model itself: parameters back within 1 %, R² = 1 (to 1e-6).
    I = np.linspace(50, 400, 12)
    f = ephys.transfer_function(I, {"model": model, **params})
    fit = ephys.fit_transfer_function(I, f, model=model)
    for k, v in params.items():
        assert fit[k].item() == pytest.approx(v, rel=0.01)
    assert fit["r2"].item() == pytest.approx(1.0, abs=1e-6)


def test_transfer_function_rejects_bad_input():
    with pytest.raises(ValueError, match="unknown transfer model"):
        ephys.fit_transfer_function([1, 2, 3], [1, 2, 3], model="tanhh")
    with pytest.raises(ValueError, match="differ in length"):
        ephys.fit_transfer_function([1, 2, 3], [1, 2], model="linear")


# --------------------------------------------------------------------------------- membrane tau


def test_tau_fit_and_efel_on_synthetic_passive_step():
    # No bundled sweep is subthreshold, so a passive step with known τ = 15 ms (R = 100 MΩ,
    # −100 pA, 0.1 mV noise) tests both fitters: our onset fit and eFEL's time_constant must each
    # be within 10 % of 15 ms and of each other; eFEL's R_in must give 100 MΩ within 2 %.
    tr = _passive_step()
    ours = ephys.fit_membrane_tau(tr, 700, 2700, window="onset", fit_duration=150)
    feats = ephys.extract_features(tr, 700, 2700, amplitude=-100.0)
    assert ours["tau"].attrs["units"] == "ms"
    assert ours["tau"].item() == pytest.approx(15.0, rel=0.10)
    assert feats["time_constant"].item() == pytest.approx(15.0, rel=0.10)
    assert ours["tau"].item() == pytest.approx(feats["time_constant"].item(), rel=0.10)
    assert feats["ohmic_input_resistance"].item() == pytest.approx(100.0, rel=0.02)
    off = ephys.fit_membrane_tau(tr, 700, 2700, window="offset", fit_duration=60)
    assert off["tau"].item() == pytest.approx(15.0, rel=0.10)


def test_tau_offset_fit_matches_efel_decay_on_real_sweeps(cell):
    # Real sweeps are suprathreshold; the passive decay after stim_end is compared with eFEL's
    # decay_time_constant_after_stim (same 1–10 ms window and reference V(stim_start)) on sweeps
    # whose last spike is ≥ 10 ms before stim_end (AHP-free decay): within 10 %.
    name, ds = cell
    efel_tau = ephys.extract_features(ds["voltage"], 700, 2700, features=["decay_time_constant_after_stim"])
    checked = 0
    for k in range(ds.sizes["sweep"]):
        fit = ephys.fit_membrane_tau(ds["voltage"].isel(sweep=k), 700, 2700, window="offset", baseline="stim_start")
        if fit.attrs["last_spike_to_end_ms"] < 10:
            continue
        checked += 1
        assert fit["tau"].item() == pytest.approx(efel_tau["decay_time_constant_after_stim"].values[k], rel=0.10)
    assert checked >= 3  # B6: 3 of 5 sweeps, B8: 4 of 5 qualify


def test_extract_features_converts_volts_and_requires_units():
    tr = _passive_step(noise=0.0)
    mv = ephys.extract_features(tr, 700, 2700, features=["steady_state_voltage_stimend", "voltage_base"])
    volts = (tr * 1e-3).assign_attrs(units="V")
    v = ephys.extract_features(volts, 700, 2700, features=["steady_state_voltage_stimend", "voltage_base"])
    # −80 mV rest and −80 + 100 MΩ·(−0.1 nA) = −90 mV at stim end, whatever the input units
    assert mv["voltage_base"].item() == pytest.approx(-80.0, abs=1e-6)
    assert v["steady_state_voltage_stimend"].item() == pytest.approx(-90.0, abs=0.01)
    assert v["steady_state_voltage_stimend"].attrs["units"] == "mV"
    with pytest.raises(ValueError, match="units"):
        ephys.extract_features(tr.drop_attrs(), 700, 2700)


def test_compare_model_table():
    data = {"threshold": 50.0, "gain": 0.2, "saturation": 46.0}
    model = {"threshold": 55.0, "gain": 0.2, "saturation": 40.0}
    tab = ephys.compare_model(data, model, units={"threshold": "pA", "gain": "Hz/pA", "saturation": "Hz"})
    np.testing.assert_allclose(tab["relative_difference"].values, [0.1, 0.0, -6 / 46])
    md = ephys.table_markdown(tab)
    assert md.splitlines()[0].startswith("| quantity | units | data | model")
    assert "| threshold | pA | 50 | 55 |" in md


# ------------------------------------------------------------------------------------- bad files


def test_ibw_missing_truncated_garbage(tmp_path):
    src = ephys.DATA_DIR / "B6_Ch3_IDRest_181.ibw"
    with pytest.raises(EphysFileError, match="nope.ibw: file not found"):
        ephys.load_ibw(tmp_path / "nope.ibw")
    raw = src.read_bytes()
    trunc = tmp_path / "trunc.ibw"
    trunc.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(EphysFileError, match="trunc.ibw"):
        ephys.load_ibw(trunc)
    garbage = tmp_path / "garbage.ibw"
    garbage.write_bytes(np.random.default_rng(0).bytes(4000))
    with pytest.raises(EphysFileError, match="garbage.ibw: not a readable Igor binary wave"):
        ephys.load_ibw(garbage)
    with pytest.raises(EphysFileError, match="wave's units are 'mV'"):
        ephys.load_ibw(src, kind="current")


def test_abf_roundtrip_and_bad_files(tmp_path):
    abfwriter = pytest.importorskip("pyabf.abfWriter")
    data = np.random.default_rng(1).normal(-70, 5, size=(3, 2000))
    path = tmp_path / "cell.abf"
    abfwriter.writeABF1(data, str(path), 20000, units="mV")
    ds = ephys.load_abf(path)
    assert ds["signal"].shape == (3, 2000) and ds["signal"].attrs["units"] == "mV"
    assert float(ds.time[1] - ds.time[0]) == pytest.approx(0.05)  # 20 kHz → 0.05 ms
    # ABF1 stores int16 with a scale chosen from the data range: error well under 0.1 mV
    np.testing.assert_allclose(ds["signal"].values, data, atol=0.1)
    raw = path.read_bytes()
    (tmp_path / "trunc.abf").write_bytes(raw[: len(raw) - 2000])
    with pytest.raises(EphysFileError, match="trunc.abf: truncated"):
        ephys.load_abf(tmp_path / "trunc.abf")
    (tmp_path / "garbage.abf").write_bytes(np.random.default_rng(0).bytes(5000))
    with pytest.raises(EphysFileError, match="garbage.abf"):
        ephys.load_abf(tmp_path / "garbage.abf")
    with pytest.raises(EphysFileError, match="missing.abf: file not found"):
        ephys.load_abf(tmp_path / "missing.abf")


def test_bundled_unknown_cell():
    with pytest.raises(EphysFileError, match="no bundled cell 'B99'"):
        ephys.load_bundled_cell("B99")


# ------------------------------------------------------------------------------------------- NWB


def _recording_tree():
    T, B, N = 40, 2, 3
    t = np.arange(T) * 0.5  # ms
    rng = np.random.default_rng(3)
    tcoord = ("time", t, {"units": "ms"})
    pyr = xr.Dataset(
        {
            "u": (("time", "batch", "neuron"), rng.normal(size=(T, B, N)), {"units": "mV", "long_name": "soma potential"}),
            "r": (("time", "batch", "neuron"), rng.uniform(size=(T, B, N)), {"units": "Hz", "long_name": "rate"}),
            "v": (("time", "batch", "neuron", "compartment"), rng.normal(size=(T, B, N, 3)), {"units": "mV"}),
        },
        coords={"time": tcoord, "compartment": ["soma", "basal", "apical"]},
        attrs={"population": "pyr"},
    )
    inter = xr.Dataset({"u": (("time", "batch", "neuron"), rng.normal(size=(T, B, 2)), {"units": "mV"})},
                       coords={"time": tcoord}, attrs={"population": "inter"})
    metrics = xr.Dataset({"loss": ("epoch", [1.0, 0.5])})
    return xr.DataTree.from_dict({"/pyr": pyr, "/inter": inter, "/metrics": metrics})


def test_export_nwb_roundtrip(tmp_path):
    pynwb = pytest.importorskip("pynwb")
    from microcircuit.nwb import NWBExportError, export_nwb

    tree = _recording_tree()
    path = export_nwb(tree, tmp_path / "rec.nwb")
    with pynwb.NWBHDF5IO(str(path), "r") as io:
        f = io.read()
        mod = f.acquisition  # in /acquisition since issue 'interchange' (Neo's NWBIO reads it there)
        assert sorted(mod) == ["inter_u", "pyr_r", "pyr_u", "pyr_v"]  # metrics skipped
        u = mod["pyr_u"]
        assert u.unit == "V" and u.data.shape == (40, 6)  # (time, batch·neuron)
        np.testing.assert_allclose(u.data[:], tree["pyr"]["u"].values.reshape(40, 6) * 1e-3)
        assert u.rate == pytest.approx(2000.0)  # dt 0.5 ms → 2 kHz
        assert mod["pyr_r"].unit == "Hz"
        assert mod["pyr_v"].data.shape == (40, 18)  # batch·neuron·compartment
    # our reader converts back to mV / ms
    back = ephys.load_nwb(path, "pyr_v")
    assert back.attrs["units"] == "mV" and back["time"].attrs["units"] == "ms"
    np.testing.assert_allclose(back.values, tree["pyr"]["v"].values.reshape(40, 18), atol=1e-9)
    np.testing.assert_allclose(back["time"].values, tree["pyr"]["time"].values)
    with pytest.raises(NWBExportError, match="exists"):
        export_nwb(tree, path)


def test_load_nwb_bad_files(tmp_path):
    pytest.importorskip("h5py")
    (tmp_path / "garbage.nwb").write_bytes(np.random.default_rng(0).bytes(3000))
    with pytest.raises(EphysFileError, match="garbage.nwb: not a readable HDF5"):
        ephys.load_nwb(tmp_path / "garbage.nwb", "x")
    pytest.importorskip("pynwb")
    from microcircuit.nwb import export_nwb

    path = export_nwb(_recording_tree(), tmp_path / "ok.nwb")
    with pytest.raises(EphysFileError, match="ok.nwb: no TimeSeries 'absent'"):
        ephys.load_nwb(path, "absent")
    raw = path.read_bytes()
    trunc = tmp_path / "trunc.nwb"
    trunc.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(EphysFileError, match="trunc.nwb"):
        ephys.load_nwb(trunc, "pyr_u")
    shutil.rmtree(tmp_path, ignore_errors=True)
