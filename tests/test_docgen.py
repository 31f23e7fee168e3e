"""The generated references (microcircuit.docgen) and ``microcircuit models`` / ``microcircuit schema``.

The references must be generated, never hand-maintained: a parameter added to a model shows up
without touching any page, and the schema reference lists exactly the keys the validator accepts
(checked both ways, against the real validator, with the keys read back from the generated text).
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import microcircuit
from microcircuit import docgen
from microcircuit.cli import main
from microcircuit.errors import ScenarioError

PKG = Path(microcircuit.__file__).parent


# ------------------------------------------------------------------ parsing the generated markdown
_PIPE = re.compile(r"(?<!\\)\|")
_KEY_ROW = re.compile(r"^\| `([^`]+)` \|")


def _sections(markdown):
    """{heading text: [first-column keys of the table rows under it]} for ``##``/``###`` headings."""
    out, head = {}, None
    for ln in markdown.splitlines():
        m = re.match(r"^(##+) (.*)$", ln)
        if m:
            head = m.group(2)
            out.setdefault(head, [])
            continue
        m = _KEY_ROW.match(ln)
        if m and head is not None:
            out[head].append(m.group(1))
    return out


def _model_params_from_reference():
    """{model: [parameter names]} read from the generated models page (the '### Parameters' tables)."""
    out, model, in_params = {}, None, False
    for ln in docgen.models_markdown().splitlines():
        if ln.startswith("## "):
            model, in_params = ln[3:].strip(), False
            out[model] = []
        elif ln.startswith("### "):
            in_params = ln.strip() == "### Parameters"
        elif in_params and model:
            m = _KEY_ROW.match(ln)
            if m:
                out[model].append(m.group(1))
    return out


# ------------------------------------------------------------------ a parameter added in a copy appears
def test_parameter_added_to_a_model_in_a_copy_appears_in_the_reference(tmp_path):
    """Expect: a parameter added to the pyramidal model's registry (in a copy of the package) appears,
    with its unit and default, in both the generated markdown and ``microcircuit models pyramidal``.
    Why: the reference must come from the registry, not from a hand-kept list; this fails if any
    page or table of names has to be edited for a new parameter to show."""
    copy = tmp_path / "microcircuit"
    shutil.copytree(PKG, copy, ignore=shutil.ignore_patterns("__pycache__", "*.nbi", "*.nbc", "*.pyc"))
    src = copy / "models" / "pyramidal.py"
    text = src.read_text()
    anchor = '        Parameter("g_A", None, "1/ms", "apical-to-soma coupling conductance", low=0.0),\n'
    assert text.count(anchor) == 1, "the pyramidal model's g_A parameter moved; update this test's anchor"
    src.write_text(text.replace(anchor, anchor + '        Parameter("test_gain", 2.5, "mV/ms", '
                                                 '"gain added by the docgen test", low=0.0),\n'))
    code = ("import microcircuit, sys; from microcircuit.docgen import models_markdown; "
            "print(microcircuit.__file__); print(models_markdown('pyramidal')); "
            "from microcircuit.cli import main; sys.exit(main(['models', 'pyramidal']))")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    res = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr
    out = res.stdout
    assert out.splitlines()[0].startswith(str(copy)), f"the copy was not imported: {out.splitlines()[0]}"
    # markdown row: name | unit | default | allowed | per neuron | description
    assert "| `test_gain` | mV/ms | `2.5` | \\>= 0 | yes | gain added by the docgen test |" in out, out
    # terminal table of the CLI
    assert re.search(r"^\s*test_gain\s+mV/ms\s+2\.5\s+>= 0\s+yes\s+gain added by the docgen test", out, re.M), out
    # and it is not in the reference of the unmodified package (the row came from the edit)
    assert "test_gain" not in docgen.models_markdown("pyramidal")


# ------------------------------------------------------------------ schema reference == validator
def _problems(data):
    """Every (path, message) the scenario validator (templates included) reports for ``data``."""
    try:
        microcircuit.scenario.scenario_from_dict(data)
    except ScenarioError as exc:
        return exc.problems
    return []


