"""Yin-Yang 4-120-3 LE microcircuit (docs/models/microcircuit.md, "Experiments"), reduced.

Full run: ``python analysis/mc_yinyang.py`` (5000 samples, 60 epochs, 3 seeds, >= 95 % mean test).
"""
from microcircuit.microcircuit_tasks import yin_yang_run

ETA = {"up": [150.0, 0.03], "ip": 0.06, "pi": 0.0}    # eta * t_pres at t_pres = 1 ms


def test_yinyang_reduced_learns_beyond_linear_readout():
    """2000 samples x 10 epochs (seed 0, logistic, Gauss-Seidel, lr x 0.97^epoch): test accuracy
    measured 78.6 % (asserted > 70 %); the same run with the hidden layer frozen (only the output
    and interneuron weights learn) stays below it (measured 60.6 %): the hidden layer learns from
    its apical errors."""
    kw = dict(t_pres=1.0, epochs=10, n_train=2000, n_test=500, scheme="sequential", activation="logistic",
              w_max=None, lr_decay=0.97, seed=0)
    deep = yin_yang_run(eta=ETA, **kw)
    frozen = yin_yang_run(eta={"up": [0.0, 0.03], "ip": 0.06, "pi": 0.0}, **kw)
    assert deep["test_accuracy"] > 0.70, deep
    assert deep["test_accuracy"] > frozen["test_accuracy"] + 0.05, (deep, frozen)
