r"""Exact adjoint (discrete BPTT) of the engine's Euler-discretised GLE dynamics, offline.

The network is a feed-forward chain of GLE rate layers exactly as the engine integrates them
(``microcircuit.kernel``; discrete-time scheme on the GLE page of the docs, docs/models/gle.md) with
no error feedback into the membrane (gamma = 0):

.. math::

    s_l^k = W_l r_{l-1}^{k-\delta} + b_l,\quad \dot u_l^k = (s_l^k - u_l^{k-1})/\tau_{m,l},\quad
    \breve u_l^k = u_l^{k-1} + \tau_{r,l}\dot u_l^k,\quad u_l^k = u_l^{k-1} + dt\,\dot u_l^k,\quad
    r_l^k = \varphi_l(\breve u_l^k)

with ``r_0^k = x_k``, ``δ = 1`` for the engine's synchronous scheme (every layer reads the
previous step) and ``δ = 0`` for the sequential scheme; initial state ``u = 0``, ``r = φ(0)``,
``x_{-1} = 0`` (the engine's :func:`~microcircuit.compile.init_state`). The loss is

.. math::  L = dt \sum_k \frac{1}{B}\sum_b \ell(r_N^k, y^k),\qquad
    \ell = \tfrac{\beta}{2}\lVert y - r\rVert^2 \ (\text{mse}) \ \text{or}\
    \beta\,\mathrm{CE}(\mathrm{softmax}(r), y)\ (\text{ce}).

:func:`gradients` integrates the adjoint variables of these difference equations backward
in time (reverse-mode differentiation, written out by hand), giving the exact gradients
``dL/dW_l``, ``dL/db_l``, ``dL/dτ_{m,l}`` (checked against finite differences in
``tests/test_adjoint.py``) and the adjoint ``λ_l^k = −(B/dt) ∂L/∂s_l^k`` — the quantity GLE's
error ``e_l`` approximates (``dW/dt = η e r^T`` vs ``−∂L/∂W = Σ_k dt λ r^T / B``). Adjoint
recursion per step (top layer first; ``ū`` carried backward, ``s̄`` of the layer above):

.. math::

    \bar r_l^k = \partial_r c_k [l=N] + W_{l+1}^T \bar s_{l+1}^{k+\delta},\quad
    \bar{\breve u} = \varphi'(\breve u)\,\bar r,\quad
    \bar{\dot u} = dt\,\bar u_l^k + \tau_r\bar{\breve u},\quad
    \bar s_l^k = \bar{\dot u}/\tau_m,\quad
    \bar u_l^{k-1} = \bar u_l^k + \bar{\breve u} - \bar{\dot u}/\tau_m .

``window_steps`` truncates the backward pass to windows (the adjoint starts from zero at each
window end): truncated BPTT. :func:`train_bptt` is online truncated BPTT (forward a window
with the current parameters, backward, Adam update, continue from the window's end state).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from .activations import activation_id, phi_np, dphi_np
from .lagline_task import lagline_square_wave, LagLineResult, LAGLINE_TEACHER

__all__ = ["GLENet", "forward", "loss", "gradients", "train_bptt", "Adam", "lagline_net",
           "train_lagline_bptt"]


@dataclass
class GLENet:
    """Parameters of a feed-forward GLE chain (lists, one entry per layer)."""
    W: list                      # (n_l, n_{l-1})
    tau_m: list                  # (n_l,)
    tau_r: list                  # (n_l,)
    act: list                    # activation names
    dt: float
    b: list = None               # (n_l,) biases (default zeros)
    scheme: str = "synchronous"

    def __post_init__(self):
        L = len(self.W)
        self.W = [np.array(w, float).reshape(np.shape(w)) for w in self.W]
        self.tau_m = [np.broadcast_to(np.asarray(t, float), (self.W[i].shape[0],)).copy()
                      for i, t in enumerate(self.tau_m)]
        self.tau_r = [np.broadcast_to(np.asarray(t, float), (self.W[i].shape[0],)).copy()
                      for i, t in enumerate(self.tau_r)]
        if self.b is None:
            self.b = [np.zeros(w.shape[0]) for w in self.W]
        if isinstance(self.act, str):
            self.act = [self.act] * L
        self._aid = [activation_id(a) for a in self.act]

    @property
    def n_layers(self):
        return len(self.W)

    def copy(self):
        return GLENet([w.copy() for w in self.W], [t.copy() for t in self.tau_m], [t.copy() for t in self.tau_r],
                      list(self.act), self.dt, [b.copy() for b in self.b], self.scheme)

    def initial_state(self, batch):
        """Engine initial state: u = 0, r = phi(0), previous input 0."""
        u = [np.zeros((w.shape[0], batch)) for w in self.W]
        r = [phi_np(np.zeros((w.shape[0], batch)), a) for w, a in zip(self.W, self._aid)]
        return {"u": u, "r": r, "x": np.zeros((self.W[0].shape[1], batch))}


@dataclass
class Trajectory:
    pre: list        # per layer (K, n_{l-1}, B): presynaptic rate read at step k
    s: list          # (K, n, B)
    u_old: list      # (K, n, B) membrane before the step
    up: list         # (K, n, B) prospective potential
    r: list          # (K, n, B)
    end_state: dict = field(default_factory=dict)


def forward(net: GLENet, x, state=None) -> Trajectory:
    """Integrate the chain for inputs ``x`` (K, n0, B); returns the full :class:`Trajectory`."""
    x = np.asarray(x, float)
    K, _, B = x.shape
    st = net.initial_state(B) if state is None else {k: (v.copy() if isinstance(v, np.ndarray)
                                                          else [a.copy() for a in v]) for k, v in state.items()}
    L = net.n_layers
    seq = net.scheme == "sequential"
    tr = Trajectory([np.empty((K,) + (w.shape[1], B)) for w in net.W],
                    *[[np.empty((K, w.shape[0], B)) for w in net.W] for _ in range(4)])
    u, r, xp = st["u"], st["r"], st["x"]
    g = [1.0 / t[:, None] for t in net.tau_m]
    trr = [t[:, None] for t in net.tau_r]
    bb = [b[:, None] for b in net.b]
    dt = net.dt
    for k in range(K):
        r_prev = list(r)
        for l in range(L):
            if l == 0:
                pre = x[k] if seq else xp
            else:
                pre = r[l - 1] if seq else r_prev[l - 1]
            s = net.W[l] @ pre + bb[l]
            ud = (s - u[l]) * g[l]
            up = u[l] + trr[l] * ud
            tr.pre[l][k] = pre
            tr.s[l][k] = s
            tr.u_old[l][k] = u[l]
            tr.up[l][k] = up
            u[l] = u[l] + dt * ud
            r[l] = phi_np(up, net._aid[l])
            tr.r[l][k] = r[l]
        xp = x[k]
    tr.end_state = {"u": [a.copy() for a in u], "r": [a.copy() for a in r], "x": xp.copy()}
    return tr


def _softmax(z):
    e = np.exp(z - z.max(axis=0, keepdims=True))
    return e / e.sum(axis=0, keepdims=True)


def loss(net: GLENet, traj: Trajectory, y, kind="mse", beta=1.0):
    """``L = dt Σ_k mean_b ℓ(r_N^k, y^k)``; y (K, n_N, B) (one-hot for ``ce``)."""
    rN = traj.r[-1]
    B = rN.shape[2]
    if kind == "mse":
        return float(net.dt * 0.5 * beta * np.sum((y - rN) ** 2) / B)
    p = _softmax(rN.transpose(1, 0, 2).reshape(rN.shape[1], -1))
    yy = y.transpose(1, 0, 2).reshape(rN.shape[1], -1)
    return float(-net.dt * beta * np.sum(yy * np.log(p)) / B)


def _dloss_dr(net, rN_k, y_k, kind, beta):
    B = rN_k.shape[1]
    if kind == "mse":
        return -net.dt * beta * (y_k - rN_k) / B
    return net.dt * beta * (_softmax(rN_k) * y_k.sum(axis=0, keepdims=True) - y_k) / B


def gradients(net: GLENet, traj: Trajectory, y, kind="mse", beta=1.0, window_steps=None, k_range=None):
    """Exact (or, with ``window_steps``, truncated) gradients of :func:`loss` by the adjoint.

    Returns a dict with ``W``, ``b``, ``tau_m`` (lists like the net's) and ``lam`` (per layer
    (K, n, B): ``λ = −(B/dt) ∂L/∂s``). ``k_range = (k0, k1)`` restricts the loss to those steps.
    """
    L = net.n_layers
    K, _, B = traj.r[-1].shape
    dt = net.dt
    seq = net.scheme == "sequential"
    k0, k1 = (0, K) if k_range is None else k_range
    dW = [np.zeros_like(w) for w in net.W]
    db = [np.zeros_like(b) for b in net.b]
    dg = [np.zeros_like(t) for t in net.tau_m]
    lam = [np.zeros_like(s) for s in traj.s]
    g = [1.0 / t[:, None] for t in net.tau_m]
    trr = [t[:, None] for t in net.tau_r]
    ubar = [np.zeros((w.shape[0], B)) for w in net.W]
    sbar_next = [np.zeros((w.shape[0], B)) for w in net.W]
    for k in range(K - 1, -1, -1):
        if window_steps and (k + 1) % window_steps == 0:     # window end: truncate the adjoint
            ubar = [np.zeros_like(a) for a in ubar]
            sbar_next = [np.zeros_like(a) for a in sbar_next]
        sbar_now = [None] * L
        for l in range(L - 1, -1, -1):
            if l == L - 1:
                rbar = (_dloss_dr(net, traj.r[l][k], y[k], kind, beta) if k0 <= k < k1
                        else np.zeros_like(traj.r[l][k]))
            else:
                above = sbar_now[l + 1] if seq else sbar_next[l + 1]
                rbar = net.W[l + 1].T @ above
            upbar = rbar * dphi_np(traj.up[l][k], net._aid[l])
            udbar = dt * ubar[l] + trr[l] * upbar
            sb = g[l] * udbar
            dW[l] += sb @ traj.pre[l][k].T
            db[l] += sb.sum(axis=1)
            dg[l] += (udbar * (traj.s[l][k] - traj.u_old[l][k])).sum(axis=1)
            ubar[l] = ubar[l] + upbar - g[l] * udbar
            sbar_now[l] = sb
            lam[l][k] = -sb * B / dt
        sbar_next = sbar_now
    dtau = [-d / t ** 2 for d, t in zip(dg, net.tau_m)]
    return {"W": dW, "b": db, "tau_m": dtau, "lam": lam}


class Adam:
    """Adam on a list of arrays (PyTorch conventions); ``step(params, grads, lr)`` in place."""

    def __init__(self, beta1=0.9, beta2=0.999, eps=1e-8):
        self.b1, self.b2, self.eps, self.t, self.m, self.v = beta1, beta2, eps, 0, None, None

    def step(self, params, grads, lr):
        if self.m is None:
            self.m = [np.zeros_like(p) for p in params]
            self.v = [np.zeros_like(p) for p in params]
        self.t += 1
        for p, gr, m, v in zip(params, grads, self.m, self.v):
            m *= self.b1
            m += (1 - self.b1) * gr
            v *= self.b2
            v += (1 - self.b2) * gr * gr
            p -= lr * (m / (1 - self.b1 ** self.t)) / (np.sqrt(v / (1 - self.b2 ** self.t)) + self.eps)


def train_bptt(net: GLENet, x_fn, y_fn, n_steps, window_steps, *, eta=1e-2, learn_tau=True, kind="mse",
               beta=1.0, tau_min=None, n_init=0, record_every=None, learn_layers=None):
    """Online truncated BPTT: windows of ``window_steps``; after each, one Adam step of size
    ``dt * eta * window_steps`` (the per-time rate of an engine Adam run with ``eta``).

    ``x_fn(k0, k1)`` -> (K, n0, B) inputs, ``y_fn(k0, k1)`` -> (K, n_N, B) targets for the
    output of the same steps. The first ``n_init`` steps run without learning. Returns a dict
    of histories (t, W, tau_m, loss per window).
    """
    tau_min = 10 * net.dt if tau_min is None else tau_min
    opt = Adam()
    layers = range(net.n_layers) if learn_layers is None else learn_layers
    state = None
    hist = {"t": [0.0], "W": [[w.copy() for w in net.W]], "tau_m": [[t.copy() for t in net.tau_m]], "loss": [np.nan]}
    k = 0
    if n_init:
        state = forward(net, x_fn(0, n_init)).end_state
        k = n_init
    record_every = record_every or window_steps
    while k < n_steps:
        K = min(window_steps, n_steps - k)
        x, y = x_fn(k, k + K), y_fn(k, k + K)
        tr = forward(net, x, state)
        gr = gradients(net, tr, y, kind=kind, beta=beta)
        params, grads = [], []
        for l in layers:
            params.append(net.W[l])
            grads.append(gr["W"][l])
            if learn_tau:
                params.append(net.tau_m[l])
                grads.append(gr["tau_m"][l])
        opt.step(params, grads, net.dt * eta * K)
        for t in net.tau_m:
            np.maximum(t, tau_min, out=t)
        state = tr.end_state
        k += K
        if (k - n_init) % record_every == 0 or k >= n_steps:
            hist["t"].append(k * net.dt)
            hist["W"].append([w.copy() for w in net.W])
            hist["tau_m"].append([t.copy() for t in net.tau_m])
            hist["loss"].append(loss(net, tr, y, kind, beta) / (K * net.dt))
    return hist


# ------------------------------------------------------------------------ LagLine
def lagline_net(w, tau_m, tau_r=0.1, dt=0.01):
    """The LagLine chain 1 -> 1 -> 1 (softplus, no bias) as a :class:`GLENet` (synchronous)."""
    return GLENet([[[w[0]]], [[w[1]]]], [tau_m[0], tau_m[1]], [tau_r, tau_r], "softplus", dt)


def train_lagline_bptt(window, *, T_init=50.0, T_train=4000.0, batch=100, dt=0.01, seed=0, eta=1e-2,
                       beta=0.01, init=None, teacher=None):
    """LagLine with truncated BPTT through the same Euler dynamics (window in time units).

    Same input, initial values and target alignment as :func:`microcircuit.gle.run_lagline`
    (seed-for-seed), so the three learners can be compared directly. Returns a
    :class:`microcircuit.gle.LagLineResult`.
    """
    teacher = teacher or LAGLINE_TEACHER
    rng = np.random.default_rng(seed)
    if init is None:
        w0, tau0 = rng.uniform(0, 1, 2), np.maximum(rng.uniform(0, 1, 2), 10 * dt)
    else:
        w0, tau0 = (np.asarray(v, float) for v in init)
    xin = lagline_square_wave(batch, dt=dt, seed=seed + 1)
    tnet = lagline_net(teacher["w"], teacher["tau_m"], dt=dt)
    tstate = {"state": None, "k": 0, "y": {}}

    def x_fn(k0, k1):
        return xin(k0, k1)

    def y_fn(k0, k1):
        # teacher output of the same steps (the student's output is compared at equal steps)
        assert k0 == tstate["k"]
        tr = forward(tnet, xin(k0, k1), tstate["state"])
        tstate["state"], tstate["k"] = tr.end_state, k1
        return tr.r[-1]

    snet = lagline_net(w0, tau0, dt=dt)
    n_init = int(round(T_init / dt))
    # advance the teacher over the initial period too
    if n_init:
        y_fn(0, n_init)
    t0 = time.perf_counter()
    K = int(round(window / dt))
    n_total = n_init + int(round(T_train / dt))
    hist = train_bptt(snet, x_fn, y_fn, n_total, K, eta=eta, kind="mse", beta=beta, n_init=n_init,
                      record_every=max(K, 2000 // K * K))
    wall = time.perf_counter() - t0
    ws = np.array([[h[0][0, 0], h[1][0, 0]] for h in hist["W"]])
    taus = np.array([[h[0][0], h[1][0]] for h in hist["tau_m"]])
    return LagLineResult(f"bptt_tw{window:g}", np.asarray(hist["t"]), ws, taus, np.asarray(hist["loss"]),
                         teacher["w"], teacher["tau_m"], wall,
                         dict(T_init=T_init, T_train=T_train, batch=batch, dt=dt, seed=seed, eta=eta, beta=beta,
                              window=window, w0=w0.tolist(), tau0=tau0.tolist()))
