"""Supervised presentation protocols: learning from data with the engine.

A data set of static patterns is shown to the network as a **continuous stream**: each sample
is held for ``t_pres`` ms (``S = t_pres / dt`` steps) and followed directly by the next, with
no reset of the network state in between (``reset=True`` resets the state at the start of every
presentation instead; slower, one kernel call per presentation). An *epoch* is one pass over
the training set in a seeded random order, followed by evaluation phases (``val``, ``test``,
optionally ``train_eval``) in which nudging and plasticity are switched off through the
Simulation ``gates`` callable (``[nudge, plasticity] = [0, 0]``), so weights cannot change
there.

Batch. ``batch = B`` runs B network copies in parallel (the engine's batch dimension). Copy
``b`` sees its own sample stream (presentation ``j`` shows sample ``perm[j*B + b]``); the copies
share the weights and the engine averages their updates (``dW = dt eta <e r^T>_batch``), i.e.
minibatch SGD with batch B, in continuous time.

Readout. The prediction of a presentation is the output signal (``readout_signal``, default the
rate ``r``) at the last step of the presentation (``readout="last"``), or averaged over the last
``readout_window`` fraction of it (``readout="window"``). Loss: ``0.5 ||readout - target||^2``
per sample, averaged (the BP baseline's ``mse``); accuracy: ``argmax readout == label``.

Learning-rate convention. ``lr`` is **per presentation**, independent of ``dt`` and ``t_pres``:
every plastic projection gets ``eta = lr * lr_factor_l / t_pres`` (per ms), so that one
presentation adds ``S * dt * eta <e r^T> = lr * lr_factor_l * <e r^T>`` (the LE code's
``eta_step = lr / (dt * n_updates)``). Biases of rate populations with plastic inputs learn with
the same rate (``eta_bias``) unless ``learn_bias=False``. Note that the LE error ``e`` carries
the nudging strength ``beta``: with ``loss="rate"`` one presentation adds about
``lr * beta * (-dL/dW)``, so LE with ``lr`` corresponds to BP (SGD, batch B) with ``lr * beta``.

Efficiency. One epoch phase is one :meth:`Simulation.run` (a few kernel calls of a few
thousand steps): the inputs and targets of the whole phase are an
:class:`~microcircuit.stimuli.ArrayStimulus` of shape ``(n_presentations, n, B)`` with
``hold_steps = S``, and the output is recorded every step (only the output population) and
read at the presentation ends. A scenario's ``[[recordings]]`` (the circuit itself, best with a
``stride``) go into the output store next to ``metrics``, collected over presentations and written
in blocks of at least 10000 steps (``_CircuitSink``); they do not change what is learned.

Entry points: :func:`train` (Python, notebooks) and :func:`run_protocol` (a scenario's
``[protocol]`` table, used by ``microcircuit run``).
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .circuit import Circuit, layered
from .compile import compile_circuit, init_state, Program
from .errors import MicrocircuitError, ScenarioError
from .simulation import Simulation, Recording
from .stimuli import ArrayStimulus

__all__ = ["train", "run_protocol", "resume_protocol", "ProtocolCheckpoint", "TrainResult", "ProtocolError", "build_network", "load_dataset",
           "PlateauSchedule", "per_step_loss",
           "PHASES"]

PHASES = ("train", "val", "test", "train_eval")
GATE_ON = (1.0, 1.0)
GATE_OFF = (0.0, 0.0)
GATE_ADAPT = (0.0, 1.0)     # nudging off, plasticity on: only unsupervised (tau) learning acts


class ProtocolError(MicrocircuitError, ValueError):
    """Invalid protocol argument; the message names the field and the fix."""


# ----------------------------------------------------------------------------- result
@dataclass
class TrainResult:
    """Per-epoch metrics and the trained program.

    ``metrics[name]`` is an array over ``epochs`` (epoch 0 = before training when
    ``eval_initial``; train-phase metrics are NaN there). Names: ``<phase>_loss``,
    ``<phase>_accuracy`` for the phases run (``train`` = online, measured while learning with
    nudging on), plus ``wall_time_s``.
    """
    metrics: dict
    epochs: np.ndarray
    settings: dict
    program: Program = None
    snapshots: dict = field(default_factory=dict)     # epoch -> {projection: W}
    output: str | None = None
    wall_time_s: float = 0.0

    def final(self, name):
        """Last value of a metric."""
        return float(np.asarray(self.metrics[name])[-1])

    def best(self, name):
        return float(np.nanmax(self.metrics[name]))

    def weights(self):
        """Current weights of all projections (copies)."""
        return {p: self.program.weight(p).copy() for p in self.program.proj_names}

    def table(self):
        """Metrics as rows of dicts (one per epoch)."""
        rows = []
        for i, e in enumerate(self.epochs):
            rows.append({"epoch": int(e), **{k: float(v[i]) for k, v in self.metrics.items()}})
        return rows

    def summary(self) -> str:
        s = self.settings
        lines = [f"protocol: {s.get('data')} on {s.get('network')}, t_pres = {s['t_pres']:g} ms, "
                 f"dt = {s['dt']:g} ms ({s['steps_per_presentation']} steps/presentation), batch = {s['batch']}, "
                 f"lr = {s['lr']}, epochs = {s['epochs']}, readout = {s['readout']}",
                 f"wall time {self.wall_time_s:.1f} s"]
        names = [k for k in self.metrics if k != "wall_time_s"]
        head = "epoch " + " ".join(f"{n:>16}" for n in names)
        lines.append(head)
        n = len(self.epochs)
        show = list(range(n)) if n <= 12 else sorted(set(list(range(3)) + list(range(n - 3, n))
                                                         + list(range(0, n, max(n // 6, 1)))))
        for i in show:
            lines.append(f"{int(self.epochs[i]):>5} " + " ".join(f"{self.metrics[k][i]:>16.4f}" for k in names))
        if self.output:
            lines.append(f"metrics written to {self.output}/metrics")
        return "\n".join(lines)

    __str__ = summary


# ----------------------------------------------------------------------------- helpers
def build_network(spec, *, hidden=None, output=None, weights=None, feedback="transpose") -> Circuit:
    """A :class:`Circuit` from a Circuit (copied), a list of layer sizes, or a dict
    ``{sizes, hidden, output, weights, feedback}`` (see :func:`microcircuit.layered`).

    Defaults for a size list: tanh hidden rate neurons, logistic output with ``loss="rate"``,
    ``beta = 0.1``, tau_m = tau_r = 10 ms (LE), weights N(0, 0.05^2).
    """
    if isinstance(spec, Circuit):
        return copy.deepcopy(spec)
    if isinstance(spec, dict):
        spec = dict(spec)
        sizes = spec.pop("sizes")
        hidden = spec.pop("hidden", hidden)
        output = spec.pop("output", output)
        weights = spec.pop("weights", weights)
        feedback = spec.pop("feedback", feedback)
        if spec:
            raise ProtocolError(f"network spec: unknown keys {sorted(spec)}; use sizes, hidden, output, "
                                f"weights, feedback")
    else:
        sizes = spec
    h = {"tau_m": 10.0, "activation": "tanh"}
    h.update(hidden or {})
    o = {"tau_m": 10.0, "activation": "logistic", "loss": "rate", "beta": 0.1}
    o.update(output or {})
    # eta = 1/ms marks the projections plastic (rule "error"); train(lr=...) sets the actual rate
    return layered(list(sizes), hidden=h, output=o, weights=weights, feedback=feedback, eta=1.0)


def load_dataset(name, **args):
    """A registered data set by name, e.g. ``load_dataset("yin_yang", n_train=1000)``.

    Only names in :data:`microcircuit.datasets.DATASETS` are reachable and every argument is checked
    against the type and bounds declared there (a scenario file is untrusted input); problems raise
    :class:`~microcircuit.datasets.DatasetError` naming ``protocol.dataset`` /
    ``protocol.dataset_args.<key>`` and the fix.
    """
    from .datasets.registry import load
    return load(name, **args)


def _targets(y, n_out, n_classes, targets):
    if n_classes is None:
        return np.asarray(y, float).reshape(len(y), -1)
    from .datasets import one_hot
    return one_hot(np.asarray(y), n_out, low=targets[0], high=targets[1])


def _stream(n, B, perm):
    """Sample indices (n_per, B) for B copies; padded by wrapping; mask of real samples."""
    n_per = max(int(math.ceil(n / B)), 1)
    total = n_per * B
    reps = int(math.ceil(total / max(n, 1)))
    idx = np.tile(perm, reps)[:total].reshape(n_per, B)
    valid = (np.arange(total) < n).reshape(n_per, B)
    return idx, valid


class _Runner:
    """Compiled program + simulation for one training run."""

    def __init__(self, circuit, *, dt, S, batch, scheme, seed, input_pop, output_pop, readout, readout_signal,
                 readout_window, reset, dtype="float64", lag_steps=0, sequence=False, extra_stimuli=(),
                 loss="mse", recordings=(), backend="numba", threads=0):
        self.S, self.B, self.dt = S, batch, dt
        self.sequence, self.loss = bool(sequence), loss
        self.input_pop, self.output_pop = input_pop, output_pop
        n_in = circuit.population(input_pop).size
        n_out = circuit.population(output_pop).size
        self.n_in, self.n_out = n_in, n_out
        stim = [ArrayStimulus(input_pop, np.zeros((1, n_in)), hold_steps=S, kind="rate", name="protocol_input"),
                ArrayStimulus(output_pop, np.zeros((1, n_out)), hold_steps=S, kind="target", name="protocol_target")]
        self.prog = compile_circuit(circuit, dt=dt, batch=batch, scheme=scheme, seed=seed,
                                    stimuli=stim + list(extra_stimuli), dtype=dtype)
        _hold_constant_inputs(self.prog, extra_stimuli)
        self.gate = np.array(GATE_ON, float)
        self.readout, self.readout_signal = readout, readout_signal
        self.win = max(1, int(round(readout_window * S))) if readout == "window" else 1
        self.reset = reset
        self.lag_steps, self.start = int(lag_steps), 0
        rec = Recording(output_pop, [readout_signal], stride=1)
        # chunks of whole presentations, stimulus block <= ~32 MB
        per_step = (n_in + n_out) * batch * 8
        chunk = max(S, (int(32e6 // max(per_step, 1)) // S) * S)
        for r in recordings:
            if r.population == output_pop and readout_signal in r.variables:
                raise ProtocolError(f"recordings: {output_pop}.{readout_signal} is the protocol's readout signal, "
                                    "recorded every step for the loss; record other variables of it (e.g. v, r)")
        self.sim = Simulation(self.prog, recordings=[rec, *recordings], output=None, chunk_steps=chunk,
                              gates=self._gates, backend=backend, threads=threads)
        self._key = (output_pop, readout_signal)
        self.circuit_specs = [sp for sp in self.sim.specs if sp.key != self._key]
        self.sink = None        # a _CircuitSink when the circuit is recorded into the store (train)

    def _hand_over(self):
        """Move the circuit's records of the presentations just shown from memory to the store."""
        rec = self.sim.recorder
        blocks, steps = {}, {}
        for sp in self.circuit_specs:
            if rec.blocks[sp.key]:
                blocks[sp.key] = np.concatenate(rec.blocks[sp.key])
                steps[sp.key] = np.concatenate(rec.steps[sp.key])
            rec.blocks[sp.key].clear()
            rec.steps[sp.key].clear()
        if blocks and self.sink is not None:
            self.sink.add(blocks, steps)

    def _gates(self, k0, k1):
        g = np.broadcast_to(self.gate, (k1 - k0, 2))
        if self.lag_steps and self.gate[1] > 0:
            # learning lag: plasticity off for the first lag_steps steps of every presentation
            g = g.copy()
            g[((np.arange(k0, k1) - self.start) % self.S) < self.lag_steps, 1] = 0.0
        return g

    def present(self, X, Y, gate):
        """Show presentations X (P, n_in, B) — in sequence mode (P, S, n_in, B), one row per step — with
        targets Y (P, n_out, B); return the readout (P, B, n_out) and, for ``readout="sum"``, the
        per-step loss of the output averaged over steps and copies (P, B), else None."""
        if self.sequence:
            # groups of presentations, so that the per-step output record stays below ~16 M values
            G = max(1, int(16e6 // (self.S * self.B * self.n_out)))
            parts = [self._present(X[a:a + G], Y[a:a + G], gate) for a in range(0, X.shape[0], G)]
            return (np.concatenate([p[0] for p in parts]),
                    None if parts[0][1] is None else np.concatenate([p[1] for p in parts]))
        return self._present(X, Y, gate)

    def _present(self, X, Y, gate):
        prog, S = self.prog, self.S
        P = X.shape[0]
        self.gate = np.asarray(gate, float)
        rec = self.sim.recorder
        rec.blocks[self._key].clear()
        rec.steps[self._key].clear()
        if self.reset:
            if self.sequence:
                raise ProtocolError("train: reset=True is not available with presentation='sequence'")
            for j in range(P):
                init_state(prog)
                k = prog.step
                self.start = k
                prog.stimuli[0] = ArrayStimulus(self.input_pop, X[j:j + 1], hold_steps=S, kind="rate",
                                                delay_steps=k, name="protocol_input")
                prog.stimuli[1] = ArrayStimulus(self.output_pop, Y[j:j + 1], hold_steps=S, kind="target",
                                                delay_steps=k, name="protocol_target")
                self.sim.run(steps=S)
            data = np.concatenate(rec.blocks[self._key])
        else:
            k = prog.step
            self.start = k
            if self.sequence:
                prog.stimuli[0] = ArrayStimulus(self.input_pop, X.reshape((P * S,) + X.shape[2:]), hold_steps=1,
                                                kind="rate", delay_steps=k, name="protocol_input")
            else:
                prog.stimuli[0] = ArrayStimulus(self.input_pop, X, hold_steps=S, kind="rate", delay_steps=k,
                                                name="protocol_input")
            prog.stimuli[1] = ArrayStimulus(self.output_pop, Y, hold_steps=S, kind="target", delay_steps=k,
                                            name="protocol_target")
            self.sim.run(steps=P * S)
            data = np.concatenate(rec.blocks[self._key])
        rec.blocks[self._key].clear()
        rec.steps[self._key].clear()
        self._hand_over()
        data = data.reshape(P, S, self.B, self.n_out)
        if self.readout == "last":
            return data[:, -1], None
        if self.readout == "sum":
            return data.sum(axis=1), per_step_loss(data, Y, self.loss)
        return data[:, S - self.win:].mean(axis=1), None


class _CircuitSink:
    """Collects the circuit's records (``[[recordings]]`` of a protocol run) over presentations and
    appends them to the store once they span ``chunk_steps`` steps: a presentation is a few steps,
    and appending each alone would write a tiny chunk file per array per presentation."""

    def __init__(self, recorder, chunk_steps):
        self.recorder, self.chunk_steps = recorder, int(chunk_steps)
        self.blocks, self.steps = {}, {}

    def add(self, blocks, steps):
        for k, b in blocks.items():
            self.blocks.setdefault(k, []).append(b)
            self.steps.setdefault(k, []).append(steps[k])
        first = min(int(s[0][0]) for s in self.steps.values() if len(s[0]))
        last = max(int(s[-1][-1]) for s in self.steps.values() if len(s[-1]))
        if last - first + 1 >= self.chunk_steps:
            self.flush()

    def flush(self):
        if self.blocks:
            self.recorder.append({k: np.concatenate(v) for k, v in self.blocks.items()},
                                 steps={k: np.concatenate(v) for k, v in self.steps.items()})
        self.blocks, self.steps = {}, {}


_SINK_CHUNK_STEPS = 10000


def per_step_loss(data, Y, loss):
    """Per-step loss of the output ``data`` (P, S, B, n) against the held targets Y (P, n, B), averaged
    over the S steps of each presentation: cross-entropy of each step's logits, or 0.5 ||r - y||^2."""
    t = Y.transpose(0, 2, 1)[:, None]                                    # (P, 1, B, n)
    if loss == "cross_entropy":
        m = data.max(axis=-1, keepdims=True)
        lse = m[..., 0] + np.log(np.exp(data - m).sum(axis=-1))
        return (lse - (data * t).sum(axis=-1)).mean(axis=1)
    return 0.5 * ((data - t) ** 2).sum(axis=-1).mean(axis=1)


def _hold_constant_inputs(prog, stimuli):
    """Constant-rate stimuli (e.g. the bias unit, rate 1) are in place from the very first step."""
    from .compile import hold_input_rate
    from .stimuli import Step
    for st in stimuli:
        if isinstance(st, Step) and st.kind == "rate" and st.start <= 0 and math.isinf(st.stop):
            hold_input_rate(prog, st.target, st.amplitude)


def _metrics(R, T, labels, valid, n_classes, loss, step_loss=None):
    """Loss and accuracy of readouts R (P, B, n_out) against targets T (P, B, n_out); with
    ``step_loss`` (P, B) (summed readout) the loss is its mean instead of the readout's loss."""
    m = valid.reshape(-1)
    r = R.reshape(-1, R.shape[-1])[m]
    t = T.reshape(-1, T.shape[-1])[m]
    if loss == "cross_entropy":
        z = r - r.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        L = float(-(logp * t).sum(axis=1).mean())
    else:
        L = float(0.5 * np.sum((r - t) ** 2) / max(len(r), 1))
    if step_loss is not None:
        L = float(step_loss.reshape(-1)[m].mean())
    if n_classes is None:
        acc = float("nan")
    else:
        lab = labels.reshape(-1)[m]
        acc = float(np.mean(np.argmax(r, axis=1) == lab))
    return L, acc


# ----------------------------------------------------------------------------- train
def train(net, data, *, t_pres, dt=None, steps_per_presentation=None, epochs=1, lr=None, batch=1,
          lr_factors=None, learn_bias=True, readout="last", readout_window=0.2, readout_signal="r",
          loss=None, targets=(0.0, 1.0), seed=0, shuffle=True, reset=False, phases=("train", "val", "test"),
          eval_initial=True, adapt_presentations=0, input_pop="input", output_pop="output",
          scheme="synchronous", output=None, overwrite=False, progress=False, snapshot_every=0,
          attrs=None, dtype="float64", lr_schedule="constant", eval_every=1,
          tau_learning_in_training=True, lr_decay=1.0, learning_lag=0.0, presentation="hold",
          plateau_patience=2, plateau_factor=0.5, plateau_phase=None, plateau_eps=0.0,
          stimuli=(), recordings=(), checkpoint_every=0, resume=None, backend="numba", threads=0) -> TrainResult:
    """Train a network on a :class:`~microcircuit.datasets.SupervisedData` set by presenting samples.

    Parameters
    ----------
    net : Circuit, list of layer sizes, or dict ``{sizes, hidden, output, weights, feedback}``
        (see :func:`build_network`); a Circuit is copied, never modified.
    data : SupervisedData (or the name of a data set with default arguments)
    t_pres : presentation time per sample (ms)
    dt, steps_per_presentation : give one (``dt = t_pres / steps``); default 50 steps
    epochs : passes over the training set
    lr : learning rate per presentation (see the module docstring); None keeps the etas of the
        circuit's projections as they are (per ms)
    batch : parallel network copies (shared weights, updates averaged)
    lr_factors : per plastic projection factors (in projection order), default 1
    readout : "last" (output at the last step of a presentation), "window" (mean over the last
        ``readout_window`` fraction) or "sum" (summed over all steps of the presentation: the GLE
        readout of logits summed over a sequence; the reported loss is then the per-step loss of the
        output averaged over the steps, as the GLE reference code monitors); ``readout_signal``:
        "r", "u_pros" or "u"
    presentation : "hold" (each sample's features held for the whole presentation) or "sequence"
        (a sample is a time series: its n_features values are shown n_in per step, so a presentation
        lasts ``S = n_features / n_in`` steps and ``t_pres`` must equal ``S * dt``; MNIST-1D: 360
        steps of one scalar); the target is held for the whole presentation in both
    loss : metric loss, "mse" or "cross_entropy" (default from the output population's ``loss``)
    targets : (low, high) one-hot target values for classification
    seed : seeds the network (weights, noise, per-neuron parameters) and the shuffling
    reset : reset the network state at the start of every presentation (default: continuous stream)
    phases : any of "train" (learning, online metrics), "val", "test", "train_eval" (training set,
        no learning); evaluation phases run with nudging and plasticity off
    eval_initial : evaluate the evaluation phases once before training (epoch 0)
    adapt_presentations : before training, present this many training samples with nudging off and
        plasticity on (the LE time-constant adaptation, ``tau_learning="le_adapt"``)
    tau_learning_in_training : keep time-constant learning (``eta_tau``) on while training; False sets
        ``eta_tau = 0`` after the adaptation presentations (the LE paper adapts tau_m before training
        only; with nudging on, the error currents add fast components to du/dt and a large
        ``eta_tau`` can make the explicit-Euler tau_m update unstable)
    output : Zarr store for the per-epoch ``metrics`` group (and weight ``snapshots``)
    snapshot_every : store all weights every this many epochs (0: never) in the result and output
    lr_schedule : "constant", "cosine" (rates scaled by 0.5 (1 + cos(pi (e - 1) / E)) in epoch e, as
        the BP baseline's ``lr_schedule``) or "exponential" (rates scaled by ``lr_decay^(e - 1)`` in
        epoch e = 1..E: eta_e = eta_0 * lr_decay^(e - 1), the LE microcircuit Yin-Yang schedule)
    lr_decay : per-epoch factor of the "exponential" schedule, 0 < lr_decay <= 1; "plateau": PyTorch's
        ``ReduceLROnPlateau`` (mode min, relative threshold 1e-4): after more than
        ``plateau_patience`` epochs without improvement of the ``plateau_phase`` loss (default "val"
        if that phase runs, else "test"; evaluated every epoch) the rates are multiplied by
        ``plateau_factor``, unless the rates would fall by less than ``plateau_eps`` times their initial
        values (PyTorch's ``eps`` divided by the initial rate; GLE MNIST-1D: 1e-8 / 1e-3 = 1e-5)
    stimuli : extra stimuli of the network itself (e.g. a bias unit held at rate 1), kept in every phase
    recordings : :class:`~microcircuit.simulation.Recording` of the circuit (a scenario's
        ``[[recordings]]``) written with ``output`` as population groups next to ``metrics``, over the
        whole stream of presentations (every phase, one continuous time axis; use a ``stride`` to
        keep the store small). The output's ``readout_signal`` is the protocol's own and cannot be listed.
    learning_lag : plasticity off for the first ``learning_lag`` ms of every training presentation
        (the LE / Sacramento learning lag: the weights only learn from the settled state); it
        becomes ``round(learning_lag / dt)`` steps, fewer than the steps per presentation
    eval_every : run the evaluation phases every this many epochs (and always after the last)
    checkpoint_every : with ``output``, write a checkpoint into the store after the setup (epoch 0:
        adaptation presentations and initial evaluation done) and after every this many epochs (0:
        never; "auto": after every epoch that ends at least :data:`AUTO_CHECKPOINT_S` seconds after the
        last checkpoint, so that short epochs are not slowed down by the checkpoint writes, about 0.1 to
        0.3 s each); where the checkpoints fall never changes a result. See :func:`resume_protocol`
    resume : a :class:`ProtocolCheckpoint` read from ``output`` (used by :func:`resume_protocol`):
        reopen that store instead of creating it, restore the run's state and continue after the
        checkpoint's epoch; all other arguments must be the ones the run started with
    backend, threads : the engine and its BLAS threads, as ``[simulation] backend`` / ``threads``
        (:class:`~microcircuit.simulation.Simulation`)
    """
    t0 = time.perf_counter()
    auto_ckpt = checkpoint_every == "auto"
    checkpoint_every = 1 if auto_ckpt else checkpoint_every
    if isinstance(checkpoint_every, bool) or not isinstance(checkpoint_every, (int, np.integer)) \
            or checkpoint_every < 0:
        raise ProtocolError(f"train.checkpoint_every: must be an integer >= 0 epochs (0: never) or 'auto', "
                            f"got {checkpoint_every!r}")
    checkpoint_every = int(checkpoint_every)
    if resume is not None and output is None:
        raise ProtocolError("train: resume needs the output store the run wrote")
    if isinstance(data, str):
        data = load_dataset(data)
    for ph in phases:
        if ph not in PHASES:
            raise ProtocolError(f"train.phases: unknown phase '{ph}'; use {PHASES}")
    if readout not in ("last", "window", "sum"):
        raise ProtocolError(f"train.readout: '{readout}' is not 'last', 'window' or 'sum'")
    if not t_pres > 0:
        raise ProtocolError(f"train.t_pres: must be > 0 ms, got {t_pres}")
    if dt is not None and steps_per_presentation is not None:
        if abs(dt * steps_per_presentation - t_pres) > 1e-9 * t_pres:
            raise ProtocolError("train: dt * steps_per_presentation must equal t_pres; give only one")
    if dt is None:
        S = int(steps_per_presentation or 50)
        dt = t_pres / S
    else:
        S = int(round(t_pres / dt))
        if S < 1 or abs(S * dt - t_pres) > 1e-6 * t_pres:
            raise ProtocolError(f"train: t_pres = {t_pres} ms is not a whole number of steps dt = {dt} ms")
    batch = int(batch)
    if batch < 1:
        raise ProtocolError(f"train.batch: must be >= 1, got {batch}")
    if lr_schedule not in ("constant", "cosine", "exponential", "plateau"):
        raise ProtocolError(f"train.lr_schedule: '{lr_schedule}' is not 'constant', 'cosine', 'exponential' or "
                            f"'plateau'")
    if presentation not in ("hold", "sequence"):
        raise ProtocolError(f"train.presentation: '{presentation}' is not 'hold' or 'sequence'")
    if lr_schedule == "plateau":
        if plateau_phase is None:
            plateau_phase = "val" if "val" in phases else "test"
        if plateau_phase not in phases or plateau_phase == "train":
            raise ProtocolError(f"train.plateau_phase: '{plateau_phase}' must be one of the evaluation phases "
                                f"{[p for p in phases if p != 'train']}")
        if not 0.0 < float(plateau_factor) < 1.0 or int(plateau_patience) < 0:
            raise ProtocolError(f"train: plateau_factor must be in (0, 1) and plateau_patience >= 0, got "
                                f"{plateau_factor}, {plateau_patience}")
        eval_every = 1
    lr_decay = float(lr_decay)
    if not 0.0 < lr_decay <= 1.0:
        raise ProtocolError(f"train.lr_decay: must be in (0, 1] (per-epoch factor of lr_schedule "
                            f"'exponential'), got {lr_decay}")
    lag_steps = int(round(float(learning_lag) / dt))
    if learning_lag < 0 or lag_steps >= S:
        raise ProtocolError(f"train.learning_lag: {learning_lag} ms must be >= 0 and shorter than t_pres = "
                            f"{t_pres} ms ({S} steps of dt = {dt} ms)")
    if lr is None and not isinstance(net, Circuit):
        raise ProtocolError("train.lr: needed when the network is given as sizes/spec (per presentation)")
    circuit = build_network(net)
    for pop in (input_pop, output_pop):
        try:
            circuit.population(pop)
        except MicrocircuitError as exc:
            raise ProtocolError(f"train: {exc}; set input_pop / output_pop") from None
    out_params = circuit.population(output_pop).params
    if loss is None:
        loss = "cross_entropy" if out_params.get("loss") == "cross_entropy" else "mse"
    # learning rates: per presentation -> per ms
    plastic = [p for p in circuit.projections if p.rule != "none"]
    if lr is not None:
        factors = list(lr_factors) if lr_factors is not None else [1.0] * len(plastic)
        if len(factors) != len(plastic):
            raise ProtocolError(f"train.lr_factors: {len(plastic)} plastic projections "
                                f"({[p.name for p in plastic]}), got {len(factors)} factors")
        for p, f in zip(plastic, factors):
            p.plasticity["eta"] = float(lr) * float(f) / t_pres
            if learn_bias:
                post = circuit.population(p.post)
                if post.model == "rate" and "eta_bias" not in post.params:
                    post.params["eta_bias"] = float(lr) * float(f) / t_pres
    n_out = circuit.population(output_pop).size
    n_in = circuit.population(input_pop).size
    if presentation == "sequence":
        if data.n_features % n_in or data.n_features // n_in != S:
            raise ProtocolError(f"train: presentation 'sequence' shows the {data.n_features} features of a sample "
                                f"{n_in} per step, i.e. {data.n_features / n_in:g} steps, but t_pres / dt = {S}; "
                                f"set t_pres = {data.n_features // max(n_in, 1) * dt:g} ms")
        if data.n_outputs != n_out:
            raise ProtocolError(f"train: data '{data.name}' has {data.n_outputs} outputs, network has {n_out}")
    elif data.n_features != n_in or data.n_outputs != n_out:
        raise ProtocolError(f"train: data '{data.name}' has {data.n_features} inputs and {data.n_outputs} outputs, "
                            f"network has {n_in} and {n_out}")
    runner = _Runner(circuit, dt=dt, S=S, batch=batch, scheme=scheme, seed=seed, input_pop=input_pop,
                     output_pop=output_pop, readout=readout, readout_signal=readout_signal,
                     readout_window=readout_window, reset=reset, dtype=dtype, lag_steps=lag_steps,
                     sequence=presentation == "sequence", extra_stimuli=stimuli, loss=loss,
                     recordings=list(recordings) if output is not None else [], backend=backend, threads=threads)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 7919]))
    splits = {"train": ("train", True), "val": ("val", False), "test": ("test", False),
              "train_eval": ("train", False)}
    settings = {"data": data.name, "data_attrs": data.attrs, "network": circuit.name,
                "t_pres": float(t_pres), "dt": float(dt), "steps_per_presentation": S, "epochs": int(epochs),
                "lr": None if lr is None else float(lr), "batch": batch, "readout": readout,
                "readout_window": readout_window, "readout_signal": readout_signal, "loss": loss,
                "targets": list(map(float, targets)), "seed": int(seed), "shuffle": bool(shuffle),
                "reset": bool(reset), "phases": list(phases), "adapt_presentations": int(adapt_presentations),
                "tau_learning_in_training": bool(tau_learning_in_training),
                "scheme": scheme, "lr_schedule": lr_schedule, "eval_every": int(eval_every),
                "lr_decay": lr_decay, "learning_lag": float(learning_lag), "presentation": presentation,
                "plateau_patience": int(plateau_patience), "plateau_factor": float(plateau_factor),
                "plateau_phase": plateau_phase, "plateau_eps": float(plateau_eps),
                "lr_factors": None if lr_factors is None else list(map(float, lr_factors)),
                "circuit": circuit.describe()}
    settings.update({k: v for k, v in (attrs or {}).items() if k not in _ROOT_ONLY_ATTRS})

    # a resume restores the program and the shuffling first (a checkpoint that does not fit the network is
    # refused before the store is touched), then reopens the store at the checkpoint
    restored = _restore(runner, rng, resume) if resume is not None else None
    recorder = None
    if output is not None:
        from .labels import model_parameters, population_labels
        from .recording import ZarrRecorder
        if resume is not None:
            recorder = _reopen_store(output, runner, resume)
        else:
            recorder = ZarrRecorder(output, runner.circuit_specs, dt=dt, batch=batch, overwrite=overwrite,
                                    chunk_records=_SINK_CHUNK_STEPS, labels=population_labels(circuit),
                                    attrs={"protocol": settings,
                                           "parameters": model_parameters(circuit, runner.prog),
                                           # at the root too, as a plain run's store has them (nwb export
                                           # reads it); with the source, overrides and input hashes (resume)
                                           **{k: v for k, v in (attrs or {}).items()
                                              if k in ("scenario", "scenario_name") + _ROOT_ONLY_ATTRS}})
        runner.sink = _CircuitSink(recorder, _SINK_CHUNK_STEPS)

    metrics: dict[str, list] = {}
    epochs_done: list[int] = []
    snapshots = {}

    def run_phase(name):
        split, learn = splits[name]
        x, y = data.split(split)
        if len(x) == 0:
            return None
        perm = rng.permutation(len(x)) if (learn and shuffle) else np.arange(len(x))
        idx, valid = _stream(len(x), batch, perm)
        if presentation == "sequence":                                   # (P, S, n_in, B)
            X = np.ascontiguousarray(x[idx].reshape(idx.shape + (S, n_in)).transpose(0, 2, 3, 1))
        else:
            X = np.ascontiguousarray(x[idx].transpose(0, 2, 1))        # (P, n_in, B)
        T = _targets(y, n_out, data.n_classes, targets)[idx]            # (P, B, n_out)
        R, step_loss = runner.present(X, np.ascontiguousarray(T.transpose(0, 2, 1)), GATE_ON if learn else GATE_OFF)
        labels = y[idx] if data.n_classes is not None else None
        return _metrics(R, T, labels, valid, data.n_classes, loss, step_loss)

    def record(epoch, row):
        epochs_done.append(epoch)
        for k in list(metrics) + [k for k in row if k not in metrics]:     # first-seen order, not hash order
            metrics.setdefault(k, [float("nan")] * (len(epochs_done) - 1))
            metrics[k].append(row.get(k, float("nan")))
        if recorder is not None:
            recorder.append_metrics(row, epoch=epoch)
        if snapshot_every and epoch % snapshot_every == 0:
            snap = {p: runner.prog.weight(p).copy() for p in runner.prog.proj_names}
            snapshots[epoch] = snap
            if recorder is not None:
                grp = recorder.root.require_group("snapshots")
                g = grp.create_group(f"epoch_{epoch}", attributes={"epoch": epoch})
                for p, w in snap.items():
                    g.create_array(_safe(p), data=np.ascontiguousarray(w),
                                   dimension_names=("post", "pre")[-w.ndim:], attributes={"projection": p})

    from .compile import PF_ETA, PPF_ETA_BIAS
    prog = runner.prog
    E = int(epochs)
    plateau = PlateauSchedule(int(plateau_patience), float(plateau_factor), eps=float(plateau_eps))
    plateau_scale = 1.0

    last_ckpt = [time.perf_counter()]

    def checkpoint(epoch):
        if auto_ckpt and epoch > 0 and time.perf_counter() - last_ckpt[0] < AUTO_CHECKPOINT_S:
            return
        runner.sink.flush()      # the circuit's records up to here are in the store before their positions
        _write_protocol_checkpoint(recorder, runner, rng, epoch=epoch, epochs_done=epochs_done, metrics=metrics,
                                   eta0=eta0, etab0=etab0, plateau=plateau, plateau_scale=plateau_scale,
                                   wall=time.perf_counter() - t0)
        last_ckpt[0] = time.perf_counter()

    ckpt_on = bool(checkpoint_every) and recorder is not None
    if resume is not None:
        # the state after the checkpoint's epoch; the setup (adaptation, initial evaluation) is in it
        st = restored
        metrics, eta0, etab0 = st["metrics"], st["eta0"], st["etab0"]
        epochs_done.extend(st["epochs_done"])
        plateau.best, plateau.bad, plateau_scale = st["plateau_best"], st["plateau_bad"], st["plateau_scale"]
        t0 = time.perf_counter() - st["wall"]     # wall_time_s counts the time spent running, not the pause
        snapshots.update(_read_snapshots(recorder))
        start_epoch = st["epoch"] + 1
    else:
        start_epoch = 1
    if adapt_presentations and resume is None:
        x = data.x_train
        P = int(math.ceil(adapt_presentations / batch))
        idx = rng.integers(0, len(x), size=(P, batch))
        X = np.ascontiguousarray(x[idx].transpose(0, 2, 1))
        runner.present(X, np.zeros((P, n_out, batch)), GATE_ADAPT)
    if not tau_learning_in_training and resume is None:
        from .compile import PPF_ETA_TAU
        runner.prog.pop_float[:, PPF_ETA_TAU] = 0.0

    eval_phases = [p for p in phases if p != "train"]
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=int(epochs), initial=start_epoch - 1, unit="epoch",
                   desc=f"{data.name} t_pres={t_pres:g}ms", dynamic_ncols=True)
    try:
        if resume is None:
            if eval_initial:
                row = {}
                for ph in eval_phases:
                    r = run_phase(ph)
                    if r is not None:
                        row[f"{ph}_loss"], row[f"{ph}_accuracy"] = r
                row["wall_time_s"] = time.perf_counter() - t0
                record(0, row)
            eta0 = prog.proj_float[:, PF_ETA].copy()
            etab0 = prog.pop_float[:, PPF_ETA_BIAS].copy()
            if ckpt_on:
                checkpoint(0)
        for epoch in range(start_epoch, E + 1):
            if lr_schedule == "constant":
                scale = 1.0
            elif lr_schedule == "plateau":
                scale = plateau_scale
            elif lr_schedule == "exponential":
                scale = lr_decay ** (epoch - 1)
            else:
                scale = 0.5 * (1 + math.cos(math.pi * (epoch - 1) / E))
            prog.proj_float[:, PF_ETA] = eta0 * scale
            prog.pop_float[:, PPF_ETA_BIAS] = etab0 * scale
            row = {}
            do_eval = (epoch % max(int(eval_every), 1) == 0) or epoch == E
            for ph in (phases if do_eval else [p for p in phases if p == "train"]):
                r = run_phase(ph)
                if r is not None:
                    row[f"{ph}_loss"], row[f"{ph}_accuracy"] = r
            if lr_schedule == "plateau":
                row["lr_scale"] = scale
                plateau_scale = plateau.new_rate(row[f"{plateau_phase}_loss"], plateau_scale)
            row["wall_time_s"] = time.perf_counter() - t0
            record(epoch, row)
            if ckpt_on and epoch % checkpoint_every == 0:
                checkpoint(epoch)
            if bar is not None:
                bar.update(1)
                bar.set_postfix({k: f"{v:.3f}" for k, v in row.items() if k.endswith("accuracy")})
    except BaseException as exc:
        if recorder is not None:
            from .recording import close_reason
            try:   # Ctrl-C / SIGTERM: "interrupted ...", an I/O error: "failed: OSError ..."
                try:
                    runner.sink.flush()     # the circuit's records so far are kept, like the metrics
                except Exception:
                    pass
                recorder.close(complete=False, reason=close_reason(exc, f"with {len(epochs_done)} epoch(s) recorded"))
            except OSError:
                pass   # the disk refuses even the status: keep the first error (the CLI reports the status)
        raise
    finally:
        if bar is not None:
            bar.close()
    if recorder is not None:
        runner.sink.flush()
        recorder.set_attrs(epochs_done=len(epochs_done))
        recorder.close(complete=True)
    wall = time.perf_counter() - t0
    return TrainResult(metrics={k: np.asarray(v) for k, v in metrics.items()}, epochs=np.asarray(epochs_done),
                       settings=settings, program=runner.prog, snapshots=snapshots,
                       output=None if output is None else str(output), wall_time_s=wall)


