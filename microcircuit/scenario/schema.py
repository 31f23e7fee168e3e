"""The scenario schema: every section and field a scenario file may hold.

A field is ``Field(type, required, default, low, high, choices, doc)``; types are ``float``,
``int``, ``bool``, ``str``, ``list``, ``table``, ``number_or_list`` (a scalar, a per-neuron list
or a distribution table) and ``any``. Population parameters come from each neuron model's
variable registry (:mod:`microcircuit.models`), so the schema and the models cannot disagree.
"""
from __future__ import annotations

from dataclasses import dataclass

from .. import registry as _registry
from ..registry import docs


@dataclass(frozen=True)
class Field:
    type: str
    required: bool = False
    default: object = None
    low: float | None = None
    high: float | None = None
    choices: tuple | None = None
    doc: str = ""
    strict_low: bool = False
    unit: str = ""               # physical unit of a number ("ms", "1/ms"); "" for none / dimensionless


# The allowed values of the choice fields below, each with what it means. The scenario reference
# (``microcircuit schema``, :mod:`microcircuit.docgen`) is generated from these tables, and the
# fields take their ``choices`` from them, so a value cannot be accepted without being documented.
PLASTICITY_RULES = docs(_registry.PLASTICITY_RULES)   # microcircuit.registry: names, ids, meanings
OPTIMIZERS = docs(_registry.OPTIMIZERS)
CONNECTORS = {
    "all_to_all": "every presynaptic neuron to every postsynaptic neuron (dense (post, pre) matrix)",
    "one_to_one": "neuron i to neuron i (pre and post of one size; a diagonal of weights)",
    "fixed_probability": "each pair connected independently with probability p (a fixed mask)",
    "from_array": "connection mask given as array [[...]] of shape (post, pre) (nonzero = connected)",
}
WEIGHT_DISTS = {
    "normal": "N(mean, std^2)",
    "uniform": "U(low, high)",
    "constant": "every weight = value",
    "zeros": "all weights 0",
    "kaiming_uniform": "U(-1/sqrt(n_pre), 1/sqrt(n_pre)) (PyTorch's default for linear layers)",
    "array": "the matrix in value = [[...]] or in file (.npy / .npz / .zarr, key), shape (post, pre)",
}
FEEDBACK_MODES = {
    "auto": "transpose into the basal port of a rate neuron, else none",
    "transpose": "errors travel back through W^T (weight transport)",
    "random": "feedback alignment: a fixed random B ~ N(0, feedback_std^2)",
    "none": "no error is sent back through this projection",
}
SIGNALS = {
    "r": "the presynaptic rate",
    "u": "the presynaptic somatic potential",
    "u_pros": "the presynaptic prospective potential",
    "e": "the error of an error population (models/error.py)",
}
STIMULUS_KINDS = {
    "rate": "sets the rate of an input population, r(t) = x(t)",
    "current": "a somatic current added to du/dt",
    "target": "the output target y (loss-based nudging of rate neurons, or u_tgt of an output pyramidal neuron)",
    "error": "an error current added to the error-neuron input epsilon",
}
PROTOCOL_LOSSES = {
    "mse": "mean squared error between the read-out and the one-hot targets",
    "cross_entropy": "cross entropy of softmax(read-out) and the class",
}
LR_SCHEDULES = {
    "constant": "the same rates every epoch",
    "cosine": "rates scaled by 0.5 (1 + cos(pi (e - 1) / E)) in epoch e of E",
    "exponential": "eta_e = eta_0 lr_decay^(e-1)",
    "plateau": "rates scaled by plateau_factor after more than plateau_patience epochs without improvement (PyTorch ReduceLROnPlateau)",
}
READOUTS = {
    "last": "the read-out signal at the last step of a presentation",
    "window": "its mean over the last readout_window fraction of the presentation",
    "sum": "its sum over all steps of the presentation (GLE logits of a sequence)",
}


SCENARIO = {
    "name": Field("str", doc="short name of the experiment"),
    "description": Field("str", doc="what the experiment shows"),
}

