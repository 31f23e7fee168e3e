"""Transfer functions phi and their derivatives phi'.

Each activation has an integer id used by the compiled kernel and up to three parameters
``(p0, p1, p2)``:

==================  ======================================  ==================
name                phi(x)                                  parameters
==================  ======================================  ==================
``linear``          x                                       -
``tanh``            tanh(x)                                 -
``logistic``        r_max / (1 + exp(-beta (x - theta)))    r_max, beta, theta
``hard_sigmoid``    clip(x, 0, 1)                           -
``softplus``        log(1 + exp(x))                         -
``relu``            max(x, 0)                               -
``soft_rectifier``  gamma * log(1 + exp(beta (x - theta)))  gamma, beta, theta
==================  ======================================  ==================

``soft_rectifier`` is the Sacramento et al. (2018) regression nonlinearity (gamma 0.1, beta 1,
theta 3). ``logistic`` defaults to (r_max, beta, theta) = (1, 1, 0), the plain 1 / (1 + e^{-x}); with
other values it is a fitted f-I curve (:func:`microcircuit.ephys_model.fit_to_population`): maximal
rate r_max, gain beta (slope r_max beta / 4 at x = theta) and half-activation potential theta. The derivative of ``hard_sigmoid`` and ``relu`` at the kinks is taken as 1 inside the
open interval and 0 outside, as in the LE reference scheme.
"""
from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from .jit import njit

ACTIVATIONS = {
    "linear": 0,
    "tanh": 1,
    "logistic": 2,
    "hard_sigmoid": 3,
    "softplus": 4,
    "relu": 5,
    "soft_rectifier": 6,
}
DEFAULT_PARAMS = {"soft_rectifier": (0.1, 1.0, 3.0), "logistic": (1.0, 1.0, 0.0)}


def activation_id(name: str) -> int:
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"unknown activation '{name}'; choose one of {sorted(ACTIVATIONS)}") from None


@njit(cache=True, inline="always")
def _softplus(x):
    # stable log(1 + e^x)
    if x > 30.0:
        return x + math.log1p(math.exp(-x))
    return math.log1p(math.exp(x))


@njit(cache=True, inline="always")
def _sigmoid(x):
    if x >= 0.0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


@njit(cache=True)
def phi(x, kind, p0, p1, p2):
    if kind == 0:
        return x
    if kind == 1:
        return math.tanh(x)
    if kind == 2:
        return p0 * _sigmoid(p1 * (x - p2))
    if kind == 3:
        return min(max(x, 0.0), 1.0)
    if kind == 4:
        return _softplus(x)
    if kind == 5:
        return max(x, 0.0)
    return p0 * _softplus(p1 * (x - p2))


@njit(cache=True)
def dphi(x, kind, p0, p1, p2):
    if kind == 0:
        return 1.0
    if kind == 1:
        t = math.tanh(x)
        return 1.0 - t * t
    if kind == 2:
        s = _sigmoid(p1 * (x - p2))
        return p0 * p1 * s * (1.0 - s)
    if kind == 3:
        return 1.0 if (x > 0.0 and x < 1.0) else 0.0
    if kind == 4:
        return _sigmoid(x)
    if kind == 5:
        return 1.0 if x > 0.0 else 0.0
    return p0 * p1 * _sigmoid(p1 * (x - p2))


@njit(cache=True, inline="always")
def _softplus_and_sigmoid(x):
    # one exponential for both: z = e^{-|x|}, softplus = max(x, 0) + log(1 + z)
    z = math.exp(-abs(x))
    sp = max(x, 0.0) + math.log1p(z)
    sg = 1.0 / (1.0 + z) if x >= 0.0 else z / (1.0 + z)
    return sp, sg