# checkpoint_every = "auto" (a scenario's default): at most one checkpoint per this many seconds after epoch 0
AUTO_CHECKPOINT_S = 30.0

# root attrs of a scenario run that are not protocol settings: where the scenario came from, its
# overrides and the hashes of its inputs (checked by a resume, microcircuit.checkpoint)
_ROOT_ONLY_ATTRS = ("scenario_source", "overrides", "inputs")

# checkpoint arrays the protocol adds to the program's (microcircuit.checkpoint.program_checkpoint)
_CK_METRICS, _CK_EPOCHS, _CK_ETA0, _CK_ETAB0, _CK_PLATEAU = ("protocol_metrics", "protocol_epochs", "protocol_eta0",
                                                           "protocol_eta_bias0", "protocol_plateau")


@dataclass
class ProtocolCheckpoint:
    """A protocol run's checkpoint as read from its store (:func:`microcircuit.recording.read_checkpoint`),
    and root attrs to set on the reopened store (the new input hashes of a resume with changed inputs)."""
    arrays: dict
    attrs: dict
    root_attrs: dict = field(default_factory=dict)


def _write_protocol_checkpoint(recorder, runner, rng, *, epoch, epochs_done, metrics, eta0, etab0, plateau,
                               plateau_scale, wall):
    """Write the run's state at the end of ``epoch`` into its store: the program's (state, weights,
    optimiser and tau_w filters, learned g0 / bias, noise RNG, step), the positions of the circuit's
    records, and the protocol's own: the shuffling RNG, the metrics so far (float64 arrays, so they
    come back bit for bit), the initial learning rates the schedule scales, the plateau schedule."""
    from .checkpoint import program_checkpoint, record_positions, rng_state_to_attr
    arrays, attrs = program_checkpoint(runner.prog)
    attrs.update(record_positions(recorder))
    names = list(metrics)
    arrays[_CK_METRICS] = (np.array([metrics[k] for k in names], np.float64).reshape(len(names), len(epochs_done)))
    arrays[_CK_EPOCHS] = np.asarray(epochs_done, np.int64)
    arrays[_CK_ETA0] = np.asarray(eta0, np.float64)
    arrays[_CK_ETAB0] = np.asarray(etab0, np.float64)
    arrays[_CK_PLATEAU] = np.array([plateau.best, plateau.bad, plateau_scale], np.float64)
    attrs["protocol"] = {"epoch": int(epoch), "phase": "end_of_epoch", "metric_names": names,
                         "shuffle_rng_state": rng_state_to_attr(rng), "wall_time_s": float(wall)}
    recorder.write_checkpoint(arrays, attrs)


