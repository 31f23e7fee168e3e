"""Tests of the offline dataset generators (docs/datasets.md, one section per data set).

Every expected number is stated with its origin: the task definition, a closed form, or the
numbers quoted in docs/datasets.md from a re-derivation of the reference generator.
"""

from __future__ import annotations

import json
import math
import random

import numpy as np
import pytest

from microcircuit.datasets import (
    DatasetError,
    DatasetNotAvailableError,
    SupervisedData,
    bars,
    bars_patterns,
    bars_targets,
    cifar10,
    digits,
    fourier_synthesis,
    lagline_input,
    lagnet_input,
    mnist,
    one_hot,
    soft_rectifier,
    teacher_rates,
    teacher_student,
    yin_yang,
    yin_yang_class,
)
from microcircuit.datasets._cache import cache_dir


# --------------------------------------------------------------------------- Yin-Yang
@pytest.fixture(scope="module")
def yy():
    return yin_yang()


def test_yin_yang_class_counts_match_reference(yy):
    # docs/datasets.md, "Yin-Yang": RandomState + reference call order gives these multinomial counts.
    assert np.bincount(yy.y_train, minlength=3).tolist() == [1681, 1702, 1617]
    assert np.bincount(yy.y_val, minlength=3).tolist() == [316, 336, 348]
    assert np.bincount(yy.y_test, minlength=3).tolist() == [350, 316, 334]


def test_yin_yang_first_sample(yy):
    # docs/datasets.md, "Yin-Yang" (reference generator): first training sample (0.680308, 0.450499, 0.319692, 0.549501), class 2.
    np.testing.assert_allclose(yy.x_train[0], [0.680308, 0.450499, 0.319692, 0.549501], atol=5e-7)
    assert yy.y_train[0] == 2


@pytest.mark.parametrize(
    "x, y, label",
    [  # docs/datasets.md, "Yin-Yang": spot checks derived from the region definition
        (0.75, 0.5, 2), (0.25, 0.5, 2), (0.5, 0.9, 1), (0.5, 0.1, 0), (0.25, 0.65, 1),
        (0.75, 0.65, 0), (0.25, 0.35, 1), (0.75, 0.35, 0), (0.1, 0.5, 1), (0.9, 0.5, 0),
    ],
)
def test_yin_yang_spot_checks(x, y, label):
    assert yin_yang_class(x, y) == label
    assert yin_yang_class(np.array([x]), np.array([y])).tolist() == [label]


def test_yin_yang_invariants(yy):
    for split in ("train", "val", "test"):
        x, y = yy.split(split)
        assert x.dtype == np.float64 and x.shape[1] == 4
        # mirrored coordinates: x + x' = 1 and y + y' = 1 exactly (no rounding for x in [0, 1])
        assert np.all(x[:, 0] + x[:, 2] == 1.0) and np.all(x[:, 1] + x[:, 3] == 1.0)
        # every sample lies inside the big circle of radius 0.5 around (0.5, 0.5)
        assert np.all(np.hypot(x[:, 0] - 0.5, x[:, 1] - 0.5) <= 0.5)
        # the stored label is the region label of the stored coordinates
        np.testing.assert_array_equal(yin_yang_class(x[:, 0], x[:, 1]), y)
    assert (len(yy.x_train), len(yy.x_val), len(yy.x_test)) == (5000, 1000, 1000)
    json.dumps(yy.attrs)  # attrs must be storable as Zarr attributes
    assert yy.attrs["seeds"] == [42, 41, 40]


def test_yin_yang_reproducible_and_seed_dependent():
    a = yin_yang(50, 10, 10, seeds=(1, 2, 3))
    b = yin_yang(50, 10, 10, seeds=(1, 2, 3))
    c = yin_yang(50, 10, 10, seeds=(4, 2, 3))
    np.testing.assert_array_equal(a.x_train, b.x_train)
    assert not np.array_equal(a.x_train, c.x_train)
    np.testing.assert_array_equal(a.x_val, c.x_val)  # same val seed -> same val set
    with pytest.raises(DatasetError, match="seeds"):
        yin_yang(10, 10, 10, seeds=(1, 1, 2))
    with pytest.raises(DatasetError, match="n_train"):
        yin_yang(-1)


# --------------------------------------------------------------------------- Bars
def _img(rows: str) -> list[float]:
    return [float(c) for c in rows.replace("/", "")]


