"""The LagLine task of the GLE paper (Ellenberger et al. 2024, Fig. 4): its input, teacher and the
result record every LagLine learner returns (GLE and instantaneous errors in :mod:`microcircuit.gle`,
truncated BPTT in :mod:`microcircuit.adjoint`). Its own module so that both import it without importing
each other."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

LAGLINE_TEACHER = dict(w=(1.0, 2.0), tau_m=(1.0, 2.0))


def lagline_square_wave(batch, *, dt=0.01, half_period=2.0, sigma_samples=5.0, seed=0):
    """The LagLine input as a function of the step: ``x_b(k) = p[(k - d_b) mod 2w]``.

    ``p`` is one period of the ±1 square wave (+1 on the first half-period, w = half_period/dt
    steps) smoothed by a Gaussian of ``sigma_samples`` steps with periodic boundary; ``d_b`` are
    the per-sample shifts of :func:`microcircuit.datasets.lagline_input` with the same seed (so
    both agree away from that function's start boundary). Returns ``fn(k0, k1) -> (K, 1, batch)``.
    """
    from scipy.ndimage import gaussian_filter1d
    w = int(round(half_period / dt))
    period = np.where(np.arange(2 * w) < w, 1.0, -1.0)
    if sigma_samples > 0:
        period = gaussian_filter1d(period, sigma_samples, mode="wrap")
    shifts = np.random.default_rng(seed).integers(0, w, size=batch)

    def fn(k0, k1):
        k = np.arange(k0, k1)[:, None] - shifts[None, :]
        return period[k % (2 * w)][:, None, :]
    fn.shifts = shifts
    fn.period = period
    return fn


@dataclass
class LagLineResult:
    method: str
    t: np.ndarray                       # sample times (time units)
    w: np.ndarray                       # (n_samples, 2)
    tau_m: np.ndarray                   # (n_samples, 2)
    loss: np.ndarray                    # (n_samples,) mean squared output mismatch per chunk
    teacher_w: tuple = LAGLINE_TEACHER["w"]
    teacher_tau: tuple = LAGLINE_TEACHER["tau_m"]
    wall_s: float = 0.0
    params: dict = field(default_factory=dict)

    def rel_err(self):
        w = np.abs(self.w[-1] - np.asarray(self.teacher_w)) / np.asarray(self.teacher_w)
        t = np.abs(self.tau_m[-1] - np.asarray(self.teacher_tau)) / np.asarray(self.teacher_tau)
        return w, t