def _restore(runner, rng, ck):
    """Put a :class:`ProtocolCheckpoint` back into the runner's program and the shuffling RNG; return the
    protocol's state (epoch, metrics, epochs done, initial rates, plateau schedule, wall time)."""
    import json
    from .checkpoint import restore_program
    arrays, attrs = ck.arrays, ck.attrs
    p = attrs["protocol"]
    restore_program(runner.prog, arrays, attrs)
    rng.bit_generator.state = json.loads(p["shuffle_rng_state"])
    names = list(p["metric_names"])
    M = np.asarray(arrays[_CK_METRICS], np.float64)
    epochs_done = [int(e) for e in np.asarray(arrays[_CK_EPOCHS])]
    eta0, etab0 = np.asarray(arrays[_CK_ETA0]), np.asarray(arrays[_CK_ETAB0])
    prog = runner.prog
    from .compile import PF_ETA, PPF_ETA_BIAS
    if eta0.shape != prog.proj_float[:, PF_ETA].shape or etab0.shape != prog.pop_float[:, PPF_ETA_BIAS].shape:
        raise ProtocolError("resume: the checkpoint's learning rates do not fit the network; the scenario changed")
    best, bad, scale = (float(x) for x in np.asarray(arrays[_CK_PLATEAU]))
    return {"epoch": int(p["epoch"]), "metrics": {k: [float(v) for v in M[i]] for i, k in enumerate(names)},
            "epochs_done": epochs_done, "eta0": eta0.copy(), "etab0": etab0.copy(), "plateau_best": best,
            "plateau_bad": int(bad), "plateau_scale": scale, "wall": float(p.get("wall_time_s", 0.0))}


