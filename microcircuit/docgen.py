"""Generated references: neuron models, the scenario schema and the named registries.

Nothing here is written by hand: every row comes from the registries the simulator itself uses,

* the neuron models (:data:`microcircuit.models.MODELS`): parameters with unit, default, range and
  description, recordable variables, projection targets, presets and the equations of each
  model's docstring;
* the scenario schema (:mod:`microcircuit.scenario.schema`): every table and key the validator
  accepts, with type, default, allowed values, unit and description;
* the named registries: plasticity rules, losses, optimisers, activations, stimulus kinds and
  waveforms, connectors, weight distributions, data sets, update schemes.

So a parameter added to a model, or a key added to the schema, appears in the reference without
anyone editing a page. The same source serves the documentation site (markdown:
:func:`models_markdown`, :func:`schema_markdown`, :func:`registries_markdown`,
:func:`write_reference_pages`) and the terminal (:func:`models_text`, :func:`schema_text`, behind
``microcircuit models [NAME]`` and ``microcircuit schema [TABLE]``).
"""
from __future__ import annotations

import inspect
import math
import re
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

from .errors import MicrocircuitError

__all__ = ["models_markdown", "schema_markdown", "registries_markdown", "write_reference_pages",
           "models_text", "schema_text", "schema_tables", "UnknownReferenceError"]


class UnknownReferenceError(MicrocircuitError, LookupError):
    """``microcircuit models NAME`` / ``schema TABLE`` named something that does not exist."""


def _unknown(what, name, options):
    from .scenario.validate import _suggest
    return UnknownReferenceError(f"unknown {what} {name!r}" + _suggest(name, options))


# ------------------------------------------------------------------------------------ formatting
_TYPE_NAMES = {"float": "number", "int": "integer", "bool": "boolean", "str": "string", "list": "array",
               "table": "table", "any": "any", "number_or_list": "number or array",
               "activation": "string"}


def _fmt_number(x):
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
        return f"{x:g}" if abs(x) >= 1e-4 or x == 0 else repr(x)
    return str(x)


def toml_value(v) -> str:
    """A default as it would be written in a scenario file (``""`` for no default)."""
    if v is None:
        return ""
    if isinstance(v, (bool, int, float)):
        return _fmt_number(v)
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k} = {toml_value(x)}" for k, x in v.items()) + "}"
    return str(v)


def bounds_text(low=None, high=None, strict_low=False, choices=None, sep=", ") -> str:
    """Allowed values: the choices, or the bounds as ``> 0``, ``>= 0, <= 1``."""
    if choices:
        return sep.join(map(str, choices))
    parts = []
    if low is not None:
        parts.append((">" if strict_low else ">=") + " " + _fmt_number(low))
    if high is not None:
        parts.append("<= " + _fmt_number(high))
    return ", ".join(parts)


_CODE = re.compile(r"(`[^`]*`)")


def md_cell(text) -> str:
    """Text safe inside a markdown table cell: one line, ``|`` escaped everywhere (GFM tables allow
    ``\\|`` inside code spans too), and outside code spans the characters that markdown would read
    as HTML or emphasis (``< > *``) escaped."""
    s = " ".join(str(text).split())
    out = []
    for part in _CODE.split(s):
        if part.startswith("`") and part.endswith("`") and len(part) >= 2:
            out.append(part.replace("|", "\\|"))
        else:
            out.append(re.sub(r"([\\|<>*$])", r"\\\1", part))
    return "".join(out)


def md_code(text) -> str:
    """``text`` as a code span (empty text stays empty)."""
    s = str(text)
    if not s:
        return ""
    tick = "``" if "`" in s else "`"
    pad = " " if s.startswith("`") or s.endswith("`") else ""
    return f"{tick}{pad}{s}{pad}{tick}"


def md_table(header, rows) -> str:
    lines = ["| " + " | ".join(md_cell(h) for h in header) + " |",
             "|" + "|".join("---" for _ in header) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(c if isinstance(c, _Raw) else md_cell(c) for c in r) + " |")
    return "\n".join(lines)


class _Raw(str):
    """A cell already formatted as markdown (code spans); only ``|`` is escaped."""

    def __new__(cls, s):
        return super().__new__(cls, _escape_pipes(s))


def _escape_pipes(s):
    return " ".join(str(s).split()).replace("|", "\\|")


def _code_cell(v):
    return _Raw(md_code(v)) if v not in ("", None) else ""


