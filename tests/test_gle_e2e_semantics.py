"""The engine's fused GLE network against an independent NumPy transcription of the GLE reference
code's per-step semantics (docs/models/gle.md, "Discrete time" and "Networks of the paper":
``GLEDynamics`` + the synchronous layer loop + Adam).

Per step, every layer l reads the previous step's state of its neighbours:
    inst_e = phi'(u_pros_l) * (W_{l+1}^T e_{l+1})   (output: beta (onehot(y) - softmax(r_L)))
    v_dot = (inst_e - v)/tau_r,  e_l = v + tau_m v_dot,   v <- v + dt v_dot      (prospective error)
    u_dot = (W_l r_{l-1} + b_l - u)/tau_m,  u_pros = u + tau_r u_dot,  u <- u + dt u_dot
    r_l = phi(u_pros),  g_W = -<e_l r_{l-1}^T>_batch,  g_b = -<e_l>_batch,  then one Adam step.
Errors are sent down as ``e_bottom = e_l W_l`` with the weights of this step, before the optimiser
step (the reference's ``compute_error`` precedes ``optimizer.step()``). One convention of the engine
differs from the reference code's loop, and the transcription follows the engine on it: the input
population is read like every other population (one step later than the reference's layer 0, which
reads x_t directly; a shift of the input by one step). Both must agree to rounding (1e-12) over 400
steps of Adam learning with biases as synapses (the MNIST-1D network's form); sending the errors
through the updated weights instead (W_{k+1}^T e_k, one optimiser step later) must not.
"""
import numpy as np
import pytest

import microcircuit as mc
from microcircuit.gle import gle_layered, bias_stimulus, init_bias_unit, StreamStimulus
from microcircuit.simulation import Recording

DT, ETA = 0.2, 5e-3
# (hidden width, batch, steps): the small case takes the kernel's plain loops; the large one its BLAS
# products and batched Adam (n_post * n_pre * batch >= kernel._BLAS_MIN_SIZE), as MNIST-1D (53 x 53 x 100)
CASES = {"loops": (6, 2, 400), "blas": (18, 100, 150)}


def _taus(n):
    """LI fast, LI slow, LE thirds: the MNIST-1D network's groups."""
    k = n // 3
    return [0.6] * k + [1.2] * (n - k), [DT] * (2 * k) + [1.2] * (n - 2 * k)


def _engine(x, y, n, B, T):
    TAU_M, TAU_R = _taus(n)
    pl = {"rule": "error", "eta": ETA, "optimizer": "adam"}
    common = dict(gamma=0.0, prospective_errors=True, eta_bias=0.0, plasticity=pl)
    layers = [dict(size=n, activation="linear", tau_m=TAU_M, tau_r=TAU_R, **common),
              dict(size=n, activation="tanh", tau_m=TAU_M, tau_r=TAU_R, **common),
              dict(size=3, tau_m=1.2, tau_r=1.2, activation="linear", loss="cross_entropy", beta=1.0, **common)]
    st = [StreamStimulus("input", lambda a, b: x[a:b]), StreamStimulus("output", lambda a, b: y[a:b], kind="target"),
          bias_stimulus()]
    prog = init_bias_unit(mc.compile(gle_layered(1, layers, bias_synapses=True), dt=DT, batch=B, seed=3, stimuli=st))
    params0 = [prog.weight(f"W{i}").copy() for i in (1, 2, 3)] + [prog.weight(f"b{i}")[:, 0].copy() for i in (1, 2, 3)]
    sim = mc.Simulation(prog, recordings=[Recording("output", ["r"])], chunk_steps=100)
    sim.run(steps=T)
    params = [prog.weight(f"W{i}") for i in (1, 2, 3)] + [prog.weight(f"b{i}")[:, 0] for i in (1, 2, 3)]
    return sim.results()["output"]["r"].values, params0, params


def _transcription(x, y, params, nh, B, T, send_after_update=False):
    TAU_M, TAU_R = _taus(nh)
    P = [p.copy() for p in params]
    taum = [np.array(TAU_M), np.array(TAU_M), np.full(3, 1.2)]
    taur = [np.array(TAU_R), np.array(TAU_R), np.full(3, 1.2)]
    lin = (lambda z: z, lambda z: np.ones_like(z))
    phis = [lin, (np.tanh, lambda z: 1 - np.tanh(z) ** 2), lin]
    n, nin = [nh, nh, 3], [1, nh, nh]
    u, v, r = ([np.zeros((B, k)) for k in n] for _ in range(3))
    rp = [np.ones((B, k)) for k in n]                  # phi'(0) = 1 for linear and tanh
    e_down = [np.zeros((B, k)) for k in nin]
    m1, m2 = [np.zeros_like(p) for p in P], [np.zeros_like(p) for p in P]
    out = []
    for t in range(T):
        x_prev = x[t - 1].T if t > 0 else np.zeros((B, 1))
        new, grads, errs = [], [], []
        for l in range(3):
            r_pre = x_prev if l == 0 else r[l - 1]
            if l < 2:
                inst = e_down[l + 1] * rp[l]
            else:
                z = np.exp(r[2] - r[2].max(1, keepdims=True))
                inst = y[t].T - z / z.sum(1, keepdims=True)
            vd = (inst - v[l]) / taur[l]
            e = v[l] + taum[l] * vd
            ud = (r_pre @ P[l].T + P[3 + l] - u[l]) / taum[l]
            up = u[l] + taur[l] * ud
            new.append((u[l] + DT * ud, v[l] + DT * vd, phis[l][0](up), phis[l][1](up)))
            grads.append((-(e[:, :, None] * r_pre[:, None, :]).mean(0), -e.mean(0)))
            errs.append(e)
        for l in range(3):
            u[l], v[l], r[l], rp[l] = new[l]
        out.append(r[2].copy())
        if not send_after_update:
            for l in range(3):
                e_down[l] = errs[l] @ P[l]
        for i, g in enumerate([g[0] for g in grads] + [g[1] for g in grads]):
            m1[i] = 0.9 * m1[i] + 0.1 * g
            m2[i] = 0.999 * m2[i] + 0.001 * g * g
            P[i] = P[i] - DT * ETA * (m1[i] / (1 - 0.9 ** (t + 1))) / (np.sqrt(m2[i] / (1 - 0.999 ** (t + 1))) + 1e-8)
        if send_after_update:
            for l in range(3):
                e_down[l] = errs[l] @ P[l]
    return np.array(out), P


@pytest.mark.parametrize("case", list(CASES))
def test_engine_equals_transcription_of_reference_gle_with_adam(case):
    n, B, T = CASES[case]
    rng = np.random.default_rng(1)
    x = rng.normal(size=(T, 1, B))
    y = np.zeros((T, 3, B))
    y[:, rng.integers(0, 3, B), np.arange(B)] = 1.0
    r_eng, params0, params = _engine(x, y, n, B, T)
    r_ref, p_ref = _transcription(x, y, params0, n, B, T)
    np.testing.assert_allclose(r_eng, r_ref, rtol=0, atol=1e-12)
    for a, b, a0 in zip(params, p_ref, params0):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)
    # the run learned (Adam moved the output weights by much more than the tolerance)
    assert np.abs(params[2] - params0[2]).max() > 0.02
    # and the order of sending and updating is visible at this tolerance
    r_late, _ = _transcription(x, y, params0, n, B, T, send_after_update=True)
    assert np.abs(r_late - r_eng).max() > 1e-6