def _reopen_store(output, runner, ck):
    """Reopen a protocol run's store at its checkpoint: the circuit's records, the metrics rows and the
    weight snapshots written after it are cut away (they are written again as the run continues)."""
    from .recording import ZarrRecorder
    a, p = ck.attrs, ck.attrs["protocol"]
    rec = ZarrRecorder.reopen(output, runner.circuit_specs, n_records=a.get("n_records"),
                              last_step=a.get("last_step"))
    try:
        root = rec.root
        epochs = [int(e) for e in np.asarray(ck.arrays[_CK_EPOCHS])]
        rec.truncate_metrics(len(epochs), list(p["metric_names"]))
        if "snapshots" in root:
            grp = root["snapshots"]
            for nm, sub in list(grp.groups()):
                if int(sub.attrs.get("epoch", -1)) > int(p["epoch"]):
                    del grp[nm]
        if ck.root_attrs:
            rec.set_attrs(**ck.root_attrs)
    except BaseException as exc:
        from .recording import close_reason
        rec.close(complete=False, reason=close_reason(exc, "while resuming"))
        raise
    return rec


def _read_snapshots(recorder):
    """``{epoch: {projection: W}}`` of the weight snapshots in a reopened store."""
    root, out = recorder.root, {}
    if "snapshots" in root:
        for _, sub in root["snapshots"].groups():
            out[int(sub.attrs["epoch"])] = {a.attrs.get("projection", nm): np.asarray(a[...])
                                            for nm, a in sub.arrays()}
    return dict(sorted(out.items()))


