"""Interchange with Neo (and through it Elephant, NWB and the readers Neo knows).

:func:`to_neo` turns a microcircuit recording — the ``xarray.DataTree`` of
:func:`microcircuit.open_recording` / ``Simulation.results()``, one population ``Dataset``, or a
sweep Dataset of :func:`microcircuit.ephys.load_icephys` / ``load_bundled_cell`` — into a
``neo.Block``.  Neo carries units with every array (the ``quantities`` package), so Elephant's
statistics get seconds and millivolts right without being told.

Needs the optional ``neo`` package (``pip install neo``).  This module is not called ``neo`` so
that ``import neo`` inside the package still finds the library.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from .ephys import EphysUnitsError, unit_scale

__all__ = ["to_neo"]


def _neo():
    try:
        import neo
        import quantities as pq
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("to_neo needs neo: pip install neo") from exc
    return neo, pq


def _quantity_unit(unit, pq):
    """The quantities unit for an xarray ``units`` attr; dimensionless for '', '1', None or an
    unknown string (the original kept in the annotations)."""
    if unit in (None, "", "1", "n/a"):
        return pq.dimensionless
    try:
        unit_scale(unit, str(unit))  # parses through the same checked path as the ephys loaders
        return pq.Quantity(1.0, str(unit).replace("µ", "u").replace("μ", "u")).units
    except EphysUnitsError:
        return pq.dimensionless


def _annotation(value):
    """A value Neo accepts as an annotation (numbers, strings, bools; others as str)."""
    if isinstance(value, (bool, int, float, str, np.integer, np.floating, np.bool_)):
        return value.item() if isinstance(value, np.generic) else value
    return str(value)


def _groups(recording) -> tuple[list[tuple[str, xr.Dataset]], dict]:
    """[(population, Dataset with a time dim)], root attrs."""
    if isinstance(recording, xr.DataTree):
        out = []
        for node in recording.subtree:
            ds = node.to_dataset(inherit=False)
            if "time" in ds.dims:
                name = str(node.attrs.get("population") or ds.attrs.get("population") or node.name or "root")
                out.append((name, ds))
        return out, dict(recording.attrs)
    if isinstance(recording, xr.Dataset):
        return [(str(recording.attrs.get("population", recording.attrs.get("cell", "recording"))), recording)], \
            dict(recording.attrs)
    raise TypeError(f"to_neo takes an xarray DataTree or Dataset, got {type(recording).__name__}")


def _signal(neo, pq, name: str, da: xr.DataArray, t_ms: np.ndarray, annotations: dict):
    """AnalogSignal (uniform time) or IrregularlySampledSignal of one variable, time first, other
    dims flattened into channels (C order) with their coordinate labels as array annotations."""
    da = da.transpose("time", ...)
    units = _quantity_unit(da.attrs.get("units"), pq)
    data = np.asarray(da.values, dtype=float).reshape(da.sizes["time"], -1)
    chan = {}
    if da.ndim > 1:
        grids = np.meshgrid(*[np.asarray(da.coords[d].values) if d in da.coords else np.arange(da.sizes[d])
                              for d in da.dims[1:]], indexing="ij")
        chan = {d: np.asarray(g).ravel() for d, g in zip(da.dims[1:], grids)}
        chan = {d: (v.astype(str) if v.dtype.kind not in "iufb" else v) for d, v in chan.items()}
    ann = {**annotations, "dims": ",".join(da.dims), "shape": ",".join(str(s) for s in da.shape),
           "units_attr": str(da.attrs.get("units", "")), "long_name": str(da.attrs.get("long_name", name))}
    dt = np.diff(t_ms)
    if t_ms.size > 1 and np.allclose(dt, dt[0], rtol=1e-6, atol=0):
        sig = neo.AnalogSignal(data, units=units, t_start=t_ms[0] * pq.ms, sampling_period=dt[0] * pq.ms,
                               name=name, array_annotations=chan, **ann)
    else:
        sig = neo.IrregularlySampledSignal(t_ms * pq.ms, data, units=units, time_units=pq.ms, name=name,
                                           array_annotations=chan, **ann)
    return sig


def _spike_train(neo, pq, name: str, v_mV: np.ndarray, t_ms: np.ndarray, threshold: float, annotations: dict):
    """SpikeTrain of the upward crossings of ``threshold`` (mV) by one voltage trace."""
    up = np.nonzero((v_mV[:-1] < threshold) & (v_mV[1:] >= threshold))[0] + 1
    dt = float(t_ms[1] - t_ms[0]) if t_ms.size > 1 else 0.0
    return neo.SpikeTrain(t_ms[up] * pq.ms, t_start=t_ms[0] * pq.ms, t_stop=(t_ms[-1] + dt) * pq.ms, name=name,
                          threshold_mV=float(threshold), **annotations)


def to_neo(recording, spike_threshold: float | None = None, name: str | None = None):
    """A recording as a ``neo.Block``, with units and annotations.

    * A DataTree / population Dataset (dims ``time``, ``batch``, ``neuron``[, ``compartment``]):
      one Segment ``"simulation"``; one AnalogSignal per population and time-dependent variable,
      named ``f"{population}_{variable}"``, time first and the other dims flattened into channels
      (C order; each channel's ``batch``/``neuron``/``compartment`` labels in
      ``array_annotations``).  Irregular time → IrregularlySampledSignal.
    * A sweep Dataset (dims ``sweep``, ``time``; :func:`~microcircuit.ephys.load_icephys`): one
      Segment per sweep holding its ``voltage`` and ``current`` signals; the sweep's
      ``amplitude`` and the stimulus window are segment annotations.

    Units come from each variable's ``units`` attr (``mV`` → ``pq.mV``, ``Hz``, ``pA`` ...;
    unknown or dimensionless ones → ``pq.dimensionless``, original string kept in the
    ``units_attr`` annotation); times in ms.  ``spike_threshold`` (mV): also add a SpikeTrain of
    upward threshold crossings per trace of every voltage variable, for Elephant's spike
    statistics.  The Block's annotations are the recording's root attrs (as strings where Neo
    needs it; ``name``, ``description`` ... prefixed ``attr_`` as Neo's own arguments); its name
    the scenario name or ``name``.
    """
    neo, pq = _neo()
    groups, attrs = _groups(recording)
    if not groups:
        raise ValueError("to_neo: the recording has no group with a 'time' dimension")
    reserved = {"name", "description", "file_origin", "rec_datetime", "file_datetime", "index"}
    ann = {(f"attr_{k}" if str(k) in reserved else str(k)): _annotation(v) for k, v in attrs.items()}
    block = neo.Block(name=name or str(attrs.get("scenario_name") or attrs.get("cell") or "microcircuit"), **ann)
    for pop, ds in groups:
        if "sweep" in ds.dims:
            _add_sweeps(neo, pq, block, pop, ds, spike_threshold)
        else:
            _add_population(neo, pq, block, pop, ds, spike_threshold)
    return block


def _time_ms(ds: xr.Dataset, pop: str) -> np.ndarray:
    unit = ds["time"].attrs.get("units")
    if unit is None:
        raise EphysUnitsError(f"to_neo: population {pop!r}: the time axis has no 'units' attribute "
                              "(set .coords['time'].attrs['units'] = 'ms')")
    return np.asarray(ds["time"].values, dtype=float) * unit_scale(unit, "ms", f"{pop!r} time axis")


def _add_population(neo, pq, block, pop: str, ds: xr.Dataset, spike_threshold):
    seg = next((s for s in block.segments if s.name == "simulation"), None)
    if seg is None:
        seg = neo.Segment(name="simulation")
        block.segments.append(seg)
    t = _time_ms(ds, pop)
    for var, da in ds.data_vars.items():
        if "time" not in da.dims or not np.issubdtype(da.dtype, np.number):
            continue
        ann = {"population": pop, "variable": str(var)}
        sig = _signal(neo, pq, f"{pop}_{var}", da, t, ann)
        if isinstance(sig, neo.AnalogSignal):
            seg.analogsignals.append(sig)
        else:
            seg.irregularlysampledsignals.append(sig)
        if spike_threshold is not None and _is_voltage(da):
            v = np.asarray(sig.rescale(pq.mV).magnitude)
            for c in range(v.shape[1]):
                seg.spiketrains.append(_spike_train(neo, pq, f"{pop}_{var}[{c}]", v[:, c], t, spike_threshold,
                                                    {**ann, "channel": c}))


def _is_voltage(da: xr.DataArray) -> bool:
    try:
        unit_scale(da.attrs.get("units"), "mV")
        return True
    except EphysUnitsError:
        return False


def _add_sweeps(neo, pq, block, cell: str, ds: xr.Dataset, spike_threshold):
    t = _time_ms(ds, cell)
    window = {k: float(ds.attrs[k]) for k in ("stim_start", "stim_end") if k in ds.attrs}
    for k in range(ds.sizes["sweep"]):
        sweep = ds.isel(sweep=k)
        label = _annotation(sweep["sweep"].values.item()) if "sweep" in sweep.coords else k
        seg_ann = {"sweep": label, **{f"{w}_ms": v for w, v in window.items()}}
        if "amplitude" in sweep.coords:
            seg_ann["amplitude_pA"] = float(sweep["amplitude"].values)
        seg = neo.Segment(name=f"sweep {label}", **seg_ann)
        for var, da in sweep.data_vars.items():
            if "time" not in da.dims or not np.issubdtype(da.dtype, np.number):
                continue
            sig = _signal(neo, pq, str(var), da, t, {"sweep": label, "variable": str(var)})
            seg.analogsignals.append(sig)
            if spike_threshold is not None and _is_voltage(da):
                v = np.asarray(sig.rescale(pq.mV).magnitude)[:, 0]
                seg.spiketrains.append(_spike_train(neo, pq, f"{var} spikes", v, t, spike_threshold, {"sweep": label}))
        block.segments.append(seg)
