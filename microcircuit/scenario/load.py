"""Loading scenario files: TOML -> dict -> overrides -> templates -> validation -> Scenario."""
from __future__ import annotations

import copy
import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from ..circuit import layered_tables
from ..errors import ScenarioError, MicrocircuitError
from . import schema as S
from .validate import validate, Validator, _suggest

_SEG = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(\[(\d+)\])?$")


def parse_value(text: str):
    """A ``--set`` value: TOML syntax (numbers, true/false, arrays, quoted strings), else a bare string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except (tomllib.TOMLDecodeError, RecursionError):
        return text


class ScenarioWarning(UserWarning):
    """A scenario that is valid but will probably not do what its author wants (e.g. run very slowly)."""


def nesting_problem(data, max_depth, root=""):
    """The dotted path and message of the first place ``data`` nests deeper than ``max_depth``
    tables/arrays, or None. Iterative, so a 10^5-deep structure cannot exhaust the stack."""
    stack = [(data, root, 0)]
    while stack:
        node, path, depth = stack.pop()
        if depth > max_depth:
            return (path or "", f"nested {depth}+ levels deep (tables/arrays), over the limit of {max_depth} "
                                f"(max_toml_depth); a scenario needs a handful; flatten it")
        if isinstance(node, dict):
            stack.extend((v, f"{path}.{k}" if path else str(k), depth + 1) for k, v in node.items())
        elif isinstance(node, list):
            stack.extend((v, f"{path}[{i}]", depth + 1) for i, v in enumerate(node))
    return None


def read_scenario_text(path, limits=None):
    """The text of a scenario file, read with a size limit (at most limit + 1 bytes, so /dev/zero or a
    huge file is refused at once). Raises ScenarioError naming the file."""
    from .. import limits as L
    lim = limits or L.current()
    src = str(path)
    p = Path(path)
    if not p.exists():
        raise ScenarioError([("", f"file not found: {path}; check the path or list bundled scenarios in "
                                  f"scenarios/")], src)
    if p.is_dir():
        raise ScenarioError([("", f"{path} is a folder; give a scenario .toml file")], src)
    try:
        with open(p, "rb") as fh:
            raw = fh.read(lim.max_scenario_bytes + 1)
    except OSError as exc:
        raise ScenarioError([("", f"cannot read file: {exc}")], src) from exc
    if len(raw) > lim.max_scenario_bytes:
        raise ScenarioError([("", f"file is larger than {L.fmt_bytes(lim.max_scenario_bytes)} "
                                  f"(max_scenario_bytes); a scenario is a few KiB of TOML - put large data "
                                  f"in .npy files it names, or raise MICROCIRCUIT_MAX_SCENARIO_BYTES")], src)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ScenarioError([("", f"cannot read file: not UTF-8 text ({exc}); save it as UTF-8")], src) from exc


def parse_toml(text, source=None):
    """``tomllib.loads`` with clean errors: bad TOML and nesting too deep for the parser."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError([("", f"not valid TOML: {exc}")], source) from exc
    except RecursionError:
        raise ScenarioError([("", "nested too deeply to parse (brackets or inline tables inside each other "
                                  "hundreds of levels deep); flatten the file")], source) from None


def apply_override(data: dict, dotted: str, value, source="--set"):
    """Set ``dotted`` (``simulation.dt``, ``populations[1].tau_m`` or ``populations.hidden.tau_m``)."""
    parts = dotted.split(".")
    node = data
    trail = []
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        m = _SEG.match(part)
        if not m:
            raise ScenarioError([(dotted, f"cannot parse '{part}'; use names like simulation.dt or "
                                          f"populations[0].tau_m")], source)
        key, idx = m.group(1), m.group(3)
        trail.append(part)
        if isinstance(node, list):
            # select a table of an array by its name, e.g. populations.hidden
            match = [t for t in node if isinstance(t, dict) and t.get("name") == key]
            if not match:
                names = [t.get("name") for t in node if isinstance(t, dict)]
                raise ScenarioError([(".".join(trail), f"no entry named '{key}'" + _suggest(key, [n for n in names if n]))],
                                    source)
            node = match[0]
            if last:
                raise ScenarioError([(dotted, "name a field of the entry, e.g. populations.hidden.tau_m")], source)
            continue
        if not isinstance(node, dict):
            raise ScenarioError([(".".join(trail), "is not a table")], source)
        if idx is not None:
            arr = node.get(key)
            if not isinstance(arr, list) or int(idx) >= len(arr):
                raise ScenarioError([(".".join(trail), f"no element {idx} (have {len(arr) if isinstance(arr, list) else 0})")],
                                    source)
            if last:
                arr[int(idx)] = value
                return
            node = arr[int(idx)]
            continue
        if last:
            node[key] = value
            return
        if key not in node:
            if depth == 0 and key in S.TOP_LEVEL and S.TOP_LEVEL[key] == "table":
                node[key] = {}
            elif depth == 0:
                raise ScenarioError([(key, "unknown section" + _suggest(key, S.TOP_LEVEL))], source)
            else:
                node[key] = {}
        node = node[key]


