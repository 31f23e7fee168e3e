"""The dendritic-error microcircuit scenario files scenarios/mc_*.toml (issue #4).

Each file must validate; the Yin-Yang one (reduced with --set overrides) must learn above
chance; the self-prediction one must show the apical potential falling. The new [protocol]
fields (lr_schedule "exponential" + lr_decay, learning_lag) are checked for effect and for
clear errors.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from microcircuit.errors import ScenarioError
from microcircuit.protocols import run_protocol
from microcircuit.scenario import load_scenario

SCEN = Path(__file__).resolve().parent.parent / "scenarios"
MC_FILES = sorted(SCEN.glob("mc_*.toml"))

YY_QUICK = ["protocol.epochs=4", "protocol.eval_every=4", "protocol.dataset_args.n_train=1000",
            "protocol.dataset_args.n_test=300"]


def test_mc_scenario_files_exist():
    """The issue asks for Yin-Yang, self-prediction, Bars (LE and original), mimic, relaxation and
    teacher-student scenario files: at least these seven mc_*.toml (plus mc_morphology_bars)."""
    names = {p.stem for p in MC_FILES}
    for n in ("mc_yinyang", "mc_self_prediction", "mc_bars_le", "mc_bars_original", "mc_teacher_student"):
        assert n in names


@pytest.mark.parametrize("path", MC_FILES, ids=lambda p: p.stem)
def test_mc_scenario_validates(path):
    """Every mc_*.toml loads and validates (what `microcircuit validate` does) and builds its circuit."""
    sc = load_scenario(path)
    c = sc.circuit()
    assert len(c.populations) >= 3


def test_yinyang_scenario_learns_above_chance(tmp_path):
    """mc_yinyang.toml reduced to 4 epochs x 1000 samples (300 test samples): measured 70 % test
    accuracy after 4 epochs (79 % after 5; full file 60 x 5000: 93.9 % for seed 0). Chance is 1/3;
    we require >= 55 %, far above what an untrained net gives (35 % at epoch 0, measured)."""
    sc = load_scenario(SCEN / "mc_yinyang.toml", YY_QUICK)
    res = run_protocol(sc, output=None, progress=False)
    acc0, acc = res.metrics["test_accuracy"][0], res.final("test_accuracy")
    assert acc0 < 0.45
    assert acc >= 0.55, res.summary()


def test_exponential_lr_schedule_freezes_weights_when_decay_is_tiny():
    """lr_schedule = "exponential": eta_e = eta_0 * lr_decay^(e-1). With lr_decay = 1e-9 the
    second epoch learns at 1e-9 x the first epoch's rate, so the weights after epoch 2 equal those
    after epoch 1 to ~1e-9 relative, while epoch 1 moved them by O(1) relative (measured ~0.1-1)."""
    over = ["protocol.epochs=2", "protocol.dataset_args.n_train=160", "protocol.dataset_args.n_test=16",
            "protocol.lr_decay=1e-9", "protocol.snapshot_every=1", "protocol.eval_initial=false",
            'protocol.phases=["train"]']
    res = run_protocol(load_scenario(SCEN / "mc_yinyang.toml", over), progress=False)
    w0 = np.asarray(load_scenario(SCEN / "mc_yinyang.toml").data["projections"][0]["weights"]["value"])
    w1, w2 = res.snapshots[1]["up1"], res.snapshots[2]["up1"]
    assert np.linalg.norm(w1 - w0) / np.linalg.norm(w0) > 1e-2
    assert np.linalg.norm(w2 - w1) / np.linalg.norm(w1) < 1e-6


@pytest.mark.parametrize("field,value", [("protocol.lr_decay", "1.5"), ("protocol.lr_schedule", '"exp"'),
                                         ("protocol.learning_lag", "-1.0"), ("protocol.phases", '["fit"]')])
def test_bad_protocol_fields_are_named(field, value):
    """`microcircuit validate` rejects bad [protocol] values with the dotted field in the message."""
    with pytest.raises(ScenarioError, match=field.replace(".", r"\.").replace("phases", r"phases(\[0\])?")):
        load_scenario(SCEN / "mc_yinyang.toml", [f"{field}={value}"])


def test_learning_lag_longer_than_presentation_is_rejected():
    """learning_lag must leave at least one plastic step per presentation (t_pres 1 ms = 10 steps)."""
    sc = load_scenario(SCEN / "mc_yinyang.toml", YY_QUICK + ["protocol.learning_lag=1.0"])
    with pytest.raises(ScenarioError, match="learning_lag"):
        run_protocol(sc, progress=False)


def test_self_prediction_scenario_apical_potential_falls(tmp_path):
    """mc_self_prediction.toml, first 20 of its 40 patterns (2000 ms): mean v_A^2 of pyr1 over the
    last 10 ms of a pattern falls from 1.74 (pattern 1) to a minimum of 0.0136 within 20 patterns,
    a factor 128 (measured; analysis/mc_self_prediction.py: 63-366x for seeds 0-2, with a 3 ms input
    low-pass). Acceptance as docs/models/microcircuit.md, "Checks the tests rely on": >= 50x within 20 patterns."""
    from microcircuit import open_recording
    sc = load_scenario(SCEN / "mc_self_prediction.toml", ["simulation.duration=2000.0"])
    out = tmp_path / "sp.zarr"
    sim = sc.build(output=str(out))
    sim.run(2000.0)
    sim.close()
    v = np.asarray(open_recording(out)["pyr1"]["v_A"].values)          # (time/stride, batch, neuron)
    stride = 10
    per = int(round(100.0 / (0.1 * stride)))
    va2 = (v.reshape(20, per, -1)[:, -10:] ** 2).mean(axis=(1, 2))
    assert va2[0] > 0.5                      # random weights: large apical mismatch at the start
    assert va2[0] / va2.min() >= 50.0, va2


def _ts_training_error(tmp_path, tag, overrides):
    """Run mc_teacher_student.toml with ``overrides``; per-presentation training error
    ||phi(a_out v_B) - phi(u_tgt)||^2 (second half of each 20 ms presentation, mean over streams)."""
    from microcircuit import open_recording
    from microcircuit.datasets import soft_rectifier
    sc = load_scenario(SCEN / "mc_teacher_student.toml", overrides)
    out = tmp_path / f"{tag}.zarr"
    sim = sc.build(output=str(out))
    sim.run(sc.data["simulation"]["duration"])
    sim.close()
    rec = open_recording(out)["output"]
    a_out = 1.0 / 1.1                      # g_B / (g_lk + g_B), Sacramento: g_B 1, g_lk 0.1
    err = ((soft_rectifier(a_out * np.asarray(rec["v_B"].values))
            - soft_rectifier(np.asarray(rec["u_tgt"].values))) ** 2).sum(-1).mean(-1)
    return err.reshape(-1, 20)[:, 10:].mean(axis=1)      # 20 records (stride 1 ms) per presentation


def test_teacher_student_scenario_training_error_falls(tmp_path):
    """mc_teacher_student.toml shortened to 1000 ms (50 presentations x 8 streams = 400 patterns):
    over presentations 25-50 the unnudged prediction's training error is 1.72x lower with the
    file's plasticity than for the same patterns with every eta = 0 (measured 0.0657 vs 0.1131;
    8000 patterns: 3.96x from first to last tenth, analysis/mc_teacher_student.py --store).
    Comparing against the frozen run on identical patterns removes the pattern-to-pattern spread.
    We require >= 1.4x. The frozen run is the control: its error over presentations 25-50 stays
    near the initial test loss (measured 0.113; initial test loss 0.121), so the fall is learning."""
    short = ["simulation.duration=1000.0", "output.checkpoint_every=1000.0"]
    frozen = [f"projections.{p}.plasticity.eta=0.0" for p in ("up1", "up2", "ip1", "pi1")]
    e_learn = _ts_training_error(tmp_path, "learn", short)
    e_frozen = _ts_training_error(tmp_path, "frozen", short + frozen)
    assert e_learn.shape == (50,)
    assert e_frozen[25:].mean() > 0.08, e_frozen[25:].mean()
    ratio = e_frozen[25:].mean() / e_learn[25:].mean()
    assert ratio >= 1.4, ratio
