"""Mechanics of the supervised presentation protocol (microcircuit/protocols.py)."""
from pathlib import Path

import numpy as np
import pytest

from microcircuit import layered, load_scenario
from microcircuit.datasets import yin_yang
from microcircuit.protocols import train, run_protocol, ProtocolError, build_network

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def small_data():
    return yin_yang(n_train=64, n_val=0, n_test=32)


NET = {"sizes": [4, 8, 3], "hidden": {"activation": "relu"}, "weights": {"dist": "normal", "std": 0.5}}


def test_metrics_group_written(small_data, tmp_path):
    """eval_initial + 2 epochs -> metrics rows at epochs 0, 1, 2 in the store's metrics group;
    the train metrics are NaN at epoch 0 (no training yet) and finite afterwards."""
    import zarr
    out = tmp_path / "run.zarr"
    res = train(NET, small_data, t_pres=1.0, steps_per_presentation=10, epochs=2, lr=1.0, batch=4, seed=3,
                output=out)
    g = zarr.open_group(str(out), mode="r")
    assert list(g["metrics/epoch"][:]) == [0, 1, 2]
    acc = g["metrics/test_accuracy"][:]
    np.testing.assert_allclose(acc, res.metrics["test_accuracy"])
    tl = g["metrics/train_loss"][:]
    assert np.isnan(tl[0]) and np.all(np.isfinite(tl[1:]))
    assert g.attrs["complete"] is True
    assert "test_accuracy" in res.summary()


def test_gates_switch_learning_off_outside_training(small_data):
    """Evaluation phases run with nudging and plasticity gated off: weights and biases stay
    bit-identical over 2 test-only epochs; with the train phase included the same run changes them
    (so the check can fail)."""
    kw = dict(t_pres=1.0, steps_per_presentation=10, epochs=2, lr=1.0, batch=4, seed=5)
    ref = train(NET, small_data, epochs=0, t_pres=1.0, steps_per_presentation=10, lr=1.0, batch=4, seed=5,
                phases=("test",), eval_initial=False)
    w0 = ref.program.weights.copy()
    b0 = ref.program.neuron["bias"].copy()
    ev = train(NET, small_data, phases=("test", "train_eval"), **kw)
    np.testing.assert_array_equal(ev.program.weights, w0)
    np.testing.assert_array_equal(ev.program.neuron["bias"], b0)
    tr = train(NET, small_data, phases=("train", "test"), **kw)
    assert np.max(np.abs(tr.program.weights - w0)) > 1e-3
    assert np.max(np.abs(tr.program.neuron["bias"] - b0)) > 1e-4


def test_seeds_reproducible(small_data):
    """Same seed -> identical metrics and weights; another seed -> different weights."""
    kw = dict(t_pres=1.0, steps_per_presentation=10, epochs=1, lr=1.0, batch=4)
    a = train(NET, small_data, seed=11, **kw)
    b = train(NET, small_data, seed=11, **kw)
    c = train(NET, small_data, seed=12, **kw)
    np.testing.assert_array_equal(a.program.weights, b.program.weights)
    for k in a.metrics:
        if k != "wall_time_s":
            np.testing.assert_array_equal(a.metrics[k], b.metrics[k])
    assert not np.allclose(a.program.weights, c.program.weights)


