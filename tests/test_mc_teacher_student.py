"""Sacramento et al. 2018 Fig. 2 teacher-student regression (docs/models/microcircuit.md, "Experiments"), reduced.

Full run: ``python analysis/mc_teacher_student.py`` (8000 patterns, 3 seeds: microcircuit final
test loss 0.0213 / 0.0413 / 0.0369 vs shallow learner 0.0522 / 0.1053 / 0.0925).
"""
from microcircuit.microcircuit_tasks import teacher_student_run


def test_microcircuit_beats_shallow_learner_reduced():
    """1000 training patterns x 20 ms, seed 2, 64 test patterns: both learners lower the test loss
    from its initial value (0.232), and the microcircuit (all weights plastic, fixed random
    top-down) ends below the shallow learner (only W_up2 plastic): measured 0.0996 vs 0.149,
    asserted with margin as < 0.85 x shallow. The two runs start from identical weights
    (same seed), so the whole difference is the hidden layer's learning from apical errors."""
    deep = teacher_student_run(shallow=False, n_train=1000, n_test=64, n_eval=1, seed=2)
    shallow = teacher_student_run(shallow=True, n_train=1000, n_test=64, n_eval=1, seed=2)
    assert deep["loss"][0] == shallow["loss"][0]
    assert shallow["loss"][-1] < 0.9 * shallow["loss"][0]
    assert deep["loss"][-1] < 0.85 * shallow["loss"][-1], (deep["loss"], shallow["loss"])
    # feedback alignment: W_up2 turns toward the fixed top-down weights (start 90.8 deg, 84.2 after)
    assert deep["angle_deg"][1] < deep["angle_deg"][0] - 2.0


def test_literal_unit_scale_student_does_not_learn():
    """Why the student's weights are scaled (teacher_student_run docstring): with the literal
    U(-1, 1) weights the hidden potentials sit far below theta = 3, rates ~0.005, and the test loss
    moves by < 2 % in 500 patterns even with the 1/gamma^2 learning rates."""
    r = teacher_student_run(shallow=False, n_train=500, n_test=32, n_eval=1, seed=2, match_teacher_scale=False)
    assert abs(r["loss"][-1] - r["loss"][0]) < 0.02 * r["loss"][0], r["loss"]
