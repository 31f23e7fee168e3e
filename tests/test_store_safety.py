"""Stores are never destroyed by accident (issue 17, part 3).

* ``--overwrite`` replaces only a store this package wrote (or an empty directory), never a foreign
  folder, someone else's Zarr store or a symlink (run and sweep alike);
* one writer per store: of 20 processes creating one store at once exactly one wins, the others get
  a clear error and delete nothing; a store being written cannot be overwritten or resumed;
* SIGTERM stops a run like Ctrl-C (status ``interrupted``, resumable); a full disk stops it with
  status ``failed``, the committed records readable and the run resumable.
"""
from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import microcircuit.recording as recording
from microcircuit.checkpoint import resume
from microcircuit.cli import main
from microcircuit.recording import open_recording
from microcircuit.storelock import StoreBusyError, StoreLock

ROOT = Path(__file__).resolve().parents[1]
LE_CHAIN = str(ROOT / "scenarios" / "le_chain.toml")
DT = 0.1  # ms, le_chain's step


def _run(out, *extra, duration=5.0):
    """`microcircuit run` of le_chain in this process; returns the exit code."""
    return main(["run", LE_CHAIN, "--out", str(out), "--no-progress",
                 "--set", f"simulation.duration={duration}", *extra])


def _root_attrs(store):
    return json.loads((Path(store) / "zarr.json").read_text())["attributes"]


# ------------------------------------------------------------------------------------------ --overwrite
def test_overwrite_spares_foreign_folders_in_run_and_sweep(tmp_path, capsys):
    """A folder holding someone's file, a Zarr store without our marker and a symlink to a store of
    ours all survive `run --overwrite` and `sweep --overwrite` untouched: exit code 2 (bad input),
    the error names the path and says it refuses, and each keeps exactly the entries it had (the
    lock is a flock on the directory, so not even a lock file is added)."""
    foreign = tmp_path / "home"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("keep me")
    import zarr
    theirs = tmp_path / "theirs.zarr"
    zarr.create_group(store=str(theirs), zarr_format=3, attributes={"owner": "someone else"})
    ours = tmp_path / "ours.zarr"
    assert _run(ours, duration=1.0) == 0
    link = tmp_path / "link.zarr"
    link.symlink_to(ours)
    capsys.readouterr()
    for victim in (foreign, theirs, link):
        before = sorted(os.listdir(victim))
        assert _run(victim, "--overwrite", duration=1.0) == 2
        assert main(["sweep", LE_CHAIN, "--grid", "simulation.seed=1,2", "--workers", "0", "--out", str(victim),
                     "--overwrite", "--no-progress", "--set", "simulation.duration=1"]) == 2
        err = capsys.readouterr().err
        assert err.count(f"error: {victim}:") == 2 and err.count("refusing to delete it") == 2, err
        assert sorted(os.listdir(victim)) == before      # nothing deleted, nothing (no lock file) added
    assert (foreign / "thesis.tex").read_text() == "keep me"
    assert link.is_symlink() and _root_attrs(ours)["status"] == "complete"
    # the fixes it suggests work: an empty directory is reused, a store of ours is replaced
    empty = tmp_path / "empty"
    empty.mkdir()
    assert _run(empty, "--overwrite", duration=1.0) == 0 and _root_attrs(empty)["status"] == "complete"
    assert main(["sweep", LE_CHAIN, "--grid", "simulation.seed=1,2", "--workers", "0", "--out", str(ours),
                 "--overwrite", "--no-progress", "--set", "simulation.duration=1"]) == 0
    assert _root_attrs(ours)["microcircuit_format"] == "sweep" and _root_attrs(ours)["writer"] is None