SIMULATION = {
    "dt": Field("float", True, low=0.0, strict_low=True, doc="time step (ms)", unit="ms"),
    "duration": Field("float", False, low=0.0, strict_low=True, doc="simulated time (ms)", unit="ms"),
    "seed": Field("int", False, 0, low=0, doc="master seed; every random stream derives from it"),
    "scheme": Field("str", False, "synchronous", choices=("synchronous", "sequential", "published_microcircuit"),
                    doc="update scheme"),
    "dtype": Field("str", False, "float64", choices=("float64", "float32")),
    "batch": Field("int", False, 1, low=1, doc="independent network copies sharing weights"),
    "backend": Field("str", False, "numba", choices=("numba", "numpy", "cuda"),
                     doc="engine: numba (CPU kernel), numpy (reference stepper), cuda (GPU, needs numba-cuda)"),
    "threads": Field("int", False, 0, low=0, doc="BLAS threads for the batched products: 0 = automatic (every "
                     "core when a step's largest product has >= 2^20 multiply-adds, else 1); results do not depend on it"),
    "chunk_steps": Field("int", False, 2000, low=1, doc="steps per kernel call / recording block", unit="steps"),
}

PROJECTION = {
    "name": Field("str"),
    "pre": Field("str", True, doc="presynaptic population"),
    "post": Field("str", True, doc="postsynaptic population"),
    "target": Field("str", False, "basal", doc="compartment of post (basal, apical, dendrite, nudge, soma, "
                                              "error)"),
    "signal": Field("str", False, "r", choices=tuple(SIGNALS),
                    doc="what the projection carries (e: from an error population, models/error.py)"),
    "connector": Field("table", False, doc="which pairs are connected (see the connector table)"),
    "weights": Field("table", False, doc="initial weights (see the weights table)"),
    "plasticity": Field("table", False, doc="learning rule of the weights (see the plasticity table)"),
    "feedback": Field("str", False, "auto", choices=tuple(FEEDBACK_MODES),
                      doc="how errors travel back through this projection"),
    "feedback_std": Field("float", False, 0.05, low=0.0, doc="standard deviation of B (feedback = random)"),
}

CONNECTOR = {
    "kind": Field("str", False, "all_to_all", choices=tuple(CONNECTORS), doc="connection pattern"),
    "p": Field("float", False, 1.0, low=0.0, high=1.0, doc="connection probability (fixed_probability)"),
    "array": Field("list", False, doc="connection mask of shape (post, pre) (from_array)"),
}

WEIGHTS = {
    "dist": Field("str", False, "normal", choices=tuple(WEIGHT_DISTS), doc="initial weight distribution"),
    "mean": Field("float", False, 0.0, doc="mean (normal)"),
    "std": Field("float", False, 0.05, low=0.0, doc="standard deviation (normal)"),
    "low": Field("float", False, -1.0, doc="lower end (uniform)"),
    "high": Field("float", False, 1.0, doc="upper end (uniform)"),
    "value": Field("any", False, doc="one number (constant) or a matrix [[...]] of shape (post, pre) (array)"),
    "file": Field("str", False, doc="weights from .npy/.npz/.zarr (path relative to the scenario)"),
    "key": Field("str", False, doc="array name inside a .npz / .zarr file"),
    "transpose_of": Field("str", False, doc="error projection between error populations whose weights are the "
                                            "transpose of this forward projection (tied, exact weight transport)"),
}

PLASTICITY = {
    "rule": Field("str", False, "none", choices=tuple(PLASTICITY_RULES), doc="learning rule"),
    "eta": Field("float", False, 0.0, low=0.0, doc="learning rate per ms", unit="1/ms"),
    "tau_w": Field("float", False, 0.0, low=0.0, doc="low-pass time constant of weight changes (ms)", unit="ms"),
    "w_max": Field("float", False, 0.0, low=0.0, doc="clip |W| <= w_max (0 = no clipping)"),
    "t_on": Field("float", False, 0.0, doc="plasticity on from this time (ms)", unit="ms"),
    "t_off": Field("float", False, None, doc="plasticity off from this time (ms)", unit="ms"),
    "optimizer": Field("str", False, "sgd", choices=tuple(OPTIMIZERS),
                       doc="optimiser applied to the local gradient estimate"),
    "momentum": Field("float", False, 0.9, low=0.0, doc="momentum coefficient (optimizer = momentum)"),
    "beta1": Field("float", False, 0.9, low=0.0, doc="Adam first-moment decay"),
    "beta2": Field("float", False, 0.999, low=0.0, doc="Adam second-moment decay"),
    "eps": Field("float", False, 1e-8, low=0.0, doc="Adam epsilon"),
    "error_source": Field("str", False, doc="rule error: the error population whose e is the post factor "
                                            "(default: the post population's partner error population)"),
}

