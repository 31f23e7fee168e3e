"""Tests of microcircuit.analysis: estimators recover known values from synthetic signals."""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import scipy.signal
import xarray as xr

import microcircuit.analysis as mca
from microcircuit.analysis import estimators as est

DT = 0.1  # ms


def _da(values, t, dims=("time",), units="mV", **coords):
    c = {"time": ("time", t, {"units": "ms"})}
    c.update(coords)
    return xr.DataArray(values, dims=dims, coords=c, attrs={"units": units})


def _lowpass_exact(x, tau, dt):
    """τ ẏ = x − y, exact for piecewise-linear x (first-order hold):
    y[n+1] = a y[n] + (1 − c) x[n+1] + (c − a) x[n], a = e^{−dt/τ}, c = τ(1 − a)/dt."""
    a = np.exp(-dt / tau)
    c = tau * (1 - a) / dt
    return scipy.signal.lfilter([1 - c, c - a], [1, -a], x)


# ----------------------------------------------------------------------------------------- lag


@pytest.mark.parametrize("delay", [0.37, 3.7, -5.05, 12.25])
def test_lag_recovers_delay_of_sine_within_1_percent(delay):
    # y(t) = x(t − L) for a 20 Hz sine (period 50 ms); the estimator must return L (ms) within 1 %.
    t = np.arange(0, 1000, DT)
    f = 0.02  # 1/ms
    x = _da(np.sin(2 * np.pi * f * t), t)
    y = _da(np.sin(2 * np.pi * f * (t - delay)), t)
    L = est.lag(x, y, max_lag=20)
    assert L.attrs["units"] == "ms"
    assert L.item() == pytest.approx(delay, rel=0.01)


def test_lag_broadband_vectorised_over_neurons():
    # Smoothed noise delayed by k·dt + a known sub-sample amount (linear interpolation):
    # neuron i is delayed by 2.0 + 1.5 i ms; each must be found within 1 %.
    rng = np.random.default_rng(0)
    t = np.arange(0, 2000, DT)
    base = scipy.signal.lfilter([1 - np.exp(-DT / 2)], [1, -np.exp(-DT / 2)], rng.standard_normal(t.size))
    delays = 2.0 + 1.5 * np.arange(3)
    ys = np.stack([np.interp(t - d, t, base) for d in delays], axis=1)
    x = _da(base, t)
    y = _da(ys, t, dims=("time", "neuron"), neuron=np.arange(3))
    L = est.lag(x, y, max_lag=10)
    assert L.dims == ("neuron",)
    np.testing.assert_allclose(L.values, delays, rtol=0.01)


def test_lag_rejects_irregular_time():
    t = np.sort(np.random.default_rng(1).uniform(0, 100, 500))
    x = _da(np.sin(t), t)
    with pytest.raises(est.EstimatorError, match="uniformly sampled"):
        est.lag(x, x)


# ----------------------------------------------------------------------------------- gain/phase


def test_gain_phase_first_order_lowpass_within_1_percent():
    # Multi-sine input through 1/(1 + iωτ), τ = 10 ms, discretised exactly: gain 1/√(1+ω²τ²) and
    # phase −atan(ωτ) at each of the 4 frequencies must be recovered within 1 %.
    tau = 10.0
    freqs = np.array([0.005, 0.01, 0.02, 0.04])  # 1/ms = 5, 10, 20, 40 Hz
    t = np.arange(0, 2200, DT)
    phases = np.random.default_rng(2).uniform(0, 2 * np.pi, freqs.size)
    xs = sum(np.sin(2 * np.pi * f * t + p) for f, p in zip(freqs, phases))
    ys = _lowpass_exact(xs, tau, DT)
    keep = t >= 200  # drop the 20 τ start-up transient
    x = _da(xs[keep], t[keep])
    y = _da(ys[keep], t[keep])
    gp = est.gain_phase(x, y, freqs)
    H = 1 / (1 + 2j * np.pi * freqs * tau)
    np.testing.assert_allclose(gp["gain"].values, np.abs(H), rtol=0.01)
    np.testing.assert_allclose(gp["phase"].values, np.angle(H), rtol=0.01)
    assert gp["phase"].attrs["units"] == "rad"
    assert gp["gain"].attrs["units"] == "1"
    assert gp["frequency"].attrs["units"] == "1/ms"