@njit(cache=True, inline="always")
def phi_and_dphi(x, kind, p0, p1, p2):
    """(phi(x), phi'(x)) sharing the transcendental evaluations (the soma needs both every step)."""
    if kind == 0:
        return x, 1.0
    if kind == 1:
        t = math.tanh(x)
        return t, 1.0 - t * t
    if kind == 2:
        s = _sigmoid(p1 * (x - p2))
        return p0 * s, p0 * p1 * s * (1.0 - s)
    if kind == 3:
        return min(max(x, 0.0), 1.0), (1.0 if (x > 0.0 and x < 1.0) else 0.0)
    if kind == 4:
        return _softplus_and_sigmoid(x)
    if kind == 5:
        return max(x, 0.0), (1.0 if x > 0.0 else 0.0)
    sp, sg = _softplus_and_sigmoid(p1 * (x - p2))
    return p0 * sp, p0 * p1 * sg


# ---------------------------------------------------------------------------------------------------
# Vectorised softplus / sigmoid for whole populations (the kernel's soma and Urbanczik-Senn rule).
# libm's exp and log1p are calls that LLVM cannot vectorise (no SVML here); written out as polynomials
# with Cody-Waite reduction and run over blocks padded to a multiple of 8 they become AVX code:
# measured 101 ns instead of 323 ns for a population of 30 (3 ns instead of 11 per neuron).
# Accuracy (tests/test_activations_vector.py): e^{-a} within 1 ulp and log1p within 2 ulp of NumPy.
_LOG2E = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01     # ln 2 split so that n * _LN2_HI is exact (fdlibm)
_LN2_LO = 1.90821492927058770002e-10
_SQRT2M1 = 0.41421356237309503
VECTOR_KINDS = (2, 4, 6)                 # logistic, softplus, soft_rectifier
_PAD = 8                                 # doubles per AVX-512 register: blocks are padded to a multiple


@njit(cache=True, inline="always")
def is_vector_kind(kind):
    """Whether :func:`phi_dphi_vector` evaluates this activation (the kinds in ``VECTOR_KINDS``)."""
    return kind == 2 or kind == 4 or kind == 6


@njit(cache=True, inline="always")
def padded_length(n):
    """n rounded up to a multiple of ``_PAD``: the length of the blocks :func:`phi_dphi_vector` uses."""
    return (n + _PAD - 1) // _PAD * _PAD


_EXP_TAYLOR = tuple(1.0 / math.factorial(k) for k in range(13, 1, -1))     # 1/13!, ..., 1/2!
_ATANH_SERIES = tuple(1.0 / k for k in range(21, 2, -2))                    # 1/21, 1/19, ..., 1/3


@njit(cache=True, inline="always", error_model="numpy")
def _horner(x, coefs):
    """sum_k coefs[k] x^(n-1-k) by Horner's rule (the tuple is a compile-time constant: unrolled)."""
    p = coefs[0]
    for k in range(1, len(coefs)):
        p = p * x + coefs[k]
    return p


