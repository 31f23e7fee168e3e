"""MNIST-1D with the 15k-parameter end-to-end GLE network (models.md §C.7/§C.8), on the engine.

Run from the repository root::

    python analysis/mnist1d_gle.py --quick                       # a few batches: timing
    python analysis/mnist1d_gle.py --seed 12 --max-minutes 27    # the published protocol, cut to a budget
    python analysis/mnist1d_gle.py --seed 12                     # 150 epochs (hours on 2 cores)

Network (reference code ``E2ELagMLPNet``): 1 -> 6 x 53 -> 10; per hidden layer 18 LI units
(tau_m = 0.6, tau_r = dt), 18 LI (tau_m = 1.2, tau_r = dt), 17 LE (tau_m = tau_r = 1.2); first
hidden layer linear, then tanh; linear output, tau_m = tau_r = 1.2; dt = 0.2, gamma = 0, beta = 1;
output error e_N = beta (onehot(y) - softmax(r_N)) at every step (cross-entropy on the logits);
prospective GLE errors in every layer, e = D+_{tau_m} I-_{tau_r}[phi' W^T e_up]; dW/dt = eta e r_pre^T,
db/dt = eta e, both through Adam (the biases are synapses from a unit of rate 1, ``bias_synapses``),
lr = dt * eta = 1e-3 per step (5e-3 * 72/360); ReduceLROnPlateau(patience 2, x0.5) on the test loss
after each epoch; batch 100 parallel streams, 360 steps per sample, state never reset; prediction =
argmax of the output summed over the sample's steps. Writes analysis/results/mnist1d_gle_seed<s>.{md,csv,png}
(``--quick``: mnist1d_gle_quick.*).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import microcircuit as mc  # noqa: E402
from microcircuit.gle import gle_layered, bias_stimulus, init_bias_unit, StreamStimulus, summed_logits_readout  # noqa: E402
from microcircuit.simulation import Recording  # noqa: E402


def build(dt=0.2, eta=5e-3, batch=100, seed=0, buf=None, bias="adam"):
    """The 15k network on the engine. ``eta`` per time unit (Adam step per dt = dt * eta = 1e-3).

    ``bias="adam"``: biases are synapses from a unit of rate 1 learning with the weights' Adam
    (as the reference code); ``"sgd"``: the population bias with plain SGD (``eta_bias = eta``).
    """
    groups = dict(tau_m=[0.6] * 18 + [1.2] * 18 + [1.2] * 17, tau_r=[dt] * 36 + [1.2] * 17)
    pl = {"rule": "error", "eta": eta, "optimizer": "adam"}
    eb = 0.0 if bias == "adam" else eta
    layers = []
    for i in range(6):
        layers.append(dict(size=53, activation="linear" if i == 0 else "tanh", gamma=0.0, prospective_errors=True,
                           eta_bias=eb, plasticity=pl, **groups))
    layers.append(dict(size=10, tau_m=1.2, tau_r=1.2, activation="linear", gamma=0.0, prospective_errors=True,
                       loss="cross_entropy", beta=1.0, eta_bias=eb, plasticity=pl))
    c = gle_layered(1, layers, name="mnist1d_gle", bias_synapses=(bias == "adam"))
    stims = [StreamStimulus("input", lambda a, b: buf["x"][a - buf["k0"]:b - buf["k0"]]),
             StreamStimulus("output", lambda a, b: buf["y"][a - buf["k0"]:b - buf["k0"]], kind="target")]
    if bias == "adam":
        stims.append(bias_stimulus())
    prog = mc.compile(c, dt=dt, batch=batch, seed=seed, stimuli=stims)
    return init_bias_unit(prog) if bias == "adam" else prog


class Plateau:
    """PyTorch ``ReduceLROnPlateau`` (mode min, rel. threshold 1e-4, no cooldown): after more than
    ``patience`` epochs without improvement of the test loss, multiply the learning rates by ``factor``."""

    def __init__(self, patience=2, factor=0.5, threshold=1e-4):
        self.patience, self.factor, self.threshold = patience, factor, threshold
        self.best, self.bad = np.inf, 0

    def step(self, loss):
        """Returns the factor to apply now (1 or ``factor``)."""
        if loss < self.best * (1 - self.threshold):
            self.best, self.bad = loss, 0
            return 1.0
        self.bad += 1
        if self.bad > self.patience:
            self.bad = 0
            return self.factor
        return 1.0


def scale_learning_rates(prog, f):
    """Multiply every learning rate of the program (weights, biases) by ``f`` (protocol level)."""
    from microcircuit.compile import PF_ETA, PPF_ETA_BIAS
    prog.proj_float[:, PF_ETA] *= f
    prog.pop_float[:, PPF_ETA_BIAS] *= f


def cross_entropy_per_step(r, labels):
    """Mean over steps and samples of ``-log softmax(r)_y`` for logits r (T, B, 10)."""
    m = r.max(axis=-1, keepdims=True)
    lse = (m[..., 0] + np.log(np.exp(r - m).sum(axis=-1)))
    return float(np.mean(lse - np.take_along_axis(r, np.asarray(labels)[None, :, None], axis=-1)[..., 0]))


def balanced_order(labels, rng):
    """A random order of the samples in which every run of consecutive samples holds the classes in
    proportion to their frequency (stratified batches): each class is shuffled, its i-th of n_c samples
    gets the key (i + U(0, 1)) / n_c, and the samples are sorted by key."""
    labels = np.asarray(labels)
    key = np.empty(len(labels))
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        idx = rng.permutation(idx)
        key[idx] = (np.arange(len(idx)) + rng.uniform(size=len(idx))) / len(idx)
    return np.argsort(key, kind="stable")


def save_checkpoint(path, prog, log, lr, sched, rng):
    """Everything needed to continue a run after the epoch just finished: the program's mutable state
    (weights, Adam moments, neuron state), the epoch log, the learning rate, the schedule's counters
    and the data-order generator. Written to a temporary file and renamed, so a kill never leaves a
    half-written checkpoint."""
    import json
    from microcircuit.checkpoint import program_checkpoint
    arrays, attrs = program_checkpoint(prog)
    meta = dict(attrs=attrs, log=log, lr=lr, rng=rng.bit_generator.state,
                sched=None if sched is None else [sched.best, sched.bad])
    tmp = Path(str(path) + ".tmp.npz")
    np.savez(tmp, meta=np.asarray(json.dumps(meta, default=int)), **arrays)
    tmp.replace(path)


def load_checkpoint(path, prog, sched, rng):
    """Restore a :func:`save_checkpoint` file into a freshly built program; returns (log, lr)."""
    import json
    from microcircuit.checkpoint import restore_program
    with np.load(path, allow_pickle=False) as f:
        meta = json.loads(str(f["meta"]))
        restore_program(prog, {k: f[k] for k in f.files if k != "meta"}, meta["attrs"])
    rng.bit_generator.state = meta["rng"]
    if sched is not None and meta["sched"] is not None:
        sched.best, sched.bad = meta["sched"]
    return meta["log"], meta["lr"]


def run(epochs=1, max_batches=None, batch=100, seed=0, eval_batches=None, max_minutes=None, on_epoch=None,
        eta=5e-3, bias="adam", plateau=True, balanced=False, data_seed=None, verbose=True, patience=2,
        min_rate=0.0, checkpoint=None):
    """``checkpoint``: a file written after every epoch; if it exists, the run continues from it."""
    from microcircuit.datasets import mnist1d
    d = mnist1d(360)
    buf = {"k0": 0}
    prog = build(batch=batch, seed=seed, buf=buf, eta=eta, bias=bias)
    n_w = sum(prog.weight(n).size for n in prog.proj_names) + (
        0 if bias == "adam" else sum(prog.pop_int[i, 1] for i in range(1, len(prog.pop_names))))
    L = d.x_train.shape[1]
    sim = mc.Simulation(prog, recordings=[Recording("output", ["r"])], chunk_steps=L)
    rec = sim.recorder
    learn = {"on": 1.0}
    sim.gates = lambda a, b: np.tile([1.0, learn["on"]], (b - a, 1))

    def feed(xb, yb):
        buf["k0"] = prog.step
        buf["x"] = xb.T[:, None, :]
        buf["y"] = np.broadcast_to(np.eye(10)[yb].T[None], (L, 10, len(yb)))
        for k in rec.blocks:
            rec.blocks[k], rec.steps[k] = [], []
        sim.run(steps=L)
        r = np.concatenate(next(iter(rec.blocks.values())))     # (L, B, 10)
        return summed_logits_readout(r, yb)[1], cross_entropy_per_step(r, yb), r.sum(axis=0)

    rng = np.random.default_rng(seed if data_seed is None else data_seed)
    sched = Plateau(patience=patience) if plateau else None
    lr = eta * prog.dt
    log = []
    if checkpoint is not None and Path(checkpoint).is_file():
        log, lr = load_checkpoint(checkpoint, prog, sched, rng)
        if verbose:
            print(f"resumed from {checkpoint} after epoch {len(log)} (lr {lr:g} per step)", flush=True)
    t_start, n_done = time.perf_counter(), len(log)
    for ep in range(len(log), epochs):
        t0 = time.perf_counter()
        order = balanced_order(d.y_train, rng) if balanced else rng.permutation(len(d.y_train))
        nb = len(order) // batch if max_batches is None else max_batches
        learn["on"] = 1.0
        tr = [feed(d.x_train[order[i * batch:(i + 1) * batch]], d.y_train[order[i * batch:(i + 1) * batch]])
              for i in range(nb)]
        t_train = time.perf_counter() - t0
        learn["on"] = 0.0
        ne = len(d.y_test) // batch if eval_batches is None else eval_batches
        t1 = time.perf_counter()
        te = [feed(d.x_test[i * batch:(i + 1) * batch], d.y_test[i * batch:(i + 1) * batch]) for i in range(ne)]
        t_test = time.perf_counter() - t1
        test_loss = float(np.mean([t[1] for t in te]))
        # diagnostic: accuracy after removing the class offset of the summed logits common to all test samples
        S = np.concatenate([t[2] for t in te])
        acc_c = float(np.mean((S - S.mean(axis=0)).argmax(axis=1) == d.y_test[:len(S)]))
        log.append(dict(epoch=ep + 1, train_acc=float(np.mean([t[0] for t in tr])),
                        train_loss=float(np.mean([t[1] for t in tr])), test_acc=float(np.mean([t[0] for t in te])),
                        test_acc_centred=acc_c,
                        test_loss=test_loss, lr=lr, batches=nb, test_samples=ne * batch, s_per_batch=t_train / nb,
                        s_train=t_train, s_test=t_test, n_params=int(n_w), out_bias_spread=float(np.ptp(
                            prog.weight("b7")[:, 0] if bias == "adam" else prog.neuron["bias"][prog.pop_slice("output")]))))
        if verbose:
            print(log[-1], flush=True)
        if sched is not None:
            f = sched.step(test_loss)
            if f != 1.0 and lr * f >= min_rate:       # min_rate: a floor under the schedule (per step)
                scale_learning_rates(prog, f)
                lr *= f
        if checkpoint is not None:
            save_checkpoint(checkpoint, prog, log, lr, sched, rng)
        if on_epoch is not None:
            on_epoch(log)
        spent = time.perf_counter() - t_start       # this invocation's budget (a resumed run starts afresh)
        if max_minutes is not None and spent + (spent / (ep + 1 - n_done)) > 60 * max_minutes:
            break       # the next epoch would not fit in the time budget
    return log


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--epochs", type=int, default=150)
    ap.add_argument("--seed", type=int, default=12, help="GLE E2E seeds: 12, 34, 56, 78, 98, 76, 54, 32, 42, 69")
    ap.add_argument("--eta", type=float, default=5e-3, help="Adam rate per time unit (x dt = 1e-3 per step)")
    ap.add_argument("--bias", choices=("adam", "sgd"), default="adam")
    ap.add_argument("--no-plateau", action="store_true", help="constant learning rate")
    ap.add_argument("--max-minutes", type=float, default=None, help="stop when the next epoch would not fit")
    ap.add_argument("--patience", type=int, default=2, help="plateau epochs before halving (paper: 2)")
    ap.add_argument("--min-rate", type=float, default=0.0, help="no halving below this rate per step")
    ap.add_argument("--tag", default="", help="suffix of the result files (variants of the protocol)")
    ap.add_argument("--checkpoint", default=None, help="checkpoint file written after every epoch; if it exists, "
                    "the run continues from it (default: <out>/mnist1d_gle_seed<s><tag>.ckpt.npz; 'none': off)")
    ap.add_argument("--out", default=str(ROOT / "analysis" / "results"))
    a = ap.parse_args(argv)
    kw = dict(seed=a.seed, eta=a.eta, bias=a.bias, plateau=not a.no_plateau, patience=a.patience,
              min_rate=a.min_rate)
    if a.quick:
        log = run(1, max_batches=4, eval_batches=2, **kw)
        write(log, a)
    else:
        ck = a.checkpoint or str(Path(a.out) / f"mnist1d_gle_seed{a.seed}{a.tag}.ckpt.npz")
        Path(a.out).mkdir(parents=True, exist_ok=True)
        log = run(a.epochs, max_minutes=a.max_minutes, on_epoch=lambda lg: write(lg, a),
                  checkpoint=None if ck == "none" else ck, **kw)
    return log


def write(log, a):
    """Markdown table, CSV and accuracy-vs-epoch figure (rewritten after every epoch)."""
    spb = log[-1]["s_per_batch"]
    s_epoch = float(np.mean([r["s_train"] / r["batches"] * 40 + r["s_test"] / r["test_samples"] * 1000
                             for r in log]))
    lines = ["# MNIST-1D, 15k end-to-end GLE network" + (" (quick timing run)" if a.quick else ""), "",
             f"Parameters (weights + biases): {log[-1]['n_params']}. Seed {a.seed}. Batches per epoch: 40 "
             f"(4000 samples / 100), 360 steps each; test on {log[-1]['test_samples']} samples. Adam on weights "
             f"and biases, {a.eta * 0.2:g} per step" + ("" if a.no_plateau else
                                                       f", ReduceLROnPlateau(patience {getattr(a, 'patience', 2)}, x0.5, floor "
                                                       f"{getattr(a, 'min_rate', 0.0):g}/step) on the test loss")
             + f"; biases: {a.bias}.", "",
             "| epoch | batches | train acc (running) | train loss | test acc | test acc, offset removed | test loss "
             "| lr/step | s / batch | s train | s test |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in log:
        ac = r.get("test_acc_centred", float("nan"))
        lines.append(f"| {r['epoch']} | {r['batches']} | {r['train_acc']:.3f} | {r['train_loss']:.3f} | "
                     f"{r['test_acc']:.3f} | {ac:.3f} | {r['test_loss']:.3f} | {r['lr']:.2e} | "
                     f"{r['s_per_batch']:.2f} | {r['s_train']:.1f} | {r['s_test']:.1f} |")
    lines += ["", f"Wall clock per full epoch (40 train + 10 test batches), mean over the epochs run: {s_epoch:.0f} s; "
              f"150 epochs: {150 * s_epoch / 3600:.1f} h per seed, {3 * 150 * s_epoch / 3600:.1f} h for 3 seeds "
              f"(one after the other) on this machine (the reference PyTorch code: about 2 h per run on a GPU).",
              "", "Loss = per-step cross-entropy of the output logits, mean over steps and samples "
              "(ln 10 = 2.303 at chance). Train accuracy is read while learning (summed logits over each "
              "sample's 360 steps, weights changing within the sample), test accuracy with plasticity off. "
              "'Offset removed' (diagnostic only): argmax of the summed logits minus their mean over the test set, "
              "i.e. without the class offset that drifts with the learning rate."]
    if not a.quick:
        lines += ["", f"Epochs run: {len(log)} of {a.epochs} (time budget {a.max_minutes} min)."]
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = "mnist1d_gle_quick" if a.quick else f"mnist1d_gle_seed{a.seed}{getattr(a, 'tag', '')}"
    (out / f"{stem}.md").write_text("\n".join(lines) + "\n")
    import csv
    with open(out / f"{stem}.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(log[0]))
        w.writeheader()
        w.writerows(log)
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    ep = [r["epoch"] for r in log]
    ax.plot(ep, [r["train_acc"] for r in log], "o-", label="train (running, during learning)")
    ax.plot(ep, [r["test_acc"] for r in log], "s-", label=f"test ({log[-1]['test_samples']} samples)")
    ax.axhline(0.917, color="k", ls=":", label="GLE paper, 15k, 150 epochs: 91.7 %")
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title("MNIST-1D, 15k-parameter GLE network (seed %d)" % a.seed)
    fig.tight_layout()
    fig.savefig(out / f"{stem}.png", dpi=120)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
