"""Resource limits checked before anything runs.

A scenario file is untrusted input: ``size = 1e9``, ``dt = 1e-300`` or a 10^6 x 10^6 template
must be refused at load time with the field, the estimate, the limit and the fix, not after
minutes of allocating. This module holds the limits and the estimate of a run's memory, computed
from the validated scenario dict *before* :func:`~microcircuit.compile.compile_circuit` allocates
anything.

Limits (defaults; each overridable by an environment variable, and the CLI's ``--max-memory`` /
``--max-steps`` set the first two for one command):

========================  =================================================  =====================================
limit                     default                                            environment variable
========================  =================================================  =====================================
``max_memory_bytes``      half of physical RAM (``os.sysconf``), else 8 GiB  ``MICROCIRCUIT_MAX_MEMORY``
``max_steps``             10^9 steps per run (``duration / dt``)             ``MICROCIRCUIT_MAX_STEPS``
``max_scenario_bytes``    64 MiB per scenario file                           ``MICROCIRCUIT_MAX_SCENARIO_BYTES``
``max_input_bytes``       4 GiB per ``.npy`` / ``.npz`` input array          ``MICROCIRCUIT_MAX_INPUT_BYTES``
``max_toml_depth``        32 nested tables/arrays in a scenario file         ``MICROCIRCUIT_MAX_TOML_DEPTH``
``max_sweep_points``      100,000 points per sweep (grid x seeds)            ``MICROCIRCUIT_MAX_SWEEP_POINTS``
``min_checkpoint_steps``  100 steps between checkpoints                      ``MICROCIRCUIT_MIN_CHECKPOINT_STEPS``
========================  =================================================  =====================================

Sizes accept a suffix: ``MICROCIRCUIT_MAX_MEMORY=16G`` (K, M, G, T: powers of 1024). A scenario
file cannot raise its own limits (there is no ``[limits]`` table): the file is the untrusted part.
"""
from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass

from .errors import MicrocircuitError

GiB = 1 << 30
MiB = 1 << 20

ENV = {"max_memory_bytes": "MICROCIRCUIT_MAX_MEMORY", "max_steps": "MICROCIRCUIT_MAX_STEPS",
       "max_scenario_bytes": "MICROCIRCUIT_MAX_SCENARIO_BYTES", "max_input_bytes": "MICROCIRCUIT_MAX_INPUT_BYTES",
       "max_toml_depth": "MICROCIRCUIT_MAX_TOML_DEPTH", "max_sweep_points": "MICROCIRCUIT_MAX_SWEEP_POINTS",
       "min_checkpoint_steps": "MICROCIRCUIT_MIN_CHECKPOINT_STEPS"}


def physical_memory():
    """Bytes of physical RAM (``os.sysconf``), or None where it cannot be read."""
    try:
        n = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        return int(n) if n > 0 else None
    except (ValueError, OSError, AttributeError):
        return None


def _default_memory():
    ram = physical_memory()
    return max(ram // 2, GiB) if ram else 8 * GiB


_SIZE = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?(?:[eE][0-9]+)?)\s*([KMGT]?)i?B?\s*$", re.IGNORECASE)


def parse_size(text, name="limit"):
    """``"8G"`` -> 8 GiB, ``"1e9"`` -> 10^9; raises ValueError naming ``name`` otherwise."""
    m = _SIZE.match(str(text))
    if not m:
        raise ValueError(f"{name}: cannot read {text!r}; give a number, optionally with K, M, G or T "
                         f"(e.g. 16G)")
    x = float(m.group(1)) * 1024 ** " KMGT".index(m.group(2).upper() or " ")
    if not math.isfinite(x) or x < 1:
        raise ValueError(f"{name}: must be >= 1, got {text!r}")
    return int(x)


@dataclass(frozen=True)
class Limits:
    max_memory_bytes: int
    max_steps: int = 10 ** 9
    max_scenario_bytes: int = 64 * MiB
    max_input_bytes: int = 4 * GiB
    max_toml_depth: int = 32
    max_sweep_points: int = 100_000
    min_checkpoint_steps: int = 100


class LimitError(MicrocircuitError, ValueError):
    """A limit itself is misconfigured (a bad environment variable or flag)."""


def current() -> Limits:
    """The limits in force: defaults, overridden by the environment variables (read at each call)."""
    kw = {"max_memory_bytes": _default_memory()}
    for name, var in ENV.items():
        text = os.environ.get(var)
        if text:
            try:
                kw[name] = parse_size(text, var)
            except ValueError as exc:
                raise LimitError(str(exc)) from None
    return Limits(**kw)


