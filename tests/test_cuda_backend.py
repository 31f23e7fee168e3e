"""The CUDA back end (``backend = "cuda"``, microcircuit/cuda_backend.py) against the CPU kernel.

No GPU is needed: the comparisons run under Numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``), which
executes the device kernels as Python on the host. The variable must be set before ``numba.cuda`` is
first imported, so the cases run in one subprocess per test session (``python tests/test_cuda_backend.py
--cases``), never in the pytest process, where another test may already have imported numba.cuda
without it. The subprocess prints one JSON line per case with the largest deviations from
``backend = "numba"``; the tests read them.

Expected numbers: under the simulator every device kernel performs the CPU kernel's IEEE float64
operations in the same order (same expressions, same summation order of its loop paths, the same libm
for exp/tanh/log1p, the same polynomial activations for softplus/logistic/soft-rectifier, the normal
draws taken from the program's generator in the same order), so the deviations are exactly 0.0; the
tests allow 1e-10 (the back end's stated agreement). On a real GPU, NVVM's fused multiply-adds and
libdevice's transcendental functions change the last bits (see the module docstring); these tests do
not cover that, the benchmark (benchmarks/bench_gpu.py) prints the deviation it measures there.

The clear-error tests run without the simulator and with ``CUDA_VISIBLE_DEVICES=""`` (no device
visible), so they expect the SimulationError on any machine.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOL = 1e-10


# =============================================================================================== cases
# (run in the subprocess only; each returns {name: max |cuda - numba|} over the quantities compared)

def _compare(build, steps, chunk=7, gates=None, recordings=()):
    """Run the program from ``build()`` on both back ends (chunks of ``chunk`` steps, so chunk
    boundaries and restarts are crossed) and return the largest deviations."""
    import numpy as np
    from microcircuit.errors import DivergenceError
    from microcircuit.simulation import Simulation

    out = {}
    for backend in ("numba", "cuda"):
        prog = build()
        sim = Simulation(prog, backend=backend, gates=gates, chunk_steps=chunk, recordings=list(recordings))
        err = None
        try:
            sim.run(steps=steps)
        except DivergenceError as exc:
            err = (exc.population, exc.variable, exc.step)
        res = sim.results()
        recs = {f"{g}/{v}": np.asarray(res[g][v]) for g in res.children for v in res[g].data_vars}
        out[backend] = (prog, recs, err)
    (a, ra, ea), (b, rb, eb) = out["numba"], out["cuda"]

    def dev(x, y):
        x, y = np.asarray(x, float), np.asarray(y, float)
        if x.shape != y.shape:
            return float("inf")
        same = (x == y) | (np.isnan(x) & np.isnan(y))       # equal, or both NaN (a diverged state)
        return float(np.max(np.where(same, 0.0, np.abs(x - y)))) if x.size else 0.0

    d = {"state": dev(a.state, b.state), "prev": dev(a.prev, b.prev), "weights": dev(a.weights, b.weights),
         "dw_filter": dev(a.dw_filter, b.dw_filter), "g0": dev(a.neuron["g0"], b.neuron["g0"]),
         "bias": dev(a.neuron["bias"], b.neuron["bias"]),
         "opt_counts": dev(a.proj_float[:, 9], b.proj_float[:, 9]) + dev(a.pop_float[:, 11], b.pop_float[:, 11]),
         "recordings": max([dev(ra[k], rb.get(k, np.zeros(0))) for k in ra] + [0.0]),
         "n_recorded": sum(v.size for v in rb.values()),
         "step": b.step, "steps_numba": a.step,
         "divergence_numba": ea, "divergence_cuda": eb,
         **_changes(a, build())}
    return d


def _changes(done, start):
    """How far the run moved the learned parameters (so that a comparison is not vacuous)."""
    import numpy as np
    return {"weights_changed": float(np.max(np.abs(done.weights - start.weights))) if done.weights.size else 0.0,
            "g0_changed": float(np.max(np.abs(done.neuron["g0"] - start.neuron["g0"]))),
            "bias_changed": float(np.max(np.abs(done.neuron["bias"] - start.neuron["bias"])))}


def _rec(pop, variables, stride=1):
    from microcircuit.simulation import Recording
    return Recording(pop, list(variables), stride=stride)


def _gates(period_nudge=20, period_learn=30):
    import numpy as np

    def g(k0, k1):
        k = np.arange(k0, k1)
        return np.column_stack([(k % period_nudge < period_nudge * 3 // 4).astype(float),
                                (k % period_learn < period_learn * 2 // 3).astype(float)])
    return g


def case_le_rate_network():
    """LE rate network 3-4-2 (tanh hidden, rate loss), error rule with transpose feedback, batch 2,
    synchronous, input and target held for 5 steps, gates switching nudging and learning."""
    import numpy as np
    import microcircuit as mc
    from microcircuit.stimuli import ArrayStimulus

    def build(scheme="synchronous"):
        c = mc.layered([3, 4, 2], hidden={"tau_m": 1.0, "activation": "tanh"},
                       output={"tau_m": 1.0, "activation": "tanh", "loss": "rate", "beta": 0.5}, eta=0.5)
        rng = np.random.default_rng(3)
        stim = [ArrayStimulus("input", rng.random((6, 3, 2)), hold_steps=5, repeat=True),
                ArrayStimulus("output", rng.random((6, 2, 2)) - 0.5, hold_steps=5, repeat=True, kind="target")]
        return mc.compile(c, dt=0.1, batch=2, scheme=scheme, seed=0, stimuli=stim)
    recs = [_rec("layer1", ["u", "r", "e"]), _rec("output", ["r"], stride=3)]
    return {"synchronous": _compare(build, 40, gates=_gates(), recordings=recs),
            "sequential": _compare(lambda: build("sequential"), 40, gates=_gates(), recordings=recs)}


def case_gle_lagline():
    """scenarios/gle_lagline.toml (GLE teacher and student, separate error populations, tau_m learning
    with Adam) at batch 3 with a sines input in place of its 100-column input file, 30 steps of its
    dt = 0.01 ms."""
    import tomllib
    from microcircuit.scenario import scenario_from_dict
    data = tomllib.loads((ROOT / "scenarios" / "gle_lagline.toml").read_text())
    data["simulation"]["batch"] = 3
    data["stimuli"] = [{"name": "sines", "target": "input", "kind": "rate", "waveform": "sines",
                        "frequency_hz": [50.0, 130.0], "amplitude": [1.0, 0.5]}]
    data.pop("output", None)
    sc = scenario_from_dict(data, base_dir=ROOT / "scenarios")

    def build():
        return sc.build(output=False).program
    return {"gle_lagline": _compare(build, 30, recordings=[_rec("hidden", ["u", "r"]), _rec("err_hidden", ["e"])])}


def case_cortical_mapping():
    """scenarios/gle_cortical_mapping.toml: 1-2-1 GLE with error populations, tied W^T (error_project),
    e into the membranes (project_error); 40 steps."""
    import microcircuit as mc
    sc = mc.load_scenario(ROOT / "scenarios" / "gle_cortical_mapping.toml")

    def build():
        return sc.build(output=False).program
    return {"cortical_mapping": _compare(build, 40, recordings=[_rec("hidden", ["r"]), _rec("err_hidden", ["e"])])}


def case_microcircuit():
    """Dendritic microcircuit 4-5-2 in the shape of scenarios/mc_bars_le.toml (bern preset, LE, softplus:
    the polynomial activation path; Urbanczik-Senn and homeostatic plasticity with w_max), batch 2,
    sequential; and the original (non-LE) sacramento2018 microcircuit with learned top-down weights
    (rule target_prop, logistic) under scheme published_microcircuit with the nudge gated off part of the
    time (the soma's g_som-kept path)."""
    import microcircuit as mc
    from microcircuit.microcircuit import dendritic_microcircuit
    from microcircuit.stimuli import OrnsteinUhlenbeck

    def stim():
        return [OrnsteinUhlenbeck("input", sigma=0.5, tau=5.0, seed=1, mean=0.5),
                OrnsteinUhlenbeck("output", kind="target", sigma=0.3, tau=5.0, seed=2, mean=0.5)]

    def build_le():
        c = dendritic_microcircuit((4, 5, 2), preset="bern", latent_equilibrium=True,
                                   eta={"up": [4.0, 0.8], "ip": 1.6, "pi": 0.5}, w_max=[4.0, 5.0], seed=0)
        return mc.compile(c, dt=0.1, batch=2, scheme="sequential", stimuli=stim(), seed=0)

    def build_orig():
        c = dendritic_microcircuit((4, 5, 2), preset="sacramento2018", latent_equilibrium=False,
                                   activation="logistic", top_down="learned",
                                   eta={"up": [0.5, 0.1], "ip": 0.2, "pi": 0.2, "down": 0.1}, seed=1)
        return mc.compile(c, dt=0.1, batch=1, scheme="published_microcircuit", stimuli=stim(), seed=0)
    recs = [_rec("pyr1", ["v"]), _rec("output", ["u"], stride=2)]
    return {"microcircuit_le": _compare(build_le, 30, recordings=recs),
            "microcircuit_published": _compare(build_orig, 30, gates=_gates(), recordings=recs)}


def case_adam():
    """Adam on the weights (and momentum on one projection) of a GLE-style 3-5-3 network with a
    cross-entropy output (the softmax normaliser kernel), bias learning and tau_m learning with Adam,
    batch 4, 40 steps."""
    import numpy as np
    import microcircuit as mc
    from microcircuit.stimuli import ArrayStimulus

    def build():
        c = mc.Circuit("adam")
        c.add_population("x", "input", 3)
        c.add_population("h", "rate", 5, tau_m=[1.0, 0.5, 2.0, 1.0, 0.7], tau_r=[1.0, 0.1, 0.2, 1.0, 0.3],
                         activation="tanh", prospective_errors=True, tau_learning="gle", eta_tau=0.05,
                         tau_optimizer="adam", eta_bias=0.1)
        c.add_population("y", "rate", 3, tau_m=1.0, activation="linear", loss="cross_entropy", beta=1.0,
                         prospective_errors=True)
        c.add_projection("x", "h", name="W1", weights={"dist": "normal", "std": 0.5},
                         plasticity={"rule": "error", "eta": 0.05, "optimizer": "adam"})
        c.add_projection("h", "y", name="W2", weights={"dist": "normal", "std": 0.5},
                         plasticity={"rule": "error", "eta": 0.05, "optimizer": "momentum", "tau_w": 0.3})
        rng = np.random.default_rng(5)
        stim = [ArrayStimulus("x", rng.normal(size=(8, 3, 4)), hold_steps=4, repeat=True),
                ArrayStimulus("y", np.eye(3)[rng.integers(0, 3, (8, 4))].transpose(0, 2, 1), hold_steps=4,
                              repeat=True, kind="target")]
        return mc.compile(c, dt=0.05, batch=4, scheme="synchronous", seed=0, stimuli=stim)
    return {"adam": _compare(build, 40, gates=_gates(), recordings=[_rec("h", ["u", "e"])])}


def case_random_circuits():
    """tests/test_engine_equivalence.random_circuit (every feature at once: LE/GLE/leaky neurons, all
    losses, fixed-probability masks, random feedback, tau_w, w_max, tau and bias learning, a dendritic
    microcircuit, noise sigma > 0, OU currents), 40 steps, both schemes."""
    sys.path.insert(0, str(ROOT / "tests"))
    import microcircuit as mc
    from test_engine_equivalence import random_circuit, _gates as eq_gates

    out = {}
    for seed, scheme in ((0, "synchronous"), (1, "sequential")):
        def build(seed=seed, scheme=scheme):
            c, stim = random_circuit(seed)
            return mc.compile(c, dt=0.05, batch=[1, 3][seed % 2], scheme=scheme, seed=seed, stimuli=stim)
        out[f"random_{seed}_{scheme}"] = _compare(build, 40, chunk=17, gates=eq_gates,
                                                  recordings=[_rec("out", ["r", "u"]), _rec("p1", ["v"], 3)])
    return out


def case_float32():
    """The first random circuit compiled in float32 (30 steps, synchronous)."""
    sys.path.insert(0, str(ROOT / "tests"))
    import microcircuit as mc
    from test_engine_equivalence import random_circuit, _gates as eq_gates

    def build():
        c, stim = random_circuit(0)
        return mc.compile(c, dt=0.05, batch=1, scheme="synchronous", seed=0, stimuli=stim, dtype="float32")
    return {"float32": _compare(build, 30, chunk=13, gates=eq_gates, recordings=[_rec("out", ["r"])])}


def case_divergence():
    """An LE network whose learning rate makes it blow up: both back ends must stop at the same step
    with the same population and variable, keep the same state and the records before that step."""
    import numpy as np
    import microcircuit as mc
    from microcircuit.stimuli import ArrayStimulus

    def build():
        c = mc.layered([2, 3, 1], hidden={"tau_m": 1.0, "activation": "linear"},
                       output={"tau_m": 1.0, "activation": "linear", "loss": "rate", "beta": 1.0},
                       eta=1e6, weights={"dist": "constant", "value": 3.0})
        stim = [ArrayStimulus("input", np.full((1, 2, 1), 5.0), hold_steps=1, repeat=True),
                ArrayStimulus("output", np.full((1, 1, 1), -5.0), hold_steps=1, repeat=True, kind="target")]
        return mc.compile(c, dt=0.1, batch=1, seed=0, stimuli=stim)
    return {"divergence": _compare(build, 60, chunk=7, recordings=[_rec("layer1", ["u"])])}


CASES = [case_le_rate_network, case_gle_lagline, case_cortical_mapping, case_microcircuit, case_adam,
         case_random_circuits, case_float32, case_divergence]


def _run_cases():
    import time
    for case in CASES:
        t0 = time.perf_counter()
        for name, d in case().items():
            d["seconds"] = round(time.perf_counter() - t0, 2)
            print("CASE " + json.dumps({"name": name, **d}), flush=True)


# =============================================================================================== tests

@pytest.fixture(scope="module")
def results():
    """All cases, run once in a subprocess under the CUDA simulator: {case name: deviations}."""
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1", PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--cases"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    out = {}
    for line in proc.stdout.splitlines():
        if line.startswith("CASE "):
            d = json.loads(line[5:])
            out[d.pop("name")] = d
    return out


def _check(d, name):
    """Every compared quantity within TOL (measured: 0.0, see the module docstring), the same number of
    steps done, and something recorded and learned, so the comparison is not vacuous."""
    for k in ("state", "prev", "weights", "dw_filter", "g0", "bias", "opt_counts", "recordings"):
        assert d[k] <= TOL, f"{name}: {k} deviates by {d[k]:.3g} (cuda vs numba)"
    assert d["step"] == d["steps_numba"], name
    assert d["n_recorded"] > 0, name


@pytest.mark.parametrize("name", ["synchronous", "sequential"])
def test_le_rate_network_equals_cpu_kernel(results, name):
    """Expect 0.0 deviation (<= 1e-10 allowed) in every signal, weight, record after 40 steps; the
    weights moved (> 1e-4: plasticity ran)."""
    d = results[name]
    _check(d, name)
    assert d["weights_changed"] > 1e-4


def test_gle_lagline_with_adam_tau_learning_equals_cpu_kernel(results):
    """Expect 0.0 deviation in signals, tau_m (g0 = 1/tau_m, learned with Adam) and Adam's update
    counters (equal counts: 0.0) after 30 steps at batch 3."""
    d = results["gle_lagline"]
    _check(d, "gle_lagline")
    assert d["g0_changed"] > 0.0      # tau_m learning ran (the student's weights are fixed in 30 steps)


def test_cortical_mapping_equals_cpu_kernel(results):
    """Expect 0.0 deviation: error populations, tied W^T error projection, e into the membranes, and the
    weights learned from the error populations' e (changed by > 0)."""
    d = results["cortical_mapping"]
    _check(d, "cortical_mapping")
    assert d["weights_changed"] > 0.0


@pytest.mark.parametrize("name", ["microcircuit_le", "microcircuit_published"])
def test_dendritic_microcircuit_equals_cpu_kernel(results, name):
    """Expect 0.0 deviation: LE microcircuit (softplus through the polynomial activations) and the
    original one under scheme published_microcircuit with learned top-down weights; plasticity moved the
    weights (> 1e-6)."""
    d = results[name]
    _check(d, name)
    assert d["weights_changed"] > 1e-6


def test_adam_and_momentum_equal_cpu_kernel(results):
    """Expect 0.0 deviation in weights, optimiser state (dw_filter holds Adam's m, v and momentum's m),
    learned biases and tau_m, and equal optimiser counters, with a cross-entropy output."""
    d = results["adam"]
    _check(d, "adam")
    assert d["weights_changed"] > 1e-4 and d["g0_changed"] > 0.0 and d["bias_changed"] > 0.0


@pytest.mark.parametrize("name", ["random_0_synchronous", "random_1_sequential"])
def test_random_circuits_with_noise_equal_cpu_kernel(results, name):
    """Expect 0.0 deviation although the circuits are noisy (sigma > 0): the normal draws come from the
    program's generator in the CPU kernel's order."""
    _check(results[name], name)


def test_float32_program_agrees_to_float32_rounding(results):
    """Expect float32 agreement, not bit equality: measured 1.8e-7 (state, |values| < 1.4), 2.3e-10
    (weights), 7.2e-7 (g0 = 1/tau_m): a few float32 ulps; allowed 1e-5. Why not 0: the simulator
    evaluates the device code in NumPy scalars, whose float32 * Python-float products stay float32
    (NEP 50), where Numba's typing (CPU kernel, and the compiled GPU kernels) computes them in float64."""
    d = results["float32"]
    for k in ("state", "prev", "weights", "dw_filter", "g0", "bias", "recordings"):
        assert d[k] <= 1e-5, (k, d[k])
    assert d["opt_counts"] == 0.0 and d["step"] == d["steps_numba"] == 30


def test_divergence_stops_where_the_cpu_kernel_stops(results):
    """Expect both back ends to raise DivergenceError at the same step, population and variable (measured
    on the CPU kernel: output, u, step 9, inside the second chunk of 7 steps), with equal state, weights
    and records up to that step (0.0; non-finite values compare equal where both have them)."""
    d = results["divergence"]
    assert d["divergence_numba"] is not None and d["divergence_cuda"] == d["divergence_numba"], d
    assert d["step"] == d["steps_numba"] < 60
    for k in ("state", "weights", "recordings"):    # non-finite values compare equal where both have them
        assert d[k] <= TOL, (k, d[k])


def _no_device_run(code):
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    env.update(CUDA_VISIBLE_DEVICES="", PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)


def test_no_device_gives_a_clear_error():
    """Expect a SimulationError (a MicrocircuitError) naming the cause and both fixes, from the Python API
    and from a scenario with simulation.backend = "cuda", when no CUDA device is visible."""
    code = (
        "import microcircuit as mc\n"
        "from microcircuit.errors import SimulationError, MicrocircuitError\n"
        "from microcircuit.simulation import Simulation\n"
        "prog = mc.compile(mc.layered([2, 2]), dt=0.1)\n"
        "try:\n"
        "    Simulation(prog, backend='cuda')\n"
        "except SimulationError as exc:\n"
        "    assert isinstance(exc, MicrocircuitError)\n"
        "    print('API:', exc)\n"
        "sc = mc.load_scenario('scenarios/le_chain.toml', overrides=['simulation.backend=cuda'])\n"
        "try:\n"
        "    sc.build(output=False)\n"
        "except SimulationError as exc:\n"
        "    print('SCENARIO:', exc)\n")
    proc = _no_device_run(code)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(("API:", "SCENARIO:"))]
    assert len(lines) == 2, proc.stdout
    for ln in lines:
        assert "no CUDA GPU" in ln and "microcircuit[cuda]" in ln and 'backend = "numba"' in ln, ln


