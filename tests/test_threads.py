"""[simulation] threads: BLAS threads of a run (issue: both cores in one run).

The kernel's large batched products go to BLAS (``microcircuit.blas.gemm``); a run limits BLAS to
``threads`` threads while it steps and restores the process's setting afterwards. BLAS splits a
product's output among threads, never one output's sum, so the results must not depend on it: the test
compares 1 and 2 threads bit for bit on a network whose products reach BLAS and are large enough for
OpenBLAS to thread them (256 x 512 x 64). Speed is measured by benchmarks/bench_threads.py, not here.
"""
from __future__ import annotations

import os

import numpy as np
import pytest
from threadpoolctl import threadpool_info

import microcircuit as mc
from microcircuit.errors import ScenarioError, SimulationError
from microcircuit.scenario.load import scenario_from_dict
from microcircuit.simulation import Simulation, Recording, blas_threads, AUTO_THREADS_MIN_PRODUCT
from microcircuit.stimuli import ArrayStimulus


def _prog(sizes=(512, 256, 10), batch=64):
    c = mc.layered(list(sizes), hidden={"tau_m": 10.0, "activation": "tanh"},
                   output={"tau_m": 10.0, "activation": "linear", "loss": "rate", "beta": 0.1}, eta=0.05)
    rng = np.random.default_rng(3)
    stim = [ArrayStimulus("input", rng.random((8, sizes[0], batch)), hold_steps=5, repeat=True),
            ArrayStimulus("output", rng.random((8, sizes[-1], batch)), hold_steps=5, repeat=True, kind="target")]
    return mc.compile(c, dt=0.1, batch=batch, stimuli=stim, seed=0)


def _blas_threads_now():
    return {d["filepath"]: d["num_threads"] for d in threadpool_info() if d["user_api"] == "blas"}


def test_results_do_not_depend_on_threads():
    """200 learning steps, threads 1 vs 2: every recorded rate and every weight equal bit for bit
    (expected 0.0 difference: BLAS threads split the output, not the sums)."""
    out = []
    for n in (1, 2):
        prog = _prog()
        sim = Simulation(prog, recordings=[Recording("layer1", ["r"]), Recording("output", ["u"])], threads=n)
        assert sim.threads == n
        sim.run(steps=200)
        res = sim.results()
        out.append((res["layer1"]["r"].values, res["output"]["u"].values, prog.weights.copy()))
    for a, b in zip(*out):
        assert np.array_equal(a, b)
    assert np.max(np.abs(out[0][2] - _prog().weights)) > 1e-4      # the weights learned (the test can fail)


def test_automatic_choice_by_size_and_restored_setting(monkeypatch):
    """threads = 0: every usable core when the largest product (n_post n_pre batch) reaches 2^20
    multiply-adds (512 * 256 * 64 = 2^23), one thread below (512 * 256 * 1 = 2^17); an explicit number
    wins. After run() the process's BLAS thread counts are what they were before."""
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(var, raising=False)
    cores = len(os.sched_getaffinity(0))
    assert 512 * 256 * 64 >= AUTO_THREADS_MIN_PRODUCT > 512 * 256
    assert blas_threads(_prog(batch=64), 0) == cores
    assert blas_threads(_prog(batch=1), 0) == 1
    assert blas_threads(_prog(batch=1), 3) == 3
    with pytest.MonkeyPatch.context() as mp:        # a sweep worker's environment caps the choice
        mp.setenv("OPENBLAS_NUM_THREADS", "1")
        assert blas_threads(_prog(batch=64), 0) == 1
        assert blas_threads(_prog(batch=64), 2) == 2
    with pytest.raises(SimulationError, match="threads must be >= 0"):

        blas_threads(_prog(batch=1), -1)
    sim = Simulation(_prog(batch=4), threads=1)      # loads the kernel and SciPy's BLAS
    before = _blas_threads_now()
    assert max(before.values()) > 1 or os.cpu_count() == 1
    sim.run(steps=5)
    assert _blas_threads_now() == before
    # while it steps (the gate table is asked for inside the run), BLAS has exactly `threads` threads
    seen = []

    def gates(k0, k1):
        seen.append(set(_blas_threads_now().values()))
        return np.ones((k1 - k0, 2))
    for n in (1, 2):
        Simulation(_prog(batch=4), threads=n, gates=gates).run(steps=5)
        assert seen[-1] == {n}, seen


def test_scenario_field_is_validated():
    """simulation.threads is an integer >= 0, checked at load time with its dotted path."""
    base = {"scenario": {"name": "t"}, "simulation": {"dt": 0.1, "duration": 1.0, "threads": -2},
            "populations": [{"name": "x", "model": "input", "size": 2}]}
    with pytest.raises(ScenarioError, match=r"simulation\.threads"):
        scenario_from_dict(base)
    base["simulation"]["threads"] = 2
    assert scenario_from_dict(base).build().threads == 2
