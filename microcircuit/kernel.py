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
  population (cortical mapping, ``models/error.py``; ``pop_int[:, 11]`` = partner offset) reads
  phi', r, u_pros, tau_m, tau_r of its partner; ``error_project`` (op 9) fills its error input
  with ``W^T e`` (tied, ``proj_int[:, 15]``), ``B e`` or fixed rate comparisons; ``project_error``
  (op 10) carries e into a port reading the current step; rule ``error`` and bias/tau learning
  read e of the error population (``proj_int[:, 16]``, ``pop_int[:, 11]``).
* ``plasticity``: ``dW = dt eta <f_post r_pre^T>_batch`` with f_post = e (LE/GLE),
  ``r - phi(att v_port)`` (Urbanczik–Senn) or ``-v_apical`` (homeostatic), optionally low-passed
  with ``tau_w``, masked and clipped. Optional optimiser on the (filtered) estimate ``g``
  (``optimizer`` = momentum: ``m <- mu m + g``, step ``m``; adam: ``m <- b1 m + (1-b1) g``,
  ``v <- b2 v + (1-b2) g^2``, step ``(m/(1-b1^t)) / (sqrt(v/(1-b2^t)) + eps)``, t = number of
  applied updates); ``W += dt eta gate step``. Optimiser state lives in ``dwf`` (offset
  ``proj_int[:, 14]``; tau_m state at ``pop_int[:, 10]``); the same optimisers serve tau_m learning.
