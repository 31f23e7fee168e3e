"""MNIST-1D (Greydanus 2020; package ``mnist1d``), generated offline, used by GLE.

Generation uses only ``mnist1d.data.make_dataset(get_dataset_args())`` with
``final_seq_length`` and ``seed`` set (never ``get_dataset``, which may download and unpickle a
``.pkl`` file; ``make_dataset`` builds the set from in-code templates and reads no file).
Defaults of ``get_dataset_args()``: 5000 samples (500 per digit), train_split 0.8, template_len
12, padding [36, 60], scale_coeff 0.4, max_translation 48, corr_noise_scale 0.25,
iid_noise_scale 2e-2, shear_scale 0.75, shuffle_seq False, seed 42. The set is standardised over
all samples (mean 0, std 1) and split 4000 train / 1000 test (GLE calls the test split
"validation"). GLE: final_seq_length = 360, one scalar per step at dt = 0.2.

``make_dataset`` reseeds Python's ``random`` and NumPy's global RNG; both states are saved before
and restored after generation, so calling :func:`mnist1d` leaves the caller's global RNGs
untouched. The arrays are cached in ``<cache_dir>/mnist1d_L{final_seq_length}_seed{seed}.npz``
(cache dir: argument, ``$MICROCIRCUIT_CACHE`` or ``~/.cache/microcircuit``), read back with
``np.load(..., allow_pickle=False)``; an unreadable cache file is a ``DatasetError`` naming it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
import zipfile
from pathlib import Path

import numpy as np

from ._cache import cache_dir as _cache_dir
from .base import DatasetError, SupervisedData, check_positive_int

__all__ = ["mnist1d", "MNIST1D_INSTALL_HINT"]

MNIST1D_INSTALL_HINT = (
    "the MNIST-1D generator needs the optional package 'mnist1d'; install it with "
    "`pip install microcircuit[datasets]` (or `pip install mnist1d`)"
)


def _generate(final_seq_length: int, seed: int) -> dict[str, np.ndarray]:
    if importlib.util.find_spec("mnist1d") is None:
        raise ImportError(MNIST1D_INSTALL_HINT)
    py_state = random.getstate()
    np_state = np.random.get_state()
    try:
        from mnist1d.data import get_dataset_args, make_dataset

        args = get_dataset_args()
        args.final_seq_length = int(final_seq_length)
        args.seed = int(seed)
        data = make_dataset(args)
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
    return {
        "x_train": np.asarray(data["x"], dtype=np.float64),
        "y_train": np.asarray(data["y"], dtype=np.int64),
        "x_test": np.asarray(data["x_test"], dtype=np.float64),
        "y_test": np.asarray(data["y_test"], dtype=np.int64),
        "t": np.asarray(data["t"], dtype=np.float64),
    }


def mnist1d(
    final_seq_length: int = 360,
    seed: int = 42,
    cache_dir: str | os.PathLike | None = None,
    use_cache: bool = True,
) -> SupervisedData:
    """MNIST-1D with ``final_seq_length`` inputs per sample, 10 classes, 4000 train / 1000 test.

    ``extras["t"]`` holds the package's (rescaled) sample coordinate. ``use_cache=False`` neither
    reads nor writes the cache file.
    """
    final_seq_length = check_positive_int(final_seq_length, "mnist1d.final_seq_length")
    seed = int(seed)
    path: Path | None = None
    arrays: dict[str, np.ndarray] | None = None
    if use_cache:
        path = _cache_dir(cache_dir) / f"mnist1d_L{final_seq_length}_seed{seed}.npz"
        if path.is_file():
            try:
                with np.load(path, allow_pickle=False) as f:
                    meta = json.loads(str(f["meta"]))
                    if meta == {"final_seq_length": final_seq_length, "seed": seed}:
                        arrays = {k: f[k] for k in ("x_train", "y_train", "x_test", "y_test", "t")}
            except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
                raise DatasetError(f"mnist1d: cache file {path} is unreadable ({type(exc).__name__}); "
                                   "it is not a cache file written by microcircuit. Fix: delete it (it is "
                                   "regenerated) or point cache_dir elsewhere") from None
    if arrays is None:
        arrays = _generate(final_seq_length, seed)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp.npz")
            meta = json.dumps({"final_seq_length": final_seq_length, "seed": seed})
            np.savez(tmp, meta=np.asarray(meta), **arrays)
            os.replace(tmp, path)
    attrs = {
        "generator": "microcircuit.datasets.mnist1d",
        "source": "mnist1d.data.make_dataset(get_dataset_args()) (offline generation)",
        "final_seq_length": final_seq_length,
        "seed": seed,
        "num_samples": 5000,
        "train_split": 0.8,
    }
    n = arrays["x_train"].shape[1]
    return SupervisedData(
        x_train=arrays["x_train"], y_train=arrays["y_train"],
        x_val=np.empty((0, n)), y_val=np.empty(0, np.int64),
        x_test=arrays["x_test"], y_test=arrays["y_test"],
        n_classes=10, name="mnist1d", attrs=attrs, extras={"t": arrays["t"]},
    )
