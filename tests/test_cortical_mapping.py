"""Cortical mapping of GLE (GLE paper Fig. 4; docs/models/error-populations.md;
microcircuit/models/error.py): representation
and error neurons as separate populations linked by projections must give the same trajectories
as the fused form (one rate population carrying its own error neuron), step for step.

Why 1e-12: both forms execute the same floating-point operations (the error population reads
phi', tau_m, tau_r of its partner; W^T e uses the forward weights in the same loop order; the
error input gamma * e enters v0 as a one-to-one projection, which only reorders one addition),
so they may differ by rounding only."""
import numpy as np
import pytest

import microcircuit as mc
from microcircuit.errors import CircuitError
from microcircuit.gle import gle_layered
from microcircuit.stimuli import Sines, OrnsteinUhlenbeck


def _layers(sizes=(3, 2), loss="rate", seed=0, scale=0.8):
    """Two learning GLE layers with every feature that touches the error path: heterogeneous
    tau (retrospective, LE, prospective), GLE error neurons, Adam/momentum on W and tau_m, bias
    learning, gamma > 0 (errors nudge the membranes)."""
    rng = np.random.default_rng(seed)
    n1, n2 = sizes
    return [dict(size=n1, tau_m=rng.uniform(0.3, 1.2, n1).tolist(), tau_r=rng.uniform(0.05, 1.2, n1).tolist(),
                 activation="tanh", prospective_errors=True, gamma=0.3, tau_learning="gle", eta_tau=0.05,
                 tau_optimizer="adam", eta_bias=0.1,
                 weights={"dist": "array", "value": rng.normal(0, scale, (n1, 2))},
                 plasticity={"rule": "error", "eta": 0.3, "optimizer": "adam"}),
            dict(size=n2, tau_m=0.5, tau_r=0.2, activation="linear", loss=loss, beta=1.0, prospective_errors=True,
                 gamma=0.5, tau_learning="gle", eta_tau=0.05, tau_optimizer="momentum",
                 weights={"dist": "array", "value": rng.normal(0, scale, (n2, n1))},
                 plasticity={"rule": "error", "eta": 0.05, "optimizer": "momentum"})]


def _run(separate, *, scheme, backend, batch, steps, loss="rate", sizes=(3, 2), feedback="transpose", fb_from=None):
    c = gle_layered(2, _layers(sizes, loss), error_populations=separate, feedback=feedback)
    out = "err_output" if separate else "output"
    if loss == "cross_entropy":
        tgt = Sines(out, amplitude=0.0, omega=1.0, offset=1.0 / sizes[1], kind="target")
    else:
        tgt = Sines(out, amplitude=0.6, omega=0.9, kind="target")
    stims = [Sines("input", amplitude=[1.0, 0.5], omega=[1.3, 2.1]), tgt,
             OrnsteinUhlenbeck("err_layer1" if separate else "layer1", kind="error", sigma=0.3, tau=1.0, seed=3)]
    prog = mc.compile(c, dt=0.01, batch=batch, scheme=scheme, seed=1, stimuli=stims)
    if fb_from is not None:        # feedback alignment: the same fixed B in both forms
        prog.weight("B2")[:] = fb_from.feedback_weight("W2").T
    mc.Simulation(prog, backend=backend, chunk_steps=97).run(steps=steps)
    return prog


def _compare(fused, sep, n1):
    """Every representation signal, the errors, the weights and the learned tau_m / biases."""
    for pop in ("layer1", "output"):
        for sig in ("u", "u_pros", "r", "udot", "v0"):
            np.testing.assert_allclose(sep.signal(pop, sig), fused.signal(pop, sig), atol=1e-12, rtol=0)
        for sig in ("e", "eps", "v_err"):
            np.testing.assert_allclose(sep.signal("err_" + pop, sig), fused.signal(pop, sig), atol=1e-12, rtol=0)
        np.testing.assert_allclose(sep.tau_m(pop), fused.tau_m(pop), atol=1e-12, rtol=0)
        np.testing.assert_allclose(sep.neuron["bias"][sep.pop_slice(pop)], fused.neuron["bias"][fused.pop_slice(pop)],
                                   atol=1e-12, rtol=0)
    for w in ("W1", "W2"):
        np.testing.assert_allclose(sep.weight(w), fused.weight(w), atol=1e-12, rtol=0)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("scheme", ["synchronous", "sequential"])