def fmt_bytes(n):
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.3g} {unit}"
        n /= 1024
    return f"{n:g}"


# ------------------------------------------------------------------------------ estimates
def _int(x, default=None):
    return x if isinstance(x, int) and not isinstance(x, bool) else default


def _num(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def step_count(dt, duration):
    """``duration / dt`` as a float (inf when it overflows), or None if either is not a positive number."""
    if not (_num(dt) and _num(duration)) or dt <= 0 or duration <= 0:
        return None
    try:
        return duration / dt
    except (OverflowError, ZeroDivisionError):
        return math.inf


def _n_selected(neurons, size):
    if isinstance(neurons, list):
        return len(neurons)
    if isinstance(neurons, dict):
        try:
            return len(range(size)[slice(neurons.get("start"), neurons.get("stop"), neurons.get("step"))])
        except (TypeError, ValueError):
            return size
    return size


# what every run holds besides its arrays (store writer, codecs, tables; measured ~8 MiB on small scenarios)
RUNTIME_BYTES = 8 * MiB


def estimate_memory(data, base_dir=None, steps=None, in_memory=False):
    """Estimated peak bytes of building and running a validated scenario dict.

    Returns ``(total, parts)`` where ``parts`` maps a component to ``(bytes, dotted path of the
    field that drives it)``; components: ``state`` (signals, previous step, ports, external
    inputs: 30 x N x batch values), ``neuron parameters`` (9 per neuron, float64 while compiling plus
    the run's copy), ``weights`` (post x pre per projection: the float64 blocks while compiling, their
    concatenation and the run's copy, plus masks, random feedback and optimiser state),
    ``stimuli`` (the per-chunk stimulus block and each stimulus' values per chunk; array inputs by
    their .npy header), ``runtime`` (a constant) and ``recording`` (the per-chunk record buffers: two
    alternating chunks and the writer's copy of one when writing to a store; with ``in_memory`` every
    recorded value of the run).
    """
    from .models import MODELS
    sim = data.get("simulation") if isinstance(data.get("simulation"), dict) else {}
    item = 4 if sim.get("dtype") == "float32" else 8
    B = _int(sim.get("batch"), 1)
    proto = data.get("protocol") if isinstance(data.get("protocol"), dict) else None
    if proto is not None and _int(proto.get("batch")):
        B = max(B, proto["batch"])
    chunk = _int(sim.get("chunk_steps"), 2000)
    if steps is None:
        steps = step_count(sim.get("dt"), sim.get("duration"))
    K = chunk if steps is None or not math.isfinite(steps) else max(1, min(chunk, int(steps)))
    pops, N, biggest = {}, 0, (0, "populations")
    for i, p in enumerate(data.get("populations") or []):
        if not isinstance(p, dict):
            continue
        n = _int(p.get("size"), 0)
        pops[p.get("name")] = (n, p.get("model", "rate"), i)
        N += n
        if n > biggest[0]:
            biggest = (n, f"populations[{i}].size")
    parts = {}
    parts["state"] = (30 * N * B * item, biggest[1] if B == 1 else "simulation.batch")
    parts["neuron parameters"] = (9 * N * (8 + item), biggest[1])
    w_total, w_persist, w_big = 0, 0, (0, "projections")
    for j, pr in enumerate(data.get("projections") or []):
        if not isinstance(pr, dict):
            continue
        pre = pops.get(pr.get("pre"), (0,))[0]
        post = pops.get(pr.get("post"), (0,))[0]
        conn = pr.get("connector") if isinstance(pr.get("connector"), dict) else {}
        w = pr.get("weights") if isinstance(pr.get("weights"), dict) else {}
        if "transpose_of" in w:
            continue
        n_w = post if conn.get("kind") == "one_to_one" else pre * post
        pl = pr.get("plasticity") if isinstance(pr.get("plasticity"), dict) else {}
        extra = 0
        if conn.get("kind") in ("fixed_probability", "from_array"):
            extra += 1                                          # the mask
        if pr.get("feedback") == "random":
            extra += 1
        if pl.get("rule", "none") != "none":
            extra += (1 if _num(pl.get("tau_w")) and pl["tau_w"] > 0 else 0)
            extra += {"momentum": 1, "adam": 2}.get(pl.get("optimizer"), 0)
        w_total += n_w * (1 + extra)
        w_persist += n_w * (1 + extra)
        if n_w > w_big[0]:
            w_big = (n_w, f"projections[{j}]")
    # compiling: float64 blocks + their float64 concatenation + the run's copy (dtype)
    parts["weights"] = (w_total * 16 + w_persist * item, w_big[1])
    stim_cols, stim_vals, stim_rows, s_big = 0, 0, 0, (0, "stimuli")
    for i, s in enumerate(data.get("stimuli") or []):
        if not isinstance(s, dict):
            continue
        n = pops.get(s.get("target"), (0,))[0]
        stim_cols += n
        wf = s.get("waveform")
        if wf == "array":
            # distinct rows per chunk only (a held sample is stored once), shared by the batch unless 3-D
            hold = _int(s.get("hold_steps"), 1) or 1
            info = array_header(s["file"], base_dir) if isinstance(s.get("file"), str) else None
            T = info[0][0] if info and info[0] else K
            rows = min(K // hold + 2, T, K)
            stim_rows += rows
            b = rows * n * B * 8 * 2                            # the rows and their shaped copy
            if info is not None:
                b += 2 * math.prod(info[0]) * 8                # the file read, then its float64 copy
        else:
            stim_rows += K
            comps = max([len(s[k]) for k in ("amplitude", "omega", "frequency_hz", "phase")
                         if isinstance(s.get(k), list)] + [1])
            # (K, n) values per chunk (a sum of sines: (K, components)) and one temporary
            b = K * max(n, comps) * 8 * 2
        stim_vals += b
        if b > s_big[0]:
            s_big = (b, f"stimuli[{i}]")
    # the block of all stimuli for one chunk: (rows, columns, batch) in the run's dtype
    parts["stimuli"] = (min(stim_rows, K * max(1, len(data.get("stimuli") or []))) * stim_cols * B * item
                        + stim_vals, s_big[1])
    rec, r_big = 0, (0, "recordings")
    for i, r in enumerate(data.get("recordings") or []):
        if not isinstance(r, dict) or r.get("population") not in pops:
            continue
        n, model, _ = pops[r["population"]]
        stride = _int(r.get("stride"), 1) or 1
        m = MODELS.get(model) if isinstance(model, str) else None
        ncomp = 0
        for v in r.get("variables", ["r"]) if isinstance(r.get("variables", ["r"]), list) else []:
            var = m.variables.get(v) if m is not None and isinstance(v, str) else None
            ncomp += len(var.code) if var is not None and isinstance(var.code, tuple) else 1
        per_step = B * _n_selected(r.get("neurons", "all"), n) * ncomp * 8
        rows = (math.ceil(steps / stride) if in_memory and steps and math.isfinite(steps)
                else 3 * math.ceil(K / stride))
        b = rows * per_step
        rec += b
        if b > r_big[0]:
            r_big = (b, f"recordings[{i}]")
    parts["recording"] = (rec, r_big[1])
    parts["runtime"] = (RUNTIME_BYTES, "simulation")
    return sum(b for b, _ in parts.values()), parts


def _blame(data, base_dir, steps, total):
    """The one field (a population's size, simulation.batch or simulation.chunk_steps) whose reduction
    to 1 saves the most of the estimate: ``(dotted path, bytes saved)``."""
    import copy
    best = (None, 0)
    shallow = dict(data)
    sim = data.get("simulation") if isinstance(data.get("simulation"), dict) else {}
    pops = data.get("populations") if isinstance(data.get("populations"), list) else []
    trials = [(f"simulation.{k}", "simulation", k) for k in ("batch", "chunk_steps") if _int(sim.get(k), 1) > 1]
    trials += [(f"populations[{i}].size", i, "size") for i, p in enumerate(pops)
               if isinstance(p, dict) and _int(p.get("size"), 1) > 1]
    for path, where, key in trials:
        trial = dict(shallow)
        if where == "simulation":
            trial["simulation"] = dict(sim, **{key: 1})
        else:
            trial["populations"] = list(pops)
            trial["populations"][where] = dict(pops[where], size=1)
        saving = total - estimate_memory(trial, base_dir, steps)[0]
        if saving > best[1]:
            best = (path, saving)
    return best


def array_header(path, base_dir=None):
    """``(shape, dtype)`` of a ``.npy`` file from its header alone (no data read), or None if it is
    not a readable .npy file. ``.npz`` members are read the same way, one header each."""
    from pathlib import Path
    p = Path(path)
    if not p.is_absolute() and base_dir is not None:
        p = Path(base_dir) / p
    try:
        if p.suffix == ".npy" and p.is_file():
            with open(p, "rb") as fh:
                return _npy_header(fh)
    except (OSError, ValueError):
        return None
    return None


def npz_headers(path, base_dir=None):
    """``{member: (shape, dtype)}`` of an ``.npz`` archive from the member headers only."""
    import zipfile
    from pathlib import Path
    p = Path(path)
    if not p.is_absolute() and base_dir is not None:
        p = Path(base_dir) / p
    out = {}
    try:
        with zipfile.ZipFile(p) as z:
            for info in z.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                with z.open(info) as fh:
                    out[info.filename[:-4]] = _npy_header(fh)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError):
        return None
    return out


def _npy_header(fh):
    import numpy as np
    from numpy.lib import format as npf
    version = npf.read_magic(fh)
    if version == (1, 0):
        shape, fortran, dtype = npf.read_array_header_1_0(fh)
    elif version in ((2, 0), (3, 0)):
        shape, fortran, dtype = npf.read_array_header_2_0(fh)
    else:
        raise ValueError(f"unsupported .npy version {version}")
    return tuple(int(s) for s in shape), np.dtype(dtype)


def _steps(n):
    return f"{n:.0f}" if n < 1e7 else f"{n:.3g}"


def check_run(data, base_dir=None, limits=None):
    """Problems ``(dotted path, message)`` of a validated scenario dict against the limits, and
    warnings (same form). Nothing is allocated."""
    lim = limits or current()
    problems, warnings_ = [], []
    sim = data.get("simulation") if isinstance(data.get("simulation"), dict) else {}
    dt, dur = sim.get("dt"), sim.get("duration")
    steps = step_count(dt, dur)
    if steps is not None and steps > lim.max_steps:
        problems.append(("simulation.duration",
                         f"{dur:g} ms at dt = {dt:g} ms is {_steps(steps)} steps, over the limit of "
                         f"{_steps(lim.max_steps)} steps (max_steps); shorten simulation.duration, raise "
                         f"simulation.dt, or raise the limit with MICROCIRCUIT_MAX_STEPS / --max-steps"))
        steps = None
    proto = data.get("protocol") if isinstance(data.get("protocol"), dict) else None
    if proto is not None:
        pdt = proto.get("dt", dt)
        n = step_count(pdt, proto.get("t_pres"))
        if n is not None and n > lim.max_steps:
            problems.append(("protocol.t_pres", f"{proto['t_pres']:g} ms per presentation at dt = {pdt:g} ms is "
                                                f"{_steps(n)} steps, over the limit of {_steps(lim.max_steps)} "
                                                f"(max_steps); raise dt or shorten t_pres"))
    total, parts = estimate_memory(data, base_dir, steps)
    if total > lim.max_memory_bytes:
        comp, (b, where) = max(parts.items(), key=lambda kv: kv[1][0])
        field, saving = _blame(data, base_dir, steps, total)
        detail = ", ".join(f"{k} {fmt_bytes(v)}" for k, (v, _) in parts.items() if v)
        if field is not None and saving >= total / 2:
            where, fix = field, f"this field drives {fmt_bytes(saving)} of it: make it smaller"
        else:
            fix = (f"the largest part is {comp} ({where}): make it smaller (fewer neurons, a smaller batch, "
                   f"fewer recorded neurons or a larger stride, a smaller simulation.chunk_steps)")
        problems.append((where, f"the run needs about {fmt_bytes(total)} of memory ({detail}), over the "
                                f"limit of {fmt_bytes(lim.max_memory_bytes)} (max_memory_bytes); {fix}, "
                                f"or raise the limit with MICROCIRCUIT_MAX_MEMORY / --max-memory"))
    out = data.get("output") if isinstance(data.get("output"), dict) else {}
    every, where = None, None
    if _int(out.get("checkpoint_every_steps")):
        every, where = out["checkpoint_every_steps"], "output.checkpoint_every_steps"
    elif _num(out.get("checkpoint_every")) and _num(dt) and dt > 0:
        every, where = out["checkpoint_every"] / dt, "output.checkpoint_every"
    if every is not None:
        chunk = _int(sim.get("chunk_steps"), 2000)
        if every < lim.min_checkpoint_steps:
            problems.append((where, f"a checkpoint every {every:g} steps writes the whole state that often "
                                    f"(checkpoint_every_steps = 1 ran 25,000x slower); use at least "
                                    f"{lim.min_checkpoint_steps} steps (min_checkpoint_steps), e.g. "
                                    f"checkpoint_every_steps = {max(chunk, lim.min_checkpoint_steps)}"))
        elif every < chunk:
            warnings_.append((where, f"a checkpoint every {every:g} steps cuts the chunks of {chunk} steps "
                                     f"(simulation.chunk_steps) short and writes the state each time: expect a "
                                     f"slower run; use checkpoint_every_steps >= {chunk}"))
    return problems, warnings_
