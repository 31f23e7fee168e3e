"""The scenario schema: every section and field a scenario file may hold.

A field is ``Field(type, required, default, low, high, choices, doc)``; types are ``float``,
``int``, ``bool``, ``str``, ``list``, ``table``, ``number_or_list`` (a scalar, a per-neuron list
or a distribution table) and ``any``. Population parameters come from each neuron model's
variable registry (:mod:`microcircuit.models`), so the schema and the models cannot disagree.
"""
from __future__ import annotations

from dataclasses import dataclass


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


SCENARIO = {
    "name": Field("str", doc="short name of the experiment"),
    "description": Field("str", doc="what the experiment shows"),
}

SIMULATION = {
    "dt": Field("float", True, low=0.0, strict_low=True, doc="time step (ms)"),
    "duration": Field("float", False, low=0.0, strict_low=True, doc="simulated time (ms)"),
    "seed": Field("int", False, 0, low=0, doc="master seed; every random stream derives from it"),
    "scheme": Field("str", False, "synchronous", choices=("synchronous", "sequential"),
                    doc="update scheme"),
    "dtype": Field("str", False, "float64", choices=("float64", "float32")),
    "batch": Field("int", False, 1, low=1, doc="independent network copies sharing weights"),
    "backend": Field("str", False, "numba", choices=("numba", "numpy")),
    "chunk_steps": Field("int", False, 2000, low=1, doc="steps per kernel call / recording block"),
}

PROJECTION = {
    "name": Field("str"),
    "pre": Field("str", True, doc="presynaptic population"),
    "post": Field("str", True, doc="postsynaptic population"),
    "target": Field("str", False, "basal", doc="compartment of post (basal, apical, dendrite, nudge, soma, "
                                              "error)"),
    "signal": Field("str", False, "r", choices=("r", "u", "u_pros", "e"),
                    doc="what the projection carries (e: from an error population, models/error.py)"),
    "connector": Field("table", False),
    "weights": Field("table", False),
    "plasticity": Field("table", False),
    "feedback": Field("str", False, "auto", choices=("auto", "transpose", "random", "none")),
    "feedback_std": Field("float", False, 0.05, low=0.0),
}

CONNECTOR = {
    "kind": Field("str", False, "all_to_all",
                  choices=("all_to_all", "one_to_one", "fixed_probability", "from_array")),
    "p": Field("float", False, 1.0, low=0.0, high=1.0),
    "array": Field("list", False),
}

WEIGHTS = {
    "dist": Field("str", False, "normal",
                  choices=("normal", "uniform", "constant", "zeros", "kaiming_uniform", "array")),
    "mean": Field("float", False, 0.0),
    "std": Field("float", False, 0.05, low=0.0),
    "low": Field("float", False, -1.0),
    "high": Field("float", False, 1.0),
    "value": Field("any", False),
    "file": Field("str", False, doc="weights from .npy/.npz/.zarr (path relative to the scenario)"),
    "key": Field("str", False),
    "transpose_of": Field("str", False, doc="error projection between error populations whose weights are the "
                                            "transpose of this forward projection (tied, exact weight transport)"),
}

PLASTICITY = {
    "rule": Field("str", False, "none", choices=("none", "error", "urbanczik_senn", "apical_homeostasis", "target_prop")),
    "eta": Field("float", False, 0.0, low=0.0, doc="learning rate per ms"),
    "tau_w": Field("float", False, 0.0, low=0.0, doc="low-pass time constant of weight changes (ms)"),
    "w_max": Field("float", False, 0.0, low=0.0, doc="clip |W| <= w_max (0 = no clipping)"),
    "t_on": Field("float", False, 0.0, doc="plasticity on from this time (ms)"),
    "t_off": Field("float", False, None, doc="plasticity off from this time (ms)"),
    "optimizer": Field("str", False, "sgd", choices=("sgd", "momentum", "adam"),
                       doc="optimiser applied to the local gradient estimate"),
    "momentum": Field("float", False, 0.9, low=0.0, doc="momentum coefficient (optimizer = momentum)"),
    "beta1": Field("float", False, 0.9, low=0.0, doc="Adam first-moment decay"),
    "beta2": Field("float", False, 0.999, low=0.0, doc="Adam second-moment decay"),
    "eps": Field("float", False, 1e-8, low=0.0, doc="Adam epsilon"),
    "error_source": Field("str", False, doc="rule error: the error population whose e is the post factor "
                                            "(default: the post population's partner error population)"),
}