def test_separate_error_populations_equal_fused(scheme, backend):
    """300 steps, batch 3, rate loss: separate form == fused form to 1e-12 in both schemes and on
    both back-ends; learning did change the weights (> 1e-3) so the comparison covers plasticity."""
    fused = _run(False, scheme=scheme, backend=backend, batch=3, steps=300)
    sep = _run(True, scheme=scheme, backend=backend, batch=3, steps=300)
    _compare(fused, sep, 3)
    w0 = _layers()[0]["weights"]["value"]
    assert np.abs(sep.weight("W1") - w0).max() > 1e-3
    assert np.abs(sep.signal("err_layer1", "e")).max() > 1e-3     # errors actually flowed down


def test_kernel_equals_reference_cortical_mapping():
    """The separate form itself: Numba kernel == NumPy reference to 1e-12 (state, weights, optimiser
    state) after 300 synchronous steps with cross-entropy loss."""
    a = _run(True, scheme="synchronous", backend="numba", batch=3, steps=300, loss="cross_entropy")
    b = _run(True, scheme="synchronous", backend="numpy", batch=3, steps=300, loss="cross_entropy")
    np.testing.assert_allclose(a.state, b.state, atol=1e-12, rtol=0)
    np.testing.assert_allclose(a.weights, b.weights, atol=1e-12, rtol=0)
    np.testing.assert_allclose(a.dw_filter, b.dw_filter, atol=1e-12, rtol=0)


@pytest.mark.parametrize("scheme", ["synchronous", "sequential"])
def test_cross_entropy_and_blas_path_equal_fused(scheme):
    """Cross-entropy output (softmax over the partner's rates) on layers large enough for the BLAS
    path (40 x 40 x batch 12 >= 16384 multiply-adds): separate == fused to 1e-12 after 60 steps."""
    fused = _run(False, scheme=scheme, backend="numba", batch=12, steps=60, loss="cross_entropy", sizes=(40, 40))
    sep = _run(True, scheme=scheme, backend="numba", batch=12, steps=60, loss="cross_entropy", sizes=(40, 40))
    _compare(fused, sep, 40)


def test_feedback_alignment_equal_fused():
    """feedback = random: the error projection B2 carries a fixed matrix; given the fused form's B
    (copied), both forms agree to 1e-12, and B2 does not learn (stays equal to the copy)."""
    fused = _run(False, scheme="synchronous", backend="numba", batch=3, steps=200, feedback="random")
    sep = _run(True, scheme="synchronous", backend="numba", batch=3, steps=200, feedback="random", fb_from=fused)
    _compare(fused, sep, 3)
    np.testing.assert_array_equal(sep.weight("B2"), fused.feedback_weight("W2").T)


def test_tied_weights_are_a_view_of_the_forward_weights():
    """weights = {transpose_of = "W2"}: B2 has no weights of its own; prog.weight("B2") is W2^T
    (exactly, and still after W2 learned for 100 steps); no weight block is allocated for it."""
    sep = _run(True, scheme="synchronous", backend="numba", batch=2, steps=100)
    np.testing.assert_array_equal(sep.weight("B2"), sep.weight("W2").T)
    fused = _run(False, scheme="synchronous", backend="numba", batch=2, steps=0)
    # fused: W1, W2 blocks; separate: W1, W2 and the one-to-one error inputs E1 (3), E2 (2)
    assert sep.weights.size == fused.weights.size + 3 + 2
    assert "error_project        B2" in sep.describe_schedule()


def _base():
    c = mc.Circuit("cm")
    c.add_population("x", "input", 2)
    c.add_population("h", "rate", 3)
    c.add_population("o", "rate", 2)
    c.add_projection("x", "h", name="W1")
    c.add_projection("h", "o", name="W2")
    return c


def test_bad_cortical_mappings_raise_clear_errors():
    """Typed errors naming the population/projection, the field and the fix."""
    c = _base()
    c.add_population("eh", "error", 3)
    with pytest.raises(CircuitError, match="needs partner"):
        mc.compile(c, dt=0.1)
    c = _base()
    c.add_population("eh", "error", 2, partner="h")
    with pytest.raises(CircuitError, match="sizes differ"):
        mc.compile(c, dt=0.1)
    c = _base()
    c.add_population("eh", "error", 3, partner="h")
    c.add_population("eo", "error", 2, partner="o")
    c.add_projection("eh", "eo", "error", name="B", signal="e", weights={"transpose_of": "W2"})
    with pytest.raises(CircuitError, match="transpose of 'W2'"):
        mc.compile(c, dt=0.1)
    c = _base()
    c.add_population("eh", "error", 3, partner="h")
    c.add_projection("eh", "h", "error", name="E", connector={"kind": "one_to_one"})
    with pytest.raises(CircuitError, match='signal = "e"'):
        mc.compile(c, dt=0.1)
    c = _base()
    c.add_population("eo", "error", 2, partner="o")
    c.projection("W2").plasticity = {"rule": "error", "eta": 0.1, "error_source": "h"}
    with pytest.raises(CircuitError, match="error_source"):
        mc.compile(c, dt=0.1)
    c = mc.Circuit("cm")
    c.add_population("x", "input", 1)
    c.add_population("o", "rate", 1, loss="rate")
    c.add_population("eo", "error", 1, partner="o")
    with pytest.raises(CircuitError, match="loss belongs"):
        mc.compile(c, dt=0.1)


