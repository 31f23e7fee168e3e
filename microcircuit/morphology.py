"""Real neuron morphologies -> reduced compartments and microcircuit conductances.

Reads SWC reconstructions (strictly validated), groups the membrane by SWC type code into the
compartments of the dendritic-error microcircuit and derives the rate model's conductances.

SWC format
----------
One point per line, ``id type x y z radius parent`` (7 whitespace-separated columns; x, y, z,
radius in µm). ``#`` starts a comment (whole line or trailing). Ids may be 0- or 1-based and in
any order; the parent of a root is ``-1``. Type codes: 1 soma, 2 axon, 3 basal dendrite,
4 apical dendrite (others must be remapped with ``type_map``).

Compartment groups
------------------
======== ============ ==============================================================
group    SWC types    role in the model
======== ============ ==============================================================
soma     1            somatic compartment (u); its capacitance is the model's unit
basal    3            pyramidal basal dendrite (v_B), coupling g_B
apical   4            pyramidal apical dendrite (v_A), coupling g_A
dendrite 3 + 4        interneuron dendrite (v_I), coupling g_D
axon     2            reported only, never part of a model compartment
======== ============ ==============================================================

Geometry (matches NeuroM 4.x / MorphIO conventions)
---------------------------------------------------
* A segment joins a non-soma point k to its parent p and belongs to the group of k's type.
  Segments whose parent is a soma point are *not* counted: MorphIO starts each neurite at its
  first point, so the gap from the soma centre to the first neurite point is neither length
  nor membrane (NeuroM does the same).
* length ``ℓ = |x_k − x_p|`` (µm); membrane area of the frustum lateral surface
  ``a = π (r_p + r_k) sqrt((r_p − r_k)² + ℓ²)`` (µm², caps excluded, NeuroM ``segment_area``).
* mean diameter (length-weighted) ``d̄ = Σ ℓ (r_p + r_k) / Σ ℓ`` (µm).
* soma area: one soma point -> sphere ``4 π r²`` (NeuroM ``SomaSinglePoint``); the NeuroMorpho
  three-point soma -> cylinder ``2 π r h`` with h the distance between points 2 and 3
  (``= 4 π r²`` for a conforming file); otherwise the soma points, in file order, are a stack of
  frusta whose lateral areas are summed (NeuroM ``SomaCylinders``).

Axial resistance to the electrotonic centre
-------------------------------------------
Frustum axial resistance (exact for a linear radius profile, reduces to ``4 Ra ℓ / (π d²)`` for a
cylinder)::

    R_seg = Ra ℓ / (π r_p r_k)                      [Ω], with Ra in Ω·cm -> × 1e4 for µm inputs

The path resistance ``R(k)`` accumulates R_seg from the stem's first point (R = 0) to k. For
each stem tree s (a subtree whose root point has a soma parent) and group c, the electrotonic
centre is the membrane-area-weighted mean path resistance, each segment counted at its
resistive midpoint::

    R_c,s = Σ_seg a (R(p) + R_seg / 2) / Σ_seg a

(for one cylinder of length L this is the midpoint, ``R_c = 2 Ra L / (π d²)`` = half the
cylinder's end-to-end resistance). Stems join the soma in parallel::

    G_c = Σ_s 1 / R_c,s                              [S]

Model conductances (capacitance normalised to 1, conductances in 1/ms, τ = 1/g in ms)
----------------------------------------------------------------------------------------
With specific capacitance c_m (µF/cm²), specific leak g_pas (S/cm²), Ra (Ω·cm)::

    C_soma = c_m,soma · A_soma                       [F]  (1 µF/cm² · 1 µm² = 1e-14 F)
    g_lk   = g_pas,soma / c_m,soma · 1e3             [1/ms] (3e-5 S/cm² / 1 µF/cm² = 0.03 /ms)
    g_B    = G_basal  / C_soma · 1e-3                [1/ms]
    g_A    = G_apical / C_soma · 1e-3                [1/ms]
    g_D    = G_dendrite / C_soma · 1e-3              [1/ms] (interneuron, basal + apical)

The microcircuit's dendrites are instantaneous (no capacitance), so the soma's capacitance is the
one normalised to 1. With the generic parameters (c_m 1 µF/cm², Ra 100 Ω·cm, g_pas 3e-5 S/cm²)
the bundled Allen pyramids give g_B ≈ 2–5 /ms and g_A ≈ 0.3–0.4 /ms against g_lk = 0.03 /ms, so
g_B/g_lk ≈ 65–160, far above the abstract presets (Bern: 3.3, Sacramento: 10): a small soma is
strongly coupled to its dendrites. Compare ratios such as g_A/g_B across cells rather than
absolute values when mapping onto a preset.
"""

from __future__ import annotations

