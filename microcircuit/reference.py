"""The NumPy reference stepper: the same op table as the kernel, executed op by op in plain
NumPy. Slow and readable; the ground truth for feature tests (kernel == reference to 1e-12)
and the place to debug a failing kernel. Same signature as :func:`kernel.run_chunk`.
"""
from __future__ import annotations

import numpy as np

from .activations import phi_np, dphi_np

_U, _UP, _R, _RP, _E, _UD, _V0, _V1, _EPS, _VERR, _UT = range(11)


def run_chunk(k0, K, dt, N, B, scheme, ops, pop_int, pop_float, g_lk, g0, g1, g_nud, tau_r, gamma,
              sigma, bias, err_tau, proj_int, proj_float, W, dwf, masks, state, prev, ports, ext,
              stim_int, stim, stim_row, gates, rec_int, rec_idx, rec_buf, rng, status):
    S = state.reshape(-1, N, B)          # views: updates write through
    Pv = prev.reshape(-1, N, B)
    Po = ports.reshape(-1, N, B)
    X = ext.reshape(-1, N, B)
    Rd = S if scheme == 1 else Pv
    for kk in range(K):
        step = k0 + kk
        t = step * dt
        for op, arg in ops:
            if op == 0:
                lo, hi = (arg >> 31) * B, (arg & 0x7FFFFFFF) * B
                prev[lo:hi] = state[lo:hi]
            elif op == 1:
                for off, n, kind, col in stim_int:
                    if kind != 0:
                        X[{1: 1, 2: 0, 3: 2}[kind], off:off + n] = 0.0
                for si, (off, n, kind, col) in enumerate(stim_int):
                    x = stim[stim_row[kk, si], col:col + n, :]
                    if kind == 0:
                        S[_R, off:off + n] = x
                        S[_U, off:off + n] = x
                        S[_UP, off:off + n] = x
                    else:
                        X[{1: 1, 2: 0, 3: 2}[kind], off:off + n] += x
            elif op == 2:
                pi, mask = arg % len(pop_int), arg // len(pop_int)
                off, n = pop_int[pi, :2]
                for p in range(Po.shape[0]):
                    if (mask >> p) & 1:
                        Po[p, off:off + n] = 0.0
            elif op == 3:
                _project(arg, proj_int, W, Rd, Po)
            elif op == 4:
                if _soma(arg % len(pop_int), pop_int, pop_float, g_lk, g0, g1, g_nud, tau_r, gamma, sigma, bias, S, Po, X,
                         gates[kk, 0], scheme == 2, dt, rng):
                    status[:] = (kk, 1, arg % len(pop_int), _U)
                    return
            elif op == 5:
                if _error(arg, pop_int, pop_float, g0, err_tau, S, Rd, X, gates[kk, 0], dt):
                    status[:] = (kk, 1, arg, _E)
                    return
            elif op == 6:
                po, npre, qo, npost = proj_int[arg, :4]
                off = proj_int[arg, 6] if proj_int[arg, 9] == 1 else proj_int[arg, 10]
                Wm = W[off:off + npost * npre].reshape(npost, npre)
                X[3, po:po + npre] += Wm.T @ S[_E, qo:qo + npost]
            elif op == 7:
                eta = proj_float[arg, 0]
                g = gates[kk, 1]
                if g != 0 and eta != 0 and proj_float[arg, 3] <= t < proj_float[arg, 4]:
                    _plasticity(arg, proj_int, proj_float, pop_int, pop_float, g_lk, g0, g1, W, dwf, masks,
                                S, Rd, dt * eta * g, dt, B)
            elif op == 8:
                if gates[kk, 1] != 0:
                    _pop_learn(arg, pop_int, pop_float, g0, bias, S, gates[kk, 1], dt, B, dwf)
            elif op == 9:   # cortical mapping: W^T e (tied), B e, or fixed rate comparisons into an error pop
                po, npre, qo, npost = proj_int[arg, :4]
                wo = proj_int[arg, 6]
                e = S[proj_int[arg, 5], po:po + npre]      # e of an error population, or a rate
                if proj_int[arg, 15] >= 0:
                    X[3, qo:qo + npost] += W[wo:wo + npre * npost].reshape(npre, npost).T @ e
                elif proj_int[arg, 7]:
                    X[3, qo:qo + npost] += W[wo:wo + npost, None] * e
                else:
                    X[3, qo:qo + npost] += W[wo:wo + npost * npre].reshape(npost, npre) @ e
            elif op == 10:  # a projection carrying e reads the current step's error
                _project(arg, proj_int, W, S, Po)
        for code, poff, ioff, nsel, stride, boff, ncomp, ci in rec_int:
            if step % stride:
                continue
            j = step // stride - (k0 + stride - 1) // stride
            buf = rec_buf[boff:].reshape(-1, B, nsel, ncomp) if nsel else None
            if nsel:
                buf[j, :, :, ci] = S[code, poff + rec_idx[ioff:ioff + nsel]].T
    status[0] = K


