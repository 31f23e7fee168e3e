"""Closed-form checks of the prospective rate neuron (LE / GLE), on both back-ends.

Expected numbers come from docs/models/le.md and docs/models/gle.md ("Discrete time" and "Checks
the tests rely on"; the discrete scheme u_pros = u_old + tau_r du/dt,
forward Euler), each stated with its derivation in the test.
"""
import math

import numpy as np
import pytest

import microcircuit as mc
from microcircuit.stimuli import Step, Sines, ArrayStimulus
from microcircuit.simulation import Recording
from helpers import run, chain, trace

BACKENDS = ["numba", "numpy"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_single_neuron_step_response(backend):
    """tau_m = 1, tau_r = 0.1, dt = 0.01, input 0 -> 1 at k = 0:
    u_k = 1 - (1 - dt/tau_m)^k, r_k = u_k + tau_r (1 - u_k)/tau_m = 1 - (1 - tau_r/tau_m)(1 - dt/tau_m)^k,
    so r_0 = 0.1 and r_100 = 0.670571 (to 1e-12)."""
    c = chain(1, tau_m=1.0, tau_r=0.1)
    sim = run(c, [Step("x", 1.0)], 101, dt=0.01, recordings=[Recording("l1", ["r"])], backend=backend)
    r = trace(sim, "l1")
    k = np.arange(101)
    expected = 1 - (1 - 0.1) * (1 - 0.01) ** k
    assert r[0] == pytest.approx(0.1, abs=1e-12)
    assert r[100] == pytest.approx(0.670571, abs=1e-6)
    np.testing.assert_allclose(r, expected, rtol=0, atol=1e-12)


def _random_net(rng, sizes, tau, dt):
    c = mc.Circuit("net")
    c.add_population("x", "input", sizes[0])
    prev = "x"
    for i, n in enumerate(sizes[1:], 1):
        c.add_population(f"l{i}", "rate", n, tau_m=tau, activation="tanh")
        c.add_projection(prev, f"l{i}", name=f"W{i}", weights={"dist": "array", "value": rng.normal(0, 1, (n, len_ := sizes[i - 1])).tolist()})
        prev = f"l{i}"
    return c


@pytest.mark.parametrize("dt,tau", [(0.1, 10.0), (0.5, 3.0), (2.0, 1.0)])
def test_le_exactness_sequential_and_synchronous(dt, tau):
    """tau_r = tau_m: u_pros = u + tau_m (s - u)/tau_m = s exactly, for any dt and tau, so
    r_k = tanh(W2 tanh(W1 x_k)) (sequential) to 1e-12; the synchronous scheme gives the same
    values one step later per layer (layer l lags l steps)."""
    rng = np.random.default_rng(3)
    sizes = [4, 5, 3]
    c = _random_net(rng, sizes, tau, dt)
    X = rng.normal(0, 1, (60, 4))
    W1 = np.asarray(c.projection("W1").weights["value"])
    W2 = np.asarray(c.projection("W2").weights["value"])
    h = np.tanh(X @ W1.T)
    y = np.tanh(h @ W2.T)
    for scheme, lag in (("sequential", 0), ("synchronous", 2)):
        sim = run(c, [ArrayStimulus("x", X)], 60, dt=dt, scheme=scheme,
                  recordings=[Recording("l2", ["r"]), Recording("l1", ["r"])])
        out = sim.results()["l2"]["r"].values[:, 0, :]
        hid = sim.results()["l1"]["r"].values[:, 0, :]
        np.testing.assert_allclose(out[lag:], y[:60 - lag], atol=1e-12)
        np.testing.assert_allclose(hid[lag // 2:], h[:60 - lag // 2], atol=1e-12)


def test_leaky_chain_of_three_reaches_half_at_gamma_median():
    """Non-prospective (tau_r = 0) linear chain of 3, tau = 10 ms, dt = 0.1 ms: the step response is
    the gamma(3) CDF 1 - e^{-t/tau}(1 + t/tau + t^2/2tau^2), which crosses 50 % at t = 2.674 tau.
    The scheme reads the previous u (one dt per layer), so the crossing is within a few dt."""
    c = chain(3, tau_m=10.0, tau_r=0.0)
    sim = run(c, [Step("x", 1.0)], 1000, dt=0.1, recordings=[Recording("l3", ["r"])])
    r = trace(sim, "l3")
    t50 = np.argmax(r >= 0.5) * 0.1
    assert t50 == pytest.approx(26.74, abs=4 * 0.1)   # O(dt): 3 layers x 1 dt of read-out delay
    # and at t = tau the gamma CDF is 8.0 %
    assert r[100] == pytest.approx(0.080, abs=0.01)


def _sine_gain_phase(t, x, y, omega):
    ref = np.exp(-1j * omega * t)
    X = np.sum(x * ref)
    Y = np.sum(y * ref)
    H = Y / X
    return abs(H), np.angle(H)


@pytest.mark.parametrize("tau_m,tau_r,gain,phase", [(1.0, 0.1, 0.7106, -0.6857), (0.1, 1.0, 1.4072, 0.6857),
                                                     (1.0, 1.0, 1.0, 0.0)])
def test_lead_lag_sine(tau_m, tau_r, gain, phase):
    """Lead-lag filter H(i w) = (1 + i w tau_r)/(1 + i w tau_m) at w = 1: gain sqrt((1+w^2 tau_r^2)/(1+w^2 tau_m^2))
    and phase atan(w tau_r) - atan(w tau_m): 0.7106 / -0.6857 rad retrospective, 1.4072 / +0.6857 prospective;
    within 1 % (dt = 0.01, measured over whole periods after the transient)."""
    dt, omega = 0.01, 1.0
    period_steps = int(round(2 * np.pi / omega / dt))
    n = 12 * period_steps
    c = chain(1, tau_m=tau_m, tau_r=tau_r)
    sim = run(c, [Sines("x", omega=omega)], n, dt=dt, recordings=[Recording("l1", ["r"]), Recording("x", ["r"])])
    x = trace(sim, "x")
    y = trace(sim, "l1")
    sl = slice(n - 8 * period_steps, n)
    t = np.arange(n)[sl] * dt
    g, ph = _sine_gain_phase(t, x[sl], y[sl], omega)
    assert g == pytest.approx(gain, rel=0.01)
    assert ph == pytest.approx(phase, abs=0.01 * max(abs(phase), 1))


@pytest.mark.parametrize("backend", BACKENDS)
def test_error_neuron_step_fused_and_standalone(backend):
    """GLE error neuron, tau_m = 1, tau_r = 0.1, constant input eps = 1 (dt = 0.01):
    tau_r dv/dt = -v + eps, e = v + tau_m dv/dt, so e_k = 1 - (1 - tau_m/tau_r)(1 - dt/tau_r)^k, e_0 = 10
    (overshoot tau_m/tau_r). Fused: an error current into a rate population with prospective errors.
    Standalone: a linear rate neuron with the constants swapped (tau_m = 0.1, tau_r = 1) gives the same."""
    dt, n = 0.01, 200
    k = np.arange(n)
    expected = 1 - (1 - 1.0 / 0.1) * (1 - dt / 0.1) ** k
    c = mc.Circuit()
    c.add_population("h", "rate", 1, tau_m=1.0, tau_r=0.1, activation="linear", prospective_errors=True, gamma=0.0)
    sim = run(c, [Step("h", 1.0, kind="error")], n, dt=dt, recordings=[Recording("h", ["e"])], backend=backend)
    e = trace(sim, "h", "e")
    assert e[0] == pytest.approx(10.0, abs=1e-12)
    np.testing.assert_allclose(e, expected, atol=1e-12)
    c2 = chain(1, tau_m=0.1, tau_r=1.0)
    sim2 = run(c2, [Step("x", 1.0)], n, dt=dt, recordings=[Recording("l1", ["r"])], backend=backend)
    np.testing.assert_allclose(trace(sim2, "l1"), expected, atol=1e-12)


def test_le_weight_update_equals_backprop_gradient():
    """Static input, tau_r = tau_m, sequential scheme, gamma = 0 (errors do not move the state), settled:
    e_N = beta phi'(u_N)(y - phi(u_N)), e_1 = phi'(u_1) W2^T e_N, and one step changes W by
    dt eta e r_pre^T = -eta dt beta dL/dW with L = 1/2 |y - phi(u_N)|^2 (checked by central finite
    differences, 1e-6 relative)."""
    rng = np.random.default_rng(0)
    nin, nh, nout = 3, 4, 2
    W1 = rng.normal(0, 0.8, (nh, nin))
    W2 = rng.normal(0, 0.8, (nout, nh))
    x = rng.normal(0, 1, nin)
    y = np.array([0.3, -0.2])
    dt, eta, beta = 0.1, 0.5, 0.1
    c = mc.Circuit()
    c.add_population("x", "input", nin)
    c.add_population("h", "rate", nh, tau_m=5.0, activation="tanh", gamma=0.0)
    c.add_population("o", "rate", nout, tau_m=5.0, activation="tanh", loss="rate", beta=beta, gamma=0.0)
    c.add_projection("x", "h", name="W1", weights={"dist": "array", "value": W1.tolist()},
                     plasticity={"rule": "error", "eta": eta})
    c.add_projection("h", "o", name="W2", weights={"dist": "array", "value": W2.tolist()},
                     plasticity={"rule": "error", "eta": eta})
    stim = [ArrayStimulus("x", x[None, :]), ArrayStimulus("o", y[None, :], kind="target")]
    gate = lambda k0, k1: np.column_stack([np.ones(k1 - k0), (np.arange(k0, k1) >= 5).astype(float)])
    prog = mc.compile(c, dt=dt, scheme="sequential", stimuli=stim)
    sim = mc.Simulation(prog, gates=gate)
    sim.run(steps=5)            # settle with plasticity off
    before = [prog.weight("W1").copy(), prog.weight("W2").copy()]
    sim.run(steps=1)
    dW = [prog.weight("W1") - before[0], prog.weight("W2") - before[1]]

    def loss(W1_, W2_):
        return 0.5 * np.sum((y - np.tanh(W2_ @ np.tanh(W1_ @ x))) ** 2)

    for idx, (Wm, d) in enumerate(zip(before, dW)):
        g = np.zeros_like(Wm)
        h = 1e-6
        for ij in np.ndindex(Wm.shape):
            Wp, Wn = [w.copy() for w in before], [w.copy() for w in before]
            Wp[idx][ij] += h
            Wn[idx][ij] -= h
            g[ij] = (loss(*Wp) - loss(*Wn)) / (2 * h)
        np.testing.assert_allclose(d, -eta * dt * beta * g, rtol=1e-6, atol=1e-14)


def test_float32_runs_close_to_float64():
    """float32 state follows the float64 run to single precision (relative 1e-5 on a step response)."""
    c = chain(2, tau_m=1.0, tau_r=0.5)
    a = trace(run(c, [Step("x", 1.0)], 300, dt=0.01, recordings=[Recording("l2", ["r"])]), "l2")
    b = trace(run(c, [Step("x", 1.0)], 300, dt=0.01, recordings=[Recording("l2", ["r"], dtype="float32")],
                  dtype="float32"), "l2")
    assert b.dtype == np.float32
    np.testing.assert_allclose(b, a, rtol=1e-5)
