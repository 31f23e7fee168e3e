"""Offline datasets and tasks plus optional download-only loaders (see the data sets page of the docs,
docs/datasets.md).

Every generator is a pure function of its arguments and seed and records them in ``attrs``
(JSON-serialisable, for Zarr attributes).

==========================  ==========================================================
``yin_yang``                Yin-Yang, 4 inputs, 3 classes (reference RandomState order)
``bars``                    3×3 Bars, 9 inputs, 3 classes, 8 patterns
``digits``                  sklearn digits, 64 inputs, 10 classes (MNIST stand-in)
``mnist1d``                 MNIST-1D via the optional ``mnist1d`` package (cached)
``teacher_student``         Sacramento 2018 teacher 30-20-10 regression
``fourier_synthesis``       LE Fig. 2a: 50 sines → 20 Hz sawtooth
``lagline_input``           GLE LagLine input stream ``(T, batch, 1)``
``lagnet_input``            GLE LagNet input stream ``(T, 1, 1)``
``mnist`` / ``cifar10``     optional loaders from a cache dir (no network, no pickle)
``mnist_idx``               MNIST from four IDX files at given paths (safe IDX parser)
``speech_shaped``           synthetic 32-channel, 12-class series (GLE speech-commands shape)
==========================  ==========================================================

:data:`DATASETS` (:mod:`microcircuit.datasets.registry`) lists the data sets a scenario's ``[protocol] dataset`` may
name, with the keyword arguments (types, bounds) each accepts; nothing else is reachable by name.
"""

from .bars import bars, bars_patterns, bars_targets
from .base import DatasetError, SupervisedData, TimeSeriesData, one_hot
from .digits import digits
from .downloads import DatasetNotAvailableError, cifar10, mnist
from .fourier import fourier_synthesis, sawtooth
from .gle_inputs import lagline_input, lagnet_input, square_wave
from .idx import mnist_idx, read_idx
from .mnist1d import mnist1d
from .registry import DATASETS, DatasetEntry
from .speech import speech_shaped
from .teacher_student import soft_rectifier, teacher_rates, teacher_student
from .yinyang import yin_yang, yin_yang_class

__all__ = [
    "DATASETS",
    "DatasetEntry",
    "DatasetError",
    "DatasetNotAvailableError",
    "SupervisedData",
    "TimeSeriesData",
    "bars",
    "bars_patterns",
    "bars_targets",
    "cifar10",
    "digits",
    "fourier_synthesis",
    "lagline_input",
    "lagnet_input",
    "mnist",
    "mnist1d",
    "mnist_idx",
    "one_hot",
    "read_idx",
    "sawtooth",
    "soft_rectifier",
    "speech_shaped",
    "square_wave",
    "teacher_rates",
    "teacher_student",
    "yin_yang",
    "yin_yang_class",
]
