"""Neuron models. Each module declares one model with its equations and variable registry."""
from .base import NeuronModel, Parameter, Variable
from .input import INPUT
from .rate import RATE
from .error import ERROR
from .pyramidal import PYRAMIDAL, OUTPUT_PYRAMIDAL, INTERNEURON, PRESETS

MODELS = {m.name: m for m in (INPUT, RATE, PYRAMIDAL, OUTPUT_PYRAMIDAL, INTERNEURON, ERROR)}


def get_model(name: str) -> NeuronModel:
    try:
        return MODELS[name]
    except KeyError:
        raise KeyError(f"unknown neuron model '{name}'; available: {sorted(MODELS)}") from None


__all__ = ["NeuronModel", "Parameter", "Variable", "MODELS", "get_model", "PRESETS"]