import hashlib
import html
import json
import math
import numbers
import tomllib
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .errors import MicrocircuitError

__all__ = [
    "MORPHOLOGY_DIR",
    "MorphologyError",
    "MorphologyWarning",
    "Morphology",
    "CompartmentGeometry",
    "CompartmentTable",
    "read_swc",
    "load_morphology",
    "available_cells",
    "fitted_passive",
    "derive_conductances",
    "compartment_table",
    "write_reduced",
    "reduced_toml",
]

#: Directory of the bundled cells (repository layout: <repo>/morphologies next to the package).
MORPHOLOGY_DIR = Path(__file__).resolve().parents[1] / "morphologies"

SOMA, AXON, BASAL, APICAL = 1, 2, 3, 4
KNOWN_TYPES = {SOMA: "soma", AXON: "axon", BASAL: "basal", APICAL: "apical"}
#: group name -> SWC type codes
GROUPS: dict[str, tuple[int, ...]] = {
    "soma": (SOMA,),
    "basal": (BASAL,),
    "apical": (APICAL,),
    "dendrite": (BASAL, APICAL),
    "axon": (AXON,),
}
#: generic passive parameters (c_m µF/cm², Ra Ω·cm, g_pas S/cm²) -> g_lk = 0.03 /ms (Bern preset)
GENERIC_PASSIVE = {"cm": 1.0, "ra": 100.0, "g_pas": 3e-5}

# Ω·cm · µm / µm² = 1e-2 Ω·m · 1e-6 m / 1e-12 m² = 1e4 Ω
_RA_UM_TO_OHM = 1e4
# µF/cm² · µm² = 1e-6 F / 1e8 µm² · µm² = 1e-14 F
_CM_UM2_TO_F = 1e-14


class MorphologyError(MicrocircuitError, ValueError):
    """Malformed morphology file or unusable morphology (message names file, line and fix).

    File content quoted in a message is ``repr``-escaped, so control characters in a file cannot
    reach the terminal.
    """


class MorphologyWarning(UserWarning):
    """Suspicious but usable morphology data (e.g. type change without a bifurcation)."""


def _where(path: Path | str, line: int | None) -> str:
    p = str(path)
    p = p if p.isprintable() else repr(p)[1:-1]     # no control characters from a path on the terminal
    return f"{p}:{line}" if line is not None else f"{p}"


def _fail(path, line, problem: str, fix: str) -> MorphologyError:
    return MorphologyError(f"{_where(path, line)}: {problem}. Fix: {fix}")


# --------------------------------------------------------------------------------------------
# data structures
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CompartmentGeometry:
    """Geometry of one compartment group.

    Attributes: ``length_um`` total segment length (µm), ``area_um2`` membrane area (µm²),
    ``mean_diameter_um`` length-weighted mean diameter (µm), ``n_points`` SWC points of the
    group, ``n_stems`` stem trees contributing segments, ``centre_resistance_per_ra`` per stem,
    the area-weighted path resistance to the electrotonic centre divided by Ra, in 1/µm
    (R[Ω] = Ra[Ω·cm] · 1e4 · value).
    """

    name: str
    n_points: int
    n_stems: int
    length_um: float
    area_um2: float
    mean_diameter_um: float
    centre_resistance_per_ra: tuple[float, ...] = ()

    def axial_conductance_S(self, ra: float) -> float:
        """G = Σ_stems 1 / R_centre (S) for axial resistivity ``ra`` (Ω·cm); 0 if no stems."""
        _check_positive("ra", ra)
        return float(sum(1.0 / (ra * _RA_UM_TO_OHM * x) for x in self.centre_resistance_per_ra if x > 0))

    def axial_resistance_MOhm(self, ra: float) -> float:
        """1 / G in MΩ (parallel stems to their electrotonic centres); inf if no stems."""
        g = self.axial_conductance_S(ra)
        return math.inf if g == 0 else 1e-6 / g


@dataclass
class Morphology:
    """A validated SWC reconstruction (arrays in file order).

    ``ids``, ``types`` (int), ``xyz`` (N×3, µm), ``radius`` (µm), ``parent`` (row index of the
    parent point, -1 for roots), ``lines`` (1-based source line of each point).
    """

    path: Path
    name: str
    ids: np.ndarray
    types: np.ndarray
    xyz: np.ndarray
    radius: np.ndarray
    parent: np.ndarray
    lines: np.ndarray
    defects: list[str] = field(default_factory=list)
    _geometry: dict[str, CompartmentGeometry] | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        counts = ", ".join(f"{KNOWN_TYPES[t]}={int((self.types == t).sum())}" for t in KNOWN_TYPES)
        return f"Morphology({self.name!r}, {len(self.ids)} points: {counts}, soma={self.soma_kind})"

    @property
    def soma_kind(self) -> str:
        """'single_point', 'three_point' (NeuroMorpho convention) or 'cylinders'."""
        idx = np.flatnonzero(self.types == SOMA)
        if len(idx) == 1:
            return "single_point"
        if len(idx) == 3 and _is_neuromorpho_three_point(self, idx):
            return "three_point"
        return "cylinders"

    @property
    def kind(self) -> str:
        """'pyramidal' when apical membrane exists, else 'interneuron'."""
        return "pyramidal" if self.geometry()["apical"].area_um2 > 0 else "interneuron"

    def geometry(self) -> dict[str, CompartmentGeometry]:
        """Per-group geometry: soma, basal, apical, dendrite (basal+apical), axon."""
        if self._geometry is None:
            self._geometry = _compute_geometry(self)
        return self._geometry


