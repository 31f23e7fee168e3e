"""What a user meets first in Jupyter: recordings that open with plain xarray without warnings, time
labels that ``sel`` finds, neurons that say what they are, plots that say what they show, and
frequencies in the Hz the scenarios speak."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import microcircuit as mc
import microcircuit.analysis  # noqa: F401  (registers .mc)
from microcircuit.recording import RecordedVariable, ZarrRecorder, open_recording, time_labels
from microcircuit.simulation import Recording
from microcircuit.stimuli import Sines

ROOT = Path(__file__).resolve().parents[1]


def _chain(dt=0.1):
    c = mc.layered([1, 1, 1], hidden={"tau_m": 10.0, "activation": "linear"},
                   output={"tau_m": 10.0, "activation": "linear"})
    return mc.compile(c, dt=dt, scheme="sequential", stimuli=[Sines("input", frequency_hz=5.0)])


def _opens_cleanly(store, group) -> subprocess.CompletedProcess:
    """Plain xarray, as a user types it, in a fresh interpreter with every warning an error."""
    code = (f"import xarray as xr; ds = xr.open_zarr({str(store)!r}, group={group!r}); "
            f"t = xr.open_datatree({str(store)!r}, engine='zarr'); print(sorted(t.children))")
    return subprocess.run([sys.executable, "-W", "error", "-c", code], capture_output=True, text=True, timeout=120)


# ------------------------------------------------------------------------------------ time labels
@pytest.mark.parametrize("dt, step, label", [(0.1, 3, 0.3), (0.025, 7, 0.175), (0.05, 7, 0.35), (2.0, 3, 6.0)])
def test_time_labels_are_the_decimal_a_user_types(dt, step, label):
    """step * dt in binary floating point misses the decimal (3 * 0.1 = 0.30000000000000004, 7 * 0.05 =
    0.35000000000000003); the label is exactly float("0.3"), float("0.35"), ..."""
    assert time_labels([step], dt)[0] == label


def test_time_labels_of_a_non_decimal_dt_stay_step_times_dt():
    """dt = 1/3 ms has no finite decimal: no rounding (it would only move the labels), step * dt kept."""
    steps = np.arange(10)
    np.testing.assert_array_equal(time_labels(steps, 1 / 3), steps * (1 / 3))


@pytest.mark.parametrize("where", ["memory", "zarr"])
def test_sel_time_0_3_finds_step_3_and_values_are_untouched(tmp_path, where):
    """ds.sel(time=0.3) raised KeyError; now it returns record 3, bit-identical in memory and in Zarr
    (only the coordinate is rounded, never the data)."""
    out = None if where == "memory" else tmp_path / "r.zarr"
    sim = mc.Simulation(_chain(), recordings=[Recording("output", ["u", "r"])], output=out, chunk_steps=7)
    sim.run(5.0)
    sim.close()
    ds = sim.results()["output"].ds
    ref = mc.Simulation(_chain(), recordings=[Recording("output", ["u", "r"])], chunk_steps=50).run(5.0)
    want = ref.results()["output"].ds
    assert ds.sizes["time"] == 50 and ds["time"].values[3] == 0.3
    assert ds["u"].sel(time=0.3).values.tobytes() == want["u"].values[3].tobytes()
    assert np.array_equal(ds["r"].values.view(np.uint64), want["r"].values.view(np.uint64))


# ---------------------------------------------------------------------------- consolidated metadata
def test_closed_store_opens_with_plain_xarray_under_W_error(tmp_path):
    """A store from a plain run (the `microcircuit run` path, Scenario.build) opens with
    xr.open_zarr(group=...) and xr.open_datatree without the missing-consolidated-metadata warning."""
    sc = mc.load_scenario(ROOT / "scenarios" / "le_chain.toml", overrides=["simulation.duration=5.0"])
    sim = sc.build(output=str(tmp_path / "lc.zarr"), overwrite=True)
    sim.run(5.0)
    sim.close()
    proc = _opens_cleanly(tmp_path / "lc.zarr", "le5")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "['le5', 'leaky5', 'stim']"


def test_resumed_store_is_consolidated_again_with_its_new_length(tmp_path):
    """Reopening drops the consolidated copy (the arrays grow again; a stale copy would show the old
    length to plain xarray), closing writes it again: 30 records, then 30 + 20 = 50."""
    path = tmp_path / "r.zarr"
    spec = RecordedVariable("pop", "u", np.arange(2))
    rec = ZarrRecorder(path, [spec], dt=0.1, chunk_records=10)
    rec.append({("pop", "u"): np.ones((30, 1, 2))}, first_step=0)
    rec.close()
    assert "consolidated_metadata" in json.loads((path / "zarr.json").read_text())
    rec = ZarrRecorder.reopen(path, [spec])
    assert "consolidated_metadata" not in json.loads((path / "zarr.json").read_text())
    rec.append({("pop", "u"): np.ones((20, 1, 2))}, first_step=30)
    rec.close()
    assert xr.open_zarr(path, group="pop").sizes["time"] == 50
    assert _opens_cleanly(path, "pop").returncode == 0


@pytest.mark.slow
def test_protocol_store_holds_the_circuit_decimated_and_opens_cleanly(tmp_path):
    """The main job's scenario with 2 epochs: besides metrics, pyr1 (soma, basal, apical) and output are
    recorded every 5th step over all 40 steps (train_eval at epoch 0, train at 1, train and train_eval
    at 2; 10 steps each): 8 records of batch 8. Recording the circuit does not change learning: the
    metrics equal those of a run without [[recordings]]."""
    from microcircuit.protocols import run_protocol
    toml = ROOT / "scenarios" / "bars_microcircuit.toml"
    sc = mc.load_scenario(toml, overrides=["protocol.epochs=2"])
    result = run_protocol(sc, output=str(tmp_path / "bars.zarr"), progress=False)
    tree = open_recording(tmp_path / "bars.zarr")
    v = tree["pyr1"]["v"]
    assert v.dims == ("time", "batch", "neuron", "compartment") and v.shape == (8, 8, 30, 3)
    assert list(v["compartment"].values) == ["soma", "basal", "apical"]
    np.testing.assert_array_equal(v["time"].values, [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5])
    assert sorted(tree["output"].ds.data_vars) == ["r", "v"] and tree.attrs["status"] == "complete"
    assert tree.attrs["scenario"] == sc.text and tree.attrs["parameters"]["populations"]["pyr1"]["size"] == 30
    assert _opens_cleanly(tmp_path / "bars.zarr", "pyr1").returncode == 0

    plain = mc.load_scenario(toml, overrides=["protocol.epochs=2"])
    plain.data.pop("recordings")
    ref = run_protocol(plain, output=None, progress=False)
    for k, vals in ref.metrics.items():
        if k != "wall_time_s":
            np.testing.assert_array_equal(result.metrics[k], vals, err_msg=k)


def test_sweep_store_opens_with_plain_xarray_and_selects_time_0_3(tmp_path):
    """A finished sweep is consolidated when released, so xr.open_zarr(store) is clean under -W error;
    its template's time labels are the decimal ones too (2 points x 50 records)."""
    from microcircuit.sweep import run_sweep
    out = tmp_path / "s.zarr"
    run_sweep(ROOT / "scenarios" / "le_chain.toml", {"templates[0].hidden.tau_m": [5.0, 10.0]}, out=out,
              workers=0, overrides=["simulation.duration=5.0"])
    proc = _opens_cleanly(out, None)
    assert proc.returncode == 0, proc.stderr[-2000:]
    ds = xr.open_zarr(out)
    assert ds["le5.r"].sel(time=0.3).shape == (2, 1, 1)


