"""The recorder's own chunk writer (recording._resize_and_write with a store path, _write_file).

Whole chunks of a recorded variable are encoded and written as files by the recorder instead of by
zarr's event loop; a store must not be able to tell: the chunk files must be the bytes zarr writes,
for every codec the recorder offers, and whatever is not a whole chunk still goes through zarr.
"""
import os
import threading

import numpy as np
import pytest
import zarr

from microcircuit import recording as R

from helpers import direct_and_zarr_arrays


@pytest.mark.parametrize("codec", ["none", "zstd", "lz4"])
def test_direct_chunk_files_are_the_bytes_zarr_writes(tmp_path, codec):
    data = np.cumsum(np.random.default_rng(0).normal(size=(300, 2, 7)), axis=0)
    direct, via_zarr = direct_and_zarr_arrays(tmp_path, codec)
    R._resize_and_write([(direct, 0, data)], tmp_path / "direct")
    R._resize_and_write([(via_zarr, 0, data)])
    files = sorted(f.relative_to(tmp_path / "zarr") for f in (tmp_path / "zarr" / "v" / "c").rglob("*") if f.is_file())
    assert len(files) == 3                                   # three whole chunks of 100 records
    for f in files:
        assert (tmp_path / "direct" / f).read_bytes() == (tmp_path / "zarr" / f).read_bytes(), f
    np.testing.assert_array_equal(zarr.open_array(str(tmp_path / "direct" / "v"))[:300], data)


def test_partial_chunks_go_through_zarr_and_read_back(tmp_path):
    """A block starting inside a chunk, and the tail of one that ends inside a chunk, are written by zarr
    (read-modify-write); the whole chunks between them directly. Every value reads back."""
    rng = np.random.default_rng(1)
    direct, _ = direct_and_zarr_arrays(tmp_path, "zstd")
    blocks = [rng.normal(size=(m, 2, 7)) for m in (250, 120, 30, 200)]   # 0-250, 250-370, 370-400, 400-600
    n0 = 0
    for b in blocks:
        R._resize_and_write([(direct, n0, b)], tmp_path / "direct", set())
        n0 += len(b)
    np.testing.assert_array_equal(zarr.open_array(str(tmp_path / "direct" / "v"))[:n0], np.concatenate(blocks))


def test_write_file_exact_bytes_with_and_without_o_direct(tmp_path, monkeypatch):
    sizes = [100, R._DIRECT_MIN - 1, R._DIRECT_MIN, 1_000_007, 3 * R._DIRECT_ALIGN * 100]
    payloads = {n: np.random.default_rng(n).integers(0, 256, n, dtype=np.uint8) for n in sizes}
    for n, p in payloads.items():
        R._write_file(tmp_path / f"a{n}", p)
        assert (tmp_path / f"a{n}").read_bytes() == p.tobytes()
    # a file system that refuses O_DIRECT: plain writes, same bytes, and the device is remembered
    monkeypatch.setattr(R, "_direct", {"refused": set()})
    real_open = os.open

    def refuse(path, flags, *a):
        if flags & getattr(os, "O_DIRECT", 0):
            raise OSError(22, "Invalid argument")
        return real_open(path, flags, *a)

    monkeypatch.setattr(os, "open", refuse)
    for n, p in payloads.items():
        R._write_file(tmp_path / f"b{n}", p)
        assert (tmp_path / f"b{n}").read_bytes() == p.tobytes()
    if hasattr(os, "O_DIRECT"):
        assert R._direct["refused"] == {os.stat(tmp_path).st_dev}


def test_concurrent_writers_do_not_share_a_scratch_buffer(tmp_path):
    """Recorders of simulations running in threads (a sweep) write at once: each thread has its own
    aligned scratch buffer, so every file holds its own bytes."""
    n = R._DIRECT_MIN + 12345
    errors = []

    def writer(t):
        rng = np.random.default_rng(t)
        for i in range(15):
            p = rng.integers(0, 256, n, dtype=np.uint8)
            f = tmp_path / f"t{t}_{i}"
            R._write_file(f, p)
            if f.read_bytes() != p.tobytes():
                errors.append(f)

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