def test_bars_patterns_exact_order():
    # docs/datasets.md, "3×3 Bars" table, in the reference order, and labels 0,0,0,1,1,1,2,2.
    expected = [
        "000/000/111", "000/111/000", "111/000/000",
        "001/001/001", "010/010/010", "100/100/100",
        "100/010/001", "001/010/100",
    ]
    x, y = bars_patterns()
    np.testing.assert_array_equal(x, np.array([_img(s) for s in expected]))
    assert y.tolist() == [0, 0, 0, 1, 1, 1, 2, 2]


def test_bars_splits_targets_and_noise():
    d = bars()
    np.testing.assert_array_equal(d.x_train, d.x_val)
    np.testing.assert_array_equal(d.x_train, d.x_test)
    t = bars_targets(d.y_train)
    # voltage targets: 1.0 on the true class, 0.1 on the two others
    assert t.shape == (8, 3)
    np.testing.assert_array_equal(t.max(axis=1), 1.0)
    np.testing.assert_array_equal(np.sort(t, axis=1)[:, :2], 0.1)
    np.testing.assert_array_equal(t.argmax(axis=1), d.y_train)
    noisy = bars(noise=0.01, seed=3)
    dx = noisy.x_train - bars_patterns()[0]
    assert np.all(dx >= 0) and np.all(dx < 0.01) and dx.std() > 0  # U(0, 0.01) per pixel
    np.testing.assert_array_equal(noisy.x_train, bars(noise=0.01, seed=3).x_train)
    assert not np.array_equal(noisy.x_train, noisy.x_test)  # independent noise per split
    with pytest.raises(DatasetError, match="noise"):
        bars(noise=-1.0)


# --------------------------------------------------------------------------- digits
def test_digits_split():
    d = digits(test_size=0.2, val_size=0.1, seed=0)
    n = len(d.x_train) + len(d.x_val) + len(d.x_test)
    assert n == 1797 and d.n_features == 64 and d.n_classes == 10  # load_digits: 1797 × 64
    assert len(d.x_test) == 360  # ceil(0.2 · 1797) = 360
    for x in (d.x_train, d.x_val, d.x_test):
        assert x.min() == 0.0 and x.max() == 1.0  # pixels 0…16 scaled by 1/16
        np.testing.assert_array_equal(np.round(x * 16), x * 16)
    # stratified: each class's count in the test set is within 1 of 20 % of its total
    total = np.bincount(np.concatenate([d.y_train, d.y_val, d.y_test]), minlength=10)
    assert np.all(np.abs(np.bincount(d.y_test, minlength=10) - 0.2 * total) <= 1)
    np.testing.assert_array_equal(d.x_test, digits(0.2, 0.1, seed=0).x_test)
    assert not np.array_equal(d.x_test, digits(0.2, 0.1, seed=1).x_test)
    assert len(digits().x_val) == 0
    with pytest.raises(DatasetError, match="test_size"):
        digits(test_size=1.5)


# --------------------------------------------------------------------------- MNIST-1D
def test_mnist1d_generation_cache_and_rng_isolation(tmp_path):
    pytest.importorskip("mnist1d")
    from microcircuit.datasets import mnist1d

    random.seed(7)
    np.random.seed(7)
    py_before, np_before = random.random(), np.random.random()
    random.seed(7)
    np.random.seed(7)
    d = mnist1d(final_seq_length=360, seed=42, cache_dir=tmp_path)
    # the global RNG streams continue as if mnist1d had not been called
    assert random.random() == py_before and np.random.random() == np_before
    # docs/datasets.md, "MNIST-1D": 4000 train / 1000 test of length 360, 10 classes, 500 per digit overall
    assert d.x_train.shape == (4000, 360) and d.x_test.shape == (1000, 360)
    labels = np.concatenate([d.y_train, d.y_test])
    assert np.bincount(labels, minlength=10).tolist() == [500] * 10
    # standardised over the whole set: mean 0, std 1
    allx = np.concatenate([d.x_train, d.x_test])
    assert abs(allx.mean()) < 1e-12 and abs(allx.std() - 1.0) < 1e-12
    path = tmp_path / "mnist1d_L360_seed42.npz"
    assert path.is_file()
    again = mnist1d(final_seq_length=360, seed=42, cache_dir=tmp_path)
    np.testing.assert_array_equal(again.x_train, d.x_train)
    np.testing.assert_array_equal(again.y_test, d.y_test)