def test_scenario_file_equals_fused_network(tmp_path):
    """scenarios/gle_cortical_mapping.toml (separate populations, tied B2 = W2^T) run for 2000 steps
    gives the same weights and output as the fused 1-2-1 network built in Python with the same
    parameters (gamma = 0.001 as the error-input weight), to 1e-12."""
    from pathlib import Path
    from microcircuit.scenario.load import load_scenario
    from microcircuit.scenario.build import build_simulation
    root = Path(__file__).resolve().parents[1]
    sc = load_scenario(root / "scenarios" / "gle_cortical_mapping.toml", overrides=["simulation.duration=20.0"])
    sim = build_simulation(sc, output=tmp_path / "cm.zarr", overwrite=True)
    sim.run(steps=2000)
    sep = sim.program
    layers = [dict(size=2, name="hidden", tau_m=[1.0, 1.0], tau_r=[1.0, 0.1], activation="tanh", gamma=0.001,
                   prospective_errors=True, weights=[[0.3], [0.2]], plasticity={"rule": "error", "eta": 0.02}),
              dict(size=1, name="output", tau_m=1.0, tau_r=1.0, activation="linear", gamma=0.001,
                   prospective_errors=True, loss="rate", beta=1.0, weights=[[0.5, 1.0]],
                   plasticity={"rule": "error", "eta": 0.02})]
    stims = [Sines("input", omega=[0.49, 1.07, 1.98], amplitude=[1.0, 1.0, 1.0]),
             Sines("output", omega=[0.49, 1.07, 1.98], amplitude=[0.6, 0.4, 0.3], phase=[-0.5, -0.8, -1.0],
                   kind="target")]
    fused = mc.compile(gle_layered(1, layers), dt=0.01, seed=1, stimuli=stims)
    mc.Simulation(fused).run(steps=2000)
    for w in ("W1", "W2"):
        np.testing.assert_allclose(sep.weight(w), fused.weight(w), atol=1e-12, rtol=0)
    np.testing.assert_allclose(sep.signal("output", "r"), fused.signal("output", "r"), atol=1e-12, rtol=0)
    assert np.abs(sep.weight("W2") - [[0.5, 1.0]]).max() > 1e-4     # it learned


@pytest.mark.parametrize("name", ["gle_lagnet", "gle_lagline"])
def test_mimic_scenarios_compare_teacher_and_student(name, tmp_path):
    """scenarios/gle_lagnet.toml, gle_lagline.toml: the output error population gets
    +beta r_teacher - beta r_student through two fixed projections, so after any synchronous step
    eps_out = beta phi'(u_pros_out) (r_teacher - r_student) with both rates from the previous step
    (the engine's 'rate' loss with the teacher output as target); checked to 1e-14 after 500 steps
    (beta = 1, linear output for LagNet; beta = 0.01, softplus for LagLine)."""
    from pathlib import Path
    from microcircuit.scenario.load import load_scenario
    from microcircuit.scenario.build import build_simulation
    root = Path(__file__).resolve().parents[1]
    sc = load_scenario(root / "scenarios" / f"{name}.toml", overrides=["simulation.duration=5.0"])
    sim = build_simulation(sc, output=tmp_path / "m.zarr", overwrite=True)
    sim.run(steps=500)
    prog = sim.program
    teacher, beta = ("t_output", 1.0) if name == "gle_lagnet" else ("teacher_output", 0.01)
    N, B = prog.n_total, prog.batch
    prev = prog.prev.reshape(-1, N, B)
    r_t, r_s = prev[2, prog.pop_slice(teacher)].T, prev[2, prog.pop_slice("output")].T
    dphi = prev[3, prog.pop_slice("output")].T
    expected = beta * dphi * (r_t - r_s)
    np.testing.assert_allclose(prog.signal("err_output", "eps"), expected, atol=1e-14, rtol=0)
    assert np.abs(expected).max() > 1e-4       # the student differs from the teacher
