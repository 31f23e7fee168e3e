"""The Numba kernel and the NumPy reference stepper run the same op table: they must agree to
1e-12 (float64) on randomly generated circuits, and a run split into chunks, or stopped and
continued, must equal one run bit for bit."""
import numpy as np
import pytest

import microcircuit as mc
from microcircuit.simulation import Simulation, Recording
from microcircuit.stimuli import Sines, OrnsteinUhlenbeck, ArrayStimulus


def random_circuit(seed):
    """A random mix of every feature: LE/GLE/leaky rate neurons with heterogeneous tau, error
    neurons, all losses, FA, tau and bias learning, a dendritic microcircuit with US and homeostatic
    plasticity, masks, one-to-one nudges, tau_w, w_max and noise."""
    rng = np.random.default_rng(seed)
    c = mc.Circuit(f"random{seed}")
    nin = int(rng.integers(2, 5))
    c.add_population("x", "input", nin)
    sizes = rng.integers(2, 6, size=3)
    acts = ["tanh", "logistic", "softplus", "hard_sigmoid", "relu", "linear"]
    prev = "x"
    for i, n in enumerate(sizes[:2], 1):
        c.add_population(f"h{i}", "rate", int(n), tau_m=rng.uniform(0.5, 2, int(n)).tolist(),
                         tau_r=rng.uniform(0.0, 2, int(n)).tolist(), activation=str(rng.choice(acts)),
                         prospective_errors=bool(rng.integers(2)), tau_learning=str(rng.choice(["none", "gle", "le_adapt"])),
                         eta_tau=0.01, eta_bias=0.05, bias=rng.normal(0, 0.1, int(n)).tolist(), gamma=float(rng.uniform(0, 1)))
        c.add_projection(prev, f"h{i}", name=f"W{i}", weights={"dist": "normal", "std": 0.5},
                         plasticity={"rule": "error", "eta": 0.05, "tau_w": float(rng.choice([0.0, 0.3]))},
                         feedback=str(rng.choice(["transpose", "random"])),
                         connector={"kind": str(rng.choice(["all_to_all", "fixed_probability"])), "p": 0.7})
        prev = f"h{i}"
    loss = str(rng.choice(["rate", "voltage", "cross_entropy"]))
    c.add_population("out", "rate", 3, tau_m=1.0, activation="linear" if loss == "cross_entropy" else "tanh",
                     loss=loss, beta=0.2, prospective_errors=bool(rng.integers(2)), sigma=0.05)
    c.add_projection(prev, "out", name="Wout", plasticity={"rule": "error", "eta": 0.05, "w_max": 0.6},
                     weights={"dist": "uniform", "low": -1, "high": 1})
    # a dendritic microcircuit on the same input
    le = bool(rng.integers(2))
    c.add_population("p1", "pyramidal", 4, preset="sacramento2018", latent_equilibrium=le, sigma=0.1,
                     activation="logistic")
    c.add_population("i1", "interneuron", 2, latent_equilibrium=le, activation="logistic")
    c.add_population("p2", "output_pyramidal", 2, latent_equilibrium=le, activation="logistic")
    c.add_projection("x", "p1", "basal", name="up1", weights={"dist": "uniform"},
                     plasticity={"rule": "urbanczik_senn", "eta": 0.02, "tau_w": 0.5})
    c.add_projection("p1", "p2", "basal", name="up2", weights={"dist": "uniform"},
                     plasticity={"rule": "urbanczik_senn", "eta": 0.02})
    c.add_projection("p2", "p1", "apical", name="down", weights={"dist": "uniform"})
    c.add_projection("p1", "i1", "dendrite", name="ip", weights={"dist": "uniform"},
                     plasticity={"rule": "urbanczik_senn", "eta": 0.02})
    c.add_projection("i1", "p1", "apical", name="pi", weights={"dist": "uniform"},
                     plasticity={"rule": "apical_homeostasis", "eta": 0.02})
    c.add_projection("p2", "i1", "nudge", name="nudge", signal="u_pros" if le else "u",
                     connector={"kind": "one_to_one"}, weights={"dist": "constant", "value": 1.0})
    stim = [Sines("x", omega=rng.uniform(0.5, 3, nin).tolist(), per_neuron=True, amplitude=1.0),
            OrnsteinUhlenbeck("out", kind="target", sigma=0.5, tau=2.0, seed=seed),
            ArrayStimulus("p2", rng.uniform(0, 1, (7, 2)), hold_steps=13, repeat=True, kind="target"),
            OrnsteinUhlenbeck("h1", kind="current", sigma=0.2, tau=1.0, seed=seed + 1)]
    return c, stim