def test_gain_phase_lead_lag_filter_matches_models_C2():
    # GLE lead–lag ŭ = (1 − τr/τm) u + (τr/τm) s (docs/models/gle.md, "Representation neurons"), H = (1+iωτr)/(1+iωτm), with
    # τr = 15 ms > τm = 5 ms (prospective): phase atan(ωτr) − atan(ωτm) > 0 within 1 %.
    tm, tr = 5.0, 15.0
    f = np.array([0.01])
    t = np.arange(0, 1500, DT)
    s = np.sin(2 * np.pi * f[0] * t)
    u = _lowpass_exact(s, tm, DT)
    ub = (1 - tr / tm) * u + (tr / tm) * s
    keep = t >= 100
    gp = est.gain_phase(_da(s[keep], t[keep]), _da(ub[keep], t[keep]), f)
    w = 2 * np.pi * f[0]
    assert gp["gain"].item() == pytest.approx(np.sqrt((1 + (w * tr) ** 2) / (1 + (w * tm) ** 2)), rel=0.01)
    assert gp["phase"].item() == pytest.approx(np.arctan(w * tr) - np.arctan(w * tm), rel=0.01)


def test_gain_phase_rejects_frequency_above_nyquist():
    t = np.arange(0, 100, DT)
    x = _da(np.sin(t), t)
    with pytest.raises(est.EstimatorError, match="Nyquist"):
        est.gain_phase(x, x, [6.0])  # Nyquist is 1/(2·0.1 ms) = 5 /ms


# ------------------------------------------------------------------------------ other estimators


def test_settling_time_of_exponential_relaxation():
    # x = 1 − e^{−t/τ}, τ = 10 ms: within 2 % of the final value after τ·ln(50) = 39.12 ms.
    tau = 10.0
    t = np.arange(0, 400, DT)
    x = _da(1 - np.exp(-t / tau), t)
    st = est.settling_time(x, tol=0.02)
    assert st.attrs["units"] == "ms"
    assert st.item() == pytest.approx(tau * np.log(50), abs=2 * DT)


def test_phase_advance_of_le_rate():
    # LE: r = u + τ u̇ (linear φ).  For u = sin(ωt), r leads u by atan(ωτ); τ = 10 ms, f = 10 Hz:
    # atan(0.628) = 0.561 rad, i.e. 8.93 ms; within 1 %.
    tau, f = 10.0, 0.01
    t = np.arange(0, 1000, DT)
    w = 2 * np.pi * f
    u = _da(np.sin(w * t), t)
    r = _da(np.sin(w * t) + tau * w * np.cos(w * t), t, units="1")
    pa = est.phase_advance(r, u, f)
    assert pa["phase"].item() == pytest.approx(np.arctan(w * tau), rel=0.01)
    assert pa["time_advance"].item() == pytest.approx(np.arctan(w * tau) / w, rel=0.01)
    assert pa["time_advance"].attrs["units"] == "ms"


def test_alignment_angle_known_angles():
    # B = Wᵀ → 0°; B = −Wᵀ → 180°; B orthogonal in Frobenius product → 90°.
    W = np.array([[1.0, 0.0, 2.0], [0.0, 3.0, 0.0]])  # (n_out=2, n_in=3)
    assert est.alignment_angle(W, W.T).item() == pytest.approx(0.0, abs=1e-6)
    assert est.alignment_angle(W, -W.T).item() == pytest.approx(180.0)
    B = np.array([[0.0, 1.0], [0.0, 0.0], [0.0, 0.0]])  # ⟨Wᵀ, B⟩ = W[1,0] = 0
    ang = est.alignment_angle(W, B)
    assert ang.item() == pytest.approx(90.0)
    assert ang.attrs["units"] == "deg"
    # 45°: B = Wᵀ + C with C ⟂ Wᵀ and ‖C‖ = ‖W‖
    C = np.zeros((3, 2))
    C[1, 0] = np.linalg.norm(W)
    assert est.alignment_angle(W, W.T + C).item() == pytest.approx(45.0)
    with pytest.raises(est.EstimatorError, match="transposed"):
        est.alignment_angle(W, W)


def test_alignment_angle_over_epochs():
    W = xr.DataArray(np.stack([np.eye(2), np.eye(2)]), dims=("epoch", "out", "in"))
    B = xr.DataArray(np.stack([np.eye(2), np.array([[0.0, 1.0], [1.0, 0.0]])]), dims=("epoch", "in", "out"))
    np.testing.assert_allclose(est.alignment_angle(W, B).values, [0.0, 90.0], atol=1e-6)