# ------------------------------------------------------------------------------ labels and parameters
def test_neurons_say_their_cell_type_and_layer_and_parameters_are_stored(tmp_path):
    """Bars microcircuit: input layer 0, hidden pyramids layer 1 (pyramidal), interneurons and output
    pyramids layer 2; as group attrs and per-neuron coordinates. The root attr ``parameters`` holds
    the conductances the 'bern' preset resolved to (pyr1 basal g_B = 0.1/ms, apical g_A = 0.06/ms)."""
    sc = mc.load_scenario(ROOT / "scenarios" / "bars_microcircuit.toml")
    sc.data.pop("protocol")
    sc.data["simulation"]["duration"] = 1.0
    sc.data["recordings"] = [{"population": "input", "variables": ["r"]}] + [
        {"population": p, "variables": ["u"]} for p in ("pyr1", "inter1", "output")]
    sim = sc.build(output=str(tmp_path / "b.zarr"), overwrite=True)
    sim.run(1.0)
    sim.close()
    tree = open_recording(tmp_path / "b.zarr")
    want = {"input": ("input", 0), "pyr1": ("pyramidal", 1), "inter1": ("interneuron", 2),
            "output": ("output_pyramidal", 2)}
    for pop, (cell_type, layer) in want.items():
        ds = tree[pop].ds
        assert (ds.attrs["cell_type"], ds.attrs["layer"]) == (cell_type, layer), pop
        assert set(ds["cell_type"].values.tolist()) == {cell_type} and set(ds["layer"].values.tolist()) == {layer}
    compiled = tree.attrs["parameters"]["populations"]["pyr1"]["compiled"]
    assert (compiled["g0"], compiled["g1"]) == (0.1, 0.06)
    assert "scenario" in tree.attrs


