"""Tests of the NumPy backprop baseline (microcircuit/baseline.py).

Expected numbers: closed forms (initial losses, least squares), finite differences, and the
≥ 96 % test accuracies that the BP reference must reach on Yin-Yang and digits in the LE
configuration (W, b ~ N(0, 0.05²), hard-sigmoid hidden, linear output, MSE on rates, 0/1 one-hot
targets).
"""

from __future__ import annotations

import numpy as np
import pytest

from microcircuit.baseline import MLP, BaselineError, accuracy, train_bp
from microcircuit.datasets import SupervisedData, digits, one_hot, yin_yang


def _flat(model):
    return np.concatenate([p.ravel() for p in model.get_params()])


def _unflat(model, v):
    out, i = [], 0
    for p in model.get_params():
        out.append(v[i:i + p.size].reshape(p.shape))
        i += p.size
    model.set_params(out)


@pytest.mark.parametrize("act", ["tanh", "relu", "logistic", "hard_sigmoid", "softplus"])
@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
def test_gradient_matches_central_differences(act, loss):
    """Backprop gradient equals the central finite difference to 1e-6 relative (float64)."""
    rng = np.random.default_rng(1)
    model = MLP([3, 6, 5, 4], hidden_activation=act, init="uniform", init_scale=0.8, seed=2)
    x = rng.uniform(0, 1, (7, 3))
    y = rng.integers(0, 4, 7)
    target = one_hot(y, 4) if loss == "mse" else y
    _, cache = model.forward(x, return_cache=True)
    if act in ("relu", "hard_sigmoid"):  # piecewise linear: keep away from the kinks 0 and 1
        for u in cache.potentials[:-1]:
            assert np.min(np.abs(u)) > 1e-4 and np.min(np.abs(u - 1)) > 1e-4
    _, grads = model.loss_and_grads(x, target, loss)
    analytic = np.concatenate([g.ravel() for pair in grads for g in pair])
    theta = _flat(model)
    eps = 1e-6
    numeric = np.empty_like(theta)
    for i in range(theta.size):
        tp, tm = theta.copy(), theta.copy()
        tp[i] += eps
        tm[i] -= eps
        _unflat(model, tp)
        lp = model.loss(x, target, loss)
        _unflat(model, tm)
        lm = model.loss(x, target, loss)
        numeric[i] = (lp - lm) / (2 * eps)
    _unflat(model, theta)
    err = np.linalg.norm(analytic - numeric) / np.linalg.norm(numeric)
    assert err < 1e-6, err


def test_nonlinear_output_mse_gradient():
    """δ_L = (r − t) φ'(u) for a logistic output: FD check of the first weight, 1e-6 relative."""
    model = MLP([2, 3, 2], "tanh", "logistic", init="uniform", init_scale=1.0, seed=0)
    x = np.array([[0.3, -0.2], [0.9, 0.4]])
    t = np.array([[1.0, 0.0], [0.0, 1.0]])
    _, grads = model.loss_and_grads(x, t)
    w = model.weights[0]
    w0 = w[0, 0]
    w[0, 0] = w0 + 1e-6
    lp = model.loss(x, t)
    w[0, 0] = w0 - 1e-6
    lm = model.loss(x, t)
    w[0, 0] = w0
    assert grads[0][0][0, 0] == pytest.approx((lp - lm) / 2e-6, rel=1e-6)


def test_initial_losses_closed_form():
    """All-zero parameters: output 0, so MSE = ½·1 per one-hot 0/1 target = 0.5 and the
    cross-entropy of a uniform softmax over 3 classes = log 3 = 1.0986."""
    model = MLP([4, 5, 3], "hard_sigmoid", seed=0)
    model.set_params([np.zeros_like(p) for p in model.get_params()])
    x = np.random.default_rng(0).uniform(size=(10, 4))
    y = np.arange(10) % 3
    assert model.loss(x, one_hot(y, 3)) == pytest.approx(0.5, abs=1e-15)
    assert model.loss(x, y, "cross_entropy") == pytest.approx(np.log(3), abs=1e-15)


def test_initialisations_statistics():
    """normal: std 0.05 (LE); uniform: bound 1/√fan_in; kaiming: std √(2/fan_in).
    60 000 weights give a sample-std relative error ≈ 1/√(2·60000) ≈ 0.3 %: tolerance 2 %."""
    w = MLP([300, 200], init="normal", seed=0).weights[0]
    assert w.std() == pytest.approx(0.05, rel=0.02) and abs(w.mean()) < 0.002
    w = MLP([300, 200], init="uniform", seed=0).weights[0]
    a = 1 / np.sqrt(300)
    assert np.abs(w).max() <= a and np.abs(w).max() > 0.99 * a
    assert w.std() == pytest.approx(a / np.sqrt(3), rel=0.02)  # std of U(−a, a) = a/√3
    w = MLP([300, 200], init="kaiming", seed=0).weights[0]
    assert w.std() == pytest.approx(np.sqrt(2 / 300), rel=0.02)