def _unknown_at(problems, prefix):
    """Keys reported as unknown (the validator's "unknown field" / "unknown parameter of model ...")
    directly inside the table at ``prefix``; other problems (bad values, missing files) are ignored."""
    out = set()
    for path, msg in problems:
        if re.match(r"unknown (field|parameter|section)", msg) and path.startswith(prefix + ".") and "." not in path[len(prefix) + 1:] \
                and "[" not in path[len(prefix) + 1:]:
            out.add(path[len(prefix) + 1:])
    return out


def _base():
    return {"simulation": {"dt": 0.1, "duration": 1.0},
            "populations": [{"name": "inp", "model": "input", "size": 2},
                            {"name": "p", "model": "rate", "size": 2}],
            "projections": [{"pre": "inp", "post": "p"}],
            "stimuli": [{"target": "inp", "waveform": "step"}],
            "recordings": [{"population": "p"}]}


def _place(table, keys, waveform=None):
    """A scenario with ``keys`` (key -> value) written into the table called ``table``, and the prefix of
    that table in problem paths."""
    d = _base()
    if table == "scenario":
        d["scenario"] = dict(keys)
        return d, "scenario"
    if table == "simulation":
        d["simulation"].update(keys)
        return d, "simulation"
    if table == "populations":
        d["populations"][1].update({k: v for k, v in keys.items() if k not in ("name", "model", "size")})
        return d, "populations[1]"
    if table == "distribution":
        d["populations"][1]["tau_m"] = dict(keys)
        return d, "populations[1].tau_m"
    if table == "projections":
        d["projections"][0].update({k: v for k, v in keys.items() if k not in ("pre", "post")})
        return d, "projections[0]"
    if table in ("connector", "weights", "plasticity"):
        d["projections"][0][table] = dict(keys)
        return d, f"projections[0].{table}"
    if table == "stimuli":
        d["stimuli"] = [{"target": "inp", "waveform": waveform or "step",
                         **{k: v for k, v in keys.items() if k not in ("target", "waveform")}}]
        return d, "stimuli[0]"
    if table == "recordings":
        d["recordings"][0].update({k: v for k, v in keys.items() if k != "population"})
        return d, "recordings[0]"
    if table == "neurons":
        d["recordings"][0]["neurons"] = dict(keys)
        return d, "recordings[0].neurons"
    if table == "templates":
        d = {"simulation": {"dt": 0.1}, "templates": [{"kind": "layered", "sizes": [2, 2], **keys}]}
        return d, "templates[0]"
    if table in ("output", "sweep", "analysis"):
        d[table] = dict(keys)
        return d, table
    if table == "protocol":
        d["protocol"] = {"dataset": "bars", "t_pres": 10.0, **keys}
        return d, "protocol"
    if table == "lag":
        d["analysis"] = {"lag": [dict(keys)]}
        return d, "analysis.lag[0]"
    raise AssertionError(f"the test does not know where table {table!r} goes; add it to _place")


def _value(field):
    """A value of the right type (and within bounds) for a schema field."""
    if field.choices:
        return field.choices[0]
    lo = field.low if field.low is not None else 0.0
    hi = field.high if field.high is not None else lo + 2.0
    mid = (lo + hi) / 2
    return {"float": float(mid), "int": int(max(lo, 1)), "bool": True, "str": "p", "list": [],
            "table": {}, "any": "all", "number_or_list": 1.0}[field.type]


def _reference_tables():
    """{(table, waveform or None): [keys]} as read from the generated schema page."""
    out = {}
    for head, keys in _sections(docgen.schema_markdown()).items():
        m = re.match(r'^(\w+) with `waveform = "(\w+)"`$', head)
        if m:
            out[(m.group(1), m.group(2))] = keys
        elif re.match(r"^\w+$", head) and head != "Sections":
            out[(head, None)] = keys
    return out


def _field(table, waveform, key):
    t = next(t for t in docgen.schema_tables() if t.name == table)
    if waveform:
        return t.variants[f'waveform = "{waveform}"'][key]
    return t.fields[key]


