"""Stimuli and targets as time-indexed arrays.

A stimulus drives one population with values ``x[k, i]`` (shape ``(steps, n)``, shared by the
batch) or ``x[k, i, b]`` (one column per batch copy). What the values do is the stimulus
``kind``:

* ``rate``    — sets the rate of an ``input`` population: ``r_0(t) = x(t)``;
* ``current`` — a somatic current added to ``du/dt``;
* ``target``  — the output target ``y`` (loss-based nudging of rate neurons, or the nudging
  potential ``u_tgt`` of a conductance-nudged output pyramidal neuron);
* ``error``   — an error current added to the error-neuron input ``epsilon``.

Every stimulus is a pure function of the step index (and its own seed), so a run split into
chunks sees exactly the same values as one long run.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from .jit import njit

from .checks import is_real_dtype, real_dtype_message
from .errors import MicrocircuitError

from .layout import STIM_KINDS as KINDS  # noqa: E402  (named once in layout)
KIND_IDS = {k: i for i, k in enumerate(KINDS)}


class StimulusError(MicrocircuitError, ValueError):
    pass


class Stimulus:
    """Base class. Subclasses implement ``_values(t)`` for times ``t`` (ms) of shape (K,) and
    return (K, n) or (K, n, batch)."""
    shape_kind = "waveform"

    def __init__(self, target, kind="rate", name=None, delay_steps=0):
        if kind not in KINDS:
            raise StimulusError(f"stimulus '{name or target}': kind must be one of {KINDS}, got '{kind}'")
        self.target, self.kind, self.name = target, kind, name or f"{kind}->{target}"
        self.delay_steps = int(delay_steps)

    def values(self, k0: int, k1: int, dt: float, n: int, batch: int) -> np.ndarray:
        """Values for steps k0..k1-1 as an array (K, n, batch)."""
        steps = np.arange(k0, k1) - self.delay_steps
        t = steps * dt
        return self._shaped(self._values(t, steps, dt), n, batch)

    def rows(self, k0: int, k1: int, dt: float, n: int, batch: int):
        """``(block, index)``: distinct values ``block`` (M, n, batch) and, per step k0..k1-1, the row of
        ``block`` it shows (K,). The default is one row per step; held stimuli override this so that a
        sample shown for many steps is stored once."""
        return self.values(k0, k1, dt, n, batch), np.arange(k1 - k0)

    def _shaped(self, x, n, batch):
        x = np.asarray(x, dtype=float)
        if x.ndim == 1:
            x = x[:, None]
        if x.shape[1] not in (1, n):
            raise StimulusError(f"stimulus '{self.name}': gives {x.shape[1]} values per step but population "
                                f"'{self.target}' has {n} neurons; give one value or {n}")
        x = np.broadcast_to(x, (x.shape[0], n) + x.shape[2:])
        if x.ndim == 2:
            x = np.broadcast_to(x[:, :, None], x.shape + (batch,))
        elif x.shape[2] not in (1, batch):
            raise StimulusError(f"stimulus '{self.name}': has {x.shape[2]} batch columns, the run has batch "
                                f"{batch}")
        return np.broadcast_to(x, (x.shape[0], n, batch))

    def _values(self, t, steps, dt):
        raise NotImplementedError


def _amp(a):
    return np.atleast_1d(np.asarray(a, dtype=float))


class Step(Stimulus):
    """``x(t) = baseline + amplitude * [start <= t < stop]``.

    ``filter_tau`` (ms, 0 = off): the step passes through an exact exponential low-pass, per step
    from the first step on (k_on) and the first step off (k_off): ``baseline + amplitude f(k)`` with
    ``f = 1 - exp(-(k - k_on) dt / tau)`` while on and ``f(k_off) exp(-(k - k_off) dt / tau)`` after;
    a pure function of the step index (chunking keeps the bits)."""

    def __init__(self, target, amplitude=1.0, start=0.0, stop=math.inf, baseline=0.0, filter_tau=0.0, **kw):
        super().__init__(target, **kw)
        self.amplitude, self.start, self.stop, self.baseline = _amp(amplitude), start, stop, _amp(baseline)
        self.filter_tau = float(filter_tau)
        if not (math.isfinite(self.filter_tau) and self.filter_tau >= 0):
            raise StimulusError(f"stimulus '{self.name}': filter_tau must be a finite number >= 0 (ms), "
                                f"got {filter_tau!r}")

    def _first_step(self, t_edge, dt):
        """The smallest step k with k dt >= t_edge - 1e-9 dt (the on/off test of _values)."""
        if not math.isfinite(t_edge) or abs(t_edge / dt) > 2.0 ** 62:
            return math.inf if t_edge > 0 else -math.inf
        k = math.ceil((t_edge - 1e-9 * dt) / dt)
        while (k - 1) * dt >= t_edge - 1e-9 * dt:
            k -= 1
        while k * dt < t_edge - 1e-9 * dt:
            k += 1
        return k

    def _values(self, t, steps, dt):
        if self.filter_tau > 0:
            k_on, k_off = self._first_step(self.start, dt), self._first_step(self.stop, dt)
            steps = np.asarray(steps)
            f = np.zeros(steps.shape)
            tau = self.filter_tau
            decay = lambda v: math.exp(-v * dt / tau)
            if k_off > k_on:
                on = (steps >= k_on) & (steps < k_off)
                if on.any():
                    f[on] = 1.0 - _scalar_map(decay, steps[on] - k_on)
                after = steps >= k_off
                if after.any():
                    f_off = 1.0 - decay(k_off - k_on) if math.isfinite(k_on) else 1.0
                    f[after] = f_off * _scalar_map(decay, steps[after] - k_off)
            return self.baseline[None, :] + f[:, None] * self.amplitude[None, :]
        on = ((t >= self.start - 1e-9 * dt) & (t < self.stop - 1e-9 * dt)).astype(float)
        return self.baseline[None, :] + on[:, None] * self.amplitude[None, :]


class Ramp(Stimulus):
    """Linear ramp from ``start_value`` at ``start`` to ``stop_value`` at ``stop``, held after."""

    def __init__(self, target, start=0.0, stop=1.0, start_value=0.0, stop_value=1.0, **kw):
        super().__init__(target, **kw)
        if stop <= start:
            raise StimulusError(f"stimulus '{self.name}': ramp needs stop > start")
        self.start, self.stop, self.v0, self.v1 = start, stop, _amp(start_value), _amp(stop_value)

    def _values(self, t, steps, dt):
        f = np.clip((t - self.start) / (self.stop - self.start), 0.0, 1.0)
        return self.v0[None, :] + f[:, None] * (self.v1 - self.v0)[None, :]


class Sines(Stimulus):
    """Sum of sines ``x(t) = offset + sum_j a_j sin(omega_j t + phase_j)``.

    Give either ``omega`` (rad per time unit of the run, e.g. rad/ms) or ``frequency_hz``
    (with t in ms: ``omega = 2 pi f / 1000``). ``per_neuron=True`` gives neuron i the i-th sine
    alone (e.g. the 50 inputs of the Fourier-synthesis task).
    """

    def __init__(self, target, amplitude=1.0, omega=None, frequency_hz=None, phase=0.0, offset=0.0,
                 per_neuron=False, **kw):
        super().__init__(target, **kw)
        if (omega is None) == (frequency_hz is None):
            raise StimulusError(f"stimulus '{self.name}': give exactly one of omega or frequency_hz")
        om = _amp(omega) if omega is not None else 2 * np.pi * _amp(frequency_hz) / 1000.0
        self.omega = om
        self.amplitude = np.broadcast_to(_amp(amplitude), om.shape).copy()
        self.phase = np.broadcast_to(_amp(phase), om.shape).copy()
        self.offset = float(offset)
        self.per_neuron = per_neuron

    def _values(self, t, steps, dt):
        s = self.amplitude[None, :] * np.sin(self.omega[None, :] * t[:, None] + self.phase[None, :])
        if self.per_neuron:
            return self.offset + s
        return self.offset + s.sum(axis=1)


@njit(cache=True, nogil=True)
def _ou_recurrence(xi, a, s, y0, mean):
    """``mean + y_k`` with ``y_k = s xi_k + a y_{k-1}`` along axis 0 from ``y_{-1} = y0`` (the linear filter
    ``scipy.signal.lfilter([s], [1, -a])`` with the same operations in the same order, so the same bits,
    at a sixth of its cost for the few neurons of a stimulus)."""
    out = np.empty_like(xi)
    y = y0.copy()
    for k in range(xi.shape[0]):
        for i in range(xi.shape[1]):
            y[i] = s * xi[k, i] + a * y[i]
            out[k, i] = mean + y[i]
    return out


class OrnsteinUhlenbeck(Stimulus):
    """Ornstein–Uhlenbeck noise ``tau dx = (mean - x) dt + sigma sqrt(2 tau) dW`` (stationary
    std ``sigma``), exact discretisation, one independent process per neuron and batch copy.

    Values are generated in blocks of ``block`` steps from a seed derived from ``seed`` and the
    block index, so any chunking gives the same trace.
    """
    block = 4096

    def __init__(self, target, mean=0.0, sigma=1.0, tau=1.0, seed=0, size=1, **kw):
        super().__init__(target, **kw)
        if tau <= 0 or sigma < 0:
            raise StimulusError(f"stimulus '{self.name}': needs tau > 0 and sigma >= 0")
        self.mean, self.sigma, self.tau, self.seed, self.size = mean, sigma, tau, int(seed), int(size)
        self._cache = {}

    def _block(self, j, dt, shape):
        """Block ``j`` of the trace. Its start value is the end of block ``j - 1``, so blocks are made
        in order from the nearest one cached (or from block 0) -- a loop, not a recursion, so a run
        resumed at any step (10^7 and beyond) can regenerate the trace up to there."""
        key = (j, dt, shape)
        if key in self._cache:
            return self._cache[key]
        done = [kk[0] for kk in self._cache if kk[1:] == (dt, shape) and kk[0] < j]
        i = max(done) + 1 if done else 0
        x_end = self._cache[(i - 1, dt, shape)][-1] if done else None
        a = math.exp(-dt / self.tau)
        s = self.sigma * math.sqrt(1 - a * a)
        for jj in range(i, j + 1):
            x0 = self.mean if jj == 0 else x_end
            xi = np.random.default_rng([self.seed, jj]).standard_normal((self.block,) + shape)
            # x_k - mean = a (x_{k-1} - mean) + s xi_k along time
            y0 = np.ascontiguousarray(np.broadcast_to(np.asarray(x0, float), shape) - self.mean)
            out = _ou_recurrence(xi.reshape(self.block, -1), a, s, y0.reshape(-1), self.mean).reshape(xi.shape)
            x_end = out[-1]
            # keep the block before the newest too: a chunk may straddle a block boundary
            self._cache = {kk: v for kk, v in self._cache.items() if kk[0] >= jj - 1}
            self._cache[(jj, dt, shape)] = out
        return self._cache[key]

    def values(self, k0, k1, dt, n, batch):
        shape = (n, batch)
        K = k1 - k0
        out = np.empty((K, n, batch))
        first = k0 - self.delay_steps          # stimulus step of out[0]
        i = 0
        if first < 0:                          # before the (delayed) start: the mean
            i = min(-first, K)
            out[:i] = self.mean
        while i < K:                           # contiguous runs of pre-generated blocks
            j, r = divmod(first + i, self.block)
            m = min(self.block - r, K - i)
            out[i:i + m] = self._block(j, dt, shape)[r:r + m]
            i += m
        return out


class ArrayStimulus(Stimulus):
    """Values from an array (``(T, n)`` or ``(T, n, batch)``, or ``(T,)``), held for
    ``hold_steps`` simulation steps per row; after the last row the array repeats if
    ``repeat`` else the last row is held. Load from ``.npy``, ``.npz`` (``key``) or a Zarr array
    (``key`` = array path) with :func:`load_array`.

    ``filter_tau`` (ms, 0 = off): the held rows pass through an exponential low-pass (Sacramento et
    al. 2018: inputs filtered with 3 ms at the switches), exact for the piecewise-constant input:
    on row m (from step ``t_m = m hold_steps``) ``x(k) = p_m + (s_m - p_m) exp(-(k - t_m) dt / tau)``,
    with ``s_m`` the filtered value at the switch and ``s_0 = 0`` (the filter starts at rest; before
    step 0 the value is 0). ``s_m`` follows in closed form from the hold schedule (with ``repeat``,
    through the periodic fixed point of one cycle), so a value depends only on its step index: chunked
    and unchunked runs see the same bits."""

    def __init__(self, target, array, hold_steps=1, repeat=False, filter_tau=0.0, **kw):
        super().__init__(target, **kw)
        raw = np.asarray(array)
        if not is_real_dtype(raw.dtype):      # float() would drop an imaginary part silently
            raise StimulusError(f"stimulus '{self.name}': array " + real_dtype_message(raw.dtype))
        self.array = raw.astype(float)
        if self.array.ndim == 1:
            self.array = self.array[:, None]
        if self.array.ndim not in (2, 3) or self.array.shape[0] == 0:
            raise StimulusError(f"stimulus '{self.name}': array must have shape (T, n) or (T, n, batch), "
                                f"got {self.array.shape}")
        if not np.all(np.isfinite(self.array)):
            raise StimulusError(f"stimulus '{self.name}': array contains NaN or Inf")
        self.hold_steps, self.repeat = max(int(hold_steps), 1), repeat
        self.filter_tau = float(filter_tau)
        if not (math.isfinite(self.filter_tau) and self.filter_tau >= 0):
            raise StimulusError(f"stimulus '{self.name}': filter_tau must be a finite number >= 0 (ms), "
                                f"got {filter_tau!r}")
        self._filt = None

    def _row_of_step(self, steps):
        idx = np.maximum(steps, 0) // self.hold_steps
        T = self.array.shape[0]
        return idx % T if self.repeat else np.minimum(idx, T - 1)

    def _switch_values(self, dt):
        """(A, s, s_star): per-row decay over one hold, the filtered values at the switches of the
        first cycle (rows 0..T-1, then T..2T-1 for ``repeat``) and, with ``repeat``, the periodic
        fixed point of the switch values."""
        if self._filt is None or self._filt[0] != dt:
            A = math.exp(-self.hold_steps * dt / self.filter_tau)
            T = self.array.shape[0]
            n_rows = 2 * T if self.repeat else T
            s = np.empty((n_rows,) + self.array.shape[1:])
            x = np.zeros(self.array.shape[1:])
            for m in range(n_rows):
                s[m] = x
                p = self.array[m % T]
                x = p + (x - p) * A
            s_star = None
            if self.repeat:
                AT = A ** T
                # cycle map s_{m+T} = A^T s_m + b_m; fixed point b_m / (1 - A^T)
                s_star = (s[T:] - AT * s[:T]) / (1.0 - AT) if AT < 1.0 else s[:T].copy()
            self._filt = (dt, A, s, s_star)
        return self._filt

    def _filtered(self, steps, dt):
        _, A, s, s_star = self._switch_values(dt)
        T = self.array.shape[0]
        k = np.maximum(steps, 0)
        m = k // self.hold_steps
        el_steps = k - m * self.hold_steps
        if self.repeat:
            j, c = m % T, m // T
            AT = A ** T
            start = s_star[j] + (s[j] - s_star[j]) * _scalar_map(lambda v: AT ** v, c).reshape(
                (-1,) + (1,) * (s.ndim - 1))
            row = self.array[j]
        else:
            mc = np.minimum(m, T - 1)
            el_steps = k - mc * self.hold_steps       # after the last row: the last row held, still filtered
            start, row = s[mc], self.array[mc]
        tau = self.filter_tau
        dec = _scalar_map(lambda v: math.exp(-v * dt / tau), el_steps).reshape((-1,) + (1,) * (s.ndim - 1))
        x = row + (start - row) * dec
        if np.any(steps < 0):
            x[steps < 0] = 0.0
        return x

    def _values(self, t, steps, dt):
        if self.filter_tau > 0:
            return self._filtered(np.asarray(steps), dt)
        return self.array[self._row_of_step(steps)]

    def rows(self, k0, k1, dt, n, batch):
        if self.filter_tau > 0:        # every step a different value
            return Stimulus.rows(self, k0, k1, dt, n, batch)
        uniq, inv = np.unique(self._row_of_step(np.arange(k0, k1) - self.delay_steps), return_inverse=True)
        return self._shaped(self.array[uniq], n, batch), inv.reshape(-1)


def _scalar_map(f, ints):
    """``f`` of each integer in ``ints`` through Python's scalar math (numpy's vectorized exp may round a
    value differently by its position in the array: a chunk boundary would change bits)."""
    u, inv = np.unique(np.asarray(ints), return_inverse=True)
    return np.array([f(int(v)) for v in u], dtype=float)[inv.reshape(-1)]


def load_array(path, key=None, source="stimulus") -> np.ndarray:
    """Load an array from ``.npy``, ``.npz`` (needs ``key`` if several arrays) or a Zarr store."""
    p = Path(path)
    if not p.exists():
        raise StimulusError(f"{source}: file '{path}' does not exist; check the path (relative paths are "
                            f"resolved against the scenario file's folder)")
    try:
        if p.suffix == ".npy":
            return np.load(p, allow_pickle=False)
        if p.suffix == ".npz":
            with np.load(p, allow_pickle=False) as z:
                if key is None:
                    if len(z.files) != 1:
                        raise StimulusError(f"{source}: '{path}' holds {z.files}; say which with key = \"...\"")
                    key = z.files[0]
                if key not in z.files:
                    raise StimulusError(f"{source}: '{path}' has no array '{key}'; it holds {z.files}")
                return z[key]
        if p.suffix == ".zarr" or p.is_dir():
            import zarr
            g = zarr.open(str(p), mode="r")
            arr = g if key is None else g[key]
            return np.asarray(arr[...])
    except StimulusError:
        raise
    except Exception as exc:  # corrupt file
        raise StimulusError(f"{source}: could not read '{path}': {exc}") from exc
    raise StimulusError(f"{source}: '{path}' is not .npy, .npz or .zarr")


STIMULUS_TYPES = {"step": Step, "ramp": Ramp, "sines": Sines, "ou": OrnsteinUhlenbeck, "array": ArrayStimulus}