@intrinsic
def _f64_from_bits(typingctx, i):
    """The float64 whose IEEE-754 bit pattern is the int64 ``i`` (2^k without a call to ldexp)."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())
    return types.float64(types.int64), codegen


@njit(cache=True, inline="always", error_model="numpy")
def _exp_neg(a):
    """e^{-a} for a >= 0: -a = r - n ln2 with |r| <= ln2/2, e^r by its Taylor series to r^13 (truncation
    < 1e-17), times 2^{-n}. Clamped at a = 708 (e^{-708} ~ 3e-308, the end of the normal range)."""
    a = min(a, 708.0)
    t = math.floor(a * _LOG2E + 0.5)
    r = (t * _LN2_HI - a) + t * _LN2_LO
    p = _horner(r, _EXP_TAYLOR)             # (e^r - 1 - r) / r^2
    p = p * r * r + r                        # e^r - 1
    return (1.0 + p) * _f64_from_bits((1023 - np.int64(t)) << 52)


@njit(cache=True, inline="always", error_model="numpy")
def _log1p_unit(z):
    """log(1 + z) for 0 <= z <= 1: 2 atanh(s) with s = z/(2+z) (z <= sqrt2 - 1), else
    ln2 + 2 atanh((z-1)/(z+3)); |s| <= 0.172, so the series to s^21 is exact to 1e-17."""
    big = z > _SQRT2M1
    s = (z - 1.0) / (z + 3.0) if big else z / (z + 2.0)
    s2 = s * s
    q = _horner(s2, _ATANH_SERIES)          # (atanh(s) / s - 1) / s^2
    res = 2.0 * s + 2.0 * s * (s2 * q)
    return (_LN2_HI + (res + _LN2_LO)) if big else res


@njit(cache=True, inline="always", error_model="numpy")
def phi_dphi_vector(x, n, kind, p0, p1, p2, r, rp):
    """``r[k], rp[k] = phi(x[k]), phi'(x[k])`` for k < n, for the kinds in ``VECTOR_KINDS``. x, r, rp
    are scratch blocks of at least ``padded_length(n)`` (no aliasing, so the loop vectorises); x is
    zero-padded to that length so that the loop runs over whole vector registers only."""
    m = padded_length(n)
    for k in range(n, m):
        x[k] = 0.0
    for k in range(m):
        y = x[k] if kind == 4 else p1 * (x[k] - p2)     # logistic, soft_rectifier: scaled and shifted
        z = _exp_neg(abs(y))
        d = 1.0 / (1.0 + z)
        sg = d if y >= 0.0 else z * d                    # sigmoid(y)
        if kind == 2:
            r[k] = p0 * sg
            rp[k] = p0 * p1 * sg * (1.0 - sg)
        elif kind == 4:
            r[k] = max(y, 0.0) + _log1p_unit(z)          # softplus(y)
            rp[k] = sg
        else:
            r[k] = p0 * (max(y, 0.0) + _log1p_unit(z))
            rp[k] = p0 * p1 * sg


def _params_np(kind, p):
    """``p``, or the kind's :data:`DEFAULT_PARAMS` when ``p`` is None (callers without parameters)."""
    if p is not None:
        return p
    name = next(k for k, v in ACTIVATIONS.items() if v == kind)
    return DEFAULT_PARAMS.get(name, (0.0, 0.0, 0.0))


def phi_np(x, kind, p=None):
    """NumPy version of :func:`phi` (used by the reference stepper and analysis); ``p=None``: the
    kind's default parameters."""
    x = np.asarray(x, dtype=float)
    p = _params_np(kind, p)
    if kind == 0:
        return x.copy()
    if kind == 1:
        return np.tanh(x)
    if kind == 2:
        return p[0] * _sigmoid_np(p[1] * (x - p[2]))
    if kind == 3:
        return np.clip(x, 0.0, 1.0)
    if kind == 4:
        return np.logaddexp(0.0, x)
    if kind == 5:
        return np.maximum(x, 0.0)
    return p[0] * np.logaddexp(0.0, p[1] * (x - p[2]))


def dphi_np(x, kind, p=None):
    x = np.asarray(x, dtype=float)
    p = _params_np(kind, p)
    if kind == 0:
        return np.ones_like(x)
    if kind == 1:
        return 1.0 - np.tanh(x) ** 2
    if kind == 2:
        s = _sigmoid_np(p[1] * (x - p[2]))
        return p[0] * p[1] * s * (1.0 - s)
    if kind == 3:
        return ((x > 0.0) & (x < 1.0)).astype(float)
    if kind == 4:
        return _sigmoid_np(x)
    if kind == 5:
        return (x > 0.0).astype(float)
    return p[0] * p[1] * _sigmoid_np(p[1] * (x - p[2]))


def _sigmoid_np(x):
    out = np.empty_like(x)
    pos = x >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-x[pos]))
    z = np.exp(x[~pos])
    out[~pos] = z / (1.0 + z)
    return out
