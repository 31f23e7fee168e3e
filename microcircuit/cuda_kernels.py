"""Device code of the CUDA back end (:mod:`microcircuit.cuda_backend`): one CUDA kernel per op of
:mod:`microcircuit.kernel`, each repeating that op's arithmetic for one output element per thread.

Imported only by :mod:`microcircuit.cuda_backend` after it checked that numba-cuda and a device (or
Numba's CUDA simulator, ``NUMBA_ENABLE_CUDASIM=1``) are there. Module-level functions, so that the
simulator can run them with its stand-in of ``numba.cuda``.
"""
import math

import numpy as np
from numba import cuda

from .activations import _LOG2E, _LN2_HI, _LN2_LO, _SQRT2M1, _EXP_TAYLOR, _ATANH_SERIES
from .layout import *  # noqa: F401,F403  (signal rows, ports, ext rows, ids, rec_int columns)


exp_c = np.array(_EXP_TAYLOR, dtype=np.float64)
atanh_c = np.array(_ATANH_SERIES, dtype=np.float64)
n_exp = exp_c.size
n_atanh = atanh_c.size
dev = cuda.jit(device=True, inline="always")


# ---- activations: the scalar ones of activations.py, and the polynomial (vectorised) ones
@dev
def sigmoid(x):
    if x >= 0.0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


@dev
def softplus(x):
    if x > 30.0:
        return x + math.log1p(math.exp(-x))
    return math.log1p(math.exp(x))


@dev
def phi(x, kind, p0, p1, p2):
    if kind == 0:
        return x
    if kind == 1:
        return math.tanh(x)
    if kind == 2:
        return p0 * sigmoid(p1 * (x - p2))
    if kind == 3:
        return min(max(x, 0.0), 1.0)
    if kind == 4:
        return softplus(x)
    if kind == 5:
        return max(x, 0.0)
    return p0 * softplus(p1 * (x - p2))


@dev
def exp_neg(a):
    a = min(a, 708.0)
    t = math.floor(a * _LOG2E + 0.5)
    r = (t * _LN2_HI - a) + t * _LN2_LO
    p = exp_c[0]
    for k in range(1, n_exp):
        p = p * r + exp_c[k]
    p = p * r * r + r
    return (1.0 + p) * math.ldexp(1.0, -int(t))


@dev
def log1p_unit(z):
    big = z > _SQRT2M1
    s = (z - 1.0) / (z + 3.0) if big else z / (z + 2.0)
    s2 = s * s
    q = atanh_c[0]
    for k in range(1, n_atanh):
        q = q * s2 + atanh_c[k]
    res = 2.0 * s + 2.0 * s * (s2 * q)
    return (_LN2_HI + (res + _LN2_LO)) if big else res


@dev
def phi_dphi_vec(x, kind, p0, p1, p2):
    """activations.phi_dphi_vector for one element (kinds 2, 4, 6)."""
    y = x if kind == 4 else p1 * (x - p2)
    z = exp_neg(abs(y))
    d = 1.0 / (1.0 + z)
    sg = d if y >= 0.0 else z * d
    if kind == 2:
        return p0 * sg, p0 * p1 * sg * (1.0 - sg)
    if kind == 4:
        return max(y, 0.0) + log1p_unit(z), sg
    return p0 * (max(y, 0.0) + log1p_unit(z)), p0 * p1 * sg


@dev
def phi_dphi_simple(x, kind):
    """activations.phi_and_dphi for the kinds the soma evaluates one by one (0, 1, 3, 5)."""
    if kind == 0:
        return x, 1.0
    if kind == 1:
        t = math.tanh(x)
        return t, 1.0 - t * t
    if kind == 3:
        return min(max(x, 0.0), 1.0), (1.0 if (x > 0.0 and x < 1.0) else 0.0)
    return max(x, 0.0), (1.0 if x > 0.0 else 0.0)


@dev
def opt_step(kind, a, b, eps, bc1, bc2, buf, k, n, g):
    if kind == OPT_MOMENTUM:
        m = a * buf[k] + g
        buf[k] = m
        return m
    m = a * buf[k] + (1.0 - a) * g
    v = b * buf[k + n] + (1.0 - b) * g * g
    buf[k] = m
    buf[k + n] = v
    return (m / bc1) / (math.sqrt(v / bc2) + eps)


@dev
def fail(stat, seq):
    cuda.atomic.min(stat, 0, seq)