STIMULUS = {
    "name": Field("str", doc="stimulus name (default stimuli[i])"),
    "target": Field("str", True, doc="population driven"),
    "kind": Field("str", False, "rate", choices=tuple(STIMULUS_KINDS), doc="what the values do"),
    "waveform": Field("str", True, choices=("step", "ramp", "sines", "ou", "array"),
                      doc="time course; its own fields are listed per waveform"),
    "delay_steps": Field("int", False, 0, low=0, doc="shift the waveform later by this many steps", unit="steps"),
}
WAVEFORM_FIELDS = {
    "step": {"amplitude": Field("number_or_list", default=1.0, doc="height of the step (one value or one per neuron)"),
             "start": Field("float", default=0.0, doc="on from this time", unit="ms"),
             "stop": Field("float", doc="off from this time (default: never)", unit="ms"),
             "baseline": Field("number_or_list", default=0.0, doc="value outside [start, stop)"),
             "filter_tau": Field("float", default=0.0, low=0.0,
                                 doc="exponential low-pass of the step, exact per step (from the baseline); 0: off",
                                 unit="ms")},
    "ramp": {"start": Field("float", default=0.0, doc="ramp begins", unit="ms"),
             "stop": Field("float", default=1.0, doc="ramp ends (held after)", unit="ms"),
             "start_value": Field("number_or_list", default=0.0, doc="value up to start"),
             "stop_value": Field("number_or_list", default=1.0, doc="value from stop on")},
    "sines": {"amplitude": Field("number_or_list", default=1.0, doc="amplitude of each sine"),
              "omega": Field("number_or_list", doc="angular frequencies (give omega or frequency_hz)",
                             unit="rad/ms"),
              "frequency_hz": Field("number_or_list", doc="frequencies (give omega or frequency_hz)", unit="Hz"),
              "phase": Field("number_or_list", default=0.0, doc="phase of each sine", unit="rad"),
              "offset": Field("float", default=0.0, doc="constant added to the sum"),
              "per_neuron": Field("bool", default=False, doc="neuron i gets the i-th sine alone")},
    "ou": {"mean": Field("float", default=0.0, doc="long-run mean"),
           "sigma": Field("float", default=1.0, low=0.0, doc="stationary standard deviation"),
           "tau": Field("float", default=1.0, low=0.0, strict_low=True, doc="correlation time", unit="ms"),
           "seed": Field("int", default=0, low=0, doc="seed of this stimulus' noise")},
    "array": {"file": Field("str", True, doc=".npy / .npz / .zarr of shape (T,), (T, n) or (T, n, batch)"),
              "key": Field("str", doc="array name inside a .npz / .zarr file"),
              "hold_steps": Field("int", default=1, low=1, doc="steps each row is held", unit="steps"),
              "repeat": Field("bool", default=False, doc="after the last row start again (false: hold the last row)"),
              "filter_tau": Field("float", default=0.0, low=0.0,
                                  doc="exponential low-pass of the held rows, exact per step from the hold "
                                      "schedule, starting at rest (0); 0: off (Sacramento 2018: 3 ms)",
                                  unit="ms")},
}

RECORDING = {
    "population": Field("str", True, doc="population recorded"),
    "variables": Field("list", False, ["r"], doc="recordable variables of the population's model"),
    "neurons": Field("any", False, "all", doc='"all", a list of indices, or {start, stop, step}'),
    "stride": Field("int", False, 1, low=1, doc="record every stride-th step", unit="steps"),
    "dtype": Field("str", False, "float64", choices=("float64", "float32"), doc="stored precision"),
}
NEURON_RANGE = {
    # recordings.neurons given as a table: a Python-style slice of the population's neurons
    "start": Field("int", False, doc="first index (negative: from the end)"),
    "stop": Field("int", False, doc="end index, exclusive"),
    "step": Field("int", False, doc="index step (not 0)"),
}