def test_every_key_in_the_schema_reference_is_accepted_by_validation():
    """Expect: a scenario that sets every key the generated schema page lists for a table (read from the
    markdown, with a value of the documented type) gets no 'unknown field' problem for any of them.
    Why: a documented key the validator rejects would send users to a dead end."""
    tables = _reference_tables()
    assert len(tables) >= 17 + 5, sorted(tables)       # 17 tables + one per stimulus waveform
    for (table, waveform), keys in tables.items():
        assert keys, f"table {table} lists no keys"
        values = {k: _value(_field(table, waveform, k)) for k in keys}
        data, prefix = _place(table, values, waveform)
        unknown = _unknown_at(_problems(data), prefix)
        assert not unknown, f"{table} (waveform {waveform}): documented keys rejected: {sorted(unknown)}"


def test_every_key_the_validator_accepts_is_in_the_schema_reference():
    """Expect: any key that is *not* in a table's reference is rejected as unknown, for a vocabulary of
    every key of every table, every model parameter and a made-up key. Why: a key the validator takes
    but the reference omits is an undocumented option (e.g. keys checked inline in validate.py)."""
    tables = _reference_tables()
    vocabulary = {k for keys in tables.values() for k in keys}
    vocabulary |= {p for m in microcircuit.models.MODELS.values() for p in m.parameters}
    vocabulary |= {"not_a_key", "Dt", "tau"}
    # candidates the page might have left out: every key of every Field table in the schema module
    S = microcircuit.scenario.schema
    for obj in vars(S).values():
        if isinstance(obj, dict):
            for k, v in obj.items():
                if isinstance(v, S.Field):
                    vocabulary.add(k)
                elif isinstance(v, dict):
                    vocabulary |= {kk for kk, vv in v.items() if isinstance(vv, S.Field)}
    for (table, waveform), keys in tables.items():
        if table == "populations":
            continue    # checked with the model parameters below
        if waveform is not None:
            keys = keys + tables[(table, None)]    # a stimulus of a waveform: the common keys and its own
        others = sorted(vocabulary - set(keys))
        if table == "stimuli" and waveform is None:
            # keys of the step waveform are accepted there; they are documented in the step variant
            others = [k for k in others if k not in tables[("stimuli", "step")]]
        data, prefix = _place(table, {k: 1.0 for k in others}, waveform)
        unknown = _unknown_at(_problems(data), prefix)
        accepted = sorted(set(others) - unknown)
        assert not accepted, f"{table} (waveform {waveform}) accepts keys missing from the reference: {accepted}"
    # top-level sections: exactly the documented ones
    sections = _sections(docgen.schema_markdown())["Sections"]
    assert set(sections) == set(microcircuit.scenario.schema.TOP_LEVEL)
    probs = _problems({**_base(), "simulaton": {}})
    assert any(p == "simulaton" and m.startswith("unknown section") and "did you mean 'simulation'" in m
               for p, m in probs), probs


def test_population_keys_are_the_documented_model_parameters():
    """Expect: for every model, each parameter in its generated '### Parameters' table is accepted as a key
    of a population of that model, and a key that is in no table of that model (a parameter of another
    model, or made up) is rejected. Why: population keys come from the model registry; the models page
    must list exactly those."""
    documented = _model_params_from_reference()
    models = microcircuit.models.MODELS
    assert set(documented) == set(models)
    every = {p for keys in documented.values() for p in keys} | {"not_a_parameter"}
    every |= {p for m in models.values() for p in m.parameters}     # candidates the page might have left out
    for model, keys in documented.items():
        pop = {"name": "q", "model": model, "size": 2}
        for k in keys:
            prm = models[model].parameters[k]
            pop[k] = prm.choices[0] if prm.choices else {"bool": True, "str": "q", "list": [0.0, 0.0, 0.0]}.get(
                prm.kind, (prm.low or 0.0) + 1.0)
        pop.update({k: 1.0 for k in every - set(keys)})
        data = {"simulation": {"dt": 0.1}, "populations": [pop]}
        unknown = _unknown_at(_problems(data), "populations[0]")
        assert unknown == every - set(keys), (model, sorted(unknown ^ (every - set(keys))))


