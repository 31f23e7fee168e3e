"""Write the analysis notebooks (run: python analysis/make_notebooks.py [--execute]; with
--execute the notebooks are run and saved with their outputs, figures included). They are executed
headless by tests/test_notebooks.py. Figures are inline (%matplotlib inline), titles, axis labels
(with units) and legends set explicitly; each notebook ends with its result figure."""
from pathlib import Path

import nbformat as nbf

HERE = Path(__file__).resolve().parent


def nb(cells):
    book = nbf.v4.new_notebook()
    book.cells = [nbf.v4.new_markdown_cell(c[3:]) if c.startswith("md:") else nbf.v4.new_code_cell(c) for c in cells]
    book.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return book


INLINE = "%matplotlib inline\nimport matplotlib.pyplot as plt"

QUICKSTART = [
    "md:# Quick start: build, run, open, plot\n\nA 3-layer Latent-Equilibrium network driven by a sine, recorded to Zarr, reopened lazily as labelled xarray. The model is dimensionless: potentials u and rates r are in the papers' units, time in ms.",
    INLINE + "\nimport tempfile, pathlib\nimport microcircuit as mc\nfrom microcircuit.stimuli import Sines\nfrom microcircuit.simulation import Recording",
    "c = mc.layered([1, 4, 4, 1], hidden={'tau_m': 10.0, 'activation': 'tanh'}, output={'tau_m': 10.0, 'activation': 'linear'},\n               weights={'dist': 'normal', 'std': 0.8})\nc  # HTML table of populations and projections",
    "print(c.describe())\nc.parameter_table('layer1')[:4]",
    "prog = mc.compile(c, dt=0.1, scheme='sequential', stimuli=[Sines('input', frequency_hz=8.0)], seed=1)\nout = pathlib.Path(tempfile.mkdtemp()) / 'quickstart.zarr'\nsim = mc.Simulation(prog, recordings=[Recording('output', ['u', 'u_pros', 'r']), Recording('input', ['r'])], output=out)\nsim.run(300.0)\nsim.close()",
    "tree = mc.open_recording(out)\ntree['output']",
    "fig, ax = plt.subplots(figsize=(7, 3))\nout0 = tree['output'].to_dataset().isel(batch=0, neuron=0)\nax.plot(out0['time'], out0['u'], label='membrane potential u')\nax.plot(out0['time'], out0['u_pros'], '--', label=r'prospective potential $\\breve{u} = u + \\tau_m \\dot u$')\nax.set(xlabel='time (ms)', ylabel='potential (dimensionless)', title='output neuron: u and its prospective potential')\nax.legend(frameon=False); fig.tight_layout()",
    "import microcircuit.analysis  # registers the .mc accessor on xarray objects\nfrom microcircuit.analysis import lag\nx = tree['input']['r'].isel(batch=0, neuron=0)\ny = tree['output']['r'].isel(batch=0, neuron=0)\nlag_ms = float(lag(x, y))\nprint('input -> output rate lag (LE, sequential):', lag_ms, 'ms')",
    "md:## Result\n\nInput and output rates of the 1-4-4-1 LE network: the output follows the 8 Hz input through two hidden layers with the lag printed above.",
    "fig, (ax_in, ax_out) = plt.subplots(2, 1, figsize=(7, 4), sharex=True)\nax_in.plot(x['time'], x, color='0.4', label='input neuron')\nax_out.plot(y['time'], y, color='C3', label='output neuron')\nax_in.set(ylabel='input rate r', title=f'LE network 1-4-4-1 on an 8 Hz sine (rates dimensionless): output lag {lag_ms + 0.0:.2f} ms')\nax_out.set(xlabel='time (ms)', ylabel='output rate r')\nfor ax in (ax_in, ax_out):\n    ax.legend(frameon=False, loc='upper right')\nfig.tight_layout()",
]