def test_lr_is_per_presentation_independent_of_dt():
    """One presentation of one sample to a 2->1 linear LE neuron (voltage loss, beta) changes W by
    lr * e * x with the steady error e = beta (y - W x) / (1 + beta) (u_pros = W x + e and
    e = beta (y - u_pros)), whatever dt and t_pres: the convention eta = lr / t_pres. Tolerance 3 %:
    the first ~5 steps of the presentation carry the error's geometric transient (ratio beta)."""
    from microcircuit.datasets import SupervisedData
    x = np.array([[0.5, 1.0]])
    y = np.array([[1.0]])
    data = SupervisedData(x, y, x[:0], y[:0], x[:0], y[:0], n_classes=None, name="one")
    W0 = np.array([[0.2, -0.1]])
    beta, lr = 0.1, 1e-3
    e = beta * (1.0 - float((W0 @ x[0])[0])) / (1 + beta)
    expected = lr * e * x[0]
    for t_pres, S in ((1.0, 200), (30.0, 400)):
        c = layered([2, 1], output={"activation": "linear", "loss": "voltage", "beta": beta},
                    weights={"dist": "array", "value": W0.tolist()}, eta=1.0)
        res = train(c, data, t_pres=t_pres, steps_per_presentation=S, epochs=1, lr=lr, batch=1,
                    phases=("train",), eval_initial=False, learn_bias=False)
        dW = res.program.weight("W1")[0] - W0[0]
        np.testing.assert_allclose(dW, expected, rtol=0.03)


def test_batch_copies_see_different_samples(small_data):
    """With batch 4 every presentation shows 4 different samples: the readouts of the copies
    differ (identical streams would give identical rows)."""
    res = train(NET, small_data, t_pres=1.0, steps_per_presentation=10, epochs=0, lr=1.0, batch=4, seed=1,
                phases=("test",))
    r = res.program.signal("output", "r")
    assert r.shape == (4, 3)
    assert np.min(np.ptp(r, axis=0)) > 1e-6


def test_bad_arguments(small_data):
    with pytest.raises(ProtocolError, match="readout"):
        train(NET, small_data, t_pres=1.0, lr=1.0, readout="mean")
    with pytest.raises(ProtocolError, match="lr"):
        train([4, 8, 3], small_data, t_pres=1.0)
    with pytest.raises(ProtocolError, match="inputs"):
        train([5, 8, 3], small_data, t_pres=1.0, lr=1.0)


def test_build_network_defaults():
    c = build_network([4, 8, 3])
    assert [p.name for p in c.populations] == ["input", "layer1", "output"]
    assert c.population("output").params["loss"] == "rate"
    assert all(p.rule == "error" for p in c.projections)


@pytest.mark.parametrize("name", ["yinyang_le", "digits_le"])
def test_run_protocol_scenario(name, tmp_path):
    """The bundled protocol scenarios load, run (shortened with overrides) and write metrics."""
    over = ["protocol.epochs=1", "protocol.eval_every=1"]
    if name == "yinyang_le":
        over += ["protocol.dataset_args.n_train=160", "protocol.dataset_args.n_val=32",
                 "protocol.dataset_args.n_test=32"]
    sc = load_scenario(ROOT / "scenarios" / f"{name}.toml", overrides=over)
    res = run_protocol(sc, output=tmp_path / "r.zarr", overwrite=True, progress=False)
    assert list(res.epochs) == [0, 1]
    assert np.isfinite(res.final("test_accuracy"))
    assert "epoch" in res.summary()


def _sequence_data(n_train=12, n_test=6, L=5, seed=0):
    from microcircuit.datasets.base import SupervisedData
    rng = np.random.default_rng(seed)
    return SupervisedData(x_train=rng.normal(size=(n_train, L)), y_train=rng.integers(0, 2, n_train),
                          x_val=np.zeros((0, L)), y_val=np.zeros(0, int), x_test=rng.normal(size=(n_test, L)),
                          y_test=rng.integers(0, 2, n_test), n_classes=2, name="seq")