# ---- ops. Every kernel gets its position seq = step * n_ops + op and returns when an earlier
# position failed (stat[0] < seq): the CPU kernel stops there.


@cuda.jit
def k_copy(dst, src, lo, n, stat, seq):
    x = cuda.grid(1)
    if x < n and stat[0] >= seq:
        dst[lo + x] = src[lo + x]


@cuda.jit
def k_fill0(a, lo, n, stat, seq):
    x = cuda.grid(1)
    if x < n and stat[0] >= seq:
        a[lo + x] = 0.0


@cuda.jit
def k_stim(state, ext, stim, col, off, n, kind, dst, B, NB, row, stat, seq):
    x = cuda.grid(1)
    if x >= n * B or stat[0] < seq:
        return
    ii = x // B
    b = x - ii * B
    v = stim[row, col + ii, b]
    idx = off * B + x
    if kind == STIM_RATE:
        state[SIG_R * NB + idx] = v
        state[SIG_U * NB + idx] = v
        state[SIG_UPROS * NB + idx] = v
    else:
        ext[dst + x] += v


@cuda.jit
def k_clear_ports(ports, lo, n, mask, NB, stat, seq):
    x = cuda.grid(1)
    if x >= n or stat[0] < seq:
        return
    for p in range(N_PORTS):
        if (mask >> p) & 1:
            ports[p * NB + lo + x] = 0.0


@cuda.jit
def k_diag(W, wo, X, xo, Y, yo, n, B, stat, seq):
    """Y[yo + (o, b)] += W[wo + o] * X[xo + (o, b)] (one-to-one projections)."""
    x = cuda.grid(1)
    if x >= n * B or stat[0] < seq:
        return
    o = x // B
    Y[yo + x] += W[wo + o] * X[xo + x]


@cuda.jit
def k_product(W, wo, npost, npre, X, xo, Y, yo, B, stat, seq):
    """Y (npost x B) += W (npost x npre) X (npre x B), kernel._add_product's loop order."""
    x = cuda.grid(1)
    if x >= npost * B or stat[0] < seq:
        return
    o = x // B
    b = x - o * B
    base = wo + o * npre
    acc = 0.0
    for p in range(npre):
        acc += W[base + p] * X[xo + p * B + b]
    Y[yo + x] += acc


@cuda.jit
def k_tproduct(W, wo, npost, npre, E, eo, Y, yo, B, stat, seq):
    """Y (npre x B) += W^T E for W (npost x npre), kernel._add_transposed_product's order (rows
    o ascending added one by one into Y, rows with e = 0 skipped)."""
    x = cuda.grid(1)
    if x >= npre * B or stat[0] < seq:
        return
    p = x // B
    b = x - p * B
    v = Y[yo + x]
    for o in range(npost):
        e = E[eo + o * B + b]
        if e != 0.0:
            v += W[wo + o * npre + p] * e
    Y[yo + x] = v


@cuda.jit
def k_soma(off, n, act, mode, a0, a1, a2, has_ap, has_nud, has_cur, has_tgt, has_icur,
           g_lk, g0, g1, g_nud, tau_r, gamma, sigma, bias, state, ports, ext, dt, sqdt, NB, B,
           noise, gn_gate, hold, nz, nzo, stat, seq):
    x_ = cuda.grid(1)
    if x_ >= n * B or stat[0] < seq:
        return
    i_ = x_ // B
    ii = off + i_
    x = off * B + x_
    vec = act == 2 or act == 4 or act == 6
    gn = g_nud[ii] * gn_gate
    gt = g_lk[ii] + g0[ii] + g1[ii] + gn
    gd = g_lk[ii] + g0[ii] + g1[ii] + g_nud[ii] if hold else gt
    tr = tau_r[ii] if mode == 0 else 1.0 / gd
    v0 = ports[PORT_PROXIMAL * NB + x] + bias[ii] + gamma[ii] * state[SIG_E * NB + x]
    v1 = ports[PORT_APICAL * NB + x] if has_ap else 0.0
    ut = (ports[PORT_NUDGE * NB + x] if has_nud else 0.0) + (ext[EXT_TARGET * NB + x] if has_tgt else 0.0)
    cur_p = ports[PORT_CURRENT * NB + x] if has_cur else 0.0
    cur_e = ext[EXT_CURRENT * NB + x] if has_icur else 0.0
    u = state[SIG_U * NB + x]
    if hold:
        ud = (gd / gt) * (g0[ii] * v0 + g1[ii] * v1 + gn * ut + cur_p + cur_e) - gd * u
    else:
        ud = g0[ii] * v0 + g1[ii] * v1 + gn * ut + cur_p + cur_e - gt * u
    up = u + tr * ud
    un = u + dt * ud
    if noise:
        un += sigma[ii] * sqdt * nz[nzo + x_]
    if not math.isfinite(un):
        fail(stat, seq)
    state[SIG_U * NB + x] = un
    state[SIG_UPROS * NB + x] = up
    if vec:
        rr, rp = phi_dphi_vec(up, act, a0, a1, a2)
    else:
        rr, rp = phi_dphi_simple(up, act)
    state[SIG_R * NB + x] = rr
    state[SIG_RP * NB + x] = rp
    state[SIG_UDOT * NB + x] = ud
    state[SIG_V0 * NB + x] = v0
    state[SIG_V1 * NB + x] = v1
    state[SIG_UTGT * NB + x] = ut