# ------------------------------------------------------------------ registries agree with the code
def test_documented_choices_are_the_kernel_registries():
    """Expect: the documented names of rules, optimisers, losses, time-constant rules, stimulus kinds,
    waveforms, connectors and weight distributions are exactly the names the compiled code knows, and
    each appears in the generated registries page. Why: the schema's choice tables drive validation and
    the reference; a name the kernel has but the schema lacks (or the reverse) is a silent gap."""
    import importlib
    from microcircuit import stimuli, circuit, activations
    from microcircuit.models.base import LOSSES
    from microcircuit.models.rate import TAU_RULES
    from microcircuit.scenario import schema as S
    C = importlib.import_module("microcircuit.compile")
    pairs = [(S.PLASTICITY_RULES, C.RULE_IDS), (S.OPTIMIZERS, C.OPTIMIZER_IDS), (LOSSES, C.LOSS_IDS),
             (TAU_RULES, C.TAU_RULE_IDS), (S.STIMULUS_KINDS, stimuli.KIND_IDS),
             (S.WAVEFORM_FIELDS, stimuli.STIMULUS_TYPES), (S.STIMULUS["waveform"].choices, stimuli.STIMULUS_TYPES),
             (S.FEEDBACK_MODES, set(C.FEEDBACK_IDS) | {"auto"})]
    for documented, code in pairs:
        assert set(documented) == set(code), (sorted(documented), sorted(code))
    # connectors and weight distributions have no id table: every documented one compiles, another does not
    extra = {"fixed_probability": {"p": 0.5}, "from_array": {"array": [[1, 0], [0, 1]]}}
    wextra = {"array": {"value": [[0.1, 0.2], [0.3, 0.4]]}}
    for kind in list(S.CONNECTORS) + ["nearest"]:
        for dist in (list(S.WEIGHT_DISTS) if kind == "all_to_all" else ["uniform"]) + ["laplace"]:
            c = circuit.Circuit("t")
            c.add_population("x", "input", 2)
            c.add_population("h", "rate", 2)
            c.add_projection("x", "h", "basal", connector={"kind": kind, **extra.get(kind, {})},
                             weights={"dist": dist, **wextra.get(dist, {})})
            ok = kind in S.CONNECTORS and dist in S.WEIGHT_DISTS
            try:
                C.compile_circuit(c, dt=0.1)
                assert ok, (kind, dist)
            except C.CircuitError:
                assert not ok, (kind, dist)
    assert set(microcircuit.models.MODELS["rate"].parameters["tau_optimizer"].choices) == set(S.OPTIMIZERS)
    page = docgen.registries_markdown()
    sections = _sections(page)
    for title, names in [("Plasticity rules", C.RULE_IDS), ("Optimisers", C.OPTIMIZER_IDS), ("Losses", C.LOSS_IDS),
                         ("Activations", activations.ACTIVATIONS), ("Stimulus kinds", stimuli.KINDS),
                         ("Stimulus waveforms", stimuli.STIMULUS_TYPES), ("Connectors", S.CONNECTORS),
                         ("Weight distributions", S.WEIGHT_DISTS), ("Update schemes", C.SCHEMES),
                         ("Time-constant learning", C.TAU_RULE_IDS)]:
        assert set(sections[title]) == set(names), (title, sections[title])
    from microcircuit.datasets.registry import DATASETS
    for name, entry in DATASETS.items():
        assert set(sections[name]) == set(entry.args), name
    # every activation row carries its formula from the activations table (parsed, not copied)
    for name in activations.ACTIVATIONS:
        row = next(ln for ln in page.splitlines() if ln.startswith(f"| `{name}` | {activations.ACTIVATIONS[name]} |"))
        assert len(_PIPE.split(row)[3].strip()) > 0, row


