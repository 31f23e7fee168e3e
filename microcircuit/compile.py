"""Circuit -> Program: flat arrays and integer tables the kernel runs on.

Layout. Every per-neuron quantity lives in one flat array of ``N * B`` values per signal
(neuron-major, batch last), so the block of a population is a contiguous
``(n, B)`` view. Signals (rows): u, u_pros, r, phi', e, du/dt, v_proximal (basal/dendrite),
v_apical, epsilon, v_err (error-neuron membrane), u_tgt. Ports (dendritic inputs): proximal,
apical, nudge (u_tgt), somatic current.

Schedule (one step; see ``build_ops``). Each scheme is named for what it does; which published
code it reproduces step by step is said with it (tests/test_gle_e2e_semantics.py and
tests/test_published_microcircuit.py hold the transcriptions that prove it):

* ``synchronous`` — every population reads the previous step's signals (Jacobi), including the
  input population, whose rates of step k reach the first layer at step k+1: copy previous ->
  stimulus -> errors (from the previous state) -> forward -> this step's errors sent down
  (``W^T e``, through the weights this step used) -> plasticity. One step of pipeline delay per
  layer, forward and backward; every signal of step k is computed with the parameters of step k.
  This is the GLE reference code's loop (``unibe-cns/gle-code``: ``e_bottom = e W`` before the
  optimiser step), equal to it to 1e-12.
* ``published_microcircuit`` — the step of the published LE dendritic-microcircuit code
  (``unibe-cns/le_NeurIPS_code``, ``fig3fig5_dendritic_microcircuits``), equal to it to 1e-12:
  ``synchronous``, except that (1) the stimulus op runs before the previous-step copy, so the
  first layer sees the input of the *current* step; (2) microcircuit populations without latent
  equilibrium send and learn from ``phi(u_new)``, the rate of the potential after this step's
  update (``tau_r = dt``: ``u + dt du/dt``), as that code's ``apply()`` does before the next step
  reads ``phi(u_soma)``; (3) a nudged population keeps ``g_som`` in the ``g_tot`` of its dynamics
  while its nudging gate is off (``du/dt = g_tot (V_ss - u)``, ``V_ss`` without the nudge), and
  its LE time constant stays ``1/g_tot``. Under latent equilibrium the runner delays the target
  by one step as that code does (``MicrocircuitRunner``, ``target_delay``).
* ``sequential`` — populations in topological order read the current step's signals of
  populations already updated (back edges read the previous step); forward -> errors in
  reverse order -> plasticity. No pipeline delay on feed-forward paths: the better
  discretisation of the continuous-time models (LE is then exact), matching no published code.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .circuit import Circuit
from .checks import (array_shape, weight_shape_message, connector_shape_message,
                     error_source_problem, is_real_dtype, real_dtype_message, INPUT_CARRIES_R,
                     one_to_one_message, stimulus_kind_problem, second_rate_message)
from .errors import CircuitError
from .lowering import Lowering
from .registry import PLASTICITY_RULES, RULE_IDS, LOSS_IDS, TAU_RULE_IDS, OPTIMIZER_IDS  # noqa: F401 (re-exported)
from .layout import *  # noqa: F401,F403  (every engine name is layout's; compile uses and re-exports them)
from .stimuli import KIND_IDS, Stimulus


@dataclass
class Program:
    """Everything the kernel needs, as arrays; plus the names to label results."""
    dt: float
    batch: int
    scheme: str
    dtype: np.dtype
    n_total: int
    pop_names: list
    pop_models: list
    pop_int: np.ndarray
    pop_float: np.ndarray
    neuron: dict                      # per-neuron parameter arrays (N,)
    proj_names: list
    proj_int: np.ndarray
    proj_float: np.ndarray
    weights: np.ndarray               # flat: W blocks, fixed feedback blocks
    dw_filter: np.ndarray             # low-pass state of weight changes (tau_w)
    masks: np.ndarray
    ops: np.ndarray                   # (n_ops, 2): opcode, argument
    stimuli: list                     # Stimulus objects
    stim_int: np.ndarray              # (S, 4): pop_off, n, kind, column offset
    n_stim_cols: int
    state: np.ndarray                 # (N_SIG * N * B,) current signals
    prev: np.ndarray                  # previous-step signals
    ports: np.ndarray                 # (N_PORTS * N * B,)
    ext: np.ndarray                   # (N_EXT * N * B,): EXT_TARGET, EXT_CURRENT, EXT_ERROR, EXT_WTE rows
    seed: int = 0
    rng: np.random.Generator = None
    step: int = 0
    circuit: Circuit = None
    eta_scale: float = 1.0            # factor a runner applied to every eta (MicrocircuitRunner: batch, sum_batch)
    proj_index: dict = field(default_factory=dict)
    pop_index: dict = field(default_factory=dict)

    # ----------------------------------------------------------- convenience
    def pop_slice(self, name):
        i = self.pop_index[name]
        off, n = self.pop_int[i, PP_OFF], self.pop_int[i, PP_N]
        return slice(off, off + n)

    def signal(self, name, signal="r"):
        """Current value of a signal of a population, shape (batch, n) (a copy)."""
        code = SIGNAL_LABELS.index(signal)
        N, B = self.n_total, self.batch
        blk = self.state[code * N * B:(code + 1) * N * B].reshape(N, B)
        return blk[self.pop_slice(name)].T.copy()

    def weight(self, proj):
        """The weight matrix (n_post, n_pre) of a projection (a view into the flat array)."""
        j = self.proj_index[proj] if isinstance(proj, str) else proj
        row = self.proj_int[j]
        if row[PJ_TIED] >= 0:     # weights = {transpose_of = ...}: a transposed view of the forward weights
            return self.weight(int(row[PJ_TIED])).T
        off, npost, npre = row[PJ_W_OFF], row[PJ_NPOST], row[PJ_NPRE]
        if row[PJ_DIAG]:
            return self.weights[off:off + npost]
        return self.weights[off:off + npost * npre].reshape(npost, npre)

    def feedback_weight(self, proj):
        j = self.proj_index[proj] if isinstance(proj, str) else proj
        row = self.proj_int[j]
        if row[PJ_FB] != 2:
            return None
        off = row[PJ_FB_OFF]
        return self.weights[off:off + row[PJ_NPOST] * row[PJ_NPRE]].reshape(row[PJ_NPOST], row[PJ_NPRE])

    def tau_m(self, name):
        return 1.0 / self.neuron["g0"][self.pop_slice(name)]

    def describe_schedule(self) -> str:
        lines = []
        for op, arg in self.ops:
            if op in (OP_PROJECT, OP_BACKPROJECT, OP_PLASTICITY, OP_ERROR_PROJECT, OP_PROJECT_ERROR):
                lines.append(f"{OP_NAMES[op]:<20} {self.proj_names[arg]}")
            elif op == OP_COPY_PREV:
                lo, hi = int(arg) >> 31, int(arg) & 0x7FFFFFFF
                lines.append(f"{OP_NAMES[op]:<20} flat neurons [{lo}, {hi}) (signal * N + neuron, N = {self.n_total})")
            elif op == OP_CLEAR_PORTS:
                i, mask = int(arg) % len(self.pop_names), int(arg) // len(self.pop_names)
                lines.append(f"{OP_NAMES[op]:<20} {self.pop_names[i]} (ports mask {mask:04b})")
            elif op == OP_SOMA:
                lines.append(f"{OP_NAMES[op]:<20} {self.pop_names[int(arg) % len(self.pop_names)]}")
            elif op in (OP_ERROR, OP_POP_LEARN):
                lines.append(f"{OP_NAMES[op]:<20} {self.pop_names[arg]}")
            else:
                lines.append(OP_NAMES[op])
        return "\n".join(lines)


# ---------------------------------------------------------------------------- helpers
def _as_array(value, shape, where):
    """A list/number from a scenario -> float array, or CircuitError (the last guard; scenarios are
    checked with the same helper at load time)."""
    if isinstance(value, (np.ndarray, np.generic)):          # from Python: any real array
        if not is_real_dtype(value.dtype):
            raise CircuitError(f"{where}: " + real_dtype_message(value.dtype))
        got = value.shape
    else:
        got, problem = array_shape(value)
        if problem:
            raise CircuitError(f"{where}: {problem}")
    if shape is not None and tuple(got) != tuple(shape):
        raise CircuitError(f"{where}: expected shape {tuple(shape)}, got {tuple(got)}")
    return np.asarray(value, dtype=float)


def _init_weights(spec, shape, rng, where, base_dir=None):
    dist = spec.get("dist", "normal")
    if dist == "normal":
        return rng.normal(spec.get("mean", 0.0), spec.get("std", 0.05), shape)
    if dist == "uniform":
        if spec.get("low", -1.0) > spec.get("high", 1.0):
            raise CircuitError(f"{where}: weights.low is above weights.high; swap them")
        return rng.uniform(spec.get("low", -1.0), spec.get("high", 1.0), shape)
    if dist == "constant":
        return np.full(shape, _as_array(spec.get("value", 0.0), (), f"{where}: weights.value"))
    if dist == "zeros":
        return np.zeros(shape)
    if dist == "kaiming_uniform":  # PyTorch's default nn.Linear init: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
        bound = 1.0 / np.sqrt(shape[-1] if len(shape) > 1 else 1)
        return rng.uniform(-bound, bound, shape)
    if dist == "array":
        if "value" in spec:
            arr = _as_array(spec["value"], None, f"{where}: weights.value")
        else:
            from .stimuli import load_array
            from pathlib import Path
            path = Path(spec["file"])
            if base_dir is not None and not path.is_absolute():
                path = Path(base_dir) / path
            arr = np.asarray(load_array(path, spec.get("key"), where), dtype=float)
        if arr.shape != tuple(shape):
            raise CircuitError(f"{where}: " + weight_shape_message(arr.shape, shape))
        return arr.copy()
    raise CircuitError(f"{where}: unknown weight distribution '{dist}'; use one of normal, uniform, constant, "
                       f"zeros, kaiming_uniform, array")


def _tie_projection(circuit, j, pr, by_name, proj_int, pop_int, pop_index, offsets):
    """``weights = {transpose_of = "W"}``: the error projection err(l+1) -> err(l) uses W(l+1)^T, where
    W(l+1) projects rep(l) -> rep(l+1) and err(l), err(l+1) are the partners of rep(l), rep(l+1)."""
    where = f"projection '{pr.name}'"
    name = pr.weights["transpose_of"]
    if name not in by_name:
        raise CircuitError(f"{where}: weights.transpose_of names no projection '{name}'; projections are "
                           f"{list(by_name)}")
    k = by_name[name]
    fw = circuit.projection(name)
    if proj_int[k, PJ_DIAG] != 0 or "transpose_of" in fw.weights:
        raise CircuitError(f"{where}: weights.transpose_of = '{name}' must name a dense forward projection")
    partner_of = {offsets[p]: p for p in offsets}
    want_pre = partner_of.get(pop_int[pop_index[fw.post], PP_PARTNER])
    want_post = partner_of.get(pop_int[pop_index[fw.pre], PP_PARTNER])
    if (pr.pre, pr.post) != (want_pre, want_post):
        raise CircuitError(f"{where}: the transpose of '{name}' ({fw.pre} -> {fw.post}) carries errors from the "
                           f"error population of '{fw.post}' to that of '{fw.pre}' ({want_pre} -> {want_post}), "
                           f"not {pr.pre} -> {pr.post}")
    proj_int[j, PJ_TIED] = k
    proj_int[j, PJ_W_OFF] = proj_int[k, PJ_W_OFF]


def _is_error_pop(pop) -> bool:
    """A separate error population (cortical mapping, models/error.py)."""
    return pop.neuron_model.error_role == "population"


def _fuses_errors(pop) -> bool:
    """A population that computes its own errors e (LE/GLE rate neurons)."""
    return pop.neuron_model.error_role == "fused"


# ---------------------------------------------------------------------------- compile
def compile_circuit(circuit: Circuit, *, dt: float, batch: int = 1, scheme: str = "synchronous",
                    dtype="float64", seed: int = 0, stimuli=(), base_dir=None) -> Program:
    """Turn a :class:`Circuit` and its stimuli into a :class:`Program`: populations lower themselves
    (:mod:`microcircuit.lowering`), then projections, stimuli and the op table of one step."""
    if scheme not in SCHEMES:
        raise CircuitError(f"scheme must be one of {list(SCHEMES)}, got '{scheme}'")
    if dt <= 0:
        raise CircuitError(f"dt must be > 0, got {dt}")
    dtype = np.dtype(dtype)
    if dtype not in (np.float64, np.float32):
        raise CircuitError(f"dtype must be float64 or float32, got {dtype}")
    B = int(batch)
    ss_weights, ss_noise, ss_params = np.random.SeedSequence(seed).spawn(3)
    stimuli = list(stimuli)
    ctx = _lower_populations(circuit, float(dt), scheme, stimuli, ss_params)
    pt = _ProjectionTables(circuit, ctx, base_dir)
    w_rngs = [np.random.default_rng(s) for s in ss_weights.spawn(max(len(circuit.projections), 1))]
    for j, pr in enumerate(circuit.projections):
        pt.lower(j, pr, w_rngs[j])
    weights, masks, dw_size = pt.finish(dtype)
    stim_int, n_cols = _stimulus_table(circuit, stimuli, ctx)
    pops, projs, N = circuit.populations, circuit.projections, ctx.n_total
    ops = build_ops(circuit, pops, projs, pt.proj_int, ctx.pop_int, scheme, stim_int)
    state = np.zeros(N_SIG * N * B, dtype)
    prog = Program(dt=float(dt), batch=B, scheme=scheme, dtype=dtype, n_total=N,
                   pop_names=[p.name for p in pops], pop_models=[p.model for p in pops],
                   pop_int=ctx.pop_int, pop_float=ctx.pop_float,
                   neuron={k: v.astype(dtype) for k, v in ctx.neuron.items()},
                   proj_names=[p.name for p in projs], proj_int=pt.proj_int, proj_float=pt.proj_float,
                   weights=weights, dw_filter=np.zeros(max(dw_size, 1), dtype), masks=masks, ops=ops,
                   stimuli=stimuli, stim_int=stim_int, n_stim_cols=n_cols, state=state, prev=state.copy(),
                   ports=np.zeros(N_PORTS * N * B, dtype), ext=np.zeros(N_EXT * N * B, dtype), seed=seed,
                   rng=np.random.default_rng(ss_noise), circuit=circuit,
                   proj_index={p.name: j for j, p in enumerate(projs)}, pop_index=ctx.pop_index)
    init_state(prog)
    return prog


def _lower_populations(circuit, dt, scheme, stimuli, ss_params) -> Lowering:
    """Offsets, the population tables and per-neuron arrays: each model lowers its populations."""
    pops = circuit.populations
    offsets, N = {}, 0
    for p in pops:
        offsets[p.name] = N
        N += p.size
    P = len(pops)
    pop_int = np.zeros((P, N_PP_COLS), np.int64)
    pop_int[:, PP_TAU_OPT_OFF] = -1
    pop_int[:, PP_PARTNER] = -1
    neuron = {k: np.zeros(N) for k in ("g_lk", "g0", "g1", "g_nud", "tau_r", "gamma", "sigma", "bias",
                                       "err_tau")}
    ctx = Lowering(circuit=circuit, dt=dt, scheme=scheme, offsets=offsets,
                   pop_index={p.name: i for i, p in enumerate(pops)}, pop_int=pop_int,
                   pop_float=np.zeros((P, N_PPF_COLS), np.float64), neuron=neuron,
                   targeted={s.target for s in stimuli if s.kind == "target"},
                   nudged_by_proj={pr.post for pr in circuit.projections if pr.target == "nudge"},
                   rngs={p.name: np.random.default_rng(s) for p, s in zip(pops, ss_params.spawn(P))},
                   n_total=N)
    for i, p in enumerate(pops):
        m = p.neuron_model
        pop_int[i, PP_OFF], pop_int[i, PP_N] = offsets[p.name], p.size
        pop_int[i, PP_INPUT] = int(m.is_input)
        if m.lower is not None:
            m.lower(ctx, i, p)     # the model fills its rows (models/*.py, microcircuit.lowering)
    return ctx


def _check_projection(pr, pre, post, where):
    """What a projection may connect and carry (the last guard; scenarios are checked at load time)."""
    if pr.signal not in ("r", "u", "u_pros", "e"):
        raise CircuitError(f"{where}: signal must be r, u, u_pros or e, got '{pr.signal}'")
    if pre.neuron_model.is_input and pr.signal != "r":
        raise CircuitError(f"{where}: {INPUT_CARRIES_R}")
    if _is_error_pop(pre) != (pr.signal == "e"):
        raise CircuitError(f"{where}: signal 'e' is carried by error populations (model error) only, and an "
                           f"error population carries only 'e'; set signal = \"e\" on projections from "
                           f"'{pr.pre}'" if _is_error_pop(pre) else
                           f"{where}: signal 'e' needs an error population as pre ('{pr.pre}' is {pre.model})")
    if _is_error_pop(post) and pr.rule != "none":
        # inputs of an error population: top-down errors (W^T e: weights = {transpose_of = "W"}, or a
        # fixed B) and fixed comparisons of rates (e.g. +beta r_teacher, -beta r_student: a mimic loss)
        raise CircuitError(f"{where}: projections into an error population are fixed; remove the plasticity "
                           f"(rule '{pr.rule}')")
    if pr.rule not in RULE_IDS:
        raise CircuitError(f"{where}: unknown plasticity rule '{pr.rule}'; use one of {list(RULE_IDS)}")


def _connectivity(pr, shape, rng, where):
    """The 0/1 mask of a sparse connector (None: dense or one-to-one)."""
    kind = pr.connector.get("kind", "all_to_all")
    if kind == "from_array":
        arr = _as_array(pr.connector.get("array"), None, f"{where}: connector.array")
        if arr.shape != shape:
            raise CircuitError(f"{where}: " + connector_shape_message(arr.shape, shape))
        return (arr != 0).astype(float)
    if kind == "fixed_probability":
        p_conn = float(pr.connector.get("p", 1.0))
        if not 0 <= p_conn <= 1:
            raise CircuitError(f"{where}: connector.p must be in [0, 1], got {p_conn}")
        return (rng.random(shape) < p_conn).astype(float)
    if kind in ("all_to_all", "one_to_one"):
        return None
    raise CircuitError(f"{where}: unknown connector '{kind}'; use all_to_all, one_to_one, "
                       f"fixed_probability or from_array")


class _ProjectionTables:
    """The projection tables and the flat weight / mask / filter-state blocks, one projection at a time."""

    def __init__(self, circuit, ctx, base_dir):
        J = len(circuit.projections)
        self.circuit, self.ctx, self.base_dir = circuit, ctx, base_dir
        self.proj_int = np.full((J, N_PJ_COLS), -1, np.int64)
        self.proj_float = np.zeros((J, N_PF_COLS))
        self.w_blocks, self.mask_blocks = [], []
        self.w_size = self.mask_size = self.dw_size = 0
        self.tied = []

    def _add_weights(self, W):
        off = self.w_size
        self.w_blocks.append(W.ravel())
        self.w_size += W.size
        return off

    def lower(self, j, pr, rng):
        ctx, circuit = self.ctx, self.circuit
        pre, post = circuit.population(pr.pre), circuit.population(pr.post)
        where = f"projection '{pr.name}'"
        row = self.proj_int[j]
        row[PJ_PRE_OFF], row[PJ_NPRE] = ctx.offsets[pr.pre], pre.size
        row[PJ_POST_OFF], row[PJ_NPOST] = ctx.offsets[pr.post], post.size
        row[PJ_POST_POP] = ctx.pop_index[pr.post]
        row[PJ_PORT] = post.neuron_model.ports[pr.target]
        _check_projection(pr, pre, post, where)
        row[PJ_SIGNAL] = SIGNAL_NAMES[pr.signal]
        kind = pr.connector.get("kind", "all_to_all")
        if "transpose_of" in pr.weights:
            # weights tied to a forward projection (exact weight transport): no block of its own
            if not _is_error_pop(post) or kind != "all_to_all":
                raise CircuitError(f"{where}: weights.transpose_of ties an all_to_all projection between error "
                                   f"populations to a forward weight; '{pr.post}' is {post.model}, connector {kind}")
            row[PJ_DIAG], row[PJ_RULE], row[PJ_FB] = 0, 0, 0
            self.tied.append((j, pr))
            return
        if kind == "one_to_one" and pre.size != post.size:
            raise CircuitError(f"{where}: " + one_to_one_message(pre.size, post.size))
        row[PJ_DIAG] = int(kind == "one_to_one")
        shape = (post.size,) if row[PJ_DIAG] else (post.size, pre.size)
        W = _init_weights(pr.weights, shape, rng, where, self.base_dir)
        mask = _connectivity(pr, shape, rng, where)
        if mask is not None:
            W = W * mask
            row[PJ_MASK_OFF] = self.mask_size
            self.mask_blocks.append(mask.ravel())
            self.mask_size += mask.size
        row[PJ_W_OFF] = self._add_weights(W)
        self._plasticity(j, pr, W.size, where)
        self._feedback(j, pr, pre, post, shape, rng, where)

    def _plasticity(self, j, pr, n_w, where):
        """Rule, rates, weight-change filter and optimiser (their state in dw_filter)."""
        row, rule, pl = self.proj_int[j], pr.rule, pr.plasticity
        row[PJ_RULE] = RULE_IDS[rule]
        self.proj_float[j] = [float(pl.get("eta", 0.0)), float(pl.get("tau_w", 0.0)),
                              float(pl.get("w_max", 0.0)), float(pl.get("t_on", 0.0)),
                              float(pl.get("t_off", np.inf)), 0.0, 0.0, 0.0, 0.0, 0.0]
        if rule != "none" and pl.get("tau_w", 0.0) > 0:
            row[PJ_DW_OFF] = self.dw_size
            self.dw_size += n_w
        opt = pl.get("optimizer", "sgd") or "sgd"
        if opt not in OPTIMIZER_IDS:
            raise CircuitError(f"{where}: unknown optimizer '{opt}'; use one of {list(OPTIMIZER_IDS)}")
        if rule != "none" and opt != "sgd":
            # optimiser state lives in dw_filter: momentum/first moment block, then (Adam) second moment
            pf = self.proj_float[j]
            pf[PF_OPT] = OPTIMIZER_IDS[opt]
            pf[PF_OPT_A] = float(pl.get("momentum", 0.9) if opt == "momentum" else pl.get("beta1", 0.9))
            pf[PF_OPT_B] = float(pl.get("beta2", 0.999))
            pf[PF_OPT_EPS] = float(pl.get("eps", 1e-8))
            row[PJ_OPT_OFF] = self.dw_size
            self.dw_size += n_w * (2 if opt == "adam" else 1)
        if rule == "error":
            src = pl.get("error_source")
            ip = self.ctx.pop_index[pr.post]
            if src is not None:
                pops = self.circuit.populations
                msg = error_source_problem(src, pr.post, self.circuit.population(pr.post).size,
                                           {q.name: (q.model, q.size) for q in pops})
                if msg:
                    raise CircuitError(f"{where}: plasticity.error_source {msg}")
                row[PJ_ERR_OFF] = self.ctx.offsets[src]
            elif self.ctx.pop_int[ip, PP_PARTNER] >= 0:
                row[PJ_ERR_OFF] = self.ctx.pop_int[ip, PP_PARTNER]

    def _feedback(self, j, pr, pre, post, shape, rng, where):
        """Where the post population's errors go back through: W^T, a fixed random B, or nowhere."""
        row, fb = self.proj_int[j], pr.feedback
        if fb == "auto":
            fb = "transpose" if (_fuses_errors(post) and pr.target == "basal" and pr.signal == "r") else "none"
        if pre.neuron_model.is_input:
            fb = "none"          # nothing to send errors to
        if self.ctx.pop_int[self.ctx.pop_index[pr.pre], PP_PARTNER] >= 0 and _fuses_errors(pre):
            # errors of 'pre' come from its partner error population (cortical mapping)
            if pr.feedback not in ("auto", "none"):
                raise CircuitError(f"{where}: feedback = '{pr.feedback}', but '{pr.pre}' has an error population; "
                                   f"route errors through projections between error populations and set "
                                   f"feedback = \"none\"")
            fb = "none"
        row[PJ_FB] = FEEDBACK_IDS[fb]
        if fb != "none" and row[PJ_DIAG]:
            raise CircuitError(f"{where}: error feedback needs a dense connector")
        if fb == "random":
            row[PJ_FB_OFF] = self._add_weights(rng.normal(0.0, pr.feedback_std, shape))

    def finish(self, dtype):
        """Tie transposed projections, place the tau_m optimiser state; -> (weights, masks, dw size)."""
        ctx = self.ctx
        by_name = {pr.name: j for j, pr in enumerate(self.circuit.projections)}
        for j, pr in self.tied:
            _tie_projection(self.circuit, j, pr, by_name, self.proj_int, ctx.pop_int, ctx.pop_index, ctx.offsets)
        weights = np.concatenate(self.w_blocks).astype(dtype) if self.w_blocks else np.zeros(0, dtype)
        for i, p in enumerate(self.circuit.populations):   # tau_m optimiser state (2 values per neuron)
            if ctx.pop_float[i, PPF_TOPT] != 0 and ctx.pop_int[i, PP_TAU_RULE] != 0:
                ctx.pop_int[i, PP_TAU_OPT_OFF] = self.dw_size
                self.dw_size += 2 * p.size
        masks = np.concatenate(self.mask_blocks).astype(dtype) if self.mask_blocks else np.zeros(1, dtype)
        return weights, masks, self.dw_size