def expand_templates(data: dict, problems: list, origins: dict | None = None):
    """Expand ``[[templates]]`` (e.g. layered networks) into populations and projections.

    ``origins`` (if given) maps the dotted path of each generated field to the template field it came
    from (``populations[3].size`` -> ``templates[0].sizes[2]``), so that a limit names what to edit."""
    origins = {} if origins is None else origins
    temps = data.get("templates")
    if temps is None:
        return data
    V = Validator()
    pops = data.setdefault("populations", [])
    projs = data.setdefault("projections", [])
    if not isinstance(pops, list) or not isinstance(projs, list):
        return data
    for i, t in V.array_of_tables(temps, "templates"):
        path = f"templates[{i}]"
        V.table(t, S.TEMPLATE, path)
        if t.get("kind") == "dendritic_microcircuit":
            _expand_microcircuit(t, path, data, pops, projs, V, origins)
            continue
        for k in S.TEMPLATE_MICROCIRCUIT_ONLY:
            if k in t:
                V.add(f"{path}.{k}", "only read by kind = \"dendritic_microcircuit\"")
        sizes = t.get("sizes")
        if not _layer_sizes(sizes, 2):
            V.add(f"{path}.sizes", "must be an array of at least two integers >= 1 (input first)")
            continue
        prefix = t.get("prefix", "layer") if isinstance(t.get("prefix", "layer"), str) else "layer"
        inp = t.get("input", f"{prefix}0") if isinstance(t.get("input", ""), str) else f"{prefix}0"
        if not any(isinstance(p, dict) and p.get("name") == inp for p in pops):
            origins[f"populations[{len(pops)}].size"] = f"{path}.sizes[0]"
            pops.append({"name": inp, "model": "input", "size": sizes[0]})
        n_layers = len(sizes) - 1
        hidden = t.get("hidden", {}) if isinstance(t.get("hidden", {}), dict) else {}
        out = t.get("output", {}) if isinstance(t.get("output", {}), dict) else {}
        factors = t.get("eta_factors") or [1.0] * n_layers
        if not isinstance(factors, list) or len(factors) != n_layers:
            V.add(f"{path}.eta_factors", f"needs {n_layers} values (one per projection)")
            factors = [1.0] * n_layers
        for j, f in enumerate(factors):
            if isinstance(f, bool) or not isinstance(f, (int, float)) or not math.isfinite(f) or f < 0:
                V.add(f"{path}.eta_factors[{j}]", f"expected a finite number >= 0 (a factor of eta), got {f!r:.40}")
        eta = t.get("eta", 0.0)
        eta = float(eta) if isinstance(eta, (int, float)) and not isinstance(eta, bool) and eta > 0 else 0.0
        factors = [f if isinstance(f, (int, float)) and not isinstance(f, bool) else 0.0 for f in factors]
        t_pops, t_projs = layered_tables(
            sizes, hidden=hidden, output=out, weights=t["weights"] if isinstance(t.get("weights"), dict) else None,
            eta=eta, eta_factors=factors, feedback=t.get("feedback", "transpose"), input_name=inp,
            output_name=t.get("output_name", f"{prefix}{n_layers}"), prefix=prefix, projection_prefix=f"{prefix}_")
        for li, p in enumerate(t_pops[1:], start=1):
            origins[f"populations[{len(pops)}].size"] = f"{path}.sizes[{li}]"
            pops.append(p)
        projs.extend(t_projs)
    problems.extend(V.problems)
    data.pop("templates", None)
    return data