def test_linear_regression_converges_to_least_squares():
    """A linear 1-layer net trained by full-batch GD on MSE converges to the least-squares
    solution [W b] = argmin ‖[X 1][W b]ᵀ − Y‖² (computed with numpy.linalg.lstsq)."""
    rng = np.random.default_rng(4)
    x = rng.uniform(-1, 1, (64, 3))
    y = x @ rng.normal(size=(3, 2)) + 0.3 + 0.05 * rng.normal(size=(64, 2))
    data = SupervisedData(x, y, x[:0], y[:0], x, y, None, "linreg")
    model = MLP([3, 2], output_activation="linear", seed=0)
    h = train_bp(model, data, epochs=3000, lr=0.5, batch_size=64, loss="mse")
    sol, *_ = np.linalg.lstsq(np.hstack([x, np.ones((64, 1))]), y, rcond=None)
    np.testing.assert_allclose(model.weights[0], sol[:3].T, atol=1e-8)
    np.testing.assert_allclose(model.biases[0], sol[3], atol=1e-8)
    assert np.isnan(h["test_accuracy"][-1])  # regression: no accuracy
    assert h["train_loss"][-1] < h["train_loss"][0]


def test_training_is_deterministic_for_a_seed():
    data = yin_yang(200, 0, 100, seeds=(1, 2, 3))

    def run(seed):
        m = MLP([4, 20, 3], "hard_sigmoid", seed=seed)
        return m, train_bp(m, data, epochs=3, lr=0.1, batch_size=20, seed=seed, momentum=0.9)

    (m1, h1), (m2, h2), (m3, _) = run(0), run(0), run(1)
    assert h1["test_loss"] == h2["test_loss"] and len(h1["test_loss"]) == 4  # epochs 0…3
    np.testing.assert_array_equal(m1.weights[0], m2.weights[0])
    assert not np.array_equal(m1.weights[0], m3.weights[0])
    assert "val_loss" not in h1  # no validation split


def test_accuracy_function():
    model = MLP([2, 2], output_activation="linear", seed=0)
    model.set_params([np.eye(2), np.zeros(2)])  # output = input, prediction = argmax(x)
    x = np.array([[1.0, 0.0], [0.0, 1.0], [0.2, 0.1], [0.1, 0.9]])
    assert accuracy(model, x, np.array([0, 1, 1, 1])) == 0.75


def test_bad_input_raises_typed_errors():
    with pytest.raises(BaselineError, match="hidden_activation"):
        MLP([2, 3, 1], hidden_activation="sigmoidish")
    with pytest.raises(BaselineError, match="sizes"):
        MLP([2])
    with pytest.raises(BaselineError, match="init"):
        MLP([2, 1], init="xavier")
    data = yin_yang(30, 0, 10, seeds=(1, 2, 3))
    with pytest.raises(BaselineError, match="sizes"):
        train_bp(MLP([3, 5, 3]), data, 1, 0.1)
    with pytest.raises(BaselineError, match="output_activation"):
        train_bp(MLP([4, 5, 3], output_activation="tanh"), data, 1, 0.1, loss="cross_entropy")
    with pytest.raises(BaselineError, match="lr"):
        train_bp(MLP([4, 5, 3]), data, 1, -0.1)
    assert issubclass(BaselineError, ValueError)


# --------------------------------------------------------------------------- reference accuracies
LE_CONFIG = dict(hidden_activation="hard_sigmoid", output_activation="linear", init="normal",
                 init_scale=0.05)


def test_yin_yang_bp_reaches_96_percent():
    """LE configuration 4-120-3, MSE on 0/1 one-hot rates, SGD lr 0.1, momentum 0.9, batch 20,
    cosine-annealed over 80 epochs. Measured: 97.2 % test for seed 0 (97.2–98.2 % over seeds
    0–9; 60 epochs dipped to 95.9 % for one of 8 seeds). Reference MLP (Adam, 300 epochs):
    98.7 ± 0.3 % (docs/datasets.md, "Yin-Yang"). Required: ≥ 96 %."""
    data = yin_yang()
    model = MLP([4, 120, 3], seed=0, **LE_CONFIG)
    h = train_bp(model, data, epochs=80, lr=0.1, batch_size=20, loss="mse", seed=0,
                 targets=(0.0, 1.0), momentum=0.9, lr_schedule="cosine")
    assert h["test_accuracy"][-1] >= 0.96
    assert h["val_accuracy"][-1] >= 0.96
    assert h["test_accuracy"][0] < 0.5  # untrained network is near chance (1/3)


def test_digits_bp_reaches_96_percent():
    """LE configuration 64-100-10 on sklearn digits (80/20 stratified split, seed 0), SGD lr 0.1,
    momentum 0.9, batch 32, cosine over 20 epochs. Measured 97.5 % test for seed 0 (97.5–98.6 %
    over seeds 0–7; 10 epochs: 96.9–97.8 %). Required: ≥ 96 %."""
    data = digits(test_size=0.2, seed=0)
    model = MLP([64, 100, 10], seed=0, **LE_CONFIG)
    h = train_bp(model, data, epochs=20, lr=0.1, batch_size=32, loss="mse", seed=0,
                 momentum=0.9, lr_schedule="cosine")
    assert h["test_accuracy"][-1] >= 0.96
    assert h["test_accuracy"][0] < 0.3  # chance is 10 %
