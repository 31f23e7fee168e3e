"""Estimators on labelled recordings (plain :mod:`xarray` objects).

Every function takes :class:`xarray.DataArray` / :class:`xarray.Dataset` inputs laid out as the
engine records them (dims ``time`` in ms, ``batch``, ``neuron``, optionally ``compartment``; a
``metrics`` dataset with dim ``epoch``) and returns labelled xarray objects whose variables carry a
``units`` attribute.  Dimensions other than the one reduced over are kept (broadcast), so one call
handles all neurons, batches and compartments at once.

Conventions
-----------
* Time is the coordinate of ``dim`` (ms in recordings).  Frequencies are given in **Hz** with
  ``frequency_hz=`` (as scenarios and stimuli give them), or, as before, in **cycles per time
  unit** with ``freqs=`` (1/ms = kHz when time is in ms: 5 Hz = 0.005); phase is in radians.
* A positive lag means ``y`` follows ``x``: ``y(t) ≈ x(t - L)``.
* A positive phase means ``y`` leads ``x``: ``H(f) = Y(f) / X(f) = |H| e^{iφ}``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

__all__ = [
    "EstimatorError",
    "lag",
    "gain_phase",
    "settling_time",
    "phase_advance",
    "learning_curves",
    "alignment_angle",
    "population_stats",
]


try:  # share the package's error base when present
    from ..errors import MicrocircuitError as _Base
except ImportError:  # pragma: no cover
    _Base = Exception


class EstimatorError(_Base, ValueError):
    """Input that an estimator cannot handle (missing dim, irregular sampling, bad shapes)."""


# --------------------------------------------------------------------------------------- helpers


def _time_units(da: xr.DataArray, dim: str) -> str:
    if dim in da.coords:
        return str(da.coords[dim].attrs.get("units", "ms" if dim == "time" else ""))
    return ""


def _inverse_units(units: str) -> str:
    return f"1/{units}" if units else "1/sample"


def _sample_step(da: xr.DataArray, dim: str) -> float:
    """Uniform sample spacing of ``dim`` (1.0 if the dim has no coordinate)."""
    if dim not in da.dims:
        raise EstimatorError(f"dimension {dim!r} not found; the array has dims {da.dims}")
    n = da.sizes[dim]
    if n < 3:
        raise EstimatorError(f"dimension {dim!r} has {n} samples; at least 3 are needed")
    if dim not in da.coords:
        return 1.0
    t = np.asarray(da.coords[dim].values, dtype=float)
    steps = np.diff(t)
    step = float(np.median(steps))
    if step <= 0 or not np.allclose(steps, step, rtol=1e-6, atol=1e-9 * abs(step)):
        raise EstimatorError(
            f"coordinate {dim!r} must be increasing and uniformly sampled "
            f"(steps range {steps.min():g}..{steps.max():g})"
        )
    return step


def _as_dataarray(x, name: str) -> xr.DataArray:
    if isinstance(x, xr.DataArray):
        return x
    raise EstimatorError(f"{name} must be an xarray.DataArray, got {type(x).__name__}")


# ------------------------------------------------------------------------------------------- lag


def _lag_1d(x: np.ndarray, y: np.ndarray, max_shift: int) -> float:
    """Sub-sample lag (in samples) of y relative to x by unbiased cross-correlation.

    c[k] = Σ_n w[n]x̃[n] w[n+k]ỹ[n+k] / Σ_n w[n]w[n+k]   (x̃, ỹ mean-removed, w Hann), |k| ≤ K;
    k* = argmax c; parabolic refinement δ = ½ (c[k*-1] - c[k*+1]) / (c[k*-1] - 2c[k*] + c[k*+1]).
    """
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        return np.nan
    n = x.size
    x = x - x.mean()
    y = y - y.mean()
    if not (np.any(x) and np.any(y)):
        return np.nan
    nfft = 1 << int(np.ceil(np.log2(2 * n - 1)))
    w = np.hanning(n + 2)[1:-1]
    fw = np.fft.rfft(w, nfft)
    cc = np.fft.irfft(np.conj(np.fft.rfft(x * w, nfft)) * np.fft.rfft(y * w, nfft), nfft)
    ww = np.fft.irfft(np.conj(fw) * fw, nfft)
    ks = np.arange(-max_shift, max_shift + 1)
    c = cc[ks % nfft] / ww[ks % nfft]
    i = int(np.argmax(c))
    delta = 0.0
    if 0 < i < c.size - 1:
        denom = c[i - 1] - 2.0 * c[i] + c[i + 1]
        if denom < 0:
            delta = 0.5 * (c[i - 1] - c[i + 1]) / denom
    return float(ks[i] + delta)


def lag(x: xr.DataArray, y: xr.DataArray, dim: str = "time", max_lag: float | None = None) -> xr.DataArray:
    """Lag of output ``y`` behind input ``x`` along ``dim`` by cross-correlation.

    The normalised, Hann-tapered cross-correlation
    ``c(k) = Σ_n w[n] x̃[n] w[n+k] ỹ[n+k] / Σ_n w[n] w[n+k]`` of the mean-removed signals (an
    unbiased estimate whose taper suppresses edge effects) is maximised over ``|k| ≤ max_lag``; a
    parabola through the peak and its two neighbours gives the sub-sample position.  ``L = k* · Δt``; ``L > 0`` means ``y(t) ≈ x(t - L)``.

    Parameters
    ----------
    x, y : DataArray
        Input and output; they must share ``dim`` (uniformly sampled) and broadcast on the others.
    dim : str
        Time dimension (ms in recordings).
    max_lag : float, optional
        Largest ``|lag|`` searched, in units of ``dim`` (default: a quarter of the record length).

    Returns
    -------
    DataArray
        Lag with the units of ``dim`` (``ms``), named ``lag``, one value per remaining index.
    """
    x = _as_dataarray(x, "x")
    y = _as_dataarray(y, "y")
    if dim not in y.dims:
        raise EstimatorError(f"dimension {dim!r} not found in y (dims {y.dims})")
    if x.sizes.get(dim) != y.sizes[dim]:
        raise EstimatorError(f"x and y differ in length along {dim!r}: {x.sizes.get(dim)} vs {y.sizes[dim]}")
    step = _sample_step(x, dim)
    n = x.sizes[dim]
    if max_lag is None:
        max_shift = max(1, n // 4)
    else:
        if not max_lag > 0:
            raise EstimatorError(f"max_lag must be positive, got {max_lag!r}")
        max_shift = int(min(n - 2, max(1, np.ceil(max_lag / step))))
    x, y = xr.broadcast(x, y)
    out = xr.apply_ufunc(
        _lag_1d,
        x.astype(float),
        y.astype(float),
        input_core_dims=[[dim], [dim]],
        vectorize=True,
        kwargs={"max_shift": max_shift},
    ) * step
    out.name = "lag"
    out.attrs = {"units": _time_units(x, dim) or "samples", "long_name": f"lag of output behind input along {dim}"}
    return out


# ------------------------------------------------------------------------------------ gain/phase


def _spectrum(da: xr.DataArray, freqs: np.ndarray, dim: str, window: str) -> xr.DataArray:
    """Windowed Fourier coefficients X(f) = Σ_n w[n] x̃[n] e^{-2πi f t_n} at the requested f."""
    t = np.asarray(da.coords[dim].values, dtype=float) if dim in da.coords else np.arange(da.sizes[dim], dtype=float)
    n = t.size
    if window == "hann":
        w = np.hanning(n)
    elif window in ("boxcar", "none", None):
        w = np.ones(n)
    else:
        raise EstimatorError(f"unknown window {window!r}; use 'hann' or 'boxcar'")
    t0 = t - t[0]
    basis = np.exp(-2j * np.pi * np.outer(t0, freqs)) * w[:, None]  # (time, frequency)
    basis_da = xr.DataArray(basis, dims=(dim, "frequency"))
    centred = da - da.mean(dim)
    return xr.dot(centred.astype(float), basis_da, dim=dim)


_PER_SECOND = {"ms": 1e-3, "s": 1.0}   # cycles per time unit of one Hz


def _frequencies(x: xr.DataArray, dim: str, freqs, frequency_hz) -> tuple[np.ndarray, str]:
    """``(cycles per unit of dim, frequency units)`` from exactly one of ``freqs`` (cycles per unit of
    ``dim``: the original argument, kept) or ``frequency_hz`` (Hz, as scenarios speak: a
    ``Sines(frequency_hz=5)`` stimulus is analysed with ``frequency_hz=5``)."""
    if (freqs is None) == (frequency_hz is None):
        raise EstimatorError("give the frequencies once: frequency_hz= (Hz) or freqs= (cycles per unit of "
                             f"{dim!r}, i.e. per ms for recordings: 5 Hz = 0.005)")
    tu = _time_units(x, dim)
    if frequency_hz is None:
        return np.atleast_1d(np.asarray(freqs, dtype=float)), _inverse_units(tu)
    if tu not in _PER_SECOND:
        raise EstimatorError(f"frequency_hz needs {dim!r} in ms or s to convert Hz, its units are {tu!r}; "
                             "give freqs= in cycles per unit of it instead")
    hz = np.atleast_1d(np.asarray(frequency_hz, dtype=float))
    return hz * _PER_SECOND[tu], "Hz"


def gain_phase(
    x: xr.DataArray,
    y: xr.DataArray,
    freqs: Sequence[float] | float | None = None,
    dim: str = "time",
    window: str = "hann",
    *,
    frequency_hz: Sequence[float] | float | None = None,
) -> xr.Dataset:
    """Transfer-function estimate ``H(f) = Y(f) / X(f)`` at the given frequencies.

    ``X(f) = Σ_n w[n] (x[n] - x̄) e^{-2πi f (t_n - t_0)}`` (likewise ``Y``) with a Hann window ``w``
    (projection onto windowed sines and cosines; no FFT grid, so any ``f`` may be asked for).
    Gain ``|H|`` (units of y per unit of x), phase ``arg H`` in rad (positive: y leads x).
    Works best with a (multi-)sine input whose components are separated by ≳ 2/T.

    Parameters
    ----------
    x, y : DataArray
        Input and output sharing ``dim``.
    frequency_hz : float or sequence of float
        Frequencies in Hz, the unit of scenarios and stimuli (``frequency_hz = [2.0, 3.7]``);
        converted with the units of ``dim`` (ms or s). The ``frequency`` coordinate is then in Hz.
    freqs : float or sequence of float
        Or: frequencies in cycles per unit of ``dim`` (1/ms = kHz for time in ms, so 5 Hz is
        0.005). The original argument, kept for existing code; give one of the two.
    window : {"hann", "boxcar"}

    Returns
    -------
    Dataset
        ``gain`` (units ``"<y units>/<x units>"`` or ``"1"``) and ``phase`` (``rad``), with a
        ``frequency`` dimension/coordinate (units ``Hz`` with ``frequency_hz``, else ``1/<time units>``).
    """
    x = _as_dataarray(x, "x")
    y = _as_dataarray(y, "y")
    if x.sizes.get(dim) != y.sizes.get(dim):
        raise EstimatorError(f"x and y differ in length along {dim!r}: {x.sizes.get(dim)} vs {y.sizes.get(dim)}")
    step = _sample_step(x, dim)
    f, funits = _frequencies(x, dim, freqs, frequency_hz)
    given = freqs if frequency_hz is None else frequency_hz
    if f.ndim != 1 or f.size == 0 or np.any(~np.isfinite(f)) or np.any(f <= 0):
        raise EstimatorError(f"frequencies must be positive finite numbers, got {given!r}")
    shown = np.atleast_1d(np.asarray(given, dtype=float))     # in the units the caller gave
    nyq = 0.5 / step
    if np.any(f >= nyq):
        raise EstimatorError(f"frequencies {shown[f >= nyq]} {funits} are at or above the Nyquist frequency "
                             f"{nyq:g} {_inverse_units(_time_units(x, dim))}")
    if dim in x.coords and dim in y.coords and not np.allclose(x.coords[dim].values, y.coords[dim].values):
        raise EstimatorError(f"x and y have different {dim!r} coordinates")
    X = _spectrum(x, f, dim, window)
    Y = _spectrum(y, f, dim, window)
    H = Y / X
    fcoord = xr.DataArray(shown, dims="frequency", attrs={"units": funits, "long_name": "frequency"})
    H = H.assign_coords(frequency=fcoord)
    xu, yu = x.attrs.get("units", ""), y.attrs.get("units", "")
    gunits = "1" if xu == yu else f"{yu or '1'}/{xu or '1'}"
    gain = np.abs(H)
    gain.attrs = {"units": gunits, "long_name": "gain |Y/X|"}
    phase = xr.apply_ufunc(np.angle, H)
    phase.attrs = {"units": "rad", "long_name": "phase arg(Y/X) (positive: output leads)"}
    return xr.Dataset({"gain": gain, "phase": phase})


# ------------------------------------------------------------------------------------- settling


def settling_time(x: xr.DataArray, dim: str = "time", tol: float = 0.02, final_fraction: float = 0.05) -> xr.DataArray:
    """Time for ``x`` to enter and stay within ``tol`` of its final value.

    ``x_final`` is the mean over the last ``final_fraction`` of the record; the band is
    ``|x(t) - x_final| ≤ tol · |x_final - x(t_0)|`` (if the step is zero, ``tol`` in absolute units).
    The result is ``t_s - t_0`` where ``t_s`` is the first sample after the last excursion out of
    the band (units of ``dim``).  0 if x never leaves the band.
    """
    x = _as_dataarray(x, "x")
    _sample_step(x, dim)
    if not 0 < tol < 1:
        raise EstimatorError(f"tol must be in (0, 1), got {tol!r}")
    t = np.asarray(x.coords[dim].values, dtype=float) if dim in x.coords else np.arange(x.sizes[dim], dtype=float)
    n_final = max(1, int(round(final_fraction * t.size)))

    def _settle(v: np.ndarray) -> float:
        if not np.all(np.isfinite(v)):
            return np.nan
        final = v[-n_final:].mean()
        span = abs(final - v[0])
        band = tol * span if span > 0 else tol
        outside = np.nonzero(np.abs(v - final) > band)[0]
        if outside.size == 0:
            return 0.0
        last = outside[-1]
        if last + 1 >= v.size:
            return np.nan
        return float(t[last + 1] - t[0])

    out = xr.apply_ufunc(_settle, x.astype(float), input_core_dims=[[dim]], vectorize=True)
    out.name = "settling_time"
    out.attrs = {"units": _time_units(x, dim) or "samples", "long_name": f"settling time to within {tol:.0%} of final value"}
    return out


# -------------------------------------------------------------------------------- phase advance


def phase_advance(r: xr.DataArray, u: xr.DataArray, freq: float | None = None, dim: str = "time", *,
                  frequency_hz: float | None = None) -> xr.Dataset:
    """Prospective phase advance of the rate ``r`` over the membrane potential ``u`` at ``freq``
    (cycles per unit of ``dim``) or ``frequency_hz`` (Hz; see :func:`gain_phase`).

    ``Δφ = arg(R(f)/U(f))`` in rad (positive: ``r`` leads ``u``) and the equivalent time advance
    ``Δt = Δφ / (2π f)`` (units of ``dim``).  For Latent Equilibrium ``r = φ(u + τ u̇)`` and, in
    the linear regime, ``Δφ = atan(2π f τ)``; for GLE's lead–lag filter
    ``Δφ = atan(ωτ_r) - atan(ωτ_m)`` relative to the input.
    """
    f, funits = _frequencies(u, dim, freq, frequency_hz)
    gp = gain_phase(u, r, f, dim=dim)
    ph = gp["phase"].isel(frequency=0, drop=True)
    tu = _time_units(r, dim)
    adv = ph / (2 * np.pi * float(f[0]))
    ph.attrs = {"units": "rad", "long_name": "phase advance of rate over membrane potential"}
    adv.attrs = {"units": tu or "samples", "long_name": "time advance of rate over membrane potential"}
    ds = xr.Dataset({"phase": ph, "time_advance": adv})
    ds.attrs["frequency"] = float(freq if frequency_hz is None else np.atleast_1d(frequency_hz)[0])
    ds.attrs["frequency_units"] = funits
    return ds


# ------------------------------------------------------------------------------ learning curves

_MAXIMISE = ("acc", "score", "r2", "alignment_cos")


def learning_curves(metrics_ds: xr.Dataset, dim: str = "epoch") -> xr.Dataset:
    """Learning curves and summaries from a ``metrics`` dataset (dim ``epoch``).

    For every numeric variable ``m`` with dim ``epoch`` the result holds the curve ``m`` (sorted by
    epoch) plus ``m_final`` (last finite value), ``m_best`` (max if the name contains
    ``acc``/``score``/``r2``, else min — losses and errors) and ``m_best_epoch``.  Units are copied
    (``"1"`` if absent); ``*_best_epoch`` has the units of the epoch coordinate (``"1"``).
    """
    if not isinstance(metrics_ds, xr.Dataset):
        raise EstimatorError(f"metrics_ds must be an xarray.Dataset, got {type(metrics_ds).__name__}")
    if dim not in metrics_ds.dims:
        raise EstimatorError(f"metrics dataset has no {dim!r} dimension (dims {tuple(metrics_ds.dims)})")
    ds = metrics_ds.sortby(dim) if dim in metrics_ds.coords else metrics_ds
    epochs = ds.coords[dim].values if dim in ds.coords else np.arange(ds.sizes[dim])
    out = {}
    for name, var in ds.data_vars.items():
        if dim not in var.dims or not np.issubdtype(var.dtype, np.number):
            continue
        units = var.attrs.get("units", "1")
        curve = var.astype(float).copy()
        curve.attrs = {**var.attrs, "units": units}
        out[name] = curve
        maximise = any(k in name.lower() for k in _MAXIMISE)
        vals = curve.transpose(dim, ...).values
        flat = vals.reshape(vals.shape[0], -1)
        finals, bests, best_ep = [], [], []
        for col in flat.T:
            ok = np.nonzero(np.isfinite(col))[0]
            if ok.size == 0:
                finals.append(np.nan), bests.append(np.nan), best_ep.append(np.nan)
                continue
            finals.append(col[ok[-1]])
            j = ok[np.argmax(col[ok])] if maximise else ok[np.argmin(col[ok])]
            bests.append(col[j])
            best_ep.append(float(epochs[j]))
        rest_dims = [d for d in curve.transpose(dim, ...).dims if d != dim]
        shape = [curve.sizes[d] for d in rest_dims]
        coords = {d: curve.coords[d] for d in rest_dims if d in curve.coords}
        out[f"{name}_final"] = xr.DataArray(np.reshape(finals, shape), dims=rest_dims, coords=coords,
                                            attrs={"units": units, "long_name": f"final {name}"})
        out[f"{name}_best"] = xr.DataArray(np.reshape(bests, shape), dims=rest_dims, coords=coords,
                                           attrs={"units": units, "long_name": f"best {name} ({'max' if maximise else 'min'})"})
        out[f"{name}_best_epoch"] = xr.DataArray(np.reshape(best_ep, shape), dims=rest_dims, coords=coords,
                                                 attrs={"units": "1", "long_name": f"epoch of best {name}"})
    if not out:
        raise EstimatorError(f"metrics dataset has no numeric variable along {dim!r}")
    res = xr.Dataset(out)
    res.attrs = dict(metrics_ds.attrs)
    return res


# ---------------------------------------------------------------------------------- alignment


def alignment_angle(W_forward, B_feedback) -> xr.DataArray:
    """Angle (degrees) between ``vec(Wᵀ)`` and ``vec(B)``.

    ``θ = arccos( ⟨Wᵀ, B⟩_F / (‖W‖_F ‖B‖_F) ) · 180/π`` with ``W`` of shape (n_out, n_in) over its
    last two dims and ``B`` of shape (n_in, n_out).  Leading dims (e.g. ``epoch``) broadcast:
    an angle is returned per leading index.  0° = feedback aligned with the transposed forward
    weights (backprop), 90° = orthogonal (random feedback at start of feedback alignment).
    """
    W = W_forward if isinstance(W_forward, xr.DataArray) else xr.DataArray(np.asarray(W_forward, dtype=float))
    B = B_feedback if isinstance(B_feedback, xr.DataArray) else xr.DataArray(np.asarray(B_feedback, dtype=float))
    if W.ndim < 2 or B.ndim < 2:
        raise EstimatorError(f"W and B must be at least 2-D, got shapes {W.shape} and {B.shape}")
    if W.shape[-2:] != B.shape[-1:-3:-1]:
        raise EstimatorError(f"B must have the shape of W transposed: W {W.shape[-2:]}, B {B.shape[-2:]}")
    wo, wi = W.dims[-2:]
    bi, bo = B.dims[-2:]
    Wt = W.rename({wo: "_out", wi: "_in"}).astype(float)
    Bt = B.rename({bi: "_in", bo: "_out"}).astype(float)
    Wt = Wt.drop_vars([c for c in ("_out", "_in") if c in Wt.coords])
    Bt = Bt.drop_vars([c for c in ("_out", "_in") if c in Bt.coords])
    dot = (Wt * Bt).sum(("_in", "_out"))
    norm = np.sqrt((Wt**2).sum(("_in", "_out")) * (Bt**2).sum(("_in", "_out")))
    cos = (dot / norm).clip(-1.0, 1.0)
    ang = xr.apply_ufunc(np.degrees, xr.apply_ufunc(np.arccos, cos))
    ang.name = "alignment_angle"
    ang.attrs = {"units": "deg", "long_name": "angle between vec(W^T) and vec(B)"}
    return ang


# ---------------------------------------------------------------------------- population stats


def population_stats(r: xr.DataArray, dim: str = "time", neuron_dim: str = "neuron") -> xr.Dataset:
    """Population statistics of rates ``r`` (dims include ``time`` and ``neuron``).

    * ``mean_rate`` = ⟨r⟩ over time and neurons (units of r);
    * ``cv`` = std_i(r̄_i) / mean_i(r̄_i) of the time-averaged rates r̄_i across neurons (1);
    * ``mean_correlation`` = mean over pairs i<j of the Pearson correlation of r_i(t), r_j(t)
      (neurons with zero variance are excluded; NaN if fewer than two remain) (1).

    Remaining dims (e.g. ``batch``, ``compartment``) are kept.
    """
    r = _as_dataarray(r, "r")
    for d in (dim, neuron_dim):
        if d not in r.dims:
            raise EstimatorError(f"rates need a {d!r} dimension; got dims {r.dims}")
    units = r.attrs.get("units", "1")
    rf = r.astype(float)
    rbar = rf.mean(dim)
    mean_rate = rbar.mean(neuron_dim)
    cv = rbar.std(neuron_dim) / mean_rate

    def _mean_corr(v: np.ndarray) -> float:  # v: (neuron, time)
        sd = v.std(axis=1)
        keep = sd > 0
        if keep.sum() < 2:
            return np.nan
        c = np.corrcoef(v[keep])
        iu = np.triu_indices(c.shape[0], k=1)
        return float(np.mean(c[iu]))

    corr = xr.apply_ufunc(_mean_corr, rf, input_core_dims=[[neuron_dim, dim]], vectorize=True)
    mean_rate.attrs = {"units": units, "long_name": "mean rate"}
    cv.attrs = {"units": "1", "long_name": "coefficient of variation of mean rates across neurons"}
    corr.attrs = {"units": "1", "long_name": "mean pairwise Pearson correlation"}
    return xr.Dataset({"mean_rate": mean_rate, "cv": cv, "mean_correlation": corr})
