"""The data sets a scenario may name, with the keyword arguments each one accepts.

A scenario's ``[protocol] dataset = "..."`` and ``dataset_args = {...}`` come from an untrusted
file, so a name is looked up only in :data:`DATASETS` (never with ``getattr`` on a module: that
would reach any callable there, e.g. ``"__class__"`` or ``"one_hot"``), and every argument is
checked against its declared type and bounds before the loader is called. Paths (``cache_dir``)
are allowed; the loaders read files only through parsers that cannot execute code (fixed-layout
binary records, ``np.load(..., allow_pickle=False)``), never ``pickle``.

:func:`check_args` returns every problem as ``(relative dotted path, message)`` (used by the
scenario validator, which prefixes ``protocol.``); :func:`load` checks and calls the loader.
"""
from __future__ import annotations

import difflib
import math
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from .base import DatasetError
from .bars import bars
from .digits import digits
from .downloads import cifar10, cifar10_file_problems, mnist, mnist_file_problems
from .idx import mnist_idx
from .mnist1d import mnist1d
from .speech import speech_shaped
from .teacher_student import teacher_student
from .yinyang import yin_yang

__all__ = ["Arg", "DatasetEntry", "DATASETS", "check_args", "load"]

_SEED_MAX = 2**31 - 1
_COUNT_MAX = 1_000_000      # samples per split: bounds the memory a scenario file can ask for
_PATH_MAX = 4096


@dataclass(frozen=True)
class Arg:
    """One keyword argument: ``type`` is "int", "float", "bool", "path" (a folder), "file" or "ints"
    (``length`` ints)."""
    type: str
    low: float | None = None
    high: float | None = None
    strict_low: bool = False
    strict_high: bool = False
    length: int | None = None
    doc: str = ""


@dataclass(frozen=True)
class DatasetEntry:
    """A registered data set: ``loader(**args)`` returns a :class:`~microcircuit.datasets.SupervisedData`.

    ``file_problems(args)`` (optional) checks, by ``stat`` only, that the files the loader will read
    exist and have a plausible size; it returns messages (empty when all is well).
    """
    name: str
    loader: Callable[..., Any]
    args: Mapping[str, Arg]
    doc: str
    file_problems: Callable[[Mapping[str, Any]], list[str]] | None = field(default=None, compare=False)


def _seed(doc="random seed"):
    return Arg("int", 0, _SEED_MAX, doc=doc)


def _count(doc, low=0):
    return Arg("int", low, _COUNT_MAX, doc=doc)


_CACHE = Arg("path", doc="folder holding the files (default $MICROCIRCUIT_CACHE or ~/.cache/microcircuit)")


def _idx_file(doc):
    return Arg("file", doc=doc + " (IDX, optionally .gz; a relative path is relative to the working directory, "
               "like cache_dir)")


