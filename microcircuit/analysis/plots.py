"""Matplotlib helpers for recordings (Agg-safe: no pyplot state, every function returns a Figure).

All functions build a :class:`matplotlib.figure.Figure` directly (``Figure()``), so they work with
any backend, in threads and under pytest; save with ``fig.savefig(path)``.  Axis labels come from
the ``long_name``/``units`` attributes of the arrays.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

__all__ = ["plot_traces", "plot_heatmap", "plot_learning_curves", "plot_sweep_table", "axis_label"]


def axis_label(obj, fallback: str = "") -> str:
    """``"long_name [units]"`` from an xarray object's attrs."""
    attrs = getattr(obj, "attrs", {})
    name = attrs.get("long_name") or getattr(obj, "name", None) or fallback
    units = attrs.get("units")
    return f"{name} [{units}]" if units else str(name)


def _select(da: xr.DataArray, keep: Sequence[str], **index) -> xr.DataArray:
    sel = {}
    for d in da.dims:
        if d in keep:
            continue
        sel[d] = index.get(d, 0)
    return da.isel(sel) if sel else da


def _trace_title(da: xr.DataArray, neuron: int, batch: int) -> str:
    """``"pyr1 neuron 0 (pyramidal, layer 1), batch 0"``: who is plotted, without xarray's unit brackets."""
    pop = da.attrs.get("population", "")
    nd = next((d for d in da.dims if str(d).startswith("neuron")), None)
    label = str(neuron)
    if nd is not None and nd in da.coords:
        label = str(da.coords[nd].values[neuron])
    kind = [str(da.coords[c].values[neuron]) for c in ("cell_type",) if nd and c in da.coords
            and da.coords[c].dims == (nd,)]
    layer = [f"layer {int(da.coords['layer'].values[neuron])}"] if nd and "layer" in da.coords and \
        da.coords["layer"].dims == (nd,) else []
    who = f" ({', '.join(kind + layer)})" if kind or layer else ""
    return f"{pop + ' ' if pop else ''}neuron {label}{who}, batch {batch}"


def _y_label(arrays: Sequence[xr.DataArray]) -> str:
    """One label naming every plotted variable: ``"u, r [1]"`` when they share units, else
    ``"u [1], udot [1/ms]"``; a single variable keeps its long name."""
    if len(arrays) == 1:
        return axis_label(arrays[0])
    units = {a.attrs.get("units", "") for a in arrays}
    if len(units) == 1:
        (u,) = units
        names = ", ".join(str(a.name) for a in arrays)
        return f"{names} [{u}]" if u else names
    return ", ".join(f"{a.name} [{a.attrs.get('units', '')}]" for a in arrays)


def plot_traces(da, neuron: int = 0, batch: int = 0, dim: str = "time", ax=None) -> Figure:
    """Time course of one neuron: a DataArray, or a list of them (e.g. ``[ds.u, ds.r]``) drawn in one
    panel; one line per variable and compartment, each in the legend (with its long name).

    Other dims are indexed positionally: ``neuron``/``batch`` by the arguments, the rest at 0. The
    y-label names every plotted variable, the title the population, neuron, cell type, layer and
    batch row.
    """
    arrays = [da] if isinstance(da, xr.DataArray) else list(da)
    if not arrays:
        raise ValueError("plot_traces: nothing to plot")
    for a in arrays:
        if dim not in a.dims:
            raise ValueError(f"plot_traces: {a.name!r} has no {dim!r} dimension (dims {a.dims})")
    if ax is None:
        fig = Figure(figsize=(6, 3.2))
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    for a in arrays:
        _plot_one(ax, a, neuron, batch, dim, several=len(arrays) > 1)
    if len(ax.get_lines()) > 1:
        ax.legend(frameon=False, fontsize=8)
    first = arrays[0]
    ax.set_xlabel(axis_label(first.coords[dim], dim) if dim in first.coords else dim)
    ax.set_ylabel(_y_label(arrays))
    ax.set_title(_trace_title(first, neuron, batch), fontsize=9)
    return fig


def _plot_one(ax, da: xr.DataArray, neuron: int, batch: int, dim: str, several: bool) -> None:
    """The lines of one variable: one per compartment, labelled for the legend."""
    keep = [dim] + (["compartment"] if "compartment" in da.dims else [])
    index = {d: neuron for d in da.dims if str(d).startswith("neuron")}
    sub = _select(da, keep, batch=batch, **index)
    t = sub.coords[dim].values if dim in sub.coords else np.arange(sub.sizes[dim])
    name = str(da.attrs.get("long_name") or da.name)
    if "compartment" in sub.dims:
        comps = sub.coords["compartment"].values if "compartment" in sub.coords else range(sub.sizes["compartment"])
        for i, comp in enumerate(comps):
            ax.plot(t, sub.isel(compartment=i).values, lw=1, label=f"{da.name} {comp}" if several else str(comp))
    else:
        ax.plot(t, sub.values, lw=1, label=f"{da.name}: {name}" if several else name)


