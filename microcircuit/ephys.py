"""Electrophysiology: file loaders, bundled current-step data, eFEL features and rate-model fits.

Units everywhere: time **ms**, voltage **mV**, current **pA**, rate **Hz**, resistance **MΩ**
(= mV/nA).  Loaders return labelled :mod:`xarray` objects whose variables carry ``units`` and
``long_name``; bad files raise :class:`EphysFileError` naming the file and the problem.

Optional dependencies (extra ``ephys``): ``igor2`` (``.ibw``), ``pyabf`` (``.abf``), ``efel``
(feature extraction), ``quantities`` (unit strings: ``mV``, ``millivolt``, ``volts``, ``pA``,
``amperes`` ...), ``neo`` (further formats in :func:`load_icephys`); ``h5py`` for
:func:`load_nwb` and ``pynwb`` for NWB in :func:`load_icephys` (the ``nwb`` extra).  The bundled
B6/B8 cells (:func:`load_bundled_cell`) need only NumPy.

Current-clamp files: :func:`load_icephys` gives the sweeps of an NWB/ABF/Igor/Neo-readable file
in the layout of :func:`load_bundled_cell` (step window and amplitude detected, units converted,
``offset`` for a junction potential).  :func:`extract_features` passes eFEL settings through
(``threshold=``, ``settings=``), refuses stimulus windows that do not fit the trace (eFEL would
crash the interpreter) and warns when the baseline sits above the spike threshold; fits warn at
their bounds (:class:`FitWarning`).  A time axis must carry ``units``: guessing ms is wrong by
1000× on data in seconds.

Bundled data: two mouse cortical cells (B6, B8) × 5 ``IDRest`` current steps from the bluepyefe
2.3.63 test data (BSD; see ``microcircuit/data/ephys/NOTICE``), dt 0.25 ms, step 700–2700 ms,
liquid-junction potential 14 mV subtracted on load (``V = V_recorded − 14 mV``).
"""

from __future__ import annotations

import csv
import io
import re
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import xarray as xr

__all__ = [
    "EphysFileError",
    "load_ibw",
    "load_abf",
    "load_nwb",
    "load_icephys",
    "detect_step",
    "check_stimulus_window",
    "unit_scale",
    "EphysUnitsError",
    "StimulusWindowError",
    "EphysWarning",
    "BaselineAboveThresholdWarning",
    "FitWarning",
    "load_bundled_cell",
    "bundled_cells",
    "bundled_fi_points",
    "convert_bluepyefe",
    "extract_features",
    "count_spikes",
    "fi_curve",
    "fit_membrane_tau",
    "fit_transfer_function",
    "transfer_function",
    "TRANSFER_MODELS",
    "compare_model",
    "table_markdown",
]

DATA_DIR = Path(__file__).resolve().parent / "data" / "ephys"
LJP_MV = 14.0
STIM_START_MS = 700.0
STIM_END_MS = 2700.0
DT_MS = 0.25


try:  # share the package's error base when present
    from .errors import MicrocircuitError as _Base
except ImportError:  # pragma: no cover
    _Base = Exception