class PlateauSchedule:
    """PyTorch ``ReduceLROnPlateau`` (mode min, relative ``threshold``, no cooldown): after more than
    ``patience`` epochs without improvement of the watched loss, the rate is multiplied by ``factor``
    — unless that lowers it by no more than ``eps`` (PyTorch's minimal decay), so a rate starting at
    1e-3 with eps = 1e-8 stops at 1e-3 * 0.5^16 = 1.53e-8. The rate may be absolute (per step) or a
    scale of the initial rates (then ``eps`` is relative to them)."""

    def __init__(self, patience=2, factor=0.5, threshold=1e-4, eps=1e-8):
        self.patience, self.factor, self.threshold, self.eps = patience, factor, threshold, eps
        self.best, self.bad = math.inf, 0

    def step(self, loss):
        """Count one epoch with this loss; returns the factor due now (1 or ``factor``)."""
        if loss < self.best * (1 - self.threshold):
            self.best, self.bad = loss, 0
            return 1.0
        self.bad += 1
        if self.bad > self.patience:
            self.bad = 0
            return self.factor
        return 1.0

    def new_rate(self, loss, rate, min_rate=0.0):
        """The rate after an epoch with this loss at ``rate`` (never below ``min_rate``)."""
        f = self.step(loss)
        if f != 1.0 and rate - rate * f > self.eps and rate * f >= min_rate:
            return rate * f
        return rate

    @classmethod
    def replay(cls, losses, rate0, patience=2, min_rate=0.0, **kw):
        """(schedule, rate) after epochs with these losses, starting at ``rate0``."""
        sched, rate = cls(patience=patience, **kw), rate0
        for L in losses:
            rate = sched.new_rate(L, rate, min_rate)
        return sched, rate


