"""Labelled recordings streamed to a Zarr v3 store, one chunk of the run at a time.

The engine records into fixed-size buffers and, after each chunk of simulation steps, hands the
buffers to :class:`ZarrRecorder.append`. The recorder grows the on-disk arrays along ``time`` and
writes the block; nothing is kept in memory between appends, so peak memory is bounded by one
block (plus one encoded chunk inside zarr) however long the run is.

Store layout (Zarr format 3; consolidated metadata once closed, see :func:`consolidate`)::

    run.zarr/                      root attrs: user attrs (scenario text, seed, ...) plus
    │                              microcircuit_format="recording", format_version, microcircuit_version,
    │                              dt (ms), batch, created, closed, complete, status, reason, populations
    ├── hidden/                    one group per population; attrs: population, dt, n_records, last_step, strides,
    │   │                          and with labels= cell_type (neuron model), layer, size
    │   ├── u        (time, batch, neuron)                attrs: units, long_name, population, stride, coordinates
    │   ├── cell_type, layer (neuron,)  per-neuron labels, read by xarray as coordinates (attr ``coordinates``)
    │   ├── time     (time,)   float64 ms = step * dt rounded to dt's decimals (time_labels: 0.3, not
    │   │                      0.30000000000000004, so ds.sel(time=0.3) finds step 3; never accumulated)
    │   ├── batch    (batch,)  int64
    │   └── neuron   (neuron,) int64 index within the population
    ├── pyr1/
    │   ├── v        (time, batch, neuron, compartment)   stride 10, neurons [0, 3, 5]
    │   ├── u        (time_u, batch, neuron_u)            declared later with stride 1: own dims (below)
    │   ├── compartment (compartment,) variable-length strings (read back as numpy StringDType)
    │   └── time, time_u, neuron, neuron_u, batch
    ├── metrics/                   per-epoch learning curves: epoch (int64) + one float64 array per metric
    └── checkpoint/                versioned state: checkpoint/v<k>/..., attr ``current`` points at the valid one

Dimension naming inside a population group: the first variable declared for a population gets the
plain dims ``time``, ``neuron`` and ``compartment``. A later variable whose stride, neuron selection
or compartment list differs from every dim already in the group gets that dim suffixed with its own
name (``time_v``, ``neuron_v``, ``compartment_v``); variables that agree share the dim. So the
common case (all variables of a population recorded at one stride for one neuron set) reads as plain
``time``/``neuron``/``compartment``, and the dims never clash in one xarray Dataset.

Chunking: a zarr chunk spans the same simulation steps for every variable (``chunk_records`` steps,
i.e. ``ceil(chunk_records / stride)`` records), so appending one engine chunk writes exactly one
whole zarr chunk per variable with no read-back. With ``chunk_records=None`` the chunk length is
taken from each variable's first appended block. Measured: appending 500-step blocks of 1.7 MB
peaks at ~1.0-1.1x the block size for 3 or 30 blocks alike; a 4 MiB chunk filled by 1.6 MB blocks
(read-modify-write) peaks near 15 MB.

Speed: an append writes all arrays of the block concurrently (one round trip to zarr's event loop),
and arrays grow ahead by room for 16 blocks (``_GROW_BLOCKS``), so the array metadata is rewritten
once per 16 appends; :meth:`ZarrRecorder.close` trims every array to its committed records. The
``codec`` option picks the chunk compression (``"zstd"`` default, ``"lz4"``, ``"none"``).

Crash behaviour: each append grows the arrays if needed, writes the data and the time coordinate, and
only then records the new length in the group attr ``n_records`` (one atomic metadata write per group).
zarr's ``LocalStore`` writes every chunk and metadata file atomically (temporary file + rename), so a
process killed between or during appends leaves a readable store: arrays may be longer than
``n_records`` (the room grown ahead, and the in-flight block, possibly half written), and
:func:`open_recording` and
:func:`describe_store` trim every group to ``n_records``. At most the in-flight block is lost; records
already counted are never touched again when appends write whole chunks (block length a multiple of
``chunk_records``); otherwise the last, partial chunk is rewritten by the next append, also atomically.
A store that was never closed reads ``complete=False, status="running"``; a store still being
written can be opened at any time (it shows the committed records).

One writer at a time: the recorder holds an ``flock`` on the store directory from creation (or
:meth:`ZarrRecorder.reopen`) to :meth:`ZarrRecorder.close`, released by the kernel if the process
dies, and names itself in the root attr ``writer``; ``overwrite`` replaces only a store of this
package or an empty directory, after locking it (:mod:`microcircuit.storelock`).
"""

from __future__ import annotations

import datetime as _datetime
import functools
import math
import os
import re
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

__all__ = [
    "RecordedVariable",
    "ZarrRecorder",
    "RecordingError",
    "RecordingExistsError",
    "RecordingNotFoundError",
    "open_recording",
    "describe_store",
    "read_checkpoint",
    "verify_store",
    "ChunkChecksumError",
    "IncompleteStoreWarning",
    "StoreProblem",
    "time_labels",
    "consolidate",
]

FORMAT_NAME = "recording"
FORMAT_VERSION = 1
METRICS_GROUP = "metrics"
CHECKPOINT_GROUP = "checkpoint"
_RESERVED_GROUPS = frozenset({METRICS_GROUP, CHECKPOINT_GROUP})
_AUTO_CHUNK_BYTES = 4 * 1024 * 1024
_METRIC_CHUNK = 1024
_STATUS_WORDS = frozenset({"interrupted", "diverged", "failed", "killed", "cancelled", "stopped", "timeout", "error"})
_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")
# Root attrs owned by the recorder; user attrs may repeat them only with the same value.
_RESERVED_ATTRS = frozenset(
    {
        "microcircuit_format",
        "format_version",
        "microcircuit_version",
        "dt",
        "dt_units",
        "batch",
        "created",
        "closed",
        "complete",
        "status",
        "reason",
        "populations",
        "writer",
    }
)
_CLOSE_ONLY_ATTRS = frozenset({"complete", "status", "reason", "closed", "microcircuit_format", "format_version",
                               "writer"})


# --------------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------------
try:  # the package's common base class, so `except MicrocircuitError` catches recording errors too
    from .errors import MicrocircuitError as _Base
except ImportError:  # pragma: no cover - recording.py used on its own
    _Base = Exception


class RecordingError(_Base):
    """A recording store cannot be written or read as asked; the message names the path and the fix."""


class RecordingExistsError(RecordingError, FileExistsError):
    """The target path exists and ``overwrite`` was not set."""


class RecordingNotFoundError(RecordingError, FileNotFoundError):
    """The store path does not exist."""


# --------------------------------------------------------------------------------------------------
# Specs
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class RecordedVariable:
    """One recorded variable: which population, which neurons and compartments, how often, which dtype.

    ``neurons`` are indices within the population (1-D, unique, non-negative). ``compartments`` is a
    sequence of compartment names, or ``None`` for a per-neuron variable. ``stride`` is the number of
    simulation steps between two records (record ``i`` of a block is at step ``first_step + i*stride``
    unless explicit steps are given to :meth:`ZarrRecorder.append`).
    """

    population: str
    name: str
    neurons: Any
    compartments: Sequence[str] | None = None
    units: str = ""
    long_name: str = ""
    dtype: Any = np.float64
    stride: int = 1
    chunk_records: int | None = field(default=None)  # per-variable override of the recorder's value

    def __post_init__(self) -> None:
        where = f"RecordedVariable({self.population!r}, {self.name!r})"
        for label, value in (("population", self.population), ("name", self.name)):
            if not isinstance(value, str) or not _NAME_RE.match(value) or value.startswith("__"):
                raise RecordingError(
                    f"{where}: {label} {value!r} is not a valid store name; use letters, digits, '_', '.', '-'"
                )
        if self.population in _RESERVED_GROUPS:
            raise RecordingError(
                f"{where}: population name {self.population!r} is reserved for the store's "
                f"{self.population} group; rename the population"
            )
        neurons = np.asarray(self.neurons)
        if neurons.ndim != 1 or neurons.size == 0 or not np.issubdtype(neurons.dtype, np.integer):
            raise RecordingError(
                f"{where}: neurons must be a non-empty 1-D integer array of indices, got shape "
                f"{neurons.shape} dtype {neurons.dtype}"
            )
        if (neurons < 0).any() or np.unique(neurons).size != neurons.size:
            raise RecordingError(f"{where}: neurons must be unique non-negative indices, got {neurons.tolist()}")
        neurons = neurons.astype(np.int64)
        neurons.setflags(write=False)
        object.__setattr__(self, "neurons", neurons)
        if self.compartments is not None:
            comps = tuple(self.compartments)
            if isinstance(self.compartments, str) or not comps or not all(isinstance(c, str) and c for c in comps):
                raise RecordingError(
                    f"{where}: compartments must be a non-empty sequence of names such as "
                    f"('soma', 'basal', 'apical') or None, got {self.compartments!r}"
                )
            if len(set(comps)) != len(comps):
                raise RecordingError(f"{where}: compartment names repeat: {comps}")
            object.__setattr__(self, "compartments", comps)
        try:
            dtype = np.dtype(self.dtype)
        except TypeError as exc:
            raise RecordingError(f"{where}: dtype {self.dtype!r} is not a numpy dtype ({exc})") from None
        if dtype.kind not in "fiub":
            raise RecordingError(f"{where}: dtype {dtype} is not numeric; record float32/float64 (or int/bool)")
        object.__setattr__(self, "dtype", dtype)
        if isinstance(self.stride, bool) or not isinstance(self.stride, (int, np.integer)) or self.stride < 1:
            raise RecordingError(f"{where}: stride must be an integer >= 1, got {self.stride!r}")
        object.__setattr__(self, "stride", int(self.stride))
        if self.chunk_records is not None and (not isinstance(self.chunk_records, (int, np.integer)) or self.chunk_records < 1):
            raise RecordingError(f"{where}: chunk_records must be an integer >= 1 or None, got {self.chunk_records!r}")

    @property
    def key(self) -> tuple[str, str]:
        return (self.population, self.name)

    @property
    def n_neurons(self) -> int:
        return int(self.neurons.size)

    def record_shape(self, batch: int) -> tuple[int, ...]:
        """Shape of one record (one time point): ``(batch, n_neurons[, n_compartments])``."""
        if self.compartments is None:
            return (batch, self.n_neurons)
        return (batch, self.n_neurons, len(self.compartments))


# --------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------
_MAX_TIME_DECIMALS = 9