def test_missing_numba_cuda_gives_a_clear_error():
    """Expect a SimulationError naming the missing package and the install command when numba.cuda
    cannot be imported (simulated by blocking the import)."""
    code = (
        "import sys\n"
        "sys.modules['numba.cuda'] = None   # import numba.cuda now raises ImportError\n"
        "import microcircuit as mc\n"
        "from microcircuit.errors import SimulationError\n"
        "from microcircuit.simulation import Simulation\n"
        "try:\n"
        "    Simulation(mc.compile(mc.layered([2, 2]), dt=0.1), backend='cuda')\n"
        "except SimulationError as exc:\n"
        "    print('ERR:', exc)\n")
    proc = _no_device_run(code)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ln = next(ln for ln in proc.stdout.splitlines() if ln.startswith("ERR:"))
    assert "numba-cuda" in ln and "microcircuit[cuda]" in ln and 'backend = "numba"' in ln, ln


def test_gpu_benchmark_exits_clearly_without_a_gpu():
    """Expect benchmarks/bench_gpu.py to exit with status 2 and a message naming the missing GPU (its
    no-GPU path; the measurement itself needs a GPU)."""
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    env.update(CUDA_VISIBLE_DEVICES="", PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_gpu.py")], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "no CUDA GPU" in proc.stderr


if __name__ == "__main__" and "--cases" in sys.argv:
    if os.environ.get("NUMBA_ENABLE_CUDASIM") != "1":
        sys.exit("run the cases with NUMBA_ENABLE_CUDASIM=1 (Numba's CUDA simulator)")
    _run_cases()
