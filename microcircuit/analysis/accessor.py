"""``.mc`` accessor on :class:`xarray.Dataset` and :class:`xarray.DataArray`.

Importing :mod:`microcircuit.analysis` registers it::

    import microcircuit.analysis  # noqa: F401
    rec["hidden"].ds.mc.lag("u", "r")            # variables by name
    rec["hidden"]["u"].mc.gain_phase(r, frequency_hz=[2.0, 5.0])   # DataArray methods take the other signal
    rec["hidden"].ds.mc.plot_traces()            # v (compartments) where the model has it, else u
    rec["hidden"].ds.mc.plot_traces(["u", "r"])  # several variables: one panel, legend, y-label naming both
    rec["metrics"].ds.mc.learning_curves()

Each method delegates to :mod:`microcircuit.analysis.estimators` or
:mod:`microcircuit.analysis.plots` (see those for formulas and units).
"""

from __future__ import annotations

import warnings

import xarray as xr

from . import estimators as _est
from . import plots as _plots

__all__ = ["MicrocircuitDataArrayAccessor", "MicrocircuitDatasetAccessor"]


class _Base:
    def __init__(self, obj):
        self._obj = obj


def _register(kind):
    """Register under ``mc``; a re-import (``importlib.reload``) silently replaces our own class."""
    reg = xr.register_dataarray_accessor if kind == "da" else xr.register_dataset_accessor
    target = xr.DataArray if kind == "da" else xr.Dataset

    def deco(cls):
        existing = target.__dict__.get("mc")
        ours = getattr(getattr(existing, "_accessor", None), "__module__", None) == __name__
        with warnings.catch_warnings():
            if ours:
                warnings.simplefilter("ignore")
            return reg("mc")(cls)

    return deco


@_register("da")
class MicrocircuitDataArrayAccessor(_Base):
    """``da.mc``: estimators with this DataArray as the first argument."""

    def lag(self, y, dim="time", max_lag=None):
        """Lag of ``y`` behind this signal (ms); see :func:`estimators.lag`."""
        return _est.lag(self._obj, y, dim=dim, max_lag=max_lag)

    def gain_phase(self, y, freqs=None, dim="time", window="hann", *, frequency_hz=None):
        """Transfer function from this signal to ``y`` at ``frequency_hz`` (Hz) or ``freqs`` (cycles per
        ms); see :func:`estimators.gain_phase`."""
        return _est.gain_phase(self._obj, y, freqs, dim=dim, window=window, frequency_hz=frequency_hz)

    def settling_time(self, dim="time", tol=0.02):
        return _est.settling_time(self._obj, dim=dim, tol=tol)

    def phase_advance(self, u, freq=None, dim="time", *, frequency_hz=None):
        """Phase advance of this rate over membrane potential ``u``."""
        return _est.phase_advance(self._obj, u, freq, dim=dim, frequency_hz=frequency_hz)

    def population_stats(self, dim="time", neuron_dim="neuron"):
        return _est.population_stats(self._obj, dim=dim, neuron_dim=neuron_dim)

    def alignment_angle(self, B_feedback):
        """Angle (deg) between vec(Wᵀ) (this array as W) and vec(B)."""
        return _est.alignment_angle(self._obj, B_feedback)

    def plot_traces(self, **kw):
        return _plots.plot_traces(self._obj, **kw)

    def heatmap(self, **kw):
        return _plots.plot_heatmap(self._obj, **kw)


@_register("ds")
class MicrocircuitDatasetAccessor(_Base):
    """``ds.mc``: estimators taking variable names (or DataArrays) of this Dataset."""

    def _get(self, v):
        if isinstance(v, xr.DataArray):
            return v
        if v not in self._obj.data_vars:
            raise _est.EstimatorError(f"variable {v!r} not in dataset (variables {list(self._obj.data_vars)})")
        return self._obj[v]

    def lag(self, x="u", y="r", dim="time", max_lag=None):
        return _est.lag(self._get(x), self._get(y), dim=dim, max_lag=max_lag)

    def gain_phase(self, x, y, freqs=None, dim="time", window="hann", *, frequency_hz=None):
        return _est.gain_phase(self._get(x), self._get(y), freqs, dim=dim, window=window,
                               frequency_hz=frequency_hz)

    def settling_time(self, var="u", dim="time", tol=0.02):
        return _est.settling_time(self._get(var), dim=dim, tol=tol)

    def phase_advance(self, freq=None, r="r", u="u", dim="time", *, frequency_hz=None):
        return _est.phase_advance(self._get(r), self._get(u), freq, dim=dim, frequency_hz=frequency_hz)

    def population_stats(self, var="r", dim="time", neuron_dim="neuron"):
        return _est.population_stats(self._get(var), dim=dim, neuron_dim=neuron_dim)

    def learning_curves(self, dim="epoch"):
        return _est.learning_curves(self._obj, dim=dim)

    def plot_traces(self, var=None, **kw):
        """Traces of one neuron: ``var`` a name or a list of names (one panel, a legend entry per
        variable and compartment). Default: ``v`` (all compartments) where the model has it, else
        ``u``, else the first variable along time, so a rate population plots too."""
        names = [var] if isinstance(var, (str, xr.DataArray)) else list(var or [self._default_trace()])
        return _plots.plot_traces([self._get(v) for v in names], **kw)

    def _default_trace(self):
        for name in ("v", "u"):
            if name in self._obj.data_vars:
                return name
        timed = [v for v, a in self._obj.data_vars.items() if any(str(d).startswith("time") for d in a.dims)]
        if not timed:
            raise _est.EstimatorError(f"plot_traces: no variable along time (variables {list(self._obj.data_vars)})")
        return timed[0]

    def heatmap(self, var="r", **kw):
        return _plots.plot_heatmap(self._get(var), **kw)

    def plot_learning_curves(self, **kw):
        return _plots.plot_learning_curves(self._obj, **kw)
