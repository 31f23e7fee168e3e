r"""Generalized Latent Equilibrium (GLE) helpers: network builders, readouts, mimic-task drivers.

Everything here runs on the engine (``rate`` populations with ``tau_m``, ``tau_r``,
``prospective_errors``; ``tau_learning = "gle"``); nothing is a second implementation of the
neuron dynamics (the exact-adjoint learner in :mod:`microcircuit.adjoint` re-derives them in
NumPy and is tested against the engine to 1e-12).

* :func:`gle_layered` — a feed-forward GLE network (one population per layer, heterogeneous
  ``tau_m``/``tau_r`` lists allowed), errors fused into the representation populations
  (``prospective_errors``), or — ``error_populations=True`` — the cortical mapping (GLE Fig. 4):
  every layer a representation population plus a partner error population (model ``error``),
  linked by projections (forward ``W``, backward ``W^T`` tied to ``W`` or a fixed ``B``, and a
  one-to-one error input of weight ``gamma``); same trajectories as the fused form.
* :class:`StreamStimulus` — a stimulus whose values come from a callable ``(k0, k1) -> (K, n, B)``
  (used to feed a teacher's output to a student chunk by chunk).
* :func:`lagline_square_wave` — the LagLine input (periodic smoothed square wave per sample).
* :func:`lagnet_errors_vs_adjoint` — LagNet (GLE Fig. 6): GLE errors vs exact adjoint per frequency.
* :func:`run_lagline` — the LagLine teacher–student experiment (GLE Fig. 5) with GLE or
  instantaneous-error ("bp") learning on the engine; truncated BPTT is in
  :func:`microcircuit.adjoint.train_lagline_bptt`.
* :func:`summed_logits_readout` — prediction = argmax of the output summed over a sequence.
* closed forms: :func:`gle_filter`, :func:`adjoint_filter` (transfer functions at s = iω).
"""
from __future__ import annotations

import time

import numpy as np

from .adjoint import GLENet, forward, gradients
from .circuit import Circuit
from .lagline_task import LAGLINE_TEACHER, LagLineResult, lagline_square_wave  # noqa: F401 (re-exported)
from .stimuli import Stimulus

__all__ = ["gle_layered", "bias_stimulus", "init_bias_unit", "StreamStimulus", "lagline_square_wave", "lagline_circuit",
           "run_lagline", "summed_logits_readout", "gle_filter", "adjoint_filter", "LagLineResult"]


# ------------------------------------------------------------------------ closed forms
def gle_filter(omega, tau_m, tau_r):
    """GLE error-neuron transfer ``(1 + iωτm) / (1 + iωτr)`` (error neurons: GLE page of the docs,
    docs/models/gle.md)."""
    s = 1j * np.asarray(omega, float)
    return (1 + s * tau_m) / (1 + s * tau_r)


def adjoint_filter(omega, tau_m, tau_r):
    """Exact-adjoint transfer ``(1 − iωτr) / (1 − iωτm)`` (anti-causal; phase identity: GLE page of
    the docs, docs/models/gle.md)."""
    s = 1j * np.asarray(omega, float)
    return (1 - s * tau_r) / (1 - s * tau_m)


def forward_filter(omega, tau_m, tau_r):
    """Representation-neuron transfer ``(1 + iωτr) / (1 + iωτm)`` (representation neurons: GLE page
    of the docs, docs/models/gle.md)."""
    s = 1j * np.asarray(omega, float)
    return (1 + s * tau_r) / (1 + s * tau_m)


# ------------------------------------------------------------------------ stimuli
class StreamStimulus(Stimulus):
    """Values from ``fn(k0, k1) -> array (k1 - k0, n, batch)``: a stream filled chunk by chunk."""
    shape_kind = "stream"

    def __init__(self, target, fn, kind="rate", name=None):
        super().__init__(target, kind=kind, name=name)
        self.fn = fn

    def values(self, k0, k1, dt, n, batch):
        x = np.asarray(self.fn(k0, k1), dtype=float)
        return np.broadcast_to(x.reshape(k1 - k0, -1, x.shape[-1] if x.ndim == 3 else 1), (k1 - k0, n, batch))


# ------------------------------------------------------------------------ builders
BIAS_NAME = "bias"


def bias_stimulus(name=BIAS_NAME):
    """The constant rate ``r = 1`` of the bias unit of :func:`gle_layered` (``bias_synapses=True``)."""
    from .stimuli import Step
    return Step(name, amplitude=1.0, name=f"rate->{name}")