def test_mnist1d_missing_package_message(monkeypatch, tmp_path):
    import importlib.util

    from microcircuit.datasets import mnist1d

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "mnist1d" else real(name, *a)
    )
    with pytest.raises(ImportError, match=r"pip install microcircuit\[datasets\]"):
        mnist1d(use_cache=False, cache_dir=tmp_path)


def test_cache_dir_resolution(monkeypatch, tmp_path):
    monkeypatch.setenv("MICROCIRCUIT_CACHE", str(tmp_path / "env"))
    assert cache_dir() == tmp_path / "env"
    assert cache_dir(tmp_path / "arg") == tmp_path / "arg"
    monkeypatch.delenv("MICROCIRCUIT_CACHE")
    assert cache_dir().parts[-2:] == (".cache", "microcircuit")


# --------------------------------------------------------------------------- teacher–student
def test_soft_rectifier_closed_form():
    # φ(θ) = γ log 2 = 0.1 · 0.693147…; for u ≫ θ, φ(u) → γ (u − θ)
    assert soft_rectifier(3.0) == pytest.approx(0.1 * math.log(2.0), rel=1e-15)
    assert soft_rectifier(1003.0) == pytest.approx(100.0, rel=1e-12)
    assert soft_rectifier(-1000.0) == 0.0


def test_teacher_student_shapes_formula_reproducibility():
    d = teacher_student(n_train=40, n_val=5, n_test=20, seed=3)
    assert d.x_train.shape == (40, 30) and d.y_train.shape == (40, 10)
    assert d.x_val.shape == (5, 30) and d.y_test.shape == (20, 10)
    W10, W21 = d.extras["W10"], d.extras["W21"]
    assert W10.shape == (20, 30) and W21.shape == (10, 20)
    for a in (W10, W21, d.x_train):
        assert a.min() >= -1.0 and a.max() < 1.0  # U(−1, 1)
    # r_tgt = φ(k21 W21 φ(k10 W10 r0)), φ(u) = 0.1 log(1 + exp(u − 3)), written out here
    phi = lambda u: 0.1 * np.log1p(np.exp(u - 3.0))  # noqa: E731
    expected = phi(10.0 * phi(2.0 * d.x_test @ W10.T) @ W21.T)
    np.testing.assert_allclose(d.y_test, expected, rtol=1e-12)
    np.testing.assert_allclose(teacher_rates(d.x_train, W10, W21), d.y_train, rtol=0)
    again = teacher_student(n_train=40, n_val=5, n_test=20, seed=3)
    np.testing.assert_array_equal(again.y_train, d.y_train)
    other = teacher_student(n_train=40, n_val=5, n_test=20, seed=4)
    assert not np.array_equal(other.extras["W10"], W10)
    assert d.n_classes is None and d.attrs["k21"] == 10.0
    json.dumps(d.attrs)


# --------------------------------------------------------------------------- Fourier synthesis
def test_fourier_synthesis_shapes_and_sawtooth():
    d = fourier_synthesis()  # dt 0.005 ms, 600 ms → 120 000 steps (docs/datasets.md, "Fourier synthesis")
    assert d.x.shape == (120000, 50) and d.y.shape == (120000, 1)
    assert d.t[1] - d.t[0] == pytest.approx(0.005) and d.t[-1] == pytest.approx(599.995)
    y = d.y[:, 0]
    m = 10000  # 50 ms period / 0.005 ms
    assert y[0] == -1.0 and y[m] == -1.0 and y[m - 1] == pytest.approx(1 - 2 / m)
    np.testing.assert_array_equal(y[m:], y[:-m])  # exactly periodic with period 50 ms
    assert y.min() == -1.0 and y.max() < 1.0  # range [−1, 1)
    # input i has frequency 10·(i+1) Hz: x_i(t) = sin(2π f_i t), t in s
    k = np.array([0, 1234, 56789])
    for i in (0, 9, 49):
        np.testing.assert_allclose(d.x[k, i], np.sin(2 * np.pi * 10 * (i + 1) * k * 0.005e-3),
                                   atol=1e-12)


def test_fourier_sine_coefficients_of_sawtooth():
    # Fourier series: 2((t/P) mod 1) − 1 = −(2/π) Σ_n sin(2π n t / P) / n with 1/P = 20 Hz,
    # so the projection onto the 20n-Hz input is −2/(πn) and onto odd multiples of 10 Hz is 0.
    d = fourier_synthesis(duration=100.0)  # two whole periods
    coef = 2.0 * (d.x * d.y).mean(axis=0)
    n = np.arange(1, 26)
    np.testing.assert_allclose(coef[1::2], -2.0 / (np.pi * n), atol=2e-3)
    np.testing.assert_allclose(coef[0::2], 0.0, atol=2e-3)