def _all_signals(prog):
    return prog.state.copy(), prog.weights.copy(), {k: v.copy() for k, v in prog.neuron.items()}


def _gates(k0, k1):
    k = np.arange(k0, k1)
    return np.column_stack([(k % 50 < 40).astype(float), (k % 70 < 60).astype(float)])


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("scheme", ["synchronous", "sequential"])
def test_kernel_equals_reference_on_random_circuits(seed, scheme):
    """Kernel vs NumPy reference after 300 steps: every signal, weight and learned parameter
    within 1e-12 (batch 3 uses the loop path, so both reduce in the same order up to rounding)."""
    c, stim = random_circuit(seed)
    batch = [1, 3][seed % 2]
    results = []
    for backend in ("numba", "numpy"):
        prog = mc.compile(c, dt=0.05, batch=batch, scheme=scheme, seed=seed, stimuli=stim)
        sim = Simulation(prog, backend=backend, gates=_gates, chunk_steps=128,
                         recordings=[Recording("out", ["r", "e"]), Recording("p1", ["v"], stride=7)])
        sim.run(steps=300)
        tree = sim.results()
        results.append((_all_signals(prog), tree["out"]["r"].values, tree["p1"]["v"].values))
    (sa, wa, na), ra, va = results[0]
    (sb, wb, nb), rb, vb = results[1]
    assert np.all(np.isfinite(sa))
    np.testing.assert_allclose(sa, sb, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(wa, wb, rtol=1e-12, atol=1e-12)
    for k in na:
        np.testing.assert_allclose(na[k], nb[k], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ra, rb, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(va, vb, rtol=1e-12, atol=1e-12)


def test_kernel_equals_reference_with_blas_batch():
    """Batch 16 on a 200-100-10 network takes the BLAS (np.dot) path in the kernel for forward,
    backward and plasticity; still within 1e-12 of the reference (summation order differs)."""
    c = mc.layered([200, 100, 10], hidden={"tau_m": 2.0, "tau_r": 1.0, "prospective_errors": True},
                   output={"loss": "rate", "tau_m": 1.0}, eta=0.1, weights={"dist": "normal", "std": 0.3})
    _kernel_vs_reference_ou(c, batch=16, steps=100)


def _kernel_vs_reference_ou(c, batch, steps):
    """Run c with OU input and target on both back-ends; states and weights within 1e-11 / 1e-12."""
    stim = [OrnsteinUhlenbeck("input", sigma=1.0, tau=1.0, seed=1),
            OrnsteinUhlenbeck("output", kind="target", sigma=0.5, tau=2.0, seed=2)]
    out = []
    for backend in ("numba", "numpy"):
        prog = mc.compile(c, dt=0.05, batch=batch, scheme="synchronous", seed=1, stimuli=stim)
        Simulation(prog, backend=backend, gates=_gates).run(steps=steps)
        out.append((prog.state.copy(), prog.weights.copy()))
    assert np.all(np.isfinite(out[0][0]))
    np.testing.assert_allclose(out[0][0], out[1][0], rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(out[0][1], out[1][1], rtol=1e-11, atol=1e-12)


@pytest.mark.parametrize("chunks", [[1000], [1, 999], [137, 263, 600], [500, 500]])
def test_chunked_and_continued_runs_are_bit_identical(chunks):
    """One 1000-step run versus the same run split into chunks or continued with several run()
    calls (noise, OU stimuli and plasticity included): identical to the last bit."""
    c, stim = random_circuit(4)
    ref = mc.compile(c, dt=0.05, batch=2, seed=9, stimuli=stim)
    Simulation(ref, gates=_gates, chunk_steps=1000).run(steps=1000)
    prog = mc.compile(c, dt=0.05, batch=2, seed=9, stimuli=stim)
    sim = Simulation(prog, gates=_gates, chunk_steps=97)
    for n in chunks:
        sim.run(steps=n)
    assert np.array_equal(prog.state, ref.state)
    assert np.array_equal(prog.weights, ref.weights)


def test_seed_reproducible_and_seed_sensitive():
    """The same seed reproduces a noisy run exactly; another seed changes weights and noise."""
    c, stim = random_circuit(2)
    runs = []
    for seed in (5, 5, 6):
        prog = mc.compile(c, dt=0.05, seed=seed, stimuli=stim)
        Simulation(prog).run(steps=200)
        runs.append(prog.state.copy())
    assert np.array_equal(runs[0], runs[1])
    assert not np.allclose(runs[0], runs[2])


@pytest.mark.parametrize("seed", range(6))
def test_previous_step_copy_holds_everything_that_is_read(seed):
    """The synchronous scheme copies only the (signal, population) rows later ops read from the
    previous-step buffer. Replacing those copies by one copy of all five signal rows must give the
    same run bit for bit (==) on circuits with every feature, the GLE cortical mapping included."""
    from microcircuit.compile import OP_COPY_PREV
    from microcircuit.gle import gle_layered
    if seed < 5:
        c, stim = random_circuit(seed)
    else:
        pl = {"rule": "error", "eta": 0.05, "optimizer": "adam"}
        layers = [dict(size=4, tau_m=1.0, tau_r=0.5, activation="tanh", plasticity=pl),
                  dict(size=3, tau_m=1.0, tau_r=1.0, activation="linear", loss="cross_entropy", beta=1.0,
                       plasticity=pl)]
        c = gle_layered(2, layers, error_populations=True)
        stim = [Sines("input", omega=[1.0, 2.0], per_neuron=True, amplitude=1.0),
                OrnsteinUhlenbeck("output", kind="target", sigma=0.5, tau=2.0, seed=1)]
    out = []
    for full in (False, True):
        prog = mc.compile(c, dt=0.05, batch=[1, 3][seed % 2], scheme="synchronous", seed=seed, stimuli=stim)
        if full:
            keep = prog.ops[prog.ops[:, 0] != OP_COPY_PREV]
            prog.ops = np.vstack([[[OP_COPY_PREV, (0 << 31) | (5 * prog.n_total)]], keep]).astype(np.int64)
        Simulation(prog, gates=_gates, chunk_steps=128).run(steps=300)
        out.append(_all_signals(prog))
    (sa, wa, na), (sb, wb, nb) = out
    assert np.all(np.isfinite(sa))
    assert np.array_equal(sa, sb) and np.array_equal(wa, wb)
    for k in na:
        assert np.array_equal(na[k], nb[k]), k


def test_kernel_equals_reference_at_large_batch_with_noise():
    """Batch 192 on a 20-100-10 network (the hidden soma has 100 x 192 neuron-copies, the products
    take BLAS) with a noisy output population: within 1e-12 of the reference, random numbers drawn
    in the same order (neuron, batch copy)."""
    c = mc.layered([20, 100, 10], hidden={"tau_m": 2.0, "tau_r": 1.0, "activation": "tanh"},
                   output={"loss": "rate", "tau_m": 1.0, "sigma": 0.05}, eta=0.1,
                   weights={"dist": "normal", "std": 0.3})
    _kernel_vs_reference_ou(c, batch=192, steps=60)


def test_batch_one_fast_paths_equal_the_batched_loops():
    """At batch 1 the kernel takes its fast paths (one branch-free soma loop over neurons, vectorised
    logistic/softplus, unsigned offsets); at batch 2 with the same input in both columns it runs the
    general loops. Both columns of the batched run must equal the batch-1 run to rounding (1e-13 after
    500 steps of plasticity: the batch-1 update groups c f r as (c f) r, the batched one as c (f r));
    a wrong input flag or offset in a fast path gives differences of order one."""
    from microcircuit.microcircuit import dendritic_microcircuit
    c = dendritic_microcircuit((4, 6, 2), preset="bern", latent_equilibrium=True,
                               eta={"up": [0.5, 0.05], "ip": 0.1, "pi": 0.1}, seed=0)
    rng = np.random.default_rng(0)
    x, y = rng.uniform(0, 1, (40, 4)), rng.uniform(0, 1, (40, 2))
    out = {}
    for batch in (1, 2):
        stim = [ArrayStimulus("input", x, hold_steps=7, repeat=True),
                ArrayStimulus("output", y, hold_steps=7, repeat=True, kind="target")]
        prog = mc.compile(c, dt=0.1, batch=batch, seed=0, stimuli=stim)
        sim = Simulation(prog, chunk_steps=100, recordings=[Recording("pyr1", ["r", "v_B"])])
        sim.run(steps=500)
        out[batch] = (prog.state.reshape(-1, prog.n_total, batch), prog.weights.copy(),
                      sim.results()["pyr1"]["r"].values)
    s1, w1, r1 = out[1]
    s2, w2, r2 = out[2]
    np.testing.assert_allclose(w2, w1, rtol=1e-13, atol=1e-13)
    for b in range(2):
        np.testing.assert_allclose(s2[..., b], s1[..., 0], rtol=1e-13, atol=1e-13)
        np.testing.assert_allclose(r2[:, b], r1[:, 0], rtol=1e-13, atol=1e-13)
    assert np.ptp(w1) > 0 and np.abs(r1).max() > 0