def init_bias_unit(prog, name=BIAS_NAME):
    """Set the bias unit's rate to 1 in the current and previous-step signals of a compiled program,
    so that the first step (which reads the previous step in the synchronous scheme) sees it too."""
    from .compile import hold_input_rate
    return hold_input_rate(prog, name, 1.0)


def gle_layered(input_size, layers, *, name="gle", input_name="input", feedback="transpose",
                error_populations=False, feedback_std=0.05, bias_synapses=False):
    """A feed-forward GLE network.

    ``layers``: list of dicts, one per layer, each with ``size`` and optional ``name``,
    ``weights`` (a weights spec or an array (n_post, n_pre)), ``plasticity`` (a plasticity
    dict, e.g. ``{"rule": "error", "eta": 1e-2, "optimizer": "adam"}``), ``signal``; all other
    keys are ``rate`` population parameters (``tau_m``, ``tau_r`` — scalars or per-neuron lists —,
    ``activation``, ``gamma``, ``prospective_errors``, ``loss``, ``beta``, ``tau_learning``, ...).
    Projections are named ``W1 .. WN``; populations ``layer1 ..`` and the last one ``output``.

    ``error_populations=True`` builds the cortical mapping instead: for each layer ``X`` an error
    population ``err_X`` (model ``error``, partner ``X``; it takes ``prospective_errors``, ``loss``
    and ``beta``), a one-to-one projection ``EX: err_X -> X`` (target ``error``, signal ``e``,
    weight ``gamma``), and for l >= 2 a backward projection ``B<l>: err_l -> err_(l-1)`` with
    weights tied to ``W<l>^T`` (``feedback="transpose"``) or fixed ``B ~ N(0, feedback_std^2)``
    (``"random"``; none for ``"none"``). The forward weights learn from ``err_X``.

    ``bias_synapses=True`` (fused form only) realises the biases as synapses from one extra
    ``input`` population ``bias`` whose rate is held at 1 (feed it :func:`bias_stimulus`, and call
    :func:`init_bias_unit` on the compiled program so that step 0 already sees it): the
    projection ``b<l>: bias -> layer l`` adds ``b_l = w_b`` to the basal input and learns with the
    layer's own plasticity dict, ``dw_b/dt = eta e_l * 1``, i.e. the GLE bias rule ``db/dt = eta e``
    (learning: GLE page of the docs, docs/models/gle.md) with the same optimiser as the weights (the
    reference code uses Adam for W
    and b alike; the population parameter ``eta_bias`` is plain SGD). Initial ``b ~ U(-1/sqrt(n_pre),
    1/sqrt(n_pre))`` (PyTorch ``nn.Linear``); no error is sent back to the bias unit.
    """
    if error_populations:
        if bias_synapses:
            raise ValueError("gle_layered: bias_synapses=True is only available with error_populations=False")
        return _gle_cortical(input_size, layers, name=name, input_name=input_name, feedback=feedback,
                             feedback_std=feedback_std)
    c = Circuit(name)
    c.add_population(input_name, "input", int(input_size))
    if bias_synapses:
        c.add_population(BIAS_NAME, "input", 1)
    prev, n_prev = input_name, int(input_size)
    for i, spec in enumerate(layers, start=1):
        spec = dict(spec)
        size = int(spec.pop("size"))
        nm = spec.pop("name", "output" if i == len(layers) else f"layer{i}")
        w = spec.pop("weights", None)
        pl = spec.pop("plasticity", None)
        sig = spec.pop("signal", "r")
        if isinstance(w, np.ndarray) or isinstance(w, (list, tuple)):
            w = {"dist": "array", "value": np.asarray(w, float).reshape(size, -1)}
        c.add_population(nm, "rate", size, **spec)
        c.add_projection(prev, nm, "basal", name=f"W{i}", signal=sig, weights=w or {"dist": "kaiming_uniform"},
                         plasticity=pl or {"rule": "none"}, feedback=feedback)
        if bias_synapses:
            bound = 1.0 / np.sqrt(n_prev)
            c.add_projection(BIAS_NAME, nm, "basal", name=f"b{i}", weights={"dist": "uniform", "low": -bound,
                                                                            "high": bound},
                             plasticity=pl or {"rule": "none"}, feedback="none")
        prev, n_prev = nm, size
    return c


ERROR_KEYS = ("prospective_errors", "loss", "beta")


