"""Limits checked before anything runs, and fields checked at load time (issue 17, part 6).

Each test is one thing a user saw: an input that validated and then hung, allocated gigabytes or
raised a traceback. Each now ends at load time in a ScenarioError (or SweepError / argparse error)
naming the field, the estimate, the limit and the fix.
"""
import copy
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from microcircuit import limits as L
from microcircuit.errors import ScenarioError
from microcircuit.scenario import load_scenario, scenario_from_dict
from microcircuit.scenario.load import ScenarioWarning

ROOT = Path(__file__).resolve().parents[1]
LE_CHAIN = ROOT / "scenarios" / "le_chain.toml"

from helpers import SMALL_SCENARIO as BASE  # noqa: E402

LIMITS = L.Limits(max_memory_bytes=8 * L.GiB)       # fixed, so the tests do not depend on this machine's RAM


def problems(mutate, tmp_path=None, limits=LIMITS):
    d = copy.deepcopy(BASE)
    mutate(d)
    with pytest.raises(ScenarioError) as ei:
        scenario_from_dict(d, source="t.toml", base_dir=tmp_path, limits=limits)
    return dict(ei.value.problems), str(ei.value)


# ------------------------------------------------------------------------------ steps and memory
@pytest.mark.parametrize("dt,duration", [(1e-300, 10.0), (0.1, 1e300), (5e-324, 1e300), (1e-12, 1e3)])
def test_step_count_over_the_limit(dt, duration):
    """dt = 1e-300 or duration = 1e300 validated and never ended; 5e-324 / 1e300 overflowed to
    inf steps (OverflowError in validation). All four are over max_steps = 10^9."""
    probs, text = problems(lambda d: d["simulation"].update(dt=dt, duration=duration))
    msg = probs["simulation.duration"]
    assert "steps, over the limit of 1e+09 steps (max_steps)" in msg
    assert "MICROCIRCUIT_MAX_STEPS" in msg and "t.toml" in text


def test_step_limit_from_environment(monkeypatch):
    """duration / dt = 100 steps passes at the default limit and fails at MICROCIRCUIT_MAX_STEPS=50."""
    scenario_from_dict(BASE)
    monkeypatch.setenv("MICROCIRCUIT_MAX_STEPS", "50")
    with pytest.raises(ScenarioError, match="100 steps, over the limit of 50"):
        scenario_from_dict(BASE)
    monkeypatch.setenv("MICROCIRCUIT_MAX_STEPS", "lots")
    with pytest.raises(L.LimitError, match="MICROCIRCUIT_MAX_STEPS: cannot read 'lots'"):
        scenario_from_dict(BASE)


@pytest.mark.parametrize("path,mutate", [
    ("populations[1].size", lambda d: d["populations"][1].update(size=10 ** 8)),   # 8.7 GB before MemoryError
    ("populations[1].size", lambda d: d["populations"][1].update(size=10 ** 9)),   # traceback
    ("populations[0].size", lambda d: d["populations"][0].update(size=2 ** 63 - 1)),
    ("simulation.batch", lambda d: d["simulation"].update(batch=10 ** 8)),         # traceback
    ("templates[0].sizes[1] (expanded to populations[4].size)",                    # a 10^6 x 10^6 template
     lambda d: d.update(templates=[{"kind": "layered", "sizes": [3, 10 ** 6, 10 ** 6], "prefix": "t"}])),
])
def test_memory_over_the_limit_names_the_field(path, mutate):
    probs, _ = problems(mutate)
    assert path in probs, probs
    msg = probs[path]
    assert "the run needs about" in msg and "over the limit of 8 GiB (max_memory_bytes)" in msg
    assert "this field drives" in msg and "MICROCIRCUIT_MAX_MEMORY" in msg


def test_memory_limit_is_checked_before_allocating(monkeypatch):
    """size = 10^8 was 27 s of allocating before the MemoryError; refused now in well under a second."""
    d = copy.deepcopy(BASE)
    d["populations"][1]["size"] = 10 ** 8
    t0 = time.perf_counter()
    with pytest.raises(ScenarioError):
        scenario_from_dict(d, limits=LIMITS)
    assert time.perf_counter() - t0 < 1.0
    # the environment variable (sizes with a suffix) moves the limit: the estimate is ~10^3 GiB
    monkeypatch.setenv("MICROCIRCUIT_MAX_MEMORY", "4T")
    scenario_from_dict(d)     # validates (nothing is built)


