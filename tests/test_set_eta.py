"""set_eta honours the runner's batch factor (issue 15: it read ``prog._sum_batch``, which nothing set,
so ``sum_batch=False`` was ignored and every new rate was multiplied by the batch)."""
from __future__ import annotations

import pytest

from microcircuit.layout import PF_ETA
from microcircuit.microcircuit import dendritic_microcircuit, MicrocircuitRunner
from microcircuit.microcircuit_tasks import set_eta


@pytest.mark.parametrize("sum_batch, expected", [(True, 8.0), (False, 2.0)])
def test_set_eta_uses_the_runners_factor(sum_batch, expected):
    """batch 4: eta 2 /ms is stored as 2 * 4 = 8 when the runner sums the streams' updates, else as 2."""
    c = dendritic_microcircuit([4, 5, 2], eta={"up": [1.0, 1.0], "ip": 1.0})
    run = MicrocircuitRunner(c, dt=0.1, t_pres=1.0, batch=4, sum_batch=sum_batch)
    set_eta(run.prog, "up1", 2.0)
    assert run.prog.proj_float[run.prog.proj_index["up1"], PF_ETA] == expected
    with pytest.raises(ValueError, match="without plasticity"):
        set_eta(run.prog, "down1", 1.0)
