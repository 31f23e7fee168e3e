"""MNIST-1D with the 15k-parameter GLE network (analysis/mnist1d_gle.py;
docs/models/gle.md, "Networks of the paper").

* Bias synapses (``gle_layered(bias_synapses=True)``): a synapse of weight w_b from a unit held at
  rate 1 is the bias b = w_b, and its rule dw_b/dt = eta e * 1 is the GLE bias rule db/dt = eta e;
  with plain SGD both forms must give the same trajectories (to rounding, 1e-12).
* The learning-rate schedule reproduces PyTorch's ReduceLROnPlateau(patience=2, factor=0.5).
* Direction: a short training run on the real data lifts the accuracy above chance (10 %).
"""
import sys
from pathlib import Path

import numpy as np
import pytest

import microcircuit as mc
from microcircuit.gle import gle_layered, bias_stimulus, init_bias_unit, StreamStimulus
from microcircuit.simulation import Recording

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "analysis"))
import mnist1d_gle as M  # noqa: E402


def _tiny(bias_synapses, b_init, eta=0.05, steps=300):
    """1 -> 4 (tanh, GLE mixed taus) -> 3 (linear, CE), SGD; returns output rates and learned biases."""
    pl = {"rule": "error", "eta": eta}
    common = dict(gamma=0.0, prospective_errors=True)
    eb = 0.0 if bias_synapses else eta
    layers = [dict(size=4, tau_m=[0.6, 1.2, 1.2, 1.2], tau_r=[0.2, 0.2, 1.2, 1.2], activation="tanh",
                   eta_bias=eb, plasticity=pl, weights=np.linspace(-1, 1, 4)[:, None], **common),
              dict(size=3, tau_m=1.2, activation="linear", loss="cross_entropy", beta=1.0, eta_bias=eb,
                   plasticity=pl, weights=np.linspace(-0.5, 0.5, 12).reshape(3, 4), **common)]
    if not bias_synapses:
        layers[0]["bias"], layers[1]["bias"] = list(b_init[0]), list(b_init[1])
    c = gle_layered(1, layers, bias_synapses=bias_synapses)
    x = np.sin(0.3 * np.arange(steps))[:, None, None] * np.ones((1, 1, 2))
    y = np.zeros((steps, 3, 2))
    y[:, 0, 0] = 1
    y[:, 2, 1] = 1
    st = [StreamStimulus("input", lambda a, b: x[a:b]), StreamStimulus("output", lambda a, b: y[a:b], kind="target")]
    if bias_synapses:
        st.append(bias_stimulus())
    prog = mc.compile(c, dt=0.2, batch=2, stimuli=st)
    if bias_synapses:
        init_bias_unit(prog)
        prog.weight("b1")[:, 0] = b_init[0]
        prog.weight("b2")[:, 0] = b_init[1]
    sim = mc.Simulation(prog, recordings=[Recording("output", ["r"])], chunk_steps=100)
    sim.run(steps=steps)
    r = sim.results()["output"]["r"].values
    if bias_synapses:
        b = [prog.weight("b1")[:, 0].copy(), prog.weight("b2")[:, 0].copy()]
    else:
        sl1, sl2 = prog.pop_slice("layer1"), prog.pop_slice("output")
        b = [prog.neuron["bias"][sl1].copy(), prog.neuron["bias"][sl2].copy()]
    return r, b


def test_bias_synapses_equal_population_bias_under_sgd():
    """w_b (rate-1 unit) and the population bias b follow the same rule db/dt = eta e: identical runs."""
    b_init = [np.array([0.1, -0.2, 0.3, 0.0]), np.array([0.05, -0.05, 0.2])]
    r_syn, b_syn = _tiny(True, b_init)
    r_pop, b_pop = _tiny(False, b_init)
    np.testing.assert_allclose(r_syn, r_pop, rtol=0, atol=1e-12)
    for a, b in zip(b_syn, b_pop):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)
    # and the biases did learn (the run is not trivially equal): CE pushes the output biases apart
    assert np.max(np.abs(b_syn[1] - b_init[1])) > 1e-3


def test_mnist1d_network_has_15k_parameters():
    """GLE paper: 1 -> 6 x 53 -> 10 has 14,956 weights and biases (docs/models/gle.md, "Networks of the paper")."""
    prog = M.build(batch=1, buf={"k0": 0})
    n = sum(prog.weight(p).size for p in prog.proj_names)
    assert n == 14956


def test_plateau_matches_reduce_lr_on_plateau():
    """PyTorch ReduceLROnPlateau(mode=min, patience=2, factor=0.5, threshold=1e-4 rel): the rate halves
    on the 3rd consecutive epoch without improvement, and the count restarts after each reduction."""
    p = M.Plateau()
    losses = [2.0, 1.9, 1.95, 1.9, 1.91, 1.8, 1.8, 1.8, 1.8, 1.8, 1.8, 1.8]
    factors = [p.step(v) for v in losses]
    assert factors == [1, 1, 1, 1, 0.5, 1, 1, 1, 0.5, 1, 1, 0.5]


@pytest.mark.slow
def test_mnist1d_short_run_rises_above_chance():
    """8 batches of 100 real MNIST-1D samples (360 steps each): the running training accuracy
    (summed-logit readout while learning) exceeds 0.18, chance being 0.10 (binomial std over 800
    samples = 0.011, so 0.18 is 7 std above chance); measured 0.216 (seed 12; 0.249 with seed 34)."""
    log = M.run(epochs=1, max_batches=8, eval_batches=1, seed=12, plateau=False, verbose=False)
    assert log[0]["train_acc"] > 0.18


def test_checkpoint_resume_continues_the_same_run(tmp_path):
    """A run stopped after epoch 1 and resumed from its checkpoint ends in the same state as an
    uninterrupted 2-epoch run: the epoch logs (accuracies, losses, rate) and the weights are equal
    bit for bit (2 batches of 100 samples x 360 steps per epoch, 1 test batch)."""
    kw = dict(max_batches=2, eval_batches=1, seed=3, verbose=False)
    full = M.run(2, **kw)
    ck = tmp_path / "run.ckpt.npz"
    first = M.run(1, checkpoint=ck, **kw)
    assert ck.is_file() and len(first) == 1
    resumed = M.run(2, checkpoint=ck, **kw)
    keys = ("train_acc", "train_loss", "test_acc", "test_loss", "lr", "out_bias_spread")
    for a, b in zip(full, resumed):
        assert [a[k] for k in keys] == [b[k] for k in keys]


def test_plateau_minimal_decay_stops_the_rate_like_pytorch():
    """ReduceLROnPlateau ignores a reduction smaller than eps = 1e-8: from 1e-3 with factor 0.5 the
    rate stops at 1e-3 * 0.5**16 = 1.526e-8 (the next halving would lower it by only 7.6e-9)."""
    losses = [1.0] + [1.0] * 200          # never improves: a reduction is due every 3rd epoch
    _, lr = M.Plateau.replay(losses, 1e-3)
    assert lr == pytest.approx(1e-3 * 0.5 ** 16, rel=1e-12)
    # without the minimal decay the same losses would keep halving (66 reductions in 200 epochs)
    p, lr0 = M.Plateau(eps=0.0), 1e-3
    for L in losses:
        lr0 = p.new_rate(L, lr0)
    assert lr0 == pytest.approx(1e-3 * 0.5 ** 66, rel=1e-12)