LE_VS_LEAKY = [
    "md:# Latent Equilibrium vs a leaky chain\n\nThe bundled scenario `scenarios/le_chain.toml`: two 5-layer chains (tau_m = 10 ms) on the same smooth input. LE neurons fire with the prospective potential and cancel each layer's lag; leaky neurons lag by about tau_m per layer.",
    INLINE + "\nimport tempfile, pathlib\nimport numpy as np\nimport microcircuit as mc\nfrom microcircuit.analysis import lag, gain_phase",
    "root = pathlib.Path.cwd()\nwhile not (root / 'scenarios').exists():\n    root = root.parent\nsc = mc.load_scenario(root / 'scenarios' / 'le_chain.toml', ['simulation.duration=600'])\nout = pathlib.Path(tempfile.mkdtemp()) / 'chain.zarr'\nsim = sc.build(output=out)\nsim.run(600.0); sim.close()\ntree = mc.open_recording(out)",
    "x = tree['stim']['r'].isel(batch=0, neuron=0)\nle = tree['le5']['r'].isel(batch=0, neuron=0)\nleaky = tree['leaky5']['r'].isel(batch=0, neuron=0)\nlags = {'LE': float(lag(x, le)), 'leaky': float(lag(x, leaky))}\nprint('LE lag   :', lags['LE'], 'ms')\nprint('leaky lag:', lags['leaky'], 'ms')",
    "gp = gain_phase(x, leaky, freqs=[0.002, 0.0037, 0.0053])  # cycles per ms\ngp",
    "md:## Result\n\nAfter five layers the LE chain still tracks its input; the leaky chain lags by roughly five membrane time constants.",
    "fig, ax = plt.subplots(figsize=(8, 3.2))\nax.plot(x['time'], x, color='0.75', lw=5, label='input')\nax.plot(le['time'], le, '--', color='C0', lw=2, label=f\"LE, layer 5 (lag {np.round(lags['LE'], 1) + 0.0:.1f} ms)\")\nax.plot(leaky['time'], leaky, color='C3', label=f\"leaky, layer 5 (lag {lags['leaky']:.1f} ms)\")\nax.set(xlabel='time (ms)', ylabel='rate r (dimensionless)', title='5-layer chains, tau_m = 10 ms: LE cancels the lag')\nax.legend(frameon=False); fig.tight_layout()",
]