# ------------------------------------------------------------------------------------------ one writer
_RACE = textwrap.dedent("""
    import json, multiprocessing as mp, os, sys
    import numpy as np
    from microcircuit.recording import RecordedVariable, ZarrRecorder
    path, overwrite, n = sys.argv[1], sys.argv[2] == "1", 20
    spec = RecordedVariable("pop", "u", np.arange(4), units="mV")

    def write(path, i, overwrite):
        rec = ZarrRecorder(path, [spec], dt=0.1, batch=1, chunk_records=50, overwrite=overwrite,
                           attrs={"writer_id": i})
        for b in range(6):
            rec.append({("pop", "u"): np.full((50, 1, 4), float(i))}, first_step=50 * b)
        rec.close()

    def writer(i, barrier, q):
        barrier.wait()                       # all 20 start creating the store at the same moment
        try:
            write(path, i, overwrite)
            q.put((i, os.getpid(), "ok", ""))
        except Exception as exc:
            q.put((i, os.getpid(), type(exc).__name__, str(exc)))

    write(path + ".warm", -1, True)          # imports zarr and its codecs once, before the forks
    ctx = mp.get_context("fork")             # (zarr resets its event loop in a forked child)
    barrier, q = ctx.Barrier(n), ctx.Queue()
    procs = [ctx.Process(target=writer, args=(i, barrier, q)) for i in range(n)]
    for p in procs:
        p.start()
    results = [q.get(timeout=120) for _ in procs]
    for p in procs:
        p.join()
    print(json.dumps(results))
""")