# ------------------------------------------------------------------------------------ results status
def test_results_in_memory_say_complete_after_run_without_close():
    """The README's Python example never calls close(): results() must not say 'running' then."""
    sim = mc.Simulation(_chain(), recordings=[Recording("output", ["r"])])
    sim.run(2.0)
    attrs = sim.results().attrs
    assert (attrs["status"], attrs["complete"], attrs["n_steps_done"]) == ("complete", True, 20)


# --------------------------------------------------------------------------------------- gain/phase
def test_gain_phase_in_hz_equals_cycles_per_ms():
    """frequency_hz=5 is freqs=0.005 (time in ms); the frequency coordinate is then labelled in Hz.
    freqs= keeps working as before; giving both is refused."""
    from microcircuit.analysis import EstimatorError, gain_phase
    sim = mc.Simulation(_chain(), recordings=[Recording("input", ["r"]), Recording("output", ["r"])])
    tree = sim.run(400.0).results()
    x, y = tree["input"]["r"], tree["output"]["r"]
    hz = gain_phase(x, y, frequency_hz=[5.0])
    old = gain_phase(x, y, [0.005])
    np.testing.assert_array_equal(hz["gain"].values, old["gain"].values)
    assert hz["frequency"].attrs["units"] == "Hz" and hz["frequency"].values[0] == 5.0
    assert old["frequency"].attrs["units"] == "1/ms"
    with pytest.raises(EstimatorError, match="frequency_hz"):
        gain_phase(x, y, [0.005], frequency_hz=[5.0])


# -------------------------------------------------------------------------------------------- plots
def test_plot_traces_default_works_for_rate_and_pyramidal_populations(tmp_path):
    """A rate population has no ``v``: the default falls back to ``u`` (one line); a pyramidal
    population plots ``v``: soma, basal, apical, with a legend of 3 entries."""
    sim = mc.Simulation(_chain(), recordings=[Recording("output", ["u", "r"])])
    fig = sim.run(2.0).results()["output"].ds.mc.plot_traces()
    ax = fig.axes[0]
    assert len(ax.get_lines()) == 1 and ax.get_ylabel() == "somatic membrane potential [1]"

    circuit = mc.load_scenario(ROOT / "scenarios" / "bars_microcircuit.toml").circuit()
    prog = mc.compile(circuit, dt=0.1)
    ds = mc.Simulation(prog, recordings=[Recording("pyr1", ["v", "u"])]).run(1.0).results()["pyr1"].ds
    ax = ds.mc.plot_traces().axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["soma", "basal", "apical"]
    assert ax.get_title() == "pyr1 neuron 0 (pyramidal, layer 1), batch 0"


def test_two_variables_get_a_legend_and_a_y_label_naming_both(tmp_path):
    """plot_traces(["u", "r"]): 2 lines, 2 legend entries, y-label "u, r [1]" (not only one of them);
    the title has no empty unit brackets, neither ours nor xarray's own .plot() on a Zarr store."""
    out = tmp_path / "t.zarr"
    sim = mc.Simulation(_chain(), recordings=[Recording("output", ["u", "r"])], output=out)
    sim.run(2.0)
    sim.close()
    ds = open_recording(out)["output"].ds
    ax = ds.mc.plot_traces(["u", "r"]).axes[0]
    assert len(ax.get_legend().get_texts()) == 2 and ax.get_ylabel() == "u, r [1]"
    assert "[]" not in ax.get_title()
    import matplotlib.pyplot as plt
    ds["r"].isel(batch=0, neuron=0).plot()
    title = plt.gca().get_title()
    plt.close("all")
    assert "batch = 0" in title and "[]" not in title


def test_learning_curves_of_several_seeds_say_which_line_is_which():
    """3 seeds along a metric: 3 lines and a legend "seed 1", "seed 2", "seed 3" (there was none)."""
    from microcircuit.analysis import plot_learning_curves
    ds = xr.Dataset({"loss": (("epoch", "seed"), np.arange(15.0).reshape(5, 3))},
                    coords={"epoch": np.arange(5), "seed": [1, 2, 3]})
    ax = plot_learning_curves(ds).axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["seed 1", "seed 2", "seed 3"]
