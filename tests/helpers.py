"""Small builders shared by the engine tests."""
import numpy as np

import microcircuit as mc
from microcircuit.simulation import Simulation, Recording
from microcircuit.stimuli import ArrayStimulus


# a 2-3-1 rate network with error-driven learning: the smallest scenario dict that exercises
# populations, projections, plasticity, stimuli and recordings (copy it before changing it)
SMALL_SCENARIO = {
    "simulation": {"dt": 0.1, "duration": 10.0, "seed": 1},
    "populations": [{"name": "x", "model": "input", "size": 2},
                    {"name": "hidden", "model": "rate", "size": 3, "tau_m": 10.0},
                    {"name": "o", "model": "rate", "size": 1, "loss": "rate"}],
    "projections": [{"pre": "x", "post": "hidden", "plasticity": {"rule": "error", "eta": 0.1}},
                    {"pre": "hidden", "post": "o"}],
    "stimuli": [{"target": "x", "waveform": "step", "amplitude": 1.0},
                {"target": "o", "kind": "target", "waveform": "step", "amplitude": 0.5}],
    "recordings": [{"population": "o", "variables": ["r", "u"]}],
}


def run(circuit, stimuli, steps, *, dt=0.1, scheme="sequential", recordings=(), backend="numba", batch=1,
        seed=0, dtype="float64", gates=None, chunk_steps=1000):
    prog = mc.compile(circuit, dt=dt, batch=batch, scheme=scheme, seed=seed, stimuli=stimuli, dtype=dtype)
    sim = Simulation(prog, recordings=list(recordings), backend=backend, gates=gates, chunk_steps=chunk_steps)
    sim.run(steps=steps)
    return sim


def chain(n_layers, tau_m=10.0, tau_r=None, activation="linear", w=1.0, **extra):
    c = mc.Circuit("chain")
    c.add_population("x", "input", 1)
    prev = "x"
    for i in range(1, n_layers + 1):
        params = dict(tau_m=tau_m, activation=activation, **extra)
        if tau_r is not None:
            params["tau_r"] = tau_r
        c.add_population(f"l{i}", "rate", 1, **params)
        c.add_projection(prev, f"l{i}", weights={"dist": "constant", "value": w})
        prev = f"l{i}"
    return c


def trace(sim, pop, var="r"):
    return sim.results()[pop][var].values[:, 0, 0]


def direct_and_zarr_arrays(tmp_path, codec, shape=(0, 2, 7), chunks=(100, 2, 7)):
    """Two empty arrays with the recorder's settings (codecs incl. crc32c, array config): the first to be
    written by the recorder's own chunk writer, the second by zarr, for byte-equality tests."""
    import zarr
    from microcircuit import recording as R
    arrs = []
    for name in ("direct", "zarr"):
        g = zarr.open_group(str(tmp_path / name), mode="w", zarr_format=3)
        arrs.append(g.create_array("v", shape=shape, chunks=chunks, dtype="f8", fill_value=np.nan,
                                   compressors=R._compressors(codec), config=R._ARRAY_CONFIG))
    return arrs
