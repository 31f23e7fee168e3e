"""The papers' largest networks as scenarios (issue item 3): the safe IDX reader behind ``mnist_idx``,
scenarios/le_mnist_784_300_100_10.toml (LE Fig. 2b, MNIST from user-supplied IDX files) and
scenarios/gle_speech_shaped.toml (GLE Fig. 8e network 32-750x3-12 on synthetic speech-shaped input).

No MNIST file is downloaded: every IDX file here is written by the test itself.
"""
from __future__ import annotations

import gzip
import struct
import time
from pathlib import Path

import numpy as np
import pytest

from microcircuit.cli import main
from microcircuit.datasets import DATASETS, DatasetError, mnist_idx, read_idx, speech_shaped
from microcircuit.datasets.downloads import DatasetNotAvailableError
from microcircuit.datasets.registry import check_args
from microcircuit.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[1]
LE_MNIST = ROOT / "scenarios" / "le_mnist_784_300_100_10.toml"
GLE_SPEECH = ROOT / "scenarios" / "gle_speech_shaped.toml"


def idx_bytes(arr: np.ndarray, code: int = 0x08) -> bytes:
    """An IDX file: 00 00 <code> <ndim>, big-endian uint32 dims, big-endian items."""
    dt = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}[code]
    head = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return head + np.asarray(arr).astype(dt).tobytes()


def _images(n, seed):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), (np.arange(n) % 10).astype(np.uint8)


@pytest.fixture
def mnist_files(tmp_path):
    """Four small MNIST-like IDX files: 20 training and 10 test images (training files gzipped)."""
    xtr, ytr = _images(20, 0)
    xte, yte = _images(10, 1)
    files = {"train_images": tmp_path / "train-images-idx3-ubyte.gz",
             "train_labels": tmp_path / "train-labels-idx1-ubyte.gz",
             "test_images": tmp_path / "t10k-images-idx3-ubyte",
             "test_labels": tmp_path / "t10k-labels-idx1-ubyte"}
    for key, arr in (("train_images", xtr), ("train_labels", ytr)):
        files[key].write_bytes(gzip.compress(idx_bytes(arr)))
    files["test_images"].write_bytes(idx_bytes(xte))
    files["test_labels"].write_bytes(idx_bytes(yte))
    return files, (xtr, ytr, xte, yte)


# ------------------------------------------------------------------------------------------- IDX
def test_idx_round_trip(tmp_path):
    """images 20x28x28 uint8 and 20 labels written as IDX (plain and .gz) read back identically:
    shape (20, 28, 28) and (20,), pixel [3, 14, 7] equal to what was written, labels 0..9 twice."""
    x, y = _images(20, 0)
    x[3, 14, 7] = 201
    (tmp_path / "img").write_bytes(idx_bytes(x))
    (tmp_path / "lab.gz").write_bytes(gzip.compress(idx_bytes(y)))
    a, b = read_idx(tmp_path / "img"), read_idx(tmp_path / "lab.gz")
    assert a.shape == (20, 28, 28) and a.dtype == np.uint8
    assert a[3, 14, 7] == 201
    np.testing.assert_array_equal(a, x)
    assert b.shape == (20,)
    assert b.tolist() == list(range(10)) * 2
    # other type codes come back in native byte order with their values: int16, float32, float64
    for code, arr in ((0x0B, np.array([[-300, 2], [7, 30000]])), (0x0D, np.array([1.5, -2.25])),
                      (0x0E, np.arange(24.0).reshape(2, 3, 4) / 3)):
        (tmp_path / f"t{code}").write_bytes(idx_bytes(arr, code))
        np.testing.assert_array_equal(read_idx(tmp_path / f"t{code}"), arr)


def _corrupt_cases(x):
    good = idx_bytes(x)
    return {
        "bad magic": (b"\x01\x00" + good[2:], "bad magic number"),
        "wrong type code": (good[:2] + b"\x07" + good[3:], "unknown type code 0x07"),
        "ndim 0": (good[:3] + b"\x00" + good[4:], "0 dimensions"),
        "ndim 5": (good[:3] + b"\x05" + good[4:], "5 dimensions"),
        "size mismatch (trailing bytes)": (good + b"\x00", "trailing bytes"),
        "truncated data": (good[:-1], "truncated"),
        "truncated header": (good[:9], "truncated header"),
        "shorter than magic": (good[:3], "shorter than the 4-byte magic"),
        "huge dims": (bytes([0, 0, 8, 3]) + struct.pack(">3I", 60000, 10000, 10000), "more than the limit"),
    }


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
def test_idx_corrupted_headers_are_dataset_errors_naming_the_file(tmp_path, gz):
    """Each corruption (9 kinds, plain and gzipped) is a DatasetError whose message names the file and
    the problem; nothing else (no numpy reshape error, no MemoryError)."""
    x, _ = _images(4, 0)
    for kind, (raw, words) in _corrupt_cases(x).items():
        p = tmp_path / (kind.replace(" ", "_").replace("(", "").replace(")", "") + (".gz" if gz else ""))
        p.write_bytes(gzip.compress(raw) if gz else raw)
        with pytest.raises(DatasetError) as ei:
            read_idx(p)
        msg = str(ei.value)
        assert str(p) in msg and words in msg, (kind, msg)


