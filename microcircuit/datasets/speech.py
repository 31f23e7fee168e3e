"""A synthetic stand-in with the shape of the GLE Google-Speech-Commands task (no download).

The GLE paper's GSC network reads 32 log-mel channels per step, 800 steps per 1 s clip (dt = 0.05),
12 classes (GLE paper, Ellenberger et al. 2024, §C.8). :func:`speech_shaped` makes time series of that shape: each class is a
fixed set of ``n_formants`` "formant" tracks (a Gaussian bump over the channels whose centre glides
linearly from a start to an end channel, with a width and an amplitude), drawn once from the seed.
A sample of class ``c`` places the word at a random onset (5-30 % of the clip) with a random length
(40-60 %), under a ``sin²`` envelope, jitters every track centre by up to ±1 channel, adds Gaussian
noise of standard deviation ``noise``, and is normalised per sample (zero mean, unit variance; GSC
normalises per sample too). Labels are uniform over the classes.

Features are laid out step-major, ``x[n, k * n_channels + ch]``, as ``presentation = "sequence"``
expects (``n_channels`` inputs per step, ``n_steps`` steps). A pure function of its arguments: the
class tracks come from ``SeedSequence([seed, 0])``, split ``i`` (train, val, test) from
``SeedSequence([seed, 1 + i])``, so a split does not change when another split's size does.

This is not speech: it only gives the network its published input shape and a learnable
12-way temporal task; accuracies are not comparable with the paper's GSC numbers.
"""

from __future__ import annotations

import numpy as np

from .base import DatasetError, SupervisedData, check_positive_int

__all__ = ["speech_shaped", "SPEECH_MAX_VALUES"]

SPEECH_MAX_VALUES = 50_000_000      # samples x steps x channels over all splits (400 MB of float64)


def _split(rng, n, n_steps, n_channels, tracks, noise):
    """``n`` samples ``(n, n_steps * n_channels)`` and labels ``(n,)``."""
    n_classes, n_formants = tracks["c0"].shape
    y = rng.integers(0, n_classes, size=n)
    onset = rng.uniform(0.05, 0.30, size=n)
    length = rng.uniform(0.40, 0.60, size=n)
    jitter = rng.uniform(-1.0, 1.0, size=(n, n_formants))
    t = (np.arange(n_steps) + 0.5) / n_steps
    s = (t[None, :] - onset[:, None]) / length[:, None]                 # (n, T) time within the word
    inside = (s >= 0) & (s <= 1)
    env = np.where(inside, np.sin(np.pi * np.clip(s, 0, 1)) ** 2, 0.0)
    sc = np.clip(s, 0, 1)
    ch = np.arange(n_channels, dtype=np.float64)
    x = np.zeros((n, n_steps, n_channels))
    for f in range(n_formants):
        c0, c1 = tracks["c0"][y, f], tracks["c1"][y, f]                 # (n,)
        w, a = tracks["w"][y, f], tracks["a"][y, f]
        centre = c0[:, None] + (c1 - c0)[:, None] * sc + jitter[:, f][:, None]   # (n, T)
        x += (a[:, None, None] * env[:, :, None]
              * np.exp(-0.5 * ((ch[None, None, :] - centre[:, :, None]) / w[:, None, None]) ** 2))
    if noise > 0:
        x += noise * rng.standard_normal(x.shape)
    x = x.reshape(n, n_steps * n_channels)
    if n:
        x -= x.mean(axis=1, keepdims=True)
        x /= np.maximum(x.std(axis=1, keepdims=True), 1e-12)
    return x, y.astype(np.int64)


def speech_shaped(n_train: int = 512, n_val: int = 128, n_test: int = 128, n_steps: int = 800,
                  n_channels: int = 32, n_classes: int = 12, n_formants: int = 3, noise: float = 0.5,
                  seed: int = 0) -> SupervisedData:
    """Speech-shaped synthetic time series, ``n_channels`` per step for ``n_steps`` steps, ``n_classes``
    classes; see the module docstring."""
    n_train = check_positive_int(n_train, "speech_shaped.n_train", allow_zero=True)
    n_val = check_positive_int(n_val, "speech_shaped.n_val", allow_zero=True)
    n_test = check_positive_int(n_test, "speech_shaped.n_test", allow_zero=True)
    n_steps = check_positive_int(n_steps, "speech_shaped.n_steps")
    n_channels = check_positive_int(n_channels, "speech_shaped.n_channels")
    n_classes = check_positive_int(n_classes, "speech_shaped.n_classes")
    n_formants = check_positive_int(n_formants, "speech_shaped.n_formants")
    noise = float(noise)
    if not np.isfinite(noise) or noise < 0:
        raise DatasetError(f"speech_shaped.noise: expected a finite number >= 0, got {noise}")
    total = (n_train + n_val + n_test) * n_steps * n_channels
    if total > SPEECH_MAX_VALUES:
        raise DatasetError(f"speech_shaped: {n_train + n_val + n_test} samples x {n_steps} steps x {n_channels} "
                           f"channels = {total} values, more than the limit {SPEECH_MAX_VALUES}; use fewer "
                           "samples or steps")
    prng = np.random.default_rng(np.random.SeedSequence([int(seed), 0]))
    lo, hi = min(2.0, (n_channels - 1) / 2), max(n_channels - 3.0, (n_channels - 1) / 2)
    shape = (n_classes, n_formants)
    tracks = {"c0": prng.uniform(lo, hi, shape), "c1": prng.uniform(lo, hi, shape),
              "w": prng.uniform(1.0, 3.0, shape), "a": prng.uniform(0.5, 1.0, shape)}
    parts = [_split(np.random.default_rng(np.random.SeedSequence([int(seed), 1 + i])), n, n_steps, n_channels,
                    tracks, noise) for i, n in enumerate((n_train, n_val, n_test))]
    attrs = {"generator": "microcircuit.datasets.speech_shaped", "n_train": n_train, "n_val": n_val,
             "n_test": n_test, "n_steps": n_steps, "n_channels": n_channels, "n_classes": n_classes,
             "n_formants": n_formants, "noise": noise, "seed": int(seed), "layout": "step-major"}
    (xa, ya), (xv, yv), (xt, yt) = parts
    return SupervisedData(xa, ya, xv, yv, xt, yt, n_classes, "speech_shaped", attrs)