def _stimulus_table(circuit, stimuli, ctx):
    """stim_int rows (ST_* columns) and the number of value columns of a chunk's stimulus block."""
    stim_int = np.zeros((len(stimuli), N_ST_COLS), np.int64)
    col = 0
    for s_i, s in enumerate(stimuli):
        if not isinstance(s, Stimulus):
            raise CircuitError(f"stimulus {s_i}: expected a Stimulus object, got {type(s).__name__}")
        if s.target not in ctx.pop_index:
            raise CircuitError(f"stimulus '{s.name}': target names no population '{s.target}'; populations "
                               f"are {list(ctx.pop_index)}")
        tp = circuit.population(s.target)
        problem = stimulus_kind_problem(s.target, s.kind, tp.model, tp.neuron_model.is_input)
        if problem:
            raise CircuitError(f"stimulus '{s.name}': {problem}")
        if s.kind == "rate":
            other = [o.name for o in stimuli[:s_i] if isinstance(o, Stimulus) and o.kind == "rate"
                     and o.target == s.target]
            if other:
                raise CircuitError(f"stimulus '{s.name}': " + second_rate_message(s.target, f"stimulus '{other[0]}'"))
        stim_int[s_i] = [ctx.offsets[s.target], tp.size, KIND_IDS[s.kind], col]
        col += tp.size
    return stim_int, col