STIMULUS = {
    "name": Field("str"),
    "target": Field("str", True, doc="population driven"),
    "kind": Field("str", False, "rate", choices=("rate", "current", "target", "error")),
    "waveform": Field("str", True, choices=("step", "ramp", "sines", "ou", "array")),
    "delay_steps": Field("int", False, 0, low=0),
}
WAVEFORM_FIELDS = {
    "step": {"amplitude": Field("number_or_list"), "start": Field("float"), "stop": Field("float"),
             "baseline": Field("number_or_list")},
    "ramp": {"start": Field("float"), "stop": Field("float"), "start_value": Field("number_or_list"),
             "stop_value": Field("number_or_list")},
    "sines": {"amplitude": Field("number_or_list"), "omega": Field("number_or_list"),
              "frequency_hz": Field("number_or_list"), "phase": Field("number_or_list"),
              "offset": Field("float"), "per_neuron": Field("bool")},
    "ou": {"mean": Field("float"), "sigma": Field("float", low=0.0), "tau": Field("float", low=0.0, strict_low=True),
           "seed": Field("int", low=0)},
    "array": {"file": Field("str", True), "key": Field("str"), "hold_steps": Field("int", low=1),
              "repeat": Field("bool")},
}

RECORDING = {
    "population": Field("str", True),
    "variables": Field("list", False, ["r"]),
    "neurons": Field("any", False, "all", doc='"all", a list of indices, or {start, stop, step}'),
    "stride": Field("int", False, 1, low=1),
    "dtype": Field("str", False, "float64", choices=("float64", "float32")),
}

OUTPUT = {
    "path": Field("str", False, doc="Zarr store to write (relative to the working directory)"),
    "overwrite": Field("bool", False, False),
    "codec": Field("str", False, "zstd", choices=("zstd", "lz4", "none"),
                   doc="chunk compression of the recorded arrays (none: fastest writes, largest store)"),
    "checkpoint_every": Field("float", False, low=0.0, strict_low=True,
                              doc="write a checkpoint (state, weights, RNG) into the store every this many ms; "
                                  "resume with `microcircuit run --resume STORE`"),
    "checkpoint_every_steps": Field("int", False, low=1, doc="the same, counted in steps"),
}

TEMPLATE = {
    "kind": Field("str", True, choices=("layered",)),
    "sizes": Field("list", True, doc="layer sizes, input first"),
    "hidden": Field("table", False, doc="rate-neuron parameters of hidden layers"),
    "output": Field("table", False, doc="rate-neuron parameters of the output layer"),
    "weights": Field("table", False),
    "eta": Field("float", False, 0.0, low=0.0),
    "eta_factors": Field("list", False),
    "feedback": Field("str", False, "transpose", choices=("transpose", "random", "none")),
    "prefix": Field("str", False, "layer"),
}

PROTOCOL = {
    # a scenario's [protocol] table (microcircuit.protocols.run_protocol): supervised learning from a data set
    "dataset": Field("str", True, doc="data set in microcircuit.datasets (yin_yang, bars, digits, mnist1d, "
                                      "teacher_student)"),
    "dataset_args": Field("table", False, doc="keyword arguments of the data set function"),
    "t_pres": Field("float", True, low=0.0, strict_low=True, doc="presentation time per sample (ms)"),
    "dt": Field("float", False, low=0.0, strict_low=True, doc="time step (ms); default simulation.dt"),
    "steps_per_presentation": Field("int", False, low=1),
    "epochs": Field("int", False, 1, low=0),
    "lr": Field("float", False, low=0.0, doc="learning rate per presentation: eta = lr * lr_factor / t_pres"),
    "lr_factors": Field("list", False, doc="one factor per plastic projection, in projection order"),
    "lr_schedule": Field("str", False, "constant", choices=("constant", "cosine", "exponential", "plateau")),
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
    "learning_lag": Field("float", False, 0.0, low=0.0, doc="ms without plasticity after each switch"),
    "batch": Field("int", False, low=1),
    "learn_bias": Field("bool", False, True),
    "readout": Field("str", False, "last", choices=("last", "window", "sum")),
    "readout_window": Field("float", False, 0.2, low=0.0, high=1.0, strict_low=True),
    "readout_signal": Field("str", False, "r", choices=("r", "u", "u_pros")),
    "loss": Field("str", False, choices=("mse", "cross_entropy")),
    "targets": Field("list", False, doc="[low, high] one-hot target values"),
    "seed": Field("int", False, low=0),
    "shuffle": Field("bool", False, True),
    "reset": Field("bool", False, False),
    "phases": Field("list", False, doc='any of "train", "val", "test", "train_eval"'),
    "eval_initial": Field("bool", False, True),
    "eval_every": Field("int", False, 1, low=1),
    "adapt_presentations": Field("int", False, 0, low=0),
    "tau_learning_in_training": Field("bool", False, True),
    "input": Field("str", False, "input", doc="input population"),
    "output": Field("str", False, "output", doc="output population"),
    "snapshot_every": Field("int", False, 0, low=0),
}

TOP_LEVEL = {
    "scenario": "table", "simulation": "table", "populations": "array", "projections": "array",
    "stimuli": "array", "recordings": "array", "output": "table", "templates": "array",
    "protocol": "table", "sweep": "table", "analysis": "table",
}