def text_table(header, rows, indent="  ", max_last=None) -> str:
    """Plain aligned columns; the last column is wrapped to ``max_last`` characters when given."""
    rows = [[str(c) for c in r] for r in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in rows)) if rows else len(str(h)) for i, h in enumerate(header)]
    if max_last:
        widths[-1] = min(widths[-1], max(max_last, len(str(header[-1]))))
    out = []

    def line(cells):
        head = "  ".join(c.ljust(w) for c, w in zip(cells[:-1], widths[:-1]))
        last = cells[-1]
        if max_last and len(last) > max_last:
            wrapped = textwrap.wrap(last, max_last) or [""]
            pad = " " * (len(head) + 2) if head else ""
            return [indent + (head + "  " if head else "") + wrapped[0]] + [indent + pad + w for w in wrapped[1:]]
        return [(indent + (head + "  " if head else "") + last).rstrip()]

    out += line([str(h) for h in header])
    out.append(indent + "  ".join("-" * w for w in widths))
    for r in rows:
        out += line(r)
    return "\n".join(out)


# RST (docstrings) -> markdown / plain text
_ROLE = re.compile(r":(?:math|mod|func|class|meth|attr|data|obj|ref):`~?([^`]*)`")


def rst_to_markdown(doc: str) -> str:
    """The reStructuredText of a module docstring as MyST/CommonMark: ``.. math::`` blocks become
    fenced ``{math}`` blocks (a plain code block to a CommonMark reader), inline roles and double
    backquotes become code spans."""
    lines = inspect.cleandoc(doc or "").splitlines()
    out, i = [], 0
    while i < len(lines):
        ln = lines[i]
        if ln.strip().startswith(".. math::"):
            i += 1
            block = []
            while i < len(lines) and (not lines[i].strip() or lines[i].startswith((" ", "\t"))):
                block.append(lines[i])
                i += 1
            while block and not block[-1].strip():
                block.pop()
            while block and not block[0].strip():
                block.pop(0)
            out += ["```{math}", textwrap.dedent("\n".join(block)), "```", ""]
            continue
        s = _ROLE.sub(lambda m: md_code(m.group(1)), ln)
        s = re.sub(r"``([^`]+)``", lambda m: md_code(m.group(1)), s)
        s = _escape_outside_code(s)
        if s.lstrip().startswith("#"):
            s = "\\" + s.lstrip()          # a docstring line must not become a heading
        out.append(s)
        i += 1
    return "\n".join(out).strip() + "\n"


def _escape_outside_code(s):
    parts = _CODE.split(s)
    return "".join(p if p.startswith("`") else re.sub(r"(?<!\\)([<>])", r"\\\1", p) for p in parts)


def rst_to_text(doc: str) -> str:
    """The docstring for a terminal: roles and double backquotes dropped, math blocks indented."""
    s = inspect.cleandoc(doc or "")
    s = _ROLE.sub(lambda m: m.group(1), s)
    s = re.sub(r"``([^`]+)``", r"\1", s)
    s = re.sub(r"^\s*\.\. math::\s*$", "", s, flags=re.M)
    return re.sub(r"\n{3,}", "\n\n", s).strip()


def _first_paragraph(doc):
    text = inspect.cleandoc(doc or "").split("\n\n")[0]
    return " ".join(text.split())


# ------------------------------------------------------------------------------------ models
def _models():
    from .models import MODELS
    return MODELS


def _model(name):
    models = _models()
    if name not in models:
        raise _unknown("neuron model", name, models)
    return models[name]


def _param_rows(m):
    return [(p.name, p.unit if p.unit not in ("", None) else "", toml_value(p.default),
             bounds_text(p.low, p.high, p.strict_low, p.choices), "yes" if p.per_neuron else "", p.doc)
            for p in m.parameters.values()]


def _var_rows(m):
    return [(v.name, v.unit, ", ".join(v.compartments) if v.compartments else "", v.long_name)
            for v in m.variables.values()]


def _presets_for(m):
    from .models import PRESETS
    if "preset" not in m.parameters:
        return None
    keys = [k for k in dict.fromkeys(k for p in PRESETS.values() for k in p) if k in m.parameters]
    return keys, {n: p for n, p in PRESETS.items()}