DATASETS: Mapping[str, DatasetEntry] = {e.name: e for e in (
    DatasetEntry("yin_yang", yin_yang, {
        "n_train": _count("training samples"),
        "n_val": _count("validation samples"),
        "n_test": _count("test samples"),
        "seeds": Arg("ints", 0, _SEED_MAX, length=3, doc="seeds of the train, val and test splits"),
        "r_big": Arg("float", 0.0, None, strict_low=True, doc="outer radius"),
        "r_small": Arg("float", 0.0, None, strict_low=True, doc="radius of the small circles"),
    }, "Yin-Yang, 4 inputs, 3 classes"),
    DatasetEntry("bars", bars, {
        "noise": Arg("float", 0.0, 1e6, doc="uniform pixel noise level"),
        "seed": _seed(),
    }, "3x3 Bars, 9 inputs, 3 classes, 8 patterns"),
    DatasetEntry("digits", digits, {
        "test_size": Arg("float", 0.0, 1.0, strict_low=True, strict_high=True, doc="test fraction"),
        "val_size": Arg("float", 0.0, 1.0, strict_high=True, doc="validation fraction"),
        "seed": _seed(),
    }, "sklearn digits, 64 inputs, 10 classes (MNIST stand-in)"),
    DatasetEntry("mnist1d", mnist1d, {
        "final_seq_length": Arg("int", 1, 10_000, doc="inputs per sample"),
        "seed": _seed(),
        "cache_dir": _CACHE,
        "use_cache": Arg("bool", doc="read / write the .npz cache file"),
    }, "MNIST-1D, generated offline by the optional mnist1d package"),
    DatasetEntry("teacher_student", teacher_student, {
        "n_in": Arg("int", 1, 10_000), "n_hidden": Arg("int", 1, 10_000), "n_out": Arg("int", 1, 10_000),
        "k10": Arg("float", doc="teacher gain of the hidden layer"),
        "k21": Arg("float", doc="teacher gain of the output layer"),
        "n_train": _count("training samples"), "n_test": _count("test samples"),
        "n_val": _count("validation samples"), "seed": _seed(),
    }, "Sacramento 2018 teacher 30-20-10 regression"),
    DatasetEntry("mnist", mnist, {
        "n_val": _count("last training images used for validation"),
        "scale": Arg("float", 0.0, None, strict_low=True, doc="pixel divisor (255)"),
        "cache_dir": _CACHE,
    }, "MNIST from <cache>/mnist.npz (no network)", mnist_file_problems),
    DatasetEntry("cifar10", cifar10, {
        "n_val": _count("last training images used for validation"),
        "cache_dir": _CACHE,
    }, "CIFAR-10 binary version from <cache>/cifar-10-batches-bin (no network)", cifar10_file_problems),
    # no file_problems: the bundled scenario names files a fresh machine lacks and must still validate;
    # the loader raises "file not found: get it from ..." when the run starts
    DatasetEntry("mnist_idx", mnist_idx, {
        "train_images": _idx_file("training images, e.g. train-images-idx3-ubyte.gz"),
        "train_labels": _idx_file("training labels, e.g. train-labels-idx1-ubyte.gz"),
        "test_images": _idx_file("test images, e.g. t10k-images-idx3-ubyte.gz"),
        "test_labels": _idx_file("test labels, e.g. t10k-labels-idx1-ubyte.gz"),
        "n_val": _count("last training images used for validation"),
        "scale": Arg("float", 0.0, None, strict_low=True, doc="pixel divisor (255)"),
    }, "MNIST from the four IDX files whose paths are given (no network, safe IDX parser)"),
    DatasetEntry("speech_shaped", speech_shaped, {
        "n_train": _count("training samples"), "n_val": _count("validation samples"),
        "n_test": _count("test samples"),
        "n_steps": Arg("int", 1, 100_000, doc="steps per sample"),
        "n_channels": Arg("int", 1, 1024, doc="inputs per step (32 mel bins)"),
        "n_classes": Arg("int", 1, 1000, doc="classes (12 keywords)"),
        "n_formants": Arg("int", 1, 16, doc="formant tracks per class"),
        "noise": Arg("float", 0.0, 1e6, doc="Gaussian noise before per-sample normalisation"),
        "seed": _seed(),
    }, "synthetic 12-class time series of the GLE speech-commands shape (32 channels x 800 steps); "
       "samples x steps x channels <= 5e7"),
)}


def _suggest(word, options):
    close = difflib.get_close_matches(str(word), list(options), n=1, cutoff=0.6)
    hint = f"did you mean '{close[0]}'? " if close else ""
    return f"{hint}use one of: {', '.join(sorted(options))}"


def _tname(v):
    return {dict: "table", list: "array", tuple: "array", str: "string", bool: "boolean", int: "integer",
            float: "number"}.get(type(v), type(v).__name__)


def _is_int(v):
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _num(x, inf):
    return inf if x is None else str(int(x)) if float(x).is_integer() else f"{x:g}"


