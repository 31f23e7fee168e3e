"""Electrophysiology: file loaders, bundled current-step data, eFEL features and rate-model fits.

Units everywhere: time **ms**, voltage **mV**, current **pA**, rate **Hz**, resistance **MΩ**
(= mV/nA).  Loaders return labelled :mod:`xarray` objects whose variables carry ``units`` and
``long_name``; bad files raise :class:`EphysFileError` naming the file and the problem.

Optional dependencies (extra ``ephys``): ``igor2`` (``.ibw``), ``pyabf`` (``.abf``), ``efel``
(feature extraction); ``h5py`` for :func:`load_nwb` (pulled in by the ``nwb`` extra).  The bundled
B6/B8 cells (:func:`load_bundled_cell`) need only NumPy.

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
        popt, _ = curve_fit(model, ts, ys, p0=p0, maxfev=20000,
                            bounds=([-np.inf, -np.inf, 1e-3], [np.inf, np.inf, 1e4]))
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

        popt, _ = curve_fit(model, ts, ys, p0=(ys[0] - vb, span), maxfev=20000,
                            bounds=([-np.inf, 1e-3], [np.inf, 1e4]))
        amp, tau = popt
        vinf = vb
        yhat = model(ts, *popt)
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
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        popt, _ = curve_fit(fn, I, f, p0=p0, bounds=bounds, maxfev=50000)
    p = dict(zip(names, popt))
    if model == "sigmoid":
        threshold, gain, sat = p["I_half"] - 2 * p["s"], p["f_max"] / (4 * p["s"]), p["f_max"]
    elif model == "exponential":
        threshold, gain, sat = p["theta"], p["f_max"] / p["I_s"], p["f_max"]
    elif model in ("softplus", "linear"):
        threshold, gain, sat = p["theta"], p["g"], np.nan
    else:  # sqrt
        threshold, gain, sat = p["theta"], np.nan, np.nan
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
    ``difference`` (model − data) and ``relative_difference`` ((model − data)/|data|), plus a
    ``units`` coord.  Render with :func:`table_markdown`.
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