def _gle_cortical(input_size, layers, *, name, input_name, feedback, feedback_std):
    """The cortical mapping of :func:`gle_layered` (separate representation and error populations)."""
    c = Circuit(name)
    c.add_population(input_name, "input", int(input_size))
    prev, names = input_name, []
    for i, spec in enumerate(layers, start=1):
        spec = dict(spec)
        size = int(spec.pop("size"))
        nm = spec.pop("name", "output" if i == len(layers) else f"layer{i}")
        w = spec.pop("weights", None)
        pl = dict(spec.pop("plasticity", None) or {"rule": "none"})
        sig = spec.pop("signal", "r")
        gamma = spec.pop("gamma", 1.0)
        err = {k: spec.pop(k) for k in ERROR_KEYS if k in spec}
        err.setdefault("prospective_errors", False)
        if isinstance(w, np.ndarray) or isinstance(w, (list, tuple)):
            w = {"dist": "array", "value": np.asarray(w, float).reshape(size, -1)}
        c.add_population(nm, "rate", size, **spec)
        c.add_population(f"err_{nm}", "error", size, partner=nm, **err)
        if pl.get("rule", "none") == "error":
            pl["error_source"] = f"err_{nm}"
        c.add_projection(prev, nm, "basal", name=f"W{i}", signal=sig, weights=w or {"dist": "kaiming_uniform"},
                         plasticity=pl, feedback="none")
        g = np.asarray(gamma, float)
        gw = ({"dist": "constant", "value": float(g)} if g.ndim == 0 else
              {"dist": "array", "value": np.broadcast_to(g, (size,)).copy()})
        c.add_projection(f"err_{nm}", nm, "error", name=f"E{i}", signal="e", connector={"kind": "one_to_one"},
                         weights=gw)
        if i >= 2 and feedback != "none":
            wb = ({"transpose_of": f"W{i}"} if feedback == "transpose" else
                  {"dist": "normal", "mean": 0.0, "std": feedback_std})
            c.add_projection(f"err_{nm}", f"err_{prev}", "error", name=f"B{i}", signal="e", weights=wb)
        prev = nm
        names.append(nm)
    return c


# ------------------------------------------------------------------------ readout
def summed_logits_readout(r_out, labels=None):
    """Prediction = argmax over classes of the output summed over time.

    ``r_out``: (T, batch, classes) recorded output (logits of a linear output layer). Returns
    ``(predictions, accuracy or None)``.
    """
    s = np.asarray(r_out).sum(axis=0)
    pred = s.argmax(axis=-1)
    acc = None if labels is None else float(np.mean(pred == np.asarray(labels)))
    return pred, acc


# ------------------------------------------------------------------------ LagLine


def lagline_circuit(w, tau_m, *, tau_r=0.1, method="gle", eta=1e-2, eta_tau=1e-2, beta=0.01, gamma=1.0,
                    optimizer="adam", tau_min=0.1, learn=True):
    """The LagLine chain input -> h -> output (softplus, no bias, retrospective tau_r = 0.1).

    ``method``: "gle" (prospective GLE error neurons) or "bp" (instantaneous errors
    e = phi' W^T e_post). ``learn=False`` builds a teacher (no loss, no plasticity).
    Learning rates are per time unit: Adam step per dt = dt * eta (GLE code lr 1e-4 per step
    at dt = 0.01 is eta = 1e-2).
    """
    pl = ({"rule": "error", "eta": eta, "optimizer": optimizer} if learn else {"rule": "none"})
    common = dict(tau_r=tau_r, activation="softplus", gamma=gamma if learn else 0.0,
                  prospective_errors=(method == "gle"))
    if learn:
        common.update(tau_learning="gle", eta_tau=eta_tau, tau_optimizer=optimizer, tau_min=tau_min)
    layers = [dict(size=1, name="hidden", tau_m=tau_m[0], weights=[[w[0]]], plasticity=pl, **common),
              dict(size=1, name="output", tau_m=tau_m[1], weights=[[w[1]]], plasticity=pl,
                   loss="rate" if learn else "none", beta=beta, **common)]
    return gle_layered(1, layers, name="lagline_" + ("student" if learn else "teacher"))