def plot_heatmap(da: xr.DataArray, batch: int = 0, dim: str = "time", neuron_dim: str = "neuron", ax=None) -> Figure:
    """Population heatmap (neuron × time) of one batch entry (first compartment if present)."""
    for d in (dim, neuron_dim):
        if d not in da.dims:
            raise ValueError(f"plot_heatmap: array has no {d!r} dimension (dims {da.dims})")
    sub = _select(da, [dim, neuron_dim], batch=batch).transpose(neuron_dim, dim)
    if ax is None:
        fig = Figure(figsize=(6, 3.2))
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    t = sub.coords[dim].values if dim in sub.coords else np.arange(sub.sizes[dim])
    im = ax.imshow(sub.values, aspect="auto", origin="lower", interpolation="nearest",
                   extent=(t[0], t[-1], -0.5, sub.sizes[neuron_dim] - 0.5))
    fig.colorbar(im, ax=ax, label=axis_label(da))
    ax.set_xlabel(axis_label(da.coords[dim], dim) if dim in da.coords else dim)
    ax.set_ylabel(neuron_dim)
    return fig


def plot_learning_curves(metrics: xr.Dataset, dim: str = "epoch", variables: Sequence[str] | None = None) -> Figure:
    """One panel per metric along ``epoch`` (extra dims are drawn as separate lines)."""
    names = list(variables) if variables is not None else [v for v, a in metrics.data_vars.items() if dim in a.dims]
    if not names:
        raise ValueError(f"plot_learning_curves: no variable along {dim!r}")
    fig = Figure(figsize=(3.2 * len(names), 3))
    axes = fig.subplots(1, len(names), squeeze=False)[0]
    for ax, name in zip(axes, names):
        var = metrics[name]
        x = var.coords[dim].values if dim in var.coords else np.arange(var.sizes[dim])
        vals = var.transpose(dim, ...).values.reshape(var.sizes[dim], -1)
        lines = ax.plot(x, vals, lw=1)
        if len(lines) > 1:      # extra dims (seeds, sweep points): say which line is which, "seed 2"
            extra = [d for d in var.transpose(dim, ...).dims if d != dim]
            values = [var.coords[d].values if d in var.coords else np.arange(var.sizes[d]) for d in extra]
            for line, key in zip(lines, itertools.product(*values)):
                line.set_label(", ".join(f"{d} {k}" for d, k in zip(extra, key)))
            ax.legend(frameon=False, fontsize=7)
        ax.set_xlabel(dim)
        ax.set_ylabel(axis_label(var, name))
    fig.tight_layout()
    return fig


def plot_sweep_table(table, columns: Sequence[str] | None = None, fmt: str = "{:.3g}", title: str | None = None) -> Figure:
    """Render a sweep/result table as a figure.

    ``table`` is a Dataset with one dimension (rows; each data variable is a column, its units in
    the header), a mapping ``{column: sequence}``, or a pandas DataFrame.
    """
    if isinstance(table, xr.Dataset):
        if len(table.dims) != 1:
            raise ValueError(f"plot_sweep_table: dataset must be 1-D, has dims {tuple(table.dims)}")
        (row_dim,) = table.dims
        cols = list(columns or table.data_vars)
        rows = [str(v) for v in table.coords[row_dim].values] if row_dim in table.coords else list(map(str, range(table.sizes[row_dim])))
        headers = [f"{c} [{table[c].attrs['units']}]" if table[c].attrs.get("units") else c for c in cols]
        cells = [[table[c].values[i] for c in cols] for i in range(len(rows))]
    elif isinstance(table, Mapping):
        cols = list(columns or table)
        n = len(next(iter(table.values())))
        rows, headers = [str(i) for i in range(n)], cols
        cells = [[table[c][i] for c in cols] for i in range(n)]
    else:  # DataFrame-like
        cols = list(columns or table.columns)
        rows, headers = [str(i) for i in table.index], cols
        cells = table[cols].values.tolist()

    def _f(v):
        try:
            return fmt.format(float(v))
        except (TypeError, ValueError):
            return str(v)

    text = [[_f(v) for v in row] for row in cells]
    fig = Figure(figsize=(1.6 + 1.4 * len(headers), 0.6 + 0.3 * len(rows)))
    ax = fig.add_subplot()
    ax.axis("off")
    tab = ax.table(cellText=text, rowLabels=rows, colLabels=headers, loc="center")
    tab.auto_set_font_size(False)
    tab.set_fontsize(8)
    if title:
        ax.set_title(title, fontsize=9)
    return fig