def _safe(name):
    import re
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


# ----------------------------------------------------------------------------- scenarios
_PROTOCOL_KEYS = {"dataset", "dataset_args", "t_pres", "dt", "steps_per_presentation", "epochs", "lr", "batch",
                  "lr_factors", "learn_bias", "readout", "readout_window", "readout_signal", "loss", "targets",
                  "seed", "shuffle", "reset", "phases", "eval_initial", "adapt_presentations", "input", "output",
                  "snapshot_every", "lr_schedule", "eval_every", "tau_learning_in_training", "lr_decay",
                  "learning_lag", "presentation", "plateau_patience", "plateau_factor", "plateau_phase",
                  "plateau_eps", "checkpoint_every"}


def run_protocol(scenario, output=None, overwrite=False, progress=True) -> TrainResult:
    """Run a scenario's ``[protocol]`` table (used by ``microcircuit run``).

    ``[protocol]`` keys: ``dataset`` (name in :mod:`microcircuit.datasets`), ``dataset_args`` (table),
    ``t_pres`` (ms), ``steps_per_presentation`` or ``dt`` (default ``simulation.dt``), ``epochs``,
    ``lr`` (per presentation), ``batch`` (default ``simulation.batch``), ``lr_factors``,
    ``learn_bias``, ``readout`` ("last" | "window"), ``readout_window``, ``readout_signal``,
    ``loss``, ``targets`` ([low, high]), ``seed`` (default ``simulation.seed``), ``shuffle``,
    ``reset``, ``phases``, ``eval_initial``, ``adapt_presentations``, ``input`` / ``output``
    (population names, default "input" / "output"), ``snapshot_every``, ``lr_schedule``
    ("constant" | "cosine" | "exponential"), ``lr_decay`` (per-epoch factor of "exponential":
    eta_e = eta_0 lr_decay^(e-1)), ``learning_lag`` (ms without plasticity after each switch),
    ``eval_every``, ``tau_learning_in_training``, ``presentation`` ("hold" | "sequence"),
    ``plateau_patience`` / ``plateau_factor`` / ``plateau_phase`` / ``plateau_eps`` (``lr_schedule =
    "plateau"``), ``checkpoint_every`` (epochs; 0: no checkpoints; default: after epoch 0 and then
    after every epoch that ends at least :data:`AUTO_CHECKPOINT_S` = 30 s after the last checkpoint). The
    circuit is the scenario's populations and projections; the input and target stimuli come from
    the data set, and the scenario's own ``[[stimuli]]`` on other populations (e.g. a bias unit held
    at rate 1) are kept.

    Checkpoints: a run into a store writes a checkpoint there after the setup (epoch 0) and at epoch
    ends (``checkpoint_every``), so that a run stopped by Ctrl-C, SIGTERM or SIGKILL continues
    with ``microcircuit run --resume STORE`` (or ``microcircuit run X.toml --out STORE --resume``) to
    the metrics and weights of an uninterrupted run, bit for bit (:func:`resume_protocol`). Sweeps
    (``microcircuit sweep X.toml --grid protocol.t_pres=1,3 --seeds 2 --workers 0``) run each point as
    a protocol run in memory and keep its metrics and final weights (:mod:`microcircuit.sweep`).
    """
    kw = _protocol_kwargs(scenario, output, overwrite, progress)
    src = kw.pop("src")
    try:
        return train(**kw)
    except ProtocolError as exc:
        raise ScenarioError([("protocol", str(exc))], src) from exc