def _model_markdown(m, shown_docs):
    out = [f"## {m.name}", ""]
    out.append(f"Compartments: {', '.join(md_code(c) for c in m.compartments)}."
               + (" An input population: its rate is set by a stimulus and it receives no projections."
                  if m.is_input else ""))
    out.append("")
    if m.doc in shown_docs:
        out += [f"Equations: as for {md_code(shown_docs[m.doc])} above (the same module).", ""]
    else:
        shown_docs[m.doc] = m.name
        out += [rst_to_markdown(m.doc)]
    out += ["### Parameters", ""]
    if m.parameters:
        out.append(f"Keys of a `[[populations]]` entry with `model = \"{m.name}\"`. A parameter marked *per "
                   "neuron* also takes an array (one value per neuron) or a distribution table "
                   "(`{dist = ...}`, see the schema reference).")
        out.append("")
        rows = [(_code_cell(n), u, _code_cell(d), b, pn, doc) for n, u, d, b, pn, doc in _param_rows(m)]
        out.append(md_table(["name", "unit", "default", "allowed", "per neuron", "description"], rows))
    else:
        out.append("None.")
    out.append("")
    pr = _presets_for(m)
    if pr:
        keys, presets = pr
        out += ["### Presets", "",
                "Defaults of the parameters left empty above, by `preset` (conductances in 1/ms):", ""]
        out.append(md_table(["preset"] + keys,
                            [[_code_cell(n)] + [_fmt_number(p.get(k, "")) for k in keys] for n, p in presets.items()]))
        out.append("")
    out += ["### Recordable variables", "",
            "Names for `variables` in a `[[recordings]]` entry of this population.", ""]
    out.append(md_table(["name", "unit", "compartments", "description"],
                        [(_code_cell(n), u, c, d) for n, u, c, d in _var_rows(m)]))
    out.append("")
    out += ["### Projection targets", ""]
    if m.ports:
        out.append("Values of `target` in a `[[projections]]` entry whose `post` is this population: "
                   + ", ".join(md_code(p) for p in m.ports) + ".")
    else:
        out.append("None: this population receives no projections.")
    out.append("")
    return "\n".join(out)


def models_markdown(name: str | None = None) -> str:
    """The neuron-model reference (all models, or the one called ``name``) as markdown."""
    models = _models()
    selected = [_model(name)] if name is not None else list(models.values())
    title = f"Neuron model `{name}`" if name is not None else "Neuron models"
    out = [f"# {title}", ""]
    if name is None:
        out += ["Generated from the model registry (`microcircuit.models.MODELS`); each model declares its "
                "parameters and recordable variables once, and the same table drives scenario validation, "
                "the compiled program and the units of recordings. A population picks its model with "
                "`model = \"...\"` (default `rate`). In the terminal: `microcircuit models [NAME]`.", "",
                "Units are fixed: time in ms, conductances in 1/ms (capacitance 1), potentials and rates "
                "dimensionless (unit `1`).", ""]
        out.append(md_table(["model", "compartments", "parameters", "description"],
                            [(_code_cell(m.name), ", ".join(m.compartments), str(len(m.parameters)),
                              _first_paragraph(m.doc)) for m in models.values()]))
        out.append("")
    shown = {}
    for m in selected:
        out.append(_model_markdown(m, shown))
    return "\n".join(out).rstrip() + "\n"


def models_text(name: str | None = None) -> str:
    """``microcircuit models [NAME]``: the list of models, or one model's parameters and variables."""
    models = _models()
    if name is None:
        rows = [(m.name, ", ".join(m.compartments), _first_paragraph(m.doc)) for m in models.values()]
        return ("Neuron models (a population's model = \"...\"):\n"
                + text_table(["model", "compartments", "description"], rows, max_last=70)
                + "\n\nmicrocircuit models NAME prints a model's parameters (unit, default, allowed values) "
                  "and recordable variables.")
    m = _model(name)
    out = [f"Neuron model '{m.name}'  (compartments: {', '.join(m.compartments)})", ""]
    out += [textwrap.indent(rst_to_text(m.doc), "  "), ""]
    out.append("Parameters (keys of a [[populations]] entry; per neuron: also an array or {dist = ...}):")
    if m.parameters:
        rows = [(n, u or "-", d or "-", b or "-", "yes" if pn else "no", doc)
                for n, u, d, b, pn, doc in _param_rows(m)]
        out.append(text_table(["name", "unit", "default", "allowed", "per neuron", "description"], rows,
                              max_last=60))
    else:
        out.append("  none")
    pr = _presets_for(m)
    if pr:
        keys, presets = pr
        out += ["", "Presets (defaults of the parameters without one, by preset; 1/ms):"]
        out.append(text_table(["preset"] + keys, [[n] + [_fmt_number(p.get(k, "")) for k in keys]
                                                  for n, p in presets.items()]))
    out += ["", "Recordable variables ([[recordings]] variables = [...]):"]
    out.append(text_table(["name", "unit", "compartments", "description"],
                          [(n, u, c or "-", d) for n, u, c, d in _var_rows(m)]))
    out += ["", "Projection targets: " + (", ".join(m.ports) if m.ports else "none (receives no projections)")]
    return "\n".join(out)