OUTPUT = {
    "path": Field("str", False, doc="Zarr store to write (relative to the working directory)"),
    "overwrite": Field("bool", False, False, doc="replace an existing store"),
    "codec": Field("str", False, "zstd", choices=("zstd", "lz4", "none"),
                   doc="chunk compression of the recorded arrays (none: fastest writes, largest store)"),
    "writer": Field("str", False, "fast", choices=("fast", "zarr"),
                    doc="fast: whole chunks written by the recorder; zarr: zarr's public API only (byte-identical "
                        "stores, slower for many small arrays)"),
    "checkpoint_every": Field("float", False, low=0.0, strict_low=True,
                              doc="write a checkpoint (state, weights, RNG) into the store every this many ms; "
                                  "resume with `microcircuit run --resume STORE`", unit="ms"),
    "checkpoint_every_steps": Field("int", False, low=1, doc="the same, counted in steps", unit="steps"),
}

TEMPLATE = {
    "kind": Field("str", True, choices=("layered", "dendritic_microcircuit"),
                  doc="layered: a feed-forward stack of rate populations; dendritic_microcircuit: the "
                      "dendritic-error microcircuit (populations input, pyr1.., output, inter1..; projections "
                      "up/down/ip/pi/nudge, as microcircuit.microcircuit.dendritic_microcircuit builds it)"),
    "sizes": Field("list", True, doc="layer sizes, input first"),
    "hidden": Field("table", False, doc="rate-neuron parameters of hidden layers"),
    "output": Field("table", False, doc="rate-neuron parameters of the output layer"),
    "weights": Field("table", False, doc="weights table of every generated projection"),
    "eta": Field("float", False, 0.0, low=0.0, doc="learning rate (rule error) of the projections; 0: fixed",
                 unit="1/ms"),
    "eta_factors": Field("list", False, doc="one factor of eta per projection"),
    "feedback": Field("str", False, "transpose", choices=("transpose", "random", "none"),
                      doc="feedback of the generated projections"),
    "prefix": Field("str", False, "layer", doc="population names <prefix>0, <prefix>1, ..."),
    "input": Field("str", False, doc="name of the input population (default <prefix>0; reused if it exists)"),
    "output_name": Field("str", False, doc="name of the output population (default <prefix><n>)"),
    # kind = "dendritic_microcircuit" only (the arguments of dendritic_microcircuit())
    "preset": Field("str", False, "bern", choices=("bern", "sacramento2018"),
                    doc="dendritic_microcircuit: conductance preset"),
    "latent_equilibrium": Field("bool", False, False,
                                doc="dendritic_microcircuit: LE neurons (send phi(u + du/dt / g_tot)); false: "
                                    "the original microcircuit"),
    "activation": Field("str", False, "softplus", doc="dendritic_microcircuit: transfer function phi"),
    "init": Field("str", False, "self_predicting", choices=("self_predicting", "random"),
                  doc="dendritic_microcircuit: self_predicting (up/down random, ip/pi in the closed form of "
                      "the self-predicting state, v_A = 0 on any held input) or random (all U(-s, s))"),
    "seed": Field("int", False, low=0, doc="dendritic_microcircuit: seed of the weights (default simulation.seed)"),
    "weight_scale": Field("float", False, 1.0, low=0.0, strict_low=True,
                          doc="dendritic_microcircuit: weights U(-s, s)"),
    "sigma": Field("float", False, 0.0, low=0.0, doc="dendritic_microcircuit: somatic noise amplitude",
                   unit="1/sqrt(ms)"),
    "top_down": Field("str", False, "fixed", choices=("fixed", "learned"),
                      doc="dendritic_microcircuit: down weights fixed, or learned (rule target_prop, eta_down)"),
    "eta_up": Field("any", False, doc="dendritic_microcircuit: learning rate of up1..upN, a number or one per "
                                      "weight layer (len(sizes) - 1); 0: fixed", unit="1/ms"),
    "eta_ip": Field("any", False, doc="dendritic_microcircuit: rate of ip1.., a number or one per hidden layer",
                    unit="1/ms"),
    "eta_pi": Field("any", False, doc="dendritic_microcircuit: rate of pi1.. (apical homeostasis), a number or "
                                      "one per hidden layer", unit="1/ms"),
    "eta_down": Field("any", False, doc="dendritic_microcircuit: rate of down1.. (top_down = learned), a number "
                                        "or one per hidden layer", unit="1/ms"),
    "w_max": Field("any", False, doc="dendritic_microcircuit: clip |W_up|: a number or [hidden, output] "
                                     "(LE code: [4, 5])"),
    "tau_w": Field("float", False, 0.0, low=0.0, doc="dendritic_microcircuit: low-pass of weight changes "
                                                     "(0: unfiltered)", unit="ms"),
}
# template keys that only one kind reads (the others are rejected for the other kind)
TEMPLATE_LAYERED_ONLY = ("hidden", "output", "weights", "eta", "eta_factors", "feedback", "prefix", "input",
                         "output_name")