def test_idx_gz_bomb_and_broken_gzip(tmp_path):
    """A .gz whose header promises 1 MB and that decompresses to 1 MB + 100 bytes is refused under
    max_bytes = 1 MB without holding more than the limit; a file that is not gzip, or a cut gzip
    stream, is a DatasetError naming the file (not OSError / EOFError)."""
    n = 1 << 20
    raw = bytes([0, 0, 8, 1]) + struct.pack(">I", n) + bytes(n + 100)
    p = tmp_path / "bomb.gz"
    p.write_bytes(gzip.compress(raw))
    assert p.stat().st_size < 10_000                      # a small file ...
    with pytest.raises(DatasetError, match="decompresses to more than 1048576 bytes") as ei:
        read_idx(p, max_bytes=n)                          # ... that would unpack past the limit
    assert str(p) in str(ei.value)
    q = tmp_path / "notgzip.gz"
    q.write_bytes(idx_bytes(np.zeros(3, np.uint8)))
    with pytest.raises(DatasetError, match="could not be read") as ei:
        read_idx(q)
    assert str(q) in str(ei.value)
    r = tmp_path / "cut.gz"
    r.write_bytes(gzip.compress(idx_bytes(np.zeros((4, 28, 28), np.uint8)))[:-12])
    with pytest.raises(DatasetError) as ei:
        read_idx(r)
    assert str(r) in str(ei.value)
    with pytest.raises(DatasetError, match="not found"):
        read_idx(tmp_path / "absent")


def test_mnist_idx_data_set(mnist_files):
    """mnist_idx: 20 training images, n_val = 5 -> 15 train / 5 val / 10 test, 784 features,
    pixels / 255 (pixel [0, 0, 0] of the first test image), labels as written."""
    files, (xtr, ytr, xte, yte) = mnist_files
    d = mnist_idx(**{k: str(v) for k, v in files.items()}, n_val=5)
    assert (d.x_train.shape, d.x_val.shape, d.x_test.shape) == ((15, 784), (5, 784), (10, 784))
    assert d.n_classes == 10 and d.n_outputs == 10
    assert d.x_test[0, 0] == pytest.approx(xte[0, 0, 0] / 255.0)
    assert d.x_val[-1, 28 * 5 + 6] == pytest.approx(xtr[-1, 5, 6] / 255.0)
    assert d.y_train.tolist() == ytr[:15].tolist() and d.y_test.tolist() == yte.tolist()
    # mismatched labels (11 labels for 10 test images) and labels > 9 name the file
    files["test_labels"].write_bytes(idx_bytes(np.arange(11, dtype=np.uint8)))
    with pytest.raises(DatasetError, match="t10k-labels-idx1-ubyte"):
        mnist_idx(**{k: str(v) for k, v in files.items()}, n_val=5)
    files["test_labels"].write_bytes(idx_bytes(np.full(10, 10, np.uint8)))
    with pytest.raises(DatasetError, match="integers 0-9"):
        mnist_idx(**{k: str(v) for k, v in files.items()}, n_val=5)


def test_mnist_idx_registry_and_missing_file(tmp_path):
    """Registered with typed, bounded arguments (a path must be a string; n_val >= 0); a missing file is
    a FileNotFoundError that says where to get MNIST, raised when loading (the scenario validates)."""
    assert "mnist_idx" in DATASETS and "speech_shaped" in DATASETS
    probs = dict(check_args("mnist_idx", {"train_images": 5, "n_val": -1, "evil": 1}))
    assert set(probs) == {"dataset_args.train_images", "dataset_args.n_val", "dataset_args.evil"}
    assert "file path" in probs["dataset_args.train_images"]
    assert check_args("mnist_idx", {"train_images": "x\x00y"})
    with pytest.raises(DatasetNotAvailableError, match="file not found.*ossci-datasets"):
        mnist_idx(train_images=str(tmp_path / "nope.gz"))


# ------------------------------------------------------------------------------ LE MNIST scenario
def test_le_mnist_scenario_validates_and_runs(mnist_files, tmp_path, capsys):
    """The bundled file validates without the MNIST files (784-300-100-10, dt 0.01, t_pres 1, lr 16,
    batch 512: the published values); pointed at the synthetic IDX files with a short presentation
    (dt 0.1 -> 10 steps), batch 4, 1 epoch it runs through the CLI to exit 0 and writes 2 metric rows
    (epochs 0 and 1: eval_every is set to 1)."""
    import zarr
    load_scenario(LE_MNIST)
    assert main(["validate", str(LE_MNIST)]) == 0
    capsys.readouterr()
    files, _ = mnist_files
    out = tmp_path / "le.zarr"
    sets = [f"protocol.dataset_args.{k}={v}" for k, v in files.items()]
    sets += ["protocol.dataset_args.n_val=5", "protocol.epochs=1", "protocol.eval_every=1", "protocol.batch=4",
             "simulation.dt=0.1"]
    t0 = time.perf_counter()
    rc = main(["run", str(LE_MNIST), "--out", str(out)] + sum((["--set", s] for s in sets), []))
    wall = time.perf_counter() - t0
    text = capsys.readouterr()
    assert rc == 0, text
    g = zarr.open_group(str(out), mode="r")
    assert list(g["metrics/epoch"][:]) == [0, 1]
    assert np.isfinite(g["metrics/test_accuracy"][:]).all()
    assert wall < 60