# ------------------------------------------------------------------ pages are well-formed markdown
def test_written_pages_are_single_title_markdown_with_well_formed_tables(tmp_path):
    """Expect: write_reference_pages creates the folder and writes models.md, schema.md, registries.md,
    cli.md;
    each has exactly one '# ' title (outside code blocks) and every table row has as many unescaped
    '|' as its header. Why: the Sphinx site includes these pages; a '|' in a description (e.g.
    'none | rate') must not split a cell."""
    paths = docgen.write_reference_pages(tmp_path / "new" / "dir")
    assert [p.name for p in paths] == ["models.md", "schema.md", "registries.md", "cli.md"]
    for p in paths:
        text = p.read_text(encoding="utf-8")
        assert text == {"models.md": docgen.models_markdown(), "schema.md": docgen.schema_markdown(),
                        "registries.md": docgen.registries_markdown(), "cli.md": docgen.cli_markdown()}[p.name]
        titles, fence, header_pipes = [], False, None
        for ln in text.splitlines():
            if ln.startswith("```"):
                fence = not fence
                continue
            if fence:
                continue
            if ln.startswith("# "):
                titles.append(ln)
            if ln.startswith("|"):
                n = len(_PIPE.findall(ln))
                if header_pipes is None:
                    header_pipes = n
                assert n == header_pipes, f"{p.name}: row has {n} cells separators, header {header_pipes}: {ln}"
            else:
                header_pipes = None
        assert len(titles) == 1 and text.startswith("# "), (p.name, titles)
        assert not fence, f"{p.name}: unclosed code fence"
    # the escaped pipe really is there (the rate model's loss description has one)
    assert "output error: none \\| rate \\| voltage \\| cross_entropy" in docgen.models_markdown("rate")


