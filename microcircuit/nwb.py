"""Export recordings to NWB (optional extra ``nwb``: ``pip install 'microcircuit[nwb]'``).

:func:`export_nwb` writes one ``TimeSeries`` per population and time-dependent variable into
``/acquisition`` of a new NWB file (readable by Neo's ``NWBIO``), with a ``Subject`` and the
scenario stored whole.  Data are converted to SI units
(time s, potentials V, currents A, rates Hz); dimensionless variables keep their unit string.
NWB TimeSeries are time-first, so each variable of dims ``(time, d1, d2, ...)`` is stored as a
2-D array ``(time, d1·d2·…)`` (C order); the original dims and sizes are kept in the series'
``comments`` as JSON, together with the coordinate labels (e.g. compartment names).
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import xarray as xr

__all__ = ["export_nwb", "NWBExportError", "SI_UNITS", "to_si"]

try:
    from .errors import MicrocircuitError as _Base
except ImportError:  # pragma: no cover
    _Base = Exception


class NWBExportError(_Base, ValueError):
    """A recording cannot be exported (no time dimension, irregular time, bad target path)."""


# SI units a variable may be expressed in (NWB stores SI); the first its unit converts to is used
SI_UNITS = ("V", "A", "Hz", "S", "ohm", "F", "s")


def to_si(unit: str) -> tuple[float, str]:
    """(factor, SI unit) for a unit string parsed by ``quantities`` (``mV`` → (1e-3, "V"),
    ``pA`` → (1e-12, "A"), ``1/ms`` → (1e3, "Hz"), ``nS`` → (1e-9, "S")); dimensionless or
    unknown units (``1``, ``a.u.``) are kept as they are with factor 1."""
    from .ephys import EphysUnitsError, unit_scale

    if unit in ("", "1", "n/a"):
        return 1.0, unit
    for si in SI_UNITS:
        try:
            return unit_scale(unit, si), si
        except EphysUnitsError:
            continue
    return 1.0, unit


SIMULATED_SUBJECT = ("Not an animal: a simulated cortical microcircuit (microcircuit package). species names the "
                     "species the model stands for; age and sex are placeholders.")


def _groups(obj) -> list[tuple[str, xr.Dataset]]:
    if isinstance(obj, xr.Dataset):
        return [(str(obj.attrs.get("population", "recording")), obj)]
    if isinstance(obj, xr.DataTree):
        out = []
        for node in obj.subtree:
            ds = node.to_dataset(inherit=False)
            if "time" not in ds.dims:
                continue  # e.g. the metrics group (dim epoch)
            name = str(node.attrs.get("population") or ds.attrs.get("population") or node.path.strip("/").replace("/", "_") or "root")
            out.append((name, ds))
        return out
    raise NWBExportError(f"export_nwb takes an xarray DataTree or Dataset, got {type(obj).__name__}")


def export_nwb(recording, path, session_description: str = "microcircuit simulation",
               identifier: str | None = None, overwrite: bool = False, species: str = "Mus musculus") -> Path:
    """Write a recording (DataTree of population groups, or one Dataset) to an NWB file.

    Each variable with a ``time`` dim becomes ``TimeSeries(name=f"{population}_{variable}")`` with
    ``data`` in SI (``x_SI = x · factor`` from :func:`to_si`, e.g. mV → V ×1e-3, ms → s),
    ``unit`` the SI unit, ``starting_time`` (s) and ``rate`` (Hz) when time is uniformly sampled,
    otherwise ``timestamps`` (s).  Groups without ``time`` (e.g. ``metrics``) are skipped.

    Where things go, and why: series in ``/acquisition`` (where Neo's ``NWBIO`` and most NWB
    readers look for recorded data; a processing module is for derived data); the recording's
    root attrs as JSON in ``notes``, whole; the scenario TOML (attr ``scenario``) whole in the
    file's ``protocol`` field — it is the protocol that produced the data — so
    ``nwbfile.protocol`` gives back the exact text; a ``Subject`` (nwbinspector reports a missing
    one as CRITICAL) describing the simulated cell population, ``species`` the species the model
    stands for (default mouse), age ``P0D`` and sex ``U`` (unknown) as placeholders.

    Returns the path written.  Raises :class:`NWBExportError` when ``path`` exists (unless
    ``overwrite``), when nothing has a ``time`` dim, or on irregular/unsorted time.
    """
    try:
        from pynwb import NWBHDF5IO, NWBFile, TimeSeries
        from pynwb.file import Subject
    except ImportError as exc:  # pragma: no cover
        raise ImportError("export_nwb needs pynwb: pip install 'microcircuit[nwb]'") from exc
    path = Path(path)
    if path.exists() and not overwrite:
        raise NWBExportError(f"{path}: file exists (pass overwrite=True to replace it)")
    groups = _groups(recording)
    if not groups:
        raise NWBExportError("export_nwb: the recording has no group with a 'time' dimension")
    attrs = recording.attrs if hasattr(recording, "attrs") else {}
    nwb = NWBFile(
        session_description=session_description,
        identifier=identifier or str(uuid.uuid4()),
        session_start_time=datetime.now(timezone.utc),
        source_script="microcircuit.nwb.export_nwb",
        source_script_file_name="microcircuit/nwb.py",
        notes=json.dumps({k: str(v) for k, v in attrs.items()}),
        protocol=str(attrs["scenario"]) if "scenario" in attrs else None,
        experiment_description="Simulated cortical microcircuit (microcircuit package); no animal.",
    )
    nwb.subject = Subject(subject_id=str(attrs.get("scenario_name") or "simulated-microcircuit"),
                          description=SIMULATED_SUBJECT, species=species, age="P0D", sex="U")
    block_name = str(attrs.get("scenario_name") or "microcircuit")
    n_series = 0
    for pop, ds in groups:
        t = np.asarray(ds["time"].values, dtype=float)
        factor, tunit = to_si(str(ds["time"].attrs.get("units", "")))
        if tunit != "s":
            raise NWBExportError(f"population {pop!r}: the time axis has units {ds['time'].attrs.get('units')!r}, "
                                 "not a time; set .coords['time'].attrs['units'] = 'ms'")
        ts = t * factor
        if ts.size > 1 and np.any(np.diff(ts) <= 0):
            raise NWBExportError(f"population {pop!r}: time is not strictly increasing")
        uniform = ts.size > 1 and np.allclose(np.diff(ts), ts[1] - ts[0], rtol=1e-6, atol=0)
        for var, da in ds.data_vars.items():
            if "time" not in da.dims or not np.issubdtype(da.dtype, np.number):
                continue
            da = da.transpose("time", ...)
            units = str(da.attrs.get("units", "n/a"))
            factor, si = to_si(units)
            data = np.asarray(da.values, dtype=np.float64).reshape(da.sizes["time"], -1) * factor
            meta = {
                "dims": list(da.dims),
                "shape": [int(s) for s in da.shape],
                "original_units": units,
                "coords": {d: [str(v) for v in da.coords[d].values] for d in da.dims[1:] if d in da.coords},
                # Neo's NWBIO reads a JSON ``comments`` as its block/segment hierarchy
                "block": block_name, "segment": "simulation", "population": pop, "variable": str(var),
            }
            kw = {"starting_time": float(ts[0]), "rate": float(1.0 / (ts[1] - ts[0]))} if uniform else {"timestamps": ts}
            nwb.add_acquisition(TimeSeries(
                name=f"{pop}_{var}", data=data, unit=si,
                description=str(da.attrs.get("long_name", var)),
                comments=json.dumps(meta), **kw,
            ))
            n_series += 1
    if n_series == 0:
        raise NWBExportError("export_nwb: no numeric variable with a 'time' dimension")
    try:
        with NWBHDF5IO(str(path), "w") as io:
            io.write(nwb)
    except OSError as exc:
        raise NWBExportError(f"{path}: cannot write NWB file ({exc})") from exc
    return path