# ------------------------------------------------------------------------------------ schema
@dataclass
class SchemaTable:
    """One table of a scenario file: ``name`` (as ``microcircuit schema NAME`` takes it), where it is
    written (``where``), its fields, and named sub-tables (e.g. the fields of each waveform)."""
    name: str
    where: str
    fields: dict
    intro: str = ""
    variants: dict = field(default_factory=dict)      # title -> fields (stimulus waveforms)
    aliases: tuple = ()


def schema_tables() -> list[SchemaTable]:
    """Every table of a scenario file, in file order, straight from :mod:`microcircuit.scenario.schema`."""
    from .scenario import schema as S
    models = _models()
    model_keys = "; ".join(f"{m}: " + ", ".join(models[m].parameters) if models[m].parameters else f"{m}: none"
                           for m in models)
    return [
        SchemaTable("scenario", "[scenario]", S.SCENARIO, "Name and description of the experiment."),
        SchemaTable("simulation", "[simulation]", S.SIMULATION, "Time step, duration and numerics (required)."),
        SchemaTable("populations", "[[populations]]", S.POPULATION,
                    "One entry per population. Besides these keys an entry takes the parameters of its model "
                    "(see the neuron-model reference), by model: " + model_keys + "."),
        SchemaTable("distribution", "populations[i].<parameter> = {dist = ...}",
                    S.DISTRIBUTION, "Values drawn per neuron, e.g. `tau_m = {dist = \"uniform\", low = 5, high = 15}`.",
                    aliases=("dist",)),
        SchemaTable("projections", "[[projections]]", S.PROJECTION, "One entry per projection `pre -> post.target`."),
        SchemaTable("connector", "projections[i].connector", S.CONNECTOR, "Which pairs are connected.",
                    aliases=("projections.connector",)),
        SchemaTable("weights", "projections[i].weights", S.WEIGHTS, "Initial weights.",
                    aliases=("projections.weights",)),
        SchemaTable("plasticity", "projections[i].plasticity", S.PLASTICITY, "Learning rule of the weights.",
                    aliases=("projections.plasticity",)),
        SchemaTable("stimuli", "[[stimuli]]", S.STIMULUS,
                    "One entry per stimulus; besides these keys an entry takes the fields of its waveform.",
                    variants={f"waveform = \"{w}\"": f for w, f in S.WAVEFORM_FIELDS.items()}),
        SchemaTable("recordings", "[[recordings]]", S.RECORDING,
                    "What to record; the variables of each model are listed in the neuron-model reference."),
        SchemaTable("neurons", "recordings[i].neurons = {start, stop, step}", S.NEURON_RANGE,
                    "A slice of the population's neurons.", aliases=("recordings.neurons",)),
        SchemaTable("output", "[output]", S.OUTPUT, "The recording store."),
        SchemaTable("templates", "[[templates]]", S.TEMPLATE,
                    "Generators of populations and projections, expanded before validation."),
        SchemaTable("protocol", "[protocol]", S.PROTOCOL,
                    "Supervised learning from a data set (`microcircuit run` trains instead of simulating); the "
                    "data sets and their `dataset_args` are listed in the registries reference."),
        SchemaTable("sweep", "[sweep]", S.SWEEP, "Parameter sweeps (`microcircuit sweep`)."),
        SchemaTable("analysis", "[analysis]", S.ANALYSIS, "Analyses reported after `microcircuit run`."),
        SchemaTable("lag", "analysis.lag[i]", S.LAG, "One input-output pair.", aliases=("analysis.lag",)),
    ]


def _section(t: SchemaTable) -> str:
    """The top-level section a table belongs to, from where it is written."""
    return re.match(r"\[*([A-Za-z_]+)", t.where).group(1)


def _schema_table(name):
    tables = schema_tables()
    for t in tables:
        if name == t.name or name in t.aliases:
            return t
    names = [t.name for t in tables] + [a for t in tables for a in t.aliases]
    raise _unknown("scenario table", name, names)


def _field_rows(fields, allowed_sep=", "):
    return [(k, _TYPE_NAMES.get(f.type, f.type), "yes" if f.required else "", toml_value(f.default), f.unit,
             bounds_text(f.low, f.high, f.strict_low, f.choices, allowed_sep), f.doc)
            for k, f in fields.items()]