def test_le_mnist_scenario_published_shape():
    """784-300-100-10 with tau_m = 20 ms hidden/output populations, from the template."""
    from microcircuit.scenario.build import build_circuit
    c = build_circuit(load_scenario(LE_MNIST))
    sizes = {p.name: p.size for p in c.populations}
    assert sizes == {"input": 784, "layer1": 300, "layer2": 100, "output": 10}


def test_le_mnist_run_without_files_says_where_to_get_them(tmp_path, capsys, monkeypatch):
    """Run with the default (absent) paths: a clean exit != 0 and a message naming the file and the
    source, no traceback."""
    monkeypatch.chdir(tmp_path)
    rc = main(["run", str(LE_MNIST), "--out", str(tmp_path / "x.zarr")])
    err = capsys.readouterr().err
    assert rc != 0
    assert "file not found" in err and "mnist/train-images-idx3-ubyte.gz" in err and "ossci-datasets" in err
    assert "Traceback" not in err


# ------------------------------------------------------------------------ GLE speech-shaped scenario
def test_speech_shaped_generator():
    """32 channels x n_steps per sample (step-major), 12 classes, per-sample normalised (mean 0, std 1),
    a pure function of the seed, and the size bound refuses 5e7+ values."""
    a = speech_shaped(n_train=24, n_val=4, n_test=4, n_steps=50, seed=3)
    b = speech_shaped(n_train=24, n_val=4, n_test=4, n_steps=50, seed=3)
    c = speech_shaped(n_train=24, n_val=4, n_test=4, n_steps=50, seed=4)
    assert a.x_train.shape == (24, 50 * 32) and a.n_classes == 12
    np.testing.assert_array_equal(a.x_train, b.x_train)
    assert not np.array_equal(a.x_train, c.x_train)
    np.testing.assert_allclose(a.x_train.mean(axis=1), 0, atol=1e-12)
    np.testing.assert_allclose(a.x_train.std(axis=1), 1, atol=1e-12)
    assert set(a.y_train.tolist()) <= set(range(12))
    # class structure: same-class samples correlate more than different-class samples (noise-free)
    d = speech_shaped(n_train=200, n_val=0, n_test=0, n_steps=100, noise=0.0, seed=0)
    m = np.stack([d.x_train[d.y_train == k].mean(0) for k in range(12)])
    assert np.std(m, axis=0).mean() > 0.2
    with pytest.raises(DatasetError, match="more than the limit"):
        speech_shaped(n_train=2000, n_steps=800)


def test_gle_speech_scenario_builds_published_network():
    """32 -> 750 -> 750 -> 750 -> 12 (plus the bias unit); each hidden layer carries 5 groups of 150 units
    with (tau_m, tau_r) = (2.4, 2.4), (0.6, 0.1), (1.2, 0.1), (1.8, 0.1), (2.4, 0.1); output 2.4/2.4."""
    from microcircuit.scenario.build import build_circuit
    c = build_circuit(load_scenario(GLE_SPEECH))
    sizes = {p.name: p.size for p in c.populations}
    assert sizes == {"input": 32, "bias": 1, "layer1": 750, "layer2": 750, "layer3": 750, "output": 12}
    for name in ("layer1", "layer2", "layer3"):
        p = c.population(name)
        tm, tr = np.asarray(p.params["tau_m"]), np.asarray(p.params["tau_r"])
        for g, (m, r) in enumerate([(2.4, 2.4), (0.6, 0.1), (1.2, 0.1), (1.8, 0.1), (2.4, 0.1)]):
            assert np.all(tm[150 * g:150 * (g + 1)] == m) and np.all(tr[150 * g:150 * (g + 1)] == r)


def test_gle_speech_scenario_short_run(tmp_path, capsys):
    """The reduced run of the header (8 clips of 20 steps, batch 2, 1 epoch) exits 0 and writes the
    metrics row of epoch 1 (eval_initial = false)."""
    import zarr
    assert main(["validate", str(GLE_SPEECH)]) == 0
    out = tmp_path / "speech.zarr"
    sets = ["simulation.batch=2", "protocol.epochs=1", "protocol.t_pres=1.0", "protocol.dataset_args.n_steps=20",
            "protocol.dataset_args.n_train=8", "protocol.dataset_args.n_val=2", "protocol.dataset_args.n_test=2"]
    rc = main(["run", str(GLE_SPEECH), "--out", str(out)] + sum((["--set", s] for s in sets), []))
    assert rc == 0, capsys.readouterr()
    g = zarr.open_group(str(out), mode="r")
    assert list(g["metrics/epoch"][:]) == [1]
    assert np.isfinite(g["metrics/train_loss"][:]).all()