def _project(j, proj_int, W, src_buf, Po):
    """port += W x (or w * x one-to-one), x the projection's signal of its pre population in src_buf."""
    po, npre, qo, npost, port, sig, wo, diag = proj_int[j, :8]
    src = src_buf[sig, po:po + npre]
    if diag:
        Po[port, qo:qo + npost] += W[wo:wo + npost, None] * src
    else:
        Po[port, qo:qo + npost] += W[wo:wo + npost * npre].reshape(npost, npre) @ src


def _soma(i, pop_int, pop_float, g_lk, g0, g1, g_nud, tau_r, gamma, sigma, bias, S, Po, X, gate, keep_g_som, dt, rng):
    off, n, act = pop_int[i, :3]
    mode, gated, noise = pop_int[i, 7], pop_int[i, 8], pop_int[i, 9]
    a = pop_float[i, 4:7]
    sl = slice(off, off + n)
    gn = g_nud[sl, None] * (gate if gated else 1.0)
    gt = g_lk[sl, None] + g0[sl, None] + g1[sl, None] + gn
    hold = keep_g_som and gated and gate != 1.0     # published_microcircuit: g_som stays in g_tot
    gd = g_lk[sl, None] + g0[sl, None] + g1[sl, None] + g_nud[sl, None] if hold else gt
    tr = tau_r[sl, None] if mode == 0 else 1.0 / gd
    v0 = Po[0, sl] + bias[sl, None] + gamma[sl, None] * S[_E, sl]
    v1 = Po[1, sl]
    ut = Po[2, sl] + X[0, sl]
    u = S[_U, sl].copy()
    if hold:
        ud = (gd / gt) * (g0[sl, None] * v0 + g1[sl, None] * v1 + gn * ut + Po[3, sl] + X[1, sl]) - gd * u
    else:
        ud = g0[sl, None] * v0 + g1[sl, None] * v1 + gn * ut + Po[3, sl] + X[1, sl] - gt * u
    up = u + tr * ud
    un = u + dt * ud
    if noise:
        un = un + sigma[sl, None] * np.sqrt(dt) * rng.standard_normal(un.shape)
    S[_U, sl], S[_UP, sl], S[_UD, sl] = un, up, ud
    S[_R, sl], S[_RP, sl] = phi_np(up, act, a), dphi_np(up, act, a)
    S[_V0, sl], S[_V1, sl], S[_UT, sl] = v0, v1, ut
    return not np.all(np.isfinite(un))


def _error(i, pop_int, pop_float, g0, err_tau, S, Rd, X, gate, dt):
    off, n = pop_int[i, :2]
    loss, prosp = pop_int[i, 3], pop_int[i, 5]
    beta = pop_float[i, 0] * gate
    sl = slice(off, off + n)
    # a separate error population (cortical mapping) reads phi', r, u_pros, tau_m, tau_r of its partner
    ps = slice(pop_int[i, 11], pop_int[i, 11] + n) if pop_int[i, 11] >= 0 else sl
    eps = Rd[_RP, ps] * X[3, sl] + X[2, sl]
    X[3, sl] = 0.0
    y = X[0, sl]
    if loss == 1:
        eps = eps + beta * Rd[_RP, ps] * (y - Rd[_R, ps])
    elif loss == 2:
        eps = eps + beta * (y - Rd[_UP, ps])
    elif loss == 3:
        r = Rd[_R, ps]
        z = np.exp(r - r.max(axis=0))
        eps = eps + beta * (y - z / z.sum(axis=0))
    S[_EPS, sl] = eps
    if prosp:
        v = S[_VERR, sl].copy()
        vd = (eps - v) / err_tau[ps, None]
        e = v + vd / g0[ps, None]
        S[_VERR, sl] = v + dt * vd
    else:
        e = eps
    S[_E, sl] = e
    return not np.all(np.isfinite(e))