def time_decimals(dt: float) -> int | None:
    """Decimal places of ``dt`` as written (0.1 -> 1, 0.025 -> 3, 2.0 -> 0), or None when ``dt`` has
    more than :data:`_MAX_TIME_DECIMALS` (1/3 ms: no decimal label is exact, so none is made)."""
    text = np.format_float_positional(float(dt), trim="-")
    places = len(text.partition(".")[2])
    return places if places <= _MAX_TIME_DECIMALS else None


def time_labels(steps: Any, dt: float) -> np.ndarray:
    """Time coordinates in ms of the integer ``steps``: ``step * dt`` rounded to the decimals of ``dt``.

    Why: ``3 * 0.1`` is ``0.30000000000000004`` in binary floating point, so ``ds.sel(time=0.3)``
    would miss the record at step 3. Every multiple of a decimal ``dt`` has at most as many
    decimals as ``dt``, so rounding to them gives the double nearest the exact decimal time (``0.3``)
    and labels that compare equal to what a user types. Only the coordinate changes: recorded values
    are untouched. Computed from the integer step, never accumulated, so labels do not drift."""
    t = np.asarray(steps, dtype=np.int64).astype(np.float64) * float(dt)
    places = time_decimals(dt)
    return t if places is None else np.round(t, places)


def _jsonable(value: Any, where: str) -> Any:
    """Convert numpy scalars/arrays, tuples and paths to JSON types; raise naming ``where`` otherwise."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist(), where)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise RecordingError(f"{where}: attribute keys must be strings, got {k!r}")
            out[k] = _jsonable(v, f"{where}.{k}")
        return out
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, f"{where}[{i}]") for i, v in enumerate(value)]
    raise RecordingError(
        f"{where}: value of type {type(value).__name__} cannot be stored as a JSON attribute; "
        "convert it to str, a number, a list or a dict"
    )


def _package_version() -> str:
    pkg = sys.modules.get("microcircuit")
    version = getattr(pkg, "__version__", None)
    if isinstance(version, str):
        return version
    try:
        from importlib.metadata import PackageNotFoundError, version as _v

        return _v("microcircuit")
    except PackageNotFoundError:
        return "unknown"


def _now() -> str:
    return _datetime.datetime.now(_datetime.timezone.utc).isoformat(timespec="seconds")


def _is_zarr_store(path: Path) -> bool:
    return path.is_dir() and (path / "zarr.json").is_file()


def _open_root(path: Path, mode: str = "r"):
    """Open the root group of an existing microcircuit store or raise RecordingError naming the path."""
    import zarr

    if not path.exists():
        raise RecordingNotFoundError(
            f"{path}: no such recording store; check the path (a store is the directory written by "
            "`microcircuit run`)"
        )
    if not _is_zarr_store(path):
        raise RecordingError(
            f"{path}: not a Zarr v3 store (no zarr.json); pass the directory written by `microcircuit run`"
        )
    # readers go through the checksum-checking store, so a damaged chunk is an error naming itself
    store = _checked_store(path) if mode == "r" else str(path)
    try:
        # never the consolidated copy: integrity checks and live readers must see the files as they are
        root = zarr.open_group(store=store, mode=mode, zarr_format=3, use_consolidated=False)
    except Exception as exc:  # zarr raises several types for damaged or v2 stores
        raise RecordingError(f"{path}: cannot open as a Zarr v3 group ({type(exc).__name__}: {exc})") from exc
    if root.attrs.get("microcircuit_format") != FORMAT_NAME:
        raise RecordingError(
            f"{path}: a Zarr store but not a microcircuit recording (root attr "
            f"microcircuit_format={root.attrs.get('microcircuit_format')!r}); pass a store written by "
            "`microcircuit run`"
        )
    version = root.attrs.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise RecordingError(
            f"{path}: recording format_version {version!r} is newer than this microcircuit understands "
            f"({FORMAT_VERSION}); upgrade microcircuit"
        )
    return root


def consolidate(path: str | os.PathLike) -> None:
    """Write the consolidated metadata of a closed store (every node's ``zarr.json`` copied into the
    root's), so that plain ``xr.open_zarr(path, group=...)`` and ``xr.open_datatree(path,
    engine="zarr")`` open it in one read and without a warning (an error under ``-W error``).

    Only a store that no longer changes is consolidated: :meth:`ZarrRecorder.close` does it last, and
    :meth:`ZarrRecorder.reopen` drops the copy before anything grows again, so a consolidated copy is
    never stale. zarr warns that consolidation is not yet in the v3 spec; that warning is ours to
    silence (xarray and zarr-python read it)."""
    import warnings

    import zarr

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        zarr.consolidate_metadata(str(path))


def drop_consolidated(root) -> None:
    """Remove the consolidated copy from the root ``zarr.json`` of a store opened for writing (see
    :func:`consolidate`): rewriting the root metadata of a group opened with ``use_consolidated=False``
    leaves it out, attributes unchanged."""
    root.update_attributes({})


def _population_groups(root) -> list[str]:
    names = root.attrs.get("populations")
    if isinstance(names, list):
        return [str(n) for n in names]
    return sorted(n for n, _ in root.groups() if n not in _RESERVED_GROUPS)


class DimNames:
    """Assigns dim names inside one population group (see the module docstring): the first time step /
    neuron selection / compartment list gets ``time`` / ``neuron`` / ``compartment``, another one
    ``<kind>_<variable>``. The Zarr recorder and the in-memory recorder name dims with it."""

    def __init__(self) -> None:
        self.entries: dict[str, list[tuple[Any, str]]] = {"time": [], "neuron": [], "compartment": []}

    def assign(self, kind: str, key: Any, var: str) -> tuple[str, bool]:
        for existing, name in self.entries[kind]:
            if existing == key:
                return name, False
        name = kind if not self.entries[kind] else f"{kind}_{var}"
        self.entries[kind].append((key, name))
        return name, True


@dataclass
class _VarState:
    spec: RecordedVariable
    array: Any
    time_dim: str
    dims: tuple[str, ...]
    chunk_records: int
    adapt: bool = False  # chunk length still to be taken from the first append


@dataclass
class _TimeState:
    group: str
    dim: str
    stride: int
    array: Any
    variables: list[tuple[str, str]]
    n: int = 0
    last_step: int | None = None


# --------------------------------------------------------------------------------------------------
# Writer
# --------------------------------------------------------------------------------------------------
CODECS = ("zstd", "lz4", "none")
"""Chunk compression of recorded variables. Measured on the Bars microcircuit (all 393 values per
step, 5000-step chunks, float64, 2-core VM): its time-major chunks of noisy membrane potentials hardly
compress (zstd 1.12x, lz4+shuffle 1.18x), and the writer alone reaches ~280-390 MB/s with zstd and
~340-800 MB/s with "none" (back to back, loaded machine). zstd stays the default: held inputs,
weights and sparse signals compress far better than this worst case."""


def _check_codec(codec: Any, path: Path) -> str:
    c = "none" if codec is None else codec
    if c not in CODECS:
        raise RecordingError(f"{path}: codec {codec!r} is not one of {list(CODECS)}; pick one of them (or None)")
    return c


def _compressors(codec: str) -> tuple[Any, ...]:
    """The zarr v3 ``compressors`` argument for a codec name: the compressor (none for ``"none"``),
    then zarr's ``crc32c`` checksum codec as the last bytes-to-bytes codec.

    Every chunk file then ends in the CRC-32C of its (compressed) bytes, which zarr checks on every
    read: a flipped bit is an error instead of a silently wrong value (or, for ``"none"``, a wrong
    number that no decompressor would notice). Costs 4 bytes per chunk and one CRC pass over the
    encoded chunk (measured in :func:`_chunk_encoder`'s docstring)."""
    from zarr.codecs import Crc32cCodec

    if codec == "none":
        return (Crc32cCodec(),)
    if codec == "lz4":
        from zarr.codecs import BloscCodec

        return (BloscCodec(cname="lz4", clevel=5, shuffle="shuffle"), Crc32cCodec())
    from zarr.codecs import ZstdCodec

    return (ZstdCodec(level=0), Crc32cCodec())


_ARRAY_CONFIG = {"write_empty_chunks": True}
"""Recorded arrays write every chunk as it comes: by default zarr first tests whether a chunk equals
the fill value (NaN), with ``np.array_equal(..., equal_nan=True)``, i.e. several passes and a copy
of every chunk; that test costs more than writing the chunk. (A chunk of all NaN is then stored
instead of being left out, which reads back the same.)"""

_GROW_BLOCKS = 16
"""An array that must grow along time grows by room for this many blocks of the current length, so
that its metadata is rewritten once per 16 appends, not at every append (a metadata write costs about
as much as a chunk write); :meth:`ZarrRecorder.close` trims every array to its records."""


def _chunk_encoder(arr) -> Any:
    """A function encoding one whole chunk's C-ordered values exactly as ``arr``'s codecs do, as
    ``(payload, trailer)``: the chunk file is the payload followed by the trailer. ``None`` for a
    pipeline other than the recorder's (zarr then writes the chunk itself).

    The recorder's pipelines (:func:`_compressors`) are ``bytes`` little-endian, then nothing,
    ``zstd`` or ``blosc``, then (stores since the checksums) zarr's ``crc32c``. The trailer is that
    codec's 4 bytes, the little-endian CRC-32C of the payload computed with ``google_crc32c`` as
    zarr's own codec does, and ``b""`` without it; keeping it apart means a raw chunk is never copied
    to append 4 bytes. Measured on a Bars-sized chunk (500 steps x 393 float64, 1.5 MiB) on the
    2-core VM: the CRC takes 70 us (22 GB/s), i.e. 0.14 us per step, against 7-9 us per step (codec
    "none") or 13-17 us (zstd) for encoding and writing the same values in 8 arrays, within that
    measurement's noise. The byte equality with zarr's chunks is tested for every codec."""
    from zarr.codecs import Crc32cCodec

    codecs = tuple(arr.metadata.codecs)
    checksum = bool(codecs) and isinstance(codecs[-1], Crc32cCodec)
    compress = _compress_fn(codecs[:-1] if checksum else codecs)
    if compress is None:
        return None
    if not checksum:
        return lambda a: (compress(a), b"")
    import google_crc32c

    def encode(a: np.ndarray) -> tuple[Any, bytes]:
        payload = compress(a)
        # google_crc32c takes read-only buffers or numpy arrays, not a memoryview: view, no copy
        crc = google_crc32c.value(np.frombuffer(payload, dtype=np.uint8))
        return payload, crc.to_bytes(4, "little")

    return encode


def _compress_fn(codecs: tuple) -> Any:
    """The array-to-bytes and compression part of :func:`_chunk_encoder` (one function of a chunk)."""
    from zarr.codecs import BloscCodec, BytesCodec, ZstdCodec

    if not codecs or not isinstance(codecs[0], BytesCodec) or len(codecs) > 2 or sys.byteorder != "little":
        return None
    if codecs[0].endian is not None and codecs[0].endian.value != "little":
        return None
    if len(codecs) == 1:
        return lambda a: memoryview(a).cast("B")
    c = codecs[1]
    if isinstance(c, ZstdCodec):
        from numcodecs import Zstd

        return Zstd(level=c.level, checksum=c.checksum).encode
    if isinstance(c, BloscCodec) and c.typesize is not None:
        from numcodecs import Blosc

        shuffle = {"noshuffle": Blosc.NOSHUFFLE, "shuffle": Blosc.SHUFFLE, "bitshuffle": Blosc.BITSHUFFLE}
        return Blosc(cname=c.cname.value, clevel=c.clevel, shuffle=shuffle[c.shuffle.value],
                     blocksize=c.blocksize, typesize=c.typesize).encode
    return None


def _whole_chunks(arr, n0: int, data: np.ndarray) -> int:
    """How many whole chunks along time ``data`` fills when written at ``n0`` (0 when it starts inside a
    chunk, or the array is chunked along another axis)."""
    cr = arr.chunks[0]
    if n0 % cr or tuple(arr.chunks[1:]) != tuple(data.shape[1:]) or not data.flags.c_contiguous:
        return 0
    return data.shape[0] // cr


WRITERS = {
    "fast": "whole chunks encoded and written by the recorder (zarr's codecs, its chunk keys; O_DIRECT for "
            "large files), the rest through zarr: several times faster for many small arrays",
    "zarr": "zarr's public API only (Array.resize, array[a:b] = block): the reference the fast writer is "
            "tested against, byte for byte",
}


def _write_public(jobs: Sequence[tuple[Any, int, np.ndarray]]) -> None:
    """:func:`_resize_and_write` through zarr's public API: grow, then assign the block."""
    for arr, n0, data in jobs:
        m = data.shape[0]
        if arr.shape[0] < n0 + m:
            arr.resize((n0 + _GROW_BLOCKS * m, *arr.shape[1:]))
        arr[n0:n0 + m] = data


def _resize_and_write(jobs: Sequence[tuple[Any, int, np.ndarray]], store_path: Path | None = None,
                      made: set | None = None) -> None:
    """For each ``(array, n0, data)``: write ``data`` at ``n0`` along time, growing ``array`` first if it
    is shorter than ``n0 + len(data)``.

    Whole chunks of a store on a local directory (``store_path``) are encoded here and written as
    files at their chunk keys: the same bytes zarr would write (:func:`_chunk_encoder`), without its
    event loop, which costs several times the file write itself for the recorder's many arrays
    (measured on the Bars microcircuit recording its 393 values every step, codec none, on the 2-core
    VM: 7.3-7.9 us per step through zarr, 3.8-5.7 us written here). Growing the
    arrays (metadata) and anything else (a chunk's tail, another codec) go through zarr, all arrays
    concurrently on its event loop (one ``sync`` for the whole block). ``made``: the chunk directories
    already created (so that each is made once)."""
    if not jobs:
        return
    import asyncio

    from zarr.core.sync import sync

    direct, rest = [], []       # (whole chunks written here), (arrays to grow or write through zarr)
    for arr, n0, data in jobs:
        enc = _chunk_encoder(arr) if store_path is not None else None
        done = (_whole_chunks(arr, n0, data) if enc is not None else 0) * arr.chunks[0]
        if done:
            direct.append((arr, n0, data[:done], enc))
        if done < data.shape[0] or arr.shape[0] < n0 + data.shape[0]:
            rest.append((arr, n0, data, done))

    async def one(arr, n0, data, done):
        a = arr.async_array
        m = data.shape[0]
        if a.shape[0] < n0 + m:
            await a.resize((n0 + _GROW_BLOCKS * m, *a.shape[1:]))
        if done < m:
            await a.setitem(slice(n0 + done, n0 + m), data[done:])

    async def all_jobs():
        await asyncio.gather(*(one(*job) for job in rest))

    if rest:
        sync(all_jobs())
    made = set() if made is None else made
    for arr, n0, data, enc in direct:
        cr = arr.chunks[0]
        base = store_path / arr.path
        key = arr.metadata.chunk_key_encoding.encode_chunk_key
        tail = (0,) * (data.ndim - 1)
        for c in range(data.shape[0] // cr):
            f = base / key((n0 // cr + c, *tail))
            if f.parent not in made:
                f.parent.mkdir(parents=True, exist_ok=True)
                made.add(f.parent)
            _write_file(f, *enc(data[c * cr:(c + 1) * cr]))


_DIRECT_ALIGN = 4096            # O_DIRECT: buffer address, length and file offset in multiples of this
_DIRECT_MIN = 256 * 1024        # smaller files: one buffered write
_direct: dict[str, Any] = {"refused": set()}     # devices (st_dev) whose file system refused O_DIRECT
_scratch_local = threading.local()


def _scratch(n: int) -> Any:
    """A page-aligned buffer of at least n bytes, one per thread (writers of several recorders may run at once)."""
    import mmap

    buf = getattr(_scratch_local, "buf", None)
    if buf is None or len(buf) < n:
        size = -(-(n + (n >> 2)) // _DIRECT_ALIGN) * _DIRECT_ALIGN     # room to grow a little
        buf = _scratch_local.buf = mmap.mmap(-1, size)
    return buf


def _write_buffered(path: Path, data: Any, trailer: bytes = b"") -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        if trailer:
            fh.write(trailer)


def _write_file(path: Path, payload: Any, trailer: bytes = b"") -> None:
    """Write ``payload`` (bytes-like) followed by ``trailer`` (a few bytes: a chunk's checksum) as the
    file ``path``.

    Large files bypass the page cache (``O_DIRECT``) for their aligned body, through a page-aligned
    scratch buffer, and write the tail (under 4 KiB) buffered. A buffered write must allocate and fill
    a fresh page-cache page for every 4 KiB, which on the 2-core VM these numbers come from runs at
    0.4-0.5 GB/s against 1.7 GB/s direct (``dd``, 512 MiB); a recording of every variable produces
    about 1.7 GB/s. Where O_DIRECT is missing (macOS, Windows) or refused (some file systems), a plain write."""
    mv = memoryview(payload).cast("B")
    m = mv.nbytes
    n = m + len(trailer)
    body = n - n % _DIRECT_ALIGN
    dev = os.stat(path.parent).st_dev if n >= _DIRECT_MIN and hasattr(os, "O_DIRECT") else None
    if dev is None or dev in _direct["refused"]:
        return _write_buffered(path, mv, trailer)
    import fcntl

    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_DIRECT, 0o666)
    except OSError:
        _direct["refused"].add(dev)
        return _write_buffered(path, mv, trailer)
    try:
        buf = _scratch(n)
        buf[:m] = mv
        buf[m:n] = trailer
        out = memoryview(buf)
        try:
            done = os.write(fd, out[:body])
        except OSError:         # the file system refuses O_DIRECT writes: buffered from now on
            _direct["refused"].add(dev)
            done = 0
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_DIRECT)
        while done < n:
            done += os.write(fd, out[done:n])
    finally:
        os.close(fd)


def close_reason(exc: BaseException, where: str = "") -> str:
    """The ``reason`` to close a store with after ``exc`` stopped the run writing it.

    Its first word becomes the store's ``status`` (:meth:`ZarrRecorder.close`): Ctrl-C, or SIGTERM
    turned into a KeyboardInterrupt that carries ``signal_name`` (:class:`microcircuit.errors.Terminated`),
    gives ``"interrupted (SIGTERM) at step 1200, t = 120 ms"``; anything else, e.g. a full disk,
    ``"failed: OSError: [Errno 28] No space left on device ... at step 1200, t = 120 ms"``.
    ``where`` is the position of the run, appended as is.
    """
    at = f" {where}" if where else ""
    if isinstance(exc, KeyboardInterrupt):
        return f"interrupted ({getattr(exc, 'signal_name', 'KeyboardInterrupt')}){at}"
    return f"failed: {type(exc).__name__}: {exc}{at}"


@runtime_checkable
class Recorder(Protocol):
    """Where a :class:`~microcircuit.simulation.Simulation` sends its records: the in-memory
    :class:`~microcircuit.simulation.MemoryRecorder` and :class:`ZarrRecorder` both follow it, and a
    simulation uses nothing else of them.

    ``keeps_blocks``: the recorder keeps the arrays it is given (memory: the simulation hands over a
    fresh buffer per chunk and converts dtypes first) or writes them out and forgets them (Zarr: written
    on a background thread from one of two alternating buffers)."""
    keeps_blocks: bool

    def append(self, blocks, first_step=None, *, steps=None) -> None:
        """One block per variable ``(population, name)``, with the step of every record."""

    def running(self, is_running: bool, n_steps_done: int) -> None:
        """Called when a run starts and returns (memory: the status says ``running`` / ``complete``)."""

    def set_attrs(self, **attrs: Any) -> None:
        """Attributes of the recording (JSON values)."""

    def position(self) -> dict[str, dict[str, Any]]:
        """Records written so far per ``"population/time_dim"`` (``n_records``, ``last_step``)."""

    def close(self, complete: bool = True, reason: str | None = None) -> None:
        """Mark the recording complete, or incomplete with ``reason``."""

    def to_datatree(self):
        """The records as an :class:`xarray.DataTree`."""


class ZarrRecorder:
    """Stream labelled recordings of a run into a Zarr v3 store, block by block.

    Parameters
    ----------
    path : directory of the store to create.
    specs : the recorded variables.
    dt : step size in ms; time coordinates are ``step * dt`` in float64, rounded to the decimals of
        ``dt`` (:func:`time_labels`), so they equal the decimal times a user types.
    batch : number of parallel batch rows in every block.
    chunk_records : length of a zarr chunk along time, counted in records of a stride-1 variable,
        i.e. in simulation steps: a variable with stride ``s`` gets ``ceil(chunk_records / s)``
        records per chunk, so every variable's chunks span the same steps. Appending blocks of
        ``chunk_records`` steps (the engine's chunk length) writes one whole chunk per variable and
        never reads back (no read-modify-write); other block lengths work but rewrite the last,
        partial chunk. ``None``: each variable's chunk is the length of its first appended block
        (so equal-length engine chunks write whole zarr chunks), or about 4 MiB if that block is
        over 16 MiB. A spec's own ``chunk_records`` (in its own records) overrides both.
    block_steps : with ``chunk_records=None``, the block length (steps) the caller will append
        (the engine's chunk), used instead of the first block's, so that a short first run (a
        warm-up) does not fix tiny chunks for the whole store.
    attrs : root attributes (scenario text, seed, git SHA, ...). JSON-serialisable; numpy scalars
        and arrays are converted.
    codec : compression of the recorded variables' chunks (see :data:`CODECS`): ``"zstd"`` (zarr's
        default, Zstandard level 0), ``"lz4"`` (Blosc LZ4 with byte shuffle, faster) or ``"none"``
        (raw little-endian bytes, fastest to write). Decoding needs nothing but zarr either way.
    overwrite : replace an existing store at ``path``. Only a store written by microcircuit (root
        attr ``microcircuit_format``) or an empty directory is ever deleted, and only after locking
        it; anything else raises (:func:`microcircuit.storelock.check_replaceable`).
    writer : how blocks reach the store (:data:`WRITERS`): ``"fast"`` (default) writes whole chunks itself,
        the bytes zarr would write (``tests/test_recording_writer.py`` compares every chunk file), or
        ``"zarr"``: zarr's public API only (``Array.resize``, ``array[a:b] = block``).
    labels : per population ``{"cell_type": ..., "layer": ..., ...}``, see
        :func:`microcircuit.labels.population_labels`; stored in the population group's attrs, and
        ``cell_type`` and ``layer`` also as coordinates along every neuron dim (``cell_type``/``layer``
        for ``neuron``, ``cell_type_v``/``layer_v`` for ``neuron_v``), so a neuron keeps its
        identity when populations are concatenated.

    Notes
    -----
    The recorder holds the store's lock from creation (or :meth:`reopen`) to :meth:`close`: a second
    writer, an overwrite or a resume of the store meanwhile gets StoreBusyError naming this process.

    Use as a context manager to mark the store incomplete with the exception as reason if the run
    raises, and complete otherwise.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        specs: Sequence[RecordedVariable],
        *,
        dt: float,
        batch: int = 1,
        chunk_records: int | None = 1000,
        block_steps: int | None = None,
        attrs: Mapping[str, Any] | None = None,
        overwrite: bool = False,
        codec: str | None = "zstd",
        labels: Mapping[str, Mapping[str, Any]] | None = None,
        writer: str = "fast",
    ) -> None:
        import zarr

        self.path = Path(path)
        self.block_steps = block_steps
        self.codec = _check_codec(codec, self.path)
        if writer not in WRITERS:
            raise RecordingError(f"{self.path}: writer must be one of {list(WRITERS)}, got {writer!r}")
        self.writer = writer
        self.specs: tuple[RecordedVariable, ...] = tuple(specs)
        self.labels = {str(k): _jsonable(dict(v), f"{self.path}: labels") for k, v in (labels or {}).items()}
        if not isinstance(dt, (int, float, np.floating, np.integer)) or not math.isfinite(dt) or dt <= 0:
            raise RecordingError(f"{self.path}: dt must be a positive finite number of ms, got {dt!r}")
        if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch < 1:
            raise RecordingError(f"{self.path}: batch must be an integer >= 1, got {batch!r}")
        if chunk_records is not None and (
            isinstance(chunk_records, bool) or not isinstance(chunk_records, (int, np.integer)) or chunk_records < 1
        ):
            raise RecordingError(f"{self.path}: chunk_records must be an integer >= 1 or None, got {chunk_records!r}")
        self.dt = float(dt)
        self.batch = int(batch)
        seen: set[tuple[str, str]] = set()
        for spec in self.specs:
            if not isinstance(spec, RecordedVariable):
                raise RecordingError(f"{self.path}: specs must be RecordedVariable objects, got {type(spec).__name__}")
            if spec.key in seen:
                raise RecordingError(f"{self.path}: variable {spec.population}/{spec.name} is declared twice in specs")
            seen.add(spec.key)

        user_attrs = _jsonable(dict(attrs or {}), f"{self.path}: attrs")
        own_attrs = {
            "microcircuit_format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "microcircuit_version": _package_version(),
            "dt": self.dt,
            "dt_units": "ms",
            "batch": self.batch,
            "created": _now(),
            "closed": None,
            "complete": False,
            "status": "running",
            "reason": "",
            "populations": list(dict.fromkeys(s.population for s in self.specs)),
            "writer": None,  # the process holding the store's lock, see microcircuit.storelock
        }
        for key, value in user_attrs.items():
            if key in _RESERVED_ATTRS and key in own_attrs and value != own_attrs[key] and key not in {"created", "microcircuit_version"}:
                raise RecordingError(
                    f"{self.path}: attrs[{key!r}]={value!r} conflicts with the recorder's own value "
                    f"{own_attrs[key]!r}; drop it from attrs (the recorder sets it)"
                )
        root_attrs = {**user_attrs, **own_attrs}

        self._lock = self._prepare_path(overwrite)   # held until close(); another writer is refused
        root_attrs["writer"] = self._lock.writer
        self._vars: dict[tuple[str, str], _VarState] = {}
        self._times: dict[tuple[str, str], _TimeState] = {}
        self._groups: dict[str, Any] = {}
        self._metrics = None
        self._metric_dims: dict[str, dict[str, Any]] = {}
        self._made_dirs: set = set()        # chunk directories created by the direct chunk writer
        self.closed = False
        try:
            self._root = zarr.create_group(store=str(self.path), zarr_format=3, attributes=root_attrs,
                                           overwrite=False)
            self._build_layout(chunk_records)
        except BaseException:
            from .storelock import discard_new_store

            discard_new_store(self._lock)  # leave no half store, but only one this call made under its lock
            raise

    @classmethod
    def reopen(
        cls,
        path: str | os.PathLike,
        specs: Sequence[RecordedVariable],
        *,
        n_records: Mapping[str, int] | None = None,
        last_step: Mapping[str, Any] | None = None,
    ) -> "ZarrRecorder":
        """Reopen an existing store to append more records (resuming a run from a checkpoint).

        ``specs`` must be the variables the store was created with (same populations, names, strides).
        ``n_records``/``last_step`` map ``"population/time_dim"`` to the number of records and the last
        recorded step to keep (the values saved with a checkpoint); records after them are cut away so
        the next append continues exactly where the checkpoint left off. Without them the committed
        ``n_records`` of each group are kept. The store is marked ``status="running"`` again.
        """
        from .storelock import StoreLock

        p = Path(path)
        root = _open_root(p, mode="r+")
        lock = StoreLock.acquire(p)      # a run still writing the store keeps it: StoreBusyError
        try:
            return cls._reopen_locked(p, root, lock, specs, n_records, last_step)
        except BaseException:
            lock.release()
            raise

    @classmethod
    def _reopen_locked(cls, p: Path, root, lock, specs, n_records, last_step) -> "ZarrRecorder":
        self = cls.__new__(cls)
        drop_consolidated(root)          # the arrays grow again: a consolidated copy would go stale
        self._lock = lock
        self.block_steps = None          # existing arrays keep their chunks
        self.path = p
        self.writer = "fast"             # byte-identical to "zarr" (tests/test_recording_writer.py)
        self.specs = tuple(specs)
        self.dt = float(root.attrs["dt"])
        self.batch = int(root.attrs["batch"])
        self._root = root
        self._vars, self._times, self._groups = {}, {}, {}
        self._metrics = None
        self._metric_dims = {}
        self._made_dirs = set()
        self.closed = False
        for spec in self.specs:
            pop = spec.population
            if pop not in root or spec.name not in root[pop]:
                raise RecordingError(f"{p}: has no variable {pop}/{spec.name}; cannot resume into it "
                                     "(was the store written by another scenario?)")
            grp = self._groups.setdefault(pop, root[pop])
            arr = grp[spec.name]
            dims = tuple(arr.metadata.dimension_names)
            if arr.shape[1:] != spec.record_shape(self.batch) or np.dtype(arr.dtype) != spec.dtype:
                raise RecordingError(f"{p}: {pop}/{spec.name} has shape {arr.shape[1:]} dtype {arr.dtype}; the "
                                     f"scenario asks for {spec.record_shape(self.batch)} {spec.dtype}")
            tdim = dims[0]
            tkey = (pop, tdim)
            if tkey not in self._times:
                committed = dict(grp.attrs.get("n_records", {}))
                last = dict(grp.attrs.get("last_step", {}))
                n = int(committed.get(tdim, 0))
                ls = last.get(tdim)
                key = f"{pop}/{tdim}"
                if n_records is not None and key in n_records:
                    n = int(n_records[key])
                    ls = None if last_step is None else last_step.get(key)
                tarr = grp[tdim]
                if tarr.shape[0] < n:
                    raise RecordingError(f"{p}: {pop}/{tdim} holds {tarr.shape[0]} records, fewer than the "
                                         f"{n} the checkpoint expects; the store is damaged")
                tarr.resize((n,))
                self._times[tkey] = _TimeState(pop, tdim, spec.stride, tarr, [], n,
                                               None if ls is None else int(ls))
            self._times[tkey].variables.append(spec.key)
            n = self._times[tkey].n
            if arr.shape[0] < n:
                raise RecordingError(f"{p}: {pop}/{spec.name} holds {arr.shape[0]} records, fewer than {n}")
            arr.resize((n, *arr.shape[1:]))
            self._vars[spec.key] = _VarState(spec, arr, tdim, dims, int(arr.chunks[0]), False)
        for pop, grp in self._groups.items():
            grp.update_attributes(self._group_progress(pop))
        self._load_metrics()
        resumed = int(root.attrs.get("resumed", 0)) + 1
        root.update_attributes({"complete": False, "status": "running", "reason": "", "closed": None,
                                "resumed": resumed, "writer": lock.writer})
        return self

    def _load_metrics(self) -> None:
        """The metrics table's state (rows per dimension, last coordinate) as the store holds it."""
        self._metrics, self._metric_dims = None, {}
        if METRICS_GROUP not in self._root:
            return
        mgrp = self._root[METRICS_GROUP]
        self._metrics = mgrp
        for d, n in dict(mgrp.attrs.get("n_records", {})).items():
            carr = mgrp[d]
            metrics = {nm: a for nm, a in mgrp.arrays()
                       if nm != d and tuple(a.metadata.dimension_names or ()) == (d,)}
            last = carr[int(n) - 1].item() if int(n) else None
            self._metric_dims[d] = {"coord": carr, "n": int(n), "last": last, "metrics": metrics}

    # ---------------------------------------------------------------- public state
    keeps_blocks = False     # blocks are written out (on the simulation's writer thread), not kept

    def running(self, is_running: bool, n_steps_done: int) -> None:
        """A Zarr store says ``running`` from creation to :meth:`close` (it is held open for writing);
        nothing changes between runs."""

    def to_datatree(self):
        """The store as written so far (:func:`open_recording`)."""
        return open_recording(self.path)

    @property
    def root(self):
        """The store's root group (open for writing), for callers that keep groups of their own in the
        store (a protocol's weight snapshots)."""
        return self._root

    def position(self) -> dict[str, dict[str, Any]]:
        """``{"n_records": ..., "last_step": ...}`` per ``"population/time_dim"``: how far every record
        has been written, which a checkpoint stores so that a resume cuts what came after it."""
        return {"n_records": {f"{pop}/{dim}": int(ts.n) for (pop, dim), ts in self._times.items()},
                "last_step": {f"{pop}/{dim}": ts.last_step for (pop, dim), ts in self._times.items()}}

    def truncate_metrics(self, n: int, keep: Sequence[str], dim: str = "epoch") -> None:
        """Cut the metrics table back to its first ``n`` rows along ``dim`` (a resume at a checkpoint
        taken after ``n`` rows); metric arrays not in ``keep`` (first written later) are deleted. Raises
        when the store holds fewer rows than ``n`` (it was damaged)."""
        root = self._root
        if METRICS_GROUP not in root:
            return
        if n == 0:
            del root[METRICS_GROUP]
        else:
            g = root[METRICS_GROUP]
            for nm, arr in list(g.arrays()):
                if nm != dim and nm not in keep:
                    del g[nm]
                elif arr.shape[0] < n:
                    raise RecordingError(f"{self.path}: {METRICS_GROUP}/{nm} holds {arr.shape[0]} rows, fewer "
                                         f"than the {n} of the checkpoint; the store is damaged")
                else:
                    arr.resize((n,))
            g.update_attributes({"n_records": {dim: n}})
        self._load_metrics()

    # ---------------------------------------------------------------- setup
    def _prepare_path(self, overwrite: bool):
        """Create the store directory (with ``overwrite``: empty an existing store of this package)
        and return its held :class:`~microcircuit.storelock.StoreLock`. Racing creators, live stores
        and foreign folders are handled there (:func:`~microcircuit.storelock.claim_new_store`)."""
        from .storelock import claim_new_store

        return claim_new_store(self.path, overwrite=overwrite)

    def _build_layout(self, chunk_records: int | None) -> None:
        import zarr

        tables: dict[str, DimNames] = {}
        for spec in self.specs:
            pop = spec.population
            if pop not in self._groups:
                grp = self._root.create_group(pop, attributes={**self.labels.get(pop, {}), "population": pop,
                                                               "dt": self.dt})
                self._groups[pop] = grp
                tables[pop] = DimNames()
                grp.create_array(
                    "batch", data=np.arange(self.batch, dtype=np.int64), dimension_names=("batch",),
                    compressors=_compressors("zstd"),
                    # no "units" on index coordinates: xarray would title a plot "batch = 0 []"
                    attributes={"long_name": "batch row"},
                )
            grp = self._groups[pop]
            table = tables[pop]
            if spec.name in grp or spec.name == "batch" or any(
                spec.name == name for entries in table.entries.values() for _, name in entries
            ):
                raise RecordingError(
                    f"{self.path}: variable name {spec.name!r} in population {pop!r} clashes with a coordinate "
                    "or variable of the same name; rename the variable"
                )
            tdim, new_t = table.assign("time", spec.stride, spec.name)
            ndim, new_n = table.assign("neuron", tuple(spec.neurons.tolist()), spec.name)
            cdim, new_c = (None, False)
            if spec.compartments is not None:
                cdim, new_c = table.assign("compartment", spec.compartments, spec.name)
            for dim_name, new in ((tdim, new_t), (ndim, new_n), (cdim, new_c)):
                if new and dim_name in grp:
                    raise RecordingError(
                        f"{self.path}: coordinate {pop}/{dim_name} needed by variable {spec.name!r} clashes with "
                        "a variable of that name; rename that variable"
                    )
            dims = [tdim, "batch", ndim]
            if new_n:
                grp.create_array(
                    ndim, data=spec.neurons, dimension_names=(ndim,), compressors=_compressors("zstd"),
                    attributes={"long_name": f"neuron index within population {pop}"},
                )
                self._neuron_labels(grp, pop, ndim, spec.n_neurons)
            if cdim is not None:
                dims.append(cdim)
                if new_c:
                    carr = grp.create_array(
                        cdim, shape=(len(spec.compartments),), dtype=zarr.dtype.VariableLengthUTF8(),
                        compressors=_compressors("zstd"),
                        dimension_names=(cdim,), attributes={"long_name": "compartment"},
                    )
                    carr[:] = np.array(spec.compartments, dtype=object)
            rec_shape = spec.record_shape(self.batch)
            if spec.chunk_records is not None:
                cr = int(spec.chunk_records)
            elif chunk_records is None:
                record_bytes = int(np.prod(rec_shape)) * spec.dtype.itemsize
                cr = max(1, _AUTO_CHUNK_BYTES // max(1, record_bytes))
            else:
                # chunk_records counts steps of a stride-1 variable: every chunk spans the same steps, so one
                # append of chunk_records steps is exactly one whole chunk per variable (no read-modify-write).
                cr = max(1, -(-int(chunk_records) // spec.stride))
            if new_t:
                tarr = grp.create_array(
                    tdim, shape=(0,), chunks=(max(cr, 1),), dtype="float64", fill_value=np.nan,
                    compressors=_compressors("zstd"),
                    dimension_names=(tdim,),
                    attributes={"units": "ms", "long_name": "time", "stride": spec.stride, "dt": self.dt},
                )
                self._times[(pop, tdim)] = _TimeState(pop, tdim, spec.stride, tarr, [])
            self._times[(pop, tdim)].variables.append(spec.key)
            fill = np.nan if spec.dtype.kind == "f" else 0
            arr = grp.create_array(
                spec.name, shape=(0, *rec_shape), chunks=(cr, *rec_shape), dtype=spec.dtype, fill_value=fill,
                compressors=_compressors(self.codec), config=_ARRAY_CONFIG,
                dimension_names=tuple(dims),
                attributes={
                    "units": spec.units, "long_name": spec.long_name or spec.name, "population": pop,
                    "stride": spec.stride, **self._coordinates_attr(pop, ndim),
                },
            )
            adapt = spec.chunk_records is None and chunk_records is None
            self._vars[spec.key] = _VarState(spec, arr, tdim, tuple(dims), cr, adapt)
        for pop, grp in self._groups.items():
            # "arrays": what the group must hold, so readers can tell a deleted array from one never made
            grp.update_attributes({**self._group_progress(pop), "arrays": sorted(n for n, _ in grp.arrays())})

    def _label_names(self, pop: str, ndim: str) -> list[tuple[str, str]]:
        """``[(label, array name)]`` of the neuron labels along ``ndim`` (none without labels)."""
        suffix = ndim[len("neuron"):]
        return [(k, k + suffix) for k in ("cell_type", "layer") if k in self.labels.get(pop, {})]

    def _coordinates_attr(self, pop: str, ndim: str) -> dict[str, str]:
        """CF ``coordinates`` attr: xarray reads the neuron labels as coordinates, not data variables."""
        names = [name for _, name in self._label_names(pop, ndim)]
        return {"coordinates": " ".join(names)} if names else {}

    def _neuron_labels(self, grp, pop: str, ndim: str, n: int) -> None:
        """One label per recorded neuron along ``ndim``: its cell type (text) and layer (integer)."""
        import zarr

        for label, name in self._label_names(pop, ndim):
            value = self.labels[pop][label]
            attrs = {"long_name": "cell type (neuron model)" if label == "cell_type" else
                     "layer (projections from the input)"}
            if label == "cell_type":
                arr = grp.create_array(name, shape=(n,), dtype=zarr.dtype.VariableLengthUTF8(),
                                       compressors=_compressors("zstd"), dimension_names=(ndim,), attributes=attrs)
                arr[:] = np.array([str(value)] * n, dtype=object)
            else:
                grp.create_array(name, data=np.full(n, int(value), np.int64), dimension_names=(ndim,),
                                 compressors=_compressors("zstd"), attributes=attrs)

    def _group_progress(self, pop: str) -> dict[str, Any]:
        times = [t for t in self._times.values() if t.group == pop]
        return {
            "n_records": {t.dim: t.n for t in times},
            "last_step": {t.dim: t.last_step for t in times},
            "strides": {t.dim: t.stride for t in times},
        }

    # ---------------------------------------------------------------- streaming
    @property
    def n_records(self) -> dict[tuple[str, str], int]:
        """Records written so far per ``(population, name)``."""
        return {k: self._times[(v.spec.population, v.time_dim)].n for k, v in self._vars.items()}

    def _check_open(self, what: str) -> None:
        if self.closed:
            raise RecordingError(f"{self.path}: recorder is closed; cannot {what} (open a new recorder)")

    def append(
        self,
        blocks: Mapping[tuple[str, str], np.ndarray],
        first_step: int | None = None,
        *,
        steps: Mapping[tuple[str, str], Any] | None = None,
    ) -> None:
        """Append one block per variable along time.

        ``blocks[(population, name)]`` has shape ``(n_records, batch, n_neurons[, n_compartments])``.
        Give either ``first_step`` (record ``i`` of a variable is at step ``first_step + i*stride``) or
        ``steps[(population, name)]``, the explicit integer step of every record. Variables sharing a
        time dim must be appended together with the same steps. Steps must increase past the last
        recorded step (gaps are allowed: time is stored explicitly). Everything is validated before
        anything is written.
        """
        self._check_open("append")
        if (first_step is None) == (steps is None):
            raise RecordingError(f"{self.path}: append needs exactly one of first_step= or steps=")
        unknown = [k for k in blocks if k not in self._vars]
        if unknown:
            raise RecordingError(
                f"{self.path}: append got undeclared variables {unknown}; declared: {sorted(self._vars)}"
            )
        if steps is not None:
            extra = [k for k in steps if k not in blocks]
            if extra:
                raise RecordingError(f"{self.path}: steps given for {extra} without a block")

        prepared: dict[tuple[str, str], np.ndarray] = {}
        per_time: dict[tuple[str, str], np.ndarray] = {}
        for key, block in blocks.items():
            st = self._vars[key]
            spec = st.spec
            arr = np.asarray(block)
            expected = spec.record_shape(self.batch)
            if arr.ndim != len(expected) + 1 or arr.shape[1:] != expected:
                raise RecordingError(
                    f"{self.path}: block for {spec.population}/{spec.name} has shape {arr.shape}, expected "
                    f"(n_records, {', '.join(map(str, expected))}) = (n_records, batch, neuron"
                    f"{', compartment' if spec.compartments else ''})"
                )
            m = arr.shape[0]
            if steps is not None:
                if key not in steps:
                    raise RecordingError(f"{self.path}: steps missing for {spec.population}/{spec.name}")
                s = np.asarray(steps[key])
                if s.shape != (m,) or (m and not np.issubdtype(s.dtype, np.integer)):
                    raise RecordingError(
                        f"{self.path}: steps for {spec.population}/{spec.name} must be {m} integers, got "
                        f"shape {s.shape} dtype {s.dtype}"
                    )
                s = s.astype(np.int64)
            else:
                if isinstance(first_step, bool) or not isinstance(first_step, (int, np.integer)):
                    raise RecordingError(f"{self.path}: first_step must be an integer step index, got {first_step!r}")
                s = int(first_step) + spec.stride * np.arange(m, dtype=np.int64)
            if m > 1 and not (np.diff(s) > 0).all():
                raise RecordingError(f"{self.path}: steps for {spec.population}/{spec.name} must increase strictly")
            tkey = (spec.population, st.time_dim)
            if tkey in per_time:
                if not np.array_equal(per_time[tkey], s):
                    raise RecordingError(
                        f"{self.path}: variables sharing time dim {spec.population}/{st.time_dim} were given "
                        "different record steps in one append; give them identical blocks lengths and steps"
                    )
            else:
                per_time[tkey] = s
            last = self._times[tkey].last_step
            if m and last is not None and s[0] <= last:
                raise RecordingError(
                    f"{self.path}: {spec.population}/{spec.name} first step {int(s[0])} is not after the last "
                    f"recorded step {last}; append blocks in time order"
                )
            if m and s[0] < 0:
                raise RecordingError(f"{self.path}: negative step {int(s[0])} for {spec.population}/{spec.name}")
            prepared[key] = arr
        for tkey, s in per_time.items():
            missing = [k for k in self._times[tkey].variables if k not in blocks]
            if missing and s.size:
                raise RecordingError(
                    f"{self.path}: variables {missing} share time dim {tkey[0]}/{tkey[1]} with "
                    f"{[k for k in blocks if k in self._times[tkey].variables]} and must be appended together"
                )

        # Write: data and time coordinates (all arrays at once), then each group's n_records (the commit point).
        jobs, advanced = [], []
        for tkey, s in per_time.items():
            m = int(s.size)
            if m == 0:
                continue
            ts = self._times[tkey]
            if ts.n == 0:
                bs = self.block_steps
                self._adapt_chunks(ts, -(-int(bs) // ts.stride) if bs else m)
            n0, n1 = ts.n, ts.n + m
            for key in ts.variables:
                st = self._vars[key]
                jobs.append((st.array, n0, np.ascontiguousarray(prepared[key], dtype=st.spec.dtype)))
            jobs.append((ts.array, n0, time_labels(s, self.dt)))
            advanced.append((ts, n1, int(s[-1])))
        if self.writer == "zarr":
            _write_public(jobs)
        else:
            _resize_and_write(jobs, self.path, self._made_dirs)
        touched: set[str] = set()
        for ts, n1, last in advanced:
            ts.n, ts.last_step = n1, last
            touched.add(ts.group)
        for pop in touched:     # each group's n_records/last_step: the commit point of an append
            self._groups[pop].update_attributes(self._group_progress(pop))

    def _adapt_chunks(self, ts: _TimeState, m: int) -> None:
        """chunk_records=None: size the (still empty) arrays' chunks to the first block, so that later
        blocks of the same length write whole chunks; blocks over ~16 MiB keep the ~4 MiB default."""
        grp = self._groups[ts.group]
        changed = False
        for key in ts.variables:
            st = self._vars[key]
            if not st.adapt:
                continue
            st.adapt = False
            record_bytes = int(np.prod(st.spec.record_shape(self.batch))) * st.spec.dtype.itemsize
            if m * record_bytes > 4 * _AUTO_CHUNK_BYTES or m == st.chunk_records:
                continue
            st.array = self._recreate_empty(grp, key[1], st.array, m)
            st.chunk_records = m
            changed = True
        if changed:
            ts.array = self._recreate_empty(grp, ts.dim, ts.array, m)

    @staticmethod
    def _recreate_empty(grp, name: str, arr, records: int):
        return grp.create_array(
            name, shape=arr.shape, chunks=(records, *arr.shape[1:]), dtype=arr.dtype, fill_value=arr.fill_value,
            compressors=arr.compressors, config=_ARRAY_CONFIG,
            dimension_names=arr.metadata.dimension_names, attributes=dict(arr.attrs), overwrite=True,
        )

    # ---------------------------------------------------------------- attrs and closing
    def set_attrs(self, **attrs: Any) -> None:
        """Update root attributes (e.g. ``n_steps_done``). Completion keys are set by :meth:`close`."""
        self._check_open("set attrs")
        bad = sorted(set(attrs) & _CLOSE_ONLY_ATTRS)
        if bad:
            raise RecordingError(f"{self.path}: attrs {bad} are managed by the recorder; use close(complete=..., reason=...)")
        self._root.update_attributes(_jsonable(attrs, f"{self.path}: set_attrs"))

    def close(self, complete: bool = True, reason: str | None = None) -> None:
        """Mark the store complete or not and stop writing. A second close is a no-op.

        ``status`` becomes ``"complete"``; for an incomplete run it is the first word of ``reason`` when
        that is one of interrupted, diverged, failed, killed, cancelled, stopped, timeout, error
        (``"interrupted: KeyboardInterrupt at step 1234"`` -> ``"interrupted"``), else ``"incomplete"``.
        """
        if self.closed:
            return
        reason = "" if reason is None else str(reason)
        if complete:
            status = "complete"
        else:
            words = re.findall(r"[A-Za-z_]+", reason)
            status = words[0].lower() if words and words[0].lower() in _STATUS_WORDS else "incomplete"
        try:
            self._trim_to_records()
        except Exception:  # a damaged store still gets its status; readers trim to n_records anyway
            pass
        try:
            self._root.update_attributes({"complete": bool(complete), "status": status, "reason": reason,
                                          "closed": _now(), "writer": None})
            try:
                consolidate(self.path)
            except Exception:   # a full disk: the store stays readable, plain xarray only warns about metadata
                pass
        finally:  # even on a full disk: this process is done writing, another may take the store over
            self.closed = True
            if getattr(self, "_lock", None) is not None:
                self._lock.release()

    def _trim_to_records(self) -> None:
        """Cut the room that appends grew ahead (:data:`_GROW_BLOCKS`): every time-dependent array ends
        at its committed records."""
        for ts in self._times.values():
            arrays = [ts.array] + [self._vars[k].array for k in ts.variables]
            for arr in arrays:
                if arr.shape[0] != ts.n:
                    arr.resize((ts.n, *arr.shape[1:]))

    def __enter__(self) -> ZarrRecorder:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close(complete=True)
        else:
            self.close(complete=False, reason=close_reason(exc))

    # ---------------------------------------------------------------- metrics
    def append_metrics(self, values: Mapping[str, Any], epoch: int | None = None, *, dim: str = "epoch") -> None:
        """Append one row of scalar metrics, e.g. ``{"train_loss": 0.3, "test_accuracy": 0.9}`` at ``epoch``.

        ``epoch`` defaults to one past the last; coordinates must increase. A metric first seen at a
        later epoch reads NaN for the earlier ones; a metric missing from a row reads NaN there.
        """
        row = {}
        for name, v in values.items():
            a = np.asarray(v, dtype=np.float64)
            if a.ndim != 0:
                raise RecordingError(f"{self.path}: metric {name!r} must be a scalar per {dim}, got shape {a.shape}")
            row[name] = a.reshape(1)
        coords = None if epoch is None else [epoch]
        self.write_metrics(row, dim=dim, coords=coords)

    def write_metrics(self, values: Mapping[str, Any], *, dim: str = "epoch", coords: Any = None) -> None:
        """Append several rows at once: ``values`` maps metric name to a 1-D array along ``dim``.

        ``coords`` gives the ``dim`` coordinate of each row (default: continuing 0, 1, 2, ...).
        """
        self._check_open("write metrics")
        if not isinstance(dim, str) or not _NAME_RE.match(dim):
            raise RecordingError(f"{self.path}: metrics dim {dim!r} is not a valid name")
        cols = {}
        length = None
        for name, v in values.items():
            if not isinstance(name, str) or not _NAME_RE.match(name) or name.startswith("__"):
                raise RecordingError(f"{self.path}: metric name {name!r} is not a valid store name")
            a = np.asarray(v, dtype=np.float64)
            if a.ndim != 1:
                raise RecordingError(f"{self.path}: metric {name!r} must be 1-D along {dim}, got shape {a.shape}")
            if length is not None and a.size != length:
                raise RecordingError(f"{self.path}: metrics given with different lengths ({length} vs {a.size} for {name!r})")
            length = a.size
            cols[name] = a
        if not cols:
            return
        grp = self._metrics_group()
        state = self._metric_dims.get(dim)
        n0 = 0 if state is None else state["n"]
        if coords is None:
            start = 0 if state is None or state["last"] is None else state["last"] + 1
            c = np.arange(start, start + length, dtype=np.int64)
        else:
            c = np.asarray(coords)
            if c.shape != (length,) or c.dtype.kind not in "iuf":
                raise RecordingError(f"{self.path}: metrics coords for {dim} must be {length} numbers, got {c!r}")
            c = c.astype(np.int64) if c.dtype.kind in "iu" else c.astype(np.float64)
        if (length > 1 and not (np.diff(c) > 0).all()) or (
            state is not None and state["last"] is not None and c[0] <= state["last"]
        ):
            raise RecordingError(
                f"{self.path}: metrics {dim} coordinates must increase past the last written "
                f"({None if state is None else state['last']}), got {c.tolist()}"
            )
        if state is None:
            for name in cols:
                if name in grp and name != dim:
                    raise RecordingError(f"{self.path}: metric {name!r} already exists along another dim")
            if dim in grp:
                raise RecordingError(f"{self.path}: metrics dim {dim!r} clashes with an existing metric name")
            carr = grp.create_array(
                dim, shape=(0,), chunks=(_METRIC_CHUNK,), dtype=c.dtype, fill_value=0, dimension_names=(dim,),
                compressors=_compressors("zstd"),
                attributes={"long_name": dim},
            )
            state = {"coord": carr, "n": 0, "last": None, "metrics": {}}
            self._metric_dims[dim] = state
        for name in cols:
            if name not in state["metrics"]:
                if name in grp or name in self._metric_dims:
                    raise RecordingError(
                        f"{self.path}: metric {name!r} already exists along another dim or clashes with a dim name"
                    )
                state["metrics"][name] = grp.create_array(
                    name, shape=(n0,), chunks=(_METRIC_CHUNK,), dtype="float64", fill_value=np.nan,
                    compressors=_compressors("zstd"),
                    dimension_names=(dim,), attributes={"long_name": name},
                )
        n1 = n0 + length
        for name, arr in state["metrics"].items():
            arr.resize((n1,))
            arr[n0:n1] = cols[name] if name in cols else np.full(length, np.nan)
        state["coord"].resize((n1,))
        state["coord"][n0:n1] = c
        state["n"] = n1
        state["last"] = c[-1].item()
        grp.update_attributes({"n_records": {d: s["n"] for d, s in self._metric_dims.items()}})

    def _metrics_group(self):
        if self._metrics is None:
            self._metrics = self._root.create_group(METRICS_GROUP, attributes={"n_records": {}})
        return self._metrics

    # ---------------------------------------------------------------- checkpoint
    def write_checkpoint(self, arrays: Mapping[str, Any], attrs: Mapping[str, Any] | None = None) -> int:
        """Write a checkpoint (state, weights, RNG state in attrs) replacing the previous one.

        The new version is written to ``checkpoint/v<k>`` in full; then the ``checkpoint`` group's
        ``current`` attr is switched to it (one atomic metadata write) and the old version deleted.
        A crash at any point leaves ``current`` pointing at a complete checkpoint (or at none).
        Returns the version number ``k``.
        """
        self._check_open("write a checkpoint")
        clean_attrs = _jsonable(dict(attrs or {}), f"{self.path}: checkpoint attrs")
        data = {}
        for name, value in arrays.items():
            if not isinstance(name, str) or not _NAME_RE.match(name) or name.startswith("__"):
                raise RecordingError(f"{self.path}: checkpoint array name {name!r} is not a valid store name")
            a = np.asarray(value)
            if a.dtype.kind not in "fiubc":
                raise RecordingError(
                    f"{self.path}: checkpoint array {name!r} has dtype {a.dtype}; store numeric arrays and put "
                    "other state in attrs"
                )
            data[name] = a
        if CHECKPOINT_GROUP in self._root:
            cgrp = self._root[CHECKPOINT_GROUP]
        else:
            cgrp = self._root.create_group(CHECKPOINT_GROUP, attributes={"current": None, "next": 0})
        k = int(cgrp.attrs.get("next", 0))
        old = cgrp.attrs.get("current")
        vname = f"v{k}"
        if vname in cgrp:  # leftover of a crashed write
            del cgrp[vname]
        vgrp = cgrp.create_group(vname, attributes=clean_attrs)
        for name, a in data.items():
            dims = tuple(f"{name}_dim{i}" for i in range(a.ndim))
            vgrp.create_array(name, data=np.ascontiguousarray(a), dimension_names=dims,
                              compressors=_compressors("zstd"))
        cgrp.update_attributes({"current": vname, "next": k + 1})
        if old is not None and old != vname and old in cgrp:
            del cgrp[old]
        return k


# --------------------------------------------------------------------------------------------------
# Integrity: checksums on read, missing parts, verify_store
# --------------------------------------------------------------------------------------------------
class ChunkChecksumError(RecordingError):
    """A chunk file's bytes do not match the CRC-32C stored with them: the file was damaged after it
    was written. ``array`` is the array's path in the store, ``chunk`` the chunk's grid index."""

    def __init__(self, store: Path, array: str, chunk: tuple[int, ...], file: Path) -> None:
        self.store, self.array, self.chunk, self.file = store, array, chunk, file
        super().__init__(
            f"{store}: chunk {chunk} of array '{array}' is damaged: the file {file} does not match its "
            "CRC-32C checksum, so its values cannot be trusted. Restore the store from a backup or re-run "
            f"the simulation; `microcircuit info --verify {store}` lists every damaged chunk"
        )


class IncompleteStoreWarning(UserWarning):
    """Parts of a recording store are missing: a population group or an array the store declares, or
    chunk files of records a complete store counts (those records would read as the fill value)."""


@dataclass(frozen=True)
class StoreProblem:
    """One finding of :func:`verify_store` or of the readers' cheap check. ``kind`` is one of
    ``missing_group``, ``missing_array``, ``missing_chunks``, ``damaged_chunk``, ``unreadable_chunk``
    and ``no_checksum`` (an array written before chunks carried checksums: damage goes unnoticed);
    ``path`` is the group or array path inside the store."""

    kind: str
    path: str
    message: str

    def __str__(self) -> str:
        return self.message


_CHUNK_KEY = re.compile(r"^(?P<array>.+?)/c(?P<index>(?:/\d+)*)$")
"""A chunk key of the default ("/"-separated) encoding the recorder uses: ``<array path>/c/<i>/<j>/...``."""


def _checked_store(path: Path) -> Any:
    """A read-only zarr store on ``path`` that checks each chunk's CRC-32C as it is read and raises
    :class:`ChunkChecksumError` naming the array and the chunk.

    zarr's own ``crc32c`` codec checks the same sum, but its error ("Stored and computed checksum do
    not match") names neither, and readers of :func:`open_recording` meet it deep inside xarray's
    ``.load()``; the store sees the chunk key, so it can say where the damage is. Arrays without the
    codec (stores written before it) are passed through unchecked. The extra CRC pass reads at
    ~20 GB/s, far below decompression's cost."""
    from zarr.storage import LocalStore

    return _checksum_store_class()(LocalStore(str(path), read_only=True), path, {})


@functools.cache
def _checksum_store_class() -> type:
    """The store class of :func:`_checked_store`, made on first use (zarr is imported lazily)."""
    import json

    import google_crc32c
    from zarr.storage import WrapperStore

    class _ChecksumStore(WrapperStore):
        def __init__(self, store: Any, root: Path, checked: dict[str, bool]) -> None:
            super().__init__(store)
            self._root_path, self._checked = root, checked     # array path -> has the crc32c codec

        def _with_store(self, store: Any) -> Any:
            return type(self)(store, self._root_path, self._checked)

        async def _has_crc(self, array: str, prototype: Any) -> bool:
            if array not in self._checked:
                meta = await self._store.get(f"{array}/zarr.json", prototype)
                codecs = [] if meta is None else json.loads(meta.to_bytes()).get("codecs", [])
                last = codecs[-1] if codecs else None
                self._checked[array] = (last if isinstance(last, str) else (last or {}).get("name")) == "crc32c"
            return self._checked[array]

        async def get(self, key: str, prototype: Any, byte_range: Any = None) -> Any:
            buf = await self._store.get(key, prototype, byte_range)
            m = _CHUNK_KEY.match(key)
            if buf is None or byte_range is not None or m is None or not await self._has_crc(m["array"], prototype):
                return buf
            data = buf.as_numpy_array().view(np.uint8)
            if data.size < 4 or google_crc32c.value(data[:-4]) != int.from_bytes(data[-4:].tobytes(), "little"):
                index = tuple(int(i) for i in m["index"].split("/")[1:])
                raise ChunkChecksumError(self._root_path, m["array"], index, self._root_path / key)
            return buf

    return _ChecksumStore


def _chunk_grid(shape: Sequence[int], chunks: Sequence[int]) -> Any:
    import itertools

    return itertools.product(*(range(-(-int(s) // int(c))) for s, c in zip(shape, chunks)))


def _chunk_files(array_dir: Path) -> set[str]:
    """Chunk keys (``c/0/0/0``, relative to the array) of the chunk files on disk: a directory listing,
    nothing is read."""
    top = array_dir / "c"
    found = set()
    for dirpath, _, files in os.walk(top):
        rel = Path(dirpath).relative_to(array_dir).as_posix()
        found.update(f"{rel}/{f}" for f in files if not f.startswith("."))
    return found


def _missing_parts(root, p: Path) -> list[StoreProblem]:
    """The cheap integrity check of the readers: population groups the root attr ``populations``
    lists but the store lacks, arrays a population group declares (its ``arrays`` attr, its
    ``n_records`` time dims, the dims its arrays name) but lacks, and, in a store marked complete,
    chunk files the committed ``n_records`` need but that are absent (zarr would read them as the
    fill value, silently). Lists directories; reads no chunk."""
    problems: list[StoreProblem] = []
    complete = root.attrs.get("complete") is True
    for pop in _population_groups(root):
        if pop not in root:
            problems.append(StoreProblem(
                "missing_group", pop,
                f"{p}: population '{pop}' is listed in the root attr 'populations' but its group "
                f"({p / pop / 'zarr.json'}) is missing, so its records cannot be read; restore the store "
                "from a backup or re-run"))
            continue
        grp = root[pop]
        arrays = dict(grp.arrays())
        problems += _missing_arrays(p, pop, grp, arrays)
        if complete:
            problems += _missing_chunks(p, grp, arrays)
    return problems


def _missing_arrays(p: Path, pop: str, grp, arrays: Mapping[str, Any]) -> list[StoreProblem]:
    attrs = dict(grp.attrs)
    expected = set(attrs.get("arrays") or []) | set(dict(attrs.get("n_records") or {}))
    for arr in arrays.values():
        expected.update(arr.metadata.dimension_names or ())
    return [StoreProblem(
        "missing_array", f"{pop}/{name}",
        f"{p}: array '{pop}/{name}' is missing ({p / pop / name / 'zarr.json'} not found); the group declares "
        "it, so the store was damaged after writing; restore it from a backup or re-run")
        for name in sorted(expected - set(arrays))]


def _missing_chunks(p: Path, grp, arrays: Mapping[str, Any]) -> list[StoreProblem]:
    n_records = dict(grp.attrs.get("n_records") or {})
    problems = []
    for name, arr in arrays.items():
        dims = arr.metadata.dimension_names or ()
        if not dims or dims[0] not in n_records:
            continue
        n = int(n_records[dims[0]])
        on_disk = _chunk_files(p / arr.path)
        key = arr.metadata.chunk_key_encoding.encode_chunk_key
        grid = list(_chunk_grid((n, *arr.shape[1:]), arr.chunks))
        missing = [idx for idx in grid if key(idx) not in on_disk]
        if missing:
            shown = ", ".join(str(i) for i in missing[:5]) + (", ..." if len(missing) > 5 else "")
            problems.append(StoreProblem(
                "missing_chunks", arr.path,
                f"{p}: array '{arr.path}' lacks {len(missing)} of the {len(grid)} chunk files its {n} committed "
                f"records need (chunk {shown}); the store is marked complete, so they were lost after the run "
                "and those records would read as the fill value; restore the store from a backup or re-run"))
    return problems


def _warn_missing(problems: Sequence[StoreProblem], stacklevel: int = 3) -> None:
    if problems:
        import warnings

        warnings.warn(IncompleteStoreWarning("\n".join(str(x) for x in problems)), stacklevel=stacklevel)


def verify_store(path: str | os.PathLike) -> list[StoreProblem]:
    """Check a whole recording store and return what is wrong (an empty list: nothing found).

    Reads and decodes every chunk of every array, one at a time (memory: one chunk), so that each
    damaged chunk is reported by array and chunk index instead of the first one aborting the read;
    adds the missing groups, arrays and chunk files of :func:`open_recording`'s cheap check, and
    notes arrays without checksums (their damage can only show as undecodable chunks). Only the
    committed records of time-dependent arrays (their group's ``n_records``) are checked: chunks past
    them are the leftovers of an interrupted append, which readers never read. Used by
    ``microcircuit info --verify``. Costs one full read of the store."""
    import zarr
    from zarr.codecs import Crc32cCodec

    p = Path(path)
    root = _open_root(p)
    problems = _missing_parts(root, p)
    for name, arr in root.members(max_depth=None):
        if not isinstance(arr, zarr.Array):
            continue
        if not isinstance(arr.metadata.codecs[-1], Crc32cCodec):
            problems.append(StoreProblem("no_checksum", name, f"{p}: array '{name}' has no checksums (written "
                                         "before microcircuit stored them); damage to it may go unnoticed"))
        problems += _damaged_chunks(p, name, arr, _committed_shape(root, name, arr))
    return problems


def _committed_shape(root, name: str, arr) -> tuple[int, ...]:
    """``arr``'s shape cut to its group's committed ``n_records`` along its first dim, if it has one."""
    dims = arr.metadata.dimension_names or ()
    parent = name.rpartition("/")[0]
    n_records = dict(root[parent].attrs.get("n_records") or {}) if parent else {}
    if dims and dims[0] in n_records and isinstance(n_records[dims[0]], int):
        return (min(arr.shape[0], n_records[dims[0]]), *arr.shape[1:])
    return tuple(arr.shape)


def _damaged_chunks(p: Path, name: str, arr, shape: tuple[int, ...]) -> list[StoreProblem]:
    found = []
    for idx in _chunk_grid(shape, arr.chunks):
        try:
            arr.get_block_selection(idx)
        except ChunkChecksumError as exc:
            found.append(StoreProblem("damaged_chunk", name, str(exc)))
        except Exception as exc:  # undecodable bytes in an array without checksums, unreadable file
            found.append(StoreProblem("unreadable_chunk", name, f"{p}: chunk {idx} of array '{name}' cannot be "
                                      f"read ({type(exc).__name__}: {exc}); restore the store or re-run"))
    return found


# --------------------------------------------------------------------------------------------------
# Readers
# --------------------------------------------------------------------------------------------------
def _trim(ds, n_records: Mapping[str, Any]):
    sel = {d: slice(0, int(n)) for d, n in (n_records or {}).items() if d in ds.dims}
    return ds.isel(sel) if sel else ds


def _without_empty_units(ds):
    """Drop ``units = ""`` from coordinates (stores written before labels were added put it on ``batch``,
    ``neuron``, ...): xarray titles a plot of one neuron ``neuron = 0 []`` for them."""
    for name in ds.coords:
        if ds[name].attrs.get("units", None) == "":
            ds[name].attrs.pop("units")
    return ds


def _open_ragged(p: Path, group, name: str, chunks: Any):
    """Open a group whose arrays disagree on a dim's length: each array alone, trimmed to the
    group's committed ``n_records``, then merged."""
    import xarray as xr

    arrays = [k for k, _ in group.arrays()]
    n_records = dict(group.attrs).get("n_records", {})
    parts = []
    for a in arrays:
        one = xr.open_zarr(group.store, group=name, consolidated=False, chunks=chunks, zarr_format=3,
                           drop_variables=[x for x in arrays if x != a])
        parts.append(_trim(one, n_records))
    ds = xr.merge(parts, compat="override", join="exact", combine_attrs="override")
    ds.attrs = dict(group.attrs)
    return ds


def open_recording(path: str | os.PathLike, *, chunks: Any = None):
    """Open a recording lazily as an ``xarray.DataTree``.

    Children: one node per population (dims ``time``, ``batch``, ``neuron``[, ``compartment``], see
    the module docstring for suffixed dims) and ``metrics`` if any were written. Every group is
    trimmed to its committed ``n_records``, so an interrupted or killed run reads everything
    appended before the interruption. Root attrs are the store's root attrs (``complete``,
    ``status``, ``reason``, ``dt``, scenario, seed, ...). ``chunks`` is passed to ``xr.open_zarr``
    (``None``: lazy numpy-backed arrays, no dask needed; ``{}``: dask arrays with the zarr chunks).
    Checkpoints are read with :func:`read_checkpoint`.

    Integrity: missing population groups, missing arrays and (in a store marked complete) missing
    chunk files are reported by an :class:`IncompleteStoreWarning` when opening (a directory listing,
    no data read); a chunk whose bytes do not match its checksum raises :class:`ChunkChecksumError`
    naming the array and chunk when it is read (``.values``, ``.load()``), never wrong values.
    :func:`verify_store` checks every chunk at once.
    """
    import xarray as xr

    p = Path(path)
    root = _open_root(p)
    _warn_missing(_missing_parts(root, p))
    nodes: dict[str, Any] = {"/": xr.Dataset(attrs=dict(root.attrs))}
    names = _population_groups(root)
    if METRICS_GROUP in root:
        names = [*names, METRICS_GROUP]
    for name in names:
        if name not in root:
            continue  # a missing population group: reported by the warning above
        try:
            try:
                ds = xr.open_zarr(root.store, group=name, consolidated=False, chunks=chunks, zarr_format=3)
            except ValueError:
                # a run killed between two arrays' resizes leaves arrays of different lengths along
                # one dim; everything up to the group's committed n_records is still valid
                ds = _open_ragged(p, root[name], name, chunks)
        except ChunkChecksumError:  # a damaged coordinate chunk (xarray reads indexes at once): names itself
            raise
        except Exception as exc:
            raise RecordingError(f"{p}: cannot read group {name!r} ({type(exc).__name__}: {exc})") from exc
        nodes[f"/{name}"] = _without_empty_units(_trim(ds, ds.attrs.get("n_records", {})))
    return xr.DataTree.from_dict(nodes)


def read_checkpoint(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Return ``(arrays, attrs)`` of the current checkpoint; RecordingError if there is none."""
    p = Path(path)
    root = _open_root(p)
    if CHECKPOINT_GROUP not in root:
        raise RecordingError(f"{p}: has no checkpoint; run with checkpointing enabled to write one")
    cgrp = root[CHECKPOINT_GROUP]
    current = cgrp.attrs.get("current")
    if current is None or current not in cgrp:
        raise RecordingError(f"{p}: checkpoint group has no complete checkpoint (current={current!r})")
    vgrp = cgrp[current]
    arrays = {name: np.asarray(arr[...]) for name, arr in vgrp.arrays()}
    return arrays, dict(vgrp.attrs)


def _fmt_attr(value: Any) -> str:
    if isinstance(value, str):
        if "\n" in value or len(value) > 60:
            return f"<text, {len(value.splitlines())} lines, {len(value)} chars>"
        return repr(value)
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def describe_store(path: str | os.PathLike) -> str:
    """A human summary of a recording: status, dt, populations, variables with dims/shapes/units, metrics.

    Missing groups, arrays and chunk files (see :func:`open_recording`) are listed as ``WARNING:`` lines
    and also reported as an :class:`IncompleteStoreWarning`."""
    p = Path(path)
    root = _open_root(p)
    problems = _missing_parts(root, p)
    _warn_missing(problems)
    a = dict(root.attrs)
    lines = [f"microcircuit recording {p}"]
    lines += [f"  WARNING: {x}" for x in problems]
    status = a.get("status", "?")
    lines.append(f"  status: {status}   complete: {a.get('complete')}" + (f"   reason: {a['reason']}" if a.get("reason") else ""))
    lines.append(
        f"  dt: {a.get('dt')} {a.get('dt_units', 'ms')}   batch: {a.get('batch')}   created: {a.get('created')}   "
        f"closed: {a.get('closed')}   microcircuit {a.get('microcircuit_version')}"
    )
    extra = {k: v for k, v in a.items() if k not in _RESERVED_ATTRS and k not in ("dt_units",)}
    if extra:
        lines.append("  attrs:")
        for k, v in extra.items():
            lines.append(f"    {k}: {_fmt_attr(v)}")
    for pop in _population_groups(root):
        if pop not in root:
            continue
        grp = root[pop]
        n_rec = dict(grp.attrs.get("n_records", {}))
        strides = dict(grp.attrs.get("strides", {}))
        cell_type, layer = grp.attrs.get("cell_type"), grp.attrs.get("layer")
        who = f" ({cell_type}, layer {layer})" if cell_type is not None and layer is not None else ""
        lines.append(f"  population {pop}{who}")
        for name, arr in grp.arrays():
            dims = arr.metadata.dimension_names or ()
            if len(dims) < 2 or dims[1] != "batch":
                continue  # coordinate arrays
            sizes = [n_rec.get(dims[0], arr.shape[0]) if i == 0 else s for i, s in enumerate(arr.shape)]
            shape = ", ".join(f"{d}: {s}" for d, s in zip(dims, sizes))
            units = arr.attrs.get("units", "")
            stride = strides.get(dims[0], arr.attrs.get("stride"))
            line = f"    {name:<12} {str(arr.dtype):<8} ({shape})  [{units}]  {arr.attrs.get('long_name', '')}  stride {stride}"
            if len(dims) == 4 and dims[3] in grp:
                line += f"  compartments: {', '.join(str(c) for c in grp[dims[3]][:])}"
            lines.append(line)
    if METRICS_GROUP in root:
        mgrp = root[METRICS_GROUP]
        n_rec = dict(mgrp.attrs.get("n_records", {}))
        for d, n in n_rec.items():
            names = [nm for nm, arr in mgrp.arrays() if nm != d and tuple(arr.metadata.dimension_names or ()) == (d,)]
            lines.append(f"  metrics ({d}: {n}): {', '.join(names)}")
    if CHECKPOINT_GROUP in root:
        cgrp = root[CHECKPOINT_GROUP]
        cur = cgrp.attrs.get("current")
        if cur is not None and cur in cgrp:
            names = [nm for nm, _ in cgrp[cur].arrays()]
            lines.append(f"  checkpoint {cur}: {', '.join(names)}")
    return "\n".join(lines)
