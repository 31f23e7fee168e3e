"""A safe reader of IDX files (the MNIST distribution format) and the ``mnist_idx`` data set.

IDX layout (LeCun's MNIST page): 4 magic bytes ``0x00 0x00 <type code> <ndim>``, then ``ndim``
big-endian uint32 dimensions, then the items, big-endian, row-major. Type codes: ``0x08`` uint8,
``0x09`` int8, ``0x0B`` int16, ``0x0C`` int32, ``0x0D`` float32, ``0x0E`` float64.

:func:`read_idx` checks, before any array is made: the two zero magic bytes, a known type code,
``1 <= ndim <= 4``, every dimension >= 1, ``product(dims) * itemsize`` **exactly** equal to the bytes
after the header, and a size limit (``max_bytes``, default :data:`IDX_MAX_BYTES`) on the data. A
file whose name ends in ``.gz`` is decompressed with :mod:`gzip`, reading at most ``max_bytes`` +
header + 1 bytes, so a small "gzip bomb" cannot fill the memory. The items are parsed with
``np.frombuffer`` (no code can run from file content). Every problem is a
:class:`~microcircuit.datasets.DatasetError` naming the file and what is wrong.

:func:`mnist_idx` reads the four MNIST files (``train-images-idx3-ubyte[.gz]``,
``train-labels-idx1-ubyte[.gz]``, ``t10k-images-idx3-ubyte[.gz]``, ``t10k-labels-idx1-ubyte[.gz]``)
from paths the caller gives. A relative path is taken relative to the current working directory
(as ``cache_dir`` of the other download-only data sets: the paths are handed to the loader
unchanged), not to the scenario file.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path

import numpy as np

from .base import DatasetError, SupervisedData, check_positive_int

__all__ = ["read_idx", "mnist_idx", "IDX_MAX_BYTES", "IDX_DTYPES", "MNIST_IDX_URL"]

IDX_MAX_BYTES = 256 * 2**20      # the data of one file; MNIST's largest (train images) is 47,040,000 bytes
IDX_DTYPES = {0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
              0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
MNIST_IDX_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/ (mirror of http://yann.lecun.com/exdb/mnist/)"
MNIST_IDX_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                   "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def _show(path) -> str:
    s = str(path)
    return s if s.isprintable() else repr(s)[1:-1]


def _header(buf: bytes, path) -> tuple[np.dtype, tuple[int, ...], int]:
    """Parse the magic number and dimensions at the start of ``buf``; returns (dtype, dims, header bytes)."""
    where = f"IDX file {_show(path)}"
    if len(buf) < 4:
        raise DatasetError(f"{where}: {len(buf)} bytes, shorter than the 4-byte magic number; not an IDX file")
    if buf[0] != 0 or buf[1] != 0:
        raise DatasetError(f"{where}: bad magic number {buf[:4].hex()} (the first two bytes must be 00 00); "
                           "not an IDX file")
    code, ndim = buf[2], buf[3]
    if code not in IDX_DTYPES:
        raise DatasetError(f"{where}: unknown type code 0x{code:02x} in the magic number; expected one of "
                           + ", ".join(f"0x{c:02x}" for c in IDX_DTYPES))
    if not 1 <= ndim <= 4:
        raise DatasetError(f"{where}: {ndim} dimensions in the magic number; expected 1 to 4")
    hdr = 4 + 4 * ndim
    if len(buf) < hdr:
        raise DatasetError(f"{where}: truncated header ({len(buf)} bytes, {hdr} needed for {ndim} dimensions)")
    dims = tuple(int(d) for d in np.frombuffer(buf, dtype=">u4", count=ndim, offset=4))
    if min(dims) < 1:
        raise DatasetError(f"{where}: dimensions {dims} include 0; expected every dimension >= 1")
    return IDX_DTYPES[code], dims, hdr


def _check_size(path, dtype, dims, n_data: int, max_bytes: int) -> None:
    need = math.prod(dims) * dtype.itemsize
    if need > max_bytes:
        raise DatasetError(f"IDX file {_show(path)}: dimensions {dims} of {dtype.name} need {need} bytes, more "
                           f"than the limit of {max_bytes} bytes")
    if need != n_data:
        raise DatasetError(f"IDX file {_show(path)}: dimensions {dims} of {dtype.name} need {need} data bytes, the "
                           f"file holds {n_data} after the header ("
                           + ("truncated" if n_data < need else "trailing bytes") + ")")


def read_idx(path: str | os.PathLike, *, max_bytes: int = IDX_MAX_BYTES) -> np.ndarray:
    """The array stored in an IDX file (``.gz`` decompressed), in native byte order; see the module docstring."""
    max_bytes = check_positive_int(max_bytes, "read_idx.max_bytes")
    p = Path(path)
    if not p.is_file():
        raise DatasetError(f"IDX file {_show(p)}: not found (or not a file)")
    try:
        if p.name.endswith(".gz"):
            limit = max_bytes + 4 + 16 + 1          # data limit + largest header + 1 to detect excess
            with gzip.open(p, "rb") as fh:
                buf = fh.read(limit)
            if len(buf) >= limit:
                raise DatasetError(f"IDX file {_show(p)}: decompresses to more than {max_bytes} bytes of data "
                                   "(the size limit); not read")
        else:
            with open(p, "rb") as fh:
                size = os.fstat(fh.fileno()).st_size
                head = fh.read(20)
                dtype, dims, hdr = _header(head, p)
                _check_size(p, dtype, dims, size - hdr, max_bytes)
                fh.seek(0)
                buf = fh.read(size + 1)
            if len(buf) != size:
                raise DatasetError(f"IDX file {_show(p)}: changed size while being read")
    except DatasetError:
        raise
    except (OSError, EOFError, zlib.error) as exc:
        raise DatasetError(f"IDX file {_show(p)}: could not be read: {type(exc).__name__}: {_show(exc)}") from None
    dtype, dims, hdr = _header(buf, p)
    _check_size(p, dtype, dims, len(buf) - hdr, max_bytes)
    arr = np.frombuffer(buf, dtype=dtype, offset=hdr).reshape(dims)
    return arr.astype(dtype.newbyteorder("="))


def _missing(path) -> str:
    return (f"mnist_idx: file not found: {_show(path)}; get the MNIST IDX files "
            f"({', '.join(MNIST_IDX_FILES)}) from {MNIST_IDX_URL} and give their paths in dataset_args "
            "(relative paths are relative to the current working directory)")


def _images_labels(img_path, lab_path, what):
    for q in (img_path, lab_path):
        if not Path(q).is_file():
            from .downloads import DatasetNotAvailableError
            raise DatasetNotAvailableError(_missing(q))
    x = read_idx(img_path)
    y = read_idx(lab_path)
    if x.ndim != 3:
        raise DatasetError(f"mnist_idx: {what} images {_show(img_path)} have shape {x.shape}; expected "
                           "(n, rows, cols)")
    if y.ndim != 1 or len(y) != len(x):
        raise DatasetError(f"mnist_idx: {what} labels {_show(lab_path)} have shape {y.shape}; expected "
                           f"({len(x)},), one per image of {_show(img_path)}")
    if y.dtype.kind not in "iu" or (len(y) and (y.min() < 0 or y.max() > 9)):
        raise DatasetError(f"mnist_idx: {what} labels {_show(lab_path)} must be integers 0-9 "
                           f"(type {y.dtype}, range {y.min()}..{y.max()})")
    return x.reshape(len(x), -1).astype(np.float64), y.astype(np.int64)


def mnist_idx(train_images: str = MNIST_IDX_FILES[0], train_labels: str = MNIST_IDX_FILES[1],
              test_images: str = MNIST_IDX_FILES[2], test_labels: str = MNIST_IDX_FILES[3],
              n_val: int = 10000, scale: float = 255.0) -> SupervisedData:
    """MNIST from the four IDX files (784 inputs, 10 classes): pixels / ``scale``, flattened; the last
    ``n_val`` training images form the validation set (LE Fig. 2b: 10 000). The default paths are the
    official file names in the working directory."""
    from .downloads import _split_val
    n_val = check_positive_int(n_val, "mnist_idx.n_val", allow_zero=True)
    scale = float(scale)
    if not math.isfinite(scale) or scale <= 0:
        raise DatasetError(f"mnist_idx.scale: expected a positive number, got {scale}")
    x_tr, y_tr = _images_labels(train_images, train_labels, "training")
    x_te, y_te = _images_labels(test_images, test_labels, "test")
    if x_tr.shape[1] != x_te.shape[1]:
        raise DatasetError(f"mnist_idx: training images have {x_tr.shape[1]} pixels, test images "
                           f"{x_te.shape[1]}; expected the same size")
    x_train, y_train, x_val, y_val = _split_val(x_tr / scale, y_tr, n_val, "mnist_idx")
    attrs = {"generator": "microcircuit.datasets.mnist_idx", "n_val": n_val, "scale": scale,
             "files": [str(train_images), str(train_labels), str(test_images), str(test_labels)],
             "source": MNIST_IDX_URL}
    return SupervisedData(x_train, y_train, x_val, y_val, x_te / scale, y_te, 10, "mnist_idx", attrs)