def _is_neuromorpho_three_point(m: Morphology, idx: np.ndarray) -> bool:
    # MorphIO's check: same radius, points 2 and 3 children of point 1, offset by ±r along y only.
    a, b, c = idx
    r = m.radius[idx]
    if not np.allclose(r, r[0]) or m.parent[b] != a or m.parent[c] != a:
        return False
    d1, d2 = m.xyz[b] - m.xyz[a], m.xyz[c] - m.xyz[a]
    return bool(
        np.allclose(d1[[0, 2]], 0, atol=1e-6)
        and np.allclose(d2[[0, 2]], 0, atol=1e-6)
        and np.isclose(abs(d1[1]), r[0])
        and np.isclose(abs(d2[1]), r[0])
        and np.sign(d1[1]) != np.sign(d2[1])
    )


# --------------------------------------------------------------------------------------------
# reader
# --------------------------------------------------------------------------------------------
def read_swc(
    path: str | Path,
    *,
    strict: bool = False,
    type_map: Mapping[int, int] | None = None,
) -> Morphology:
    """Read and validate an SWC file.

    Raises :class:`MorphologyError` naming ``file:line`` and a fix for: a wrong column count,
    non-numeric or non-finite fields, non-integer id/type/parent, negative ids, duplicate ids, a
    parent id that exists nowhere in the file (forward references are allowed: ids may be
    unsorted), a non-positive radius, a type code outside 1–4 (after ``type_map``), no soma, a
    root (parent -1) that is not soma, a soma point under a non-soma parent, and cycles.

    A type change inside an unbranched section (child type ≠ parent type, parent non-soma with
    exactly one child) is reported as a :class:`MorphologyWarning` and recorded in
    ``Morphology.defects``; with ``strict=True`` it is a :class:`MorphologyError` (MorphIO's
    strict mode rejects it too). The geometry stays well defined either way: each segment belongs
    to its child point's type.

    ``type_map`` remaps type codes before validation, e.g. ``{5: 3}`` to read custom type 5 as basal.
    """
    path = Path(path)
    if not path.is_file():
        raise MorphologyError(f"{_where(path, None)}: no such SWC file. Fix: check the path, or call "
                              f"load_morphology() with one of {available_cells()}")
    type_map = dict(type_map or {})
    rows: list[tuple[int, int, float, float, float, float, int]] = []
    lines: list[int] = []
    lineno = 0
    with path.open("r", encoding="utf-8", errors="replace") as fh:
        for lineno, raw in enumerate(fh, start=1):
            text = raw.split("#", 1)[0].strip()
            if not text:
                continue
            cols = text.split()
            if len(cols) != 7:
                raise _fail(path, lineno, f"expected 7 columns 'id type x y z radius parent', got "
                            f"{len(cols)}: {text!r}", "one point per line with exactly 7 "
                            "whitespace-separated fields; comment lines start with '#'")
            try:
                vals = [float(c) for c in cols]
            except ValueError:
                bad = next(c for c in cols if not _is_float(c))
                raise _fail(path, lineno, f"non-numeric field {bad!r} in {text!r}",
                            "all 7 fields must be numbers") from None
            if not all(math.isfinite(v) for v in vals):
                raise _fail(path, lineno, f"non-finite field in {text!r}",
                            "replace nan/inf by measured values")
            for k, name in ((0, "id"), (1, "type"), (6, "parent")):
                if vals[k] != int(vals[k]):
                    raise _fail(path, lineno, f"{name} must be an integer, got {cols[k]!r}",
                                f"write the {name} as an integer")
            pid, ptype, x, y, z, r, par = vals
            pid, ptype, par = int(pid), int(ptype), int(par)
            ptype = type_map.get(ptype, ptype)
            if pid < 0:
                raise _fail(path, lineno, f"negative id {pid}", "ids must be >= 0")
            if par < -1:
                raise _fail(path, lineno, f"parent id {par} < -1", "use -1 for the root, else an existing id")
            if r <= 0:
                raise _fail(path, lineno, f"non-positive radius {cols[5]} for point {pid}",
                            "radii must be > 0 µm (fix the tracing or set a minimum radius)")
            if ptype not in KNOWN_TYPES:
                raise _fail(path, lineno, f"unknown type code {ptype} for point {pid}",
                            "use 1 soma, 2 axon, 3 basal, 4 apical, or pass "
                            f"type_map={{{ptype}: 3}} to read_swc()")
            rows.append((pid, ptype, x, y, z, r, par))
            lines.append(lineno)
    if not rows:
        raise _fail(path, lineno,
                    "no SWC points (file holds only comments or blank lines)",
                    "add points 'id type x y z radius parent'")

    ids = np.array([r[0] for r in rows], dtype=np.int64)
    index: dict[int, int] = {}
    for i, pid in enumerate(ids.tolist()):
        if pid in index:
            raise _fail(path, lines[i], f"duplicate id {pid} (first defined on line {lines[index[pid]]})",
                        "give every point a unique id")
        index[pid] = i
    types = np.array([r[1] for r in rows], dtype=np.int64)
    xyz = np.array([r[2:5] for r in rows], dtype=float)
    radius = np.array([r[5] for r in rows], dtype=float)
    parent = np.empty(len(rows), dtype=np.int64)
    for i, row in enumerate(rows):
        par = row[6]
        if par == -1:
            parent[i] = -1
            continue
        if par == row[0]:
            raise _fail(path, lines[i], f"point {par} is its own parent (cycle)", "point the parent to another id or -1")
        if par not in index:
            raise _fail(path, lines[i], f"parent id {par} of point {row[0]} does not exist",
                        "reference an id defined in the file, or -1 for a root")
        parent[i] = index[par]
    line_arr = np.array(lines, dtype=np.int64)

    if not (types == SOMA).any():
        first_root = int(np.flatnonzero(parent == -1)[0]) if (parent == -1).any() else 0
        raise _fail(path, lines[first_root], f"no soma: none of the {len(rows)} points has type 1 "
                    f"(root point {ids[first_root]} here has type {types[first_root]})",
                    "mark the soma point(s) with type 1")
    for i in np.flatnonzero(parent == -1):
        if types[i] != SOMA:
            raise _fail(path, lines[i], f"root point {ids[i]} (parent -1) has type {types[i]} "
                        f"({KNOWN_TYPES[int(types[i])]}), not soma",
                        "attach every neurite to the soma (parent = a soma id)")
    for i in np.flatnonzero((types == SOMA) & (parent >= 0)):
        if types[parent[i]] != SOMA:
            raise _fail(path, lines[i], f"soma point {ids[i]} has non-soma parent {ids[parent[i]]}",
                        "soma points must hang from the soma root or another soma point")

    # Cycle detection: walk down from the roots; every point must be reached.
    n = len(rows)
    children: list[list[int]] = [[] for _ in range(n)]
    for i in range(n):
        if parent[i] >= 0:
            children[parent[i]].append(i)
    seen = np.zeros(n, dtype=bool)
    stack = list(np.flatnonzero(parent == -1))
    while stack:
        i = stack.pop()
        seen[i] = True
        stack.extend(children[i])
    if not seen.all():
        i = int(np.flatnonzero(~seen)[0])
        chain, j = [], i
        for _ in range(n):
            chain.append(int(ids[j]))
            j = int(parent[j])
            if j == i:
                break
        raise _fail(path, lines[i], f"cycle in the parent links through ids {chain[:8]}"
                    f"{' ...' if len(chain) > 8 else ''}", "break the cycle: one of these points "
                    "needs parent -1 (soma) or an id outside the loop")

    m = Morphology(path=path, name=_cell_id(path), ids=ids, types=types, xyz=xyz, radius=radius,
                   parent=parent, lines=line_arr)
    for i in range(n):
        p = parent[i]
        if p < 0 or types[p] == SOMA or types[i] == types[p] or len(children[p]) != 1:
            continue
        msg = (f"{_where(path, lines[i])}: section type changes without a bifurcation: point "
               f"{ids[i]} has type {types[i]} ({KNOWN_TYPES[int(types[i])]}) but its parent "
               f"{ids[p]} (line {lines[p]}, only child) has type {types[p]} "
               f"({KNOWN_TYPES[int(types[p])]}). Fix: relabel the points of this unbranched "
               "section with one type")
        if strict:
            raise MorphologyError(msg)
        m.defects.append(msg)
        warnings.warn(msg, MorphologyWarning, stacklevel=2)
    return m


