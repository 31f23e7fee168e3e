"""Checks shared by scenario validation (load time) and the compiler (its last guard).

One implementation, one message: :mod:`microcircuit.scenario.validate` reports these with the
dotted path of the field before anything is built; :mod:`microcircuit.compile` and
:mod:`microcircuit.stimuli` call the same functions for circuits built from Python.
"""
from __future__ import annotations

import math
from numbers import Number


def _is_num(x):
    return isinstance(x, Number) and not isinstance(x, bool) and math.isfinite(x)


def array_shape(value, max_items=None):
    """Shape of a rectangular nested list of finite numbers, or ``(None, problem)``.

    Returns ``(shape, None)`` or ``(None, "message")`` where the message names the first offending
    element by index (``[3][1]``): a string, a table, a non-finite number, a ragged row.
    Iterative and bounded by ``max_items`` values.
    """
    if _is_num(value):
        return (), None
    if hasattr(value, "shape") and hasattr(value, "dtype"):       # a NumPy array passed from Python
        if not is_real_dtype(value.dtype):
            return None, real_dtype_message(value.dtype)
        return tuple(value.shape), None
    if not isinstance(value, list):
        return None, f"expected a number or an array of numbers, got {type(value).__name__} {value!r:.40}"
    shape = []
    node = value
    while isinstance(node, list):
        shape.append(len(node))
        if not node:
            break
        node = node[0]
    shape = tuple(shape)
    count = 0
    stack = [(value, (), 0)]
    while stack:
        node, idx, depth = stack.pop()
        where = "".join(f"[{i}]" for i in idx)
        if depth == len(shape):
            if not _is_num(node):
                return None, f"element {where} is {type(node).__name__} {node!r:.40}, expected a finite number"
            count += 1
            if max_items is not None and count > max_items:
                return None, f"has more than {max_items} values"
            continue
        if not isinstance(node, list) or len(node) != shape[depth]:
            got = f"{len(node)} values" if isinstance(node, list) else f"{type(node).__name__} {node!r:.40}"
            return None, (f"is ragged: element {where or '[]'} has {got}, expected {shape[depth]} "
                          f"(every row the same length)")
        stack.extend(reversed([(x, idx + (i,), depth + 1) for i, x in enumerate(node)]))   # first one first
    return shape, None


def weight_shape_message(got, expected):
    return f"weight array has shape {tuple(got)}, expected {tuple(expected)} (post, pre)"


def connector_shape_message(got, expected):
    return f"connector array has shape {tuple(got)}, expected {tuple(expected)} (post, pre)"


def real_dtype_message(dtype):
    return (f"holds {dtype} values; inputs must be real numbers (integer or float): save the real part "
            f"(np.real) or the magnitude (np.abs) explicitly")


def is_real_dtype(dtype):
    return dtype.kind in "biuf"


def error_partner_problem(name, size, partner, populations, taken=()):
    """Problems of an error population's ``partner`` (models/error.py) as ``(field, message)``, field
    ``"partner"`` (of the error population) or ``"loss"`` (of the partner), or None.

    ``populations`` maps name -> ``(model, size, loss)``; ``taken``: partners already claimed."""
    if not partner:
        return "partner", ('needs partner = "<rate population>" (the representation population whose errors '
                           'it computes)')
    if not isinstance(partner, str) or partner not in populations:
        return "partner", f"names no population {partner!r}; populations are {list(populations)}"
    model, psize, loss = populations[partner]
    if model != "rate":
        return "partner", f"'{partner}' is a {model} population; the partner must be a rate population"
    if isinstance(size, int) and isinstance(psize, int) and psize != size:
        return "partner", (f"sizes differ ({size} error neurons, {psize} in '{partner}'); error and "
                           f"representation neurons pair one to one")
    if partner in taken:
        return "partner", f"'{partner}' already has an error population; give each representation population one"
    if loss not in (None, "none"):
        return "loss", (f"with a partner error population the loss belongs to the error population '{name}' "
                        f"(set loss there, and give it the target)")
    return None


def error_source_problem(src, post, post_size, populations):
    """The problem of a rule-"error" projection's ``plasticity.error_source``, or None.
    ``populations`` maps name -> ``(model, size)`` (more entries are ignored)."""
    entry = populations.get(src)
    if entry is None or entry[0] != "error" or (isinstance(post_size, int) and entry[1] != post_size):
        return (f"must name an error population of {post_size} neurons (the partner of '{post}'), "
                f"got {src!r}")
    return None


INPUT_CARRIES_R = "an input population only carries 'r'"


def one_to_one_message(n_pre, n_post):
    return f"one_to_one needs equal sizes, got {n_pre} -> {n_post}"


def stimulus_kind_problem(target, kind, model, is_input):
    """The problem of a stimulus ``kind`` for its target population's model, or None."""
    if is_input and kind != "rate":
        return f"input population '{target}' takes kind 'rate' only"
    if not is_input and kind == "rate":
        return (f"kind 'rate' drives input populations only; '{target}' is {model} "
                f"(use 'current', 'target' or 'error')")
    return None


def second_rate_message(target, first):
    # rates are set, not summed: a second rate stimulus would silently replace the first
    return (f"input population '{target}' already has its rate set by {first}; an input population takes "
            f"one rate stimulus (combine the waveforms into one array, or give each its own input population)")