def test_population_stats_known_values():
    # neuron i has rate m_i + a_i sin(ωt): means m = (1, 2, 3) → mean 2, CV = std/mean = 0.8165/2;
    # neurons 0, 1 in phase, 2 in anti-phase → correlations (1, −1, −1), mean −1/3.
    t = np.arange(0, 1000, DT)
    s = np.sin(2 * np.pi * 0.01 * t)
    r = np.stack([1 + 0.5 * s, 2 + 0.5 * s, 3 - 0.5 * s], axis=1)[:, None, :]  # (time, batch, neuron)
    da = _da(r, t, dims=("time", "batch", "neuron"), units="Hz")
    ps = est.population_stats(da)
    assert ps["mean_rate"].dims == ("batch",)
    assert ps["mean_rate"].item() == pytest.approx(2.0, rel=1e-3)
    assert ps["mean_rate"].attrs["units"] == "Hz"
    assert ps["cv"].item() == pytest.approx(np.std([1, 2, 3]) / 2, rel=1e-3)
    assert ps["mean_correlation"].item() == pytest.approx(-1 / 3, rel=1e-6)


def test_learning_curves_summaries():
    # loss decreasing then rising at the last epoch → best = min at epoch 3; accuracy best = max.
    loss = np.array([1.0, 0.5, 0.3, 0.2, 0.25])
    acc = np.array([0.1, 0.5, 0.7, 0.9, 0.85])
    ds = xr.Dataset({"loss": ("epoch", loss, {"units": "1"}), "accuracy": ("epoch", acc)},
                    coords={"epoch": np.arange(5)})
    lc = est.learning_curves(ds)
    assert lc["loss_best"].item() == 0.2 and lc["loss_best_epoch"].item() == 3
    assert lc["loss_final"].item() == 0.25
    assert lc["accuracy_best"].item() == 0.9 and lc["accuracy_best_epoch"].item() == 3
    assert lc["accuracy"].attrs["units"] == "1"
    with pytest.raises(est.EstimatorError, match="epoch"):
        est.learning_curves(ds.rename(epoch="step"))


# ------------------------------------------------------------------------------ accessor & plots


def test_accessor_delegates_to_estimators():
    t = np.arange(0, 1000, DT)
    ds = xr.Dataset({"u": _da(np.sin(2 * np.pi * 0.02 * t), t),
                     "r": _da(np.sin(2 * np.pi * 0.02 * (t - 2.5)), t)})
    assert ds.mc.lag("u", "r", max_lag=10).item() == pytest.approx(2.5, rel=0.01)
    assert ds["u"].mc.lag(ds["r"], max_lag=10).item() == pytest.approx(2.5, rel=0.01)
    gp = ds["u"].mc.gain_phase(ds["r"], [0.02])
    assert gp["phase"].item() == pytest.approx(-2 * np.pi * 0.02 * 2.5, rel=0.01)
    with pytest.raises(est.EstimatorError, match="'v' not in dataset"):
        ds.mc.settling_time("v")


def test_plots_render_with_agg(tmp_path):
    t = np.arange(0, 50, 1.0)
    v = xr.DataArray(np.random.default_rng(0).normal(size=(t.size, 2, 4, 3)),
                     dims=("time", "batch", "neuron", "compartment"),
                     coords={"time": ("time", t, {"units": "ms"}), "compartment": ["soma", "basal", "apical"]},
                     attrs={"units": "mV", "long_name": "voltage"})
    fig = v.mc.plot_traces(neuron=1)
    assert [l.get_label() for l in fig.axes[0].lines] == ["soma", "basal", "apical"]
    assert fig.axes[0].get_ylabel() == "voltage [mV]"
    fig.savefig(tmp_path / "traces.png")
    fig = mca.plot_heatmap(v.isel(compartment=0))
    assert fig.axes[0].images[0].get_array().shape == (4, 50)
    metrics = xr.Dataset({"loss": ("epoch", [1.0, 0.5, 0.2])})
    assert len(mca.plot_learning_curves(metrics).axes) == 1
    table = xr.Dataset({"lr": ("run", [0.1, 0.01]), "loss": ("run", [0.3, 0.2], {"units": "1"})},
                       coords={"run": ["a", "b"]})
    fig = mca.plot_sweep_table(table)
    fig.savefig(tmp_path / "table.png")
    assert (tmp_path / "table.png").stat().st_size > 0