def _choice_docs():
    """The documented meanings of choice values, by the tuple of choices they define."""
    from .scenario import schema as S
    from .models.base import LOSSES
    out = {}
    for reg in (S.PLASTICITY_RULES, S.OPTIMIZERS, S.CONNECTORS, S.WEIGHT_DISTS, S.FEEDBACK_MODES, S.SIGNALS,
                S.STIMULUS_KINDS, S.PROTOCOL_LOSSES, S.LR_SCHEDULES, S.READOUTS, LOSSES):
        out[tuple(reg)] = reg
    return out


def _table_markdown(t: SchemaTable, level="##"):
    out = [f"{level} {t.name}", "", f"Written as {md_code(t.where)}. {t.intro}".rstrip(), ""]
    rows = [(_code_cell(k), ty, req, _code_cell(d), u, _Raw(", ".join(md_code(x) for x in f.choices))
             if f.choices else al, doc)
            for (k, ty, req, d, u, al, doc), f in zip(_field_rows(t.fields), t.fields.values())]
    out.append(md_table(["key", "type", "required", "default", "unit", "allowed", "description"], rows))
    out.append("")
    docs = _choice_docs()
    for k, f in t.fields.items():
        meaning = docs.get(tuple(f.choices or ()))
        if meaning:
            out += [f"Values of {md_code(k)}:", ""]
            out += [f"- {md_code(v)}: {md_cell(d)}" for v, d in meaning.items()]
            out.append("")
    for title, fields in t.variants.items():
        out += [f"{level}# {t.name} with {md_code(title)}", ""]
        out.append(md_table(["key", "type", "required", "default", "unit", "allowed", "description"],
                            [(_code_cell(k), ty, req, _code_cell(d), u, al, doc)
                             for k, ty, req, d, u, al, doc in _field_rows(fields)]))
        out.append("")
    return "\n".join(out)


def schema_markdown(table: str | None = None) -> str:
    """The scenario-file reference (every table, or the one called ``table``) as markdown."""
    from .scenario import schema as S
    if table is not None:
        t = _schema_table(table)
        return f"# Scenario table `{t.name}`\n\n" + _table_markdown(t).split("\n", 2)[2].rstrip() + "\n"
    tables = schema_tables()
    out = ["# Scenario file reference", "",
           "Generated from the scenario schema (`microcircuit.scenario.schema`), the same tables the validator "
           "checks a file against: a key not listed here is rejected with a did-you-mean, and every key "
           "listed is accepted. In the terminal: `microcircuit schema [TABLE]`.", "",
           "## Sections", "",
           "The top level of a scenario file holds these sections (`table`: `[name]`, written once; "
           "`array`: `[[name]]`, one entry per item).", ""]
    out.append(md_table(["section", "kind", "tables below"],
                        [(_code_cell(k), kind, _Raw(", ".join(md_code(t.name) for t in tables if _section(t) == k)))
                         for k, kind in S.TOP_LEVEL.items()]))
    out.append("")
    for t in tables:
        out.append(_table_markdown(t))
    return "\n".join(out).rstrip() + "\n"


def schema_text(table: str | None = None) -> str:
    """``microcircuit schema [TABLE]``: the list of tables, or one table's keys."""
    tables = schema_tables()
    if table is None:
        rows = [(t.name, t.where, t.intro) for t in tables]
        return ("Scenario tables:\n" + text_table(["table", "written as", "what"], rows, max_last=60)
                + "\n\nmicrocircuit schema TABLE prints a table's keys (type, default, unit, allowed values).")
    t = _schema_table(table)
    out = [f"Scenario table '{t.name}'  (written as {t.where})",
           textwrap.fill(t.intro, 100, initial_indent="  ", subsequent_indent="  "), ""]
    hdr = ["key", "type", "required", "default", "unit", "allowed", "description"]

    def rows(fields):
        return [(k, ty, req or "no", d or "-", u or "-", al or "-", doc)
                for k, ty, req, d, u, al, doc in _field_rows(fields, " | ")]
    out.append(text_table(hdr, rows(t.fields), max_last=50))
    docs = _choice_docs()
    for k, f in t.fields.items():
        meaning = docs.get(tuple(f.choices or ()))
        if meaning:
            out += ["", f"Values of {k}:"]
            out += [f"  {v}: {d}" for v, d in meaning.items()]
    for title, fields in t.variants.items():
        out += ["", f"With {title}:", text_table(hdr, rows(fields), max_last=50)]
    return "\n".join(out)


