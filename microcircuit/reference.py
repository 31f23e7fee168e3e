"""The NumPy reference stepper: the same op table as the kernel, executed op by op in plain
NumPy. Slow and readable; the ground truth for feature tests (kernel == reference to 1e-12)
and the place to debug a failing kernel. Same signature as :func:`kernel.run_chunk`.
"""
from __future__ import annotations

import numpy as np

from .activations import phi_np, dphi_np
from .layout import *  # noqa: F401,F403  (signal rows, ports, ext rows, opcodes, ids, table columns)



def run_chunk(k0, K, dt, N, B, scheme, ops, pop_int, pop_float, g_lk, g0, g1, g_nud, tau_r, gamma,
              sigma, bias, err_tau, proj_int, proj_float, W, dwf, masks, state, prev, ports, ext,
              stim_int, stim, stim_row, gates, rec_int, rec_idx, rec_buf, rng, status):
    S = state.reshape(-1, N, B)          # views: updates write through
    Pv = prev.reshape(-1, N, B)
    Po = ports.reshape(-1, N, B)
    X = ext.reshape(-1, N, B)
    Rd = S if scheme == SCHEME_SEQUENTIAL else Pv
    for kk in range(K):
        step = k0 + kk
        t = step * dt
        for op, arg in ops:
            if op == OP_COPY_PREV:
                lo, hi = (arg >> COPY_SHIFT) * B, (arg & COPY_MASK) * B
                prev[lo:hi] = state[lo:hi]
            elif op == OP_STIM:
                for off, n, kind, col in stim_int:
                    if kind != 0:
                        X[EXT_ROW_OF_KIND[kind], off:off + n] = 0.0
                for si, (off, n, kind, col) in enumerate(stim_int):
                    x = stim[stim_row[kk, si], col:col + n, :]
                    if kind == STIM_RATE:
                        S[SIG_R, off:off + n] = x
                        S[SIG_U, off:off + n] = x
                        S[SIG_UPROS, off:off + n] = x
                    else:
                        X[EXT_ROW_OF_KIND[kind], off:off + n] += x
            elif op == OP_CLEAR_PORTS:
                pi, mask = arg % len(pop_int), arg // len(pop_int)
                off, n = pop_int[pi, PP_OFF], pop_int[pi, PP_N]
                for p in range(Po.shape[0]):
                    if (mask >> p) & 1:
                        Po[p, off:off + n] = 0.0
            elif op == OP_PROJECT:
                _project(arg, proj_int, W, Rd, Po)
            elif op == OP_SOMA:
                if _soma(arg % len(pop_int), pop_int, pop_float, g_lk, g0, g1, g_nud, tau_r, gamma, sigma, bias, S, Po, X,
                         gates[kk, GATE_NUDGE], scheme == SCHEME_PUBLISHED_MICROCIRCUIT, dt, rng):
                    status[:] = (kk, 1, arg % len(pop_int), SIG_U)
                    return
            elif op == OP_ERROR:
                if _error(arg, pop_int, pop_float, g0, err_tau, S, Rd, X, gates[kk, GATE_NUDGE], dt):
                    status[:] = (kk, 1, arg, SIG_E)
                    return
            elif op == OP_BACKPROJECT:
                po, npre, qo, npost = proj_int[arg, [PJ_PRE_OFF, PJ_NPRE, PJ_POST_OFF, PJ_NPOST]]
                off = proj_int[arg, PJ_W_OFF] if proj_int[arg, PJ_FB] == FB_TRANSPOSE else proj_int[arg, PJ_FB_OFF]
                Wm = W[off:off + npost * npre].reshape(npost, npre)
                X[EXT_WTE, po:po + npre] += Wm.T @ S[SIG_E, qo:qo + npost]
            elif op == OP_PLASTICITY:
                eta = proj_float[arg, PF_ETA]
                g = gates[kk, GATE_PLASTICITY]
                if g != 0 and eta != 0 and proj_float[arg, PF_T_ON] <= t < proj_float[arg, PF_T_OFF]:
                    _plasticity(arg, proj_int, proj_float, pop_int, pop_float, g_lk, g0, g1, W, dwf, masks,
                                S, Rd, dt * eta * g, dt, B)
            elif op == OP_POP_LEARN:
                if gates[kk, GATE_PLASTICITY] != 0:
                    _pop_learn(arg, pop_int, pop_float, g0, bias, S, gates[kk, GATE_PLASTICITY], dt, B, dwf)
            elif op == OP_ERROR_PROJECT:   # cortical mapping: W^T e (tied), B e, or fixed rate comparisons into an error pop
                po, npre, qo, npost = proj_int[arg, [PJ_PRE_OFF, PJ_NPRE, PJ_POST_OFF, PJ_NPOST]]
                wo = proj_int[arg, PJ_W_OFF]
                e = S[proj_int[arg, PJ_SIGNAL], po:po + npre]      # e of an error population, or a rate
                if proj_int[arg, PJ_TIED] >= 0:
                    X[EXT_WTE, qo:qo + npost] += W[wo:wo + npre * npost].reshape(npre, npost).T @ e
                elif proj_int[arg, PJ_DIAG]:
                    X[EXT_WTE, qo:qo + npost] += W[wo:wo + npost, None] * e
                else:
                    X[EXT_WTE, qo:qo + npost] += W[wo:wo + npost * npre].reshape(npost, npre) @ e
            elif op == OP_PROJECT_ERROR:  # a projection carrying e reads the current step's error
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
    po, npre, qo, npost, port, sig, wo, diag = proj_int[j, [PJ_PRE_OFF, PJ_NPRE, PJ_POST_OFF, PJ_NPOST, PJ_PORT,
                                                           PJ_SIGNAL, PJ_W_OFF, PJ_DIAG]]
    src = src_buf[sig, po:po + npre]
    if diag:
        Po[port, qo:qo + npost] += W[wo:wo + npost, None] * src
    else:
        Po[port, qo:qo + npost] += W[wo:wo + npost * npre].reshape(npost, npre) @ src


