"""scenarios/mc_morphology_bars.toml: a Bars microcircuit whose conductances come from bundled
morphologies; `microcircuit validate` prints the derived conductance table and the scenario runs."""
from pathlib import Path

from microcircuit.cli import main
from microcircuit.morphology import derive_conductances
from microcircuit.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[1]
SCEN = ROOT / "scenarios" / "mc_morphology_bars.toml"


def test_validate_prints_derived_conductances(capsys):
    """validate prints one table row per microcircuit population with the values of
    morphology.derive_conductances (Rorb pyramids g_B = 1.974, g_A = 0.4288; Pvalb interneuron
    g_D = 3.16) and names the morphology as their source."""
    assert main(["validate", str(SCEN)]) == 0
    out = capsys.readouterr().out
    gp, gi = derive_conductances("Rorb_325404214"), derive_conductances("Pvalb_469628681")
    rows = {ln.split("|")[1].strip(): ln for ln in out.splitlines() if ln.startswith("| ")}
    assert f"{gp['g_B']:.4g}" in rows["pyr1"] and f"{gp['g_A']:.4g}" in rows["pyr1"]
    assert "morphology Rorb_325404214" in rows["pyr1"] and "morphology Rorb_325404214" in rows["output"]
    assert f"{gi['g_D']:.4g}" in rows["inter1"] and "morphology Pvalb_469628681" in rows["inter1"]


def test_morphology_bars_scenario_learns():
    """The scenario's protocol (LE, t_pres 1 ms, 8 streams) reaches 100 % training accuracy on the
    8 Bars patterns within 40 epochs (measured: 100 % from epoch 20 on)."""
    from microcircuit.protocols import run_protocol
    sc = load_scenario(SCEN, ["protocol.epochs=40", "protocol.eval_every=40"])
    res = run_protocol(sc, output=None, progress=False)
    s = str(res.summary()).splitlines()
    header = s[2].split()
    last = s[-1].split()
    assert float(last[header.index("train_eval_accuracy")]) == 1.0, "\n".join(s)