class EphysFileError(_Base, ValueError):
    """A recording file is missing, unreadable, corrupt or truncated.  ``.path`` holds the file."""

    def __init__(self, path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


def _short(exc: BaseException, n: int = 160) -> str:
    """Exception text cut to ``n`` characters (some readers put raw file bytes in messages)."""
    text = str(exc)
    return text if len(text) <= n else text[:n] + "…"


def _need(module: str, extra: str = "ephys"):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(f"{module} is required for this function; pip install 'microcircuit[{extra}]'") from exc


def _check_exists(path) -> Path:
    p = Path(path)
    if not p.exists():
        raise EphysFileError(p, "file not found")
    if not p.is_file():
        raise EphysFileError(p, "not a regular file")
    if p.stat().st_size == 0:
        raise EphysFileError(p, "file is empty")
    return p


def _time_coord(n: int, dt: float, t0: float = 0.0) -> xr.DataArray:
    return xr.DataArray(t0 + np.arange(n) * dt, dims="time", attrs={"units": "ms", "long_name": "time"})


class EphysUnitsError(_Base, ValueError):
    """A unit string is missing, unknown, or of the wrong kind (a current where a voltage is needed)."""


class StimulusWindowError(_Base, ValueError):
    """A stimulus window does not fit the trace (outside it, too short, no pre-stimulus baseline)."""


class EphysWarning(UserWarning):
    """Base class of warnings about electrophysiology analyses that would otherwise fail silently."""


class BaselineAboveThresholdWarning(EphysWarning):
    """The pre-stimulus voltage sits at or above eFEL's spike threshold: every spike is missed."""


class FitWarning(EphysWarning):
    """A fitted parameter sits at a bound of its search range, or far outside the data range."""


_UNIT_PATTERN = re.compile(r"(1\s*/\s*)?[A-Za-z_]\w*(\s*[*/]\s*[A-Za-z_]\w*)*")


def unit_scale(unit, target: str, what: str = "value") -> float:
    """Factor taking a quantity in ``unit`` to ``target`` (``x_target = x · factor``).

    Parsed by the ``quantities`` package (Neo's units library), so spellings such as ``mV``,
    ``millivolt``, ``V``, ``volts``, ``pA``, ``nA``, ``amperes``, ``s``, ``ms``, ``second`` all
    work; ``µ``/``μ`` are read as ``u``.  Raises :class:`EphysUnitsError` for a missing or unknown
    unit, or one of another dimension (``pA`` where a voltage is needed).
    """
    pq = _need("quantities")
    if unit is None or not str(unit).strip():
        raise EphysUnitsError(f"{what} has no unit; set attrs['units'] (e.g. 'mV', 'ms', 'pA')")
    name = str(unit).strip().replace("µ", "u").replace("μ", "u")
    if len(name) > 32 or not _UNIT_PATTERN.fullmatch(name):
        # quantities parses with a restricted eval: only plain names joined by * and / reach it
        raise EphysUnitsError(f"{what}: unit {_short(repr(unit), 40)} is not a unit name (like 'mV', 'pA', 'ms')")
    try:
        q = pq.Quantity(1.0, name)
    except (LookupError, ValueError, TypeError) as exc:
        raise EphysUnitsError(f"{what}: unit {unit!r} is not a unit quantities knows ({_short(exc, 80)})") from exc
    try:
        return float(q.rescale(target).magnitude)
    except ValueError as exc:
        raise EphysUnitsError(f"{what}: unit {unit!r} cannot be expressed in {target!r} "
                              f"(wrong kind of quantity)") from exc


def _unit_kind(unit) -> str | None:
    """``"voltage"``, ``"current"``, ``"time"`` or None for a unit string (None if unparsable)."""
    for kind, target in (("voltage", "mV"), ("current", "pA"), ("time", "ms")):
        try:
            unit_scale(unit, target)
            return kind
        except EphysUnitsError:
            continue
    return None


# ------------------------------------------------------------------------------------- loaders


def load_ibw(path, kind: str = "voltage", dt: float = DT_MS, ljp: float = 0.0) -> xr.DataArray:
    """Load one Igor binary wave (``.ibw``) as a 1-D DataArray over ``time`` (ms).

    Parameters
    ----------
    kind : {"voltage", "current"}
        Voltage is returned in mV (``V − ljp``), current in pA.  The wave's own data units (e.g.
        ``mV``/``pA``, ``V``/``A``) are used to scale; if the header has none, mV/pA are assumed.
    dt : float
        Sample interval in ms (the header's x-scaling is kept as attr ``header_dt_ms``).
    ljp : float
        Liquid-junction potential in mV, subtracted from voltages.
    """
    if kind not in ("voltage", "current"):
        raise ValueError(f"kind must be 'voltage' or 'current', got {kind!r}")
    if not dt > 0:
        raise ValueError(f"dt must be positive (ms), got {dt!r}")
    p = _check_exists(path)
    igor2 = _need("igor2")
    from igor2 import binarywave

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            wave = binarywave.load(str(p))["wave"]
        data = np.asarray(wave["wData"], dtype=float)
        header = wave["wave_header"]
        npnts = int(header["npnts"])
    except EphysFileError:
        raise
    except Exception as exc:  # igor2 raises struct.error, ValueError, KeyError, ... on bad files
        raise EphysFileError(p, f"not a readable Igor binary wave ({type(exc).__name__}: {_short(exc)})") from exc
    del igor2
    if data.ndim != 1:
        raise EphysFileError(p, f"expected a 1-D wave, got shape {data.shape}")
    if data.size != npnts or data.size == 0:
        raise EphysFileError(p, f"truncated: header says {npnts} samples, file holds {data.size}")
    if not np.all(np.isfinite(data)):
        raise EphysFileError(p, "wave contains non-finite samples")
    try:
        units = b"".join(header["dataUnits"]).decode("ascii", "replace").strip() if "dataUnits" in header else ""
        hdt = float(np.asarray(header["sfA"])[0]) * 1e3  # Igor x-scaling in s → ms
    except Exception:  # pragma: no cover - odd headers
        units, hdt = "", float("nan")
    target = "mV" if kind == "voltage" else "pA"
    try:
        scale = unit_scale(units, target, f"{p.name} data") if units else 1.0  # no header unit: mV/pA
    except EphysUnitsError:
        raise EphysFileError(p, f"asked for a {kind} but the wave's units are {units!r}") from None
    if kind == "voltage":
        values = data * scale - ljp
        attrs = {"units": "mV", "long_name": "membrane potential", "ljp_subtracted_mV": float(ljp)}
    else:
        values = data * scale
        attrs = {"units": "pA", "long_name": "injected current"}
    attrs.update({"source_file": str(p), "header_units": units, "header_dt_ms": hdt})
    return xr.DataArray(values, dims="time", coords={"time": _time_coord(values.size, dt)},
                        name=kind, attrs=attrs)


def load_abf(path) -> xr.Dataset:
    """Load an Axon ``.abf`` file (pyabf) as a Dataset of sweeps.

    Returns ``signal`` (dims ``sweep``, ``time``; the first ADC channel in mV if its units are a
    voltage, pA if a current, otherwise as recorded) and ``command`` (the command waveform, same
    rule).  Time in ms from the sweep start.
    """
    p = _check_exists(path)
    pyabf = _need("pyabf")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            head = pyabf.ABF(str(p), loadData=False)
            need = int(head.dataByteStart) + int(head.dataPointCount) * int(head.dataPointByteSize)
            have = p.stat().st_size
            if have < need:
                raise EphysFileError(p, f"truncated: header implies {need} bytes of data, file has {have}")
            abf = pyabf.ABF(str(p))
            n_sweeps = int(abf.sweepCount)
            ys, cs = [], []
            for s in range(n_sweeps):
                abf.setSweep(s)
                ys.append(np.array(abf.sweepY, dtype=float))
                cs.append(np.array(abf.sweepC, dtype=float))
            y_units, c_units = str(abf.sweepUnitsY), str(abf.sweepUnitsC)
            rate = float(abf.dataRate)
    except EphysFileError:
        raise
    except Exception as exc:
        raise EphysFileError(p, f"not a readable ABF file ({type(exc).__name__}: {_short(exc)})") from exc
    if n_sweeps == 0 or not ys or ys[0].size == 0:
        raise EphysFileError(p, "ABF file holds no samples")
    if len({y.size for y in ys}) != 1:
        raise EphysFileError(p, "sweeps have unequal lengths (truncated file?)")
    dt = 1e3 / rate

    def _conv(arr, u):
        kind = _unit_kind(u)
        if kind == "voltage":
            return arr * unit_scale(u, "mV"), "mV"
        if kind == "current":
            return arr * unit_scale(u, "pA"), "pA"
        return arr, u

    y, yu = _conv(np.stack(ys), y_units)
    c, cu = _conv(np.stack(cs), c_units)
    coords = {"sweep": np.arange(n_sweeps), "time": _time_coord(y.shape[1], dt)}
    return xr.Dataset(
        {
            "signal": (("sweep", "time"), y, {"units": yu, "long_name": "recorded signal"}),
            "command": (("sweep", "time"), c, {"units": cu, "long_name": "command waveform"}),
        },
        coords=coords,
        attrs={"source_file": str(p), "sample_rate_Hz": rate},
    )


def load_nwb(path, series: str) -> xr.DataArray:
    """Load one ``TimeSeries`` of an NWB (HDF5) file with h5py.

    ``series`` is a name under ``/acquisition`` or ``/stimulus/presentation``, or a full HDF5 path
    (``processing/microcircuit/hidden_u``).  Data are multiplied by the ``conversion`` attribute (to
    SI) and then expressed in ms/mV/pA when the unit is s/V/A; other units are kept.  Time comes
    from ``starting_time`` + ``rate`` or from ``timestamps`` (s → ms).  Dims: ``time`` then
    ``channel_<k>`` for further axes.
    """
    p = _check_exists(path)
    h5py = _need("h5py", "nwb")
    try:
        f = h5py.File(str(p), "r")
    except Exception as exc:
        raise EphysFileError(p, f"not a readable HDF5/NWB file ({type(exc).__name__}: {_short(exc)})") from exc
    try:
        candidates = [series, f"acquisition/{series}", f"stimulus/presentation/{series}"]
        grp = next((f[c] for c in candidates if c in f and isinstance(f[c], h5py.Group)), None)
        if grp is None or "data" not in grp:
            avail = list(f["acquisition"].keys()) if "acquisition" in f else []
            raise EphysFileError(p, f"no TimeSeries {series!r} (acquisition holds {avail})")
        dset = grp["data"]
        try:
            data = np.asarray(dset[()], dtype=float)
        except Exception as exc:
            raise EphysFileError(p, f"data of {series!r} unreadable ({type(exc).__name__}: {_short(exc)})") from exc
        unit = dset.attrs.get("unit", "")
        unit = unit.decode() if isinstance(unit, bytes) else str(unit)
        conversion = float(dset.attrs.get("conversion", 1.0))
        offset = float(dset.attrs.get("offset", 0.0))
        n = data.shape[0] if data.ndim else 0
        if n == 0:
            raise EphysFileError(p, f"TimeSeries {series!r} is empty")
        if "timestamps" in grp:
            t = np.asarray(grp["timestamps"][()], dtype=float) * 1e3
            if t.size != n:
                raise EphysFileError(p, f"{series!r}: {t.size} timestamps for {n} samples")
        elif "starting_time" in grp:
            st = grp["starting_time"]
            rate = float(st.attrs["rate"])
            t = (float(st[()]) + np.arange(n) / rate) * 1e3
        else:
            raise EphysFileError(p, f"{series!r} has neither timestamps nor starting_time/rate")
        description = grp.attrs.get("description", "")
        description = description.decode() if isinstance(description, bytes) else str(description)
    except EphysFileError:
        raise
    except Exception as exc:
        raise EphysFileError(p, f"corrupt NWB content ({type(exc).__name__}: {_short(exc)})") from exc
    finally:
        f.close()
    si = data * conversion + offset
    kind = _unit_kind(unit)
    out_unit = {"voltage": "mV", "current": "pA"}.get(kind, unit)
    fac = unit_scale(unit, out_unit) if kind in ("voltage", "current") else 1.0
    dims = ["time"] + [f"channel_{k}" for k in range(1, data.ndim)]
    return xr.DataArray(si * fac, dims=dims, coords={"time": xr.DataArray(t, dims="time", attrs={"units": "ms"})},
                        name=series.split("/")[-1],
                        attrs={"units": out_unit, "long_name": description or series, "source_file": str(p)})


# ---------------------------------------------------------------------- current-clamp sweeps


def detect_step(current: xr.DataArray, dim: str = "time", min_amplitude: float = 1.0) -> xr.Dataset:
    """Step onset, offset and amplitude of each current sweep (pA; time in ms).

    Per sweep: holding = median of the first 2 % of samples; the step is the longest run of
    samples deviating from the holding current by more than half the largest deviation (so a
    short test pulse before a long step is skipped); amplitude = mean current over the middle
    90 % of the step − mean before it (as :func:`load_bundled_cell`).  A sweep whose largest
    deviation is below ``min_amplitude`` pA has no step: onset/offset NaN, amplitude 0.
    Returns ``stim_start``, ``stim_end`` (ms), ``amplitude``, ``holding`` (pA) along the other dim.
    """
    i = current * unit_scale(current.attrs.get("units"), "pA", "current trace")
    t = _time_in_ms(current, dim)
    others = [d for d in i.dims if d != dim]
    stacked = i.transpose(*others, dim).values.reshape(-1, t.size) if others else i.values[None, :]
    rows = [_detect_one(row, t, min_amplitude) for row in stacked]
    on, off, amp, hold = (np.array(col, dtype=float) for col in zip(*rows))
    edim = others[0] if others else None
    dims = (edim,) if edim else ()
    sq = (lambda a: a) if edim else (lambda a: a[0])
    outputs = ("stim_start", "stim_end", "amplitude", "holding")
    coords = {c: i.coords[c] for c in i.coords if edim and i.coords[c].dims == (edim,) and c not in outputs}
    return xr.Dataset({
        "stim_start": (dims, sq(on), {"units": "ms", "long_name": "step onset"}),
        "stim_end": (dims, sq(off), {"units": "ms", "long_name": "step offset"}),
        "amplitude": (dims, sq(amp), {"units": "pA", "long_name": "step amplitude"}),
        "holding": (dims, sq(hold), {"units": "pA", "long_name": "holding current"}),
    }, coords=coords)


def _detect_one(i: np.ndarray, t: np.ndarray, min_amplitude: float) -> tuple[float, float, float, float]:
    """(onset ms, offset ms, amplitude pA, holding pA) of one sweep; see :func:`detect_step`."""
    n0 = max(3, i.size // 50)
    holding = float(np.median(i[:n0]))
    dev = i - holding
    peak = float(np.max(np.abs(dev)))
    if peak < min_amplitude:
        return np.nan, np.nan, 0.0, holding
    on_mask = np.abs(dev) > 0.5 * peak
    edges = np.diff(np.concatenate([[0], on_mask.astype(np.int8), [0]]))
    starts, stops = np.nonzero(edges == 1)[0], np.nonzero(edges == -1)[0]
    k = int(np.argmax(stops - starts))
    a, b = int(starts[k]), int(stops[k])
    dt = float(t[1] - t[0]) if t.size > 1 else 0.0
    margin = (b - a) // 20
    plateau = float(np.mean(i[a + margin:b - margin])) if b - a > 2 * margin else float(np.mean(i[a:b]))
    pre = float(np.mean(i[:a])) if a > 0 else holding
    return float(t[a]), float(t[b - 1] + dt), plateau - pre, pre


def _align_sweeps(sweeps: list[dict], stim_start: float | None, stim_end: float | None, path) -> dict:
    """Crop sweeps (each ``{"t","v","i","key"}``, t in ms from the sweep's first sample) so their
    step onsets line up, and return stacked arrays with the common window.

    Onsets come from ``stim_start``/``stim_end`` when given (ms from sweep start, all sweeps),
    else from :func:`detect_step` on each sweep's current; sweeps without a detected step (0 pA)
    take the median onset.  Raises :class:`EphysFileError` when sample intervals differ or no
    sweep has a detectable step and no window was given.
    """
    dts = np.array([s["t"][1] - s["t"][0] for s in sweeps])
    if np.ptp(dts) > 1e-6 * dts[0]:
        raise EphysFileError(path, f"sweeps have different sample intervals {sorted(set(np.round(dts, 6)))} ms")
    dt = float(dts[0])
    if stim_start is not None and stim_end is not None:
        onsets = np.full(len(sweeps), float(stim_start))
        duration = float(stim_end) - float(stim_start)
    else:
        found = [_detect_one(s["i"], s["t"], 1.0) if s["i"] is not None else (np.nan,) * 4 for s in sweeps]
        on = np.array([f[0] for f in found])
        off = np.array([f[1] for f in found])
        if not np.any(np.isfinite(on)):
            raise EphysFileError(path, "no current step found in any sweep (no stimulus series, or flat ones); "
                                       "pass stim_start= and stim_end= (ms from sweep start)")
        duration = float(np.nanmedian(off - on))
        onsets = np.where(np.isfinite(on), on, np.nanmedian(on))
    idx = np.round(onsets / dt).astype(int)
    pre = int(idx.min())
    post = int(min(s["v"].size - k for s, k in zip(sweeps, idx)))
    if pre < 1 or post * dt < duration:
        raise StimulusWindowError(f"{path}: step window [{onsets.min():g}, {onsets.max() + duration:g}] ms from sweep "
                                  f"start does not fit sweeps of {min(s['v'].size for s in sweeps) * dt:g} ms with a "
                                  "pre-step baseline")
    crop = [slice(k - pre, k + post) for k in idx]
    v = np.stack([s["v"][c] for s, c in zip(sweeps, crop)])
    i = np.stack([s["i"][c] if s["i"] is not None else np.full(pre + post, np.nan) for s, c in zip(sweeps, crop)])
    return {"v": v, "i": i, "dt": dt, "stim_start": pre * dt, "stim_end": pre * dt + duration}


def load_icephys(path, offset: float = 0.0, stim_start: float | None = None, stim_end: float | None = None,
                 current=None) -> xr.Dataset:
    """Current-clamp sweeps of a recording file as one labelled Dataset (the layout of
    :func:`load_bundled_cell`).

    Reads NWB (pynwb: the ``intracellular_recordings`` table's stimulus/response pairs where
    present, otherwise acquisition voltage series paired with ``stimulus`` current series by
    ``sweep_number`` or by the number ending their names), ABF (pyabf: ADC channel 0 and the
    command waveform) and Igor ``.ibw`` (``path`` the voltage wave or a list of them, ``current``
    the matching current wave(s)).  Units are converted from the file's own (NWB ``conversion``
    and ``offset`` applied) to mV, pA and ms.

    Each sweep's time starts at its first sample (absolute NWB sweep times dropped) and sweeps
    are cropped so that step onsets coincide; the step window and amplitude are detected from the
    current (:func:`detect_step`) unless ``stim_start``/``stim_end`` (ms from sweep start) are
    given.  ``offset`` (mV) is subtracted from every voltage — the liquid-junction potential or an
    amplifier offset (``V = V_file − offset``).

    Returns variables ``voltage`` (mV) and ``current`` (pA) over (``sweep``, ``time``); coords
    ``time`` (ms), ``time_from_onset`` (ms, 0 at step onset), ``sweep``, ``amplitude`` and
    ``holding`` (pA), ``sweep_start_time`` (s; the file's absolute sweep start, NaN for
    ABF/Igor); attrs ``stim_start``/``stim_end`` (ms), ``offset_mV`` (= ``ljp_mV``),
    ``source_file``, ``pairing``.
    """
    p = Path(path[0] if isinstance(path, (list, tuple)) else path)
    suffix = p.suffix.lower()
    if suffix == ".nwb":
        sweeps, pairing = _nwb_sweeps(_check_exists(p))
    elif suffix == ".abf":
        sweeps, pairing = _abf_sweeps(p), "ABF ADC 0 with command waveform"
    elif suffix == ".ibw":
        sweeps, pairing = _ibw_sweeps(path, current), "Igor voltage/current waves in order"
    elif suffix in _NEO_READERS:
        sweeps, pairing = _neo_sweeps(_check_exists(p), suffix), "Neo segments (first voltage and current signal)"
    else:
        raise EphysFileError(p, f"unknown recording format {suffix!r}; load_icephys reads .nwb, .abf, .ibw and, "
                                f"through Neo, {', '.join(sorted(_NEO_READERS))}")
    if not sweeps:
        raise EphysFileError(p, "no current-clamp sweeps found")
    al = _align_sweeps(sweeps, stim_start, stim_end, p)
    n = al["v"].shape[1]
    t = _time_coord(n, al["dt"])
    s0, s1 = al["stim_start"], al["stim_end"]
    win = (t.values >= s0 + 0.05 * (s1 - s0)) & (t.values < s1 - 0.05 * (s1 - s0))
    holding = al["i"][:, t.values < s0].mean(axis=1)
    amplitude = al["i"][:, win].mean(axis=1) - holding
    return xr.Dataset(
        {
            "voltage": (("sweep", "time"), al["v"] - offset,
                        {"units": "mV", "long_name": "membrane potential (offset-corrected)"}),
            "current": (("sweep", "time"), al["i"], {"units": "pA", "long_name": "injected current"}),
        },
        coords={
            "time": t,
            "time_from_onset": ("time", t.values - s0, {"units": "ms", "long_name": "time from step onset"}),
            "sweep": ("sweep", np.array([s["key"] for s in sweeps]), {"long_name": "sweep number"}),
            "amplitude": ("sweep", amplitude, {"units": "pA", "long_name": "step amplitude"}),
            "holding": ("sweep", holding, {"units": "pA", "long_name": "holding current"}),
            "sweep_start_time": ("sweep", np.array([s.get("start_s", np.nan) for s in sweeps]),
                                 {"units": "s", "long_name": "absolute start of the sweep in the file (NWB)"}),
        },
        attrs={"cell": p.stem, "stim_start": float(s0), "stim_end": float(s1), "stim_units": "ms",
               "offset_mV": float(offset), "ljp_mV": float(offset), "source_file": str(p), "pairing": pairing},
    )


def _series_ms_si(ts, start: int = 0, count: int | None = None, target: str = "mV"):
    """(time ms from the slice's first sample, values in ``target``, absolute start s) of a
    pynwb TimeSeries slice."""
    n = len(ts.data)
    stop = n if count is None or count < 0 else start + count
    nwb_offset = float(getattr(ts, "offset", 0.0) or 0.0)  # NWB ≥ 2.5: value = data · conversion + offset
    data = np.asarray(ts.data[start:stop], dtype=float) * float(ts.conversion) + nwb_offset
    values = data * unit_scale(ts.unit, target, f"NWB series {ts.name!r}")
    if ts.timestamps is not None:
        t = np.asarray(ts.timestamps[start:stop], dtype=float)  # s
        return (t - t[0]) * 1e3, values, float(t[0])
    # relative times from sample counts: subtracting a 100 s start would round them (eFEL interpolates)
    t0 = float(ts.starting_time or 0.0) + start / float(ts.rate)
    return np.arange(stop - start) / float(ts.rate) * 1e3, values, t0


def _nwb_sweeps(p: Path) -> tuple[list[dict], str]:
    """Sweeps of an NWB file: pairs from the icephys table, else acquisition/stimulus by number."""
    pynwb = _need("pynwb", "nwb")
    try:
        io = pynwb.NWBHDF5IO(str(p), "r")
        nwb = io.read()
    except Exception as exc:
        raise EphysFileError(p, f"not a readable NWB file ({type(exc).__name__}: {_short(exc)})") from exc
    try:
        pairs, pairing = _icephys_table_pairs(nwb), "intracellular_recordings table"
        if not pairs:
            pairs, pairing = _name_pairs(nwb, p), "acquisition/stimulus series by sweep number"
        sweeps = []
        for key, (resp, rs, rc), stim in pairs:
            t, v, t0 = _series_ms_si(resp, rs, rc, "mV")
            i = _series_ms_si(stim[0], stim[1], stim[2], "pA")[1] if stim is not None else None
            if i is not None and i.size != v.size:
                raise EphysFileError(p, f"sweep {key}: stimulus has {i.size} samples, response {v.size}")
            sweeps.append({"t": t, "v": v, "i": i, "key": key, "start_s": t0})
        return sweeps, pairing
    except EphysUnitsError as exc:
        raise EphysFileError(p, str(exc)) from exc
    finally:
        io.close()


def _icephys_table_pairs(nwb) -> list:
    """[(sweep, (response, start, count), (stimulus, start, count) | None)] from the table."""
    table = getattr(nwb, "intracellular_recordings", None)
    if table is None or len(table) == 0:
        return []
    responses = table.category_tables["responses"]["response"]
    stimuli = table.category_tables["stimuli"]["stimulus"]
    out = []
    for row in range(len(table)):
        resp, stim = responses[row], stimuli[row]
        ts = resp.timeseries
        if ts is None or _unit_kind(ts.unit) != "voltage":
            continue  # voltage-clamp rows
        key = getattr(ts, "sweep_number", None)
        valid = stim is not None and stim.timeseries is not None and int(stim.count) > 0
        stim_ref = (stim.timeseries, int(stim.idx_start), int(stim.count)) if valid else None
        out.append((int(key) if key is not None else row, (ts, int(resp.idx_start), int(resp.count)), stim_ref))
    return out


def _series_number(ts) -> int | None:
    """The series' ``sweep_number``, else the integer ending its name (``ic__007`` → 7)."""
    num = getattr(ts, "sweep_number", None)
    if num is not None:
        return int(num)
    m = re.search(r"(\d+)$", ts.name)
    return int(m.group(1)) if m else None


def _name_pairs(nwb, p: Path) -> list:
    """Voltage series in ``acquisition`` paired with current series in ``stimulus`` by number."""
    def _by_number(container, kind):
        out = {}
        for ts in container.values():
            if hasattr(ts, "unit") and hasattr(ts, "data") and _unit_kind(ts.unit) == kind:
                num = _series_number(ts)
                if num is not None:
                    out[num] = ts
        return out

    volts = _by_number(nwb.acquisition, "voltage")
    amps = _by_number(nwb.stimulus, "current")
    if not volts:
        raise EphysFileError(p, f"no voltage series with a sweep number in acquisition (has {sorted(nwb.acquisition)})")
    return [(k, (volts[k], 0, None), (amps[k], 0, None) if k in amps else None) for k in sorted(volts)]


def _abf_sweeps(p: Path) -> list[dict]:
    """Sweeps of an ABF file via :func:`load_abf`: ADC 0 must be a voltage (current clamp)."""
    ds = load_abf(p)
    if ds["signal"].attrs["units"] != "mV":
        raise EphysFileError(p, f"ADC 0 records {ds['signal'].attrs['units']!r}, not a voltage: not current clamp")
    i = ds["command"].values if ds["command"].attrs["units"] == "pA" else None
    t = ds["time"].values
    return [{"t": t, "v": ds["signal"].values[k], "i": None if i is None else i[k], "key": int(k)}
            for k in range(ds.sizes["sweep"])]


# Neo readers load_icephys uses, by suffix: an explicit list of formats read as numbers (Neo's
# get_io would also pick PickleIO for .pkl, which runs code from the file).
_NEO_READERS = {
    ".mat": lambda io: io.NeoMatlabIO,
    ".smr": lambda io: io.Spike2IO,
    ".smrx": lambda io: io.Spike2IO,
    ".wcp": lambda io: io.WinWcpIO,
    ".axgd": lambda io: io.AxographIO,
    ".axgx": lambda io: io.AxographIO,
}


def _neo_signal(seg, target: str):
    """First single-channel AnalogSignal of ``seg`` expressible in ``target`` (mV or pA), as
    (time ms from its start, values), or None."""
    for sig in seg.analogsignals:
        try:
            values = np.asarray(sig.rescale(target).magnitude, dtype=float)[:, 0]
        except ValueError:
            continue
        dt = float(sig.sampling_period.rescale("ms").magnitude)
        return np.arange(values.size) * dt, values
    return None


def _neo_sweeps(p: Path, suffix: str) -> list[dict]:
    """Sweeps from a file Neo reads: one per Segment (voltage = its first voltage signal)."""
    neo = _need("neo")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # reader chatter about file versions, not about the data
            blocks = _NEO_READERS[suffix](neo.io)(str(p)).read(lazy=False)
    except Exception as exc:
        raise EphysFileError(p, f"not readable by Neo ({type(exc).__name__}: {_short(exc)})") from exc
    sweeps = []
    for seg in (s for b in blocks for s in b.segments):
        v = _neo_signal(seg, "mV")
        if v is None:
            continue
        i = _neo_signal(seg, "pA")
        key = seg.annotations.get("sweep", len(sweeps))
        sweeps.append({"t": v[0], "v": v[1], "i": None if i is None else i[1],
                       "key": int(key) if isinstance(key, (int, np.integer)) else len(sweeps)})
    return sweeps


def _ibw_sweeps(path, current) -> list[dict]:
    """Sweeps from Igor waves: voltage wave(s) in ``path``, matching current wave(s) in ``current``."""
    vpaths = list(path) if isinstance(path, (list, tuple)) else [path]
    if current is None:
        ipaths = [None] * len(vpaths)
    else:
        ipaths = list(current) if isinstance(current, (list, tuple)) else [current]
    if len(ipaths) != len(vpaths):
        raise EphysFileError(vpaths[0], f"{len(vpaths)} voltage waves but {len(ipaths)} current waves")
    sweeps = []
    for k, (vp, ip) in enumerate(zip(vpaths, ipaths)):
        v0 = load_ibw(vp, "voltage")
        hdt = v0.attrs["header_dt_ms"]
        dt = hdt if np.isfinite(hdt) and hdt > 0 else DT_MS
        v = load_ibw(vp, "voltage", dt=dt)
        i = load_ibw(ip, "current", dt=dt).values if ip is not None else None
        m = re.search(r"(\d+)$", Path(vp).stem)
        sweeps.append({"t": v["time"].values, "v": v.values, "i": i, "key": int(m.group(1)) if m else k})
    return sweeps


# -------------------------------------------------------------------------------- bundled data


def bundled_cells() -> list[str]:
    """Names of the bundled cells (``["B6", "B8"]``)."""
    return sorted(p.stem for p in DATA_DIR.glob("*.npz"))


def _dequantise(arr: np.ndarray, scale, offset) -> np.ndarray:
    """``x = offset + scale · k`` with per-sweep (row) scale and offset."""
    scale = np.asarray(scale, dtype=np.float64).reshape(-1, 1)
    offset = np.asarray(offset, dtype=np.float64).reshape(-1, 1)
    return arr.astype(np.float64) * scale + offset


def load_bundled_cell(cell: str = "B6", ljp: float = LJP_MV) -> xr.Dataset:
    """Current-step sweeps of a bundled cell as a Dataset.

    Variables ``voltage`` (mV, LJP-corrected: ``V_recorded − ljp``) and ``current`` (pA), dims
    (``sweep``, ``time``); coords ``time`` (ms), ``sweep`` (original sweep number), ``amplitude``
    (pA; mean current in the step window minus the pre-step holding current) and ``holding`` (pA).
    Attrs ``stim_start``/``stim_end`` (ms), ``ljp_mV``, ``cell``, ``source``.
    """
    path = DATA_DIR / f"{cell}.npz"
    if not path.exists():
        raise EphysFileError(path, f"no bundled cell {cell!r}; available: {bundled_cells()}")
    try:
        with np.load(path, allow_pickle=False) as z:
            v = _dequantise(z["voltage_q"], z["voltage_scale"], z["voltage_offset"])
            i = _dequantise(z["current_q"], z["current_scale"], z["current_offset"])
            sweeps = z["sweep"].astype(int)
            dt = float(z["dt_ms"])
            stim_start, stim_end = float(z["stim_start_ms"]), float(z["stim_end_ms"])
    except Exception as exc:
        raise EphysFileError(path, f"corrupt bundled data ({type(exc).__name__}: {exc})") from exc
    t = _time_coord(v.shape[1], dt)
    pre = t.values < stim_start
    win = (t.values >= stim_start + 0.05 * (stim_end - stim_start)) & (t.values < stim_end - 0.05 * (stim_end - stim_start))
    holding = i[:, pre].mean(axis=1)
    amplitude = i[:, win].mean(axis=1) - holding
    ds = xr.Dataset(
        {
            "voltage": (("sweep", "time"), v - ljp, {"units": "mV", "long_name": "membrane potential (LJP-corrected)"}),
            "current": (("sweep", "time"), i, {"units": "pA", "long_name": "injected current"}),
        },
        coords={
            "time": t,
            "sweep": ("sweep", sweeps, {"long_name": "sweep number"}),
            "amplitude": ("sweep", amplitude, {"units": "pA", "long_name": "step amplitude"}),
            "holding": ("sweep", holding, {"units": "pA", "long_name": "holding current"}),
        },
        attrs={
            "cell": cell,
            "stim_start": stim_start,
            "stim_end": stim_end,
            "stim_units": "ms",
            "ljp_mV": float(ljp),
            "source": "bluepyefe 2.3.63 sdist, tests/exp_data (BSD); see microcircuit/data/ephys/NOTICE",
        },
    )
    return ds


def bundled_fi_points() -> xr.Dataset:
    """The derived f–I CSV (``fi_points.csv``) as a Dataset with dim ``point``."""
    path = DATA_DIR / "fi_points.csv"
    if not path.exists():
        raise EphysFileError(path, "bundled f-I table missing")
    with open(path, newline="") as fh:
        rows = [r for r in csv.DictReader(line for line in fh if not line.startswith("#"))]
    if not rows:
        raise EphysFileError(path, "bundled f-I table is empty")
    return xr.Dataset(
        {
            "cell": ("point", np.array([r["cell"] for r in rows], dtype=object)),
            "sweep": ("point", np.array([int(r["sweep"]) for r in rows])),
            "amplitude": ("point", np.array([float(r["amplitude_pA"]) for r in rows]), {"units": "pA"}),
            "spike_count": ("point", np.array([int(r["spike_count"]) for r in rows]), {"units": "1"}),
            "rate": ("point", np.array([float(r["rate_Hz"]) for r in rows]), {"units": "Hz"}),
        }
    )


def _quantise(x: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Lossless int16 coding of ADC-quantised data: ``x ≈ offset + q·k`` with max error ≤ 0.01 q.

    ``q`` (the ADC step) starts as the smallest gap between distinct values and is refined by
    least squares; raises ValueError if the data are not on a uniform grid or span > 65535 steps.
    """
    x = np.asarray(x, dtype=np.float64)
    u = np.unique(x)
    if u.size == 1:
        return np.zeros(x.shape, np.int16), 1.0, float(u[0])
    steps = np.diff(u)
    steps = steps[steps > 1e-6 * np.ptp(u)]
    q = float(np.median(steps[steps < 1.5 * steps.min()]))  # float32 rounding jitters single steps
    for _ in range(3):  # refine the step by least squares on the integer codes
        k = np.round((x - u[0]) / q)
        q = float(np.sum((x - u[0]) * k) / np.sum(k * k))
    k = np.round((x - u[0]) / q)
    mid = float(np.floor((k.max() + k.min()) / 2))
    k -= mid
    if k.max() > 32767 or k.min() < -32768:
        raise ValueError(f"data span {np.ptp(k):.0f} ADC steps, too many for int16")
    offset = float(u[0] + mid * q)
    err = float(np.max(np.abs(offset + k * q - x)))
    if err > 0.01 * q:
        raise ValueError(f"data are not on a uniform grid (max coding error {err:g} vs step {q:g})")
    return k.astype(np.int16), q, offset


def convert_bluepyefe(exp_data_dir, out_dir=DATA_DIR, cells: Sequence[str] = ("B6", "B8")) -> list[Path]:
    """Regenerate the bundled files from bluepyefe's ``tests/exp_data`` (needs igor2 and efel).

    Obtain the source with ``pip download --no-deps --no-binary :all: bluepyefe==2.3.63`` and
    unpack; pass ``<sdist>/tests/exp_data``.  For each cell, ``*_Ch0_IDRest_<n>.ibw`` (current, pA)
    and ``*_Ch3_IDRest_<n>.ibw`` (voltage, mV, LJP *not* subtracted) are coded losslessly as int16
    with a scale and offset (the ADC grid) into ``<cell>.npz``; ``fi_points.csv`` lists, per
    sweep, the step amplitude and eFEL's ``Spikecount_stimint`` over 700–2700 ms with the rate
    ``count / 2 s``.  Not run by the tests.
    """
    exp = Path(exp_data_dir)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    fi_rows = []
    for cell in cells:
        ifiles = sorted((exp / cell).glob(f"{cell}_Ch0_IDRest_*.ibw"), key=lambda q: int(q.stem.split("_")[-1]))
        if not ifiles:
            raise EphysFileError(exp / cell, "no *_Ch0_IDRest_*.ibw files")
        vs, cs, ids = [], [], []
        for fi in ifiles:
            fv = fi.with_name(fi.name.replace("_Ch0_", "_Ch3_"))
            vs.append(load_ibw(fv, "voltage", DT_MS, ljp=0.0).values)
            cs.append(load_ibw(fi, "current", DT_MS).values)
            ids.append(int(fi.stem.split("_")[-1]))
        V, I = np.stack(vs), np.stack(cs)
        # per-sweep coding: each sweep sits on its own ADC grid (same step, different offset)
        vq, vs_, vo = (np.stack(a) for a in zip(*(_quantise(row) for row in V)))
        iq, is_, io_ = (np.stack(a) for a in zip(*(_quantise(row) for row in I)))
        path = out / f"{cell}.npz"
        np.savez_compressed(
            path, voltage_q=vq, voltage_scale=vs_, voltage_offset=vo, current_q=iq, current_scale=is_,
            current_offset=io_, sweep=np.array(ids), dt_ms=DT_MS, stim_start_ms=STIM_START_MS,
            stim_end_ms=STIM_END_MS, ljp_mV=LJP_MV,
        )
        written.append(path)
        ds = load_bundled_cell(cell) if out == DATA_DIR else None
        if ds is None:  # pragma: no cover
            continue
        counts = extract_features(ds["voltage"], STIM_START_MS, STIM_END_MS, features=["Spikecount_stimint"])
        for s, a, c in zip(ds.sweep.values, ds.amplitude.values, counts["Spikecount_stimint"].values):
            fi_rows.append((cell, int(s), float(a), int(c), float(c) / ((STIM_END_MS - STIM_START_MS) / 1e3)))
    if fi_rows:
        path = out / "fi_points.csv"
        with open(path, "w", newline="") as fh:
            fh.write("# f-I points of bluepyefe 2.3.63 test cells B6/B8 (IDRest, step 700-2700 ms); "
                     "spike_count = eFEL Spikecount_stimint on LJP-corrected voltage; rate = count / 2 s\n")
            w = csv.writer(fh)
            w.writerow(["cell", "sweep", "amplitude_pA", "spike_count", "rate_Hz"])
            for r in fi_rows:
                w.writerow([r[0], r[1], f"{r[2]:.2f}", r[3], f"{r[4]:.2f}"])
        written.append(path)
    return written


# ------------------------------------------------------------------------------------ features

FEATURE_UNITS = {
    "time_constant": "ms",
    "decay_time_constant_after_stim": "ms",
    "ohmic_input_resistance": "MOhm",
    "ohmic_input_resistance_vb_ssse": "MOhm",
    "steady_state_voltage_stimend": "mV",
    "steady_state_voltage": "mV",
    "voltage_base": "mV",
    "voltage_deflection": "mV",
    "voltage_deflection_vb_ssse": "mV",
    "Spikecount": "1",
    "Spikecount_stimint": "1",
    "mean_frequency": "Hz",
    "spike_rate": "Hz",
    "time_to_first_spike": "ms",
    "adaptation_index2": "1",
    "sag_amplitude": "mV",
    "sag_ratio1": "1",
}

DEFAULT_FEATURES = (
    "time_constant",
    "ohmic_input_resistance",
    "steady_state_voltage_stimend",
    "voltage_base",
    "Spikecount_stimint",
    "mean_frequency",
    "decay_time_constant_after_stim",
)


def _voltage_in_mV(da: xr.DataArray) -> xr.DataArray:
    """The trace in mV (eFEL's unit), whatever voltage unit ``attrs['units']`` names."""
    if da.attrs.get("units") is None:
        raise EphysUnitsError("voltage trace has no 'units' attribute; eFEL needs to know the scale "
                              "(set trace.attrs['units'] = 'mV')")
    return (da * unit_scale(da.attrs["units"], "mV", "voltage trace")).assign_attrs(units="mV")


def _time_in_ms(da: xr.DataArray, dim: str = "time") -> np.ndarray:
    """The time coordinate in ms.  A time axis without ``units`` is an error, not assumed ms: a
    guess wrong by 1000× (s vs ms) puts the stimulus window outside the trace."""
    if dim not in da.coords:
        raise ValueError(f"trace has no {dim!r} coordinate")
    t = np.asarray(da.coords[dim].values, dtype=float)
    tu = da.coords[dim].attrs.get("units")
    if tu is None:
        raise EphysUnitsError(f"the {dim!r} axis has no 'units' attribute; set "
                              f"trace.coords[{dim!r}].attrs['units'] = 'ms' (or 's')")
    return t * unit_scale(tu, "ms", f"{dim!r} axis")


EFEL_THRESHOLD_MV = -20.0  # eFEL's default spike threshold ("Threshold" setting)


def check_stimulus_window(t_ms, stim_start: float, stim_end: float, base_fraction: float = 0.9,
                          what: str = "trace", min_samples: int = 10) -> None:
    """Raise :class:`StimulusWindowError` unless [stim_start, stim_end] (ms) fits the trace.

    eFEL does not check: a window outside the trace, or one holding a handful of samples (seconds
    given for ms), crashes the interpreter inside its C++ core (segmentation fault) instead of
    raising.  Needed: ``t[0] ≤ stim_start < stim_end ≤ t[-1] + dt``, at least ``min_samples``
    samples in the window, and at least one in eFEL's baseline window
    [``base_fraction``·stim_start, stim_start] (its ``voltage_base_start_perc``).
    """
    t = np.asarray(t_ms, dtype=float)
    if t.size < 2:
        raise StimulusWindowError(f"{what}: needs at least 2 samples, has {t.size}")
    dt = float(t[1] - t[0])
    span = f"the {what} spans {t[0]:g}–{t[-1]:g} ms"
    hint = (" (were the times given in seconds? the window is in ms)"
            if stim_end <= 1e-2 * (t[-1] - t[0]) else "")
    if not stim_end > stim_start:
        raise StimulusWindowError(f"{what}: stim_end ({stim_end:g} ms) must exceed stim_start ({stim_start:g} ms)")
    if stim_start < t[0] or stim_end > t[-1] + dt:
        raise StimulusWindowError(f"{what}: stimulus window [{stim_start:g}, {stim_end:g}] ms lies outside the "
                                  f"trace; {span}{hint}")
    n_win = int(np.count_nonzero((t >= stim_start) & (t < stim_end)))
    if n_win < min_samples:
        raise StimulusWindowError(f"{what}: stimulus window [{stim_start:g}, {stim_end:g}] ms holds {n_win} "
                                  f"samples (need ≥ {min_samples}); {span}{hint}")
    n_base = int(np.count_nonzero((t >= base_fraction * stim_start) & (t <= stim_start)))
    if n_base < 1:
        raise StimulusWindowError(f"{what}: no sample in eFEL's baseline window [{base_fraction * stim_start:g}, "
                                  f"{stim_start:g}] ms; start the stimulus later or record a pre-stimulus baseline")


class _EfelSettings:
    """Context: eFEL defaults plus ``settings`` inside, the caller's global eFEL settings restored after.

    eFEL keeps settings in module state; resetting to defaults makes results independent of what
    other code set, and restoring afterwards leaves that code's settings alone.
    """

    def __init__(self, efel, settings: Mapping):
        import dataclasses

        self.efel = efel
        known = {f.name for f in dataclasses.fields(efel.get_settings())}
        unknown = sorted(set(settings) - known)
        if unknown:
            raise ValueError(f"unknown eFEL setting(s) {unknown}; eFEL knows {sorted(known)}")
        self.settings = dict(settings)
        self.saved = dataclasses.asdict(efel.get_settings())

    def apply(self) -> None:
        self.efel.reset()
        for key, value in self.settings.items():
            self.efel.set_setting(key, value)

    def __enter__(self):
        self.apply()
        return self

    def __exit__(self, *exc):
        import dataclasses

        self.efel.reset()
        defaults = dataclasses.asdict(self.efel.get_settings())
        for key, value in self.saved.items():
            if value != defaults[key]:
                self.efel.set_setting(key, value)
        return False


def _warn_baseline_above_threshold(stacked: xr.DataArray, edim: str, t: np.ndarray, stim_start: float,
                                   settings: Mapping) -> None:
    """Warn when eFEL's baseline (mean V over its baseline window) is at or above its threshold."""
    thr = float(settings.get("Threshold", EFEL_THRESHOLD_MV))
    frac = float(settings.get("voltage_base_start_perc", 0.9))
    sel = (t >= frac * stim_start) & (t <= stim_start)
    base = stacked.values[:, sel].mean(axis=1)
    high = np.nonzero(base >= thr)[0]
    if high.size:
        labels = [stacked.coords[edim].values[k] if edim in stacked.coords else k for k in high]
        warnings.warn(
            f"baseline {float(np.max(base[high])):.1f} mV sits at or above the spike threshold {thr:g} mV in "
            f"{high.size} of {base.size} trace(s) ({edim} {labels[:5]}{'…' if high.size > 5 else ''}): eFEL "
            "will miss every spike (f–I reads 0 Hz). Subtract the offset (load_icephys(..., offset=mV)) or "
            "pass threshold= (mV) above the baseline.", BaselineAboveThresholdWarning, stacklevel=3)


def _sweep_inputs(trace, stim_start, stim_end, amplitude):
    """Voltage DataArray, window and amplitude from a DataArray or a sweep Dataset
    (:func:`load_icephys`, :func:`load_bundled_cell`): window from attrs, amplitude from the
    ``amplitude`` coord, else detected from a ``current`` variable."""
    if isinstance(trace, xr.Dataset):
        if "voltage" not in trace:
            raise ValueError(f"sweep Dataset has no 'voltage' variable (has {list(trace.data_vars)})")
        if amplitude is None and "amplitude" not in trace.coords and "current" in trace:
            amplitude = detect_step(trace["current"])["amplitude"].values
        attrs, trace = trace.attrs, trace["voltage"]
    else:
        attrs = trace.attrs
    stim_start = attrs.get("stim_start") if stim_start is None else stim_start
    stim_end = attrs.get("stim_end") if stim_end is None else stim_end
    if stim_start is None or stim_end is None:
        raise StimulusWindowError("no stimulus window: pass stim_start/stim_end (ms) or a Dataset with those attrs")
    return trace, float(stim_start), float(stim_end), amplitude


def extract_features(trace_da, stim_start: float | None = None, stim_end: float | None = None,
                     features: Sequence[str] = DEFAULT_FEATURES, amplitude=None, dim: str = "time",
                     threshold: float | None = None, settings: Mapping | None = None) -> xr.Dataset:
    """eFEL features of voltage trace(s), converted to mV and ms before eFEL sees them.

    ``trace_da`` is a DataArray with dim ``time`` and optionally one more dim (e.g. ``sweep``), or
    a sweep Dataset (:func:`load_icephys`, :func:`load_bundled_cell`) whose ``voltage`` is used.
    ``stim_start``/``stim_end`` in ms (default: the ``stim_start``/``stim_end`` attrs), checked
    against the trace first (:func:`check_stimulus_window`; eFEL segfaults on a bad window).
    ``amplitude`` (pA; scalar or per trace; default: the ``amplitude`` coord, else detected from
    the Dataset's ``current``) sets eFEL's ``stimulus_current`` (nA) for
    ``ohmic_input_resistance`` (MΩ = mV/nA).  ``threshold`` (mV) is eFEL's spike ``Threshold``
    (default −20 mV); ``settings`` any other eFEL setting by name.  eFEL starts from its defaults
    plus these, and the caller's global eFEL settings are restored afterwards.  A baseline at or
    above the threshold raises :class:`BaselineAboveThresholdWarning` (spikes would be missed).
    Besides eFEL's features, ``spike_rate`` = ``Spikecount_stimint / ((stim_end − stim_start)/1000)``
    (Hz).  Features eFEL cannot compute are NaN; first value of multi-valued features.
    """
    efel = _need("efel")
    trace_da, stim_start, stim_end, amplitude = _sweep_inputs(trace_da, stim_start, stim_end, amplitude)
    eset = dict(settings or {})
    if threshold is not None:
        eset["Threshold"] = float(threshold)
    v = _voltage_in_mV(trace_da)
    t = _time_in_ms(v, dim)
    check_stimulus_window(t, stim_start, stim_end, float(eset.get("voltage_base_start_perc", 0.9)))
    others = [d for d in v.dims if d != dim]
    if len(others) > 1:
        raise ValueError(f"extract_features takes 1-D or 2-D traces; got dims {v.dims}")
    stacked = v.transpose(*others, dim) if others else v.expand_dims("_trace")
    edim = others[0] if others else "_trace"
    n = stacked.sizes[edim]
    if amplitude is None and "amplitude" in stacked.coords:
        amplitude = stacked.coords["amplitude"].values
    amps = np.broadcast_to(np.asarray(amplitude, dtype=float), (n,)) if amplitude is not None else [None] * n
    feats = list(features)
    if amplitude is None and any(f.startswith("ohmic_input_resistance") for f in feats):
        warnings.warn("ohmic_input_resistance needs the step amplitude: pass amplitude= (pA) or a sweep "
                      "Dataset with an 'amplitude' coord or a 'current' variable; it is NaN here.",
                      EphysWarning, stacklevel=2)
    _warn_baseline_above_threshold(stacked, edim, t, stim_start, eset)
    want_rate = "spike_rate" in feats
    efel_feats = [f for f in feats if f != "spike_rate"]
    if want_rate and "Spikecount_stimint" not in efel_feats:
        efel_feats.append("Spikecount_stimint")
    values = {f: np.full(n, np.nan) for f in efel_feats}
    with _EfelSettings(efel, eset) as session:
        for k in range(n):
            trace = {"T": t, "V": np.asarray(stacked.isel({edim: k}).values, dtype=float),
                     "stim_start": [float(stim_start)], "stim_end": [float(stim_end)]}
            session.apply()
            if amps[k] is not None and np.isfinite(amps[k]) and amps[k] != 0:
                efel.set_setting("stimulus_current", float(amps[k]) * 1e-3)
            res = efel.get_feature_values([trace], efel_feats, raise_warnings=False)[0]
            for f in efel_feats:
                val = res.get(f)
                if val is not None and len(val):
                    values[f][k] = float(val[0])
    out = {}
    dur_s = (stim_end - stim_start) / 1e3
    for f in feats:
        arr = values["Spikecount_stimint"] / dur_s if f == "spike_rate" else values[f]
        out[f] = xr.DataArray(arr, dims=edim, attrs={"units": FEATURE_UNITS.get(f, "?"), "long_name": f"eFEL {f}"})
    ds = xr.Dataset(out, coords={c: stacked.coords[c] for c in stacked.coords if stacked.coords[c].dims == (edim,)})
    if not others:
        ds = ds.isel(_trace=0, drop=True)
    ds.attrs.update({"stim_start": float(stim_start), "stim_end": float(stim_end), "stim_units": "ms",
                     "efel_settings": str(eset)})
    return ds


def count_spikes(v: np.ndarray, t: np.ndarray, t0: float, t1: float, threshold: float = -20.0) -> int:
    """Upward crossings of ``threshold`` (mV) with ``t0 ≤ t < t1`` (ms); eFEL's default threshold."""
    v = np.asarray(v, dtype=float)
    up = np.nonzero((v[:-1] < threshold) & (v[1:] >= threshold))[0] + 1
    tt = np.asarray(t)[up]
    return int(np.count_nonzero((tt >= t0) & (tt < t1)))


def fi_curve(sweeps: xr.Dataset, var: str = "voltage", method: str = "auto", threshold: float | None = None,
             settings: Mapping | None = None) -> xr.DataArray:
    """Firing rate against step amplitude from a Dataset of sweeps.

    ``sweeps`` needs ``var`` (dims ``sweep``, ``time``; a voltage unit), an ``amplitude`` coord on
    ``sweep`` (pA) and attrs ``stim_start``/``stim_end`` (ms), as returned by
    :func:`load_bundled_cell` and :func:`load_icephys`.  Rate = spikes in [stim_start, stim_end) /
    duration (Hz); spikes from eFEL's ``Spikecount_stimint`` (``method="efel"``, with eFEL
    ``threshold`` and ``settings`` passed through) or upward crossings of ``threshold`` mV
    (``"threshold"``); ``"auto"`` uses eFEL when installed.  ``threshold`` defaults to eFEL's
    −20 mV; a baseline at or above it warns (:class:`BaselineAboveThresholdWarning`) rather than
    returning a silent 0 Hz curve.  Returned along ``amplitude`` (sorted).
    """
    for key in ("stim_start", "stim_end"):
        if key not in sweeps.attrs:
            raise ValueError(f"fi_curve: sweeps dataset lacks attr {key!r} (ms)")
    if "amplitude" not in sweeps.coords:
        raise ValueError("fi_curve: sweeps dataset lacks an 'amplitude' coordinate (pA)")
    t0, t1 = float(sweeps.attrs["stim_start"]), float(sweeps.attrs["stim_end"])
    v = _voltage_in_mV(sweeps[var])
    if method == "auto":
        try:
            import efel  # noqa: F401
            method = "efel"
        except ImportError:  # pragma: no cover
            method = "threshold"
    if method == "efel":
        counts = extract_features(v, t0, t1, features=["Spikecount_stimint"], threshold=threshold,
                                  settings=settings)["Spikecount_stimint"].values
    elif method == "threshold":
        thr = EFEL_THRESHOLD_MV if threshold is None else float(threshold)
        t = _time_in_ms(v)
        check_stimulus_window(t, t0, t1)
        _warn_baseline_above_threshold(v.transpose("sweep", "time"), "sweep", t, t0, {"Threshold": thr})
        counts = np.array([count_spikes(v.isel(sweep=k).values, t, t0, t1, thr) for k in range(v.sizes["sweep"])])
    else:
        raise ValueError(f"method must be 'auto', 'efel' or 'threshold', got {method!r}")
    rate = np.asarray(counts, dtype=float) / ((t1 - t0) / 1e3)
    amp = np.asarray(sweeps.coords["amplitude"].values, dtype=float)
    order = np.argsort(amp)
    return xr.DataArray(rate[order], dims="amplitude",
                        coords={"amplitude": ("amplitude", amp[order], {"units": "pA", "long_name": "step amplitude"}),
                                "sweep": ("amplitude", sweeps.coords["sweep"].values[order])},
                        name="rate", attrs={"units": "Hz", "long_name": "firing rate", "method": method})


# ----------------------------------------------------------------------------------------- fits


def _r2(y, yhat) -> float:
    y = np.asarray(y, float)
    ss_res = float(np.sum((y - yhat) ** 2))
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    return 1.0 - ss_res / ss_tot if ss_tot > 0 else float("nan")


def fit_membrane_tau(trace: xr.DataArray, stim_start: float, stim_end: float, window: str = "onset",
                     fit_start: float = 1.0, fit_duration: float | None = None, spike_threshold: float = -20.0,
                     baseline: float | None = None) -> xr.Dataset:
    """Membrane time constant from an exponential fit (scipy ``curve_fit``) to a step response.

    ``window="onset"``: ``V(t) = V∞ + (V0 − V∞) e^{−(t − t_a)/τ}`` on
    ``t ∈ [stim_start + fit_start, stim_start + fit_duration]`` (default: up to ``stim_end``, cut
    2 ms before the first crossing of ``spike_threshold``) with V∞, V0, τ free — for a
    subthreshold (hyperpolarising) step.

    ``window="offset"``: ``V(t) = V_b + A e^{−(t − t_a)/τ}`` on
    ``t ∈ [stim_end + fit_start, stim_end + fit_duration]`` (default duration 10 ms, eFEL's
    ``decay_time_constant_after_stim`` window) with ``V_b`` fixed by ``baseline``: ``None`` →
    eFEL's ``voltage_base`` (mean over [0.9·stim_start, stim_start]); ``"stim_start"`` → the
    single sample V(stim_start), the reference eFEL's ``decay_time_constant_after_stim`` uses
    (eFEL then fits log|V − V_b| linearly); or a number in mV.  Usable after suprathreshold steps
    too, since spiking stops at stim_end — unless a spike falls just before stim_end, whose
    after-hyperpolarisation then contaminates the decay: attr ``last_spike_to_end_ms`` reports
    the gap (≥ 10 ms recommended; inf if no spike).

    Returns a Dataset: ``tau`` (ms), ``v_inf`` (mV; V∞ or V_b), ``amplitude`` (mV; V0 − V∞ or A),
    ``r2`` (1); attrs record the window.
    """
    v = _voltage_in_mV(trace)
    if v.ndim != 1:
        raise ValueError(f"fit_membrane_tau takes one trace (1-D over time); got dims {v.dims}")
    t = _time_in_ms(v)
    y = np.asarray(v.values, dtype=float)
    from scipy.optimize import curve_fit

    if window == "onset":
        ta = stim_start + fit_start
        tb = stim_end if fit_duration is None else min(stim_end, stim_start + fit_duration)
        spk = np.nonzero((t >= stim_start) & (t < tb) & (y >= spike_threshold))[0]
        if spk.size:
            tb = t[spk[0]] - 2.0
    elif window == "offset":
        ta = stim_end + fit_start
        tb = stim_end + (10.0 if fit_duration is None else fit_duration)
    else:
        raise ValueError(f"window must be 'onset' or 'offset', got {window!r}")
    sel = (t >= ta) & (t <= tb)
    if np.count_nonzero(sel) < 5:
        raise ValueError(f"fit window [{ta:g}, {tb:g}] ms holds fewer than 5 samples (spike too early?)")
    ts, ys = t[sel] - ta, y[sel]
    span = max(ts[-1], 1e-9)
    if window == "onset":
        def model(tt, vinf, a, tau):
            return vinf + a * np.exp(-tt / tau)

        p0 = (ys[-1], ys[0] - ys[-1], span / 3)
        bounds = ([-np.inf, -np.inf, 1e-3], [np.inf, np.inf, 1e4])
        popt, _ = curve_fit(model, ts, ys, p0=p0, maxfev=20000, bounds=bounds)
        _warn_at_bounds("membrane tau", ("v_inf", "amplitude", "tau"), ("mV", "mV", "ms"), popt, bounds)
        vinf, amp, tau = popt
        yhat = model(ts, *popt)
    else:
        if baseline is None:
            base_sel = (t >= 0.9 * stim_start) & (t <= stim_start)
            baseline = float(np.mean(y[base_sel]))
        elif isinstance(baseline, str):
            if baseline != "stim_start":
                raise ValueError(f"baseline must be None, 'stim_start' or a number (mV), got {baseline!r}")
            baseline = float(y[np.searchsorted(t, stim_start)])
        vb = float(baseline)

        def model(tt, a, tau):
            return vb + a * np.exp(-tt / tau)

        bounds = ([-np.inf, 1e-3], [np.inf, 1e4])
        popt, _ = curve_fit(model, ts, ys, p0=(ys[0] - vb, span), maxfev=20000, bounds=bounds)
        _warn_at_bounds("membrane tau", ("amplitude", "tau"), ("mV", "ms"), popt, bounds)
        amp, tau = popt
        vinf = vb
        yhat = model(ts, *popt)
    if tau > 10 * span:
        warnings.warn(f"membrane tau fit: tau = {tau:.4g} ms is more than 10× the fit window ({span:.4g} ms); "
                      "the decay is not observed — lengthen fit_duration", FitWarning, stacklevel=2)
    ups = np.nonzero((y[:-1] < spike_threshold) & (y[1:] >= spike_threshold))[0] + 1
    ups = ups[(t[ups] >= stim_start) & (t[ups] <= stim_end)]
    gap = float(stim_end - t[ups[-1]]) if ups.size else float("inf")
    return xr.Dataset(
        {
            "tau": ((), float(tau), {"units": "ms", "long_name": "membrane time constant"}),
            "v_inf": ((), float(vinf), {"units": "mV", "long_name": "asymptotic voltage"}),
            "amplitude": ((), float(amp), {"units": "mV", "long_name": "exponential amplitude"}),
            "r2": ((), _r2(ys, yhat), {"units": "1", "long_name": "coefficient of determination"}),
        },
        attrs={"window": window, "fit_start_ms": float(ta), "fit_end_ms": float(tb), "last_spike_to_end_ms": gap},
    )


def _softplus(z):
    return np.logaddexp(0.0, z)


# model name → (function f(I, *p), parameter names, units, initial guess from (I, f))
TRANSFER_MODELS: dict[str, tuple[Callable, tuple[str, ...], tuple[str, ...]]] = {
    # f = g·k·ln(1 + e^{(I−θ)/k}); threshold θ, gain g (asymptotic slope), no saturation
    "softplus": (lambda I, th, g, k: g * k * _softplus((I - th) / k), ("theta", "g", "k"), ("pA", "Hz/pA", "pA")),
    # f = f_max / (1 + e^{−(I − I½)/s}); gain at I½ = f_max/(4s); threshold = I½ − 2s (tangent at I½ meets 0)
    "sigmoid": (lambda I, fmax, ih, s: fmax / (1.0 + np.exp(-(I - ih) / s)), ("f_max", "I_half", "s"), ("Hz", "pA", "pA")),
    # f = f_max (1 − e^{−(I−θ)/I_s}) for I > θ, else 0; gain at θ = f_max/I_s
    "exponential": (lambda I, fmax, th, isat: fmax * -np.expm1(-np.maximum(I - th, 0.0) / isat),
                    ("f_max", "theta", "I_s"), ("Hz", "pA", "pA")),
    # f = g·(I − θ)₊
    "linear": (lambda I, th, g: g * np.maximum(I - th, 0.0), ("theta", "g"), ("pA", "Hz/pA")),
    # f = g·√((I − θ)₊)  (type-I excitability near rheobase)
    "sqrt": (lambda I, th, g: g * np.sqrt(np.maximum(I - th, 0.0)), ("theta", "g"), ("pA", "Hz/pA^0.5")),
}


def _initial(model: str, I: np.ndarray, f: np.ndarray):
    span = float(np.ptp(I)) or 1.0
    slope = float(np.polyfit(I, f, 1)[0]) if I.size > 1 else 1.0
    slope = slope if slope > 0 else 1e-3
    th_lin = float(I.min() - f[np.argmin(I)] / slope)
    if model == "softplus":
        return [th_lin, slope, span / 10], ([-np.inf, 0, 1e-6 * span], [np.inf, np.inf, 10 * span])
    if model == "sigmoid":
        return [1.2 * f.max(), float(np.median(I)), span / 3], ([0, -np.inf, 1e-6 * span], [np.inf, np.inf, 100 * span])
    if model == "exponential":
        return [1.3 * f.max(), th_lin, span], ([0, -np.inf, 1e-6 * span], [np.inf, np.inf, 100 * span])
    if model == "linear":
        return [th_lin, slope], ([-np.inf, 0], [np.inf, np.inf])
    if model == "sqrt":
        return [min(th_lin, I.min() - 1e-3 * span), f.max() / np.sqrt(span)], ([-np.inf, 0], [np.inf, np.inf])
    raise ValueError(f"unknown transfer model {model!r}; choose from {sorted(TRANSFER_MODELS)}")


def _warn_at_bounds(what: str, names, units, popt, bounds, rtol: float = 1e-6) -> None:
    """:class:`FitWarning` for each parameter within ``rtol`` of a finite bound of its search range:
    there the optimiser stopped at the edge, so the value is set by the range, not by the data."""
    lo, hi = (np.broadcast_to(np.asarray(b, float), len(popt)) for b in bounds)
    for name, unit, val, a, b in zip(names, units, popt, lo, hi):
        for edge, side in ((a, "lower"), (b, "upper")):
            scale = max(abs(edge), abs(b - a) if np.isfinite(b - a) else 1.0)
            if np.isfinite(edge) and abs(val - edge) <= rtol * scale:
                warnings.warn(f"{what} fit: {name} = {val:.6g} {unit} sits at its {side} bound {edge:.6g}; "
                              "the data do not constrain it (try another model or more points)",
                              FitWarning, stacklevel=3)


def _warn_outside_data(model: str, I: np.ndarray, f: np.ndarray, threshold: float, sat: float) -> None:
    """:class:`FitWarning` when the fitted threshold lies outside [min I − span, max I] (pA) or the
    saturation rate exceeds 10× the largest measured rate: both are extrapolations the f–I points
    do not support."""
    span = float(np.ptp(I)) or 1.0
    if not (I.min() - span <= threshold <= I.max()):
        warnings.warn(f"{model} fit: threshold {threshold:.4g} pA lies outside the data range "
                      f"[{I.min() - span:.4g}, {I.max():.4g}] pA (min I − span … max I); it is an extrapolation",
                      FitWarning, stacklevel=3)
    if np.isfinite(sat) and f.max() > 0 and sat > 10 * f.max():
        warnings.warn(f"{model} fit: saturation {sat:.4g} Hz is more than 10× the largest measured rate "
                      f"{f.max():.4g} Hz; the f–I points show no saturation", FitWarning, stacklevel=3)


def transfer_function(I, params: xr.Dataset | Mapping) -> np.ndarray:
    """Evaluate a fitted transfer function (the result of :func:`fit_transfer_function`) at I (pA)."""
    model = params.attrs["model"] if isinstance(params, xr.Dataset) else params["model"]
    fn, names, _ = TRANSFER_MODELS[model]
    return fn(np.asarray(I, dtype=float), *[float(params[n]) for n in names])


def fit_transfer_function(I, f, model: str = "sigmoid") -> xr.Dataset:
    """Least-squares fit (scipy ``curve_fit``) of a rate transfer function f(I) to f–I points.

    ``I`` in pA, ``f`` in Hz (arrays or DataArrays; an f DataArray along ``amplitude`` may be given
    alone with ``I=None``).  Models (see :data:`TRANSFER_MODELS`): ``softplus``, ``sigmoid``,
    ``exponential`` (saturating), ``linear``, ``sqrt``.  Summary quantities, comparable across
    models:

    * ``threshold`` (pA): θ, or I½ − 2s for the sigmoid (where its tangent at I½ reaches 0 Hz);
    * ``gain`` (Hz/pA): slope at threshold for ``exponential`` (f_max/I_s), maximal slope for
      ``sigmoid`` (f_max/4s), asymptotic slope for ``softplus``/``linear``; NaN for ``sqrt``;
    * ``saturation`` (Hz): f_max, or NaN (inf) for non-saturating models;
    * ``r2`` = 1 − SS_res/SS_tot on the given points.

    The fitted parameters are variables named as in the model (units attrs); ``attrs['model']``.
    """
    from scipy.optimize import curve_fit

    if I is None:
        if not isinstance(f, xr.DataArray) or "amplitude" not in f.coords:
            raise ValueError("fit_transfer_function: give I, or an f DataArray with an 'amplitude' coordinate")
        I = f.coords["amplitude"].values
    I = np.asarray(I, dtype=float).ravel()
    f = np.asarray(f, dtype=float).ravel()
    if I.shape != f.shape:
        raise ValueError(f"I and f differ in length: {I.size} vs {f.size}")
    ok = np.isfinite(I) & np.isfinite(f)
    I, f = I[ok], f[ok]
    if model not in TRANSFER_MODELS:
        raise ValueError(f"unknown transfer model {model!r}; choose from {sorted(TRANSFER_MODELS)}")
    fn, names, units = TRANSFER_MODELS[model]
    if I.size < len(names):
        raise ValueError(f"model {model!r} has {len(names)} parameters but only {I.size} points were given")
    p0, bounds = _initial(model, I, f)
    popt, _ = curve_fit(fn, I, f, p0=p0, bounds=bounds, maxfev=50000)
    _warn_at_bounds(model, names, units, popt, bounds)
    p = dict(zip(names, popt))
    if model == "sigmoid":
        threshold, gain, sat = p["I_half"] - 2 * p["s"], p["f_max"] / (4 * p["s"]), p["f_max"]
    elif model == "exponential":
        threshold, gain, sat = p["theta"], p["f_max"] / p["I_s"], p["f_max"]
    elif model in ("softplus", "linear"):
        threshold, gain, sat = p["theta"], p["g"], np.nan
    else:  # sqrt
        threshold, gain, sat = p["theta"], np.nan, np.nan
    _warn_outside_data(model, I, f, threshold, sat)
    out = {n: ((), float(v), {"units": u}) for n, v, u in zip(names, popt, units)}
    out.update({
        "threshold": ((), float(threshold), {"units": "pA", "long_name": "threshold (rheobase)"}),
        "gain": ((), float(gain), {"units": "Hz/pA", "long_name": "gain"}),
        "saturation": ((), float(sat), {"units": "Hz", "long_name": "saturation rate"}),
        "r2": ((), _r2(f, fn(I, *popt)), {"units": "1", "long_name": "coefficient of determination"}),
    })
    return xr.Dataset(out, attrs={"model": model, "n_points": int(I.size)})


# ------------------------------------------------------------------------------------- compare


def compare_model(data: Mapping | xr.Dataset, model: Mapping | xr.Dataset, quantities: Iterable[str] | None = None,
                  units: Mapping[str, str] | None = None) -> xr.Dataset:
    """Side-by-side model-vs-data table.

    ``data`` and ``model`` map quantity names to scalars (or are Datasets of scalar variables with
    ``units`` attrs, e.g. merged results of :func:`fit_transfer_function` and
    :func:`fit_membrane_tau`).  Returns a Dataset along dim ``quantity`` with ``data``, ``model``,
    ``difference`` (model − data) and ``relative_difference`` (``(model − data)/|data|``), plus a
    ``units`` coord.  Render with :func:`table_markdown`.  To simulate a fitted neuron and compare
    it with the cell's sweeps (f–I, step responses, τ_m; a figure), see
    :func:`microcircuit.ephys_model.compare_model`.
    """
    def _scalars(m):
        if isinstance(m, xr.Dataset):
            return {k: float(v.values) for k, v in m.data_vars.items() if v.ndim == 0}, \
                   {k: v.attrs.get("units", "") for k, v in m.data_vars.items()}
        return {k: float(v) for k, v in m.items()}, {}

    d, du = _scalars(data)
    m, mu = _scalars(model)
    names = list(quantities) if quantities is not None else [k for k in d if k in m]
    if not names:
        raise ValueError("compare_model: data and model share no quantity")
    missing = [k for k in names if k not in d or k not in m]
    if missing:
        raise ValueError(f"compare_model: quantities {missing} missing from data or model")
    u = {**mu, **du, **(units or {})}
    dv = np.array([d[k] for k in names])
    mv = np.array([m[k] for k in names])
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = (mv - dv) / np.abs(dv)
    return xr.Dataset(
        {"data": ("quantity", dv), "model": ("quantity", mv), "difference": ("quantity", mv - dv),
         "relative_difference": ("quantity", rel, {"units": "1"})},
        coords={"quantity": names, "units": ("quantity", [u.get(k, "") for k in names])},
    )


def table_markdown(ds: xr.Dataset, fmt: str = "{:.4g}", row_dim: str | None = None) -> str:
    """Markdown table of a 1-D Dataset (rows along its dim; a ``units`` coord becomes a column)."""
    if len(ds.dims) != 1:
        raise ValueError(f"table_markdown: need a 1-D dataset, got dims {tuple(ds.dims)}")
    row_dim = row_dim or next(iter(ds.dims))
    extra = [c for c in ds.coords if c != row_dim and ds.coords[c].dims == (row_dim,)]
    cols = extra + list(ds.data_vars)
    buf = io.StringIO()
    buf.write("| " + " | ".join([row_dim] + cols) + " |\n")
    buf.write("|" + "---|" * (len(cols) + 1) + "\n")

    def _f(v):
        if isinstance(v, (float, np.floating)):
            return "–" if not np.isfinite(v) else fmt.format(float(v))
        return str(v)

    for i in range(ds.sizes[row_dim]):
        label = ds.coords[row_dim].values[i] if row_dim in ds.coords else i
        row = [_f(ds[c].values[i]) for c in cols]
        buf.write("| " + " | ".join([str(label)] + row) + " |\n")
    return buf.getvalue()