def resume_protocol(scenario, store, checkpoint, progress=False) -> TrainResult:
    """Continue the protocol run stored at ``store`` from its last checkpoint (used by
    :func:`microcircuit.checkpoint.resume`, which reads ``checkpoint`` and checks the inputs first).

    The network, data set and schedule are rebuilt from ``scenario`` (the text stored in the store);
    the checkpoint restores the program (state, weights, optimiser and tau_w filters, learned g0 and
    biases, the noise generator, the step), the shuffling generator, the metrics so far, the initial
    learning rates and the plateau schedule. The store is reopened (its lock, ``status`` running again,
    ``resumed`` counted), and the metrics rows, weight snapshots and circuit records written after the
    checkpoint are cut away; the remaining epochs then run as in the uninterrupted run, so the final
    metrics and weights are identical to it. ``wall_time_s`` counts the time spent running.
    """
    if "protocol" not in checkpoint.attrs:
        raise ProtocolError(f"{store}: its checkpoint was not written by a protocol run (no 'protocol' attr)")
    kw = _protocol_kwargs(scenario, store, False, progress)
    kw["resume"] = checkpoint
    src = kw.pop("src")
    try:
        return train(**kw)
    except ProtocolError as exc:
        raise ScenarioError([("protocol", str(exc))], src) from exc