# ------------------------------------------------------------------------------------ registries
def _activation_table():
    """Rows (name, phi(x), parameters) from the table in :mod:`microcircuit.activations`' docstring."""
    from . import activations as A
    rows = {}
    lines = (A.__doc__ or "").splitlines()
    rules = [i for i, ln in enumerate(lines) if ln.startswith("====")]
    if len(rules) >= 3:
        cols = [m.span() for m in re.finditer(r"=+", lines[rules[0]])]
        for ln in lines[rules[1] + 1:rules[2]]:
            cells = [ln[a:(cols[j + 1][0] if j + 1 < len(cols) else None)].strip() for j, (a, _) in enumerate(cols)]
            name = cells[0].strip("`")
            rows[name] = cells[1:]
    return rows


def registries_markdown() -> str:
    """The named registries (rules, losses, optimisers, activations, stimuli, connectors, ...) as markdown."""
    import importlib
    from . import activations as A, stimuli as ST, circuit as CI
    C = importlib.import_module("microcircuit.compile")   # the package exports a function named compile
    from .datasets.registry import DATASETS
    from .models import MODELS, PRESETS
    from .models.base import LOSSES
    from .models.rate import TAU_RULES
    from .scenario import schema as S

    def kid(reg, name):
        return str(reg[name]) if name in reg else "—"

    out = ["# Registries", "",
           "Every named choice a scenario can make, generated from the registries in the code. Where the "
           "code keeps a registry of names only (kernel ids), the meaning comes from the schema's "
           "description of the choice; the kernel id column shows the id the compiled program uses.", ""]

    out += ["## Neuron models", "", "From `microcircuit.models.MODELS` (details in the neuron-model reference).", ""]
    out.append(md_table(["model", "compartments", "recordable variables", "description"],
                        [(_code_cell(m.name), ", ".join(m.compartments), ", ".join(m.variables),
                          _first_paragraph(m.doc)) for m in MODELS.values()]))
    out += ["", "### Conductance presets", "",
            "From `microcircuit.models.PRESETS` (parameter `preset` of the pyramidal models; 1/ms).", ""]
    keys = list(dict.fromkeys(k for p in PRESETS.values() for k in p))
    out.append(md_table(["preset"] + keys, [[_code_cell(n)] + [_fmt_number(p.get(k, "")) for k in keys]
                                            for n, p in PRESETS.items()]))
    out.append("")

    out += ["## Activations", "",
            "Transfer functions `phi` (population parameter `activation`); names and kernel ids from "
            "`microcircuit.activations.ACTIVATIONS`, formulas from that module's table, default parameters "
            "(`activation_params`) from `DEFAULT_PARAMS`.", ""]
    formulas = _activation_table()
    out.append(md_table(["name", "kernel id", "phi(x)", "parameters", "default parameters"],
                        [(_code_cell(n), str(i), formulas.get(n, ["", ""])[0], formulas.get(n, ["", ""])[1],
                          toml_value(list(A.DEFAULT_PARAMS[n])) if n in A.DEFAULT_PARAMS else "")
                         for n, i in A.ACTIVATIONS.items()]))
    out.append("")

    def choice_section(title, intro, reg, ids=None, extra=None):
        sec = [f"## {title}", "", intro, ""]
        hdr = ["name"] + (["kernel id"] if ids is not None else []) + ["meaning"]
        rows = []
        for n, d in reg.items():
            rows.append([_code_cell(n)] + ([kid(ids, n)] if ids is not None else []) + [d])
        sec.append(md_table(hdr, rows))
        if ids is not None:
            missing = [n for n in ids if n not in reg]
            if missing:
                sec += ["", "Kernel ids without a documented meaning: " + ", ".join(md_code(n) for n in missing) + "."]
        if extra:
            sec += ["", extra]
        sec.append("")
        return sec

    out += choice_section("Plasticity rules", "`rule` of a projection's `plasticity` table "
                          "(`microcircuit.registry.PLASTICITY_RULES`: names, kernel ids, meanings). "
                          "`eta` is the learning rate in 1/ms; `e` the error, `r` rates, `v` dendritic potentials.",
                          S.PLASTICITY_RULES, C.RULE_IDS)
    out += choice_section("Optimisers", "`optimizer` of a `plasticity` table and `tau_optimizer` of a rate "
                          "population (`microcircuit.registry.OPTIMIZERS`).",
                          S.OPTIMIZERS, C.OPTIMIZER_IDS)
    out += choice_section("Losses", "`loss` of an output `rate` or `error` population "
                          "(`microcircuit.registry.LOSSES`). The output error "
                          "enters as `eps = beta e_trg`; `y` is the target of a `target` stimulus.",
                          LOSSES, C.LOSS_IDS)
    out += choice_section("Protocol losses", "`loss` of a `[protocol]` table: the metric reported "
                          "(`schema.PROTOCOL_LOSSES`).", S.PROTOCOL_LOSSES)
    out += choice_section("Time-constant learning", "`tau_learning` of a `rate` population "
                          "(`microcircuit.registry.TAU_RULES`); "
                          "`tau_m` is clamped at `tau_min`.", TAU_RULES, C.TAU_RULE_IDS)
    out += choice_section("Stimulus kinds", "`kind` of a `[[stimuli]]` entry (`schema.STIMULUS_KINDS`; "
                          "kernel ids `stimuli.KIND_IDS`).", S.STIMULUS_KINDS, ST.KIND_IDS)

    out += ["## Stimulus waveforms", "",
            "`waveform` of a `[[stimuli]]` entry: the classes in `microcircuit.stimuli.STIMULUS_TYPES` (meaning "
            "from each class's docstring), with the keys each takes (`schema.WAVEFORM_FIELDS`).", ""]
    wf_choices = S.STIMULUS["waveform"].choices
    rows = []
    for n in dict.fromkeys(list(ST.STIMULUS_TYPES) + list(wf_choices)):
        cls = ST.STIMULUS_TYPES.get(n)
        rows.append((_code_cell(n), cls.__name__ if cls else "—",
                     _Raw(", ".join(md_code(k) for k in S.WAVEFORM_FIELDS.get(n, {}))),
                     rst_to_text(cls.__doc__).split("\n\n")[0] if cls else ""))
    out.append(md_table(["waveform", "class", "keys", "meaning"], rows))
    out.append("")

    out += choice_section("Connectors", "`kind` of a projection's `connector` table (`schema.CONNECTORS`).", S.CONNECTORS)
    out += choice_section("Weight distributions", "`dist` of a projection's `weights` table "
                          "(`schema.WEIGHT_DISTS`).", S.WEIGHT_DISTS)
    out += choice_section("Feedback", "`feedback` of a projection (`schema.FEEDBACK_MODES`).", S.FEEDBACK_MODES)
    out += choice_section("Projection signals", "`signal` of a projection (`schema.SIGNALS`).", S.SIGNALS)
    schemes = _bullets(C.__doc__)
    out += choice_section("Update schemes", "`scheme` of `[simulation]` (" + S.SIMULATION["scheme"].doc + "). "
                          "`compile.SCHEMES` holds names and kernel ids only; the meaning is taken from the "
                          "schedule described in the `microcircuit.compile` module docstring.",
                          {n: schemes.get(n, "") for n in C.SCHEMES}, C.SCHEMES)
    out += choice_section("Learning-rate schedules", "`lr_schedule` of `[protocol]` (`schema.LR_SCHEDULES`).",
                          S.LR_SCHEDULES)
    out += choice_section("Read-outs", "`readout` of `[protocol]` (`schema.READOUTS`).", S.READOUTS)
    dist = S.DISTRIBUTION["dist"]
    out += ["## Per-neuron distributions", "",
            f"`dist` of a per-neuron parameter given as a table (`schema.DISTRIBUTION`): "
            f"{', '.join(md_code(c) for c in dist.choices)}. {md_cell(dist.doc)}.", ""]

    out += ["## Data sets", "",
            "`dataset` of `[protocol]`, with the keys its `dataset_args` table accepts "
            "(`microcircuit.datasets.registry.DATASETS`).", ""]
    for e in DATASETS.values():
        out += [f"### {e.name}", "", md_cell(e.doc) + ".", ""]
        if e.args:
            out.append(md_table(["argument", "type", "allowed", "description"],
                                [(_code_cell(k), a.type + (f" ×{a.length}" if a.length else ""),
                                  _arg_range(a), a.doc) for k, a in e.args.items()]))
        else:
            out.append("No arguments.")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def _bullets(doc):
    """``{name: text}`` of the ``* ``name`` — text`` bullets of a docstring."""
    out = {}
    for m in re.finditer(r"^\* ``(\w+)`` [—-] (.*?)(?=^\* |^\S|\Z)", inspect.cleandoc(doc or ""), re.M | re.S):
        out[m.group(1)] = " ".join(m.group(2).replace("``", "").split())
    return out