@cuda.jit
def k_softmax_norm(R, off, sh, n, B, NB, sm, stat, seq):
    b = cuda.grid(1)
    if b >= B or stat[0] < seq:
        return
    mx = -1e300
    for ii in range(off, off + n):
        mx = max(mx, R[SIG_R * NB + (ii + sh) * B + b])
    z = 0.0
    for ii in range(off, off + n):
        z += math.exp(R[SIG_R * NB + (ii + sh) * B + b] - mx)
    sm[b] = mx + math.log(z)


@cuda.jit
def k_error(off, sh, n, loss, prosp, g0, err_tau, state, R, ext, dt, NB, B, sm, beta, stat, seq):
    x_ = cuda.grid(1)
    if x_ >= n * B or stat[0] < seq:
        return
    i_ = x_ // B
    b = x_ - i_ * B
    ii = off + i_
    jj = ii + sh
    x = ii * B + b
    y = jj * B + b
    eps = R[SIG_RP * NB + y] * ext[EXT_WTE * NB + x] + ext[EXT_ERROR * NB + x]
    ext[EXT_WTE * NB + x] = 0.0
    if loss == LOSS_RATE:
        eps += beta * R[SIG_RP * NB + y] * (ext[EXT_TARGET * NB + x] - R[SIG_R * NB + y])
    elif loss == LOSS_VOLTAGE:
        eps += beta * (ext[EXT_TARGET * NB + x] - R[SIG_UPROS * NB + y])
    elif loss == LOSS_CROSS_ENTROPY:
        eps += beta * (ext[EXT_TARGET * NB + x] - math.exp(R[SIG_R * NB + y] - sm[b]))
    state[SIG_EPS * NB + x] = eps
    if prosp:
        v = state[SIG_VERR * NB + x]
        vd = (eps - v) / err_tau[jj]
        e = v + vd / g0[jj]
        state[SIG_VERR * NB + x] = v + dt * vd
    else:
        e = eps
    if not math.isfinite(e):
        fail(stat, seq)
    state[SIG_E * NB + x] = e


@cuda.jit
def k_post_factor(rule, npost, npre, post_off, eoff, port, vsig, po, woff, diag, act, a0, a1, a2,
                  g_lk, g0, g1, W, state, R, NB, B, pf, stat, seq):
    """The postsynaptic factor f of kernel._plasticity, one (post neuron, batch copy) per thread."""
    k = cuda.grid(1)
    if k >= npost * B or stat[0] < seq:
        return
    o = k // B
    b = k - o * B
    ii = post_off + o
    x = ii * B + b
    if rule == RULE_ERROR:
        f = state[SIG_E * NB + (eoff + o) * B + b]
    elif rule == RULE_URBANCZIK_SENN:   # r - phi(att v_port)
        gp = g1[ii] if port == PORT_APICAL else g0[ii]
        att = gp / (g_lk[ii] + g0[ii] + g1[ii])
        if act == 2 or act == 4 or act == 6:
            r_, rp_ = phi_dphi_vec(att * state[vsig * NB + x], act, a0, a1, a2)
            f = state[SIG_R * NB + x] - r_
        else:
            f = state[SIG_R * NB + x] - phi(att * state[vsig * NB + x], act, a0, a1, a2)
    elif rule == RULE_TARGET_PROP:   # target_prop: r_post - phi(W r_pre), own weights
        acc = 0.0
        if diag:
            acc = W[woff + o] * R[po + k]
        else:
            for p in range(npre):
                acc += W[woff + o * npre + p] * R[po + p * B + b]
        f = state[SIG_R * NB + x] - phi(acc, act, a0, a1, a2)
    else:
        f = -state[vsig * NB + x]
    pf[k] = f


