"""Strict, one-pass validation of scenario dictionaries.

Every problem is reported with the dotted path of the field (``projections[2].target``), unknown
keys get a "did you mean", cross-references (a ``pre`` that names no population) and physical
sanity (``dt > 0``, ``duration/dt`` a whole number of steps) are checked, and all problems are
collected before one :class:`~microcircuit.errors.ScenarioError` is raised. Validation never
executes anything from the file.
"""
from __future__ import annotations

import difflib
import math
import re
from numbers import Number
from pathlib import Path

from ..checks import array_shape, weight_shape_message, connector_shape_message, real_dtype_message, \
    is_real_dtype, error_partner_problem, error_source_problem, INPUT_CARRIES_R, one_to_one_message, \
    stimulus_kind_problem, second_rate_message
from ..models import MODELS
from . import schema as S

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _suggest(key, options):
    close = difflib.get_close_matches(str(key), [str(o) for o in options], n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else f"; allowed: {', '.join(sorted(map(str, options)))}"


def _tname(v):
    return {dict: "table", list: "array", str: "string", bool: "boolean", int: "integer",
            float: "number"}.get(type(v), type(v).__name__)


class Validator:
    def __init__(self, base_dir=None):
        self.problems = []
        self.base_dir = Path(base_dir) if base_dir else None

    def add(self, path, msg):
        self.problems.append((path, msg))

    # ------------------------------------------------------------ primitives
    def value(self, v, f: S.Field, path):
        t = f.type
        if t == "any":
            return True
        if t == "float":
            if isinstance(v, bool) or not isinstance(v, Number):
                self.add(path, f"expected a number, got {_tname(v)} {v!r}")
                return False
            if not math.isfinite(v):
                self.add(path, f"must be finite, got {v}")
                return False
            return self.bounds(v, f, path)
        if t == "int":
            if isinstance(v, bool) or not isinstance(v, int):
                self.add(path, f"expected an integer, got {_tname(v)} {v!r}")
                return False
            return self.bounds(v, f, path)
        if t == "bool":
            if not isinstance(v, bool):
                self.add(path, f"expected true or false, got {_tname(v)} {v!r}")
                return False
            return True
        if t == "str":
            if not isinstance(v, str):
                self.add(path, f"expected a string, got {_tname(v)} {v!r}")
                return False
            if f.choices and v not in f.choices:
                self.add(path, f"'{v}' is not allowed" + _suggest(v, f.choices))
                return False
            return True
        if t == "list":
            if not isinstance(v, list):
                self.add(path, f"expected an array, got {_tname(v)} {v!r}")
                return False
            return True
        if t == "table":
            if not isinstance(v, dict):
                self.add(path, f"expected a table, got {_tname(v)}")
                return False
            return True
        if t == "number_or_list":
            if isinstance(v, list):
                ok = True
                for i, x in enumerate(v):
                    if isinstance(x, bool) or not isinstance(x, Number) or not math.isfinite(x):
                        self.add(f"{path}[{i}]", f"expected a finite number, got {x!r}")
                        ok = False
                return ok
            return self.value(v, S.Field("float", low=f.low, strict_low=f.strict_low, high=f.high), path)
        raise AssertionError(t)

    def bounds(self, v, f, path):
        if f.low is not None and (v <= f.low if f.strict_low else v < f.low):
            self.add(path, f"must be {'>' if f.strict_low else '>='} {f.low:g}, got {v}")
            return False
        if f.high is not None and v > f.high:
            self.add(path, f"must be <= {f.high:g}, got {v}")
            return False
        return True

    def unknown_keys(self, obj, allowed, path):
        """One problem per key of ``obj`` not in ``allowed``, with a did-you-mean."""
        for k in obj:
            if k not in allowed:
                self.add(f"{path}.{k}" if path else str(k), "unknown field" + _suggest(k, allowed))

    def table(self, obj, fields, path, extra=None):
        """Check keys and values of a table; returns it (or {} if not a table)."""
        if not isinstance(obj, dict):
            self.add(path, f"expected a table, got {_tname(obj)}")
            return {}
        allowed = dict(fields)
        allowed.update(extra or {})
        for k, v in obj.items():
            p = f"{path}.{k}" if path else str(k)
            if k not in allowed:
                self.add(p, "unknown field" + _suggest(k, allowed))
            else:
                self.value(v, allowed[k], p)
        for k, f in fields.items():
            if f.required and k not in obj:
                self.add(f"{path}.{k}" if path else k, "required field is missing")
        return obj

    def array_of_tables(self, obj, path):
        if obj is None:
            return []
        if not isinstance(obj, list):
            self.add(path, f"expected an array of tables ([[{path}]]), got {_tname(obj)}")
            return []
        out = []
        for i, item in enumerate(obj):
            if not isinstance(item, dict):
                self.add(f"{path}[{i}]", f"expected a table, got {_tname(item)}")
            else:
                out.append((i, item))
        return out

    def per_neuron(self, v, size, path, low=None, strict_low=False):
        if isinstance(v, dict):
            dist = v.get("dist", "normal")
            self.table(v, S.DISTRIBUTION, path)
            if dist == "relative_normal" and "value" not in v:
                self.add(f"{path}.value", "relative_normal needs value (the mean) and width")
            _check_low_high(self, v, path, dist == "uniform", (0.0, 1.0))
            if _num(v.get("min")) and _num(v.get("max")) and v["min"] > v["max"]:
                self.add(f"{path}.min", f"min = {v['min']:g} is above max = {v['max']:g}; swap them")
            if low is not None:
                lowest = _lowest_draw(v, dist)
                if lowest is not None and (lowest <= low if strict_low else lowest < low):
                    self.add(path, f"the {dist} distribution can draw values {'<=' if strict_low else '<'} {low:g} "
                                   f"(the parameter must be {'>' if strict_low else '>='} {low:g}); add "
                                   f"min = <a value {'>' if strict_low else '>='} {low:g}> to clip the draws")
            return
        if isinstance(v, list):
            if isinstance(size, int) and len(v) != size:
                self.add(path, f"has {len(v)} values but the population has {size} neurons; give one value "
                               f"or {size}")
        self.value(v, S.Field("number_or_list", low=low, strict_low=strict_low), path)


def _lowest_draw(v, dist):
    """The smallest value a per-neuron distribution table can give (after its ``min`` clip), or None."""
    vals = [v.get(k) for k in ("mean", "std", "low", "value", "width", "min")]
    if any(x is not None and not _num(x) for x in vals):
        return None                              # a type problem, reported by the table check
    if dist == "uniform":
        lowest = v.get("low", 0.0)
    elif dist == "lognormal":
        lowest = 0.0 if v.get("sigma", 1.0) > 0 else math.exp(v.get("mean", 0.0))
    elif dist == "relative_normal":
        lowest = -math.inf if v.get("width", 0.0) > 0 else v.get("value", 0.0)
    else:
        lowest = -math.inf if v.get("std", 1.0) > 0 else v.get("mean", 0.0)
    return max(lowest, v["min"]) if _num(v.get("min")) else lowest


# -------------------------------------------------------------------------- scenario
def validate(data, source=None, base_dir=None):
    """Validate a scenario dict (templates already expanded). Returns the list of problems."""
    V = Validator(base_dir)
    if not isinstance(data, dict):
        V.add("", f"a scenario must be a table at top level, got {_tname(data)}")
        return V.problems
    for k in data:
        if k in S.TOP_LEVEL and data[k] is None:
            V.add(str(k), f"is empty (None); give a {S.TOP_LEVEL[k]} or leave the section out")
        if k not in S.TOP_LEVEL:
            V.add(str(k), "unknown section" + _suggest(k, S.TOP_LEVEL))
    if "scenario" in data:
        V.table(data["scenario"], S.SCENARIO, "scenario")
    sim = data.get("simulation")
    if sim is None:
        V.add("simulation", "required section is missing (it needs at least dt)")
        sim = {}
    else:
        sim = V.table(sim, S.SIMULATION, "simulation")
    dt = sim.get("dt")
    dur = sim.get("duration")
    if _num(dt) and dt > 0 and _num(dur) and dur > 0:
        n = dur / dt
        if not math.isfinite(n) or n > 1e15:
            pass      # far over any step limit: reported by microcircuit.limits (simulation.duration)
        elif abs(n - round(n)) > 1e-6 * max(1.0, n):
            V.add("simulation.duration", f"{dur} ms is not a whole number of steps of dt = {dt} ms "
                                         f"({n:g} steps); change duration or dt")

    pops = {}
    for i, p in V.array_of_tables(data.get("populations"), "populations"):
        path = f"populations[{i}]"
        name = p.get("name")
        if name is None:
            V.add(f"{path}.name", "required field is missing")
        elif not isinstance(name, str) or not _NAME_RE.match(name):
            V.add(f"{path}.name", f"must be an identifier (letters, digits, _), got {name!r}")
        elif name in pops:
            V.add(f"{path}.name", f"population '{name}' is defined twice")
        model = p.get("model", "rate")
        if not isinstance(model, str) or model not in MODELS:
            V.add(f"{path}.model", f"unknown neuron model {model!r}" + _suggest(model, MODELS))
            model = None
        size = p.get("size")
        if size is None:
            V.add(f"{path}.size", "required field is missing")
        elif isinstance(size, bool) or not isinstance(size, int) or size < 1:
            V.add(f"{path}.size", f"must be an integer >= 1, got {size!r}")
            size = None
        if model is not None:
            params = MODELS[model].parameters
            for k, v in p.items():
                if k in S.POPULATION:
                    continue
                kp = f"{path}.{k}"
                if k not in params:
                    V.add(kp, f"unknown parameter of model '{model}'" + _suggest(k, list(params) + list(S.POPULATION)))
                    continue
                prm = params[k]
                if prm.kind == "str":
                    if not isinstance(v, str):
                        V.add(kp, f"expected a string, got {_tname(v)} {v!r}")
                    elif prm.choices and k != "morphology" and v not in prm.choices:
                        V.add(kp, f"'{v}' is not allowed" + _suggest(v, prm.choices))
                elif prm.kind == "bool":
                    V.value(v, S.Field("bool"), kp)
                elif prm.kind == "list":
                    if V.value(v, S.Field("list"), kp):
                        V.value(v, S.Field("number_or_list"), kp)
                elif prm.per_neuron:
                    V.per_neuron(v, size, kp, prm.low, prm.strict_low)
                else:
                    V.value(v, S.Field("float", low=prm.low, strict_low=prm.strict_low), kp)
            if p.get("morphology") is not None and isinstance(p.get("morphology"), str):
                _check_morphology(V, p["morphology"], f"{path}.morphology", base_dir)
        if isinstance(name, str) and name not in pops:
            pops[name] = (model, size)

    _check_error_partners(V, data.get("populations"), pops)

    proj_names = set()
    for i, pr in V.array_of_tables(data.get("projections"), "projections"):
        path = f"projections[{i}]"
        V.table(pr, S.PROJECTION, path)
        for end in ("pre", "post"):
            nm = pr.get(end)
            if isinstance(nm, str) and nm not in pops:
                V.add(f"{path}.{end}", f"names no population '{nm}'" + _suggest(nm, pops) if pops
                      else f"names no population '{nm}' (no populations defined)")
        post = pops.get(pr.get("post")) if isinstance(pr.get("post"), str) else None
        pre = pops.get(pr.get("pre")) if isinstance(pr.get("pre"), str) else None
        tgt = pr.get("target", "basal")
        if post and post[0] and isinstance(tgt, str):
            ports = MODELS[post[0]].ports
            if tgt not in ports:
                V.add(f"{path}.target", f"population '{pr['post']}' ({post[0]}) has no compartment '{tgt}'"
                      + (_suggest(tgt, ports) if ports else "; an input population receives no projections"))
        if pre and pre[0] == "input" and pr.get("signal", "r") != "r":
            V.add(f"{path}.signal", INPUT_CARRIES_R)
        nm = pr.get("name")
        if isinstance(nm, str):
            if nm in proj_names:
                V.add(f"{path}.name", f"projection '{nm}' is defined twice")
            proj_names.add(nm)
        conn = pr.get("connector")
        kind = conn.get("kind", "all_to_all") if isinstance(conn, dict) else "all_to_all"
        npre = pre[1] if pre and isinstance(pre[1], int) else None
        npost = post[1] if post and isinstance(post[1], int) else None
        shape = None
        if npre and npost:
            shape = (npost,) if kind == "one_to_one" else (npost, npre)
        if isinstance(conn, dict):
            V.table(conn, S.CONNECTOR, f"{path}.connector")
            if conn.get("kind") == "one_to_one" and pre and post and pre[1] and post[1] and pre[1] != post[1]:
                V.add(f"{path}.connector.kind", one_to_one_message(pre[1], post[1]))
            if kind == "from_array":
                _check_matrix(V, conn.get("array"), f"{path}.connector.array",
                              shape if kind == "from_array" else None, connector_shape_message)
        w = pr.get("weights")
        if isinstance(w, dict):
            V.table(w, S.WEIGHTS, f"{path}.weights")
            _check_weights(V, w, f"{path}.weights", shape, base_dir)
        pl = pr.get("plasticity")
        if isinstance(pl, dict):
            V.table(pl, S.PLASTICITY, f"{path}.plasticity")
            if pl.get("rule", "none") != "none" and "eta" not in pl:
                V.add(f"{path}.plasticity.eta", f"rule '{pl.get('rule')}' needs a learning rate eta")
            _check_plasticity(V, pl, f"{path}.plasticity")
            src = pl.get("error_source")
            if isinstance(src, str) and pl.get("rule") == "error" and post and isinstance(pr.get("post"), str):
                msg = error_source_problem(src, pr["post"], post[1], pops)
                if msg:
                    V.add(f"{path}.plasticity.error_source", msg)

    rate_targets = {}
    for i, s in V.array_of_tables(data.get("stimuli"), "stimuli"):
        path = f"stimuli[{i}]"
        if isinstance(s.get("target"), str) and s.get("kind", "rate") == "rate":
            if s["target"] in rate_targets:
                V.add(f"{path}.target", second_rate_message(s["target"], rate_targets[s["target"]]))
            rate_targets.setdefault(s["target"], path)
        wf = s.get("waveform")
        extra = S.WAVEFORM_FIELDS.get(wf, {}) if isinstance(wf, str) else {}
        V.table(s, S.STIMULUS, path, extra)
        for k, f in extra.items():
            if f.required and k not in s:
                V.add(f"{path}.{k}", f"required for waveform '{wf}'")
        tgt = s.get("target")
        if isinstance(tgt, str):
            if tgt not in pops:
                V.add(f"{path}.target", f"names no population '{tgt}'" + (_suggest(tgt, pops) if pops else ""))
            else:
                model = pops[tgt][0]
                problem = stimulus_kind_problem(tgt, s.get("kind", "rate"), model, model == "input") \
                    if model is not None else None
                if problem:
                    V.add(f"{path}.kind", problem)
        size = pops.get(tgt, (None, None))[1] if isinstance(tgt, str) else None
        for k, f in extra.items():
            v = s.get(k)
            if f.type == "number_or_list" and isinstance(v, list):
                if not v:
                    V.add(f"{path}.{k}", "is an empty list; give one number (all neurons) or one per neuron")
                elif wf in ("step", "ramp") and isinstance(size, int) and len(v) not in (1, size):
                    V.add(f"{path}.{k}", f"has {len(v)} values but population '{tgt}' has {size} neurons; "
                                         f"give one value or {size}")
        if wf == "sines":   # lists are the components of the sum; they must have one length (or 1)
            lens = {k: len(s[k]) for k in ("amplitude", "omega", "frequency_hz", "phase")
                    if isinstance(s.get(k), list) and s[k]}
            if len(set(lens.values()) - {1}) > 1:
                V.add(path, f"sine components disagree in length ({lens}); give lists of one length")
            else:
                n_comp = max([lens.get(k, 1) for k in ("omega", "frequency_hz")])
                for k in ("amplitude", "phase"):
                    if lens.get(k, 1) not in (1, n_comp):
                        V.add(f"{path}.{k}", f"has {lens[k]} values for {n_comp} sine component(s) (one per "
                                             f"omega / frequency_hz); give one value or {n_comp}")
        if wf == "sines" and ("omega" in s) == ("frequency_hz" in s):
            V.add(path, "a sines stimulus needs exactly one of omega or frequency_hz")
        if wf == "array" and isinstance(s.get("file"), str):
            if _check_file(V, s["file"], f"{path}.file", base_dir):
                batch = sim.get("batch", 1) if isinstance(sim.get("batch", 1), int) else None
                key = s.get("key") if isinstance(s.get("key"), str) else None
                _check_input_array(V, s["file"], key, f"{path}.file", base_dir, size, batch, tgt)
        if wf in ("step", "ramp") and _num(s.get("start")) and _num(s.get("stop")) and \
                (s["stop"] <= s["start"] if wf == "ramp" else s["stop"] < s["start"]):
            V.add(f"{path}.stop", f"stop = {s['stop']:g} ms is {'not after' if wf == 'ramp' else 'before'} "
                                  f"start = {s['start']:g} ms; swap them")

    for i, r in V.array_of_tables(data.get("recordings"), "recordings"):
        path = f"recordings[{i}]"
        V.table(r, S.RECORDING, path)
        pop = r.get("population")
        if isinstance(pop, str):
            if pop not in pops:
                V.add(f"{path}.population", f"names no population '{pop}'" + (_suggest(pop, pops) if pops else ""))
            elif pops[pop][0]:
                model = MODELS[pops[pop][0]]
                vars_ = r.get("variables", ["r"])
                if isinstance(vars_, list):
                    for j, v in enumerate(vars_):
                        if not isinstance(v, str) or v not in model.variables:
                            V.add(f"{path}.variables[{j}]", f"model '{model.name}' has no variable {v!r}"
                                  + _suggest(v, model.variables))
                size = pops[pop][1]
                neu = r.get("neurons", "all")
                if isinstance(neu, list) and isinstance(size, int):
                    bad = [x for x in neu if isinstance(x, bool) or not isinstance(x, int) or not 0 <= x < size]
                    if bad:
                        V.add(f"{path}.neurons", f"indices must be integers in 0..{size - 1}, got {bad[:3]}")
                    elif not neu:
                        V.add(f"{path}.neurons", 'is empty; give indices, "all" or {start, stop, step}')
                elif isinstance(neu, dict):
                    _check_neuron_range(V, neu, f"{path}.neurons", size)
                elif not (neu == "all" or isinstance(neu, list)):
                    V.add(f"{path}.neurons", f'expected "all", a list of indices or a table, got {neu!r}')

    if "analysis" in data:
        _check_analysis(V, data["analysis"], pops, data.get("recordings"))
    if "sweep" in data:
        _check_sweep(V, data["sweep"])

    if "output" in data:
        V.table(data["output"], S.OUTPUT, "output")
    if "protocol" in data:
        _check_protocol(V, data["protocol"], pops)
        out = data.get("output")
        for key in ("checkpoint_every", "checkpoint_every_steps"):
            if isinstance(out, dict) and key in out:
                V.add(f"output.{key}", "a [protocol] run checkpoints at epoch ends, not every so many ms or steps: "
                                       "use protocol.checkpoint_every (epochs) instead")
    _check_deep_le_scheme(V, data)
    return V.problems


# largest dt * eta of a plastic forward projection into a hidden pyramid for which a learning LE
# microcircuit with >= 2 hidden layers stays finite under the synchronous scheme (measured, 9-50-20-3
# Bars, 300 epochs: dt * eta_up 0.2 and 0.1 diverge, 0.05 stays finite, 0.04 and 0.02 learn to 100 %)
SYNC_DEEP_LE_MAX_STEP = 0.05


def _check_deep_le_scheme(V, data):
    """Refuse a learning LE microcircuit with >= 2 hidden layers under the synchronous scheme when the
    per-step learning gain dt * eta of a forward projection into a hidden pyramid exceeds
    SYNC_DEEP_LE_MAX_STEP. Under LE a weight change moves u_ss (and the error it is computed from) at
    once; the synchronous scheme closes this loop one step late (every population reads the previous
    step), which lowers the largest stable step, and in a deep circuit the hidden-to-hidden loop is
    strong enough to oscillate and diverge: 9-50-20-3 Bars with eta_up = 2 /ms diverges at dt = 0.1 and
    0.05 ms (the reference LE code at the same step), learns to 100 % at dt = 0.02 and 0.01 ms and under
    the sequential scheme at dt = 0.1 ms. Not the interneuron's nudge delay alone: with g_som = 0 for the
    interneurons it still diverges."""
    sim = data.get("simulation") if isinstance(data.get("simulation"), dict) else {}
    if sim.get("scheme", "synchronous") not in ("synchronous", "published_microcircuit"):   # the Jacobi ones
        return
    pops, projs = data.get("populations"), data.get("projections")
    if not isinstance(pops, list) or not isinstance(projs, list):
        return
    popl = [p for p in pops if isinstance(p, dict) and isinstance(p.get("name"), str)]
    projl = [p for p in projs if isinstance(p, dict) and isinstance(p.get("pre"), str)
             and isinstance(p.get("post"), str)]
    model = {p["name"]: p.get("model") for p in popl}
    le = {p["name"] for p in popl if p.get("latent_equilibrium") is True}
    deep = next(((pr["post"], pr["pre"]) for pr in projl if pr.get("target") == "nudge"
                 and model.get(pr["post"]) == "interneuron" and model.get(pr["pre"]) == "pyramidal"
                 and pr["post"] in le), None)
    if deep is None:
        return
    dt = sim.get("dt")
    proto = data.get("protocol") if isinstance(data.get("protocol"), dict) else {}
    if _num(proto.get("dt")):
        dt = proto["dt"]
    elif _num(proto.get("t_pres")) and isinstance(proto.get("steps_per_presentation"), int) \
            and proto["steps_per_presentation"] >= 1:
        dt = proto["t_pres"] / proto["steps_per_presentation"]
    if not _num(dt) or dt <= 0:
        return
    worst = None
    for pr in projl:
        pl = pr.get("plasticity")
        if not (isinstance(pl, dict) and pl.get("rule") == "urbanczik_senn" and _num(pl.get("eta", 0))
                and model.get(pr["post"]) == "pyramidal" and pr["post"] in le):
            continue
        if worst is None or pl["eta"] > worst[1]:
            worst = (pr.get("name") or f"{pr['pre']}->{pr['post']}", pl["eta"])
    if worst is None or dt * worst[1] <= SYNC_DEEP_LE_MAX_STEP:
        return
    name, eta = worst
    V.add("simulation.scheme",
          f"a learning LE microcircuit with >= 2 hidden layers ('{deep[0]}' nudged by hidden pyramid "
          f"'{deep[1]}') diverges under the {sim.get('scheme', 'synchronous')} scheme at dt * eta = {dt:g} * {eta:g} = {dt * eta:.3g} "
          f"(projection '{name}') > {SYNC_DEEP_LE_MAX_STEP}: every population reads the previous step, so "
          f"the forward weights' update acts on a one-step-old error and oscillates until it blows up "
          f"(9-50-20-3 Bars: NaN at dt 0.1 and 0.05 ms, 100 % at dt 0.02 ms). "
          f'Use scheme = "sequential" (learns at this dt), or dt <= {SYNC_DEEP_LE_MAX_STEP / eta:.3g} ms, '
          f"or a smaller eta")


def _check_protocol(V, proto, pops):
    """[protocol] fields (microcircuit.protocols.run_protocol) and their cross-references."""
    if not isinstance(proto, dict):
        V.add("protocol", f"expected a table, got {_tname(proto)}")
        return
    V.table(proto, S.PROTOCOL, "protocol")
    for key in ("input", "output"):
        nm = proto.get(key, key)
        if isinstance(nm, str) and pops and nm not in pops:
            V.add(f"protocol.{key}", f"names no population '{nm}'" + _suggest(nm, pops))
    ph = proto.get("phases")
    if isinstance(ph, list):
        for j, x in enumerate(ph):
            if x not in ("train", "val", "test", "train_eval"):
                V.add(f"protocol.phases[{j}]", f"unknown phase {x!r}; use train, val, test, train_eval")
    tg = proto.get("targets")
    if isinstance(tg, list) and (len(tg) != 2 or not all(_num(x) for x in tg)):
        V.add("protocol.targets", f"needs two numbers [low, high], got {tg!r}")
    lf = proto.get("lr_factors")
    if isinstance(lf, list) and not all(_num(x) for x in lf):
        V.add("protocol.lr_factors", "must be numbers, one per plastic projection")
    if proto.get("lr_decay", 1.0) != 1.0 and proto.get("lr_schedule", "constant") != "exponential":
        V.add("protocol.lr_decay", "only acts with lr_schedule = \"exponential\"; set it or remove lr_decay")
    if "dt" in proto and "steps_per_presentation" in proto:
        V.add("protocol.steps_per_presentation", "give dt or steps_per_presentation, not both")
    # data set: only names in the registry, arguments by declared type/bounds, files checked by stat only
    from ..datasets.registry import check_args
    ds, dargs = proto.get("dataset"), proto.get("dataset_args", {})
    if isinstance(ds, str) and isinstance(dargs, dict):
        for where, msg in check_args(ds, dargs, files=True):
            V.add(f"protocol.{where}", msg)


def _num(x):
    return isinstance(x, Number) and not isinstance(x, bool) and math.isfinite(x)


def resolve_path(path, base_dir):
    """A file named in a scenario: relative paths are relative to the scenario's folder."""
    p = Path(path)
    if not p.is_absolute() and base_dir is not None:
        p = Path(base_dir) / p
    return p


def _check_file(V, path, where, base_dir):
    p = resolve_path(path, base_dir)
    if not p.exists():
        V.add(where, f"file '{path}' not found (looked at {p}); paths are relative to the scenario file")
        return False
    return True


def _check_error_partners(V, populations, pops):
    """Error populations (models/error.py) and their representation partners, as compile links them."""
    if not isinstance(populations, list) or any(m is None for m, _ in pops.values()):
        return
    index = {p["name"]: i for i, p in enumerate(populations) if isinstance(p, dict) and isinstance(p.get("name"), str)}
    info = {n: (m, s, populations[index[n]].get("loss", "none")) for n, (m, s) in pops.items() if n in index}
    taken = set()
    for i, p in enumerate(populations):
        if not isinstance(p, dict) or p.get("model") != "error" or not isinstance(p.get("name"), str):
            continue
        partner = p.get("partner")
        problem = error_partner_problem(p["name"], p.get("size"), partner, info, taken)
        if problem is None:
            taken.add(partner)
        elif problem[0] == "partner":
            V.add(f"populations[{i}].partner", problem[1])
        else:
            V.add(f"populations[{index[partner]}].loss", problem[1])


def _check_low_high(V, t, path, active, defaults):
    lo, hi = t.get("low", defaults[0]), t.get("high", defaults[1])
    if active and _num(lo) and _num(hi) and lo > hi:
        V.add(f"{path}.low", f"low = {lo:g} is above high = {hi:g}; swap them (uniform draws from [low, high])")


def _check_matrix(V, value, where, shape, message):
    """A nested list of finite numbers, rectangular, of the expected shape (when known)."""
    if value is None:
        V.add(where, "required: an array [[...], ...] of shape (post, pre)")
        return
    got, problem = array_shape(value)
    if problem:
        V.add(where, problem)
    elif shape is not None and got != tuple(shape):
        V.add(where, message(got, shape))


def _check_weights(V, w, path, shape, base_dir):
    dist = w.get("dist", "normal")
    if dist == "array":
        if "value" not in w and "file" not in w:
            V.add(path, "dist = \"array\" needs value = [[...]] or file = \"...\"")
        elif "value" in w:
            _check_matrix(V, w["value"], f"{path}.value", shape, weight_shape_message)
    elif dist == "constant" and "value" in w:
        if not _num(w["value"]):
            V.add(f"{path}.value", f"dist = \"constant\" needs one finite number, got {_tname(w['value'])} "
                                   f"{w['value']!r:.40}")
    elif "value" in w:
        V.add(f"{path}.value", f"is used by dist = \"constant\" or \"array\" only (dist is {dist!r}); remove "
                               f"it or change dist")
    _check_low_high(V, w, path, dist == "uniform", (-1.0, 1.0))
    if isinstance(w.get("file"), str) and _check_file(V, w["file"], f"{path}.file", base_dir) \
            and dist == "array" and "value" not in w:
        info = _array_info(V, w["file"], w.get("key") if isinstance(w.get("key"), str) else None,
                           f"{path}.file", base_dir)
        if info is not None and shape is not None and info[0] != tuple(shape):
            V.add(f"{path}.file", f"'{w['file']}': " + weight_shape_message(info[0], shape))


def _check_plasticity(V, pl, path):
    t_on, t_off = pl.get("t_on", 0.0), pl.get("t_off")
    if _num(t_on) and _num(t_off) and t_off < t_on:
        V.add(f"{path}.t_off", f"t_off = {t_off:g} ms is before t_on = {t_on:g} ms (plasticity would never be "
                               f"on); swap them or remove t_off")
    for k in ("beta1", "beta2", "momentum"):
        v = pl.get(k)
        if _num(v) and not 0 <= v < 1:
            V.add(f"{path}.{k}", f"must be in [0, 1) (a decay factor per step), got {v:g}; e.g. "
                                 f"{S.PLASTICITY[k].default}")


def _check_neuron_range(V, neu, path, size):
    for k, v in neu.items():
        if k not in S.NEURON_RANGE:
            V.add(f"{path}.{k}", "unknown field" + _suggest(k, S.NEURON_RANGE))
        elif isinstance(v, bool) or not isinstance(v, int):
            V.add(f"{path}.{k}", f"expected an integer, got {_tname(v)} {v!r:.40}")
        elif k == "step" and v == 0:
            V.add(f"{path}.step", "must not be 0")
    if isinstance(size, int) and all(isinstance(neu.get(k), (int, type(None))) and not isinstance(neu.get(k), bool)
                                     for k in ("start", "stop", "step")) and neu.get("step") != 0:
        if not len(range(size)[slice(neu.get("start"), neu.get("stop"), neu.get("step"))]):
            V.add(path, f"selects no neuron of the {size}; check start/stop/step")


def _check_sweep(V, cfg):
    """``[sweep] grid = {"dotted.key" = [v1, v2, ...]}``: the grid ``microcircuit sweep`` uses when no
    --grid is given (each value is validated against the scenario when the sweep starts)."""
    if not isinstance(cfg, dict):
        V.add("sweep", f"expected a table, got {_tname(cfg)}")
        return
    V.unknown_keys(cfg, S.SWEEP, "sweep")
    grid = cfg.get("grid", {})
    if not isinstance(grid, dict):
        V.add("sweep.grid", f'expected a table {{"dotted.key" = [values]}}, got {_tname(grid)}')
        return
    for k, vals in grid.items():
        if not isinstance(vals, list) or not vals:
            V.add(f"sweep.grid.{k}", f"expected a non-empty array of values, got {_tname(vals)} {vals!r:.40}")


def _check_analysis(V, cfg, pops, recordings):
    if not isinstance(cfg, dict):
        V.add("analysis", f"expected a table, got {_tname(cfg)}")
        return
    V.unknown_keys(cfg, S.ANALYSIS, "analysis")
    lag = cfg.get("lag")
    if lag is None:
        return
    if not isinstance(lag, list):
        V.add("analysis.lag", f'expected an array of {{input = "...", output = "..."}}, got {_tname(lag)}')
        return
    recorded = {r.get("population") for r in (recordings if isinstance(recordings, list) else [])
                if isinstance(r, dict) and isinstance(r.get("population"), str) and "r" in (r.get("variables", ["r"]) if isinstance(r.get("variables", ["r"]),
                                                                                       list) else [])}
    for j, pair in enumerate(lag):
        pp = f"analysis.lag[{j}]"
        if not isinstance(pair, dict):
            V.add(pp, f'expected a table {{input = "...", output = "..."}}, got {_tname(pair)}')
            continue
        V.unknown_keys(pair, S.LAG, pp)
        for k in ("input", "output"):
            nm = pair.get(k)
            if not isinstance(nm, str):
                V.add(f"{pp}.{k}", "required: the name of a recorded population" if nm is None
                      else f"expected a string, got {_tname(nm)}")
            elif nm not in pops:
                V.add(f"{pp}.{k}", f"names no population '{nm}'" + (_suggest(nm, pops) if pops else ""))
            elif nm not in recorded:
                V.add(f"{pp}.{k}", f"population '{nm}' is not recorded with variable r; add a [[recordings]] "
                                   f"entry with population = \"{nm}\" and variables = [\"r\"]")


def _array_info(V, path, key, where, base_dir):
    """(shape, dtype) of a .npy / .npz input from its header(s) only; problems are reported at ``where``."""
    from .. import limits as L
    p = resolve_path(path, base_dir)
    if p.suffix == ".npy":
        info = L.array_header(p)
        if info is None:
            V.add(where, f"'{path}' is not a readable .npy file")
            return None
    elif p.suffix == ".npz":
        heads = L.npz_headers(p)
        if heads is None:
            V.add(where, f"'{path}' is not a readable .npz file")
            return None
        if key is None and len(heads) != 1:
            V.add(where, f"'{path}' holds {sorted(heads)}; say which with key = \"...\"")
            return None
        k = key if key is not None else next(iter(heads), None)
        if k not in heads:
            V.add(where, f"'{path}' has no array {k!r}; it holds {sorted(heads)}")
            return None
        info = heads[k]
    else:
        return None            # .zarr and others: checked when built
    shape, dtype = info
    if not is_real_dtype(dtype):
        V.add(where, f"'{path}' " + real_dtype_message(dtype))
        return None
    lim = L.current()
    nbytes = math.prod(shape) * 8
    if nbytes > lim.max_input_bytes:
        V.add(where, f"'{path}' holds {shape} values ({L.fmt_bytes(nbytes)} as float64), over the limit of "
                     f"{L.fmt_bytes(lim.max_input_bytes)} (max_input_bytes); use a smaller array or raise "
                     f"MICROCIRCUIT_MAX_INPUT_BYTES")
        return None
    return info


def _check_input_array(V, path, key, where, base_dir, size, batch, target):
    info = _array_info(V, path, key, where, base_dir)
    if info is None:
        return
    shape = info[0]
    if len(shape) not in (1, 2, 3) or shape[0] == 0:
        V.add(where, f"'{path}' has shape {shape}; a stimulus array is (T,), (T, n) or (T, n, batch) with T >= 1")
        return
    width = shape[1] if len(shape) > 1 else 1
    if isinstance(size, int) and width not in (1, size):
        V.add(where, f"'{path}' has shape {shape}: {width} values per step, but population '{target}' has "
                     f"{size} neurons; give one column or {size}")
    if len(shape) == 3 and isinstance(batch, int) and shape[2] not in (1, batch):
        V.add(where, f"'{path}' has shape {shape}: {shape[2]} batch columns, but simulation.batch = {batch}; "
                     f"give 1 or {batch}")


def _check_morphology(V, name, where, base_dir):
    try:
        from ..morphology import available_cells
        cells = available_cells()
    except Exception:  # morphology module unavailable: check at build time
        return
    if name in cells:
        return
    if resolve_path(name, base_dir).exists():
        return
    V.add(where, f"unknown morphology '{name}'" + _suggest(name, cells))