def _arg_range(a):
    if a.low is None and a.high is None:
        return ""
    lo = "-inf" if a.low is None else _fmt_number(a.low)
    hi = "inf" if a.high is None else _fmt_number(a.high)
    left = "(" if a.strict_low or a.low is None else "["
    right = ")" if a.strict_high or a.high is None else "]"
    return f"{left}{lo}, {hi}{right}"


# ------------------------------------------------------------------------------ command line
def _cli_usage(parser) -> str:
    """The usage line of ``parser`` at a fixed width (not the terminal's), without ``usage:``."""
    import argparse
    fmt = argparse.HelpFormatter(parser.prog, width=100)
    fmt.add_usage(parser.usage, parser._actions, parser._mutually_exclusive_groups, prefix="")
    return fmt.format_help().strip()


def _cli_argument(action) -> str:
    if not action.option_strings:
        return action.metavar or action.dest
    if action.nargs == 0:
        return ", ".join(action.option_strings)
    metavar = action.metavar or action.dest.upper()
    return ", ".join(f"{o} {metavar}" for o in action.option_strings)


def _cli_help(parser, action) -> str:
    import argparse
    text = action.help or ""
    if "%" in text:
        text = argparse.HelpFormatter(parser.prog)._expand_help(action)
    if action.choices is not None and not isinstance(action.choices, dict):
        text = (text + " " if text else "") + "One of: " + ", ".join(str(c) for c in action.choices) + "."
    if not action.option_strings and action.nargs == "?":
        text = "(optional) " + text
    if isinstance(action, argparse._AppendAction):
        text += " (may be given several times)"
    return text.strip()


