r"""From a current-clamp recording to a model neuron, and back into physical units.

The rate neuron (``models/rate.py``) is dimensionless. With ``tau_r = 0`` (a leaky integrator) and
the injected current entering as basal input :math:`x`:

.. math::

    \tau_m \dot u = -u + x, \qquad r = \varphi(u) = \frac{r_{max}}{1 + e^{-\beta (u - \theta)}}

A :class:`PhysicalScale` puts it in the units of a recording (mV, Hz, pA):

.. math::

    V = V_{rest} + m\,u \;[\mathrm{mV}], \qquad f = \nu\, r \;[\mathrm{Hz}], \qquad
    I = q\,x \;[\mathrm{pA}], \qquad m = R_{in}\, q \cdot 10^{-3}

(``mV_per_unit`` m, ``rate_unit_Hz`` ν, ``pA_per_unit`` q; the last identity is Ohm's law at steady
state, :math:`u_\infty = x`, with :math:`R_{in}` in MΩ = mV/nA).  With the cell's f–I fit
:math:`f(I) = f_{max} / (1 + e^{-(I - I_{1/2})/s})` the model reproduces it when
:math:`r_{max} = f_{max}/\nu`, :math:`\beta = q/s`, :math:`\theta = I_{1/2}/q`
(softplus fits map onto ``soft_rectifier`` the same way).

* :func:`cell_fit` — the ephys fit of one cell: τ_m, f–I transfer function, R_in, V_rest, V_th.
* :func:`fit_to_population` — that fit → (population parameters, :class:`PhysicalScale`).
* :func:`population_from_cell` — both in one call.
* :func:`simulate_steps` — the fitted neuron under the cell's current steps, in mV and Hz.
* :func:`compare_model` — model and cell side by side (f–I, step responses, τ_m), table and figure.

Example (B6: f–I within 4.3 % at every step, τ_m 12.70 vs 12.75 ms)::

    sweeps = load_bundled_cell("B6")
    params, scale, fit = population_from_cell(sweeps)
    comparison = compare_model(sweeps, params, scale)
    comparison.fi, comparison.tau_m, comparison.figure

Limits: the model is passive below its rate nonlinearity (V = V_rest + R_in I at steady state, no
spikes, no adaptation), and a logistic is not zero at rest (ν φ(0) ≈ 2.6 Hz for B6, 1.3 Hz for
B8, where the cell is silent).  R_in comes from the charging curve before the first spike of the weakest step
(:func:`fit_input_resistance`): the bundled cells have no subthreshold step.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import xarray as xr

from . import ephys

__all__ = ["PhysicalScale", "cell_fit", "fit_to_population", "population_from_cell", "simulate_steps",
           "compare_model", "ModelComparison", "fit_input_resistance", "rate_errors"]

DV_DT_THRESHOLD = 10.0   # mV/ms: spike onset where dV/dt first exceeds this (eFEL's DerivativeThreshold)
MIN_GAP_MS = 10.0        # a decay is usable for tau_m when the last spike is >= this before the step end


@dataclass(frozen=True)
class PhysicalScale:
    """Units of the dimensionless model: ``V = v_rest_mV + mV_per_unit·u`` (mV), ``f = rate_unit_Hz·r``
    (Hz), ``I = pA_per_unit·x`` (pA; x the basal input).  ``v_threshold_mV`` is the cell's spike
    threshold, kept for plots (the rate model has no spike threshold: its rate threshold is the
    rheobase of the f–I fit)."""

    v_rest_mV: float
    mV_per_unit: float
    rate_unit_Hz: float
    pA_per_unit: float
    v_threshold_mV: float = float("nan")

    @property
    def input_resistance_MOhm(self) -> float:
        """R_in = m / q (mV/pA = GΩ) · 10³ = MΩ."""
        return self.mV_per_unit / self.pA_per_unit * 1e3

    def to_mV(self, u):
        return self.v_rest_mV + self.mV_per_unit * np.asarray(u, float)

    def from_mV(self, v):
        return (np.asarray(v, float) - self.v_rest_mV) / self.mV_per_unit

    def to_Hz(self, r):
        return self.rate_unit_Hz * np.asarray(r, float)

    def from_Hz(self, f):
        return np.asarray(f, float) / self.rate_unit_Hz

    def to_pA(self, x):
        return self.pA_per_unit * np.asarray(x, float)

    def from_pA(self, current):
        return np.asarray(current, float) / self.pA_per_unit


def _first_spike_index(v: np.ndarray, t: np.ndarray, t0: float, threshold: float = ephys.EFEL_THRESHOLD_MV):
    up = np.nonzero((v[:-1] < threshold) & (v[1:] >= threshold) & (t[1:] >= t0))[0] + 1
    return int(up[0]) if up.size else None


def fit_input_resistance(trace: xr.DataArray, stim_start: float, amplitude: float, tau: float,
                         skip: float = 1.0, before_spike: float = 5.0) -> float:
    r"""Input resistance R_in (MΩ) from the charging curve of one step with τ_m known.

    Linear least squares of :math:`V(t) = V_0 + R_{in} I (1 - e^{-(t - t_0)/\tau_m})` on
    :math:`t \in [t_0 + \text{skip}, t_{spike} - \text{before\_spike}]` (ms; :math:`t_0` the step
    onset, :math:`t_{spike}` the first spike), I = ``amplitude`` (pA), :math:`R_{in} I` in mV.
    On suprathreshold steps (the only ones the bundled cells have) the window ends well before the
    spike, but subthreshold active currents still add to the passive charging: an estimate.
    """
    v = np.asarray(ephys._voltage_in_mV(trace).values, float)
    t = ephys._time_in_ms(trace)
    k = _first_spike_index(v, t, stim_start)
    t_end = t[k] - before_spike if k is not None else stim_start + 5 * tau
    sel = (t >= stim_start + skip) & (t <= t_end)
    if np.count_nonzero(sel) < 5:
        raise ValueError(f"fit_input_resistance: fewer than 5 samples in [{stim_start + skip:g}, {t_end:g}] ms")
    charge = 1.0 - np.exp(-(t[sel] - stim_start) / tau)
    (v0, dv), *_ = np.linalg.lstsq(np.column_stack([np.ones(charge.size), charge]), v[sel], rcond=None)
    return float(dv / amplitude * 1e3)     # mV / pA = GΩ -> MΩ


def _spike_threshold_mV(trace: xr.DataArray, stim_start: float) -> float:
    """V (mV) where dV/dt first exceeds ``DV_DT_THRESHOLD`` before the first spike after ``stim_start``."""
    v = np.asarray(ephys._voltage_in_mV(trace).values, float)
    t = ephys._time_in_ms(trace)
    k = _first_spike_index(v, t, stim_start)
    if k is None:
        return float("nan")
    i0 = int(np.searchsorted(t, stim_start))
    fast = np.nonzero(np.gradient(v, t)[i0:k + 1] > DV_DT_THRESHOLD)[0]
    return float(v[i0 + fast[0]]) if fast.size else float("nan")


def _membrane_tau(sweeps: xr.Dataset, t0: float, t1: float) -> tuple[float, np.ndarray]:
    """Median τ_m (ms) of the decays after the step end whose last spike is >= ``MIN_GAP_MS`` earlier
    (``ephys.fit_membrane_tau(window="offset", baseline="stim_start")``, eFEL's window and reference),
    and the mask of the sweeps used."""
    fits = [ephys.fit_membrane_tau(sweeps["voltage"].isel(sweep=k), t0, t1, window="offset", baseline="stim_start")
            for k in range(sweeps.sizes["sweep"])]
    used = np.array([f.attrs["last_spike_to_end_ms"] >= MIN_GAP_MS for f in fits])
    if not used.any():
        warnings.warn(f"no sweep ends {MIN_GAP_MS:g} ms after its last spike: tau_m from all decays "
                      "(after-hyperpolarisation may shorten it)", ephys.FitWarning, stacklevel=3)
        used[:] = True
    return float(np.median([f["tau"].item() for f, u in zip(fits, used) if u])), used


def cell_fit(sweeps: xr.Dataset, transfer: str = "sigmoid") -> xr.Dataset:
    """The ephys fit of one cell from its current-step sweeps (layout of :func:`ephys.load_bundled_cell`).

    Scalars: ``tau_m`` (ms; median decay fit, :func:`_membrane_tau`), ``v_rest`` (mV; median over
    sweeps of the mean V in [0.9·stim_start, stim_start], eFEL's ``voltage_base``), ``v_threshold``
    (mV; spike onset, dV/dt > 10 mV/ms, of the weakest step), ``input_resistance`` (MΩ;
    :func:`fit_input_resistance` on the weakest step) and the transfer-function fit of the f–I
    curve (:func:`ephys.fit_transfer_function`, ``transfer`` model).  Variable ``rate`` (Hz, along
    ``amplitude`` in pA) holds the measured f–I points.
    """
    t0, t1 = float(sweeps.attrs["stim_start"]), float(sweeps.attrs["stim_end"])
    rate = ephys.fi_curve(sweeps)
    tf = ephys.fit_transfer_function(None, rate, model=transfer)
    tau, used = _membrane_tau(sweeps, t0, t1)
    v = sweeps["voltage"]
    t = ephys._time_in_ms(v)
    v_rest = float(np.median(v.isel(time=(t >= 0.9 * t0) & (t <= t0)).mean("time").values))
    weakest = int(np.argmin(sweeps["amplitude"].values))
    trace = v.isel(sweep=weakest)
    r_in = fit_input_resistance(trace, t0, float(sweeps["amplitude"][weakest]), tau)
    out = tf.copy()
    out["tau_m"] = ((), tau, {"units": "ms", "long_name": "membrane time constant", "n_sweeps": int(used.sum())})
    out["v_rest"] = ((), v_rest, {"units": "mV", "long_name": "resting potential"})
    out["v_threshold"] = ((), _spike_threshold_mV(trace, t0), {"units": "mV", "long_name": "spike threshold"})
    out["input_resistance"] = ((), r_in, {"units": "MOhm", "long_name": "input resistance"})
    out["rate"] = rate
    out.attrs.update(cell=sweeps.attrs.get("cell", ""), stim_start=t0, stim_end=t1)
    return out


def fit_to_population(fit: xr.Dataset, mV_per_unit: float = 1.0, rate_unit_Hz: float | None = None):
    r"""Population parameters and :class:`PhysicalScale` of a :func:`cell_fit`.

    ``mV_per_unit`` m sets the potential unit (default 1: u is the depolarisation in mV); then
    :math:`q = 10^3 m / R_{in}` pA per unit input.  ``rate_unit_Hz`` ν defaults to the fit's
    saturation rate (the largest measured rate for non-saturating fits), so that r ≤ 1.

    * ``sigmoid`` → ``logistic`` (r_max, β, θ) = (f_max/ν, q/s, I½/q)
    * ``softplus`` → ``soft_rectifier`` (γ, β, θ) = (g·k/ν, q/k, θ_I/q)

    Returns ``(params, scale)``: ``params`` a dict for ``Circuit.add_population(..., "rate", n,
    **params)`` with ``tau_m`` = the fitted τ_m and ``tau_r = 0`` (leaky: r = φ(u), no prospective lead).
    """
    model = fit.attrs["model"]
    if rate_unit_Hz is None:
        sat = float(fit["saturation"])
        rate_unit_Hz = sat if np.isfinite(sat) else float(fit["rate"].max())
    q = 1e3 * mV_per_unit / float(fit["input_resistance"])
    nu = float(rate_unit_Hz)
    if model == "sigmoid":
        activation, ap = "logistic", [float(fit["f_max"]) / nu, q / float(fit["s"]), float(fit["I_half"]) / q]
    elif model == "softplus":
        k = float(fit["k"])
        activation, ap = "soft_rectifier", [float(fit["g"]) * k / nu, q / k, float(fit["theta"]) / q]
    else:
        raise ValueError(f"fit_to_population: transfer model {model!r} has no activation; fit 'sigmoid' or 'softplus'")
    params = {"tau_m": float(fit["tau_m"]), "tau_r": 0.0, "activation": activation, "activation_params": ap}
    scale = PhysicalScale(float(fit["v_rest"]), float(mV_per_unit), nu, q, float(fit["v_threshold"]))
    return params, scale


def population_from_cell(sweeps: xr.Dataset, transfer: str = "sigmoid", mV_per_unit: float = 1.0,
                         rate_unit_Hz: float | None = None):
    """One call from recording to model: ``(params, scale, fit)`` =
    :func:`fit_to_population` (:func:`cell_fit` (sweeps)) plus the fit itself."""
    fit = cell_fit(sweeps, transfer=transfer)
    params, scale = fit_to_population(fit, mV_per_unit=mV_per_unit, rate_unit_Hz=rate_unit_Hz)
    return params, scale, fit


def simulate_steps(params: dict, scale: PhysicalScale, amplitudes_pA, stim_start: float, stim_end: float,
                   duration: float, dt: float = 0.1) -> xr.Dataset:
    """The fitted neuron under current steps, run by the package's engine, in physical units.

    One model neuron per amplitude I_k (pA), each driven one-to-one (weight 1) by an input neuron
    carrying the step x_k = I_k / q on [stim_start, stim_end) ms.  Returns a Dataset along
    (``time`` ms, ``amplitude`` pA): ``voltage`` (mV) = V_rest + m·u and ``rate`` (Hz) = ν·r.
    """
    from . import Circuit, Recording, Simulation, compile as compile_circuit
    from .stimuli import Step

    amps = np.asarray(amplitudes_pA, float).ravel()
    c = Circuit("fitted_cell")
    c.add_population("current", "input", amps.size)
    c.add_population("neuron", "rate", amps.size, **params)
    c.add_projection("current", "neuron", "basal", name="injection", connector={"kind": "one_to_one"},
                     weights={"dist": "constant", "value": 1.0})
    step = Step("current", amplitude=scale.from_pA(amps), start=stim_start, stop=stim_end)
    sim = Simulation(compile_circuit(c, dt=dt, stimuli=[step]), recordings=[Recording("neuron", ["u", "r"])])
    sim.run(steps=int(np.ceil(duration / dt - 1e-9)))
    rec = sim.results()["neuron"].to_dataset().isel(batch=0)
    coords = {"time": ("time", rec["time"].values, {"units": "ms", "long_name": "time"}),
              "amplitude": ("amplitude", amps, {"units": "pA", "long_name": "step amplitude"})}
    dims = ("time", "amplitude")
    voltage = (dims, scale.to_mV(rec["u"].values), {"units": "mV", "long_name": "membrane potential (model)"})
    rate = (dims, scale.to_Hz(rec["r"].values), {"units": "Hz", "long_name": "firing rate (model)"})
    return xr.Dataset({"voltage": voltage, "rate": rate}, coords=coords,
                      attrs={"stim_start": stim_start, "stim_end": stim_end, "dt": dt})


@dataclass
class ModelComparison:
    """Result of :func:`compare_model`: ``fi`` (Dataset along ``amplitude``: ``cell``, ``model`` in Hz,
    ``relative_error``), ``tau_m`` (Dataset: ``cell``, ``model`` in ms, ``relative_error``), the model
    ``traces`` (:func:`simulate_steps`) and the ``figure`` (matplotlib Figure, shown inline in Jupyter)."""

    fi: xr.Dataset
    tau_m: xr.Dataset
    traces: xr.Dataset
    figure: object

    def _repr_html_(self):
        return self.fi.to_dataframe()._repr_html_()


def rate_errors(cell_Hz, model_Hz) -> np.ndarray:
    r"""Per-current error of a model f–I curve: :math:`(f_{model} - f_{cell}) / f_{cell}` where the cell
    fires, and :math:`f_{model} / \max f_{cell}` where it is silent (a relative error is undefined at
    0 Hz; this charges a silent point the model's rate as a fraction of the cell's largest rate)."""
    cell, model = np.asarray(cell_Hz, float), np.asarray(model_Hz, float)
    fires = cell > 0
    ref = np.where(fires, cell, max(float(cell.max()), 1e-12))
    return np.where(fires, model - cell, model) / ref


def _model_tau(traces: xr.Dataset, t0: float, t1: float) -> float:
    """Median τ (ms) of the model's decays after the step end, fitted exactly as the cell's."""
    taus = [ephys.fit_membrane_tau(traces["voltage"].isel(amplitude=k), t0, t1, window="offset",
                                   baseline="stim_start")["tau"].item() for k in range(traces.sizes["amplitude"])]
    return float(np.median(taus))


def compare_model(sweeps: xr.Dataset, params: dict, scale: PhysicalScale, dt: float = 0.1,
                  figure=None) -> ModelComparison:
    """Simulate the model neuron (``params``, ``scale``: :func:`fit_to_population`) under every
    current step of ``sweeps`` and compare with the cell.

    f–I: model rate = mean of f = ν·r over [stim_start, stim_end) — the cell's definition, spikes in
    the window / its length — against :func:`ephys.fi_curve`; errors by :func:`rate_errors`.
    τ_m: the offset-decay fit (:func:`_membrane_tau`) on the cell and the same fit on the model's V.
    ``figure``: a matplotlib Figure to draw into (default: a new one, 11 × 7.5 in).
    """
    t0, t1 = float(sweeps.attrs["stim_start"]), float(sweeps.attrs["stim_end"])
    cell_rate = ephys.fi_curve(sweeps)
    amps = cell_rate["amplitude"].values
    t_cell = ephys._time_in_ms(sweeps["voltage"])
    traces = simulate_steps(params, scale, amps, t0, t1, duration=float(t_cell[-1]), dt=dt)
    in_step = (traces["time"] >= t0) & (traces["time"] < t1)
    model_rate = traces["rate"].isel(time=in_step.values).mean("time").values
    amp = ("amplitude", amps, {"units": "pA", "long_name": "step amplitude"})
    fi = xr.Dataset({"cell": ("amplitude", cell_rate.values, {"units": "Hz"}),
                     "model": ("amplitude", model_rate, {"units": "Hz"}),
                     "relative_error": ("amplitude", rate_errors(cell_rate.values, model_rate), {"units": "1"})},
                    coords={"amplitude": amp})
    (tau_cell, used), tau_model = _membrane_tau(sweeps, t0, t1), _model_tau(traces, t0, t1)
    tau = xr.Dataset({"cell": ((), tau_cell, {"units": "ms"}), "model": ((), tau_model, {"units": "ms"}),
                      "relative_error": ((), (tau_model - tau_cell) / tau_cell, {"units": "1"})})
    fig = _draw(figure, sweeps, traces, fi, tau, used, params, scale)
    return ModelComparison(fi, tau, traces, fig)


def _instantaneous_rate(v: np.ndarray, t: np.ndarray, t0: float, t1: float):
    """(spike time ms, 1/ISI Hz) of the spikes in [t0, t1) (upward crossings of eFEL's −20 mV)."""
    up = np.nonzero((v[:-1] < ephys.EFEL_THRESHOLD_MV) & (v[1:] >= ephys.EFEL_THRESHOLD_MV))[0] + 1
    ts = t[up][(t[up] >= t0) & (t[up] < t1)]
    return ts[1:], 1e3 / np.diff(ts)


def _normalised_decay(v: np.ndarray, v_rest: float) -> np.ndarray:
    """(V − V_rest) / (V(first sample) − V_rest): a pure exponential decay is a straight line on a log axis."""
    return (v - v_rest) / (v[0] - v_rest)


def _draw(figure, sweeps, traces, fi, tau, used, params, scale):
    """Four panels: f–I, membrane potential, decay after the step, firing rate over time."""
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    from .activations import activation_id, phi_np

    fig = figure if figure is not None else Figure(figsize=(11, 7.5))
    (a_fi, a_v), (a_tau, a_r) = fig.subplots(2, 2)
    t0, t1 = float(sweeps.attrs["stim_start"]), float(sweeps.attrs["stim_end"])
    amps = fi["amplitude"].values
    colors = colormaps["viridis"](np.linspace(0.0, 0.85, amps.size))
    order = np.argsort(sweeps["amplitude"].values)
    t = ephys._time_in_ms(sweeps["voltage"])
    tm = traces["time"].values

    grid = np.linspace(0.0, 1.15 * amps.max(), 200)
    curve = scale.to_Hz(phi_np(scale.from_pA(grid), activation_id(params["activation"]), params["activation_params"]))
    a_fi.plot(amps, fi["cell"], "ko", ms=7, label="cell (spikes / 2 s)")
    a_fi.plot(amps, fi["model"], "s", color="C1", mfc="none", ms=9, label="model (mean rate in step)")
    a_fi.plot(grid, curve, "-", color="C1", lw=1, label=r"model $\nu\,\varphi(I/q)$")
    a_fi.set(xlabel="injected current I (pA)", ylabel="firing rate f (Hz)",
             title=f"f–I curve (max |error| {np.nanmax(np.abs(fi['relative_error'])):.1%})")

    for j in (0, amps.size - 1):
        v = sweeps["voltage"].isel(sweep=order[j]).values
        a_v.plot(t, v, color=colors[j], lw=0.4, alpha=0.6, label=f"cell, {amps[j]:.0f} pA")
        a_v.plot(tm, traces["voltage"].isel(amplitude=j), color=colors[j], lw=2, label=f"model, {amps[j]:.0f} pA")
    a_v.axhline(scale.v_threshold_mV, color="0.4", ls=":", lw=1, label="cell spike threshold")
    a_v.set(xlim=(t0 - 100, t1 + 200), xlabel="time (ms)", ylabel="membrane potential V (mV)",
            title="step responses (model: V = V_rest + m u)")

    i_start, win = int(np.searchsorted(t, t0)), (t >= t1 + 1.0) & (t <= t1 + 40.0)
    for j in range(amps.size):
        v = sweeps["voltage"].isel(sweep=order[j]).values
        note = "" if used[order[j]] else " (spike < 10 ms before: not used)"
        a_tau.plot(t[win] - t1, _normalised_decay(v[win], v[i_start]), color=colors[j], lw=1,
                   ls="-" if used[order[j]] else ":", label=f"cell, {amps[j]:.0f} pA{note}")
    winm = (tm >= t1 + 1.0) & (tm <= t1 + 40.0)
    a_tau.plot(tm[winm] - t1, _normalised_decay(traces["voltage"].isel(amplitude=0).values[winm], scale.v_rest_mV),
               "k--", lw=2, label="model (every step)")
    a_tau.axvspan(1.0, 10.0, color="0.9", zorder=0, label="τ fit window")
    a_tau.set(yscale="log", xlabel="time after step end (ms)", ylabel=r"$(V - V_{rest}) / (V_{1\,ms} - V_{rest})$",
              title=f"decay after the step: τ_m cell {float(tau['cell']):.2f} ms, model {float(tau['model']):.2f} ms")

    for j in range(amps.size):
        ts, inst = _instantaneous_rate(sweeps["voltage"].isel(sweep=order[j]).values, t, t0, t1)
        a_r.plot(ts, inst, ".", color=colors[j], ms=3)
        a_r.plot(tm, traces["rate"].isel(amplitude=j), color=colors[j], lw=2, label=f"{amps[j]:.0f} pA")
    a_r.plot([], [], "k.", label="cell (1 / ISI)")
    a_r.plot([], [], "k-", lw=2, label="model (ν r)")
    a_r.set(xlim=(t0 - 100, t1 + 200), xlabel="time (ms)", ylabel="firing rate f (Hz)", title="firing rate")
    for ax in (a_fi, a_v, a_tau, a_r):
        ax.legend(fontsize=7, frameon=False)
    cell = sweeps.attrs.get("cell", "cell")
    fig.suptitle(f"{cell}: recorded cell vs fitted rate neuron (τ_m {params['tau_m']:.1f} ms, "
                 f"R_in {scale.input_resistance_MOhm:.0f} MΩ, V_rest {scale.v_rest_mV:.1f} mV)")
    fig.tight_layout()
    return fig
