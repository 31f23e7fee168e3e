"""Optional loaders for datasets that need a download (MNIST, CIFAR-10).

Used only when a scenario or caller names them (through :mod:`microcircuit.datasets.registry`), never in CI with real
data, and they never touch the network: they
read files that the user placed in the cache directory (argument, ``$MICROCIRCUIT_CACHE`` or
``~/.cache/microcircuit``) and raise :class:`DatasetNotAvailableError` (a ``FileNotFoundError``)
naming the expected file and where to get it when absent.

* MNIST: ``<cache>/mnist.npz`` with arrays ``x_train (60000, 28, 28)``, ``y_train``,
  ``x_test (10000, 28, 28)``, ``y_test`` (the Keras file
  ``https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz``). Pixels are divided
  by ``scale`` (255; LE Fig. 2b used 256) and flattened to 784; the last ``n_val`` training images
  form the validation set (LE Fig. 2b: 10 000; Sacramento: 5 000).
* CIFAR-10: ``<cache>/cifar-10-batches-bin/`` (``data_batch_1.bin`` … ``data_batch_5.bin``,
  ``test_batch.bin``) extracted from the *binary* version
  ``https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz``. Each file is a sequence of records
  of 3073 bytes: 1 label byte (0–9), then 3072 pixel bytes, channel-major (the 32×32 red plane row
  by row, then green, then blue). Parsed with ``np.frombuffer`` after a size check (a size that is
  not a positive multiple of 3073, more than 10 000 records or a label > 9 is a
  :class:`~microcircuit.datasets.DatasetError` naming the file). Pixels / 255 (``ToTensor`` only),
  flattened in that channel-major order to 3072 (the layout of the Python version); the last
  ``n_val`` training images form the validation set (LE: 10 000).

No loader unpickles anything: the Python version of CIFAR-10 (``cifar-10-batches-py``) stores
pickles, and unpickling a file placed in the cache folder (a scenario can name that folder with
``dataset_args.cache_dir``) could run arbitrary code, so it is not read. ``mnist.npz`` is read with
``np.load(..., allow_pickle=False)``.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from ._cache import cache_dir as _cache_dir
from .base import DatasetError, SupervisedData, check_positive_int

__all__ = ["mnist", "cifar10", "DatasetNotAvailableError"]

MNIST_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
CIFAR10_FOLDER = "cifar-10-batches-bin"
CIFAR10_FILES = tuple(f"data_batch_{i}.bin" for i in range(1, 6)) + ("test_batch.bin",)
CIFAR10_RECORD = 1 + 3 * 32 * 32        # label byte + R, G, B planes
CIFAR10_MAX_RECORDS = 10000             # images per official batch file
MNIST_MAX_BYTES = 256 * 2**20           # uncompressed size of one array in mnist.npz (official: 47 MB)


class DatasetNotAvailableError(FileNotFoundError):
    """A dataset that needs a download is not in the cache directory."""


def _split_val(x, y, n_val, where):
    if n_val >= len(x):
        raise DatasetError(f"{where}.n_val: {n_val} >= {len(x)} training samples; use a smaller n_val")
    if n_val == 0:
        return x, y, np.empty((0, x.shape[1])), np.empty(0, np.int64)
    return x[:-n_val], y[:-n_val], x[-n_val:], y[-n_val:]


def _mnist_missing_message(path: Path) -> str:
    return (f"mnist: expected file {_show(path)} is missing. Download {MNIST_URL} and save it as "
            f"{_show(path)} (or point $MICROCIRCUIT_CACHE / cache_dir at the folder holding mnist.npz). "
            "For an offline stand-in use microcircuit.datasets.digits().")


def mnist(n_val: int = 10000, scale: float = 255.0,
          cache_dir: str | os.PathLike | None = None) -> SupervisedData:
    """MNIST from ``<cache>/mnist.npz`` (784 inputs, 10 classes); see the module docstring."""
    n_val = check_positive_int(n_val, "mnist.n_val", allow_zero=True)
    path = _cache_dir(cache_dir) / "mnist.npz"
    if not path.is_file():
        raise DatasetNotAvailableError(_mnist_missing_message(path))
    try:
        with np.load(path, allow_pickle=False) as f:
            for info in f.zip.infolist():
                if info.file_size > MNIST_MAX_BYTES:
                    raise DatasetError(f"mnist: file {_show(path)}: member {info.filename!r} unpacks to "
                                       f"{info.file_size} bytes (> {MNIST_MAX_BYTES}); not the MNIST file. "
                                       f"Fix: replace it with {MNIST_URL}")
            arrays = {k: f[k] for k in ("x_train", "y_train", "x_test", "y_test")}
    except DatasetError:
        raise
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise DatasetError(f"mnist: could not read {_show(path)} as the MNIST .npz file "
                           f"(arrays x_train, y_train, x_test, y_test; no object arrays): "
                           f"{type(exc).__name__}: {_show(exc)}. Fix: replace it with {MNIST_URL}") from None
    for k in ("x_train", "x_test"):
        if arrays[k].ndim != 3 or arrays[k].shape[1:] != (28, 28) or arrays[k].dtype.kind not in "uif":
            raise DatasetError(f"mnist: {_show(path)}: {k} has shape {arrays[k].shape} dtype {arrays[k].dtype}, "
                               f"expected (n, 28, 28) numbers. Fix: replace it with {MNIST_URL}")
    x_tr = arrays["x_train"].reshape(len(arrays["x_train"]), -1).astype(np.float64) / scale
    y_tr = arrays["y_train"].astype(np.int64)
    x_te = arrays["x_test"].reshape(len(arrays["x_test"]), -1).astype(np.float64) / scale
    y_te = arrays["y_test"].astype(np.int64)
    x_train, y_train, x_val, y_val = _split_val(x_tr, y_tr, n_val, "mnist")
    attrs = {"generator": "microcircuit.datasets.mnist", "file": str(path), "n_val": n_val,
             "scale": float(scale), "source": MNIST_URL}
    return SupervisedData(x_train, y_train, x_val, y_val, x_te, y_te, 10, "mnist", attrs)


def _cifar_paths(cache_dir) -> tuple[Path, list[Path]]:
    root = _cache_dir(cache_dir) / CIFAR10_FOLDER
    return root, [root / n for n in CIFAR10_FILES]


def _show(path) -> str:
    """A path for a message: escaped like ``repr`` when it holds control characters."""
    s = str(path)
    return s if s.isprintable() else repr(s)[1:-1]


def _cifar_size_problem(path: Path, size: int) -> str | None:
    if size == 0 or size % CIFAR10_RECORD:
        return (f"cifar10: file {_show(path)} has {size} bytes, not a positive multiple of {CIFAR10_RECORD} "
                f"(1 label byte + 3072 pixel bytes per image); it is not a CIFAR-10 binary batch. "
                f"Fix: replace it with the file from {CIFAR10_URL}")
    if size // CIFAR10_RECORD > CIFAR10_MAX_RECORDS:
        return (f"cifar10: file {_show(path)} holds {size // CIFAR10_RECORD} records, more than the "
                f"{CIFAR10_MAX_RECORDS} of a CIFAR-10 batch. Fix: replace it with the file from {CIFAR10_URL}")
    return None


def _cifar_missing_message(root: Path, missing: list[Path]) -> str:
    msg = (f"cifar10: expected files {', '.join(_show(p) for p in missing)} are missing. "
           f"Download the binary version {CIFAR10_URL} and extract it into {_show(root.parent)} "
           "(or point $MICROCIRCUIT_CACHE / cache_dir at that folder).")
    if (root.parent / "cifar-10-batches-py").exists():
        msg += (" The Python version (cifar-10-batches-py) found there is not read: its batches are "
                "pickles, and unpickling a file can run arbitrary code.")
    return msg


def cifar10_file_problems(args) -> list[str]:
    """Problems with the files :func:`cifar10` would read (``stat`` only, nothing is opened)."""
    root, paths = _cifar_paths(args.get("cache_dir"))
    missing = [p for p in paths if not p.is_file()]
    if missing:
        return [_cifar_missing_message(root, missing)]
    out = []
    for p in paths:
        msg = _cifar_size_problem(p, p.stat().st_size)
        if msg:
            out.append(msg)
    return out


def mnist_file_problems(args) -> list[str]:
    """Problems with the file :func:`mnist` would read (``stat`` only)."""
    path = _cache_dir(args.get("cache_dir")) / "mnist.npz"
    return [] if path.is_file() else [_mnist_missing_message(path)]


def _load_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One binary batch: records of 1 label byte + 3072 pixel bytes (R, G, B planes of 32x32).

    Parsed with ``np.frombuffer`` after size checks; returns pixels / 255 ``(n, 3072)`` in the
    file's channel-major order and labels ``(n,)``.
    """
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        msg = _cifar_size_problem(path, size)
        if msg:
            raise DatasetError(msg)
        buf = fh.read(size + 1)     # bounded: a file that grew since fstat is caught below
    if len(buf) != size:
        raise DatasetError(f"cifar10: file {_show(path)} changed size while being read. Fix: read it again "
                           "once it is complete")
    rec = np.frombuffer(buf, dtype=np.uint8).reshape(-1, CIFAR10_RECORD)
    labels = rec[:, 0].astype(np.int64)
    if labels.max() > 9:
        bad = int(np.argmax(labels > 9))
        raise DatasetError(f"cifar10: file {_show(path)}, record {bad}: label byte {labels[bad]} is not a class "
                           f"0-9; it is not a CIFAR-10 binary batch. Fix: replace it with the file from "
                           f"{CIFAR10_URL}")
    return rec[:, 1:].astype(np.float64) / 255.0, labels


def cifar10(n_val: int = 10000, cache_dir: str | os.PathLike | None = None) -> SupervisedData:
    """CIFAR-10 from the binary batches in ``<cache>/cifar-10-batches-bin`` (3072 inputs, 10 classes)."""
    n_val = check_positive_int(n_val, "cifar10.n_val", allow_zero=True)
    root, paths = _cifar_paths(cache_dir)
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise DatasetNotAvailableError(_cifar_missing_message(root, missing))
    parts = [_load_cifar_batch(p) for p in paths[:5]]
    x_tr = np.concatenate([p[0] for p in parts])
    y_tr = np.concatenate([p[1] for p in parts])
    x_te, y_te = _load_cifar_batch(paths[5])
    x_train, y_train, x_val, y_val = _split_val(x_tr, y_tr, n_val, "cifar10")
    attrs = {"generator": "microcircuit.datasets.cifar10", "folder": str(root), "n_val": n_val,
             "scale": 255.0, "source": CIFAR10_URL}
    return SupervisedData(x_train, y_train, x_val, y_val, x_te, y_te, 10, "cifar10", attrs)