def run_lagline(method="gle", *, T_init=50.0, T_train=4000.0, batch=100, dt=0.01, seed=0, eta=1e-2,
                eta_tau=None, beta=0.01, gamma=1.0, optimizer="adam", init=None, chunk_steps=2000,
                backend="numba", teacher=LAGLINE_TEACHER):
    """LagLine teacher–student run on the engine (GLE Fig. 5); returns a :class:`LagLineResult`.

    The student's target at step k is the teacher's output of step k-1 (the engine's output
    error compares the target of step k with the previous-step rate), so a student equal to
    the teacher has zero error. Student w and tau_m start U[0, 1) (``seed``) unless ``init =
    (w, tau_m)``; tau_m is clamped at 10 dt.
    """
    from . import compile as mc_compile
    from .simulation import Simulation
    rng = np.random.default_rng(seed)
    if init is None:
        w0, tau0 = rng.uniform(0, 1, 2), rng.uniform(0, 1, 2)
        tau0 = np.maximum(tau0, 10 * dt)
    else:
        w0, tau0 = (np.asarray(v, float) for v in init)
    eta_tau = eta if eta_tau is None else eta_tau
    xin = lagline_square_wave(batch, dt=dt, seed=seed + 1)
    tc = lagline_circuit(teacher["w"], teacher["tau_m"], learn=False)
    tprog = mc_compile(tc, dt=dt, batch=batch, stimuli=[StreamStimulus("input", xin)])
    tsim = Simulation(tprog, recordings=[_rec("output")], chunk_steps=chunk_steps, backend=backend)
    buf = {"k0": 0, "y": np.zeros((0, 1, batch)), "last": None}

    def target(k0, k1):
        return buf["y"][k0 - buf["k0"]:k1 - buf["k0"]]

    sc = lagline_circuit(w0, tau0, method=method, eta=eta, eta_tau=eta_tau, beta=beta, gamma=gamma,
                         optimizer=optimizer, tau_min=10 * dt)
    sprog = mc_compile(sc, dt=dt, batch=batch, stimuli=[StreamStimulus("input", xin),
                                                        StreamStimulus("output", target, kind="target")])
    n_init = int(round(T_init / dt))

    def gates(k0, k1):
        g = np.ones((k1 - k0, 2))
        g[:, 1] = (np.arange(k0, k1) >= n_init).astype(float)
        return g
    ssim = Simulation(sprog, recordings=[], chunk_steps=chunk_steps, backend=backend, gates=gates)
    n_total = n_init + int(round(T_train / dt))
    ts, ws, taus, losses = [0.0], [w0.copy()], [tau0.copy()], [np.nan]
    prev_y = tprog.signal("output", "r").T[None]          # teacher r at step -1, (1, 1, B)
    t0 = time.perf_counter()
    k = 0
    while k < n_total:
        K = min(chunk_steps, n_total - k)
        # teacher outputs of steps k..k+K-1, recorded after each step
        ys = _run_record(tsim, K)
        buf["k0"], buf["y"] = k, np.concatenate([prev_y, ys[:-1]], axis=0)
        prev_y = ys[-1:]
        ssim.run(steps=K)
        k += K
        ws.append(np.array([sprog.weight("W1")[0, 0], sprog.weight("W2")[0, 0]]))
        taus.append(np.concatenate([sprog.tau_m("hidden"), sprog.tau_m("output")]))
        ts.append(k * dt)
        r_s = sprog.signal("output", "r")[:, 0]
        losses.append(float(np.mean((r_s - ys[-1, 0]) ** 2)))
    wall = time.perf_counter() - t0
    return LagLineResult(method, np.asarray(ts), np.asarray(ws), np.asarray(taus), np.asarray(losses),
                         teacher["w"], teacher["tau_m"], wall,
                         dict(T_init=T_init, T_train=T_train, batch=batch, dt=dt, seed=seed, eta=eta,
                              eta_tau=eta_tau, beta=beta, gamma=gamma, optimizer=optimizer,
                              w0=w0.tolist(), tau0=tau0.tolist()))


def _run_record(sim, K):
    """Run K steps of a simulation recording one variable; returns (K, n, B) and frees the memory."""
    rec = sim.recorder
    for key in rec.blocks:
        rec.blocks[key], rec.steps[key] = [], []
    sim.run(steps=K)
    blk = np.concatenate(next(iter(rec.blocks.values())))   # (K, B, n)
    return np.transpose(blk, (0, 2, 1))


def _rec(pop, var="r"):
    from .simulation import Recording
    return Recording(pop, [var])


# ------------------------------------------------------------------------ LagNet
LAGNET_TEACHER = dict(W1=[[-0.5], [1.0]], W2=[[0.5, 0.0], [0.0, 1.0]], W3=[[0.5, 1.0]])
LAGNET_OMEGAS = (0.49, 1.07, 1.98)