def _cli_default(action):
    import argparse
    d = action.default
    if d is None or d is False or d == [] or d is argparse.SUPPRESS or action.nargs == 0:
        return ""
    return _code_cell(d)


def _cli_rows(parser):
    import argparse
    rows = []
    for a in parser._actions:
        if isinstance(a, argparse._SubParsersAction):
            continue
        rows.append((_code_cell(_cli_argument(a)), _cli_help(parser, a), _cli_default(a)))
    return rows


def _cli_subcommands(parser):
    """``(name, help, subparser)`` for every subcommand of ``parser``, in the order they were added."""
    import argparse
    out = []
    for a in parser._actions:
        if isinstance(a, argparse._SubParsersAction):
            helps = {c.dest: c.help for c in a._choices_actions}
            out += [(name, helps.get(name, ""), sp) for name, sp in a.choices.items()]
    return out


def cli_markdown(parser=None) -> str:
    """The command-line reference as markdown, walked from the argparse parser
    (:func:`microcircuit.cli.build_parser` unless ``parser`` is given): for every subcommand its help
    text, the docstring of the function it calls, the usage line and a table of its arguments with
    their help and defaults. Nothing here is listed by hand, so it cannot drift from ``--help``."""
    from . import cli
    if parser is None:
        parser = cli.build_parser()
    out = ["# Command line", "",
           "Generated from the argument parser (`microcircuit.cli.build_parser`); "
           "`microcircuit COMMAND --help` prints the same options in the terminal.", ""]
    if parser.description:
        out += [md_cell(parser.description), ""]
    out += ["```text", _cli_usage(parser), "```", ""]
    overview = inspect.cleandoc(cli.__doc__ or "").split("\n\n", 1)   # without the summary line
    if len(overview) > 1:
        out += [rst_to_markdown(overview[1]).rstrip(), ""]
    subs = _cli_subcommands(parser)
    out.append(md_table(["command", "what it does"],
                        [(_Raw(f"[{md_code(name)}](#microcircuit-{name})"), h or "") for name, h, _ in subs]))
    out.append("")
    for name, help_text, sp in subs:
        out += [f"## microcircuit {name}", ""]
        if help_text:
            out += [md_cell(help_text[:1].upper() + help_text[1:]) + ("" if help_text.endswith(".") else "."), ""]
        func = sp.get_default("func")
        doc = inspect.getdoc(func) if func is not None else None
        if doc:
            out += [rst_to_markdown(doc).rstrip(), ""]
        out += ["```text", _cli_usage(sp), "```", ""]
        out += [md_table(["argument", "help", "default"], _cli_rows(sp)), ""]
    return "\n".join(out).rstrip() + "\n"


# ------------------------------------------------------------------------------------ pages
def write_reference_pages(directory) -> list[Path]:
    """Write ``models.md``, ``schema.md``, ``registries.md`` and ``cli.md`` into ``directory``
    (created if missing)."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    paths = []
    for fname, text in (("models.md", models_markdown()), ("schema.md", schema_markdown()),
                        ("registries.md", registries_markdown()), ("cli.md", cli_markdown())):
        p = d / fname
        p.write_text(text, encoding="utf-8")
        paths.append(p)
    return paths
