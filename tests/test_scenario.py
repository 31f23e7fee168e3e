"""Scenario files: strict validation with dotted paths and did-you-mean, all problems in one pass,
templates, overrides; random mutations never produce a traceback from inside the package."""
import copy
import tomllib
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st, HealthCheck

from microcircuit.errors import ScenarioError
from microcircuit.scenario import load_scenario, scenario_from_dict

ROOT = Path(__file__).resolve().parents[1]

from helpers import SMALL_SCENARIO as BASE  # noqa: E402


def problems_of(mutate, tmp_path=None):
    d = copy.deepcopy(BASE)
    mutate(d)
    with pytest.raises(ScenarioError) as ei:
        scenario_from_dict(d, source="test.toml", base_dir=tmp_path)
    return ei.value


def test_base_scenario_is_valid():
    sc = scenario_from_dict(BASE, source="base.toml")
    assert [p.name for p in sc.circuit().populations] == ["x", "hidden", "o"]


MALFORMED = [
    # (mutation, dotted path, text the message must contain)
    (lambda d: d["projections"][1].__setitem__("taret", "basal"), "projections[1].taret", "did you mean 'target'?"),
    (lambda d: d["projections"][1].__setitem__("pre", "hiden"), "projections[1].pre", "names no population 'hiden'; did you mean 'hidden'?"),
    (lambda d: d["projections"][0].__setitem__("target", "apical"), "projections[0].target", "has no compartment 'apical'"),
    (lambda d: d["simulation"].__setitem__("dt", -0.1), "simulation.dt", "must be > 0"),
    (lambda d: d["simulation"].__setitem__("duration", 10.05), "simulation.duration", "not a whole number of steps"),
    (lambda d: d["populations"][1].__setitem__("tau_m", "ten"), "populations[1].tau_m", "expected a number"),
    (lambda d: d["populations"][1].__setitem__("model", "pyramidall"), "populations[1].model", "did you mean 'pyramidal'?"),
    (lambda d: d["populations"][1].__setitem__("tau_m", [1.0, 2.0]), "populations[1].tau_m", "has 2 values but the population has 3 neurons"),
    (lambda d: d["recordings"][0].__setitem__("variables", ["r", "v_A"]), "recordings[0].variables[1]", "has no variable 'v_A'"),
    (lambda d: d["stimuli"][0].__setitem__("kind", "current"), "stimuli[0].kind", "input population 'x' takes kind 'rate' only"),
    (lambda d: d.__setitem__("simulaton", {}), "simulaton", "unknown section; did you mean 'simulation'?"),
    (lambda d: d["projections"][0]["plasticity"].__setitem__("rule", "hebb"), "projections[0].plasticity.rule", "'hebb' is not allowed"),
    (lambda d: d["populations"][2].__setitem__("size", 0), "populations[2].size", "must be an integer >= 1"),
    (lambda d: d["stimuli"][0].__setitem__("waveform", "array") or d["stimuli"][0].__setitem__("file", "nope.npy"),
     "stimuli[0].file", "file 'nope.npy' not found"),
]


@pytest.mark.parametrize("mutate,path,text", MALFORMED)
def test_malformed_scenarios_give_their_message(mutate, path, text, tmp_path):
    err = problems_of(mutate, tmp_path)
    msgs = {p: m for p, m in err.problems}
    assert path in msgs, err.problems
    assert text in msgs[path]
    assert "test.toml" in str(err)          # the file is named in the message


def test_all_problems_reported_in_one_pass():
    def mutate(d):
        d["simulation"]["dt"] = 0
        d["projections"][1]["post"] = "oo"
        d["populations"][1]["tau"] = 3
    err = problems_of(mutate)
    paths = [p for p, _ in err.problems]
    assert {"simulation.dt", "projections[1].post", "populations[1].tau"} <= set(paths)


def test_overrides_by_index_and_by_name(tmp_path):
    f = tmp_path / "s.toml"
    f.write_text((ROOT / "scenarios" / "le_chain.toml").read_text())
    sc = load_scenario(f, ["simulation.dt=0.05", "populations.stim.size=1", "recordings[0].stride=10"])
    assert sc.data["simulation"]["dt"] == 0.05
    assert sc.data["recordings"][0]["stride"] == 10
    with pytest.raises(ScenarioError, match="unknown section; did you mean 'simulation'"):
        load_scenario(f, ["simulaton.dt=0.05"])


def test_missing_and_broken_files(tmp_path):
    with pytest.raises(ScenarioError, match="file not found"):
        load_scenario(tmp_path / "none.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[simulation\ndt = 1")
    with pytest.raises(ScenarioError, match="not valid TOML"):
        load_scenario(bad)


def test_templates_expand_to_layers():
    sc = load_scenario(ROOT / "scenarios" / "le_chain.toml")
    names = [p.name for p in sc.circuit().populations]
    assert names[:1] == ["stim"] and "le5" in names and "leaky5" in names
    assert len(names) == 11


# ---------------------------------------------------------------- property-based mutations
_leaf = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.floats(allow_nan=True, allow_infinity=True),
                  st.text(max_size=6), st.lists(st.integers(-2, 2), max_size=3), st.dictionaries(st.text(max_size=4), st.integers(), max_size=2))


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, prefix + (i,))


ALL_PATHS = [p for p in _paths(BASE) if p]


# derandomize: CI sees the same 300 examples every run (a property failure is then a real, reproducible bug);
# run with --hypothesis-seed=N locally to explore further
@settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(ALL_PATHS), _leaf, st.booleans()), min_size=1, max_size=3))
def test_random_mutations_only_raise_validation_errors(mutations):
    """Replace or delete random fields with random values: loading and building either succeed or
    raise ScenarioError — never another exception from inside the package."""
    d = copy.deepcopy(BASE)
    for path, value, delete in mutations:
        node = d
        try:
            for key in path[:-1]:
                node = node[key]
            if delete:
                del node[path[-1]]
            else:
                node[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue
    try:
        sc = scenario_from_dict(d, source="mutated.toml")
        sim = sc.build()
        sim.run(steps=3)
    except ScenarioError:
        pass


BUNDLED = sorted((Path(__file__).resolve().parents[1] / "scenarios").glob("*.toml"))


@pytest.mark.parametrize("path", BUNDLED, ids=[p.name for p in BUNDLED])
def test_every_bundled_scenario_validates_and_builds(path):
    """Each file in scenarios/ is a complete experiment: it must load, validate (no problems) and
    compile its circuit; the 17 files bundled now all do."""
    from microcircuit.scenario.build import build_circuit
    sc = load_scenario(path)
    circuit = build_circuit(sc)
    assert len(circuit.populations) >= 2