def _lagnet_layers(W, gamma, learn_eta=0.0):
    pair = dict(tau_m=[1.0, 1.0], tau_r=[1.0, 0.1], activation="tanh", prospective_errors=True, gamma=gamma)
    pl = {"rule": "error", "eta": learn_eta} if learn_eta else None
    return [dict(size=2, name="hid1", weights=W["W1"], plasticity=pl, **pair),
            dict(size=2, name="hid2", weights=W["W2"], **pair),
            dict(size=1, name="output", weights=W["W3"], tau_m=1.0, tau_r=1.0, activation="linear",
                 prospective_errors=True, gamma=gamma, loss="rate", beta=1.0)]


def fit_phasors(sig, t, omegas):
    """Least-squares fit of ``sig`` (T, ...) on sin/cos at ``omegas``: complex amplitudes
    ``a_j`` with ``sig ≈ Σ Im(a_j e^{iω_j t})`` (phase of a sine = angle of a_j), shape (n_ω, ...)."""
    X = np.concatenate([np.sin(np.outer(t, omegas)), np.cos(np.outer(t, omegas))], axis=1)
    flat = np.asarray(sig).reshape(len(t), -1)
    coef = np.linalg.lstsq(X, flat, rcond=None)[0]
    m = len(omegas)
    z = coef[:m] + 1j * coef[m:]
    return z.reshape((m,) + np.asarray(sig).shape[1:])


def lagnet_errors_vs_adjoint(student_W1=((0.3,), (0.2,)), *, T=1001.0, dt=0.01, t_start=80.0, t_stop_margin=30.0,
                             omegas=LAGNET_OMEGAS, scheme="sequential"):
    """GLE errors of hid1 (engine, fixed student weights, gamma = 0) vs the exact adjoint of the
    same discrete dynamics (microcircuit.adjoint), per input frequency.

    Student = teacher except hid1 weights; target = teacher output of the same step (sequential
    scheme: no pipeline delays, so the engine's e and the adjoint λ refer to the same instant).
    Returns dict with complex amplitudes ``e`` and ``lam`` (n_ω, 2 neurons), their phase
    differences ``dphase`` (wrapped, rad), the time series and the fit window.
    """
    from . import compile as mc_compile
    from .simulation import Simulation, Recording
    K = int(round(T / dt))
    t = np.arange(K) * dt
    x = np.sin(np.outer(t, omegas)).sum(axis=1)[:, None, None]
    Wt = {k: np.asarray(v, float) for k, v in LAGNET_TEACHER.items()}
    Ws = dict(Wt, W1=np.asarray(student_W1, float))
    net_t = GLENet([Wt["W1"], Wt["W2"], Wt["W3"]], [[1, 1], [1, 1], [1]], [[1, .1], [1, .1], [1]],
                   ["tanh", "tanh", "linear"], dt, scheme=scheme)
    y = forward(net_t, x).r[-1]
    c = gle_layered(1, _lagnet_layers(Ws, gamma=0.0), name="lagnet")
    prog = mc_compile(c, dt=dt, scheme=scheme, stimuli=[StreamStimulus("input", lambda a, b: x[a:b]),
                                                        StreamStimulus("output", lambda a, b: y[a:b], kind="target")])
    sim = Simulation(prog, recordings=[Recording("hid1", ["e"])], chunk_steps=10000)
    sim.run(steps=K)
    e = sim.results()["hid1"]["e"].values[:, 0, :]          # (K, 2)
    net_s = GLENet([Ws["W1"], Ws["W2"], Ws["W3"]], [[1, 1], [1, 1], [1]], [[1, .1], [1, .1], [1]],
                   ["tanh", "tanh", "linear"], dt, scheme=scheme)
    lam = gradients(net_s, forward(net_s, x), y, kind="mse", beta=1.0)["lam"][0][:, :, 0]   # (K, 2)
    sl = slice(int(round(t_start / dt)), K - int(round(t_stop_margin / dt)))
    ze, zl = fit_phasors(e[sl], t[sl], omegas), fit_phasors(lam[sl], t[sl], omegas)
    dphase = np.angle(ze / zl)
    return dict(e=ze, lam=zl, dphase=dphase, gain_ratio=np.abs(ze) / np.abs(zl), t=t, e_t=e, lam_t=lam,
                window=(t[sl][0], t[sl][-1]), omegas=np.asarray(omegas))