def _protocol_kwargs(scenario, output, overwrite, progress):
    """The :func:`train` arguments of a scenario's ``[protocol]`` table (plus ``src``, popped by train's callers)."""
    if isinstance(scenario, (str, Path)):
        from .scenario import load_scenario
        scenario = load_scenario(scenario)
    from .scenario.build import build_stimuli
    proto = dict(scenario.data.get("protocol") or {})
    src = scenario.source
    unknown = sorted(set(proto) - _PROTOCOL_KEYS)
    if unknown:
        raise ScenarioError([(f"protocol.{k}", f"unknown key; allowed: {sorted(_PROTOCOL_KEYS)}") for k in unknown],
                            src)
    for k in ("dataset", "t_pres"):
        if k not in proto:
            raise ScenarioError([(f"protocol.{k}", "required")], src)
    sim = scenario.data.get("simulation", {})
    try:
        data = load_dataset(proto["dataset"], **dict(proto.get("dataset_args", {})))
    except (TypeError, MicrocircuitError) as exc:
        raise ScenarioError([("protocol.dataset_args", str(exc))], src) from exc
    if output is None:
        output = scenario.data.get("output", {}).get("path")
    circuit = scenario.circuit()
    kw = dict(t_pres=float(proto["t_pres"]), epochs=int(proto.get("epochs", 1)), lr=proto.get("lr"),
              batch=int(proto.get("batch", sim.get("batch", 1))), lr_factors=proto.get("lr_factors"),
              learn_bias=proto.get("learn_bias", True), readout=proto.get("readout", "last"),
              readout_window=proto.get("readout_window", 0.2), readout_signal=proto.get("readout_signal", "r"),
              loss=proto.get("loss"), targets=tuple(proto.get("targets", (0.0, 1.0))),
              seed=int(proto.get("seed", sim.get("seed", 0))), shuffle=proto.get("shuffle", True),
              reset=proto.get("reset", False), phases=tuple(proto.get("phases", ("train", "val", "test"))),
              eval_initial=proto.get("eval_initial", True), adapt_presentations=proto.get("adapt_presentations", 0),
              input_pop=proto.get("input", "input"), output_pop=proto.get("output", "output"),
              scheme=sim.get("scheme", "synchronous"), lr_schedule=proto.get("lr_schedule", "constant"),
              backend=sim.get("backend", "numba"), threads=int(sim.get("threads", 0)),
              eval_every=int(proto.get("eval_every", 1)), snapshot_every=proto.get("snapshot_every", 0),
              tau_learning_in_training=bool(proto.get("tau_learning_in_training", True)),
              lr_decay=float(proto.get("lr_decay", 1.0)), learning_lag=float(proto.get("learning_lag", 0.0)),
              presentation=proto.get("presentation", "hold"), plateau_patience=int(proto.get("plateau_patience", 2)),
              plateau_factor=float(proto.get("plateau_factor", 0.5)), plateau_phase=proto.get("plateau_phase"),
              plateau_eps=float(proto.get("plateau_eps", 0.0)),
              stimuli=[st for st in build_stimuli(scenario) if st.target not in
                       (proto.get("input", "input"), proto.get("output", "output"))],
              output=output, overwrite=overwrite, progress=progress,
              checkpoint_every=proto.get("checkpoint_every", "auto"),
              attrs={"scenario": scenario.text, "scenario_name": scenario.name, **_scenario_root_attrs(scenario, output)},
              recordings=[Recording(r["population"], list(r.get("variables", ["r"])), r.get("neurons", "all"),
                                    r.get("stride", 1), r.get("dtype", "float64"))
                          for r in scenario.data.get("recordings", [])])
    if "steps_per_presentation" in proto:
        kw["steps_per_presentation"] = int(proto["steps_per_presentation"])
    else:
        kw["dt"] = float(proto.get("dt", sim["dt"]))
    kw.update(net=circuit, data=data, src=src)
    return kw


def _scenario_root_attrs(sc, output):
    """Root attrs of a protocol run's store that a resume needs, as a plain run's store has them
    (:func:`microcircuit.scenario.build.build_simulation`): the scenario's source file, its overrides
    and, for a run into a store, the hashes of its inputs."""
    from .scenario.build import _abs
    a = {"scenario_source": _abs(sc.source), "overrides": [f"{k}={v}" for k, v in sc.overrides]}
    if output is not None:
        from .checkpoint import input_hashes
        a["inputs"] = input_hashes(sc)
    return a
