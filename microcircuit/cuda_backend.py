"""GPU back end: the op table of :mod:`microcircuit.kernel` on Numba's CUDA target (``numba-cuda``).

:func:`run_chunk` has the signature of :func:`microcircuit.kernel.run_chunk`, so a
:class:`~microcircuit.simulation.Simulation` selects it with ``backend="cuda"`` exactly as it selects
the NumPy twin. The host (Python) runs the time loop of a chunk and launches one small CUDA kernel per
op and step (one thread per output element: a neuron and batch copy, a weight, a recorded value); the
device kernels repeat the arithmetic of ``kernel.py`` expression by expression, in the same order of
summation as its loop paths, so that under Numba's CUDA simulator (Python floats, the host's libm) the
results equal the CPU kernel's. On a real GPU the products and transcendental functions come from
NVVM / libdevice: NVVM contracts multiply-adds into FMAs and libdevice's ``exp``/``tanh`` differ from
glibc in the last bit, so results agree with the CPU kernel to rounding (relative 1e-15 per operation),
not bit for bit; the CPU kernel's BLAS path (products of >= 16384 multiply-adds) sums in another order
too.

Data movement, per chunk: every table and state array of the program is copied to device buffers
(allocated once per program, keyed on the host ``state`` array's identity and reused while shapes
match), the chunk runs, and the arrays the kernel mutates (state, prev, ports, ext, weights,
dw_filter, g0, bias, the recording buffer) are copied back, so that checkpoints, recordings and any
host-side change between chunks stay correct. Adam's update counters (``proj_float[:, PF_OPT_T]``,
``pop_float[:, PPF_TOPT_T]``) and bias corrections are kept on the host, which decides every conditional
launch (plasticity windows, gates) from the same values the CPU kernel tests.

Noise (``sigma > 0``): the normal draws come from the program's own NumPy generator, drawn on the host
in the CPU kernel's order (step, soma op, neuron, batch copy) and uploaded per block of steps, so a
noisy run equals the CPU run too. (After a divergence the generator has advanced to the end of the
block, not to the failing step: the run is over at that point anyway.)

Divergence: the first soma/error op whose output is not finite records its position (step and op) in
a device word with an atomic minimum; every later kernel of the chunk sees it and returns, so the
state is what the CPU kernel leaves, and ``status`` says the same (step, population, variable).

Verified without a GPU: the tests (tests/test_cuda_backend.py) run every model family under Numba's
CUDA simulator against the CPU kernel (deviation 0.0 in float64), and every kernel signature a run
uses compiles to PTX for sm_90 with libNVVM. Not measured: speed on a GPU
(benchmarks/bench_gpu.py). The host issues every launch (a few tens per step), so small circuits
are bound by that loop; a later version could batch the ops of a step into fewer kernels.
"""
from __future__ import annotations

import math
import os
import weakref

import numpy as np

from .errors import SimulationError
from .layout import *  # noqa: F401,F403  (table columns, signal rows, ext rows, opcodes, ids)

_TPB = 128                 # threads per block (fewer when an op has fewer elements)
_NO_FAIL = np.iinfo(np.int64).max
_NOISE_BLOCK = 1 << 22     # at most this many normal draws uploaded at once

_CUDA = None               # numba.cuda, once checked
_K = None                  # microcircuit.cuda_kernels, imported on first use
_CTX = {}                  # id(host state array) -> (weakref to it, _Context)


def cuda_problem():
    """Why ``backend = "cuda"`` cannot run here (a message naming the cause and the fix), or None."""
    try:
        from numba import cuda
    except ImportError as exc:
        return (f"backend 'cuda' needs the numba-cuda package ({exc}); install it with "
                f"pip install 'microcircuit[cuda]', or use backend = \"numba\"")
    try:
        ok = bool(cuda.is_available())
    except Exception:          # a broken driver or toolkit: the same answer as no device
        ok = False
    if not ok:
        return ("backend 'cuda': no CUDA GPU is available here (numba.cuda.is_available() is False: no device, "
                "no driver, or no CUDA toolkit for numba-cuda); on a GPU machine install the extra with "
                "pip install 'microcircuit[cuda]', here use backend = \"numba\"")
    return None


def check_available():
    """Raise :class:`~microcircuit.errors.SimulationError` when the CUDA back end cannot run here."""
    global _CUDA
    if _CUDA is not None:
        return _CUDA
    msg = cuda_problem()
    if msg:
        raise SimulationError(msg)
    from numba import cuda
    _quiet_occupancy_warnings()
    _CUDA = cuda
    return cuda