def _soma(i, pop_int, pop_float, g_lk, g0, g1, g_nud, tau_r, gamma, sigma, bias, S, Po, X, gate, keep_g_som, dt, rng):
    off, n, act = pop_int[i, [PP_OFF, PP_N, PP_ACT]]
    mode, gated, noise = pop_int[i, PP_TAUR_MODE], pop_int[i, PP_GATED], pop_int[i, PP_NOISE]
    a = pop_float[i, PPF_A0:PPF_A2 + 1]
    sl = slice(off, off + n)
    gn = g_nud[sl, None] * (gate if gated else 1.0)
    gt = g_lk[sl, None] + g0[sl, None] + g1[sl, None] + gn
    hold = keep_g_som and gated and gate != 1.0     # published_microcircuit: g_som stays in g_tot
    gd = g_lk[sl, None] + g0[sl, None] + g1[sl, None] + g_nud[sl, None] if hold else gt
    tr = tau_r[sl, None] if mode == 0 else 1.0 / gd
    v0 = Po[PORT_PROXIMAL, sl] + bias[sl, None] + gamma[sl, None] * S[SIG_E, sl]
    v1 = Po[PORT_APICAL, sl]
    ut = Po[PORT_NUDGE, sl] + X[EXT_TARGET, sl]
    u = S[SIG_U, sl].copy()
    if hold:
        ud = (gd / gt) * (g0[sl, None] * v0 + g1[sl, None] * v1 + gn * ut + Po[PORT_CURRENT, sl] + X[EXT_CURRENT, sl]) - gd * u
    else:
        ud = g0[sl, None] * v0 + g1[sl, None] * v1 + gn * ut + Po[PORT_CURRENT, sl] + X[EXT_CURRENT, sl] - gt * u
    up = u + tr * ud
    un = u + dt * ud
    if noise:
        un = un + sigma[sl, None] * np.sqrt(dt) * rng.standard_normal(un.shape)
    S[SIG_U, sl], S[SIG_UPROS, sl], S[SIG_UDOT, sl] = un, up, ud
    S[SIG_R, sl], S[SIG_RP, sl] = phi_np(up, act, a), dphi_np(up, act, a)
    S[SIG_V0, sl], S[SIG_V1, sl], S[SIG_UTGT, sl] = v0, v1, ut
    return not np.all(np.isfinite(un))


def _error(i, pop_int, pop_float, g0, err_tau, S, Rd, X, gate, dt):
    off, n = pop_int[i, PP_OFF], pop_int[i, PP_N]
    loss, prosp = pop_int[i, PP_LOSS], pop_int[i, PP_ERRMODE]
    beta = pop_float[i, PPF_BETA] * gate
    sl = slice(off, off + n)
    # a separate error population (cortical mapping) reads phi', r, u_pros, tau_m, tau_r of its partner
    ps = slice(pop_int[i, PP_PARTNER], pop_int[i, PP_PARTNER] + n) if pop_int[i, PP_PARTNER] >= 0 else sl
    eps = Rd[SIG_RP, ps] * X[EXT_WTE, sl] + X[EXT_ERROR, sl]
    X[EXT_WTE, sl] = 0.0
    y = X[EXT_TARGET, sl]
    if loss == LOSS_RATE:
        eps = eps + beta * Rd[SIG_RP, ps] * (y - Rd[SIG_R, ps])
    elif loss == LOSS_VOLTAGE:
        eps = eps + beta * (y - Rd[SIG_UPROS, ps])
    elif loss == LOSS_CROSS_ENTROPY:
        r = Rd[SIG_R, ps]
        z = np.exp(r - r.max(axis=0))
        eps = eps + beta * (y - z / z.sum(axis=0))
    S[SIG_EPS, sl] = eps
    if prosp:
        v = S[SIG_VERR, sl].copy()
        vd = (eps - v) / err_tau[ps, None]
        e = v + vd / g0[ps, None]
        S[SIG_VERR, sl] = v + dt * vd
    else:
        e = eps
    S[SIG_E, sl] = e
    return not np.all(np.isfinite(e))


