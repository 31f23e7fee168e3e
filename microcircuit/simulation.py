"""Running a compiled program in chunks: stimuli, gates, recording, faults.

A :class:`Simulation` owns a :class:`~microcircuit.compile.Program` and advances it chunk by
chunk through the Numba kernel (or the NumPy reference). After each chunk the recording
buffers go to the recorder (Zarr store on disk, or memory), so memory stays bounded by two
chunks however long the run is. A run can be continued with another ``run()`` call and gives
bit for bit the same result as one long run.

Recording path: the kernel copies the recorded values of every step into one buffer per chunk,
laid out ``(record, batch, neuron[, compartment])`` per variable, and the recorder gets views of
it, never copies: to Zarr, two buffers alternate (a background thread writes one while the kernel
fills the other); in memory, every chunk gets a fresh buffer (prepared by a helper thread when
large) that the :class:`MemoryRecorder` keeps.
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field

import numpy as np

from .compile import Program
from .layout import PJ_NPRE, PJ_NPOST, PP_N, PP_OFF, SCHEMES, SIGNAL_LABELS
from .errors import DivergenceError, SimulationError, CircuitError
from .recording import DimNames, close_reason, time_labels
from .models import get_model

_SIG_LABELS = SIGNAL_LABELS


@dataclass
class Recording:
    """What to record: variables of one population, a neuron selection, a stride, a dtype."""
    population: str
    variables: list = field(default_factory=lambda: ["r"])
    neurons: object = "all"          # "all", list of indices, or {start, stop, step}
    stride: int = 1
    dtype: str = "float64"


def _select(neurons, n, where):
    if neurons is None or (isinstance(neurons, str) and neurons == "all"):
        return np.arange(n)
    if isinstance(neurons, dict):
        idx = np.arange(n)[slice(neurons.get("start"), neurons.get("stop"), neurons.get("step"))]
    else:
        idx = np.asarray(neurons, dtype=np.int64).ravel()
    if idx.size == 0 or idx.min() < 0 or idx.max() >= n:
        raise CircuitError(f"{where}: neuron indices must lie in 0..{n - 1}")
    return idx


_PREFAULT_MIN = 1 << 17    # doubles (1 MiB): smaller in-memory recording buffers are allocated in place


def _touched(n):
    """A new array of n doubles whose pages are all mapped: on Linux an anonymous ``mmap`` with
    ``MAP_POPULATE`` (the kernel maps every page in one call, measured ~1.4-2.4 GB/s on the 2-core VM
    against ~0.5-4 GB/s, erratic, for page faults on a fresh ``np.empty`` with transparent huge pages,
    and ~1.6 GB/s with 4 KiB pages); elsewhere ``np.empty`` written once (``fill`` runs without the GIL).
    The array owns the mapping (its ``base``); it is unmapped when the last view goes."""
    import mmap

    flags = getattr(mmap, "MAP_POPULATE", None)
    if flags is not None and n > 0:
        try:
            mm = mmap.mmap(-1, 8 * n, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | flags)
            return np.frombuffer(mm, np.float64)
        except (OSError, ValueError):
            pass
    a = np.empty(n)
    a.fill(0.0)
    return a


class MemoryRecorder:
    """Keeps recorded blocks in memory and builds labelled xarray datasets (for notebooks and
    short runs; use a Zarr output for long runs). Follows :class:`microcircuit.recording.Recorder`."""
    keeps_blocks = True

    def __init__(self, specs, dt, batch, attrs, labels=None):
        self.specs, self.dt, self.batch, self.attrs = specs, dt, batch, dict(attrs)
        self.labels = dict(labels or {})
        self.blocks = {s.key: [] for s in specs}
        self.steps = {s.key: [] for s in specs}
        self.attrs.update(complete=False, status="running")
        # dim names per variable, as the Zarr recorder of the same run names them: (time, neuron, compartment)
        self.dims, tables = {}, {}
        for sp in specs:
            t = tables.setdefault(sp.population, DimNames())
            self.dims[sp.key] = (t.assign("time", sp.stride, sp.name)[0],
                                 t.assign("neuron", tuple(np.asarray(sp.neurons).tolist()), sp.name)[0],
                                 t.assign("compartment", sp.compartments, sp.name)[0] if sp.compartments else None)

    def append(self, blocks, first_step=None, *, steps=None, copy=True):
        """Keep one block per variable; ``copy=False`` takes the arrays as they are (the caller
        hands over blocks it will not touch again, as :class:`Simulation` does)."""
        for k, v in blocks.items():
            v = np.array(v) if copy else np.asarray(v)
            st = np.asarray(steps[k]) if steps is not None else first_step + np.arange(len(v))
            self.blocks[k].append(v)
            self.steps[k].append(st)

    def set_attrs(self, **attrs):
        self.attrs.update(attrs)

    def position(self):
        """Records kept so far per ``"population/time_dim"`` and the step of the last one (the keys of
        :meth:`ZarrRecorder.position <microcircuit.recording.ZarrRecorder.position>`)."""
        n, last = {}, {}
        for s in self.specs:
            key = f"{s.population}/{self.dims[s.key][0]}"
            st = [x for x in self.steps[s.key] if len(x)]
            n[key] = int(sum(len(x) for x in st))
            last[key] = int(st[-1][-1]) if st else None
        return {"n_records": n, "last_step": last}

    def close(self, complete=True, reason=None):
        self.attrs.update(complete=bool(complete), status="complete" if complete else "incomplete",
                          reason=reason or "")

    def running(self, is_running, n_steps_done):
        """Status between runs: ``running`` while :meth:`Simulation.run` steps, ``complete`` once it
        returned (every step asked for is recorded; nothing in memory waits to be written), so
        ``sim.results()`` after ``sim.run()`` says ``complete`` without a ``close()``. A later
        ``run()`` continues and says ``running`` again until it returns."""
        self.attrs.update(complete=not is_running, status="running" if is_running else "complete",
                          n_steps_done=int(n_steps_done))

    def to_datatree(self):
        """The records as a DataTree with the dims, coordinates and attributes a Zarr recording of the
        same run has (dims named per population as :class:`microcircuit.recording.ZarrRecorder` names
        them: ``time`` / ``neuron`` for the first time step / neuron selection, ``time_<var>`` /
        ``neuron_<var>`` for others)."""
        import xarray as xr
        groups = {}
        for s in self.specs:
            data = (np.concatenate(self.blocks[s.key]) if self.blocks[s.key]
                    else np.zeros((0,) + s.record_shape(self.batch), s.dtype))
            steps = np.concatenate(self.steps[s.key]) if self.steps[s.key] else np.zeros(0, np.int64)
            tdim, ndim, cdim = self.dims[s.key]
            dims = [tdim, "batch", ndim]
            coords = {tdim: (tdim, time_labels(steps, self.dt), {"units": "ms", "long_name": "time"}),
                      "batch": np.arange(self.batch), ndim: np.asarray(s.neurons)}
            if s.compartments:
                dims.append(cdim)
                coords[cdim] = np.asarray(list(s.compartments), dtype=object)
            lab = self.labels.get(s.population, {})
            if "cell_type" in lab:      # the same neuron labels a Zarr recording has (ZarrRecorder labels=)
                sfx = ndim[len("neuron"):]
                coords["cell_type" + sfx] = (ndim, np.full(len(s.neurons), str(lab["cell_type"]), dtype=object))
                coords["layer" + sfx] = (ndim, np.full(len(s.neurons), int(lab["layer"])))
            da = xr.DataArray(data, dims=dims, coords=coords,
                              attrs={"units": s.units, "long_name": s.long_name, "population": s.population})
            groups.setdefault(s.population, {})[s.name] = da
        tree = {"/": xr.Dataset(attrs=self.attrs)}
        for pop, vars_ in groups.items():
            tree[f"/{pop}"] = xr.Dataset(vars_, attrs={**self.labels.get(pop, {}), "population": pop})
        return xr.DataTree.from_dict(tree)


# A step's largest batched product (n_post * n_pre * batch multiply-adds) from which BLAS gets every core
# under threads = 0: below it a second thread costs more than it saves, and single-threaded runs leave the
# other cores to parallel runs (sweeps).
AUTO_THREADS_MIN_PRODUCT = 1 << 20


def blas_threads(program, threads=0) -> int:
    """BLAS threads for a program's batched products: ``threads`` if > 0, else all usable cores (at most
    what OPENBLAS_NUM_THREADS / OMP_NUM_THREADS / MKL_NUM_THREADS say, if set) when its largest product
    has at least AUTO_THREADS_MIN_PRODUCT multiply-adds, else 1."""
    threads = int(threads)
    if threads < 0:
        raise SimulationError(f"threads must be >= 0 (0: automatic), got {threads}")
    if threads:
        return threads
    pi = program.proj_int
    largest = int((pi[:, PJ_NPRE] * pi[:, PJ_NPOST]).max()) * program.batch if len(pi) else 0
    if largest < AUTO_THREADS_MIN_PRODUCT:
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    # a thread count the environment sets (a sweep's workers, a cluster's job script) caps the choice
    caps = [int(v) for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
            if (v := os.environ.get(k, "")).isdigit() and int(v) > 0]
    return min([cores] + caps)


_CONTROLLER = None


@contextlib.contextmanager
def _blas_limit(n):
    """BLAS (OpenBLAS / MKL under NumPy and SciPy, which the kernel's gemm calls) limited to ``n``
    threads while a run steps; the previous setting is restored afterwards (a notebook's own NumPy
    keeps its threads). The controller is built once per process (it scans the loaded libraries)."""
    global _CONTROLLER
    from threadpoolctl import ThreadpoolController
    if _CONTROLLER is None:
        _CONTROLLER = ThreadpoolController()
    with _CONTROLLER.limit(limits=int(n), user_api="blas"):
        yield


class Simulation:
    """Advance a :class:`Program` in chunks, recording as it goes.

    Parameters
    ----------
    program : Program
    recordings : list of :class:`Recording`
    output : path of a Zarr store to stream to, or None for in-memory recording
    chunk_steps : steps per kernel call (the recording block length)
    backend : "numba" (compiled kernel), "numpy" (reference stepper) or "cuda" (GPU, numba-cuda;
        :mod:`microcircuit.cuda_backend`)
    gates : callable ``(k0, k1) -> array (k1-k0, 2)`` of [nudging, plasticity] factors per step
        (protocols switch nudging and learning off outside training); default all ones.
    attrs : extra attributes stored with the recording (scenario text, seed, ...)
    progress : show a tqdm progress bar (steps/s, ETA)
    codec : chunk compression of a Zarr output, "zstd" (default), "lz4" (Blosc LZ4 + shuffle) or
        "none" (raw bytes, fastest; see :data:`microcircuit.recording.CODECS`)
    writer : how a Zarr output is written, "fast" (default) or "zarr" (zarr's public API only; see
        :data:`microcircuit.recording.WRITERS`); the stores are byte-identical
    threads : BLAS threads for the batched products while running (0: automatic, :func:`blas_threads`);
        results do not depend on it (BLAS splits a product's output among threads, not its sums).
    """

    def __init__(self, program: Program, *, recordings=(), output=None, overwrite=False, chunk_steps=1000,
                 backend="numba", gates=None, attrs=None, progress=False, checkpoint_every=None,
                 codec="zstd", threads=0, writer="fast"):
        if backend not in ("numba", "numpy", "cuda"):
            raise SimulationError(f"backend must be 'numba', 'numpy' or 'cuda', got '{backend}'")
        self.program = program
        self.threads = blas_threads(program, threads)
        self.chunk_steps = max(int(chunk_steps), 1)
        self.backend = backend
        self.gates = gates
        self.progress = progress
        self.output_path = output
        self._specs, self._plan = self._build_plan(recordings)
        self._rec_strides = sorted({spec.stride for spec, _, _, _ in self._plan})
        self._rec_cache = {}    # recording tables per (chunk length, stride phases), see _rec_tables
        base_attrs = {"dt": program.dt, "seed": int(program.seed), "scheme": program.scheme,
                      "batch": program.batch, "dtype": str(program.dtype)}
        labels = {}
        if program.circuit is not None:     # what each population is, and the parameters the model used
            from .labels import model_parameters, population_labels
            labels = population_labels(program.circuit)
            base_attrs["parameters"] = model_parameters(program.circuit, program)
        base_attrs.update(attrs or {})
        self.attrs = base_attrs
        if output is not None and self._specs:
            from .recording import ZarrRecorder
            self.recorder = ZarrRecorder(output, self._specs, dt=program.dt, batch=program.batch,
                                         chunk_records=None, block_steps=self.chunk_steps, attrs=base_attrs,
                                         overwrite=overwrite, codec=codec, labels=labels, writer=writer)
        elif output is not None:
            from .recording import ZarrRecorder
            self.recorder = ZarrRecorder(output, [], dt=program.dt, batch=program.batch, attrs=base_attrs,
                                         overwrite=overwrite)
        else:
            self.recorder = MemoryRecorder(self._specs, program.dt, program.batch, base_attrs, labels)
        self._closed = False
        # Zarr writes run on one background thread while the kernel (nogil) computes the next chunk;
        # at most one block is in flight, and every reader of the store waits for it (``recorder``).
        self._pending = None
        self._writer = None
        self._rec_bufs = [None, None]   # Zarr: double buffer for the recorded blocks (see _rec_tables)
        self._buf_i = 0
        self._helper = None             # in memory: prepares the next chunk's buffer (_fresh_buffer)
        self._prefetch = None
        # checkpoint/resume (microcircuit.checkpoint): write a checkpoint into the Zarr store every
        # this many steps (chunks are cut at the multiples, which does not change any result)
        self.checkpoint_every = checkpoint_every
        if backend == "numba":
            from .kernel import run_chunk
        elif backend == "cuda":      # GPU (numba-cuda): SimulationError naming the fix when unavailable
            from .cuda_backend import check_available, run_chunk
            check_available()
        else:
            from .reference import run_chunk
        self._run_chunk = run_chunk

    @property
    def specs(self):
        """The recorded variables (:class:`~microcircuit.recording.RecordedVariable`), in order."""
        return self._specs

    # ----------------------------------------------------------- background writing
    @property
    def recorder(self):
        """The recorder, after any block still being written has reached the store."""
        self._drain()
        return self._recorder

    @recorder.setter
    def recorder(self, value):
        self._recorder = value

    def _drain(self):
        f, self._pending = getattr(self, "_pending", None), None
        if f is not None:
            f.result()          # re-raises a failed write here, in the caller's thread

    def _write(self, blocks, steps):
        rec = self._recorder
        if rec.keeps_blocks:
            rec.append(blocks, steps=steps, copy=False)     # blocks own their memory (see _rec_tables)
            return
        self._drain()
        if self._writer is None:
            from concurrent.futures import ThreadPoolExecutor
            self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="microcircuit-zarr")
        self._pending = self._writer.submit(rec.append, blocks, steps=steps)
        # the blocks are views of this chunk's buffer: the next chunk records into the other one
        self._buf_i ^= 1

    # ----------------------------------------------------------- recording plan
    def _build_plan(self, recordings):
        from .recording import RecordedVariable
        prog = self.program
        specs, plan = [], []
        for rec in recordings:
            if rec.population not in prog.pop_index:
                raise CircuitError(f"recording: unknown population '{rec.population}'; populations are "
                                   f"{prog.pop_names}")
            i = prog.pop_index[rec.population]
            model = get_model(prog.pop_models[i])
            n = int(prog.pop_int[i, PP_N])
            idx = _select(rec.neurons, n, f"recording of '{rec.population}'.neurons")
            if int(rec.stride) < 1:
                raise CircuitError(f"recording of '{rec.population}': stride must be >= 1")
            for var in rec.variables:
                if var not in model.variables:
                    raise CircuitError(f"recording of '{rec.population}': model '{model.name}' has no variable "
                                       f"'{var}'; recordable: {sorted(model.variables)}")
                v = model.variables[var]
                codes = v.code if isinstance(v.code, tuple) else (v.code,)
                spec = RecordedVariable(population=rec.population, name=var, neurons=idx,
                                        compartments=v.compartments, units=v.unit, long_name=v.long_name,
                                        dtype=np.dtype(rec.dtype), stride=int(rec.stride))
                specs.append(spec)
                plan.append((spec, codes, int(prog.pop_int[i, PP_OFF]), idx))
        return specs, plan

    def _rec_tables(self, k0, K):
        B = self.program.batch
        # the tables depend on k0 only through each stride's phase: cached per (K, phases)
        key = (K, tuple(k0 % s for s in self._rec_strides))
        cache = self._rec_cache
        if key not in cache:
            if len(cache) > 64:
                cache.clear()
            rows, idx_parts, layout = [], [], []
            boff, ioff = 0, 0
            for spec, codes, poff, idx in self._plan:
                s = spec.stride
                first = (k0 + s - 1) // s
                last = (k0 + K - 1) // s
                n_rec = max(last - first + 1, 0)
                ncomp = len(codes)
                size = n_rec * B * len(idx) * ncomp
                for ci, code in enumerate(codes):
                    rows.append((code, poff, ioff, len(idx), s, boff, ncomp, ci))
                layout.append((spec, boff, n_rec, ncomp, first - k0 // s))
                idx_parts.append(idx)
                ioff += len(idx)
                boff += size
            cache[key] = (np.asarray(rows, np.int64).reshape(-1, 8),
                          np.concatenate(idx_parts).astype(np.int64) if idx_parts else np.zeros(0, np.int64),
                          layout, boff)
        rec_int, rec_idx, layout, boff = cache[key]
        views = [(spec, bo, n_rec, ncomp, k0 // spec.stride + d) for spec, bo, n_rec, ncomp, d in layout]
        # The recorded blocks are views of this buffer (no copy on the way to the recorder):
        # * in memory, every chunk records into a fresh buffer that the MemoryRecorder keeps;
        # * to Zarr, two buffers alternate: the writer thread reads one while the kernel fills the
        #   other (at most one block is in flight, see _write), so memory stays at two chunks.
        if boff == 0:
            return rec_int, rec_idx, np.empty(1), views
        if self._recorder.keeps_blocks:
            return rec_int, rec_idx, self._fresh_buffer(boff), views
        buf = self._rec_bufs[self._buf_i]
        if buf is None or buf.size < boff:
            buf = self._rec_bufs[self._buf_i] = np.empty(boff)
        return rec_int, rec_idx, buf[:boff], views

    def _fresh_buffer(self, n):
        """A new recording buffer of n doubles whose pages are already mapped. Mapping 10-100 MB of
        fresh memory per chunk costs about as much as the kernel's own work (page faults), so a
        helper thread maps the next chunk's buffer (:func:`_touched`) while the kernel (nogil) runs.
        Measured, Bars 9-30-3, all 393 values/step to memory, 2-core VM under load: 1.36-1.46x the
        time without recording, against 1.6x with one copy per chunk and 1.64-1.74x before (two)."""
        if n < _PREFAULT_MIN:
            return np.empty(n)      # small: a thread hand-off would cost more than the page faults
        fut, self._prefetch = self._prefetch, None
        buf = fut.result() if fut is not None else None
        if buf is None or buf.size != n:
            buf = _touched(n)
        if self._helper is None:
            from concurrent.futures import ThreadPoolExecutor
            self._helper = ThreadPoolExecutor(max_workers=1, thread_name_prefix="microcircuit-prefault")
        self._prefetch = self._helper.submit(_touched, n)
        return buf

    # ------------------------------------------------------------------ running
    @property
    def step(self):
        return self.program.step

    @property
    def time(self):
        return self.program.step * self.program.dt

    def stimulus_block(self, k0, K):
        """Values of every stimulus for steps k0..k0+K-1 as ``(block, row)``: step ``k`` of stimulus ``s``
        reads ``block[row[k, s], cols of s, :]``. A held stimulus (a dataset sample shown for many steps)
        contributes one block row per distinct sample, not one per step."""
        prog = self.program
        parts = [s.rows(k0, k0 + K, prog.dt, int(n), prog.batch) for s, (off, n, kind, col)
                 in zip(prog.stimuli, prog.stim_int)]
        row = np.zeros((K, len(parts)), np.int64)
        out = np.zeros((max(sum(len(b) for b, _ in parts), 1), prog.n_stim_cols, prog.batch), prog.dtype)
        r0 = 0
        for si, ((blk, idx), (off, n, kind, col)) in enumerate(zip(parts, prog.stim_int)):
            out[r0:r0 + len(blk), col:col + n, :] = blk
            row[:, si] = r0 + np.asarray(idx, np.int64)
            r0 += len(blk)
        return out, row

    def run(self, duration=None, *, steps=None, progress=None):
        """Advance by ``duration`` (ms) or ``steps``. Returns ``self``."""
        if self._closed:
            raise SimulationError("this simulation was closed; build a new one to run again")
        prog = self.program
        if steps is None:
            if duration is None:
                raise SimulationError("run() needs duration (ms) or steps")
            steps = int(round(duration / prog.dt))
            if abs(steps * prog.dt - duration) > 1e-6 * max(prog.dt, abs(duration)):
                raise SimulationError(f"duration {duration} is not a whole number of steps of dt = {prog.dt}")
        steps = int(steps)
        show = self.progress if progress is None else progress
        bar = None
        if show:
            from tqdm.auto import tqdm
            bar = tqdm(total=steps, unit="step", unit_scale=True, dynamic_ncols=True, desc="simulating")
        target = prog.step + steps
        self._recorder.running(True, prog.step)
        try:
            with _blas_limit(self.threads):
                self._run_steps(target, bar)
            self._drain()           # when run() returns, every record is in the store
            self._recorder.running(False, prog.step)
        except KeyboardInterrupt as exc:     # Ctrl-C, or SIGTERM under the CLI (errors.Terminated)
            self._close(False, close_reason(exc, self._where()))
            raise
        except DivergenceError as exc:
            self._close(False, f"diverged: {exc}")
            raise
        except OSError as exc:               # full or read-only disk, I/O error: the store says "failed"
            try:
                self._close(False, close_reason(exc, self._where()))
            except OSError:
                pass    # not even the status could be written: the first error is the one to report
            raise
        finally:
            if bar is not None:
                bar.close()
        return self

    def _run_steps(self, target, bar):
        prog = self.program
        while prog.step < target:
            # chunks end on the global grid of chunk_steps (after a short run, the next chunk is
            # shortened to rejoin it), so that every later block is one whole Zarr chunk
            K = min(self.chunk_steps - prog.step % self.chunk_steps, target - prog.step)
            ce = self.checkpoint_every
            if ce:
                K = min(K, ce - prog.step % ce)
            self._chunk(prog.step, K)
            if ce and prog.step % ce == 0:
                from .checkpoint import write_checkpoint
                write_checkpoint(self)
            if bar is not None:
                bar.update(K)

    def _chunk(self, k0, K):
        prog = self.program
        stim, stim_row = self.stimulus_block(k0, K)
        gates = np.ones((K, 2)) if self.gates is None else np.asarray(self.gates(k0, k0 + K), float)
        if gates.shape != (K, 2):
            raise SimulationError(f"gates({k0}, {k0 + K}) must return shape ({K}, 2), got {gates.shape}")
        rec_int, rec_idx, rec_buf, views = self._rec_tables(k0, K)
        status = np.zeros(4, np.int64)
        nr = prog.neuron
        self._run_chunk(k0, K, prog.dt, prog.n_total, prog.batch, SCHEMES[prog.scheme],
                        prog.ops, prog.pop_int, prog.pop_float, nr["g_lk"], nr["g0"], nr["g1"], nr["g_nud"],
                        nr["tau_r"], nr["gamma"], nr["sigma"], nr["bias"], nr["err_tau"], prog.proj_int,
                        prog.proj_float, prog.weights, prog.dw_filter, prog.masks, prog.state, prog.prev,
                        prog.ports, prog.ext, prog.stim_int, stim, stim_row, gates, rec_int, rec_idx, rec_buf, prog.rng,
                        status)
        done = int(status[0])
        self._flush(views, rec_buf, k0, done)
        prog.step = k0 + done
        if status[1]:
            pop = prog.pop_names[int(status[2])]
            var = _SIG_LABELS[int(status[3])]
            step = k0 + done
            raise DivergenceError(pop, var, step, step * prog.dt)

    def _flush(self, views, rec_buf, k0, done):
        if not views:
            return
        B = self.program.batch
        blocks, steps = {}, {}
        step_arrays = {}      # one array of record steps per (first record, count, stride), shared by its variables
        for spec, boff, n_rec, ncomp, first in views:
            # records at steps >= k0 + done were not reached (the kernel stopped early): dropped
            n_keep = min(n_rec, max(0, -(-(k0 + done) // spec.stride) - first))
            skey = (first, n_keep, spec.stride)
            if skey not in step_arrays:
                step_arrays[skey] = (first + np.arange(n_keep)) * spec.stride
            size = n_rec * B * len(spec.neurons) * ncomp
            arr = rec_buf[boff:boff + size].reshape(n_rec, B, len(spec.neurons), ncomp)[:n_keep]
            if spec.compartments is None:
                arr = arr[..., 0]
            # a view of the chunk's buffer (handed over, see _rec_tables); the Zarr writer converts
            # the dtype in its own thread, the memory recorder keeps converted copies
            if spec.dtype != arr.dtype and self._recorder.keeps_blocks:
                arr = arr.astype(spec.dtype)
            blocks[spec.key] = arr
            steps[spec.key] = step_arrays[skey]
        if any(len(s) for s in steps.values()):
            nonempty = [k for k in blocks if len(steps[k])]
            self._write({k: blocks[k] for k in nonempty}, {k: steps[k] for k in nonempty})

    def _where(self):
        return f"at step {self.program.step}, t = {self.time:g} ms"

    def _close(self, complete, reason=None):
        """Wait for the last block, then mark the store. If that last write fails (a full disk), the
        store is still closed, as failed unless another reason was given, and the error is raised."""
        if self._closed:
            return
        failure = None
        try:
            self._drain()
        except Exception as exc:
            failure = exc
            if complete:
                complete, reason = False, close_reason(exc, self._where())
        finally:
            if self._writer is not None:
                self._writer.shutdown(wait=True)
                self._writer = None
            if self._helper is not None:
                self._helper.shutdown(wait=True)
                self._helper, self._prefetch = None, None
        if hasattr(self.recorder, "set_attrs") and complete is not None:
            try:
                self.recorder.set_attrs(n_steps_done=int(self.program.step))
            except Exception:
                pass
        try:
            self.recorder.close(complete=complete, reason=reason)
        finally:
            self._closed = True
        if failure is not None:
            raise failure

    def close(self):
        """Mark the recording complete and close it."""
        self._close(True)
        return self

    def results(self):
        """The recording as an :class:`xarray.DataTree` (lazy from Zarr, or from memory).

        In memory, the root attr ``status`` is ``complete`` once ``run()`` has returned (``running``
        only during a run; ``incomplete`` after one that stopped, ``reason`` says why). A Zarr store says
        ``running`` until :meth:`close`, as it is still held open for writing: close it when done."""
        self._drain()
        if self.output_path is not None:
            from .recording import open_recording
            return open_recording(self.output_path)
        return self.recorder.to_datatree()