def _quiet_occupancy_warnings():
    """Most ops of a circuit launch fewer than 128 blocks (a population of 100 neurons is one block);
    numba-cuda warns about low occupancy at every such launch. Switched off unless the user set
    NUMBA_CUDA_LOW_OCCUPANCY_WARNINGS."""
    if "NUMBA_CUDA_LOW_OCCUPANCY_WARNINGS" in os.environ:
        return
    try:
        from numba.cuda.core import config
    except ImportError:
        from numba.core import config
    config.CUDA_LOW_OCCUPANCY_WARNINGS = 0


# --------------------------------------------------------------------------------------------------
# device code: microcircuit/cuda_kernels.py, imported on first use (importing this module does not
# import numba.cuda)

def _kernels():
    global _K
    if _K is None:
        check_available()
        from . import cuda_kernels
        _K = cuda_kernels
    return _K


# --------------------------------------------------------------------------------------------------
# host side

class _Launch:
    """A kernel with its launch configuration, configured at each call (Numba's CUDA simulator keeps one
    configuration per kernel, so configured kernels cannot be kept side by side)."""
    __slots__ = ("kern", "cfg")

    def __init__(self, kern, grid, tpb):
        self.kern, self.cfg = kern, (grid, tpb)

    def __call__(self, *args):
        self.kern[self.cfg](*args)


