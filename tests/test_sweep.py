"""Sweeps on Dask: 2 local worker processes give the same numbers as independent sequential runs,
and a re-run skips completed points."""
import numpy as np
import pytest
import zarr

import distributed  # noqa: F401  (a core dependency: a missing install must fail, not skip)

from microcircuit.cli import main
from microcircuit.scenario import load_scenario
from microcircuit.sweep import open_sweep, parse_grid, run_sweep, sweep_points

SCENARIO = """
[scenario]
name = "sw"

[simulation]
dt = 0.1
duration = 20.0
seed = 11

[[templates]]
kind = "layered"
sizes = [3, 5, 2]
hidden = { tau_m = 5.0, activation = "tanh", sigma = 0.5 }
output = { tau_m = 5.0, activation = "linear", loss = "rate", beta = 0.5 }
eta = 0.05
weights = { dist = "normal", std = 0.5 }

[[stimuli]]
target = "layer0"
waveform = "ou"
sigma = 1.0
tau = 2.0
seed = 5

[[recordings]]
population = "layer1"
variables = ["u", "r"]

[[recordings]]
population = "layer2"
variables = ["r"]
stride = 3

[output]
path = "ignored_by_sweeps.zarr"
"""


@pytest.fixture
def scenario(tmp_path):
    p = tmp_path / "sw.toml"
    p.write_text(SCENARIO)
    return p


def _direct(path, overrides):
    sc = load_scenario(path, overrides)
    sc.data["output"].pop("path")
    sim = sc.build(output=None)
    sim.run(sc.data["simulation"]["duration"])
    return sim


def test_parse_grid_and_seeds():
    """'--grid a=1,2.5,x' parses TOML values [1, 2.5, 'x']; 2 grid values x 3 seeds = 6 points in C order;
    the seeds come from SeedSequence(11).spawn(3), identical for every grid value and all distinct."""
    assert parse_grid(["a.b=1,2.5,x", "c=[1,2],[3,4]"]) == {"a.b": [1, 2.5, "x"], "c": [[1, 2], [3, 4]]}
    pts = sweep_points({"k": [1, 2]}, seeds=3, base_seed=11)
    assert [idx for idx, _ in pts] == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]
    seeds = [ov["simulation.seed"] for _, ov in pts]
    assert seeds[:3] == seeds[3:] and len(set(seeds[:3])) == 3


def test_dask_sweep_matches_sequential_runs_and_skips_done(scenario, tmp_path):
    """4 points (tau_m in {4, 8} x 2 seeds) on a LocalCluster of 2 processes. Every recorded array and
    final weight matrix equals (==) an independent in-process run with the same overrides, and the 4
    points all differ from each other (tau_m and the noise seed both matter). A second call runs 0
    points and skips 4; after clearing one 'done' flag a third call runs exactly that point again."""
    out = tmp_path / "sw.zarr"
    grid = {"templates[0].hidden.tau_m": [4.0, 8.0]}
    res = run_sweep(scenario, grid, seeds=2, out=out, workers=2)
    assert res["n_points"] == 4 and len(res["ran"]) == 4 and res["skipped"] == []
    ds = open_sweep(out).load()
    assert ds["done"].values.all()
    assert ds["layer1.u"].shape == (2, 2, 200, 1, 5)
    assert ds["layer2.r"].shape == (2, 2, 67, 1, 2)          # ceil(200 / 3) records at stride 3
    seen = []
    for idx, ov in sweep_points(grid, 2, 11):
        sim = _direct(scenario, [f"{k}={v}" for k, v in ov.items()])
        tree = sim.results()
        sel = dict(zip(res["dims"], idx))
        pt = ds.isel(sel)
        np.testing.assert_array_equal(pt["layer1.u"].values, tree["layer1"]["u"].values)
        np.testing.assert_array_equal(pt["layer1.r"].values, tree["layer1"]["r"].values)
        np.testing.assert_array_equal(pt["layer2.r"].values, tree["layer2"]["r"].values)
        np.testing.assert_array_equal(pt["W.layer_W1"].values, sim.program.weight("layer_W1"))
        assert int(ds["seed"][idx[1]]) == ov["simulation.seed"]
        seen.append(pt["layer1.u"].values)
    assert all(not np.array_equal(seen[i], seen[j]) for i in range(4) for j in range(i + 1, 4))

    res2 = run_sweep(scenario, grid, seeds=2, out=out, workers=0)
    assert res2["ran"] == [] and len(res2["skipped"]) == 4

    zarr.open_array(str(out / "done"), mode="r+")[1, 0] = False
    res3 = run_sweep(scenario, grid, seeds=2, out=out, workers=0)
    assert res3["ran"] == [(1, 0)]
    ds3 = open_sweep(out).load()
    np.testing.assert_array_equal(ds3["layer1.u"].values, ds["layer1.u"].values)


def test_sweep_cli_and_mismatched_store(scenario, tmp_path, capsys):
    """`microcircuit sweep` sequential (--workers 0) over 2 values writes 2 done points; the same store
    with another grid is refused (exit code 2, message names --overwrite)."""
    out = tmp_path / "cli.zarr"
    assert main(["sweep", str(scenario), "--grid", "templates[0].hidden.tau_m=4.0,8.0", "--workers", "0",
                 "--out", str(out), "--no-progress"]) == 0
    assert "ran 2" in capsys.readouterr().out
    assert open_sweep(out)["done"].values.tolist() == [True, True]
    assert main(["sweep", str(scenario), "--grid", "templates[0].hidden.tau_m=4.0,9.0", "--workers", "0",
                 "--out", str(out), "--no-progress"]) == 2
    assert "--overwrite" in capsys.readouterr().err