def _is_float(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def _cell_id(path: Path) -> str:
    stem = path.name
    for suffix in (".swc", ".SWC"):
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
    return stem[:-2] if stem.endswith("_m") else stem


# --------------------------------------------------------------------------------------------
# geometry
# --------------------------------------------------------------------------------------------
def _frustum_area(r0, r1, length):
    return np.pi * (r0 + r1) * np.sqrt((r0 - r1) ** 2 + length**2)


def _soma_area(m: Morphology) -> float:
    idx = np.flatnonzero(m.types == SOMA)
    kind = m.soma_kind
    if kind == "single_point":
        return float(4.0 * np.pi * m.radius[idx[0]] ** 2)
    if kind == "three_point":
        h = float(np.linalg.norm(m.xyz[idx[1]] - m.xyz[idx[2]]))
        return float(2.0 * np.pi * m.radius[idx[0]] * h)
    p0, p1 = idx[:-1], idx[1:]  # consecutive soma points in file order (NeuroM SomaCylinders)
    ln = np.linalg.norm(m.xyz[p1] - m.xyz[p0], axis=1)
    return float(_frustum_area(m.radius[p0], m.radius[p1], ln).sum())


def _compute_geometry(m: Morphology) -> dict[str, CompartmentGeometry]:
    n = len(m.ids)
    is_soma = m.types == SOMA
    # topological order (parents before children) and stem index of every neurite point
    order: list[int] = []
    children: list[list[int]] = [[] for _ in range(n)]
    for i in range(n):
        if m.parent[i] >= 0:
            children[m.parent[i]].append(i)
    stack = list(np.flatnonzero(m.parent == -1))
    while stack:
        i = stack.pop()
        order.append(i)
        stack.extend(children[i])
    stem = np.full(n, -1, dtype=np.int64)
    rpath = np.zeros(n)  # path resistance / Ra from the stem start (1/µm)
    seg_len = np.zeros(n)
    seg_area = np.zeros(n)
    seg_diam_len = np.zeros(n)
    seg_centre = np.zeros(n)
    has_seg = np.zeros(n, dtype=bool)
    for i in order:
        p = m.parent[i]
        if is_soma[i] or p < 0:
            continue
        if is_soma[p]:
            stem[i] = i  # first point of a neurite: no segment (MorphIO/NeuroM convention)
            continue
        stem[i] = stem[p]
        r0, r1 = m.radius[p], m.radius[i]
        ln = float(np.linalg.norm(m.xyz[i] - m.xyz[p]))
        r_seg = ln / (np.pi * r0 * r1)
        rpath[i] = rpath[p] + r_seg
        seg_len[i] = ln
        seg_area[i] = _frustum_area(r0, r1, ln)
        seg_diam_len[i] = ln * (r0 + r1)
        seg_centre[i] = rpath[p] + 0.5 * r_seg
        has_seg[i] = True

    out: dict[str, CompartmentGeometry] = {}
    for name, codes in GROUPS.items():
        in_group = np.isin(m.types, codes)
        if name == "soma":
            out[name] = CompartmentGeometry(name, int(in_group.sum()), 0, 0.0, _soma_area(m),
                                            float(2 * m.radius[in_group].mean()))
            continue
        sel = in_group & has_seg
        length = float(seg_len[sel].sum())
        area = float(seg_area[sel].sum())
        mean_d = float(seg_diam_len[sel].sum() / length) if length > 0 else 0.0
        centres = []
        for s in np.unique(stem[sel]):
            ss = sel & (stem == s)
            a = seg_area[ss].sum()
            if a > 0:
                centres.append(float((seg_area[ss] * seg_centre[ss]).sum() / a))
        out[name] = CompartmentGeometry(name, int(in_group.sum()), len(centres), length, area,
                                        mean_d, tuple(centres))
    return out


# --------------------------------------------------------------------------------------------
# bundled cells
# --------------------------------------------------------------------------------------------
def _index(directory: Path = MORPHOLOGY_DIR) -> dict[str, dict[str, Any]]:
    f = directory / "cells.toml"
    if not f.is_file():
        return {}
    try:
        return tomllib.loads(f.read_text(encoding="utf-8")).get("cells", {})
    except tomllib.TOMLDecodeError as exc:
        raise MorphologyError(f"{f}: invalid TOML ({exc}). Fix: repair the cell index") from None


def available_cells() -> list[str]:
    """Ids of the bundled cells (SWC files in ``MORPHOLOGY_DIR``, without ``_m.swc``)."""
    if not MORPHOLOGY_DIR.is_dir():
        return []
    return sorted(_cell_id(p) for p in MORPHOLOGY_DIR.glob("*.swc"))


def load_morphology(name_or_path: str | Path, **kwargs) -> Morphology:
    """Load a bundled cell by id (e.g. ``"Rorb_325404214"``) or any SWC file by path.

    Keyword arguments go to :func:`read_swc`.
    """
    p = Path(name_or_path)
    if p.suffix.lower() == ".swc" or p.is_file():
        return read_swc(p, **kwargs)
    name = str(name_or_path)
    for cand in (MORPHOLOGY_DIR / f"{name}_m.swc", MORPHOLOGY_DIR / f"{name}.swc"):
        if cand.is_file():
            return read_swc(cand, **kwargs)
    raise MorphologyError(f"unknown cell {name!r}: not a file and not a bundled cell in "
                          f"{MORPHOLOGY_DIR}. Fix: use one of {available_cells()} or pass a path "
                          "to an .swc file")


def fitted_passive(cell: str | Morphology) -> dict[str, Any]:
    """Passive parameters of a bundled cell's Allen perisomatic fit.

    Returns ``{"cm": {section: µF/cm²}, "ra": Ω·cm, "g_pas": {section: S/cm²}, "e_pas": mV,
    "source": file name}`` with sections among soma/axon/dend/apic, ready for
    ``derive_conductances(cell, **{k: v for k in ("cm", "ra", "g_pas")})``.
    """
    cid = cell.name if isinstance(cell, Morphology) else str(cell)
    entry = _index().get(cid)
    if entry is None or "fit" not in entry:
        raise MorphologyError(f"{MORPHOLOGY_DIR / 'cells.toml'}: no fit for cell {cid!r}. Fix: use "
                              f"one of {sorted(_index())} or pass cm/ra/g_pas explicitly")
    f = MORPHOLOGY_DIR / entry["fit"]
    d = json.loads(f.read_text(encoding="utf-8"))
    passive = d["passive"][0]
    g_pas = {g["section"]: float(g["value"]) for g in d["genome"] if g["name"] == "g_pas"}
    cm = {c["section"]: float(c["cm"]) for c in passive["cm"]}
    return {"cm": cm, "ra": float(passive["ra"]), "g_pas": g_pas,
            "e_pas": float(passive["e_pas"]), "source": f.name}


# --------------------------------------------------------------------------------------------
# conductances
# --------------------------------------------------------------------------------------------
_SECTION_ALIASES = {"soma": ("soma",), "basal": ("basal", "dend"), "apical": ("apical", "apic"),
                    "dendrite": ("dendrite", "dend", "basal")}


def _check_positive(name: str, value: float) -> None:
    if isinstance(value, bool) or not (isinstance(value, numbers.Real) and math.isfinite(value) and value > 0):
        raise MorphologyError(f"{name} must be a positive finite number, got {value!r}. Fix: pass "
                              f"{name} in the documented units (cm µF/cm², ra Ω·cm, g_pas S/cm²)")


def _section_value(name: str, value: float | Mapping[str, float], section: str) -> float:
    if isinstance(value, Mapping):
        for key in _SECTION_ALIASES[section]:
            if key in value:
                v = float(value[key])
                _check_positive(f"{name}[{key!r}]", v)
                return v
        raise MorphologyError(f"{name} has no entry for {section!r} (keys {sorted(value)}). Fix: "
                              f"add one of {list(_SECTION_ALIASES[section])}")
    _check_positive(name, value)
    return float(value)


def _resolve_kind(cell: Morphology, kind: str | None) -> str:
    kind = kind or cell.kind
    if kind not in ("pyramidal", "interneuron"):
        raise MorphologyError(f"kind must be 'pyramidal' or 'interneuron', got {kind!r}")
    return kind


def derive_conductances(
    cell: Morphology | str | Path,
    cm: float | Mapping[str, float] = GENERIC_PASSIVE["cm"],
    ra: float = GENERIC_PASSIVE["ra"],
    g_pas: float | Mapping[str, float] = GENERIC_PASSIVE["g_pas"],
    *,
    kind: str | None = None,
) -> dict[str, float]:
    """Microcircuit conductances (1/ms, somatic capacitance normalised to 1).

    ``g_lk = 1e3 · g_pas,soma / c_m,soma``; ``g_X = 1e-3 · G_X / (c_m,soma · A_soma · 1e-14)``
    with ``G_X`` the parallel axial conductance (S) from the soma to the electrotonic centres of
    group X's stems (see module docstring). Units: cm µF/cm², ra Ω·cm, g_pas S/cm², A µm².
    ``cm``/``g_pas`` may be floats or per-section mappings (keys soma, dend/basal, apic/apical)
    such as :func:`fitted_passive` returns; only the soma values enter these formulas.

    Returns ``{"g_lk", "g_B", "g_A"}`` for pyramidal cells and ``{"g_lk", "g_D"}`` for
    interneurons (whose basal + apical membrane is the single 'dendrite' compartment); ``kind``
    defaults to pyramidal iff the cell has apical membrane.
    """
    if not isinstance(cell, Morphology):
        cell = load_morphology(cell)
    kind = _resolve_kind(cell, kind)
    _check_positive("ra", ra)
    cm_s = _section_value("cm", cm, "soma")
    gp_s = _section_value("g_pas", g_pas, "soma")
    geo = cell.geometry()
    c_soma = cm_s * geo["soma"].area_um2 * _CM_UM2_TO_F  # F
    out = {"g_lk": 1e3 * gp_s / cm_s}
    groups = {"g_B": "basal", "g_A": "apical"} if kind == "pyramidal" else {"g_D": "dendrite"}
    for key, grp in groups.items():
        g_ax = geo[grp].axial_conductance_S(ra)
        if g_ax <= 0:
            raise MorphologyError(f"{_where(cell.path, None)}: no {grp} membrane (SWC type "
                                  f"{'/'.join(map(str, GROUPS[grp]))}) to derive {key} for a {kind} "
                                  "cell. Fix: pass kind='interneuron' or use a cell with that compartment")
        out[key] = 1e-3 * g_ax / c_soma
    return out


# --------------------------------------------------------------------------------------------
# tables and reduced files
# --------------------------------------------------------------------------------------------
class CompartmentTable(list):
    """List of row dicts with a fixed-width ``__str__`` and an HTML ``_repr_html_``."""

    columns: tuple[str, ...] = ()
    title: str = ""

    def __str__(self) -> str:
        cols = self.columns or (tuple(self[0]) if self else ())
        cells = [[_fmt(r.get(c, "")) for c in cols] for r in self]
        widths = [max([len(c)] + [len(row[k]) for row in cells]) for k, c in enumerate(cols)]
        head = "  ".join(c.rjust(w) for c, w in zip(cols, widths))
        body = ["  ".join(v.rjust(w) for v, w in zip(row, widths)) for row in cells]
        return "\n".join(([self.title] if self.title else []) + [head, "-" * len(head)] + body)

    def _repr_html_(self) -> str:
        cols = self.columns or (tuple(self[0]) if self else ())
        th = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
        trs = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(r.get(c, '')))}</td>" for c in cols)
                      + "</tr>" for r in self)
        cap = f"<caption>{html.escape(self.title)}</caption>" if self.title else ""
        return f"<table>{cap}<thead><tr>{th}</tr></thead><tbody>{trs}</tbody></table>"


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        if v == 0 or math.isinf(v):
            return f"{v:g}"
        return f"{v:.4g}" if abs(v) < 1e5 else f"{v:.4e}"
    return str(v)