def _race(path, overwrite):
    proc = subprocess.run([sys.executable, "-c", _RACE, str(path), "1" if overwrite else "0"],
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _assert_one_intact_store(path, winner):
    """Complete, all 300 records (6 blocks of 50) with their time coordinate, every value the winner's
    id: no loser's data mixed in, no loser's cleanup deleted a file of it."""
    tree = open_recording(path)
    assert tree.attrs["status"] == "complete" and tree.attrs["writer_id"] == winner
    u = tree["pop"]["u"].values
    assert u.shape == (300, 1, 4) and np.all(u == winner)
    np.testing.assert_allclose(tree["pop"]["time"].values, np.arange(300) * 0.1)


def test_twenty_racing_creators_make_exactly_one_store(tmp_path):
    """20 processes create one new store at once without --overwrite: os.mkdir lets exactly 1 win;
    the 19 others fail with StoreBusyError naming the winner's pid while the winner writes, or
    RecordingExistsError once it is done, and the winner's store is whole. (Measured: 19 busy, 0
    exists in 7 of 7 runs; the winner writes for longer than the others take to give up.)"""
    path = tmp_path / "race.zarr"
    results = _race(path, overwrite=False)
    winners = [(i, pid) for i, pid, kind, _ in results if kind == "ok"]
    assert len(winners) == 1, results
    (winner, winner_pid), = winners
    losers = [(kind, msg) for _, _, kind, msg in results if kind != "ok"]
    assert len(losers) == 19
    for kind, msg in losers:
        assert (kind == "StoreBusyError" and f"is being written by pid {winner_pid} on " in msg
                and "choose another --out" in msg) or \
               (kind == "RecordingExistsError" and "already exists" in msg), (kind, msg)
    _assert_one_intact_store(path, winner)


def test_twenty_racing_overwriters_leave_one_intact_store(tmp_path):
    """The same race with --overwrite on an existing store of ours: writers may replace it one after
    another (each locks the store before emptying it), but no two at once, so the final store is the
    last winner's alone, complete; every loser got StoreBusyError or RecordingExistsError."""
    path = tmp_path / "race.zarr"
    assert _run(path, duration=1.0) == 0     # an existing store to overwrite
    results = _race(path, overwrite=True)
    winners = [i for i, _, kind, _ in results if kind == "ok"]
    assert len(winners) >= 1, results
    assert all(kind in ("ok", "StoreBusyError", "RecordingExistsError") for _, _, kind, _ in results), results
    final = open_recording(path).attrs["writer_id"]
    assert final in winners
    _assert_one_intact_store(path, final)


def test_a_live_store_is_neither_resumed_nor_overwritten(tmp_path, capsys):
    """While a run writes a store (here: a resumed run, reopened but not yet closed, in this process),
    `run --resume STORE` and `run --overwrite --out STORE` exit 2 naming this pid, and change nothing;
    once the run has closed the store, the resume goes through (exit 0, 200 steps = 20 ms)."""
    store = tmp_path / "live.zarr"
    assert _run(store, "--set", "output.checkpoint_every=10", "--set", "simulation.chunk_steps=100",
                duration=20.0) == 0
    live = resume(store, run=False)          # holds the lock, like a run in progress
    before = sorted(p.relative_to(store) for p in store.rglob("*"))
    capsys.readouterr()
    assert main(["run", "--resume", str(store), "--no-progress"]) == 2
    assert _run(store, "--overwrite", duration=1.0) == 2
    err = capsys.readouterr().err
    assert err.count(f"is being written by pid {os.getpid()} on ") == 2, err
    assert "wait for it or choose another --out" in err
    assert sorted(p.relative_to(store) for p in store.rglob("*")) == before
    with pytest.raises(StoreBusyError):
        StoreLock.acquire(store)
    live.close()
    assert main(["run", "--resume", str(store), "--no-progress"]) == 0
    tree = open_recording(store)
    assert tree.attrs["status"] == "complete" and tree.attrs["writer"] is None
    assert tree["le5"].sizes["time"] == 200


def test_a_live_sweep_store_is_neither_continued_nor_overwritten(tmp_path, capsys):
    """A sweep's client holds its store's lock for the whole sweep (here: this test holds it, as a
    running client would). A second client continuing the same sweep or overwriting it exits 2 with
    the busy error and changes nothing; with the lock free, continuing skips both done points."""
    store = tmp_path / "sweep.zarr"
    argv = ["sweep", LE_CHAIN, "--grid", "simulation.seed=1,2", "--workers", "0", "--out", str(store),
            "--no-progress", "--set", "simulation.duration=1"]
    assert main(argv) == 0
    before = {p: p.stat().st_mtime_ns for p in store.rglob("*")}
    capsys.readouterr()
    with StoreLock.acquire(store):
        assert main(argv) == 2
        assert main(argv + ["--overwrite"]) == 2
    assert capsys.readouterr().err.count("is being written by") == 2
    assert {p: p.stat().st_mtime_ns for p in store.rglob("*")} == before
    assert main(argv) == 0
    assert "ran 0, skipped 2 already done" in capsys.readouterr().out


def test_the_cli_restores_the_sigterm_handler_it_installs():
    """main() maps SIGTERM to an interrupt only while its command runs: importing microcircuit and
    returning from main() leave the process's own handler in place (1 handler before = 1 after)."""
    def mine(signum, frame):
        pass

    old = signal.signal(signal.SIGTERM, mine)
    try:
        assert main(["validate", LE_CHAIN]) == 0
        assert signal.getsignal(signal.SIGTERM) is mine
    finally:
        signal.signal(signal.SIGTERM, old)


# ------------------------------------------------------------------------------------------ SIGTERM
_PAUSE_AFTER_FIRST_CHECKPOINT = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import microcircuit.checkpoint as checkpoint
    from microcircuit.cli import main
    real = checkpoint.write_checkpoint

    def write_then_wait(sim):      # the run is mid-way and resumable: signal the test, wait for SIGTERM
        k = real(sim)
        tmp = Path(sys.argv[1] + ".tmp")
        tmp.write_text(str(sim.program.step))
        tmp.replace(sys.argv[1])   # atomic: the test never sees the file before its content
        time.sleep(120)
        return k

    checkpoint.write_checkpoint = write_then_wait
    sys.exit(main(sys.argv[2:]))
""")


def test_sigterm_interrupts_a_run_that_then_resumes(tmp_path):
    """SIGTERM to a `microcircuit run` subprocess while it waits right after its first checkpoint
    (step 5000 of 20000): exit 143 (128 + SIGTERM), one line on stderr and no traceback, status
    "interrupted" with a reason naming SIGTERM and step 5000; then `--resume` finishes all 20000
    steps (2 s of model time at dt = 0.1 ms). The pause makes the timing deterministic on a busy machine."""
    store, ready = tmp_path / "long.zarr", tmp_path / "ready"
    proc = subprocess.Popen([sys.executable, "-c", _PAUSE_AFTER_FIRST_CHECKPOINT, str(ready),
                             "run", LE_CHAIN, "--out", str(store), "--no-progress",
                             "--set", "simulation.duration=2000", "--set", "output.checkpoint_every=500"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 90
    try:
        while time.time() < deadline and proc.poll() is None and not ready.exists():
            time.sleep(0.01)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert ready.exists() and ready.read_text() == "5000", err
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "Traceback" not in err and "interrupted (SIGTERM)" in err and "--resume" in err, err
    attrs = _root_attrs(store)
    assert attrs["status"] == "interrupted" and attrs["complete"] is False, attrs
    assert attrs["reason"].startswith("interrupted (SIGTERM) at step 5000, t = 500 ms"), attrs["reason"]
    assert attrs["n_steps_done"] == 5000
    assert main(["run", "--resume", str(store), "--no-progress"]) == 0
    tree = open_recording(store)
    assert tree.attrs["status"] == "complete" and tree["le5"].sizes["time"] == 20_000


# ------------------------------------------------------------------------------------------ disk full
def _fail_chunks_from(monkeypatch, first_bad_chunk, err=errno.ENOSPC):
    """Make the recorder's chunk-file writer raise OSError(err) for every chunk at or after
    ``first_bad_chunk`` along time (the disk fills up there); returns the list of refused files."""
    real, refused = recording._write_file, []

    def write(path, *args, **kw):
        parts = Path(path).parts
        if int(parts[parts.index("c") + 1]) >= first_bad_chunk:
            refused.append(path)
            raise OSError(err, os.strerror(err), str(path))
        return real(path, *args, **kw)

    monkeypatch.setattr(recording, "_write_file", write)
    return refused


def test_disk_full_marks_the_store_failed_and_it_resumes(tmp_path, monkeypatch, capsys):
    """The disk "fills up" at step 300 of a 500-step run (chunks of 100 steps, checkpoint every 100):
    exit 4 with one error line naming the error, status "failed" with the error in the reason, the 300
    committed records readable, and `--resume` from the checkpoint at step 300 gives exactly the
    records of an uninterrupted run."""
    ref, store = tmp_path / "ref.zarr", tmp_path / "full.zarr"
    opts = ["--set", "simulation.chunk_steps=100", "--set", "output.checkpoint_every=10"]
    assert _run(ref, *opts, duration=50.0) == 0
    refused = _fail_chunks_from(monkeypatch, 3)
    capsys.readouterr()
    assert _run(store, *opts, duration=50.0) == 4
    err = capsys.readouterr().err
    assert refused, "the fault was never injected: is recording._write_file still the chunk writer?"
    assert len(err.strip().splitlines()) == 1 and "No space left on device" in err and "marked failed" in err, err
    attrs = _root_attrs(store)
    assert attrs["status"] == "failed" and "No space left on device" in attrs["reason"], attrs
    assert open_recording(store)["le5"].sizes["time"] == 300
    monkeypatch.undo()
    assert main(["run", "--resume", str(store), "--no-progress"]) == 0
    a, b = open_recording(ref), open_recording(store)
    assert b.attrs["status"] == "complete"
    for pop in ("stim", "le5", "leaky5"):
        for var in a[pop].data_vars:
            np.testing.assert_array_equal(b[pop][var].values, a[pop][var].values, err_msg=f"{pop}/{var}")


def test_read_only_disk_says_when_even_the_status_cannot_be_written(tmp_path, monkeypatch, capsys):
    """If the file system turns read-only mid-run, the chunk write and the closing status write both
    fail: exit 4, one line that says the status could not be updated (it still reads "running"), and
    the 100 records committed before it are readable."""
    store = tmp_path / "ro.zarr"
    _fail_chunks_from(monkeypatch, 1, errno.EROFS)
    real_close = recording.ZarrRecorder.close

    def close(self, complete=True, reason=None):
        if complete:
            return real_close(self, complete, reason)
        self._lock.release()
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self.path / "zarr.json"))

    monkeypatch.setattr(recording.ZarrRecorder, "close", close)
    capsys.readouterr()
    assert _run(store, "--set", "simulation.chunk_steps=100", duration=50.0) == 4
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Read-only file system" in err, err
    assert "could not be updated" in err and "'running'" in err, err
    assert _root_attrs(store)["status"] == "running"
    assert open_recording(store)["le5"].sizes["time"] == 100