def _opt_step(kind, a, b, eps, t, buf, off, g):
    """Optimiser step on the estimate array g (state block at buf[off:]); see kernel._opt_step."""
    n = g.size
    m = buf[off:off + n].reshape(g.shape)
    if kind == OPT_MOMENTUM:
        m *= a
        m += g
        return m.copy()
    v = buf[off + n:off + 2 * n].reshape(g.shape)
    m[...] = a * m + (1.0 - a) * g
    v[...] = b * v + (1.0 - b) * g * g
    return (m / (1.0 - a ** t)) / (np.sqrt(v / (1.0 - b ** t)) + eps)


def _plasticity(j, proj_int, proj_float, pop_int, pop_float, g_lk, g0, g1, W, dwf, masks, S, Rd, c, dt, B):
    po, npre, qo, npost, port, sig, wo, diag, rule = proj_int[j, [PJ_PRE_OFF, PJ_NPRE, PJ_POST_OFF, PJ_NPOST,
                                                                 PJ_PORT, PJ_SIGNAL, PJ_W_OFF, PJ_DIAG, PJ_RULE]]
    dwo, mo, ip = proj_int[j, PJ_DW_OFF], proj_int[j, PJ_MASK_OFF], proj_int[j, PJ_POST_POP]
    tau_w, wmax = proj_float[j, PF_TAU_W], proj_float[j, PF_W_MAX]
    sl = slice(qo, qo + npost)
    v = S[SIG_V1 if port == PORT_APICAL else SIG_V0, sl]
    if rule == RULE_ERROR:   # e of the post population, or of the error population named by PJ_ERR_OFF
        eo = proj_int[j, PJ_ERR_OFF] if proj_int[j, PJ_ERR_OFF] >= 0 else qo
        f = S[SIG_E, eo:eo + npost]
    elif rule == RULE_URBANCZIK_SENN:
        gp = (g1 if port == PORT_APICAL else g0)[sl, None]
        att = gp / (g_lk[sl, None] + g0[sl, None] + g1[sl, None])
        f = S[SIG_R, sl] - phi_np(att * v, pop_int[ip, PP_ACT], pop_float[ip, PPF_A0:PPF_A2 + 1])
    elif rule == RULE_TARGET_PROP:  # target_prop: r_post - phi(W r_pre) with the projection's own weights
        src = Rd[sig, po:po + npre]
        if diag:
            vw = W[wo:wo + npost, None] * src
        else:
            vw = W[wo:wo + npost * npre].reshape(npost, npre) @ src
        f = S[SIG_R, sl] - phi_np(vw, pop_int[ip, PP_ACT], pop_float[ip, PPF_A0:PPF_A2 + 1])
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
    okind = int(proj_float[j, PF_OPT])
    if okind != 0:
        proj_float[j, PF_OPT_T] += 1.0
        upd = _opt_step(okind, proj_float[j, PF_OPT_A], proj_float[j, PF_OPT_B], proj_float[j, PF_OPT_EPS], proj_float[j, PF_OPT_T], dwf,
                        proj_int[j, PJ_OPT_OFF], upd)
    Wb = W[wo:wo + size].reshape(upd.shape)
    Wb += c * upd
    if mo >= 0 and not diag:
        Wb *= masks[mo:mo + size].reshape(upd.shape)
    if wmax > 0:
        np.clip(Wb, -wmax, wmax, out=Wb)


def _pop_learn(i, pop_int, pop_float, g0, bias, S, gate, dt, B, dwf):
    off, n = pop_int[i, PP_OFF], pop_int[i, PP_N]
    rule = pop_int[i, PP_TAU_RULE]
    eta_b, eta_t, tmin = pop_float[i, PPF_ETA_BIAS] * gate, pop_float[i, PPF_ETA_TAU] * gate, pop_float[i, PPF_TAU_MIN]
    sl = slice(off, off + n)
    partner = pop_int[i, PP_PARTNER]
    es = slice(partner, partner + n) if partner >= 0 else sl   # e of a partner error population
    if eta_b != 0:
        bias[sl] += dt * eta_b * S[SIG_E, es].mean(axis=1)
    if rule != TAU_RULE_NONE and eta_t != 0:
        tau = 1.0 / g0[sl]
        if rule == TAU_RULE_GLE:
            gt = (S[SIG_E, es] * S[SIG_UDOT, sl]).sum(axis=1) / B
        else:
            gt = ((S[SIG_UPROS, sl] - S[SIG_V0, sl]) * S[SIG_UDOT, sl]).sum(axis=1) / B
        okind = int(pop_float[i, PPF_TOPT])
        if okind != OPT_SGD:
            pop_float[i, PPF_TOPT_T] += 1.0
            gt = _opt_step(okind, pop_float[i, PPF_TOPT_A], pop_float[i, PPF_TOPT_B], pop_float[i, PPF_TOPT_EPS],
                           pop_float[i, PPF_TOPT_T], dwf, pop_int[i, PP_TAU_OPT_OFF], gt)
        tau = tau - dt * eta_t * gt if rule == TAU_RULE_GLE else tau + dt * eta_t * gt
        g0[sl] = 1.0 / np.maximum(tau, tmin)