TEMPLATE_MICROCIRCUIT_ONLY = ("preset", "latent_equilibrium", "activation", "init", "seed", "weight_scale",
                              "sigma", "top_down", "eta_up", "eta_ip", "eta_pi", "eta_down", "w_max", "tau_w")

PROTOCOL = {
    # a scenario's [protocol] table (microcircuit.protocols.run_protocol): supervised learning from a data set
    "dataset": Field("str", True, doc="data set in microcircuit.datasets (yin_yang, bars, digits, mnist1d, "
                                      "teacher_student)"),
    "dataset_args": Field("table", False, doc="keyword arguments of the data set function"),
    "t_pres": Field("float", True, low=0.0, strict_low=True, doc="presentation time per sample (ms)", unit="ms"),
    "dt": Field("float", False, low=0.0, strict_low=True, doc="time step (ms); default simulation.dt", unit="ms"),
    "steps_per_presentation": Field("int", False, low=1, doc="dt = t_pres / steps_per_presentation (instead of dt)"),
    "epochs": Field("int", False, 1, low=0, doc="passes over the training set"),
    "lr": Field("float", False, low=0.0, doc="learning rate per presentation: eta = lr * lr_factor / t_pres"),
    "lr_factors": Field("list", False, doc="one factor per plastic projection, in projection order"),
    "lr_schedule": Field("str", False, "constant", choices=tuple(LR_SCHEDULES), doc="learning-rate schedule over epochs"),
    "plateau_patience": Field("int", False, 2, low=0, doc="lr_schedule 'plateau': epochs without improvement "
                                                          "before the rates are scaled"),
    "plateau_factor": Field("float", False, 0.5, low=0.0, high=1.0, strict_low=True,
                            doc="lr_schedule 'plateau': factor applied to the rates"),
    "plateau_eps": Field("float", False, 0.0, low=0.0, doc="lr_schedule 'plateau': reductions smaller than this "
                                                           "fraction of the initial rates are skipped"),
    "plateau_phase": Field("str", False, choices=("val", "test", "train_eval"),
                           doc="lr_schedule 'plateau': phase whose loss is watched (default val, else test)"),
    "presentation": Field("str", False, "hold", choices=("hold", "sequence"),
                          doc="'sequence': a sample is a time series shown n_in values per step (MNIST-1D)"),
    "lr_decay": Field("float", False, 1.0, low=0.0, high=1.0, strict_low=True,
                      doc="per-epoch factor of lr_schedule 'exponential': eta_e = eta_0 lr_decay^(e-1)"),
    "learning_lag": Field("float", False, 0.0, low=0.0, doc="ms without plasticity after each switch", unit="ms"),
    "batch": Field("int", False, low=1, doc="parallel network copies, updates averaged (default simulation.batch)"),
    "learn_bias": Field("bool", False, True, doc="learn the biases of rate populations (eta_bias)"),
    "readout": Field("str", False, "last", choices=tuple(READOUTS), doc="how a presentation's output is read"),
    "readout_window": Field("float", False, 0.2, low=0.0, high=1.0, strict_low=True,
                            doc="fraction of the presentation averaged (readout = window)"),
    "readout_signal": Field("str", False, "r", choices=("r", "u", "u_pros"), doc="output variable read"),
    "loss": Field("str", False, choices=tuple(PROTOCOL_LOSSES), doc="loss reported (default from the output population's loss)"),
    "targets": Field("list", False, doc="[low, high] one-hot target values"),
    "seed": Field("int", False, low=0, doc="seeds the network and the shuffling (default simulation.seed)"),
    "shuffle": Field("bool", False, True, doc="shuffle the training samples each epoch"),
    "reset": Field("bool", False, False, doc="reset the network state at the start of every presentation"),
    "phases": Field("list", False, doc='any of "train", "val", "test", "train_eval"'),
    "eval_initial": Field("bool", False, True, doc="evaluate before the first epoch"),
    "eval_every": Field("int", False, 1, low=1, doc="evaluate every this many epochs"),
    "adapt_presentations": Field("int", False, 0, low=0, doc="before training, present this many training samples with nudging off and plasticity on (LE time-constant adaptation)"),
    "tau_learning_in_training": Field("bool", False, True, doc="time-constant learning on in training phases"),
    "input": Field("str", False, "input", doc="input population"),
    "output": Field("str", False, "output", doc="output population"),
    "snapshot_every": Field("int", False, 0, low=0, doc="store the weights every this many epochs (0: never)"),
    "checkpoint_every": Field("int", False, low=0, unit="epochs",
                              doc="write a checkpoint (state, weights, RNGs, metrics) into the store after the "
                                  "setup and every this many epochs (0: never; default: after every epoch that "
                                  "ends >= 30 s after the last checkpoint); resume with "
                                  "`microcircuit run --resume STORE`"),
}