def test_sequence_presentation_and_summed_readout():
    """presentation='sequence' shows a sample's L values one per step; readout='sum' sums the output.
    Network 1 -> 2 linear LE neurons (tau_m = tau_r: r_out(t) = W r_in(t-1), no lag), fixed weights
    w = (2, -1): the summed readout of presentation j is w * (sum_t x_j(t) - x_j(L-1) + x_{j-1}(L-1))
    (the synchronous step reads the previous step's input; the stream is never reset), exactly."""
    from microcircuit.circuit import Circuit
    d = _sequence_data()
    c = Circuit("seq")
    c.add_population("input", "input", 1)
    c.add_population("output", "rate", 2, tau_m=1.0, activation="linear", loss="cross_entropy", beta=1.0)
    c.add_projection("input", "output", "basal", name="W", weights={"dist": "array", "value": [[2.0], [-1.0]]})
    res = train(c, d, t_pres=5.0, dt=1.0, presentation="sequence", readout="sum", epochs=0, batch=1,
                phases=("test",), shuffle=False)
    x = d.x_test
    prev_last = np.concatenate([[0.0], x[:-1, -1]])
    s = x.sum(axis=1) - x[:, -1] + prev_last
    logits = np.stack([2 * s, -s], axis=1)
    z = logits - logits.max(axis=1, keepdims=True)
    acc = np.mean(np.argmax(logits, axis=1) == d.y_test)
    assert res.metrics["test_accuracy"][0] == pytest.approx(acc, abs=1e-12)
    # loss = per-step cross-entropy averaged over the steps (not the CE of the summed logits)
    lse_sum = np.log(np.exp(z).sum(axis=1)) - z[np.arange(len(z)), d.y_test]
    assert abs(res.metrics["test_loss"][0] - lse_sum.mean()) > 1e-3
    with pytest.raises(ProtocolError, match="t_pres"):
        train(c, d, t_pres=4.0, dt=1.0, presentation="sequence", readout="sum", epochs=0, phases=("test",))


def test_plateau_schedule_scales_rates_like_reduce_lr_on_plateau():
    """lr_schedule='plateau': the rate scale of epoch e+1 follows PyTorch's ReduceLROnPlateau(patience,
    factor) on the watched phase's loss of epoch e (checked against the rule applied to the recorded
    losses, written out here independently of the package), and the projection etas carry the scale."""
    d = _sequence_data(n_train=8, n_test=4)
    net = {"sizes": [1, 3, 2], "hidden": {"activation": "tanh"}, "output": {"activation": "linear",
           "loss": "cross_entropy", "beta": 1.0}, "weights": {"dist": "normal", "std": 0.5}}
    res = train(net, d, t_pres=5.0, dt=1.0, presentation="sequence", readout="sum", epochs=8, lr=5.0, batch=2,
                lr_schedule="plateau", plateau_patience=0, plateau_factor=0.5, phases=("train", "test"),
                eval_initial=False)
    best, bad, scale, expect = np.inf, 0, 1.0, []
    for L in res.metrics["test_loss"]:            # ReduceLROnPlateau(patience=0, factor=0.5, threshold=1e-4)
        expect.append(scale)
        if L < best * (1 - 1e-4):
            best, bad = L, 0
        else:
            bad += 1
            if bad > 0:
                bad, scale = 0, scale * 0.5
    np.testing.assert_array_equal(res.metrics["lr_scale"], expect)
    assert min(expect) < 1.0          # patience 0: some epoch did not improve, so the rate was halved
    from microcircuit.compile import PF_ETA
    eta = res.program.proj_float[:, PF_ETA]
    assert eta.max() == pytest.approx(5.0 / 5.0 * expect[-1])     # eta = lr / t_pres x the last epoch's scale


def test_plateau_eps_skips_reductions_below_the_minimal_decay():
    """With eps (relative to the initial rate) a reduction that lowers the scale by less than eps is
    skipped: factor 0.5 from scale 1 and eps = 1e-5 stops at 0.5**16 = 1.53e-5 (the next step would
    lower it by 7.6e-6 < 1e-5), PyTorch's eps = 1e-8 at an initial rate of 1e-3."""
    from microcircuit.protocols import PlateauSchedule
    _, scale = PlateauSchedule.replay([1.0] * 300, 1.0, patience=2, factor=0.5, eps=1e-5)
    assert scale == 0.5 ** 16