@cuda.jit
def k_weights(npost, npre, po, woff, diag, dwoff, moff, tau_w, wmax, okind, ooff, oa, ob, oeps, dt, W, dwf,
              masks, R, B, pf, c, bc1, bc2, stat, seq):
    """The weight update of kernel._plasticity (non-BLAS paths), one weight per thread."""
    kw = cuda.grid(1)
    if stat[0] < seq:
        return
    inv_b = 1.0 / B
    if diag:
        o = kw
        if o >= npost:
            return
        acc = 0.0
        for b in range(B):
            k = o * B + b
            acc += pf[k] * R[po + k]
        upd = acc * inv_b
        if dwoff >= 0:
            kd = dwoff + o
            dwf[kd] += dt / tau_w * (upd - dwf[kd])
            upd = dwf[kd]
        if okind != 0:
            upd = opt_step(okind, oa, ob, oeps, bc1, bc2, dwf, ooff + o, npost, upd)
        w = W[woff + o] + c * upd
        if wmax > 0.0:
            w = min(max(w, -wmax), wmax)
        W[woff + o] = w
        return
    if kw >= npost * npre:
        return
    o = kw // npre
    p = kw - o * npre
    if dwoff < 0 and moff < 0 and wmax <= 0.0 and okind == 0:   # plain SGD, dense
        if B == 1:
            co = c * pf[o]
            if co != 0.0:
                W[woff + kw] += co * R[po + p]
        else:
            upd = 0.0
            for b in range(B):
                upd += pf[o * B + b] * R[po + p * B + b]
            W[woff + kw] += c * (upd * inv_b)
        return
    if B == 1:
        upd = pf[o] * R[po + p]
    else:
        upd = 0.0
        for b in range(B):
            upd += pf[o * B + b] * R[po + p * B + b]
        upd *= inv_b
    if dwoff >= 0:
        kd = dwoff + kw
        dwf[kd] += dt / tau_w * (upd - dwf[kd])
        upd = dwf[kd]
    if okind != 0:
        upd = opt_step(okind, oa, ob, oeps, bc1, bc2, dwf, ooff + kw, npost * npre, upd)
    w = W[woff + kw] + c * upd
    if moff >= 0:
        w *= masks[moff + kw]
    if wmax > 0.0:
        w = min(max(w, -wmax), wmax)
    W[woff + kw] = w


@cuda.jit
def k_pop_learn(off, n, rule, tmin, okind, ooff, oa, ob, oeps, esh, g0, bias, state, dt, NB, B, dwf,
                eta_b, eta_t, bc1, bc2, stat, seq):
    i_ = cuda.grid(1)
    if i_ >= n or stat[0] < seq:
        return
    ii = off + i_
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
        if okind != 0:
            gt = opt_step(okind, oa, ob, oeps, bc1, bc2, dwf, ooff + ii - off, n, gt)
        if rule == TAU_RULE_GLE:
            tau -= dt * eta_t * gt
        else:
            tau += dt * eta_t * gt
        g0[ii] = 1.0 / max(tau, tmin)


@cuda.jit
def k_record(B, NB, rec_int, rec_idx, rec_buf, state, k0, kk, stat, seq):
    """Row rr = blockIdx.y of the recording plan writes record j of this step, if the stride says so,
    laid out (record, batch, neuron, comp) as kernel.py does."""
    rr = cuda.blockIdx.y
    t = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    if stat[0] < seq:
        return
    stride = rec_int[rr, REC_STRIDE]
    step = k0 + kk
    if step % stride != 0:
        return
    nsel = rec_int[rr, REC_NSEL]
    if t >= B * nsel:
        return
    b = t // nsel
    s = t - b * nsel
    ncomp = rec_int[rr, REC_NCOMP]
    j = step // stride - (k0 + stride - 1) // stride
    dst = rec_int[rr, REC_BUF_OFF] + j * B * nsel * ncomp + rec_int[rr, REC_COMP]
    src = rec_int[rr, REC_SIGNAL] * NB + (rec_int[rr, REC_POP_OFF] + rec_idx[rec_int[rr, REC_IDX_OFF] + s]) * B + b
    rec_buf[dst + t * ncomp] = state[src]