def test_estimate_matches_measured_memory(tmp_path):
    """The estimate of le_chain at batch 1000 against the peak traced allocation of building it and
    running 3 chunks into a store: within a factor of 2 either way (measured on a 2-core VM: 501 MiB
    estimated vs 570 MiB traced at batch 2000)."""
    import tracemalloc
    sc = load_scenario(LE_CHAIN, ["simulation.batch=1000"])
    est, parts = L.estimate_memory(sc.data, sc.base_dir)
    warm = sc.build(output=False)
    warm.run(steps=1)          # the kernel compiles (or loads from the cache) outside the measurement
    warm.close()
    tracemalloc.start()
    try:
        sim = sc.build(output=str(tmp_path / "o.zarr"))
        sim.run(steps=3 * sc.data["simulation"].get("chunk_steps", 2000))
        peak = tracemalloc.get_traced_memory()[1]
        sim.close()
    finally:
        tracemalloc.stop()
    print(f"estimate {L.fmt_bytes(est)}, traced peak {L.fmt_bytes(peak)}")
    assert 0.5 <= est / peak <= 2.0, (est, peak, parts)


# ------------------------------------------------------------------------------ files
def test_scenario_file_read_with_a_size_limit(tmp_path, monkeypatch):
    """`microcircuit validate /dev/zero` read without bound; now at most limit + 1 bytes are read."""
    t0 = time.perf_counter()
    with pytest.raises(ScenarioError, match=r"larger than 64 MiB \(max_scenario_bytes\)"):
        load_scenario("/dev/zero")
    assert time.perf_counter() - t0 < 10
    big = tmp_path / "big.toml"
    big.write_text(LE_CHAIN.read_text())
    monkeypatch.setenv("MICROCIRCUIT_MAX_SCENARIO_BYTES", "1000")
    with pytest.raises(ScenarioError, match="larger than 1000 B"):
        load_scenario(big)


@pytest.mark.parametrize("text,path", [
    ("a = " + "[" * 50_000 + "]" * 50_000, ""),              # RecursionError inside tomllib
    ("x" + ".a" * 200 + " = 1", "x.a.a.a"),                  # dotted keys: 200 nested tables
    ("[simulation]\ndt = 0.1\n[populations_]\nv = " + "[" * 40 + "1" + "]" * 40, "populations_.v"),
])
def test_deep_nesting_is_a_clean_error(tmp_path, text, path):
    f = tmp_path / "deep.toml"
    f.write_text(text)
    with pytest.raises(ScenarioError) as ei:
        load_scenario(f)
    (p, msg), = ei.value.problems
    assert p.startswith(path)
    assert "nested" in msg and ("max_toml_depth" in msg or "too deeply" in msg)


def _npy(path, arr=None, shape=None, dtype="<f8"):
    if arr is not None:
        np.save(path, arr)
        return path
    with open(path, "wb") as fh:   # a header only: it claims a shape whose data are not there
        np.lib.format.write_array_header_1_0(fh, {"descr": dtype, "fortran_order": False, "shape": shape})
    return path


def test_stimulus_array_checked_by_header(tmp_path):
    """A stimulus .npy with the wrong width was a traceback at run time; complex values lost their
    imaginary part; a huge array was read whole. All are found from the header alone at load time."""
    def arr_stim(fname):
        return lambda d: d["stimuli"].__setitem__(0, {"target": "x", "waveform": "array", "file": fname})
    _npy(tmp_path / "wide.npy", np.zeros((5, 3)))
    probs, _ = problems(arr_stim("wide.npy"), tmp_path)
    assert "3 values per step, but population 'x' has 2 neurons" in probs["stimuli[0].file"]
    _npy(tmp_path / "cplx.npy", np.zeros((5, 2), complex))
    probs, _ = problems(arr_stim("cplx.npy"), tmp_path)
    assert "complex128 values; inputs must be real" in probs["stimuli[0].file"]
    _npy(tmp_path / "huge.npy", shape=(10 ** 10, 2))          # 160 GB claimed, 128 bytes on disk
    probs, _ = problems(arr_stim("huge.npy"), tmp_path)
    assert "max_input_bytes" in probs["stimuli[0].file"]
    _npy(tmp_path / "ok.npy", np.zeros((5, 2)))
    d = copy.deepcopy(BASE)
    arr_stim("ok.npy")(d)
    scenario_from_dict(d, base_dir=tmp_path, limits=LIMITS)


