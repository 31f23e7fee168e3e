"""Transfer functions phi and their derivatives phi'.

Each activation has an integer id used by the compiled kernel and up to three parameters
``(p0, p1, p2)``:

========================  =====================================  ==========================
name                      phi(x)                                 parameters
========================  =====================================  ==========================
``linear``                x                                      -
``tanh``                  tanh(x)                                -
``logistic``              1 / (1 + exp(-x))                      -
``hard_sigmoid``          clip(x, 0, 1)                          -
``softplus``              log(1 + exp(x))                        -
``relu``                  max(x, 0)                              -
``soft_rectifier``        gamma * log(1 + exp(beta (x - theta)))  gamma, beta, theta
========================  =====================================  ==========================

``soft_rectifier`` is the Sacramento et al. (2018) regression nonlinearity (gamma 0.1, beta 1,
theta 3). The derivative of ``hard_sigmoid`` and ``relu`` at the kinks is taken as 1 inside the
open interval and 0 outside, as in the LE reference scheme.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

ACTIVATIONS = {
    "linear": 0,
    "tanh": 1,
    "logistic": 2,
    "hard_sigmoid": 3,
    "softplus": 4,
    "relu": 5,
    "soft_rectifier": 6,
}
DEFAULT_PARAMS = {"soft_rectifier": (0.1, 1.0, 3.0)}


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
        return _sigmoid(x)
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
        s = _sigmoid(x)
        return s * (1.0 - s)
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
        s = _sigmoid(x)
        return s, s * (1.0 - s)
    if kind == 3:
        return min(max(x, 0.0), 1.0), (1.0 if (x > 0.0 and x < 1.0) else 0.0)
    if kind == 4:
        return _softplus_and_sigmoid(x)
    if kind == 5:
        return max(x, 0.0), (1.0 if x > 0.0 else 0.0)
    sp, sg = _softplus_and_sigmoid(p1 * (x - p2))
    return p0 * sp, p0 * p1 * sg


def phi_np(x, kind, p=(0.0, 0.0, 0.0)):
    """NumPy version of :func:`phi` (used by the reference stepper and analysis)."""
    x = np.asarray(x, dtype=float)
    if kind == 0:
        return x.copy()
    if kind == 1:
        return np.tanh(x)
    if kind == 2:
        return _sigmoid_np(x)
    if kind == 3:
        return np.clip(x, 0.0, 1.0)
    if kind == 4:
        return np.logaddexp(0.0, x)
    if kind == 5:
        return np.maximum(x, 0.0)
    return p[0] * np.logaddexp(0.0, p[1] * (x - p[2]))


def dphi_np(x, kind, p=(0.0, 0.0, 0.0)):
    x = np.asarray(x, dtype=float)
    if kind == 0:
        return np.ones_like(x)
    if kind == 1:
        return 1.0 - np.tanh(x) ** 2
    if kind == 2:
        s = _sigmoid_np(x)
        return s * (1.0 - s)
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
