r"""Dendritic-error cortical microcircuit (Sacramento et al. 2018; LE microcircuit, Haider et al. 2021).

Builder, closed-form self-predicting state, presentation machinery and a supervised loop.

Populations (``sizes = [n_0, n_1, ..., n_N]``)::

    input (n_0)  -> pyr1 (n_1) -> ... -> pyr{N-1} -> output (n_N)
                    inter1 (n_2)         inter{N-1} (n_N)

Projections (names in brackets)::

    [up{k}]    pyr{k-1} --r--> pyr{k}.basal         (output.basal for k = N)   Urbanczik–Senn
    [down{k}]  pyr{k+1} --r--> pyr{k}.apical        fixed (or learned, see top_down)
    [ip{k}]    pyr{k}   --r--> inter{k}.dendrite    Urbanczik–Senn
    [pi{k}]    inter{k} --r--> pyr{k}.apical        apical homeostasis  dW = -eta v_A r_I^T
    [nudge{k}] pyr{k+1} --u--> inter{k}.nudge       one-to-one, weight 1 (signal u_pros under LE)

Update order: populations are declared input, pyramids bottom-up, output, then interneurons. Under
the synchronous (Jacobi) scheme of the published codes every population reads the previous step;
under ``scheme="sequential"`` (Gauss-Seidel) this order makes inter{k} see the *current* potential of
the pyramid above, as its dendrite sees the current rates of pyr{k}, so the LE microcircuit is exact
(v_A = 0 to float precision in the self-predicting state, even at 1 step per pattern); only the
top-down/lateral apical inputs (back edges) keep a one-step delay.

Equations: neurons, plasticity and self-predicting state on the microcircuit page of the docs
(docs/models/microcircuit.md); the engine implements them (``models/pyramidal.py``,
``kernel.py``). Learning rates are per ms (``dW = dt * eta * term``).

Self-predicting state (docs/models/microcircuit.md): ``W_PI = -W_down``,
``W_IP = W_up(next) * g_B/(g_lk+g_B+g_A') * (g_lk+g_D)/g_D`` with g_A' = 0 when the next layer is
the output (:func:`reflect` on a compiled :class:`~microcircuit.compile.Program`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .circuit import Circuit
from .compile import compile_circuit, Program
from .layout import PF_ETA
from .errors import CircuitError
from .models import PRESETS
from .simulation import Simulation, Recording
from .stimuli import Stimulus

__all__ = ["dendritic_microcircuit", "reflect", "coupling_factors", "preset_table", "PatternSequence",
           "PresentationGates", "MicrocircuitRunner", "BARS_LE_ETA", "conductance_table"]

# LE Fig. 3 learning rates, as eta * t_pres (t_pres in ms): up [hidden, output], ip, pi (parameter
# sets: docs/models/microcircuit.md)
BARS_LE_ETA = {"up": [0.5, 0.1], "ip": 0.2, "pi": 0.0}


# ----------------------------------------------------------------------------- presets
def coupling_factors(g) -> dict:
    """Derived quantities of a conductance set (a preset name or a dict with g_lk, g_B, g_A,
    g_D, g_som): coupling factors lambda (docs/models/microcircuit.md) and effective time constants
    tau_eff = 1/g_tot."""
    if isinstance(g, str):
        g = PRESETS[g]
    gl, gB, gA, gD, gs = (g[k] for k in ("g_lk", "g_B", "g_A", "g_D", "g_som"))
    return {
        "lambda_out": gs / (gl + gB + gs),
        "lambda_inter": gs / (gl + gD + gs),
        "lambda_hidden": gA / (gl + gB + gA),
        "tau_eff_hidden": 1.0 / (gl + gB + gA),
        "tau_eff_inter": 1.0 / (gl + gD + gs),
        "tau_eff_out_free": 1.0 / (gl + gB),
        "tau_eff_out_nudged": 1.0 / (gl + gB + gs),
        "att_basal_hidden": gB / (gl + gB + gA),
        "att_basal_out": gB / (gl + gB),
        "att_dendrite_inter": gD / (gl + gD),
    }


def preset_table(presets=None) -> str:
    """Markdown table of the conductance presets and their derived coupling factors."""
    presets = presets or PRESETS
    keys = ["g_lk", "g_B", "g_A", "g_D", "g_som"]
    derived = list(coupling_factors(next(iter(presets.values()))).keys())
    lines = ["| preset | " + " | ".join(keys + derived) + " |",
             "|---" * (1 + len(keys) + len(derived)) + "|"]
    for name, g in presets.items():
        cf = coupling_factors(g)
        lines.append(f"| {name} | " + " | ".join(f"{g[k]:g}" for k in keys)
                     + " | " + " | ".join(f"{cf[k]:.4g}" for k in derived) + " |")
    return "\n".join(lines)


def conductance_table(prog_or_circuit) -> str:
    """Markdown table of the conductances each microcircuit population actually uses (after
    preset, explicit values and ``morphology`` derivation), with the source of each value."""
    from .models.pyramidal import conductances as _microcircuit_conductances
    circuit = prog_or_circuit.circuit if isinstance(prog_or_circuit, Program) else prog_or_circuit
    rows = ["| population | model | g_lk | g_B | g_A | g_D | g_som | tau_eff (ms) | source |",
            "|---|---|---|---|---|---|---|---|---|"]
    for p in circuit.populations:
        if p.model not in ("pyramidal", "output_pyramidal", "interneuron"):
            continue
        g = _microcircuit_conductances(p)
        # g_tot of the soma: interneurons are always nudged (g_som), hidden pyramids couple the apical
        # compartment (g_A); the output pyramid is shown free (its g_som only acts while a target is on)
        gt = g["g_lk"] + (g["g_D"] + g["g_som"] if p.model == "interneuron" else g["g_B"]) + \
            (g["g_A"] if p.model == "pyramidal" else 0.0)
        src = p.params.get("morphology") and f"morphology {p.params['morphology']}" or \
            f"preset {p.params.get('preset', 'sacramento2018')}"
        explicit = [k for k in ("g_lk", "g_B", "g_A", "g_D", "g_som") if p.params.get(k) is not None]
        if explicit:
            src += "; explicit " + ", ".join(explicit)
        used = {"pyramidal": ("g_lk", "g_B", "g_A", "g_som"), "output_pyramidal": ("g_lk", "g_B", "g_som"),
                "interneuron": ("g_lk", "g_D", "g_som")}[p.model]
        cells = [f"{g[k]:.4g}" if k in used else "-" for k in ("g_lk", "g_B", "g_A", "g_D", "g_som")]
        rows.append(f"| {p.name} | {p.model} | " + " | ".join(cells) + f" | {1.0 / gt:.4g} | {src} |")
    return "\n".join(rows)


# ----------------------------------------------------------------------------- builder
def _per_layer(v, n, what):
    if v is None:
        return [0.0] * n
    if np.isscalar(v):
        return [float(v)] * n
    v = [float(x) for x in v]
    if len(v) != n:
        raise CircuitError(f"dendritic_microcircuit: eta['{what}'] needs 1 or {n} values, got {len(v)}")
    return v


def dendritic_microcircuit(sizes=(9, 30, 3), *, preset="bern", latent_equilibrium=False,
                           activation="softplus", activation_params=None, top_down="fixed", eta=None,
                           tau_w=0.0, w_max=None, init="random", seed=0, sigma=0.0, weight_scale=1.0,
                           conductances=None, morphology=None, interneuron_morphology=None,
                           output_morphology=None, name="dendritic_microcircuit") -> Circuit:
    """Build the dendritic-error microcircuit (see module docstring for names).

    * sizes : [n_in, n_hidden..., n_out] (at least one hidden layer).
    * preset : "bern" (LE family) or "sacramento2018"; ``conductances`` overrides single values.
    * latent_equilibrium : neurons send phi(u + du/dt / g_tot) and interneurons are nudged by u_pros.
    * top_down : "fixed" (down weights frozen) or "learned" (Sacramento Eq. 10, rule
      ``target_prop``: dW_down = eta_down (phi(u_P) - phi(W_down r_up)) r_up^T).
    * eta : ``{"up": [per layer], "ip": scalar|list, "pi": scalar|list, "down": scalar|list}`` in 1/ms.
    * tau_w : low-pass of weight changes (ms; 0 = unfiltered). w_max : None, a scalar, or
      [hidden, output] clip (LE code: [4, 5]).
    * init : "random" (all weights U(-s, s), s = weight_scale) or "self_predicting" (up and down
      random, ip/pi in the closed form of the self-predicting state, see the microcircuit page
      of the docs, docs/models/microcircuit.md).
    * morphology, interneuron_morphology, output_morphology : bundled cell id (or SWC path) from
      which the hidden pyramids', interneurons' and output pyramids' conductances are derived
      (``morphology.derive_conductances``; explicit ``conductances`` still win).
    """
    sizes = [int(s) for s in sizes]
    if len(sizes) < 3:
        raise CircuitError("dendritic_microcircuit: sizes needs input, >= 1 hidden and output, e.g. [9, 30, 3]")
    if top_down not in ("fixed", "learned"):
        raise CircuitError(f"dendritic_microcircuit: top_down must be 'fixed' or 'learned', got '{top_down}'")
    if init not in ("random", "self_predicting"):
        raise CircuitError(f"dendritic_microcircuit: init must be 'random' or 'self_predicting', got '{init}'")
    if preset not in PRESETS:
        raise CircuitError(f"dendritic_microcircuit: unknown preset '{preset}'; use one of {list(PRESETS)}")
    N = len(sizes) - 1          # number of weight layers; hidden layers 1..N-1
    eta = dict(eta or {})
    unknown = set(eta) - {"up", "ip", "pi", "down"}
    if unknown:
        raise CircuitError(f"dendritic_microcircuit: unknown eta keys {sorted(unknown)}; use up, ip, pi, down")
    eta_up = _per_layer(eta.get("up"), N, "up")
    eta_ip = _per_layer(eta.get("ip"), N - 1, "ip")
    eta_pi = _per_layer(eta.get("pi"), N - 1, "pi")
    eta_down = _per_layer(eta.get("down"), N - 1, "down")
    if w_max is None:
        wmax = [0.0] * N
    elif np.isscalar(w_max):
        wmax = [float(w_max)] * N
    else:
        wm = [float(x) for x in w_max]
        wmax = [wm[0]] * (N - 1) + [wm[-1]]

    common = dict(preset=preset, activation=activation, latent_equilibrium=bool(latent_equilibrium),
                  sigma=sigma)
    if activation_params is not None:
        common["activation_params"] = list(activation_params)
    common.update(conductances or {})
    c = Circuit(name)
    c.add_population("input", "input", sizes[0])
    pyr = ["input"] + [f"pyr{k}" for k in range(1, N)] + ["output"]
    for k in range(1, N):
        extra = {"morphology": morphology} if morphology else {}
        c.add_population(pyr[k], "pyramidal", sizes[k], **common, **extra)
    # declaration order = update order of the sequential (Gauss-Seidel) scheme on this cyclic
    # graph: all pyramids bottom-up, then the interneurons, so that inter{k} is nudged by the
    # *current* step's potential of the pyramid above (as its dendrite sees the current rates of
    # pyr{k}); apical inputs then read the previous step (back edges).
    c.add_population("output", "output_pyramidal", sizes[N], **common,
                     **({"morphology": output_morphology} if output_morphology else {}))
    for k in range(1, N):
        extra = {"morphology": interneuron_morphology} if interneuron_morphology else {}
        c.add_population(f"inter{k}", "interneuron", sizes[k + 1], **common, **extra)

    rng = np.random.default_rng(seed)
    s = float(weight_scale)
    W_up = [rng.uniform(-s, s, (sizes[k], sizes[k - 1])) for k in range(1, N + 1)]
    W_down = [rng.uniform(-s, s, (sizes[k], sizes[k + 1])) for k in range(1, N)]
    W_ip = [rng.uniform(-s, s, (sizes[k + 1], sizes[k])) for k in range(1, N)]
    W_pi = [rng.uniform(-s, s, (sizes[k], sizes[k + 1])) for k in range(1, N)]
    if init == "self_predicting":
        from .models.pyramidal import conductances as _microcircuit_conductances
        for k in range(1, N):
            up_pop = c.population(pyr[k + 1])
            gu = _microcircuit_conductances(up_pop)
            gi = _microcircuit_conductances(c.population(f"inter{k}"))
            gA_next = gu["g_A"] if up_pop.model == "pyramidal" else 0.0
            fac = gu["g_B"] / (gu["g_lk"] + gu["g_B"] + gA_next) * (gi["g_lk"] + gi["g_D"]) / gi["g_D"]
            W_ip[k - 1] = W_up[k] * fac
            W_pi[k - 1] = -W_down[k - 1]

    def arr(W):
        return {"dist": "array", "value": W}

    def rule(name, e, **kw):
        if e == 0:
            return {"rule": "none"}
        d = {"rule": name, "eta": e}
        if tau_w:
            d["tau_w"] = tau_w
        d.update({k: v for k, v in kw.items() if v})
        return d

    for k in range(1, N + 1):
        c.add_projection(pyr[k - 1], pyr[k], "basal", name=f"up{k}", weights=arr(W_up[k - 1]),
                         plasticity=rule("urbanczik_senn", eta_up[k - 1], w_max=wmax[k - 1]))
    nud_sig = "u_pros" if latent_equilibrium else "u"
    for k in range(1, N):
        td = rule("target_prop", eta_down[k - 1]) if top_down == "learned" else {"rule": "none"}
        c.add_projection(pyr[k + 1], pyr[k], "apical", name=f"down{k}", weights=arr(W_down[k - 1]),
                         plasticity=td)
        c.add_projection(pyr[k], f"inter{k}", "dendrite", name=f"ip{k}", weights=arr(W_ip[k - 1]),
                         plasticity=rule("urbanczik_senn", eta_ip[k - 1]))
        c.add_projection(f"inter{k}", pyr[k], "apical", name=f"pi{k}", weights=arr(W_pi[k - 1]),
                         plasticity=rule("apical_homeostasis", eta_pi[k - 1]))
        c.add_projection(pyr[k + 1], f"inter{k}", "nudge", name=f"nudge{k}", signal=nud_sig,
                         connector={"kind": "one_to_one"}, weights={"dist": "constant", "value": 1.0})
    return c


def hidden_layers(prog_or_circuit) -> int:
    circuit = prog_or_circuit.circuit if isinstance(prog_or_circuit, Program) else prog_or_circuit
    return sum(1 for p in circuit.populations if p.name.startswith("pyr"))


def reflect(prog: Program) -> Program:
    """Put a compiled microcircuit into the closed-form self-predicting state
    (docs/models/microcircuit.md), in place:
    ``W_pi{k} = -W_down{k}``, ``W_ip{k}[j, :] = W_up{k+1}[j, :] * g_B/(g_lk+g_B+g_A)(j in layer
    k+1) * (g_lk+g_D)/g_D (interneuron j)``, using the per-neuron conductances of the program."""
    N1 = hidden_layers(prog)
    for k in range(1, N1 + 1):
        upper = f"pyr{k + 1}" if k < N1 else "output"
        su, si = prog.pop_slice(upper), prog.pop_slice(f"inter{k}")
        nr = prog.neuron
        att = nr["g0"][su] / (nr["g_lk"][su] + nr["g0"][su] + nr["g1"][su])
        inv = (nr["g_lk"][si] + nr["g0"][si]) / nr["g0"][si]
        prog.weight(f"ip{k}")[:] = prog.weight(f"up{k + 1}") * (att * inv)[:, None]
        prog.weight(f"pi{k}")[:] = -prog.weight(f"down{k}")
    prog.dw_filter[:] = 0.0
    return prog


# ----------------------------------------------------------------------------- stimuli and gates
class PatternSequence(Stimulus):
    """A sequence of patterns, each held ``hold_steps`` steps, starting at step ``start_step``.

    * patterns : (P, n) shared by the batch, or (P, n, batch) (one stream per batch copy).
    * tau_in : optional exponential low-pass (ms) of the switches (Sacramento: 3 ms), exact:
      ``x(t) = p_m + (x(t_m) - p_m) exp(-(t - t_m)/tau_in)`` on presentation m.

    Before ``start_step`` the first pattern's start value is given; after the last presentation
    the last pattern is held. ``delay_steps`` shifts the whole sequence (LE target delay).
    """

    def __init__(self, target, patterns, hold_steps, kind="rate", tau_in=0.0, start_step=0, x0=None,
                 name=None, delay_steps=0):
        super().__init__(target, kind=kind, name=name, delay_steps=delay_steps)
        p = np.asarray(patterns, float)
        if p.ndim == 2:
            p = p[:, :, None]
        self.patterns, self.hold, self.tau_in, self.start = p, int(hold_steps), float(tau_in), int(start_step)
        self.x0 = np.zeros_like(p[0]) if x0 is None else np.broadcast_to(np.asarray(x0, float).reshape(
            p.shape[1], -1), p[0].shape).copy()
        self._starts = None

    def _start_values(self, dt):
        if self._starts is None:
            P = self.patterns.shape[0]
            st = np.empty_like(self.patterns)
            x = self.x0
            a = math.exp(-self.hold * dt / self.tau_in) if self.tau_in > 0 else 0.0
            for m in range(P):
                st[m] = x
                x = self.patterns[m] + (x - self.patterns[m]) * a
            self._starts, self._end = st, x
        return self._starts

    def end_value(self, dt):
        self._start_values(dt)
        return self._end

    def _values(self, t, steps, dt):
        rel = steps - self.start
        P = self.patterns.shape[0]
        m = np.clip(rel // self.hold, 0, P - 1)
        x = self.patterns[m]
        if self.tau_in > 0:
            st = self._start_values(dt)
            tau_el = np.clip(rel - m * self.hold, 0, None) * dt
            x = x + (st[m] - x) * np.exp(-tau_el / self.tau_in)[:, None, None]
        return x


@dataclass
class PresentationGates:
    """Gates callable for :class:`~microcircuit.simulation.Simulation`: [nudging, plasticity]
    per step. In ``train`` mode plasticity is 0 for the first ``lag_steps`` steps after each
    pattern switch (the learning lag); ``eval`` mode turns nudging and plasticity off;
    ``free`` = nudging off, plasticity on (self-prediction without a target)."""
    hold_steps: int = 1
    lag_steps: int = 0
    start_step: int = 0
    mode: str = "train"

    def __call__(self, k0, k1):
        g = np.ones((k1 - k0, 2))
        if self.mode == "eval":
            g[:] = 0.0
        elif self.mode == "free":
            g[:, 0] = 0.0
        elif self.mode == "frozen":
            g[:, 1] = 0.0
        if self.mode in ("train", "free") and self.lag_steps > 0:
            rel = np.arange(k0, k1) - self.start_step
            g[(rel % self.hold_steps) < self.lag_steps, 1] = 0.0
        return g


# ----------------------------------------------------------------------------- runner
class MicrocircuitRunner:
    """Present patterns to a compiled microcircuit: training (nudged, plastic) and evaluation
    (no nudging, no plasticity) in ``batch`` parallel streams (each batch copy an independent
    network state; weight updates are the batch mean).

    t_pres : presentation time (ms). learning_lag : plasticity off for this long after each
    switch (ms). tau_in : input low-pass at switches (ms). target_delay : steps the target lags
    the input (default 1 under LE with the synchronous and published_microcircuit schemes, as the published
    LE code shifts it, see the LE variant in docs/models/microcircuit.md, else 0). scheme :
    "synchronous" (Jacobi), "published_microcircuit" (the published LE microcircuit code's step exactly,
    see ``microcircuit.compile``) or "sequential" (Gauss-Seidel: pyramids
    bottom-up, then interneurons; LE is then exact, no pipeline delay). out_lag : evaluation reads the output
    potential averaged from out_lag to t_pres (default: the last step under LE — u_pros — and
    t_pres/2 in the original model). sum_batch : multiply every learning rate by ``batch`` so
    that the batch-mean update equals the sum of the streams' online updates.
    """

    def __init__(self, circuit, *, dt=0.1, t_pres=10.0, batch=1, seed=0, learning_lag=0.0, tau_in=0.0,
                 target_delay=None, out_lag=None, backend="numba", scheme="synchronous", sum_batch=True):
        self.circuit = circuit
        self.le = bool(circuit.population("output").params.get("latent_equilibrium", False))
        self.dt, self.batch = float(dt), int(batch)
        self.hold = int(round(t_pres / dt))
        if self.hold < 1 or abs(self.hold * dt - t_pres) > 1e-9 * max(1.0, t_pres):
            raise CircuitError(f"t_pres = {t_pres} ms must be a whole number (>= 1) of steps of dt = {dt}")
        self.t_pres = t_pres
        self.tau_in = float(tau_in)
        # LE under the synchronous (Jacobi) scheme: the output sees the input N-1... steps late,
        # one step per layer; the target is shifted by one step (LE variant,
        # docs/models/microcircuit.md). No delay otherwise.
        self.target_delay = (1 if self.le and scheme in ("synchronous", "published_microcircuit") else 0) \
            if target_delay is None \
            else int(target_delay)
        self.out_lag = out_lag
        self.n_in = circuit.population("input").size
        self.n_out = circuit.population("output").size
        B = self.batch
        self.stim_in = PatternSequence("input", np.zeros((1, self.n_in, B)), self.hold, "rate", tau_in=self.tau_in)
        self.stim_tgt = PatternSequence("output", np.zeros((1, self.n_out, B)), self.hold, "target",
                                        delay_steps=self.target_delay)
        self.prog = compile_circuit(circuit, dt=dt, batch=B, seed=seed, scheme=scheme,
                                    stimuli=[self.stim_in, self.stim_tgt])
        if sum_batch and B > 1:   # batch mean -> sum: B streams learn as B online presentations
            self.prog.proj_float[:, PF_ETA] *= B
            self.prog.eta_scale = float(B)
        self.gates = PresentationGates(self.hold, int(round(learning_lag / dt)), 0, "train")
        self.backend = backend
        self._last_in = np.zeros((self.n_in, B))
        self._last_tgt = np.zeros((self.n_out, B))
        self.presentations = 0

    # streams: sample i -> (slot i // B, copy i % B)
    def _streams(self, x, n_feat):
        x = np.asarray(x, float)
        n = x.shape[0]
        P = -(-n // self.batch)
        pad = P * self.batch - n
        if pad:
            x = np.concatenate([x, x[:pad]])
        return x.reshape(P, self.batch, n_feat).transpose(0, 2, 1), n

    def present(self, x, u_tgt=None, *, mode="train", record=(), stride=1):
        """Present samples ``x`` (n, n_in) with targets ``u_tgt`` (n, n_out) (None: no
        nudging) in ``mode`` train | eval | free | frozen. Returns (Simulation, n, P)."""
        prog = self.prog
        xs, n = self._streams(x, self.n_in)
        P = xs.shape[0]
        if u_tgt is None:
            ts = np.zeros((P, self.n_out, self.batch))
            mode = {"train": "free", "frozen": "eval"}.get(mode, mode)   # no target: never nudge
        else:
            ts, _ = self._streams(u_tgt, self.n_out)
        if mode == "eval" or u_tgt is None:
            ts = ts * 0.0
        start = prog.step
        self.stim_in = PatternSequence("input", xs, self.hold, "rate", tau_in=self.tau_in, start_step=start,
                                       x0=self._last_in)
        self.stim_tgt = PatternSequence("output", ts, self.hold, "target", start_step=start,
                                        x0=self._last_tgt, delay_steps=self.target_delay)
        # the delayed target shows the previous sequence's last target for target_delay steps
        self.stim_tgt.patterns_prev = self._last_tgt
        prog.stimuli[0], prog.stimuli[1] = self.stim_in, _DelayedTarget(self.stim_tgt, self._last_tgt)
        self.gates.start_step, self.gates.mode = start, mode
        sim = Simulation(prog, recordings=list(record), gates=self.gates, backend=self.backend,
                         chunk_steps=max(self.hold, min(20000, 50 * self.hold)))
        sim.run(steps=P * self.hold)
        self._last_in = self.stim_in.end_value(self.dt) if self.tau_in > 0 else xs[-1]
        self._last_tgt = ts[-1]
        self.presentations += P
        return sim, n, P

    def train(self, x, u_tgt, *, epochs=1, rng=None, shuffle=True):
        rng = np.random.default_rng(rng)
        n = len(x)
        for _ in range(epochs):
            idx = rng.permutation(n) if shuffle else np.arange(n)
            self.present(np.asarray(x)[idx], np.asarray(u_tgt)[idx], mode="train")
        return self

    def predict(self, x, *, out_lag=None):
        """Output potentials (n, n_out) per sample without nudging or plasticity: u_pros at the
        last step of each presentation under LE, else mean u over [out_lag, t_pres)."""
        var = "u_pros" if self.le else "u"
        sim, n, P = self.present(x, None, mode="eval", record=[Recording("output", [var])])
        u = np.asarray(sim.results()["output"][var].values)         # (P*hold, B, n_out)
        u = u.reshape(P, self.hold, self.batch, self.n_out)
        lag = self.out_lag if out_lag is None else out_lag
        if self.le and lag is None:
            out = u[:, -1]
        else:
            lag_steps = int(round((0.5 * self.t_pres if lag is None else lag) / self.dt))
            lag_steps = min(max(lag_steps, 0), self.hold - 1)
            out = u[:, lag_steps:].mean(axis=1)
        return out.reshape(P * self.batch, self.n_out)[:n]

    def accuracy(self, x, y, **kw):
        return float(np.mean(np.argmax(self.predict(x, **kw), axis=1) == np.asarray(y)))


class _DelayedTarget(Stimulus):
    """A delayed PatternSequence whose first ``delay_steps`` steps show the previous target
    (continuity across present() calls) instead of the new sequence's start."""

    def __init__(self, seq: PatternSequence, prev):
        super().__init__(seq.target, kind=seq.kind, name=seq.name, delay_steps=0)
        self.seq, self.prev = seq, np.asarray(prev, float)

    def values(self, k0, k1, dt, n, batch):
        x = np.array(self.seq.values(k0, k1, dt, n, batch))
        early = np.arange(k0, k1) - self.seq.delay_steps < self.seq.start
        if early.any():
            x[early] = self.prev
        return x