def compartment_table(
    cell: Morphology | str | Path,
    cm: float | Mapping[str, float] = GENERIC_PASSIVE["cm"],
    ra: float = GENERIC_PASSIVE["ra"],
    g_pas: float | Mapping[str, float] = GENERIC_PASSIVE["g_pas"],
    *,
    kind: str | None = None,
) -> CompartmentTable:
    """Printable per-compartment table.

    Columns: compartment, model (which model compartment it feeds), n_points, n_stems,
    length_um, area_um2, mean_diam_um, R_axial_MOhm (soma -> electrotonic centres, stems in
    parallel), G_axial_nS, g_per_ms (g_B/g_A/g_D = G/C_soma, g_lk on the soma row).
    """
    if not isinstance(cell, Morphology):
        cell = load_morphology(cell)
    kind = _resolve_kind(cell, kind)
    geo = cell.geometry()
    g = derive_conductances(cell, cm, ra, g_pas, kind=kind)
    model = ({"soma": "soma (g_lk)", "basal": "basal (g_B)", "apical": "apical (g_A)",
              "dendrite": "-", "axon": "excluded"} if kind == "pyramidal" else
             {"soma": "soma (g_lk)", "basal": "part of dendrite", "apical": "part of dendrite",
              "dendrite": "dendrite (g_D)", "axon": "excluded"})
    gkey = {"soma": "g_lk", "basal": "g_B", "apical": "g_A", "dendrite": "g_D"}
    t = CompartmentTable()
    t.columns = ("compartment", "model", "n_points", "n_stems", "length_um", "area_um2",
                 "mean_diam_um", "R_axial_MOhm", "G_axial_nS", "g_per_ms")
    t.title = f"{cell.name} ({kind}; cm={cm}, ra={ra}, g_pas={g_pas})"
    for name in ("soma", "basal", "apical", "dendrite", "axon"):
        c = geo[name]
        soma = name == "soma"
        t.append({
            "compartment": name, "model": model[name], "n_points": c.n_points, "n_stems": c.n_stems,
            "length_um": c.length_um, "area_um2": c.area_um2, "mean_diam_um": c.mean_diameter_um,
            "R_axial_MOhm": "-" if soma else c.axial_resistance_MOhm(ra),
            "G_axial_nS": "-" if soma else 1e9 * c.axial_conductance_S(ra),
            "g_per_ms": g.get(gkey.get(name, ""), "-"),
        })
    return t


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isinf(v):
            return "inf"
        return repr(float(f"{v:.6g}"))
    if isinstance(v, Mapping):
        return "{ " + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items()) + " }"
    return json.dumps(str(v))


