"""The Numba kernel: one compiled function owns the time loop of a chunk of steps.

It never sees a string, dict or graph: only the flat arrays and integer tables of a
:class:`~microcircuit.compile.Program`. Each step executes the op table row by row (a switch
on the opcode), so a new model is new opcodes, not a new kernel, and because the kernel does
not depend on the circuit, ``cache=True`` compiles it once per machine.

Equations per op (per neuron i, batch copy b; R = read buffer: previous step for the
synchronous scheme, current for the sequential one; ``backproject`` and ``error_project`` read
the current step's signals: in the synchronous scheme they run at the end of the step, so the
error input they fill is read by the next step's error op):

* ``soma``: ``v0 = port_prox + bias + gamma e``, ``g_tot = g_lk + g0 + g1 + g_nud``,
  ``du/dt = g0 v0 + g1 v_apical + g_nud u_tgt + I_ext - g_tot u``,
  ``u_pros = u + tau_r du/dt`` (``tau_r = 1/g_tot`` in LE-microcircuit mode),
  ``u <- u + dt du/dt + sigma sqrt(dt) xi``, ``r = phi(u_pros)``.
* ``error``: ``eps = phi'(R) * (sum W^T e_post) + eps_ext + beta e_trg``; error neuron
  ``dv/dt = (eps - v)/tau_r``, ``e = v + tau_m dv/dt`` (or ``e = eps``). A separate error
  population (cortical mapping, ``models/error.py``; ``pop_int[:, PP_PARTNER]`` = partner offset) reads
  phi', r, u_pros, tau_m, tau_r of its partner; ``error_project`` (``OP_ERROR_PROJECT``) fills its error input
  with ``W^T e`` (tied, ``proj_int[:, PJ_TIED]``), ``B e`` or fixed rate comparisons; ``project_error``
  (``OP_PROJECT_ERROR``) carries e into a port reading the current step; rule ``error`` and bias/tau learning
  read e of the error population (``proj_int[:, PJ_ERR_OFF]``, ``pop_int[:, PP_PARTNER]``).
* ``plasticity``: ``dW = dt eta <f_post r_pre^T>_batch`` with f_post = e (LE/GLE),
  ``r - phi(att v_port)`` (Urbanczik–Senn) or ``-v_apical`` (homeostatic), optionally low-passed
  with ``tau_w``, masked and clipped. Optional optimiser on the (filtered) estimate ``g``
  (``optimizer`` = momentum: ``m <- mu m + g``, step ``m``; adam: ``m <- b1 m + (1-b1) g``,
  ``v <- b2 v + (1-b2) g^2``, step ``(m/(1-b1^t)) / (sqrt(v/(1-b2^t)) + eps)``, t = number of
  applied updates); ``W += dt eta gate step``. Optimiser state lives in ``dwf`` (offset
  ``proj_int[:, PJ_OPT_OFF]``; tau_m state at ``pop_int[:, PP_TAU_OPT_OFF]``); the same optimisers serve tau_m
  learning.

Every row, column, opcode and id is named in :mod:`microcircuit.layout`.
"""
from __future__ import annotations

import math

import numpy as np
from numba import uint64 as _u   # _u(i): an index Numba need not wrap around (see _soma)

from .jit import njit
from .activations import phi, phi_and_dphi, phi_dphi_vector, is_vector_kind, padded_length
from .blas import gemm
from .layout import *  # noqa: F401,F403  (signal rows, ports, ext rows, opcodes, ids, table columns)

_BLAS_MIN_SIZE = 16384   # products of at least this many multiply-adds (n_post*n_pre*B) go to BLAS


@njit(cache=True, nogil=True, error_model='numpy')
def run_chunk(k0, K, dt, N, B, scheme, ops, pop_int, pop_float, g_lk, g0, g1, g_nud, tau_r, gamma,
              sigma, bias, err_tau, proj_int, proj_float, W, dwf, masks, state, prev, ports, ext,
              stim_int, stim, stim_row, gates, rec_int, rec_idx, rec_buf, rng, status):
    """Allocate the chunk's work arrays and run its steps (:func:`_run_steps`)."""
    max_n = 1
    for i in range(pop_int.shape[0]):
        max_n = max(max_n, pop_int[i, PP_N])
    # weight-sized block for the batched update of filtered/optimised/masked plasticity (B > 1)
    max_w = 1
    if B > 1:
        for j in range(proj_int.shape[0]):
            max_w = max(max_w, proj_int[j, PJ_NPRE] * proj_int[j, PJ_NPOST])
    m8 = padded_length(max_n * B)
    n_rec = rec_int.shape[0]
    _run_steps(k0, K, dt, N, B, scheme, ops, pop_int, pop_float, g_lk, g0, g1, g_nud, tau_r, gamma,
               sigma, bias, err_tau, proj_int, proj_float, W, dwf, masks, state, prev, ports, ext,
               stim_int, stim, stim_row, gates, rec_int, rec_idx, rec_buf, rng, status,
               np.zeros(max_n * B, dtype=state.dtype), np.zeros(m8), np.zeros(m8), np.zeros(m8), np.zeros(B),
               np.empty(max_w, dtype=state.dtype), np.zeros(2, dtype=state.dtype),
               np.empty(n_rec, np.int64), np.zeros(n_rec, np.int64), np.empty(n_rec, np.int64))