def test_weight_file_wrong_shape_names_file_and_field(tmp_path):
    _npy(tmp_path / "w.npy", np.zeros((3, 5)))
    probs, _ = problems(lambda d: d["projections"][0].update(weights={"dist": "array", "file": "w.npy"}), tmp_path)
    assert probs["projections[0].weights.file"] == ("'w.npy': weight array has shape (3, 5), expected (3, 2) "
                                                    "(post, pre)")


# ------------------------------------------------------------------------------ fields checked too late
FIELDS = [
    # (mutation, dotted path, text of the message) - each was a traceback or silently wrong before
    (lambda d: d["projections"][1].update(weights={"dist": "constant", "value": "abc"}),
     "projections[1].weights.value", 'dist = "constant" needs one finite number, got string'),
    (lambda d: d["projections"][1].update(weights={"dist": "constant", "value": [1, 2]}),
     "projections[1].weights.value", 'dist = "constant" needs one finite number, got array'),
    (lambda d: d["projections"][1].update(weights={"dist": "array", "value": [[1.0, 2.0], [3.0]]}),
     "projections[1].weights.value", "is ragged: element [1] has 1 values, expected 2"),
    (lambda d: d["projections"][1].update(weights={"dist": "array", "value": [[1.0, "x", 2.0]]}),
     "projections[1].weights.value", "element [0][1] is str 'x', expected a finite number"),
    (lambda d: d["projections"][1].update(weights={"dist": "array", "value": [[1.0, 2.0]]}),
     "projections[1].weights.value", "weight array has shape (1, 2), expected (1, 3) (post, pre)"),
    (lambda d: d["projections"][1].update(weights={"dist": "uniform", "low": 1.0, "high": -1.0}),
     "projections[1].weights.low", "low = 1 is above high = -1"),
    (lambda d: d["populations"][1].update(tau_m={"dist": "uniform", "low": 20.0, "high": 5.0}),
     "populations[1].tau_m.low", "low = 20 is above high = 5"),
    (lambda d: d["projections"][1].update(connector={"kind": "from_array", "array": [["a", "b", "c"]]}),
     "projections[1].connector.array", "element [0][0] is str 'a'"),
    (lambda d: d["recordings"][0].update(neurons={"foo": 1}),
     "recordings[0].neurons.foo", "unknown field"),
    (lambda d: d.update(analysis={"lag": [{"input": "x", "output": "nope"}]}),
     "analysis.lag[0].output", "names no population 'nope'"),
    (lambda d: d.update(analysis={"lag": [{"input": "x", "output": "o"}]}),
     "analysis.lag[0].input", "population 'x' is not recorded with variable r"),
    (lambda d: d["projections"][0]["plasticity"].update(t_on=5.0, t_off=1.0),
     "projections[0].plasticity.t_off", "t_off = 1 ms is before t_on = 5 ms"),
    (lambda d: d["projections"][0]["plasticity"].update(optimizer="adam", beta1=5.0),
     "projections[0].plasticity.beta1", "must be in [0, 1)"),
    (lambda d: d.update(templates=[{"kind": "layered", "sizes": [2, 2, 1], "prefix": "t", "eta": 0.1,
                                    "eta_factors": ["a", "b"]}]),
     "templates[0].eta_factors[0]", "expected a finite number >= 0"),
    (lambda d: d["stimuli"].__setitem__(0, {"target": "x", "waveform": "sines", "frequency_hz": 10.0,
                                            "amplitude": [1.0, 2.0, 3.0]}),      # numpy broadcast error
     "stimuli[0].amplitude", "has 3 values for 1 sine component(s)"),
    (lambda d: d["populations"][1].update(tau_m={"dist": "normal", "mean": 10.0, "std": 1.0}),
     "populations[1].tau_m", "the normal distribution can draw values <= 0"),   # compile: tau_m must be > 0
    (lambda d: d["populations"].append({"name": "e", "model": "error", "size": 3, "partner": "nope"}),
     "populations[3].partner", "names no population 'nope'"),                    # compile: no path
    (lambda d: d["projections"][0]["plasticity"].update(error_source="o"),
     "projections[0].plasticity.error_source", "must name an error population of 3 neurons"),
    (lambda d: d.update(sweep={"grid": 3}), "sweep.grid", "expected a table"),   # sweep: AttributeError
    (lambda d: d.update(output={"checkpoint_every_steps": 1}),
     "output.checkpoint_every_steps", "use at least 100 steps (min_checkpoint_steps)"),
]