def reduced_toml(cell: Morphology | str | Path) -> str:
    """Text of the reduced compartment description of ``cell`` (see :func:`write_reduced`)."""
    if not isinstance(cell, Morphology):
        cell = load_morphology(cell)
    entry = _index().get(cell.name, {})
    kind = entry.get("kind", cell.kind)
    geo = cell.geometry()
    digest = hashlib.sha256(cell.path.read_bytes()).hexdigest()
    out = [
        f"# Reduced compartment description of {cell.name}, generated by",
        "# microcircuit.morphology.write_reduced(); do not edit (regenerate instead).",
        "# Units: length µm, area µm², diameter µm, R MΩ, G nS, C pF, conductances g_* in 1/ms",
        "# (model capacitance normalised to the soma's: g_X = G_axial,X / C_soma, g_lk = g_pas/c_m).",
        "# Formulas: microcircuit/morphology.py module docstring.",
        "",
        "[source]",
        f"swc = {_toml_value(cell.path.name)}",
        f"sha256 = {_toml_value(digest)}",
        f"kind = {_toml_value(kind)}",
    ]
    for key in ("cre_line", "specimen_id", "model_id", "fit"):
        if key in entry:
            out.append(f"{key} = {_toml_value(entry[key])}")
    out += ['origin = "Allen Cell Types Database via bmtk 1.2.0 (BSD-3), see NOTICE"' if entry else
            'origin = "user file"', f"soma_kind = {_toml_value(cell.soma_kind)}",
            f"defects = {len(cell.defects)}", ""]
    for name in ("soma", "basal", "apical", "dendrite", "axon"):
        c = geo[name]
        out.append(f"[compartments.{name}]")
        out.append(f"n_points = {c.n_points}")
        out.append(f"n_stems = {c.n_stems}")
        out.append(f"length_um = {_toml_value(c.length_um)}")
        out.append(f"area_um2 = {_toml_value(c.area_um2)}")
        out.append(f"mean_diameter_um = {_toml_value(c.mean_diameter_um)}")
        if name != "soma":
            out.append(f"R_axial_per_Ra_MOhm = {_toml_value(c.axial_resistance_MOhm(1.0))}"
                       "  # R_axial = value · Ra[Ω·cm]")
        out.append("")
    param_sets = [("generic", dict(GENERIC_PASSIVE), "cm 1 µF/cm², Ra 100 Ω·cm, g_pas 3e-5 S/cm²")]
    if "fit" in entry:
        fp = fitted_passive(cell.name)
        param_sets.append(("allen_fit", {k: fp[k] for k in ("cm", "ra", "g_pas")}, fp["source"]))
    for label, params, note in param_sets:
        g = derive_conductances(cell, kind=kind, **params)
        cm_s = _section_value("cm", params["cm"], "soma")
        out.append(f"[conductances.{label}]  # {note}")
        out.append(f"cm_uF_per_cm2 = {_toml_value(params['cm'])}")
        out.append(f"ra_ohm_cm = {_toml_value(params['ra'])}")
        out.append(f"g_pas_S_per_cm2 = {_toml_value(params['g_pas'])}")
        out.append(f"C_soma_pF = {_toml_value(cm_s * geo['soma'].area_um2 * _CM_UM2_TO_F * 1e12)}")
        for grp in (("basal", "apical") if kind == "pyramidal" else ("dendrite",)):
            out.append(f"G_axial_{grp}_nS = {_toml_value(1e9 * geo[grp].axial_conductance_S(params['ra']))}")
        for k, v in g.items():
            out.append(f"{k} = {_toml_value(v)}")
        out.append(f"tau_soma_ms = {_toml_value(1.0 / g['g_lk'])}  # 1 / g_lk")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def write_reduced(cell: Morphology | str | Path, path: str | Path | None = None) -> Path:
    """Write :func:`reduced_toml` to ``path`` (default ``<MORPHOLOGY_DIR>/<id>.reduced.toml``).

    Regenerate all bundled files with
    ``for c in available_cells(): write_reduced(c)``.
    """
    if not isinstance(cell, Morphology):
        cell = load_morphology(cell)
    target = Path(path) if path is not None else MORPHOLOGY_DIR / f"{cell.name}.reduced.toml"
    target.write_text(reduced_toml(cell), encoding="utf-8")
    return target