def hold_input_rate(prog: Program, population: str, values):
    """Set an input population's rate (and u, u_pros) to ``values`` (scalar or per neuron) in the
    current and the previous-step signals, so that the very next step — which reads the previous step
    in the synchronous scheme — already sees it (e.g. a bias unit held at rate 1)."""
    N, B = prog.n_total, prog.batch
    sl = prog.pop_slice(population)
    val = np.repeat(np.broadcast_to(np.asarray(values, float), (sl.stop - sl.start,)), B)
    for code in (SIG_U, SIG_UPROS, SIG_R):
        for buf in (prog.state, prog.prev):
            buf[code * N * B + sl.start * B:code * N * B + sl.stop * B] = val
    return prog


def init_state(prog: Program):
    """Initial state: u = 0 everywhere, rates phi(0) (so a network starts at rest)."""
    from .activations import phi_np, dphi_np
    N, B = prog.n_total, prog.batch
    prog.state[:] = 0
    prog.ext[EXT_WTE * N * B:] = 0   # the error input sent down by the last step (synchronous scheme)
    st = prog.state.reshape(N_SIG, N, B)
    for i in range(len(prog.pop_names)):
        if prog.pop_int[i, PP_INPUT]:
            continue
        off, n = prog.pop_int[i, PP_OFF], prog.pop_int[i, PP_N]
        a = prog.pop_int[i, PP_ACT]
        p = prog.pop_float[i, PPF_A0:PPF_A2 + 1]
        st[SIG_R, off:off + n] = phi_np(np.zeros((n, B)), a, p)
        st[SIG_RP, off:off + n] = dphi_np(np.zeros((n, B)), a, p)
    prog.prev[:] = prog.state