# Compiled without Numba's reference counting (_nrt=False): every array the steps use is allocated by
# run_chunk, and the helpers inlined below would otherwise add an atomic increment and decrement per
# array argument per op per step (measured: 10 % of a Bars microcircuit step). The option is Numba's
# internal one (numba.core.options.DefaultOptions._nrt); should a release drop it, the loop compiles
# with reference counting and runs as before, only slower.
try:
    from numba.core.options import DefaultOptions as _NumbaOptions
    _NO_REFCOUNTS = {"_nrt": False} if hasattr(_NumbaOptions, "_nrt") else {}
except ImportError:
    _NO_REFCOUNTS = {}


@njit(cache=True, nogil=True, error_model='numpy', **_NO_REFCOUNTS)
def _run_steps(k0, K, dt, N, B, scheme, ops, pop_int, pop_float, g_lk, g0, g1, g_nud, tau_r, gamma,
               sigma, bias, err_tau, proj_int, proj_float, W, dwf, masks, state, prev, ports, ext,
               stim_int, stim, stim_row, gates, rec_int, rec_idx, rec_buf, rng, status,
               scratch, vx, vr, vrp, sm, wbuf, sab, rec_next, rec_j, rec_lo):
    """The time loop (long by design: the op switch and the recording copy stay in one compiled loop, since
    a call per op costs more than a small op; each branch is a few lines or one call). Work arrays: ``scratch`` (postsynaptic factors), ``vx, vr, vrp`` (padded blocks of
    the vectorised activations: input, phi, phi'), ``sm`` (softmax normalisers), ``wbuf`` (a weight-sized
    update), ``sab`` (BLAS alpha and beta); recording plan ``rec_next, rec_j, rec_lo``."""
    NB = N * B
    sqdt = math.sqrt(dt)
    R = state if scheme == SCHEME_SEQUENTIAL else prev    # the synchronous schemes read the previous step
    n_ops = ops.shape[0]
    # recording plan of this chunk: the chunk step of each rec row's next record (no integer division in
    # the time loop), its record counter, and the first neuron of a contiguous selection (-1: gather)
    n_rec = rec_int.shape[0]
    for rr in range(n_rec):
        stride = rec_int[rr, REC_STRIDE]
        rec_next[rr] = ((k0 + stride - 1) // stride) * stride - k0
        ioff = rec_int[rr, REC_IDX_OFF]
        lo = rec_idx[ioff]
        for s in range(rec_int[rr, REC_NSEL]):
            if rec_idx[ioff + s] != lo + s:
                lo = -1
                break
        rec_lo[rr] = lo
    for kk in range(K):
        step = k0 + kk
        t = step * dt
        for q in range(n_ops):
            op = ops[q, 0]
            arg = ops[q, 1]
            if op == OP_COPY_PREV:  # copy neurons [lo, hi) of the signal rows to the previous-step buffer
                lo = _u((arg >> COPY_SHIFT) * B)
                for x in range(_u((arg & COPY_MASK) * B) - lo):
                    prev[lo + x] = state[lo + x]
            elif op == OP_STIM:  # stimuli: row stim_row[kk, s] of the chunk's value block, columns col..col+n
                # ext rows 0-2 (target, current, error input) are written by stimuli only: clear their
                # regions, then accumulate (two stimuli may drive the same population)
                for s in range(stim_int.shape[0]):
                    kind = stim_int[s, ST_KIND]
                    if kind != STIM_RATE:
                        slot = EXT_CURRENT if kind == STIM_CURRENT else (EXT_TARGET if kind == STIM_TARGET else EXT_ERROR)
                        lo = _u(slot * NB + stim_int[s, ST_POP_OFF] * B)
                        for x in range(stim_int[s, ST_N] * B):
                            ext[lo + _u(x)] = 0.0
                for s in range(stim_int.shape[0]):
                    off = stim_int[s, ST_POP_OFF]
                    n = stim_int[s, ST_N]
                    kind = stim_int[s, ST_KIND]
                    col = stim_int[s, ST_COL]
                    row = stim_row[kk, s]
                    if kind == STIM_RATE and kk > 0 and row == stim_row[kk - 1, s]:
                        continue      # held input: the rates written last step are still in place
                    # the ext row of the stimulus kind (current, target, error input)
                    dst = _u(off * B) + (_u(EXT_CURRENT * NB) if kind == STIM_CURRENT else
                                         (_u(EXT_TARGET * NB) if kind == STIM_TARGET else _u(EXT_ERROR * NB)))
                    for ii in range(n):
                        for b in range(B):
                            x = stim[row, col + ii, b]
                            idx = _u((off + ii) * B + b)
                            if kind == STIM_RATE:
                                state[_u(SIG_R * NB) + idx] = x
                                state[_u(SIG_U * NB) + idx] = x
                                state[_u(SIG_UPROS * NB) + idx] = x
                            else:
                                ext[dst + _u(ii * B + b)] += x
            elif op == OP_CLEAR_PORTS:  # clear the ports of a population that projections write (arg = pop + P * port mask)
                npop = pop_int.shape[0]
                pi = arg % npop
                mask = arg // npop
                off = pop_int[pi, PP_OFF]
                n = pop_int[pi, PP_N]
                for p in range(4):
                    if (mask >> p) & 1:
                        lo = _u(p * NB + off * B)
                        for x in range(n * B):
                            ports[lo + _u(x)] = 0.0
            elif op == OP_PROJECT:  # accumulate a projection into its post port
                _project(arg, proj_int, W, R, ports, NB, B, sab)
            elif op == OP_SOMA:  # soma (arg = pop + P * input mask: bits 1-3 apical/nudge/current ports, 4-5 ext)
                npop = pop_int.shape[0]
                bad = _soma(arg % npop, arg // npop, pop_int, pop_float, g_lk, g0, g1, g_nud, tau_r, gamma, sigma,
                            bias, state, ports, ext, gates[kk, GATE_NUDGE], scheme == SCHEME_PUBLISHED_MICROCIRCUIT,
                            dt, sqdt, NB, B, rng, vx, vr, vrp)
                if bad:
                    status[0] = kk
                    status[1] = 1
                    status[2] = arg % npop
                    status[3] = SIG_U
                    return
            elif op == OP_ERROR:  # error
                bad = _error(arg, pop_int, pop_float, g0, err_tau, state, R, ext, gates[kk, GATE_NUDGE], dt, NB, B, sm)
                if bad:
                    status[0] = kk
                    status[1] = 1
                    status[2] = arg
                    status[3] = SIG_E
                    return
            elif op == OP_BACKPROJECT:  # send this step's errors down through W^T (or fixed B)
                _backproject(arg, proj_int, W, state, ext, NB, B, sab)
            elif op == OP_PLASTICITY:  # plasticity
                eta = proj_float[arg, PF_ETA]
                g = gates[kk, GATE_PLASTICITY]
                if g != 0.0 and eta != 0.0 and t >= proj_float[arg, PF_T_ON] and t < proj_float[arg, PF_T_OFF]:
                    _plasticity(arg, proj_int, proj_float, pop_int, pop_float, g_lk, g0, g1, W, dwf, masks,
                                state, R, dt * eta * g, dt, NB, B, scratch, vx, vr, vrp, wbuf, sab)
            elif op == OP_POP_LEARN:  # bias and time-constant learning (checked here: a call costs more than nothing)
                learns_tau = pop_int[arg, PP_TAU_RULE] != TAU_RULE_NONE and pop_float[arg, PPF_ETA_TAU] != 0.0
                if gates[kk, GATE_PLASTICITY] != 0.0 and (pop_float[arg, PPF_ETA_BIAS] != 0.0 or learns_tau):
                    _pop_learn(arg, pop_int, pop_float, g0, bias, state, gates[kk, GATE_PLASTICITY], dt, NB, B, dwf)
            elif op == OP_ERROR_PROJECT:  # cortical mapping: errors between error populations (W^T e tied, or fixed B e)
                _error_project(arg, proj_int, W, state, ext, NB, B, sab)
            elif op == OP_PROJECT_ERROR:  # cortical mapping: a projection carrying e reads the current step's error
                _project(arg, proj_int, W, state, ports, NB, B, sab)
        # recording: row rr writes record j of its block rec_buf[boff:], laid out (record, batch, neuron, comp)
        for rr in range(n_rec):
            if kk != rec_next[rr]:
                continue
            rec_next[rr] += rec_int[rr, REC_STRIDE]
            j = rec_j[rr]
            rec_j[rr] = j + 1
            code = rec_int[rr, REC_SIGNAL]
            poff = rec_int[rr, REC_POP_OFF]
            nsel = rec_int[rr, REC_NSEL]
            ncomp = rec_int[rr, REC_NCOMP]
            dst = _u(rec_int[rr, REC_BUF_OFF] + j * B * nsel * ncomp + rec_int[rr, REC_COMP])
            lo = rec_lo[rr]
            if B == 1 and lo >= 0:  # contiguous neurons, one batch row: a strided copy of nsel values
                src = _u(code * NB + poff + lo)
                if ncomp == 1:
                    for s in range(nsel):
                        rec_buf[dst + _u(s)] = state[src + _u(s)]
                else:
                    for s in range(nsel):
                        rec_buf[dst + _u(s * ncomp)] = state[src + _u(s)]
            else:
                ioff = rec_int[rr, REC_IDX_OFF]
                for b in range(B):
                    for s in range(nsel):
                        rec_buf[dst + _u((b * nsel + s) * ncomp)] = state[
                            _u(code * NB + (poff + rec_idx[_u(ioff + s)]) * B + b)]
    status[0] = K


@njit(cache=True, nogil=True, inline='always', error_model='numpy')
def _project(j, proj_int, W, R, ports, NB, B, sab):
    pre_off = proj_int[j, PJ_PRE_OFF]
    npre = proj_int[j, PJ_NPRE]
    post_off = proj_int[j, PJ_POST_OFF]
    npost = proj_int[j, PJ_NPOST]
    port = proj_int[j, PJ_PORT]
    sig = proj_int[j, PJ_SIGNAL]
    woff = proj_int[j, PJ_W_OFF]
    src = _u(sig * NB + pre_off * B)
    dst = _u(port * NB + post_off * B)
    if proj_int[j, PJ_DIAG] == 1:  # one-to-one
        for o in range(npost):
            w = W[_u(woff + o)]
            for b in range(B):
                k = _u(o * B + b)
                ports[dst + k] += w * R[src + k]
        return
    _add_product(W, _u(woff), npost, npre, R, src, ports, dst, B, sab)   # port += W r


@njit(cache=True, nogil=True, inline='always', error_model='numpy')
def _add_product(W, wo, npost, npre, x, xo, y, yo, B, sab):
    """``y[yo:] (npost x B) += W x[xo:]`` for ``W[wo:]`` (npost, npre) and flat (neuron, batch) blocks;
    BLAS for large products. Unsigned offsets (``_u``) instead of array views: a view costs two atomic
    reference-count updates, more than the product itself at the sizes of a small circuit."""
    if npost * npre * B >= _BLAS_MIN_SIZE:
        gemm(False, False, npost, B, npre, 1.0, W[wo:wo + _u(npost * npre)], x[xo:xo + _u(npre * B)], 1.0,
             y[yo:yo + _u(npost * B)], sab)
    elif B == 1:
        for o in range(npost):
            acc = 0.0
            base = wo + _u(o * npre)
            for p in range(npre):
                acc += W[base + _u(p)] * x[xo + _u(p)]
            y[yo + _u(o)] += acc
    else:
        uB = _u(B)
        for o in range(npost):
            base = wo + _u(o * npre)
            for b in range(B):
                acc = 0.0
                for p in range(npre):
                    acc += W[base + _u(p)] * x[xo + _u(p) * uB + _u(b)]
                y[yo + _u(o) * uB + _u(b)] += acc


@njit(cache=True, nogil=True, inline='always', error_model='numpy')
def _add_transposed_product(W, wo, npost, npre, e, eo_, y, yo, B, sab):
    """``y[yo:] (npre x B) += W^T e[eo_:]`` for ``W[wo:]`` (npost, npre) and flat (neuron, batch) blocks
    (unsigned offsets, see _add_product); rows with e = 0 are skipped."""
    if npost * npre * B >= _BLAS_MIN_SIZE:
        gemm(True, False, npre, B, npost, 1.0, W[wo:wo + _u(npost * npre)], e[eo_:eo_ + _u(npost * B)], 1.0,
             y[yo:yo + _u(npre * B)], sab)
        return
    uB = _u(B)
    for o in range(npost):
        base = wo + _u(o * npre)
        for b in range(B):
            eo = e[eo_ + _u(o) * uB + _u(b)]
            if eo != 0.0:
                for p in range(npre):
                    y[yo + _u(p) * uB + _u(b)] += W[base + _u(p)] * eo


@njit(cache=True, nogil=True, inline='always', error_model='numpy')
def _backproject(j, proj_int, W, S, ext, NB, B, sab):
    pre_off = proj_int[j, PJ_PRE_OFF]
    npre = proj_int[j, PJ_NPRE]
    post_off = proj_int[j, PJ_POST_OFF]
    npost = proj_int[j, PJ_NPOST]
    off = proj_int[j, PJ_W_OFF] if proj_int[j, PJ_FB] == FB_TRANSPOSE else proj_int[j, PJ_FB_OFF]
    # eps_in += W^T e
    _add_transposed_product(W, _u(off), npost, npre, S, _u(SIG_E * NB + post_off * B), ext,
                            _u(EXT_WTE * NB + pre_off * B), B, sab)


@njit(cache=True, nogil=True, error_model='numpy')
def _error_project(j, proj_int, W, S, ext, NB, B, sab):
    """Cortical mapping: a signal (errors e of an error population, or rates) into the error input of
    an error population (post), read from this step's signals ``S``: ``acc += W^T e`` with W the tied
    forward weights (n_pre, n_post), or ``acc += B x`` with the projection's own fixed weights (n_post,
    n_pre, or one-to-one)."""
    pre_off = proj_int[j, PJ_PRE_OFF]
    npre = proj_int[j, PJ_NPRE]
    post_off = proj_int[j, PJ_POST_OFF]
    npost = proj_int[j, PJ_NPOST]
    woff = proj_int[j, PJ_W_OFF]
    sig = proj_int[j, PJ_SIGNAL]
    eo = _u(sig * NB + pre_off * B)
    ao = _u(EXT_WTE * NB + post_off * B)
    if proj_int[j, PJ_TIED] >= 0:   # tied to a forward W (npre, npost): the fused form's _backproject product
        _add_transposed_product(W, _u(woff), npre, npost, S, eo, ext, ao, B, sab)
        return
    if proj_int[j, PJ_DIAG] == 1:   # one-to-one
        for o in range(npost):
            for b in range(B):
                k = _u(o * B + b)
                ext[ao + k] += W[_u(woff + o)] * S[eo + k]
        return
    _add_product(W, _u(woff), npost, npre, S, eo, ext, ao, B, sab)


@njit(cache=True, nogil=True, inline='always', error_model='numpy')
def _soma(i, inputs, pop_int, pop_float, g_lk, g0, g1, g_nud, tau_r, gamma, sigma, bias, state, ports, ext,
          gate_nudge, keep_g_som, dt, sqdt, NB, B, rng, vx, vr, vrp):
    """Integrate a population one step (two loops on purpose: a branch-free one that vectorises across
    neurons at batch 1, and the general one). ``keep_g_som`` (scheme published_microcircuit): a gated population whose nudge is (partly) off keeps
    g_nud in the g_tot of its dynamics, ``du/dt = g_tot (V_ss - u)`` with ``V_ss`` from the gated inputs,
    ``= (g_tot / g_tot_gated) * sum(g_x v_x) - g_tot u``; LE tau_r stays ``1/g_tot``."""
    off = pop_int[i, PP_OFF]
    n = pop_int[i, PP_N]
    act = pop_int[i, PP_ACT]
    mode = pop_int[i, PP_TAUR_MODE]
    gn_gate = gate_nudge if pop_int[i, PP_GATED] == 1 else 1.0
    hold = keep_g_som and gn_gate != 1.0
    noise = pop_int[i, PP_NOISE] == 1
    a0 = pop_float[i, PPF_A0]
    a1 = pop_float[i, PPF_A1]
    a2 = pop_float[i, PPF_A2]
    has_ap = (inputs >> IN_APICAL) & 1 == 1
    has_nud = (inputs >> IN_NUDGE) & 1 == 1
    has_cur = (inputs >> IN_CURRENT) & 1 == 1
    has_tgt = (inputs >> IN_TARGET) & 1 == 1
    has_icur = (inputs >> IN_EXT_CURRENT) & 1 == 1
    vec = is_vector_kind(act)     # phi over the whole population after the loop
    bad = False
    # unsigned indices throughout: Numba adds a negative-index wrap-around to every signed index it cannot
    # prove non-negative, which costs more than the arithmetic in these short loops (see _u)
    uB = _u(B)
    uNB = _u(NB)
    oE, oU, oUP, oR, oRP = _u(SIG_E) * uNB, _u(SIG_U) * uNB, _u(SIG_UPROS) * uNB, _u(SIG_R) * uNB, _u(SIG_RP) * uNB
    oUD, oV0, oV1, oUT = _u(SIG_UDOT) * _u(NB), _u(SIG_V0) * _u(NB), _u(SIG_V1) * _u(NB), _u(SIG_UTGT) * _u(NB)
    p1, p2, p3 = _u(PORT_APICAL * NB), _u(PORT_NUDGE * NB), _u(PORT_CURRENT * NB)   # ports[x]: proximal
    oT, oC = _u(EXT_TARGET * NB), _u(EXT_CURRENT * NB)
    x0 = _u(off) * uB
    if B == 1 and not noise and vec and not hold:
        # one neuron per iteration, no branch and no call in the body: the loop vectorises across neurons
        # (unused inputs are read as zeros times a 0/1 flag: their ports are never written)
        f_ap = 1.0 if has_ap else 0.0
        f_nud = 1.0 if has_nud else 0.0
        f_cur = 1.0 if has_cur else 0.0
        f_tgt = 1.0 if has_tgt else 0.0
        f_icur = 1.0 if has_icur else 0.0
        nonfinite = 0
        for i_ in range(n):
            x = _u(off) + _u(i_)
            gn = g_nud[x] * gn_gate
            gt = g_lk[x] + g0[x] + g1[x] + gn
            tr = tau_r[x] if mode == 0 else 1.0 / gt
            v0 = ports[x] + bias[x] + gamma[x] * state[oE + x]
            v1 = ports[p1 + x] * f_ap
            ut = ports[p2 + x] * f_nud + ext[oT + x] * f_tgt
            ud = g0[x] * v0 + g1[x] * v1 + gn * ut + ports[p3 + x] * f_cur + ext[oC + x] * f_icur - gt * state[oU + x]
            u = state[oU + x]
            un = u + dt * ud
            nonfinite += 0 if math.isfinite(un) else 1
            state[oU + x] = un
            up = u + tr * ud
            state[oUP + x] = up
            vx[_u(i_)] = up
            state[oUD + x] = ud
            state[oV0 + x] = v0
            state[oV1 + x] = v1
            state[oUT + x] = ut
        bad = nonfinite > 0
        n = 0     # done: skip the general loop below
    for i_ in range(n):
        ii = _u(off) + _u(i_)
        gn = g_nud[ii] * gn_gate
        gt = g_lk[ii] + g0[ii] + g1[ii] + gn
        gd = g_lk[ii] + g0[ii] + g1[ii] + g_nud[ii] if hold else gt     # g_tot of the dynamics
        tr = tau_r[ii] if mode == 0 else 1.0 / gd
        for b in range(B):
            x = ii * uB + _u(b)
            v0 = ports[x] + bias[ii] + gamma[ii] * state[oE + x]
            # inputs nobody writes are 0 and not read (saves 5 of 16 memory streams at large batch)
            v1 = ports[p1 + x] if has_ap else 0.0
            ut = (ports[p2 + x] if has_nud else 0.0) + (ext[oT + x] if has_tgt else 0.0)
            cur_p = ports[p3 + x] if has_cur else 0.0
            cur_e = ext[oC + x] if has_icur else 0.0
            u = state[oU + x]
            if hold:
                ud = (gd / gt) * (g0[ii] * v0 + g1[ii] * v1 + gn * ut + cur_p + cur_e) - gd * u
            else:
                ud = g0[ii] * v0 + g1[ii] * v1 + gn * ut + cur_p + cur_e - gt * u
            up = u + tr * ud
            un = u + dt * ud
            if noise:
                un += sigma[ii] * sqdt * rng.standard_normal()
            if not math.isfinite(un):
                bad = True
            state[oU + x] = un
            state[oUP + x] = up
            if vec:
                vx[x - x0] = up
            else:
                rr, rp = phi_and_dphi(up, act, a0, a1, a2)
                state[oR + x] = rr
                state[oRP + x] = rp
            state[oUD + x] = ud
            state[oV0 + x] = v0
            state[oV1 + x] = v1
            state[oUT + x] = ut
    if vec:
        nb = pop_int[i, PP_N] * B
        phi_dphi_vector(vx, nb, act, a0, a1, a2, vr, vrp)
        r0 = oR + x0
        rp0 = oRP + x0
        for k in range(nb):
            state[r0 + _u(k)] = vr[k]
            state[rp0 + _u(k)] = vrp[k]
    return bad


@njit(cache=True, nogil=True, inline='always', error_model='numpy')
def _error(i, pop_int, pop_float, g0, err_tau, state, R, ext, gate_nudge, dt, NB, B, sm):
    off = pop_int[i, PP_OFF]
    n = pop_int[i, PP_N]
    loss = pop_int[i, PP_LOSS]
    prosp = pop_int[i, PP_ERRMODE] == 1
    beta = pop_float[i, PPF_BETA] * gate_nudge
    # separate error population (cortical mapping): phi', r, u_pros, tau_m, tau_r of the partner
    # (only error populations run this op when they have a partner; fused rate populations have none)
    sh = pop_int[i, PP_PARTNER] - off if pop_int[i, PP_PARTNER] >= 0 else 0
    if loss == LOSS_CROSS_ENTROPY:  # softmax of the output rates, per batch copy
        for b in range(B):
            mx = -1e300
            for ii in range(off, off + n):
                mx = max(mx, R[SIG_R * NB + (ii + sh) * B + b])
            z = 0.0
            for ii in range(off, off + n):
                z += math.exp(R[SIG_R * NB + (ii + sh) * B + b] - mx)
            sm[b] = mx + math.log(z)
    bad = False
    for ii in range(off, off + n):
        jj = ii + sh
        for b in range(B):
            x = ii * B + b
            y = jj * B + b
            eps = R[SIG_RP * NB + y] * ext[EXT_WTE * NB + x] + ext[EXT_ERROR * NB + x]
            ext[EXT_WTE * NB + x] = 0.0
            if loss == LOSS_RATE:
                eps += beta * R[SIG_RP * NB + y] * (ext[x] - R[SIG_R * NB + y])
            elif loss == LOSS_VOLTAGE:
                eps += beta * (ext[x] - R[SIG_UPROS * NB + y])
            elif loss == LOSS_CROSS_ENTROPY:
                eps += beta * (ext[x] - math.exp(R[SIG_R * NB + y] - sm[b]))
            state[SIG_EPS * NB + x] = eps
            if prosp:
                v = state[SIG_VERR * NB + x]
                vd = (eps - v) / err_tau[jj]
                e = v + vd / g0[jj]
                state[SIG_VERR * NB + x] = v + dt * vd
            else:
                e = eps
            if not math.isfinite(e):
                bad = True
            state[SIG_E * NB + x] = e
    return bad


@njit(cache=True, nogil=True, inline='always', error_model='numpy')
def _opt_count(active, a, b, table, row, col):
    """Count one optimiser update in ``table[row, col]`` (t) and return Adam's bias corrections
    ``(1 - a^t, 1 - b^t)``; ``(1, 1)`` when no optimiser update happens now."""
    if not active:
        return 1.0, 1.0
    table[row, col] += 1.0
    return 1.0 - a ** table[row, col], 1.0 - b ** table[row, col]


@njit(cache=True, nogil=True, error_model='numpy')
def _opt_step(kind, a, b, eps, bc1, bc2, buf, k, n, g):
    """One optimiser step on the estimate g for parameter k of a block of n (state in buf)."""
    if kind == OPT_MOMENTUM:
        m = a * buf[k] + g
        buf[k] = m
        return m
    m = a * buf[k] + (1.0 - a) * g
    v = b * buf[k + n] + (1.0 - b) * g * g
    buf[k] = m
    buf[k + n] = v
    return (m / bc1) / (math.sqrt(v / bc2) + eps)


@njit(cache=True, nogil=True, inline='always', error_model='numpy')
def _plasticity(j, proj_int, proj_float, pop_int, pop_float, g_lk, g0, g1, W, dwf, masks, state, R, c, dt,
                NB, B, pf, vx, vr, vrp, wbuf, sab):
    """Weight update of projection j: the rule's postsynaptic factor f into ``pf`` (first loop), then the
    shared update ``W += c <f r_pre^T>`` in one of four paths (one-to-one; plain SGD fast path, BLAS or
    loops; filtered / optimised / masked / clipped) — kept together so each path stays one inlined loop."""
    pre_off = proj_int[j, PJ_PRE_OFF]
    npre = proj_int[j, PJ_NPRE]
    post_off = proj_int[j, PJ_POST_OFF]
    npost = proj_int[j, PJ_NPOST]
    port = proj_int[j, PJ_PORT]
    sig = proj_int[j, PJ_SIGNAL]
    woff = proj_int[j, PJ_W_OFF]
    diag = proj_int[j, PJ_DIAG] == 1
    rule = proj_int[j, PJ_RULE]
    dwoff = proj_int[j, PJ_DW_OFF]
    moff = proj_int[j, PJ_MASK_OFF]
    tau_w = proj_float[j, PF_TAU_W]
    wmax = proj_float[j, PF_W_MAX]
    ip = proj_int[j, PJ_POST_POP]
    act = pop_int[ip, PP_ACT]
    a0 = pop_float[ip, PPF_A0]
    a1 = pop_float[ip, PPF_A1]
    a2 = pop_float[ip, PPF_A2]
    vsig = SIG_V1 if port == PORT_APICAL else SIG_V0
    vec = is_vector_kind(act)
    okind = int(proj_float[j, PF_OPT])
    ooff = proj_int[j, PJ_OPT_OFF]
    oa = proj_float[j, PF_OPT_A]
    ob = proj_float[j, PF_OPT_B]
    oeps = proj_float[j, PF_OPT_EPS]
    bc1, bc2 = _opt_count(okind != OPT_SGD, oa, ob, proj_float, j, PF_OPT_T)
    # postsynaptic factor (rule "error": e of the post population, or of its error population)
    eoff = proj_int[j, PJ_ERR_OFF] if proj_int[j, PJ_ERR_OFF] >= 0 else post_off
    # unsigned offsets and indices (see _soma and _add_product)
    uB = _u(B)
    oE, oR, ov = _u(SIG_E) * _u(NB), _u(SIG_R) * _u(NB), _u(vsig) * _u(NB)
    po = _u(sig * NB + pre_off * B)      # presynaptic rates R[po + p * B + b]
    uw = _u(woff)
    x0 = _u(post_off) * uB
    for o in range(npost):
        ii = _u(post_off + o)
        for b in range(B):
            x = ii * uB + _u(b)
            k = _u(o) * uB + _u(b)
            if rule == RULE_ERROR:
                f = state[oE + _u(eoff + o) * uB + _u(b)]
            elif rule == RULE_URBANCZIK_SENN:   # r - phi(att v_port); vectorised kinds: phi over the block below
                gp = g1[ii] if port == PORT_APICAL else g0[ii]
                att = gp / (g_lk[ii] + g0[ii] + g1[ii])
                if vec:
                    vx[k] = att * state[ov + x]
                    f = 0.0
                else:
                    f = state[oR + x] - phi(att * state[ov + x], act, a0, a1, a2)
            elif rule == RULE_TARGET_PROP:  # target_prop (Sacramento Eq. 10): r_post - phi(W r_pre), own weights only
                acc = 0.0
                if diag:
                    acc = W[uw + _u(o)] * R[po + k]
                else:
                    for p in range(npre):
                        acc += W[uw + _u(o * npre + p)] * R[po + _u(p) * uB + _u(b)]
                f = state[oR + x] - phi(acc, act, a0, a1, a2)
            else:
                f = -state[ov + x]
            pf[k] = f
    if rule == RULE_URBANCZIK_SENN and vec:
        nb = npost * B
        phi_dphi_vector(vx, nb, act, a0, a1, a2, vr, vrp)
        r0 = oR + x0
        for k in range(nb):
            pf[k] = state[r0 + _u(k)] - vr[k]
    inv_b = 1.0 / B
    if diag:
        for o in range(npost):
            acc = 0.0
            for b in range(B):
                k = _u(o) * uB + _u(b)
                acc += pf[k] * R[po + k]
            upd = acc * inv_b
            if dwoff >= 0:
                kd = _u(dwoff + o)
                dwf[kd] += dt / tau_w * (upd - dwf[kd])
                upd = dwf[kd]
            if okind != OPT_SGD:
                upd = _opt_step(okind, oa, ob, oeps, bc1, bc2, dwf, ooff + o, npost, upd)
            w = W[uw + _u(o)] + c * upd
            if wmax > 0.0:
                w = min(max(w, -wmax), wmax)
            W[uw + _u(o)] = w
        return
    blas = B > 1 and npost * npre * B >= _BLAS_MIN_SIZE
    if dwoff < 0 and moff < 0 and wmax <= 0.0 and okind == OPT_SGD:
        # fast path (plain SGD, dense): W += c <f r^T>; rows with zero post factor are skipped
        if blas:
            gemm(False, True, npost, npre, B, c * inv_b, pf, R[po:po + _u(npre * B)], 1.0,
                 W[uw:uw + _u(npost * npre)], sab)  # W += c <f r^T>
        elif B == 1:
            for o in range(npost):
                co = c * pf[o]
                if co != 0.0:
                    base = uw + _u(o * npre)
                    for p in range(npre):
                        W[base + _u(p)] += co * R[po + _u(p)]
        else:
            for o in range(npost):
                base = uw + _u(o * npre)
                for p in range(npre):
                    upd = 0.0
                    for b in range(B):
                        upd += pf[_u(o) * uB + _u(b)] * R[po + _u(p) * uB + _u(b)]
                    W[base + _u(p)] += c * (upd * inv_b)
        return
    if blas:
        # <f r^T> over the batch into the work block (npost x npre)
        gemm(False, True, npost, npre, B, inv_b, pf, R[po:po + _u(npre * B)], 0.0, wbuf, sab)
    for o in range(npost):
        for p in range(npre):
            if blas:
                upd = wbuf[o * npre + p]
            elif B == 1:
                upd = pf[o] * R[po + _u(p)]
            else:
                upd = 0.0
                for b in range(B):
                    upd += pf[_u(o) * uB + _u(b)] * R[po + _u(p) * uB + _u(b)]
                upd *= inv_b
            kw = _u(o * npre + p)
            if dwoff >= 0:
                kd = _u(dwoff) + kw
                dwf[kd] += dt / tau_w * (upd - dwf[kd])
                upd = dwf[kd]
            if okind != OPT_SGD:
                upd = _opt_step(okind, oa, ob, oeps, bc1, bc2, dwf, ooff + o * npre + p, npost * npre, upd)
            w = W[uw + kw] + c * upd
            if moff >= 0:
                w *= masks[_u(moff) + kw]
            if wmax > 0.0:
                w = min(max(w, -wmax), wmax)
            W[uw + kw] = w


@njit(cache=True, nogil=True, error_model='numpy')
def _pop_learn(i, pop_int, pop_float, g0, bias, state, gate, dt, NB, B, dwf):
    off = pop_int[i, PP_OFF]
    n = pop_int[i, PP_N]
    rule = pop_int[i, PP_TAU_RULE]
    eta_b = pop_float[i, PPF_ETA_BIAS] * gate
    eta_t = pop_float[i, PPF_ETA_TAU] * gate
    tmin = pop_float[i, PPF_TAU_MIN]
    if eta_b == 0.0 and (rule == TAU_RULE_NONE or eta_t == 0.0):
        return
    okind = int(pop_float[i, PPF_TOPT])
    ooff = pop_int[i, PP_TAU_OPT_OFF]
    oa = pop_float[i, PPF_TOPT_A]
    ob = pop_float[i, PPF_TOPT_B]
    oeps = pop_float[i, PPF_TOPT_EPS]
    bc1, bc2 = _opt_count(okind != OPT_SGD and rule != TAU_RULE_NONE and eta_t != 0.0, oa, ob, pop_float, i, PPF_TOPT_T)
    esh = pop_int[i, PP_PARTNER] - off if pop_int[i, PP_PARTNER] >= 0 else 0   # e of a partner error population
    for ii in range(off, off + n):
        me = 0.0
        mt = 0.0
        for b in range(B):
            x = ii * B + b
            xe = (ii + esh) * B + b
            me += state[SIG_E * NB + xe]
            if rule == TAU_RULE_GLE:
                mt += state[SIG_E * NB + xe] * state[SIG_UDOT * NB + x]
            elif rule == TAU_RULE_LE_ADAPT:
                mt += (state[SIG_UPROS * NB + x] - state[SIG_V0 * NB + x]) * state[SIG_UDOT * NB + x]
        if eta_b != 0.0:
            bias[ii] += dt * eta_b * me / B
        if rule != TAU_RULE_NONE and eta_t != 0.0:
            tau = 1.0 / g0[ii]
            gt = mt / B
            if okind != OPT_SGD:
                gt = _opt_step(okind, oa, ob, oeps, bc1, bc2, dwf, ooff + ii - off, n, gt)
            if rule == TAU_RULE_GLE:
                tau -= dt * eta_t * gt
            else:
                tau += dt * eta_t * gt
            g0[ii] = 1.0 / max(tau, tmin)