FIT = [
    "md:# Fitting a rate neuron to recorded cells B6 and B8\n\nCurrent-step sweeps from bluepyefe's test data (BSD), bundled with microcircuit. We extract the f-I curve with eFEL spike counting, fit a sigmoid transfer function and the membrane time constant, turn the fit into a rate-neuron population with one call, run that neuron in the engine under the cell's own current steps and put model and cell side by side in mV, Hz and pA.",
    INLINE + "\nimport numpy as np\nimport pandas as pd\nfrom microcircuit.ephys import load_bundled_cell, fi_curve, fit_transfer_function, fit_membrane_tau, transfer_function\nfrom microcircuit.ephys_model import population_from_cell, compare_model",
    "cells = {c: load_bundled_cell(c) for c in ('B6', 'B8')}\ncells['B6']",
    "fig, ax = plt.subplots(figsize=(5, 3.5))\nfits = {}\nI = np.linspace(0, 400, 200)\nfor k, (name, ds) in enumerate(cells.items()):\n    fi = fi_curve(ds)\n    fits[name] = fit = fit_transfer_function(fi['amplitude'].values, fi.values, model='sigmoid')\n    ax.plot(fi['amplitude'], fi, 'o', color=f'C{k}', label=f'{name} data')\n    ax.plot(I, transfer_function(I, fit), '-', color=f'C{k}', label=f\"{name} sigmoid fit (R² = {float(fit['r2']):.3f})\")\nax.set(xlabel='injected current I (pA)', ylabel='firing rate f (Hz)', title='f-I curves and sigmoid fits')\nax.legend(frameon=False, fontsize=8); fig.tight_layout()",
    "for name, fit in fits.items():\n    assert float(fit['r2']) >= 0.95, name\nprint('R^2 >= 0.95 for both cells')",
    "ds = cells['B6']\ntau = fit_membrane_tau(ds['voltage'].isel(sweep=0), ds.attrs['stim_start'], ds.attrs['stim_end'], window='offset', baseline='stim_start')\nprint(f\"B6, weakest step: tau_m = {float(tau['tau']):.2f} ms (decay 1-10 ms after the step end)\")",
    "md:## From fit to model, one call\n\n`population_from_cell` fits tau_m (median decay after the step), the sigmoid f-I curve $f(I) = f_{max}/(1+e^{-(I-I_{1/2})/s})$, the input resistance $R_{in}$, resting and threshold potentials, and maps them onto a leaky rate neuron $\\tau_m \\dot u = -u + x$, $r = r_{max}/(1+e^{-\\beta(u-\\theta)})$ with the units\n\n$V = V_{rest} + m\\,u$ (mV), $f = \\nu\\,r$ (Hz), $I = q\\,x$ (pA), $m = R_{in}\\,q$ (Ohm's law),\n\nso $r_{max} = f_{max}/\\nu$, $\\beta = q/s$, $\\theta = I_{1/2}/q$. Here $m$ = 1 mV and $\\nu = f_{max}$.",
    "params, scale, fit = population_from_cell(cells['B6'])\nprint(params)\nprint(scale, f'R_in = {scale.input_resistance_MOhm:.0f} MOhm')",
    "cmp = {name: compare_model(ds, *population_from_cell(ds)[:2]) for name, ds in cells.items()}\ncmp['B6'].fi",
    "rows = []\nfor name, c in cmp.items():\n    rows.append({'cell': name, 'max |f-I error|': float(np.abs(c.fi['relative_error']).max()),\n                 'tau_m cell (ms)': float(c.tau_m['cell']), 'tau_m model (ms)': float(c.tau_m['model']),\n                 'tau_m error': float(c.tau_m['relative_error'])})\nsummary = pd.DataFrame(rows).set_index('cell')\nassert summary.loc['B6', 'max |f-I error|'] < 0.10 and abs(summary.loc['B6', 'tau_m error']) < 0.05\nsummary.style.format('{:.2%}', subset=['max |f-I error|', 'tau_m error']).format('{:.2f}', subset=['tau_m cell (ms)', 'tau_m model (ms)'])",
    "md:## Result\n\nThe fitted neuron against cell B6: f-I curve (within 10 % at every current), membrane potential under the weakest and strongest step (the model is passive: V = V_rest + R_in I with no spikes), the normalised decay after the step (the cell's decay is not a single exponential past the 1-10 ms fit window), and the firing rate over time (cell: 1/ISI; the model has no adaptation).",
    "cmp['B6'].figure",
]