# --------------------------------------------------------------------------- GLE inputs
def test_lagline_square_wave_and_smoothing():
    raw = lagline_input(batch=8, duration=20.0, sigma_samples=0, seed=5)
    x = raw.x[:, :, 0]
    assert raw.x.shape == (2000, 8, 1)  # 20 / 0.01 steps, batch 8
    shifts = np.asarray(raw.attrs["shifts_steps"])
    assert np.all((shifts >= 0) & (shifts < 200))  # shift in [0, half-period) = 200 steps
    assert set(np.unique(x)) == {-1.0, 1.0}
    np.testing.assert_array_equal(x[400:], x[:-400])  # period 2 · half-period = 400 steps
    for b in range(8):  # +1 on the half-period that starts at the shift
        s = shifts[b]
        assert x[s, b] == 1.0 and x[s + 199, b] == 1.0 and x[s + 200, b] == -1.0
    sm = lagline_input(batch=8, duration=20.0, sigma_samples=5, seed=5).x[:, :, 0]
    b, s = 0, shifts[0]
    e = s + 200  # +1 → −1 edge between steps e−1 and e: smoothing is antisymmetric there
    assert sm[e - 1, b] == pytest.approx(-sm[e, b], abs=1e-12) and 0 < sm[e - 1, b] < 1
    assert sm[s + 100, b] == pytest.approx(1.0, abs=1e-12)  # 100 > 4σ = 20 steps from an edge
    np.testing.assert_array_equal(sm, lagline_input(batch=8, duration=20.0, seed=5).x[:, :, 0])


def test_lagnet_input_sum_of_sines():
    d = lagnet_input()
    assert d.x.shape == (100100, 1, 1)  # 1001 / 0.01
    for k in (0, 777, 100099):
        t = k * 0.01
        assert d.x[k, 0, 0] == pytest.approx(
            math.sin(0.49 * t) + math.sin(1.07 * t) + math.sin(1.98 * t), abs=1e-12)
    # slope at t = 0 equals Σω = 3.54
    assert (d.x[1, 0, 0] - d.x[0, 0, 0]) / 0.01 == pytest.approx(3.54, rel=1e-3)


# --------------------------------------------------------------------------- helpers, errors
def test_one_hot_values_and_errors():
    t = one_hot(np.array([2, 0]), 3, low=0.1, high=1.0)
    np.testing.assert_array_equal(t, [[0.1, 0.1, 1.0], [1.0, 0.1, 0.1]])
    with pytest.raises(DatasetError, match="labels must lie"):
        one_hot(np.array([3]), 3)
    with pytest.raises(DatasetError, match="integer"):
        one_hot(np.array([0.5]), 3)


def test_supervised_data_validation():
    x = np.zeros((3, 2))
    with pytest.raises(DatasetError, match="y_train"):
        SupervisedData(x, np.zeros(2, int), x, np.zeros(3, int), x, np.zeros(3, int), 2, "t")
    with pytest.raises(DatasetError, match="labels must lie"):
        SupervisedData(x, np.full(3, 5), x, np.zeros(3, int), x, np.zeros(3, int), 2, "t")


def test_download_loaders_absent_and_present(tmp_path):
    with pytest.raises(DatasetNotAvailableError, match="mnist.npz"):
        mnist(cache_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="cifar-10-batches-bin"):
        cifar10(cache_dir=tmp_path)
    # a small file in the Keras layout: pixels / 255, last n_val training images = validation
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.integers(0, 256, (12, 28, 28), dtype=np.uint8),
        "y_train": rng.integers(0, 10, 12, dtype=np.uint8),
        "x_test": rng.integers(0, 256, (4, 28, 28), dtype=np.uint8),
        "y_test": rng.integers(0, 10, 4, dtype=np.uint8),
    }
    np.savez(tmp_path / "mnist.npz", **arrays)
    d = mnist(n_val=2, cache_dir=tmp_path)
    assert d.x_train.shape == (10, 784) and d.x_val.shape == (2, 784)
    np.testing.assert_array_equal(d.x_val[1], arrays["x_train"][11].reshape(-1) / 255.0)
    np.testing.assert_array_equal(d.y_test, arrays["y_test"])