@pytest.mark.parametrize("mutate,path,text", FIELDS, ids=[f[1] for f in FIELDS])
def test_fields_checked_at_load_time(mutate, path, text):
    probs, _ = problems(mutate)
    assert path in probs, probs
    assert text in probs[path]


def test_compile_keeps_a_last_guard_with_the_same_message():
    """Circuits built in Python skip scenario validation; compile raises CircuitError (not a
    ValueError from numpy) with the shared message."""
    from microcircuit.circuit import Circuit
    from microcircuit.compile import compile_circuit
    from microcircuit.errors import CircuitError
    c = Circuit("t")
    c.add_population("x", "input", 2)
    c.add_population("y", "rate", 1)
    c.add_projection("x", "y", weights={"dist": "array", "value": [[1.0], [2.0, 3.0]]})
    with pytest.raises(CircuitError, match=r"weights.value: is ragged"):
        compile_circuit(c, dt=0.1)


def test_checkpoints_below_a_chunk_warn():
    d = copy.deepcopy(BASE)
    d["output"] = {"checkpoint_every_steps": 500}
    with pytest.warns(ScenarioWarning, match="output.checkpoint_every_steps: a checkpoint every 500 steps"):
        sc = scenario_from_dict(d, limits=LIMITS)
    assert [p for p, _ in sc.warnings] == ["output.checkpoint_every_steps"]
    d["output"] = {"checkpoint_every_steps": 2000}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scenario_from_dict(d, limits=LIMITS)


# ------------------------------------------------------------------------------ CLI
def _cli(*args, env=None, cwd=None):
    return subprocess.run([sys.executable, "-m", "microcircuit.cli", *args], capture_output=True, text=True,
                          env=dict(os.environ, **(env or {})), cwd=cwd, timeout=300)


def test_validate_escapes_control_characters(tmp_path):
    """A scenario name with terminal escapes was printed raw by `microcircuit validate`."""
    f = tmp_path / "esc.toml"
    f.write_text(LE_CHAIN.read_text().replace('name = "le_chain"', 'name = "x\\u001b[2J\\u001b]0;pwned\\u0007"'))
    r = _cli("validate", str(f))
    assert r.returncode == 0, r.stderr
    assert "\x1b" not in r.stdout and "\x07" not in r.stdout
    assert "x\\x1b[2J\\x1b]0;pwned\\x07" in r.stdout
    assert "memory estimate:" in r.stdout
    bad = tmp_path / "bad\x1b[31m.toml"
    bad.write_text('[simulation]\ndt = "\x1b[2J"\n')
    r = _cli("validate", str(bad))
    assert r.returncode == 2 and "\x1b" not in r.stderr, r.stderr


def test_validate_limit_flags():
    r = _cli("validate", str(LE_CHAIN), "--max-steps", "100")
    assert r.returncode == 2 and "10000 steps, over the limit of 100" in r.stderr
    r = _cli("validate", str(LE_CHAIN), "--max-memory", "1K")
    assert r.returncode == 2 and "over the limit of 1 KiB (max_memory_bytes)" in r.stderr
    r = _cli("validate", "/dev/zero")
    assert r.returncode == 2 and "max_scenario_bytes" in r.stderr and "Traceback" not in r.stderr


def test_run_honours_output_overwrite(tmp_path):
    """`[output] overwrite = true` was ignored by the CLI: the second run refused the existing store."""
    f = tmp_path / "s.toml"
    f.write_text('[simulation]\ndt = 0.1\nduration = 1.0\n[[populations]]\nname = "x"\nmodel = "input"\nsize = 1\n'
                 '[[recordings]]\npopulation = "x"\n[output]\npath = "o.zarr"\noverwrite = true\n')
    for _ in range(2):
        r = _cli("run", str(f), "--no-progress", cwd=tmp_path)
        assert r.returncode == 0, r.stderr
    f.write_text(f.read_text().replace("overwrite = true", "overwrite = false"))
    r = _cli("run", str(f), "--no-progress", cwd=tmp_path)
    assert r.returncode != 0 and "Traceback" not in r.stderr