# ------------------------------------------------------------------ CLI
def test_cli_models_pyramidal_prints_parameters_with_units_and_defaults(capsys):
    """Expect: `microcircuit models pyramidal` exits 0 and prints the conductances with unit 1/ms, sigma
    with 1/sqrt(ms) and default 0, the preset default and the preset table, and the variables.
    Why: the issue's acceptance test for the terminal reference."""
    assert main(["models", "pyramidal"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^\s*g_B\s+1/ms\s+-\s+>= 0\s+yes\s+basal-to-soma coupling conductance", out, re.M), out
    assert re.search(r"^\s*g_A\s+1/ms\s+", out, re.M)
    assert re.search(r"^\s*sigma\s+1/sqrt\(ms\)\s+0\s+>= 0", out, re.M)
    assert re.search(r'^\s*preset\s+-\s+"sacramento2018"\s+sacramento2018, bern', out, re.M)
    assert re.search(r"^\s*sacramento2018\s+0\.1\s+1\s+0\.8\s+0\.8\s*$", out, re.M), out   # g_lk g_B g_A g_som
    assert re.search(r"^\s*v_A\s+1\s+", out, re.M)
    assert main(["models", "rate"]) == 0
    assert re.search(r"^\s*tau_m\s+ms\s+10\s+> 0\s+yes\s+membrane time constant", capsys.readouterr().out, re.M)
    assert main(["models"]) == 0
    listing = capsys.readouterr().out
    for name in microcircuit.models.MODELS:
        assert re.search(rf"^\s*{name}\s", listing, re.M), name


def test_cli_schema_simulation_prints_dt_with_unit(capsys):
    """Expect: `microcircuit schema simulation` prints dt as a required number in ms (> 0) and the seed
    default 0; `schema stimuli` lists the waveform keys. Why: the terminal view of the schema reference."""
    assert main(["schema", "simulation"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^\s*dt\s+number\s+yes\s+-\s+ms\s+> 0\s+time step", out, re.M), out
    assert re.search(r"^\s*seed\s+integer\s+no\s+0\s+", out, re.M)
    assert re.search(r"^\s*chunk_steps\s+integer\s+no\s+2000\s+steps\s+>= 1", out, re.M)
    assert main(["schema", "stimuli"]) == 0
    out = capsys.readouterr().out
    assert 'With waveform = "sines":' in out and re.search(r"^\s*frequency_hz\s+number or array\s+no\s+-\s+Hz", out, re.M)
    assert main(["schema", "projections.plasticity"]) == 0      # the dotted alias of a nested table
    assert "urbanczik_senn:" in capsys.readouterr().out
    assert main(["schema"]) == 0
    listing = capsys.readouterr().out
    for t in docgen.schema_tables():
        assert re.search(rf"^\s*{t.name}\s", listing, re.M), t.name


@pytest.mark.parametrize("argv, suggestion", [(["models", "pyramidl"], "did you mean 'pyramidal'?"),
                                              (["schema", "simulaton"], "did you mean 'simulation'?"),
                                              (["schema", "nonsense_table"], "allowed: ")])
def test_cli_unknown_name_exits_2_with_a_suggestion(capsys, argv, suggestion):
    """Expect: an unknown model or table exits 2 (bad input) with one 'error:' line and a did-you-mean (or
    the allowed names), no traceback. Why: the CLI's convention for bad input."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown ") and suggestion in err and "Traceback" not in err, err
    with pytest.raises(docgen.UnknownReferenceError):
        (docgen.models_markdown if argv[0] == "models" else docgen.schema_markdown)(argv[1])


# ------------------------------------------------------------------ the command-line reference
def _parser_terms(parser):
    """Every subcommand name and every option string of ``parser``, read from the parser itself."""
    import argparse
    subs, options = set(), set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sp in action.choices.items():
                subs.add(name)
                for a in sp._actions:
                    options.update((name, o) for o in a.option_strings)
    return subs, options


def _section(md, name):
    m = re.search(rf"^## microcircuit {re.escape(name)}\n(.*?)(?=^## |\Z)", md, re.S | re.M)
    return m.group(1) if m else None


def _missing_from_cli_markdown(parser):
    md = docgen.cli_markdown(parser)
    subs, options = _parser_terms(parser)
    missing = [f"section {s}" for s in sorted(subs) if _section(md, s) is None]
    for sub, opt in sorted(options):
        # the option must be in the section's argument table, not only in its usage line: the
        # option strings of a row are the first cell's words that start it or follow ", "
        cells = re.findall(r"^\| `([^`]+)` \|", _section(md, sub) or "", re.M)
        listed = {o for cell in cells for o in re.findall(r"(?:^|, )(-{1,2}[\w-]+)", cell)}
        if opt not in listed:
            missing.append(f"{sub} {opt}")
    return md, subs, missing


def test_cli_markdown_lists_every_subcommand_and_option_of_the_parser():
    """Expect: one '# Command line' title; a '## microcircuit NAME' section for every subcommand
    that build_parser() has (run, validate, info, models, schema, and sweep where installed), each
    with the subcommand's help text, a usage line and a table row for every option string. The
    expected set is read from the parser, so an option added to the CLI must show up."""
    from microcircuit.cli import build_parser
    parser = build_parser()
    md, subs, missing = _missing_from_cli_markdown(parser)
    assert {"run", "validate", "info", "models", "schema"} <= subs
    assert missing == []
    assert [ln for ln in md.splitlines() if ln.startswith("# ")] == ["# Command line"]
    assert md == docgen.cli_markdown()                       # default parser is build_parser()
    import argparse
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for c in action._choices_actions:                # the help text of each subcommand
                sec = _section(md, c.dest)
                assert docgen.md_cell(c.help[:1].upper() + c.help[1:]) in sec, c.dest
                assert f"microcircuit {c.dest} [-h]" in sec  # its usage line
    # positionals too: run's optional scenario, models' NAME
    assert re.search(r"^\| `scenario` \| \(optional\)", _section(md, "run"), re.M)
    assert re.search(r"^\| `NAME` \|", _section(md, "models"), re.M)
    # defaults: sweep --workers 2 (when the sweep extra is installed)
    if "sweep" in subs:
        assert re.search(r"^\| `--workers WORKERS` \| .* \| `2` \|$", _section(md, "sweep"), re.M)


def test_cli_markdown_check_fails_for_an_option_it_does_not_list(monkeypatch):
    """Expect: the check above can fail. An option added to a copy of the parser appears in the
    generated page (it is walked, not listed); and when the generator is made to skip it, the
    check reports exactly that option as missing."""
    import argparse
    from microcircuit.cli import build_parser
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    sub.choices["info"].add_argument("--made-up-option", metavar="X", default="7", help="a made-up option")
    md, _, missing = _missing_from_cli_markdown(parser)
    assert missing == []
    assert re.search(r"^\| `--made-up-option X` \| a made-up option \| `7` \|$", _section(md, "info"), re.M)

    real_rows = docgen._cli_rows
    monkeypatch.setattr(docgen, "_cli_rows",
                        lambda p: [r for r in real_rows(p) if "--made-up-option" not in r[0]])
    _, _, missing = _missing_from_cli_markdown(parser)
    assert missing == ["info --made-up-option"]