def _opt_step(kind, a, b, eps, t, buf, off, g):
    """Optimiser step on the estimate array g (state block at buf[off:]); see kernel._opt_step."""
    n = g.size
    m = buf[off:off + n].reshape(g.shape)
    if kind == 1:
        m *= a
        m += g
        return m.copy()
    v = buf[off + n:off + 2 * n].reshape(g.shape)
    m[...] = a * m + (1.0 - a) * g
    v[...] = b * v + (1.0 - b) * g * g
    return (m / (1.0 - a ** t)) / (np.sqrt(v / (1.0 - b ** t)) + eps)


def _plasticity(j, proj_int, proj_float, pop_int, pop_float, g_lk, g0, g1, W, dwf, masks, S, Rd, c, dt, B):
    po, npre, qo, npost, port, sig, wo, diag, rule = proj_int[j, :9]
    dwo, mo, ip = proj_int[j, 11], proj_int[j, 12], proj_int[j, 13]
    tau_w, wmax = proj_float[j, 1], proj_float[j, 2]
    sl = slice(qo, qo + npost)
    v = S[7 if port == 1 else 6, sl]
    if rule == 1:   # e of the post population, or of the error population named by proj_int[:, 16]
        eo = proj_int[j, 16] if proj_int[j, 16] >= 0 else qo
        f = S[_E, eo:eo + npost]
    elif rule == 2:
        gp = (g1 if port == 1 else g0)[sl, None]
        att = gp / (g_lk[sl, None] + g0[sl, None] + g1[sl, None])
        f = S[_R, sl] - phi_np(att * v, pop_int[ip, 2], pop_float[ip, 4:7])
    elif rule == 4:  # target_prop: r_post - phi(W r_pre) with the projection's own weights
        src = Rd[sig, po:po + npre]
        if diag:
            vw = W[wo:wo + npost, None] * src
        else:
            vw = W[wo:wo + npost * npre].reshape(npost, npre) @ src
        f = S[_R, sl] - phi_np(vw, pop_int[ip, 2], pop_float[ip, 4:7])
    else:
        f = -v
    pre = Rd[sig, po:po + npre]
    if diag:
        upd = (f * pre).sum(axis=1) / B
        size = npost
    else:
        upd = (f @ pre.T) / B
        size = npost * npre
    if dwo >= 0:
        d = dwf[dwo:dwo + size].reshape(upd.shape)
        d += dt / tau_w * (upd - d)
        upd = d
    okind = int(proj_float[j, 5])
    if okind != 0:
        proj_float[j, 9] += 1.0
        upd = _opt_step(okind, proj_float[j, 6], proj_float[j, 7], proj_float[j, 8], proj_float[j, 9], dwf,
                        proj_int[j, 14], upd)
    Wb = W[wo:wo + size].reshape(upd.shape)
    Wb += c * upd
    if mo >= 0 and not diag:
        Wb *= masks[mo:mo + size].reshape(upd.shape)
    if wmax > 0:
        np.clip(Wb, -wmax, wmax, out=Wb)


def _pop_learn(i, pop_int, pop_float, g0, bias, S, gate, dt, B, dwf):
    off, n = pop_int[i, :2]
    rule = pop_int[i, 6]
    eta_b, eta_t, tmin = pop_float[i, 3] * gate, pop_float[i, 1] * gate, pop_float[i, 2]
    sl = slice(off, off + n)
    es = slice(pop_int[i, 11], pop_int[i, 11] + n) if pop_int[i, 11] >= 0 else sl   # partner error pop
    if eta_b != 0:
        bias[sl] += dt * eta_b * S[_E, es].mean(axis=1)
    if rule != 0 and eta_t != 0:
        tau = 1.0 / g0[sl]
        if rule == 1:
            gt = (S[_E, es] * S[_UD, sl]).sum(axis=1) / B
        else:
            gt = ((S[_UP, sl] - S[_V0, sl]) * S[_UD, sl]).sum(axis=1) / B
        okind = int(pop_float[i, 7])
        if okind != 0:
            pop_float[i, 11] += 1.0
            gt = _opt_step(okind, pop_float[i, 8], pop_float[i, 9], pop_float[i, 10], pop_float[i, 11], dwf,
                           pop_int[i, 10], gt)
        tau = tau - dt * eta_t * gt if rule == 1 else tau + dt * eta_t * gt
        g0[sl] = 1.0 / np.maximum(tau, tmin)