"""
from __future__ import annotations

import math

import numpy as np
from numba import uint64 as _u   # _u(i): an index Numba need not wrap around (see _soma)

from .jit import njit
from .activations import phi, phi_and_dphi, phi_dphi_vector, is_vector_kind, padded_length
from .blas import gemm

# Keep in sync with compile.py / models/base.py
_U, _UP, _R, _RP, _E, _UD, _V0, _V1, _EPS, _VERR, _UT = range(11)
_BLAS_MIN_SIZE = 16384   # products of at least this many multiply-adds (n_post*n_pre*B) go to BLAS


@njit(cache=True, nogil=True, error_model='numpy')
def run_chunk(k0, K, dt, N, B, scheme, ops, pop_int, pop_float, g_lk, g0, g1, g_nud, tau_r, gamma,
              sigma, bias, err_tau, proj_int, proj_float, W, dwf, masks, state, prev, ports, ext,
              stim_int, stim, stim_row, gates, rec_int, rec_idx, rec_buf, rng, status):
    """Allocate the chunk's work arrays and run its steps (:func:`_run_steps`)."""
    max_n = 1
    for i in range(pop_int.shape[0]):
        max_n = max(max_n, pop_int[i, 1])
    # weight-sized block for the batched update of filtered/optimised/masked plasticity (B > 1)
    max_w = 1
    if B > 1:
        for j in range(proj_int.shape[0]):
            max_w = max(max_w, proj_int[j, 1] * proj_int[j, 3])
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
    """The time loop. Work arrays: ``scratch`` (postsynaptic factors), ``vx, vr, vrp`` (padded blocks of
    the vectorised activations: input, phi, phi'), ``sm`` (softmax normalisers), ``wbuf`` (a weight-sized
    update), ``sab`` (BLAS alpha and beta); recording plan ``rec_next, rec_j, rec_lo``."""
    NB = N * B
    sqdt = math.sqrt(dt)
    R = state if scheme == 1 else prev    # 0 synchronous, 2 published_microcircuit: previous step
    n_ops = ops.shape[0]
    # recording plan of this chunk: the chunk step of each rec row's next record (no integer division in
    # the time loop), its record counter, and the first neuron of a contiguous selection (-1: gather)
    n_rec = rec_int.shape[0]
    for rr in range(n_rec):
        stride = rec_int[rr, 4]
        rec_next[rr] = ((k0 + stride - 1) // stride) * stride - k0
        ioff = rec_int[rr, 2]
        lo = rec_idx[ioff]
        for s in range(rec_int[rr, 3]):
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
            if op == 0:  # copy neurons [lo, hi) of the signal rows to the previous-step buffer
                lo = _u((arg >> 31) * B)
                for x in range(_u((arg & 0x7FFFFFFF) * B) - lo):
                    prev[lo + x] = state[lo + x]
            elif op == 1:  # stimuli: row stim_row[kk, s] of the chunk's value block, columns col..col+n
                # ext rows 0-2 (target, current, error input) are written by stimuli only: clear their
                # regions, then accumulate (two stimuli may drive the same population)
                for s in range(stim_int.shape[0]):
                    kind = stim_int[s, 2]
                    if kind != 0:
                        slot = 1 if kind == 1 else (0 if kind == 2 else 2)
                        lo = _u(slot * NB + stim_int[s, 0] * B)
                        for x in range(stim_int[s, 1] * B):
                            ext[lo + _u(x)] = 0.0
                for s in range(stim_int.shape[0]):
                    off = stim_int[s, 0]
                    n = stim_int[s, 1]
                    kind = stim_int[s, 2]
                    col = stim_int[s, 3]
                    row = stim_row[kk, s]
                    if kind == 0 and kk > 0 and row == stim_row[kk - 1, s]:
                        continue      # held input: the rates written last step are still in place
                    # the target slot of ext: rows 1 (current), 0 (target), 2 (error input) for kinds 1, 2, 3
                    dst = _u(off * B) + (_u(NB) if kind == 1 else (_u(0) if kind == 2 else _u(2 * NB)))
                    for ii in range(n):
                        for b in range(B):
                            x = stim[row, col + ii, b]
                            idx = _u((off + ii) * B + b)
                            if kind == 0:
                                state[_u(_R * NB) + idx] = x
                                state[_u(_U * NB) + idx] = x
                                state[_u(_UP * NB) + idx] = x
                            else:
                                ext[dst + _u(ii * B + b)] += x
            elif op == 2:  # clear the ports of a population that projections write (arg = pop + P * port mask)
                npop = pop_int.shape[0]
                pi = arg % npop
                mask = arg // npop
                off = pop_int[pi, 0]
                n = pop_int[pi, 1]
                for p in range(4):
                    if (mask >> p) & 1:
                        lo = _u(p * NB + off * B)
                        for x in range(n * B):
                            ports[lo + _u(x)] = 0.0
            elif op == 3:  # accumulate a projection into its post port
                _project(arg, proj_int, W, R, ports, NB, B, sab)
            elif op == 4:  # soma (arg = pop + P * input mask: bits 1-3 apical/nudge/current ports, 4-5 ext)
                npop = pop_int.shape[0]
                bad = _soma(arg % npop, arg // npop, pop_int, pop_float, g_lk, g0, g1, g_nud, tau_r, gamma, sigma,
                            bias, state, ports, ext, gates[kk, 0], scheme == 2, dt, sqdt, NB, B, rng, vx, vr, vrp)
                if bad:
                    status[0] = kk
                    status[1] = 1
                    status[2] = arg % npop
                    status[3] = _U
                    return
            elif op == 5:  # error
                bad = _error(arg, pop_int, pop_float, g0, err_tau, state, R, ext, gates[kk, 0], dt, NB, B, sm)
                if bad:
                    status[0] = kk
                    status[1] = 1
                    status[2] = arg
                    status[3] = _E
                    return
            elif op == 6:  # send this step's errors down through W^T (or fixed B)
                _backproject(arg, proj_int, W, state, ext, NB, B, sab)
            elif op == 7:  # plasticity
                eta = proj_float[arg, 0]
                g = gates[kk, 1]
                if g != 0.0 and eta != 0.0 and t >= proj_float[arg, 3] and t < proj_float[arg, 4]:
                    _plasticity(arg, proj_int, proj_float, pop_int, pop_float, g_lk, g0, g1, W, dwf, masks,
                                state, R, dt * eta * g, dt, NB, B, scratch, vx, vr, vrp, wbuf, sab)
            elif op == 8:  # bias and time-constant learning (checked here: a call costs more than nothing)
                if gates[kk, 1] != 0.0 and (pop_float[arg, 3] != 0.0 or (pop_int[arg, 6] != 0
                                                                         and pop_float[arg, 1] != 0.0)):
                    _pop_learn(arg, pop_int, pop_float, g0, bias, state, gates[kk, 1], dt, NB, B, dwf)
            elif op == 9:  # cortical mapping: errors between error populations (W^T e tied, or fixed B e)
                _error_project(arg, proj_int, W, state, ext, NB, B, sab)
            elif op == 10:  # cortical mapping: a projection carrying e reads the current step's error
                _project(arg, proj_int, W, state, ports, NB, B, sab)
        # recording: row rr writes record j of its block rec_buf[boff:], laid out (record, batch, neuron, comp)
        for rr in range(n_rec):
            if kk != rec_next[rr]:
                continue
            rec_next[rr] += rec_int[rr, 4]
            j = rec_j[rr]
            rec_j[rr] = j + 1
            code = rec_int[rr, 0]
            poff = rec_int[rr, 1]
            nsel = rec_int[rr, 3]
            ncomp = rec_int[rr, 6]
            dst = _u(rec_int[rr, 5] + j * B * nsel * ncomp + rec_int[rr, 7])
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
                ioff = rec_int[rr, 2]
                for b in range(B):
                    for s in range(nsel):
                        rec_buf[dst + _u((b * nsel + s) * ncomp)] = state[
                            _u(code * NB + (poff + rec_idx[_u(ioff + s)]) * B + b)]
    status[0] = K


@njit(cache=True, nogil=True, inline='always', error_model='numpy')
def _project(j, proj_int, W, R, ports, NB, B, sab):
    pre_off = proj_int[j, 0]
    npre = proj_int[j, 1]
    post_off = proj_int[j, 2]
    npost = proj_int[j, 3]
    port = proj_int[j, 4]
    sig = proj_int[j, 5]
    woff = proj_int[j, 6]
    src = _u(sig * NB + pre_off * B)
    dst = _u(port * NB + post_off * B)
    if proj_int[j, 7] == 1:  # one-to-one
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
    pre_off = proj_int[j, 0]
    npre = proj_int[j, 1]
    post_off = proj_int[j, 2]
    npost = proj_int[j, 3]
    off = proj_int[j, 6] if proj_int[j, 9] == 1 else proj_int[j, 10]
    # eps_in += W^T e
    _add_transposed_product(W, _u(off), npost, npre, S, _u(_E * NB + post_off * B), ext, _u(3 * NB + pre_off * B), B, sab)


@njit(cache=True, nogil=True, error_model='numpy')
def _error_project(j, proj_int, W, S, ext, NB, B, sab):
    """Cortical mapping: a signal (errors e of an error population, or rates) into the error input of
    an error population (post), read from this step's signals ``S``: ``acc += W^T e`` with W the tied
    forward weights (n_pre, n_post), or ``acc += B x`` with the projection's own fixed weights (n_post,
    n_pre, or one-to-one)."""
    pre_off = proj_int[j, 0]
    npre = proj_int[j, 1]
    post_off = proj_int[j, 2]
    npost = proj_int[j, 3]
    woff = proj_int[j, 6]
    sig = proj_int[j, 5]
    eo = _u(sig * NB + pre_off * B)
    ao = _u(3 * NB + post_off * B)
    if proj_int[j, 15] >= 0:   # tied to a forward W (npre, npost): the fused form's _backproject product
        _add_transposed_product(W, _u(woff), npre, npost, S, eo, ext, ao, B, sab)
        return
    if proj_int[j, 7] == 1:   # one-to-one
        for o in range(npost):
            for b in range(B):
                k = _u(o * B + b)
                ext[ao + k] += W[_u(woff + o)] * S[eo + k]
        return
    _add_product(W, _u(woff), npost, npre, S, eo, ext, ao, B, sab)


@njit(cache=True, nogil=True, inline='always', error_model='numpy')
def _soma(i, inputs, pop_int, pop_float, g_lk, g0, g1, g_nud, tau_r, gamma, sigma, bias, state, ports, ext,
          gate_nudge, keep_g_som, dt, sqdt, NB, B, rng, vx, vr, vrp):
    """``keep_g_som`` (scheme published_microcircuit): a gated population whose nudge is (partly) off keeps
    g_nud in the g_tot of its dynamics, ``du/dt = g_tot (V_ss - u)`` with ``V_ss`` from the gated inputs,
    ``= (g_tot / g_tot_gated) * sum(g_x v_x) - g_tot u``; LE tau_r stays ``1/g_tot``."""
    off = pop_int[i, 0]
    n = pop_int[i, 1]
    act = pop_int[i, 2]
    mode = pop_int[i, 7]
    gn_gate = gate_nudge if pop_int[i, 8] == 1 else 1.0
    hold = keep_g_som and gn_gate != 1.0
    noise = pop_int[i, 9] == 1
    a0 = pop_float[i, 4]
    a1 = pop_float[i, 5]
    a2 = pop_float[i, 6]
    has_ap = (inputs >> 1) & 1 == 1
    has_nud = (inputs >> 2) & 1 == 1
    has_cur = (inputs >> 3) & 1 == 1
    has_tgt = (inputs >> 4) & 1 == 1
    has_icur = (inputs >> 5) & 1 == 1
    vec = is_vector_kind(act)     # phi over the whole population after the loop
    bad = False
    # unsigned indices throughout: Numba adds a negative-index wrap-around to every signed index it cannot
    # prove non-negative, which costs more than the arithmetic in these short loops (see _u)
    uB = _u(B)
    oE, oU, oUP, oR, oRP = _u(_E) * _u(NB), _u(_U) * _u(NB), _u(_UP) * _u(NB), _u(_R) * _u(NB), _u(_RP) * _u(NB)
    oUD, oV0, oV1, oUT = _u(_UD) * _u(NB), _u(_V0) * _u(NB), _u(_V1) * _u(NB), _u(_UT) * _u(NB)
    p1, p2, p3 = _u(NB), _u(2 * NB), _u(3 * NB)
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
            ut = ports[p2 + x] * f_nud + ext[x] * f_tgt
            ud = g0[x] * v0 + g1[x] * v1 + gn * ut + ports[p3 + x] * f_cur + ext[p1 + x] * f_icur - gt * state[oU + x]
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
            ut = (ports[p2 + x] if has_nud else 0.0) + (ext[x] if has_tgt else 0.0)
            cur_p = ports[p3 + x] if has_cur else 0.0
            cur_e = ext[p1 + x] if has_icur else 0.0
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
        nb = pop_int[i, 1] * B
        phi_dphi_vector(vx, nb, act, a0, a1, a2, vr, vrp)
        r0 = oR + x0
        rp0 = oRP + x0
        for k in range(nb):
            state[r0 + _u(k)] = vr[k]
            state[rp0 + _u(k)] = vrp[k]
    return bad


@njit(cache=True, nogil=True, inline='always', error_model='numpy')
def _error(i, pop_int, pop_float, g0, err_tau, state, R, ext, gate_nudge, dt, NB, B, sm):
    off = pop_int[i, 0]
    n = pop_int[i, 1]
    loss = pop_int[i, 3]
    prosp = pop_int[i, 5] == 1
    beta = pop_float[i, 0] * gate_nudge
    # separate error population (cortical mapping): phi', r, u_pros, tau_m, tau_r of the partner
    # (only error populations run this op when they have a partner; fused rate populations have none)
    sh = pop_int[i, 11] - off if pop_int[i, 11] >= 0 else 0
    if loss == 3:  # softmax of the output rates, per batch copy
        for b in range(B):
            mx = -1e300
            for ii in range(off, off + n):
                mx = max(mx, R[_R * NB + (ii + sh) * B + b])
            z = 0.0
            for ii in range(off, off + n):
                z += math.exp(R[_R * NB + (ii + sh) * B + b] - mx)
            sm[b] = mx + math.log(z)
    bad = False
    for ii in range(off, off + n):
        jj = ii + sh
        for b in range(B):
            x = ii * B + b
            y = jj * B + b
            eps = R[_RP * NB + y] * ext[3 * NB + x] + ext[2 * NB + x]
            ext[3 * NB + x] = 0.0
            if loss == 1:
                eps += beta * R[_RP * NB + y] * (ext[x] - R[_R * NB + y])
            elif loss == 2:
                eps += beta * (ext[x] - R[_UP * NB + y])
            elif loss == 3:
                eps += beta * (ext[x] - math.exp(R[_R * NB + y] - sm[b]))
            state[_EPS * NB + x] = eps
            if prosp:
                v = state[_VERR * NB + x]
                vd = (eps - v) / err_tau[jj]
                e = v + vd / g0[jj]
                state[_VERR * NB + x] = v + dt * vd
            else:
                e = eps
            if not math.isfinite(e):
                bad = True
            state[_E * NB + x] = e
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
    if kind == 1:
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
    pre_off = proj_int[j, 0]
    npre = proj_int[j, 1]
    post_off = proj_int[j, 2]
    npost = proj_int[j, 3]
    port = proj_int[j, 4]
    sig = proj_int[j, 5]
    woff = proj_int[j, 6]
    diag = proj_int[j, 7] == 1
    rule = proj_int[j, 8]
    dwoff = proj_int[j, 11]
    moff = proj_int[j, 12]
    tau_w = proj_float[j, 1]
    wmax = proj_float[j, 2]
    ip = proj_int[j, 13]
    act = pop_int[ip, 2]
    a0 = pop_float[ip, 4]
    a1 = pop_float[ip, 5]
    a2 = pop_float[ip, 6]
    vsig = _V1 if port == 1 else _V0
    vec = is_vector_kind(act)
    okind = int(proj_float[j, 5])
    ooff = proj_int[j, 14]
    oa = proj_float[j, 6]
    ob = proj_float[j, 7]
    oeps = proj_float[j, 8]
    bc1, bc2 = _opt_count(okind != 0, oa, ob, proj_float, j, 9)
    # postsynaptic factor (rule "error": e of the post population, or of its error population)
    eoff = proj_int[j, 16] if proj_int[j, 16] >= 0 else post_off
    # unsigned offsets and indices (see _soma and _add_product)
    uB = _u(B)
    oE, oR, ov = _u(_E) * _u(NB), _u(_R) * _u(NB), _u(vsig) * _u(NB)
    po = _u(sig * NB + pre_off * B)      # presynaptic rates R[po + p * B + b]
    uw = _u(woff)
    x0 = _u(post_off) * uB
    for o in range(npost):
        ii = _u(post_off + o)
        for b in range(B):
            x = ii * uB + _u(b)
            k = _u(o) * uB + _u(b)
            if rule == 1:
                f = state[oE + _u(eoff + o) * uB + _u(b)]
            elif rule == 2:   # Urbanczik-Senn: r - phi(att v_port); vectorised kinds: phi over the block below
                gp = g1[ii] if port == 1 else g0[ii]
                att = gp / (g_lk[ii] + g0[ii] + g1[ii])
                if vec:
                    vx[k] = att * state[ov + x]
                    f = 0.0
                else:
                    f = state[oR + x] - phi(att * state[ov + x], act, a0, a1, a2)
            elif rule == 4:  # target_prop (Sacramento Eq. 10): r_post - phi(W r_pre), own weights only
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
    if rule == 2 and vec:
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
            if okind != 0:
                upd = _opt_step(okind, oa, ob, oeps, bc1, bc2, dwf, ooff + o, npost, upd)
            w = W[uw + _u(o)] + c * upd
            if wmax > 0.0:
                w = min(max(w, -wmax), wmax)
            W[uw + _u(o)] = w
        return
    blas = B > 1 and npost * npre * B >= _BLAS_MIN_SIZE
    if dwoff < 0 and moff < 0 and wmax <= 0.0 and okind == 0:
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
            if okind != 0:
                upd = _opt_step(okind, oa, ob, oeps, bc1, bc2, dwf, ooff + o * npre + p, npost * npre, upd)
            w = W[uw + kw] + c * upd
            if moff >= 0:
                w *= masks[_u(moff) + kw]
            if wmax > 0.0:
                w = min(max(w, -wmax), wmax)
            W[uw + kw] = w


@njit(cache=True, nogil=True, error_model='numpy')
def _pop_learn(i, pop_int, pop_float, g0, bias, state, gate, dt, NB, B, dwf):
    off = pop_int[i, 0]
    n = pop_int[i, 1]
    rule = pop_int[i, 6]
    eta_b = pop_float[i, 3] * gate
    eta_t = pop_float[i, 1] * gate
    tmin = pop_float[i, 2]
    if eta_b == 0.0 and (rule == 0 or eta_t == 0.0):
        return
    okind = int(pop_float[i, 7])
    ooff = pop_int[i, 10]
    oa = pop_float[i, 8]
    ob = pop_float[i, 9]
    oeps = pop_float[i, 10]
    bc1, bc2 = _opt_count(okind != 0 and rule != 0 and eta_t != 0.0, oa, ob, pop_float, i, 11)
    esh = pop_int[i, 11] - off if pop_int[i, 11] >= 0 else 0   # e of a partner error population
    for ii in range(off, off + n):
        me = 0.0
        mt = 0.0
        for b in range(B):
            x = ii * B + b
            xe = (ii + esh) * B + b
            me += state[_E * NB + xe]
            if rule == 1:
                mt += state[_E * NB + xe] * state[_UD * NB + x]
            elif rule == 2:
                mt += (state[_UP * NB + x] - state[_V0 * NB + x]) * state[_UD * NB + x]
        if eta_b != 0.0:
            bias[ii] += dt * eta_b * me / B
        if rule != 0 and eta_t != 0.0:
            tau = 1.0 / g0[ii]
            gt = mt / B
            if okind != 0:
                gt = _opt_step(okind, oa, ob, oeps, bc1, bc2, dwf, ooff + ii - off, n, gt)
            if rule == 1:
                tau -= dt * eta_t * gt
            else:
                tau += dt * eta_t * gt
            g0[ii] = 1.0 / max(tau, tmin)