ANATOMY = [
    "md:# Anatomy of a dendritic-error microcircuit\n\nOne hidden layer of pyramidal neurons (soma, basal, apical), interneurons nudged toward the output pyramids, and an output layer nudged toward a target. In the self-predicting state the interneurons cancel the top-down input and the apical potential is zero; when a target nudges the output, the apical dendrites carry the error.",
    INLINE + "\nimport numpy as np\nimport microcircuit as mc\nfrom microcircuit.stimuli import Step, ArrayStimulus\nfrom microcircuit.simulation import Recording",
    "c = mc.Circuit('anatomy')\nc.add_population('x', 'input', 3)\nc.add_population('pyr', 'pyramidal', 4, preset='bern', activation='softplus')\nc.add_population('inter', 'interneuron', 2, preset='bern', activation='softplus')\nc.add_population('out', 'output_pyramidal', 2, preset='bern', activation='softplus')\nrng = np.random.default_rng(0)\nW_up1, W_up2 = rng.uniform(-1, 1, (4, 3)), rng.uniform(-1, 1, (2, 4))\nW_down = rng.uniform(-1, 1, (4, 2))\nc.add_projection('x', 'pyr', 'basal', name='up1', weights={'dist': 'array', 'value': W_up1.tolist()})\nc.add_projection('pyr', 'out', 'basal', name='up2', weights={'dist': 'array', 'value': W_up2.tolist()})\nc.add_projection('out', 'pyr', 'apical', name='down', weights={'dist': 'array', 'value': W_down.tolist()})\n# self-predicting weights (Sacramento et al. 2018): W_IP = W_up2 (Bern factors = 1), W_PI = -W_down\nc.add_projection('pyr', 'inter', 'dendrite', name='ip', weights={'dist': 'array', 'value': W_up2.tolist()})\nc.add_projection('inter', 'pyr', 'apical', name='pi', weights={'dist': 'array', 'value': (-W_down).tolist()})\nc.add_projection('out', 'inter', 'nudge', name='nudge', signal='u', connector={'kind': 'one_to_one'}, weights={'dist': 'constant', 'value': 1.0})\nprint(c.describe())",
    "target = np.array([[0.3, 0.3]] * 1 + [[1.0, 0.1]])  # no useful target first, then a target\nstim = [ArrayStimulus('x', rng.uniform(0, 1, (1, 3))),\n        ArrayStimulus('out', np.array([[1.0, 0.1]]), kind='target')]\ngate = lambda k0, k1: np.column_stack([(np.arange(k0, k1) >= 1500).astype(float), np.zeros(k1 - k0)])  # nudge on at 150 ms\nprog = mc.compile(c, dt=0.1, stimuli=stim)\nsim = mc.Simulation(prog, gates=gate, recordings=[Recording('pyr', ['v']), Recording('out', ['v', 'u_tgt']), Recording('inter', ['v'])])\nsim.run(300.0)\ntree = sim.results()\ntree['pyr']",
    "va = tree['pyr']['v'].sel(compartment='apical').isel(batch=0).values\nprint('max |v_A| before the target (self-predicting):', np.abs(va[1000:1500]).max())\nprint('max |v_A| with the target (error in the apical dendrite):', np.abs(va[2000:]).max())\nassert np.abs(va[1000:1500]).max() < 1e-6 < np.abs(va[2000:]).max()",
    "md:## Result\n\nPotentials of the four hidden pyramidal neurons per compartment. The apical compartment sits at zero while the circuit is self-predicting and moves when the target is switched on at 150 ms: it carries the output error.",
    "v = tree['pyr']['v'].isel(batch=0)\nfig, axes = plt.subplots(1, 3, figsize=(12, 3.2), sharex=True)\nfor ax, comp in zip(axes, ['soma', 'basal', 'apical']):\n    for n in range(v.sizes['neuron']):\n        ax.plot(v['time'], v.sel(compartment=comp).isel(neuron=n), label=f'pyramid {n}')\n    ax.axvline(150.0, color='0.5', ls=':', label='target on')\n    ax.set(xlabel='time (ms)', ylabel=f'{comp} potential (dimensionless)', title=f'pyramidal {comp}')\naxes[-1].legend(frameon=False, fontsize=8)\nfig.suptitle('hidden pyramids: the apical dendrite carries the error once the target is on')\nfig.tight_layout()",
]

NOTEBOOKS = {"quickstart": QUICKSTART, "le_vs_leaky_chain": LE_VS_LEAKY, "fit_neuron_to_B6_B8": FIT,
             "anatomy_of_a_microcircuit": ANATOMY}


def execute(book, timeout: int = 300):
    """Run a notebook in place with nbclient (inline figures end up in its outputs)."""
    from nbclient import NotebookClient
    NotebookClient(book, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(HERE)}}).execute()
    return book


if __name__ == "__main__":
    import sys
    run = "--execute" in sys.argv
    for name, cells in NOTEBOOKS.items():
        book = nb(cells)
        if run:
            execute(book)
        nbf.write(book, HERE / f"{name}.ipynb")
        print("wrote", HERE / f"{name}.ipynb", "(executed)" if run else "")