def build_ops(circuit, pops, projs, proj_int, pop_int, scheme, stim_int=None):
    """The op table of one step (see module docstring): three short schedule builders (forward,
    copy_prev, errors) composed by scheme at the end."""
    index = {p.name: i for i, p in enumerate(pops)}
    order = [index[n] for n in circuit.order()]
    incoming = {i: [] for i in range(len(pops))}
    outgoing_fb = {i: [] for i in range(len(pops))}
    for j, pr in enumerate(projs):
        incoming[index[pr.post]].append(j)
        if proj_int[j, PJ_FB] != 0:
            outgoing_fb[index[pr.pre]].append(j)
    # error populations (cortical mapping) run in the error phase in place of their partner
    neurons = [i for i in order if not pop_int[i, PP_INPUT] and not _is_error_pop(pops[i])]
    by_off = {int(pop_int[i, PP_OFF]): i for i in range(len(pops)) if _is_error_pop(pops[i])}
    # only LE/GLE rate neurons carry errors e; microcircuit neurons learn from dendritic potentials
    error_pops = [by_off[int(pop_int[i, PP_PARTNER])] if pop_int[i, PP_PARTNER] >= 0 else i
                  for i in neurons if _fuses_errors(pops[i])]

    def forward():
        ops = []
        for i in neurons:
            # clear only the ports projections write; the others stay at their initial 0
            mask = 0
            for j in incoming[i]:
                mask |= 1 << int(proj_int[j, PJ_PORT])
            if mask:
                ops.append((OP_CLEAR_PORTS, i + len(pops) * mask))
            # the soma reads only inputs that something writes: ports (bits 0-3), stimulus target
            # (bit 4) and current (bit 5); the rest stay 0
            inputs = mask
            for off, n, kind, col in (stim_int if stim_int is not None else ()):
                if off == pop_int[i, PP_OFF]:
                    inputs |= (1 << IN_TARGET) if kind == KIND_IDS["target"] else \
                        (1 << IN_EXT_CURRENT) if kind == KIND_IDS["current"] else 0
            ops += [(OP_PROJECT_ERROR if proj_int[j, PJ_SIGNAL] == SIGNAL_NAMES["e"] else OP_PROJECT, j)
                    for j in incoming[i]]
            if stim_int is None:          # unknown stimuli: read both ext inputs
                inputs |= (1 << IN_TARGET) | (1 << IN_EXT_CURRENT)
            ops.append((OP_SOMA, i + len(pops) * inputs))
        return ops

    def copy_prev():
        # Only the (signal, population) rows a later op reads from the previous-step buffer R:
        # projections (and their plasticity) read their signal of the pre population, feedback reads
        # e of the post population, an error op reads r, phi', u_pros of its rate population (the
        # partner of an error population) and e stays copied for every rate/error population. u of
        # most populations and everything of an input population except what it sends is never read:
        # at batch 128 the copy is a tenth of the step, so it is kept to what is needed (a test
        # compares against copying everything, bit for bit).
        # Each op copies one range [lo, hi) of flat neuron indices (signal * N + neuron), packed as
        # lo << COPY_SHIFT | hi; adjacent ranges are merged.
        N = int(pop_int[:, PP_N].sum()) if len(pops) else 0
        need = set()
        rule_of_id = {e.id: e for e in PLASTICITY_RULES.values()}
        for j, pr in enumerate(projs):
            need.add((int(proj_int[j, PJ_SIGNAL]), index[pr.pre]))
            if proj_int[j, PJ_FB] != 0:
                need.add((SIGNAL_NAMES["e"], index[pr.post]))
            for sig, side in rule_of_id[int(proj_int[j, PJ_RULE])].reads_prev:   # registry.py
                need.add((SIGNAL_NAMES[sig], index[pr.pre if side == "pre" else pr.post]))
        for i, p in enumerate(pops):
            if p.neuron_model.error_role != "none":
                need.add((SIGNAL_NAMES["e"], i))
            if _fuses_errors(p):
                need |= {(SIGNAL_NAMES["r"], i), (SIGNAL_NAMES["phi_prime"], i), (SIGNAL_NAMES["u_pros"], i)}
        ranges = []
        for sig in range(N_PREV):
            for i in range(len(pops)):
                if (sig, i) not in need:
                    continue
                lo = sig * N + int(pop_int[i, PP_OFF])
                hi = lo + int(pop_int[i, PP_N])
                if ranges and ranges[-1][1] == lo:
                    ranges[-1][1] = hi
                else:
                    ranges.append([lo, hi])
        return [(OP_COPY_PREV, (lo << COPY_SHIFT) | hi) for lo, hi in ranges if hi > lo]

    def errors():
        ops = []
        for i in reversed(error_pops):
            if _is_error_pop(pops[i]):
                ops += [(OP_ERROR_PROJECT, j) for j in incoming[i]]
            ops += [(OP_BACKPROJECT, j) for j in outgoing_fb[i]]
            ops.append((OP_ERROR, i))
        return ops

    ops = []
    jacobi = SCHEMES[scheme] in (0, 2)
    if SCHEMES[scheme] == 2:
        ops.append((OP_STIM, 0))       # the input of this step reaches the first layer now
    if jacobi:
        ops += copy_prev()
    if SCHEMES[scheme] != 2:
        ops.append((OP_STIM, 0))
    if jacobi:
        # The error ops read the error input the previous step sent down; this step's errors are
        # sent at its end, before plasticity changes W: W_k^T e_k reaches the layer below at step
        # k+1 (sending it at k+1 would use W_{k+1}, one optimiser step later).
        err = errors()
        ops += [o for o in err if o[0] == OP_ERROR] + forward() + [o for o in err if o[0] != OP_ERROR]
    else:
        ops += forward() + errors()
    ops += [(OP_PLASTICITY, j) for j in range(len(projs)) if proj_int[j, PJ_RULE] != 0]
    ops += [(OP_POP_LEARN, i) for i in neurons]
    return np.asarray(ops, dtype=np.int64).reshape(-1, 2)