# ------------------------------------------------------------------------------ sweeps
def test_sweep_arguments_and_grid_checked_before_anything_runs(tmp_path):
    from microcircuit.sweep import check_grid, SweepError, run_sweep
    f = tmp_path / "s.toml"
    f.write_text('[simulation]\ndt = 0.1\nduration = 1.0\n[[populations]]\nname = "x"\nmodel = "input"\nsize = 2\n'
                 '[[populations]]\nname = "y"\nsize = 1\ntau_m = 10.0\n[[projections]]\npre = "x"\npost = "y"\n'
                 '[[recordings]]\npopulation = "y"\n')
    out = tmp_path / "sw.zarr"
    # --seeds 1e8 ate 5 GB with nothing written: refused at once by the point count
    with pytest.raises(SweepError, match=r"100,000,000 points \(100000000 seeds\), over the limit of 100,000"):
        run_sweep(f, {}, seeds=10 ** 8, out=out, workers=0)
    # every value of every key is validated (only the first was): the 2nd and 3rd values are reported
    with pytest.raises(ScenarioError) as ei:
        run_sweep(f, {"populations.y.tau_m": [5.0, "abc", -3.0]}, out=out, workers=0)
    paths = [p for p, _ in ei.value.problems]
    assert paths == ['--grid populations.y.tau_m="abc": populations[1].tau_m',
                     "--grid populations.y.tau_m=-3.0: populations[1].tau_m"], paths
    # values that change the store's shape are refused at setup (dt, duration, sizes)
    for key, vals in (("simulation.dt", [0.1, 0.05]), ("simulation.duration", [1.0, 2.0]),
                      ("populations.y.size", [1, 2])):
        with pytest.raises(ScenarioError, match="every point of a sweep writes into one store of one shape"):
            run_sweep(f, {key: vals}, out=out, workers=0)
    assert not out.exists()                  # nothing was created by any refused sweep
    from microcircuit.scenario import load_scenario as ld
    sc = ld(f)
    with pytest.raises(SweepError, match="--workers must be an integer >= 0"):
        check_grid(sc, {"simulation.seed": [1, 2]}, workers=-1)
    assert check_grid(sc, {"simulation.seed": [1, 2]}, seeds=None, workers=0) == 2
    r = _cli("sweep", str(f), "--seeds", "2", "--workers", "-1")
    assert r.returncode == 2 and "argument --workers: must be >= 0, got -1" in r.stderr
    r = _cli("sweep", str(f), "--seeds", "1e8")
    assert r.returncode == 2 and "argument --seeds: expected an integer >= 1, got '1e8'" in r.stderr


def test_cli_errors_escape_control_characters(tmp_path):
    """Every CLI error goes through one printer: a file name with an escape sequence in a message
    that is not a ScenarioError (here: a missing recording store) is shown escaped too."""
    r = _cli("info", str(tmp_path / "no\x1b]0;x\x07.zarr"))
    assert r.returncode != 0 and "\x1b" not in r.stderr and "\x07" not in r.stderr, r.stderr


def test_in_memory_recording_checked_before_building():
    """sc.build() without a store keeps every recorded value (sweep points do too): at duration 10^7 ms
    le_chain's recordings alone are ~3.7 GiB, refused against a 1 GiB limit before compiling; with a
    store the same scenario needs only the per-chunk buffers and builds."""
    from microcircuit.sweep import check_grid, SweepError
    sc = load_scenario(LE_CHAIN, ["simulation.duration=10000000"])
    os.environ["MICROCIRCUIT_MAX_MEMORY"] = "1G"
    try:
        with pytest.raises(ScenarioError, match=r"recordings\[\d\]: recording in memory .* over the limit of 1 GiB"):
            sc.build(output=False)
        with pytest.raises(SweepError, match="1 points at once need about"):
            check_grid(sc, {"simulation.seed": [1]}, workers=1)
    finally:
        del os.environ["MICROCIRCUIT_MAX_MEMORY"]


def test_complex_arrays_rejected_from_python_too():
    """The last guard of the .npy header check: an ArrayStimulus built in Python from complex values
    raised only a ComplexWarning and dropped the imaginary part."""
    from microcircuit.stimuli import ArrayStimulus, StimulusError
    with pytest.raises(StimulusError, match="complex128 values; inputs must be real"):
        ArrayStimulus("x", np.ones((3, 2), complex))
    assert ArrayStimulus("x", np.ones((3, 2), np.int32)).array.dtype == np.float64