MAX_TEMPLATE_WEIGHTS = 5_000_000


def _number_or_list(v):
    ok = lambda x: isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x >= 0
    return v is None or ok(v) or (isinstance(v, list) and len(v) > 0 and all(ok(x) for x in v))


def _layer_sizes(sizes, n_min):
    """A template's ``sizes``: an array of at least ``n_min`` integers >= 1 (input first)."""
    return isinstance(sizes, list) and len(sizes) >= n_min and all(
        isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in sizes)


def _expand_microcircuit(t, path, data, pops, projs, V, origins):
    """``kind = "dendritic_microcircuit"``: the populations and projections that
    :func:`microcircuit.microcircuit.dendritic_microcircuit` builds from the same arguments (weights
    written as arrays, so the expanded scenario is the Python-built circuit, weight for weight)."""
    from ..microcircuit import dendritic_microcircuit
    for k in S.TEMPLATE_LAYERED_ONLY:
        if k in t:
            V.add(f"{path}.{k}", "not read by kind = \"dendritic_microcircuit\" (layered only)")
    sizes = t.get("sizes")
    if not _layer_sizes(sizes, 3):
        V.add(f"{path}.sizes", "must be an array of at least three integers >= 1: input, >= 1 hidden, output "
                               "(e.g. [9, 50, 20, 3])")
        return
    N = len(sizes) - 1
    # the template writes every weight matrix out as an array (up, down, ip, pi: about 4 n_k n_k+1 per
    # layer); refuse sizes whose arrays would not fit before drawing them
    n_w = sum(sizes[k] * sizes[k + 1] for k in range(N)) + 3 * sum(sizes[k] * sizes[k + 1] for k in range(1, N))
    if n_w > MAX_TEMPLATE_WEIGHTS:
        V.add(f"{path}.sizes", f"{n_w:.3g} weights; a dendritic_microcircuit template writes them out as arrays, "
                               f"at most {MAX_TEMPLATE_WEIGHTS:.0e} (build larger circuits with "
                               f"microcircuit.microcircuit.dendritic_microcircuit in Python)")
        return
    eta = {}
    for key, n in (("up", N), ("ip", N - 1), ("pi", N - 1), ("down", N - 1)):
        v = t.get(f"eta_{key}")
        if not _number_or_list(v):
            V.add(f"{path}.eta_{key}", f"expected a number >= 0 or a list of them, got {v!r:.40}")
        elif isinstance(v, list) and len(v) != n:
            V.add(f"{path}.eta_{key}", f"needs 1 or {n} values, got {len(v)}")
        elif v is not None:
            eta[key] = v
    w_max = t.get("w_max")
    if not _number_or_list(w_max) or (isinstance(w_max, list) and len(w_max) not in (1, 2)):
        V.add(f"{path}.w_max", f"expected a number > 0 or [hidden, output], got {w_max!r:.40}")
        w_max = None
    sim = data.get("simulation") if isinstance(data.get("simulation"), dict) else {}
    seed = t.get("seed", sim.get("seed", 0))
    names = {p.get("name") for p in pops if isinstance(p, dict)}
    if V.problems:
        return
    try:
        c = dendritic_microcircuit(
            sizes, preset=t.get("preset", "bern"), latent_equilibrium=bool(t.get("latent_equilibrium", False)),
            activation=t.get("activation", "softplus"), top_down=t.get("top_down", "fixed"), eta=eta,
            tau_w=float(t.get("tau_w", 0.0)), w_max=w_max, init=t.get("init", "self_predicting"),
            seed=seed if isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0 else 0,
            sigma=float(t.get("sigma", 0.0)), weight_scale=float(t.get("weight_scale", 1.0)))
    except (MicrocircuitError, ValueError, TypeError) as e:
        V.add(path, str(e))
        return
    for p in c.populations:
        if p.name in names:
            V.add(path, f"population '{p.name}' already exists (the template makes input, pyr1.., output, "
                        f"inter1..)")
            continue
        j = 0 if p.name == "input" else N if p.name == "output" else \
            int(p.name[3:]) if p.name.startswith("pyr") else int(p.name[5:]) + 1
        origins[f"populations[{len(pops)}].size"] = f"{path}.sizes[{j}]"
        pops.append({"name": p.name, "model": p.model, "size": p.size,
                     **{k: v for k, v in p.params.items() if v is not None}})
    for pr in c.projections:
        d = {"name": pr.name, "pre": pr.pre, "post": pr.post, "target": pr.target, "signal": pr.signal}
        if pr.connector.get("kind", "all_to_all") != "all_to_all":
            d["connector"] = dict(pr.connector)
        w = dict(pr.weights)
        if w.get("dist") == "array":
            w["value"] = [[float(x) for x in row] for row in w["value"]]
        d["weights"] = w
        if pr.rule != "none":
            d["plasticity"] = dict(pr.plasticity)
        projs.append(d)