POPULATION = {
    # [[populations]]: these three keys, plus the parameters of the chosen model (microcircuit.models)
    "name": Field("str", True, doc="population name (an identifier)"),
    "model": Field("str", False, "rate", doc="neuron model (the models reference lists them and their parameters)"),
    "size": Field("int", True, low=1, doc="number of neurons"),
}
DISTRIBUTION = {
    # a per-neuron parameter given as a table {dist = ..., ...}: values drawn per neuron
    "dist": Field("str", False, "normal", choices=("normal", "uniform", "lognormal", "relative_normal"),
                  doc="normal(mean, std), uniform(low, high), lognormal(mean, sigma) or relative_normal "
                      "(value, width: std = width * value)"),
    "mean": Field("float", default=0.0, doc="mean (normal; lognormal: of the log)"),
    "std": Field("float", default=1.0, low=0.0, doc="standard deviation (normal)"),
    "low": Field("float", default=0.0, doc="lower end (uniform)"),
    "high": Field("float", default=1.0, doc="upper end (uniform)"),
    "sigma": Field("float", default=1.0, low=0.0, doc="standard deviation of the log (lognormal)"),
    "value": Field("float", doc="mean (relative_normal; required there)"),
    "width": Field("float", default=0.0, low=0.0, doc="relative standard deviation (relative_normal)"),
    "min": Field("float", doc="clip the draws below"),
    "max": Field("float", doc="clip the draws above"),
}
SWEEP = {
    "grid": Field("table", False, doc='{"dotted.key" = [v1, v2, ...]}: the grid `microcircuit sweep` runs when no '
                                      '--grid is given'),
}
ANALYSIS = {
    "lag": Field("list", False, doc='[{input = "...", output = "..."}]: input-output lag of recorded populations, '
                                    'reported after a run'),
}
LAG = {
    "input": Field("str", True, doc="recorded population (variables include r) taken as the input"),
    "output": Field("str", True, doc="recorded population (variables include r) taken as the output"),
}

TOP_LEVEL = {
    "scenario": "table", "simulation": "table", "populations": "array", "projections": "array",
    "stimuli": "array", "recordings": "array", "output": "table", "templates": "array",
    "protocol": "table", "sweep": "table", "analysis": "table",
}