def _cfg(kern, n):
    """``kern`` configured for n threads (at least one block)."""
    n = max(int(n), 1)
    tpb = min(_TPB, n)
    return _Launch(kern, (n + tpb - 1) // tpb, tpb)


class _Context:
    """Device buffers of one program, reused while the host arrays keep their shapes."""

    def __init__(self, cuda):
        self.cuda = cuda
        self.bufs = {}

    def put(self, name, host):
        """Copy ``host`` to the device buffer ``name`` (allocated on first use or when the shape changes)."""
        host = np.ascontiguousarray(host)
        if host.size == 0:      # (no weights, no optimiser state, nothing recorded): never indexed
            host = np.zeros(1, host.dtype)
        d = self.bufs.get(name)
        if d is None or d.shape != host.shape or d.dtype != host.dtype:
            d = self.bufs[name] = self.cuda.to_device(host)
        else:
            d.copy_to_device(host)
        return d

    def empty(self, name, shape, dtype):
        d = self.bufs.get(name)
        shape = tuple(int(s) for s in np.atleast_1d(shape))
        if d is None or d.shape != shape or d.dtype != np.dtype(dtype):
            d = self.bufs[name] = self.cuda.device_array(shape, dtype)
        return d


def _context(state, cuda):
    key = id(state)
    hit = _CTX.get(key)
    if hit is not None and hit[0]() is state:
        return hit[1]
    ctx = _Context(cuda)
    _CTX[key] = (weakref.ref(state), ctx)
    weakref.finalize(state, _CTX.pop, key, None)
    return ctx


def _noise_layout(ops, pop_int, B):
    """Per op index: offset of its normal draws in a step's row (-1: none), and the row length."""
    npop = pop_int.shape[0]
    offs = np.full(ops.shape[0], -1, np.int64)
    m = 0
    for q in range(ops.shape[0]):
        if ops[q, 0] == OP_SOMA:
            i = ops[q, 1] % npop
            if pop_int[i, PP_NOISE] == 1:
                offs[q] = m
                m += int(pop_int[i, PP_N]) * B
    return offs, m


# kinds of plan entries (what the step loop does for an op)
_STATIC, _STIM, _SOMA, _ERROR, _PLAST, _POPLEARN = range(6)


def _plan(kern, ops, pop_int, pop_float, proj_int, proj_float, stim_int, d, Rd, scheme, dt, N, B, noise_off):
    """One entry per op of the table: the configured kernels and their arguments that do not change from
    step to step, so that the step loop only adds the step's gates and counters (host work per launch
    is most of a small circuit's step)."""
    NB = N * B
    sqdt = math.sqrt(dt)
    npop = pop_int.shape[0]
    S, P, X, ports, W = d["state"], d["prev"], d["ext"], d["ports"], d["W"]
    plan = []
    for q in range(ops.shape[0]):
        op = int(ops[q, 0])
        arg = int(ops[q, 1])
        if op == OP_COPY_PREV:     # copy neurons [lo, hi) of the signal rows to the previous-step buffer
            lo = (arg >> COPY_SHIFT) * B
            n = (arg & COPY_MASK) * B - lo
            plan.append((_STATIC, _cfg(kern.k_copy, n), (P, S, lo, n)))
        elif op == OP_STIM:   # stimuli: clear the ext regions they accumulate into, then write / accumulate
            clears, writes = [], []
            for s in range(stim_int.shape[0]):
                off, n, kind, col = (int(stim_int[s, c]) for c in (ST_POP_OFF, ST_N, ST_KIND, ST_COL))
                dst = off * B + (EXT_ROW_OF_KIND[kind] * NB if kind != STIM_RATE else 0)
                if kind != STIM_RATE:
                    clears.append((_cfg(kern.k_fill0, n * B), (X, dst, n * B)))
                writes.append((s, kind == STIM_RATE, _cfg(kern.k_stim, n * B), (S, X, d["stim"], col, off, n, kind, dst, B, NB)))
            plan.append((_STIM, clears, writes))
        elif op == OP_CLEAR_PORTS:   # clear the ports of a population that projections write
            pi = arg % npop
            n = int(pop_int[pi, PP_N]) * B
            plan.append((_STATIC, _cfg(kern.k_clear_ports, n), (ports, int(pop_int[pi, PP_OFF]) * B, n, arg // npop, NB)))
        elif op == OP_PROJECT or op == OP_PROJECT_ERROR:   # project (op 10: a projection carrying e reads the current step)
            plan.append((_STATIC,) + _project(kern, arg, proj_int, W, S if op == OP_PROJECT_ERROR else Rd, ports, NB, B))
        elif op == OP_SOMA:
            i = arg % npop
            inputs = arg // npop
            n = int(pop_int[i, PP_N])
            args = (int(pop_int[i, PP_OFF]), n, int(pop_int[i, PP_ACT]), int(pop_int[i, PP_TAUR_MODE]),
                    float(pop_float[i, PPF_A0]), float(pop_float[i, PPF_A1]), float(pop_float[i, PPF_A2]),
                    bool((inputs >> IN_APICAL) & 1), bool((inputs >> IN_NUDGE) & 1), bool((inputs >> IN_CURRENT) & 1),
                    bool((inputs >> IN_TARGET) & 1), bool((inputs >> IN_EXT_CURRENT) & 1), d["g_lk"], d["g0"], d["g1"], d["g_nud"], d["tau_r"], d["gamma"],
                    d["sigma"], d["bias"], S, ports, X, dt, sqdt, NB, B, bool(pop_int[i, PP_NOISE] == 1))
            plan.append((_SOMA, _cfg(kern.k_soma, n * B), args, bool(pop_int[i, PP_GATED] == 1), int(noise_off[q])))
        elif op == OP_ERROR:
            off = int(pop_int[arg, PP_OFF])
            n = int(pop_int[arg, PP_N])
            loss = int(pop_int[arg, PP_LOSS])
            sh = int(pop_int[arg, PP_PARTNER]) - off if pop_int[arg, PP_PARTNER] >= 0 else 0
            norm = (_cfg(kern.k_softmax_norm, B), (Rd, off, sh, n, B, NB, d["sm"])) if loss == LOSS_CROSS_ENTROPY else None
            args = (off, sh, n, loss, bool(pop_int[arg, PP_ERRMODE] == 1), d["g0"], d["err_tau"], S, Rd, X, dt, NB, B, d["sm"])
            plan.append((_ERROR, norm, _cfg(kern.k_error, n * B), args, float(pop_float[arg, PPF_BETA])))
        elif op == OP_BACKPROJECT:   # this step's errors down through W^T (or fixed B)
            pre_off, npre, post_off, npost = (int(proj_int[arg, c]) for c in (PJ_PRE_OFF, PJ_NPRE, PJ_POST_OFF, PJ_NPOST))
            woff = int(proj_int[arg, PJ_W_OFF] if proj_int[arg, PJ_FB] == FB_TRANSPOSE else proj_int[arg, PJ_FB_OFF])
            plan.append((_STATIC, _cfg(kern.k_tproduct, npre * B),
                         (W, woff, npost, npre, S, SIG_E * NB + post_off * B, X, EXT_WTE * NB + pre_off * B, B)))
        elif op == OP_PLASTICITY:
            plan.append((_PLAST,) + _plasticity_plan(kern, arg, proj_int, proj_float, pop_int, pop_float, d, Rd,
                                                     dt, NB, B))
        elif op == OP_POP_LEARN:
            plan.append((_POPLEARN,) + _pop_learn_plan(kern, arg, pop_int, pop_float, d, dt, NB, B))
        elif op == OP_ERROR_PROJECT:   # cortical mapping: errors between error populations
            plan.append((_STATIC,) + _error_project(kern, arg, proj_int, W, S, X, NB, B))
        else:
            raise SimulationError(f"backend 'cuda': opcode {op} is not implemented on the GPU")
    return plan


def run_chunk(k0, K, dt, N, B, scheme, ops, pop_int, pop_float, g_lk, g0, g1, g_nud, tau_r, gamma,
              sigma, bias, err_tau, proj_int, proj_float, W, dwf, masks, state, prev, ports, ext,
              stim_int, stim, stim_row, gates, rec_int, rec_idx, rec_buf, rng, status):
    """Run K steps from step k0 on the GPU; same arguments and effects as :func:`kernel.run_chunk`."""
    kern = _kernels()
    ctx = _context(state, _CUDA)
    NB = N * B
    npop = pop_int.shape[0]
    n_ops = ops.shape[0]
    dt = float(dt)
    # device copies (see the module docstring: everything in, the mutated arrays out)
    d = {name: ctx.put(name, a) for name, a in (
        ("g_lk", g_lk), ("g0", g0), ("g1", g1), ("g_nud", g_nud), ("tau_r", tau_r), ("gamma", gamma),
        ("sigma", sigma), ("bias", bias), ("err_tau", err_tau), ("W", W), ("dwf", dwf), ("masks", masks),
        ("state", state), ("prev", prev), ("ports", ports), ("ext", ext), ("stim", stim),
        ("rec_int", rec_int), ("rec_idx", rec_idx))}
    Rd = d["state"] if scheme == SCHEME_SEQUENTIAL else d["prev"]     # 0 synchronous, 2 published_microcircuit: previous step
    d_rec = ctx.empty("rec_buf", rec_buf.shape, rec_buf.dtype)
    stat = ctx.put("stat", np.full(1, _NO_FAIL, np.int64))
    max_n = max([1] + [int(v) for v in pop_int[:, PP_N]])
    d["pf"] = ctx.empty("pf", max_n * B, state.dtype)
    d["sm"] = ctx.empty("sm", max(B, 1), np.float64)
    noise_off, m_noise = _noise_layout(ops, pop_int, B)
    nz = ctx.empty("noise0", 1, np.float64)
    seg = max(1, _NOISE_BLOCK // max(m_noise, 1))
    plan = _plan(kern, ops, pop_int, pop_float, proj_int, proj_float, stim_int, d, Rd, scheme, dt, N, B, noise_off)
    # Adam counters: counted on the host (snapshot: a divergence rolls back the counts after it)
    pf_t0, ppf_t0 = proj_float[:, PF_OPT_T].copy(), pop_float[:, PPF_TOPT_T].copy()
    counts = []           # (seq, table, row) of every counted optimiser update
    n_rec = rec_int.shape[0]
    if n_rec:
        width = max(1, int((rec_int[:, REC_NSEL] * B).max()))
        tpb = min(_TPB, width)
        rec_cfg = _Launch(kern.k_record, ((width + tpb - 1) // tpb, n_rec), tpb)
        rec_args = (B, NB, d["rec_int"], d["rec_idx"], d_rec, d["state"])
        rec_next = {int(st): ((k0 + int(st) - 1) // int(st)) * int(st) - k0 for st in np.unique(rec_int[:, REC_STRIDE])}
    stim_rows = stim_row.tolist()
    gate_rows = gates.tolist()
    for kk in range(K):
        t = (k0 + kk) * dt
        if m_noise and kk % seg == 0:     # this block's normal draws, in the CPU kernel's order
            nz = ctx.put("noise", rng.standard_normal((min(seg, K - kk), m_noise)).ravel())
        nz_row = (kk % seg) * m_noise
        g_nudge, g_plast = gate_rows[kk][GATE_NUDGE], gate_rows[kk][GATE_PLASTICITY]
        seq = kk * n_ops
        for entry in plan:
            kind = entry[0]
            if kind == _STATIC:
                entry[1](*entry[2], stat, seq)
            elif kind == _SOMA:
                _, launch, args, gated, noff = entry
                gn_gate = g_nudge if gated else 1.0
                launch(*args, gn_gate, scheme == SCHEME_PUBLISHED_MICROCIRCUIT and gn_gate != 1.0, nz, nz_row + noff if noff >= 0 else 0,
                       stat, seq)
            elif kind == _ERROR:
                _, norm, launch, args, beta = entry
                if norm is not None:
                    norm[0](*norm[1], stat, seq)
                launch(*args, beta * g_nudge, stat, seq)
            elif kind == _STIM:
                for launch, args in entry[1]:
                    launch(*args, stat, seq)
                row_now = stim_rows[kk]
                for s, held, launch, args in entry[2]:
                    row = row_now[s]
                    if held and kk > 0 and row == stim_rows[kk - 1][s]:
                        continue      # held input: the rates written last step are still in place
                    launch(*args, row, stat, seq)
            elif kind == _PLAST:
                _, j, eta, t_on, t_off, okind, oa, ob, pf_launch, pf_args, w_launch, w_args = entry
                if g_plast != 0.0 and eta != 0.0 and t_on <= t < t_off:
                    bc1, bc2 = 1.0, 1.0
                    if okind != 0:
                        bc1, bc2 = _bias_corrections(proj_float, j, PF_OPT_T, oa, ob)
                        counts.append((seq, 0, j))
                    pf_launch(*pf_args, stat, seq)
                    w_launch(*w_args, dt * eta * g_plast, bc1, bc2, stat, seq)
            else:   # _POPLEARN
                _, i, eta_b0, eta_t0, rule, okind, oa, ob, launch, args = entry
                if g_plast != 0.0 and (eta_b0 != 0.0 or (rule != 0 and eta_t0 != 0.0)):
                    eta_b = eta_b0 * g_plast
                    eta_t = eta_t0 * g_plast
                    if not (eta_b == 0.0 and (rule == 0 or eta_t == 0.0)):
                        bc1, bc2 = 1.0, 1.0
                        if okind != 0 and rule != 0 and eta_t != 0.0:
                            bc1, bc2 = _bias_corrections(pop_float, i, PPF_TOPT_T, oa, ob)
                            counts.append((seq, 1, i))
                        launch(*args, eta_b, eta_t, bc1, bc2, stat, seq)
            seq += 1
        if n_rec:
            due = False
            for st, nxt in rec_next.items():
                if nxt == kk:
                    due = True
                    rec_next[st] = nxt + st
            if due:
                rec_cfg(*rec_args, k0, kk, stat, seq)
    # results back to the host
    failed = int(stat.copy_to_host()[0])
    for name, host in (("state", state), ("prev", prev), ("ports", ports), ("ext", ext), ("W", W),
                       ("dwf", dwf), ("g0", g0), ("bias", bias)):
        if host.size:
            d[name].copy_to_host(host)
    if n_rec:
        d_rec.copy_to_host(rec_buf)
    if failed == _NO_FAIL:
        status[0] = K
        return
    kk, q = divmod(failed, n_ops)
    # the optimiser counts of the updates after the failing op never happened
    proj_float[:, PF_OPT_T] = pf_t0
    pop_float[:, PPF_TOPT_T] = ppf_t0
    for seq, table, row in counts:
        if seq < failed:
            if table == 0:
                proj_float[row, PF_OPT_T] += 1.0
            else:
                pop_float[row, PPF_TOPT_T] += 1.0
    status[0] = kk
    status[1] = 1
    if ops[q, 0] == OP_SOMA:
        status[2] = ops[q, 1] % npop
        status[3] = SIG_U
    else:
        status[2] = ops[q, 1]
        status[3] = SIG_E


_PJ_FIRST = (PJ_PRE_OFF, PJ_NPRE, PJ_POST_OFF, PJ_NPOST, PJ_PORT, PJ_SIGNAL, PJ_W_OFF)


def _project(kern, j, proj_int, W, src, ports, NB, B):
    pre_off, npre, post_off, npost, port, sig, woff = (int(proj_int[j, c]) for c in _PJ_FIRST)
    xo = sig * NB + pre_off * B
    yo = port * NB + post_off * B
    if proj_int[j, PJ_DIAG] == 1:
        return _cfg(kern.k_diag, npost * B), (W, woff, src, xo, ports, yo, npost, B)
    return _cfg(kern.k_product, npost * B), (W, woff, npost, npre, src, xo, ports, yo, B)


def _error_project(kern, j, proj_int, W, S, X, NB, B):
    pre_off, npre, post_off, npost, _, sig, woff = (int(proj_int[j, c]) for c in _PJ_FIRST)
    eo = sig * NB + pre_off * B
    ao = EXT_WTE * NB + post_off * B
    if proj_int[j, PJ_TIED] >= 0:      # tied to a forward W (npre, npost)
        return _cfg(kern.k_tproduct, npost * B), (W, woff, npre, npost, S, eo, X, ao, B)
    if proj_int[j, PJ_DIAG] == 1:
        return _cfg(kern.k_diag, npost * B), (W, woff, S, eo, X, ao, npost, B)
    return _cfg(kern.k_product, npost * B), (W, woff, npost, npre, S, eo, X, ao, B)


def _bias_corrections(table, row, col, a, b):
    """kernel._opt_count for a counted update: t += 1, (1 - a^t, 1 - b^t)."""
    table[row, col] += 1.0
    tt = float(table[row, col])
    return 1.0 - a ** tt, 1.0 - b ** tt


def _plasticity_plan(kern, j, proj_int, proj_float, pop_int, pop_float, d, R, dt, NB, B):
    pre_off, npre, post_off, npost, port, sig, woff = (int(proj_int[j, c]) for c in _PJ_FIRST)
    diag = bool(proj_int[j, PJ_DIAG] == 1)
    ip = int(proj_int[j, PJ_POST_POP])
    okind = int(proj_float[j, PF_OPT])
    oa, ob, oeps = float(proj_float[j, PF_OPT_A]), float(proj_float[j, PF_OPT_B]), float(proj_float[j, PF_OPT_EPS])
    eoff = int(proj_int[j, PJ_ERR_OFF]) if proj_int[j, PJ_ERR_OFF] >= 0 else post_off
    po = sig * NB + pre_off * B
    vsig = SIG_V1 if port == PORT_APICAL else SIG_V0
    pf_args = (int(proj_int[j, PJ_RULE]), npost, npre, post_off, eoff, port, vsig, po, woff, diag,
               int(pop_int[ip, PP_ACT]), float(pop_float[ip, PPF_A0]), float(pop_float[ip, PPF_A1]),
               float(pop_float[ip, PPF_A2]), d["g_lk"], d["g0"], d["g1"], d["W"], d["state"], R, NB, B, d["pf"])
    w_args = (npost, npre, po, woff, diag, int(proj_int[j, PJ_DW_OFF]), int(proj_int[j, PJ_MASK_OFF]),
              float(proj_float[j, PF_TAU_W]), float(proj_float[j, PF_W_MAX]), okind, int(proj_int[j, PJ_OPT_OFF]),
              oa, ob, oeps, dt, d["W"], d["dwf"], d["masks"], R, B, d["pf"])
    return (j, float(proj_float[j, PF_ETA]), float(proj_float[j, PF_T_ON]), float(proj_float[j, PF_T_OFF]), okind, oa, ob,
            _cfg(kern.k_post_factor, npost * B), pf_args, _cfg(kern.k_weights, npost if diag else npost * npre),
            w_args)


def _pop_learn_plan(kern, i, pop_int, pop_float, d, dt, NB, B):
    off, n = int(pop_int[i, PP_OFF]), int(pop_int[i, PP_N])
    rule = int(pop_int[i, PP_TAU_RULE])
    okind = int(pop_float[i, PPF_TOPT])
    oa, ob, oeps = float(pop_float[i, PPF_TOPT_A]), float(pop_float[i, PPF_TOPT_B]), float(pop_float[i, PPF_TOPT_EPS])
    esh = int(pop_int[i, PP_PARTNER]) - off if pop_int[i, PP_PARTNER] >= 0 else 0
    args = (off, n, rule, float(pop_float[i, PPF_TAU_MIN]), okind, int(pop_int[i, PP_TAU_OPT_OFF]), oa, ob, oeps, esh,
            d["g0"], d["bias"],
            d["state"], dt, NB, B, d["dwf"])
    return (i, float(pop_float[i, PPF_ETA_BIAS]), float(pop_float[i, PPF_ETA_TAU]), rule, okind, oa, ob, _cfg(kern.k_pop_learn, n), args)