@dataclass
class Scenario:
    """A validated scenario. ``build()`` returns a ready :class:`~microcircuit.simulation.Simulation`."""
    data: dict
    source: str | None = None
    text: str = ""
    base_dir: Path | None = None
    overrides: list = field(default_factory=list)
    warnings: list = field(default_factory=list)     # (dotted path, message): valid, but probably unwanted

    @property
    def name(self):
        return self.data.get("scenario", {}).get("name") or (Path(self.source).stem if self.source else "scenario")

    @property
    def simulation(self):
        return self.data["simulation"]

    def circuit(self):
        from .build import build_circuit
        return build_circuit(self)

    def build(self, output=None, overwrite=None, progress=False, backend=None, **kw):
        from .build import build_simulation
        return build_simulation(self, output=output, overwrite=overwrite, progress=progress, backend=backend, **kw)

    def run(self, **kw):
        sim = self.build(**kw)
        dur = self.simulation.get("duration")
        if dur is None:
            raise ScenarioError([("simulation.duration", "needed to run the scenario")], self.source)
        sim.run(dur)
        sim.close()
        return sim


def load_scenario(path, overrides=None) -> Scenario:
    """Read, override (``["simulation.dt=0.05", ...]`` or a dict), expand and validate a TOML file."""
    p = Path(path)
    src = str(path)
    text = read_scenario_text(p)
    data = parse_toml(text, src)
    return scenario_from_dict(data, source=src, text=text, base_dir=p.parent, overrides=overrides)


def scenario_from_dict(data, source=None, text="", base_dir=None, overrides=None, limits=None) -> Scenario:
    """Validate a scenario dict (overrides, templates, schema, cross-references), then check it against
    the resource limits (:mod:`microcircuit.limits`: memory estimate, step count) before anything
    is allocated."""
    from .. import limits as L
    lim = limits or L.current()
    deep = nesting_problem(data, lim.max_toml_depth)
    if deep:
        raise ScenarioError([deep], source)
    data = copy.deepcopy(data)
    ov_list = []
    if isinstance(overrides, dict):
        ov_list = list(overrides.items())
    elif overrides:
        for item in overrides:
            if "=" not in item:
                raise ScenarioError([(item, "an override needs the form dotted.key=value")], source)
            k, v = item.split("=", 1)
            ov_list.append((k.strip(), parse_value(v.strip())))
    if not isinstance(data, dict):
        raise ScenarioError([("", "a scenario must be a table")], source)
    for k, v in ov_list:
        apply_override(data, k, v, source)
    if ov_list:
        deep = nesting_problem(data, lim.max_toml_depth)
        if deep:
            raise ScenarioError([deep], source)
    problems = []
    origins = {}
    data = expand_templates(data, problems, origins)
    problems += validate(data, source, base_dir)
    if problems:
        raise ScenarioError(problems, source)
    problems, warns = L.check_run(data, base_dir, lim)
    if problems:
        raise ScenarioError([(f"{origins[p]} (expanded to {p})" if p in origins else p, m) for p, m in problems],
                            source)
    if warns:
        import warnings
        from ..errors import printable
        for path, msg in warns:
            warnings.warn(printable(f"{source or 'scenario'}: {path}: {msg}"), ScenarioWarning, stacklevel=2)
    return Scenario(data, source, text, Path(base_dir) if base_dir else None, ov_list, warns)