def _bounds(v, a: Arg):
    lo = a.low is not None and (v <= a.low if a.strict_low else v < a.low)
    hi = a.high is not None and (v >= a.high if a.strict_high else v > a.high)
    if lo or hi:
        left = "(" if a.strict_low or a.low is None else "["
        right = ")" if a.strict_high or a.high is None else "]"
        rng = f"{left}{_num(a.low, '-inf')}, {_num(a.high, 'inf')}{right}"
        return f"must lie in {rng}, got {v!r}"
    return None


def _check_value(v, a: Arg) -> str | None:
    if a.type == "int":
        if not _is_int(v):
            return f"expected an integer, got {_tname(v)} {v!r}"
        return _bounds(int(v), a)
    if a.type == "float":
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
            return f"expected a number, got {_tname(v)} {v!r}"
        if not math.isfinite(float(v)):
            return f"must be finite, got {v!r}"
        return _bounds(float(v), a)
    if a.type == "bool":
        return None if isinstance(v, bool) else f"expected true or false, got {_tname(v)} {v!r}"
    if a.type in ("path", "file"):
        what = "folder path" if a.type == "path" else "file path"
        if not isinstance(v, (str, os.PathLike)):
            return f"expected a {what} (string), got {_tname(v)} {v!r}"
        s = os.fspath(v)
        if not isinstance(s, str) or not s or "\x00" in s or len(s) > _PATH_MAX:
            return f"expected a non-empty {what} without NUL characters (at most {_PATH_MAX} characters)"
        return None
    if a.type == "ints":
        if not isinstance(v, (list, tuple)) or (a.length is not None and len(v) != a.length):
            return f"expected an array of {a.length} integers, got {_tname(v)} {v!r}"
        for x in v:
            msg = _check_value(x, Arg("int", a.low, a.high))
            if msg:
                return f"element {x!r}: {msg}"
        return None
    raise AssertionError(f"unknown argument type {a.type!r}")  # pragma: no cover - registry bug


def check_args(name, args: Mapping[str, Any] | None = None, *, files: bool = False) -> list[tuple[str, str]]:
    """Every problem with data set ``name`` and its keyword arguments, as ``(path, message)``.

    Paths are relative to the ``[protocol]`` table: ``dataset`` or ``dataset_args.<key>``. With
    ``files=True`` the files a download-only data set will read are also checked (by ``stat``:
    present, plausible size); nothing is opened.
    """
    if not isinstance(name, str):
        return [("dataset", f"expected the name of a data set (string), got {_tname(name)} {name!r}")]
    entry = DATASETS.get(name)
    if entry is None:
        return [("dataset", f"unknown data set {name!r}; {_suggest(name, DATASETS)}")]
    args = {} if args is None else args
    if not isinstance(args, Mapping):
        return [("dataset_args", f"expected a table of keyword arguments, got {_tname(args)}")]
    problems = []
    for key, v in args.items():
        spec = entry.args.get(key) if isinstance(key, str) else None
        if spec is None:
            problems.append((f"dataset_args.{key}", f"unknown argument of data set '{name}'; "
                             + (_suggest(key, entry.args) if entry.args else "it takes none")))
            continue
        msg = _check_value(v, spec)
        if msg:
            problems.append((f"dataset_args.{key}", msg))
    if files and not problems and entry.file_problems is not None:
        where = "dataset_args.cache_dir" if "cache_dir" in args else "dataset"
        problems += [(where, msg) for msg in entry.file_problems(args)]
    return problems


def load(name, **args):
    """Check ``name`` and ``args`` against :data:`DATASETS` and call the loader.

    Raises :class:`~microcircuit.datasets.DatasetError` listing every problem as
    ``protocol.<path>: <message>``.
    """
    problems = check_args(name, args)
    if problems:
        raise DatasetError("; ".join(f"protocol.{p}: {m}" for p, m in problems))
    return DATASETS[name].loader(**args)
