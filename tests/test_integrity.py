"""Integrity of recordings and resumes (issue 17, part 4).

Chunks carry zarr's crc32c checksum, so damage is an error naming the array and the chunk instead of
silently wrong values; readers warn about missing groups, arrays and chunk files; a resume refuses
when the run's input files or scenario file changed since it started.
"""
import os
import warnings

import google_crc32c
import numpy as np
import pytest
import zarr
from zarr.codecs import Crc32cCodec

import microcircuit as mc
from microcircuit import recording as R

from helpers import direct_and_zarr_arrays
from microcircuit.checkpoint import InputsChangedError, file_sha256, resume
from microcircuit.cli import main
from microcircuit.recording import (ChunkChecksumError, IncompleteStoreWarning, RecordedVariable, ZarrRecorder,
                                    describe_store, read_checkpoint, verify_store)
from microcircuit.scenario import load_scenario


# ------------------------------------------------------------------------------------------ writer
@pytest.mark.parametrize("codec", ["none", "zstd", "lz4"])
@pytest.mark.parametrize("width", [7, 8191])
def test_chunk_writer_writes_zarrs_bytes_with_the_crc32c_codec(tmp_path, codec, width):
    """The recorder's pipeline ends in zarr's crc32c codec, and the chunk files its own writer makes are
    zarr's bytes exactly: 3 whole chunks of 40 records each, for every codec, for a small chunk (7 values
    per record, 2240 bytes: one buffered write) and a large one (8191 values, 2.6 MB: the O_DIRECT path,
    where the 4 checksum bytes land in the unaligned tail). The last 4 bytes are the CRC-32C of the rest."""
    data = np.cumsum(np.random.default_rng(width).normal(size=(120, 1, width)), axis=0)
    direct, via_zarr = direct_and_zarr_arrays(tmp_path, codec, (0, 1, width), (40, 1, width))
    assert isinstance(direct.metadata.codecs[-1], Crc32cCodec)
    R._resize_and_write([(direct, 0, data)], tmp_path / "direct")
    R._resize_and_write([(via_zarr, 0, data)])
    files = sorted(f.relative_to(tmp_path / "zarr") for f in (tmp_path / "zarr" / "v" / "c").rglob("*") if f.is_file())
    assert len(files) == 3
    for f in files:
        mine = (tmp_path / "direct" / f).read_bytes()
        assert mine == (tmp_path / "zarr" / f).read_bytes(), f
        assert int.from_bytes(mine[-4:], "little") == google_crc32c.value(mine[:-4])
    np.testing.assert_array_equal(zarr.open_array(str(tmp_path / "direct" / "v"))[:120], data)


def test_write_file_appends_the_trailer_at_every_alignment(tmp_path):
    """payload + 4-byte trailer, written as one file, for payloads ending 4 bytes before a 4 KiB boundary
    (trailer fills it), 2 before (trailer straddles it), on it, and below/above the O_DIRECT threshold."""
    trailer = b"\x01\x02\x03\x04"
    big = 70 * R._DIRECT_ALIGN
    for n in (100, R._DIRECT_MIN - 4, big - 4, big - 2, big, big + 5):
        p = np.random.default_rng(n).integers(0, 256, n, dtype=np.uint8)
        R._write_file(tmp_path / f"f{n}", p, trailer)
        assert (tmp_path / f"f{n}").read_bytes() == p.tobytes() + trailer, n


# ------------------------------------------------------------------------------------------ readers
SPECS = [RecordedVariable("hid", "u", neurons=[0, 1, 2]), RecordedVariable("out", "r", neurons=[0, 1])]


def _store(path, codec="none", close=True):
    """30 steps in 3 whole chunks of 10 records per variable, one metric, one checkpoint."""
    rng = np.random.default_rng(0)
    data = {("hid", "u"): rng.normal(size=(30, 1, 3)), ("out", "r"): rng.normal(size=(30, 1, 2))}
    rec = ZarrRecorder(path, SPECS, dt=0.1, chunk_records=10, codec=codec)
    for k in range(3):
        rec.append({key: v[10 * k:10 * (k + 1)] for key, v in data.items()}, first_step=10 * k)
    rec.append_metrics({"loss": 0.5})
    rec.write_checkpoint({"w": np.arange(5.0)}, {"step": 30})
    if close:
        rec.close()
    return data


def _flip(f, at=17):
    b = bytearray(f.read_bytes())
    b[at] ^= 0x10
    f.write_bytes(bytes(b))


@pytest.mark.parametrize("codec", ["none", "zstd"])
def test_a_flipped_byte_is_an_error_naming_the_array_and_the_chunk(tmp_path, codec, capsys):
    """One flipped bit in chunk (1, 0, 0) of hid/u: verify_store reports exactly 1 problem, a damaged
    chunk naming 'hid/u' and (1, 0, 0); reading the variable through open_recording raises
    ChunkChecksumError with that array and chunk (not values); the undamaged chunk 0 still reads back
    exactly; `microcircuit info --verify` exits 1. With codec "none" the flip is shown to matter: the
    raw chunk bytes decode to exactly 1 of its 30 values changed, which zarr would return silently
    without the checksum."""
    store = tmp_path / "s.zarr"
    data = _store(store, codec)
    assert verify_store(store) == []
    chunk = store / "hid" / "u" / "c" / "1" / "0" / "0"
    _flip(chunk)
    if codec == "none":
        raw = np.frombuffer(chunk.read_bytes()[:-4], dtype="<f8").reshape(10, 1, 3)
        assert (raw != data[("hid", "u")][10:20]).sum() == 1
    problems = verify_store(store)
    assert [(p.kind, p.path) for p in problems] == [("damaged_chunk", "hid/u")]
    assert "(1, 0, 0)" in str(problems[0]) and "'hid/u'" in str(problems[0])
    tree = mc.open_recording(store)
    with pytest.raises(ChunkChecksumError, match=r"chunk \(1, 0, 0\) of array 'hid/u'") as info:
        tree["hid"]["u"].load()
    assert (info.value.array, info.value.chunk) == ("hid/u", (1, 0, 0))
    with pytest.raises(ChunkChecksumError):
        mc.open_recording(store).load()
    np.testing.assert_array_equal(tree["hid"]["u"][:10].values, data[("hid", "u")][:10])
    assert main(["info", "--verify", str(store)]) == 1
    out = capsys.readouterr().out
    assert "DAMAGED" in out and "verify: 1 problem(s)" in out


def test_verify_checks_committed_records_only(tmp_path):
    """In a store still being written (never closed), a garbage chunk file past the committed 30 records
    (chunk 5: records 50-59 of the room grown ahead, as an interrupted append may leave) is no problem,
    since no reader ever reads it: verify_store returns []. A flipped byte in committed chunk (0, 0, 0)
    of out/r is 1 damaged chunk."""
    store = tmp_path / "s.zarr"
    _store(store, close=False)
    assert zarr.open_array(str(store / "hid" / "u")).shape[0] > 60
    leftover = store / "hid" / "u" / "c" / "5" / "0" / "0"
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"half a chunk")
    assert verify_store(store) == []
    _flip(store / "out" / "r" / "c" / "0" / "0" / "0")
    assert [(p.kind, p.path) for p in verify_store(store)] == [("damaged_chunk", "out/r")]


def test_a_store_without_checksums_still_reads_and_verify_says_so(tmp_path, monkeypatch, capsys):
    """A store written before the checksums (pipelines without crc32c, made here by the old
    _compressors) reads back exactly, warns nothing, and verify_store reports exactly its 11 arrays as
    'no_checksum' and nothing else; `info --verify` exits 0 with one NOTE line."""
    old = R._compressors
    monkeypatch.setattr(R, "_compressors", lambda codec: tuple(c for c in old(codec) if not isinstance(c, Crc32cCodec)))
    store = tmp_path / "old.zarr"
    data = _store(store, "zstd")
    monkeypatch.setattr(R, "_compressors", old)
    with warnings.catch_warnings():
        warnings.simplefilter("error", IncompleteStoreWarning)
        np.testing.assert_array_equal(mc.open_recording(store)["hid"]["u"].values, data[("hid", "u")])
    problems = verify_store(store)
    assert {p.kind for p in problems} == {"no_checksum"} and len(problems) == 11
    assert main(["info", "--verify", str(store)]) == 0
    assert capsys.readouterr().out.count("NOTE: 11 array(s) have no checksums") == 1


def test_metrics_checkpoint_and_coordinates_carry_checksums_too(tmp_path):
    """Every array the recorder creates (variables, time/neuron/batch coordinates, metrics, checkpoint)
    ends its pipeline in crc32c (11 arrays here); a flipped byte in the checkpoint's 'w' makes
    read_checkpoint raise naming 'checkpoint/v0/w' instead of returning wrong weights."""
    store = tmp_path / "s.zarr"
    _store(store, "zstd")
    root = zarr.open_group(str(store), mode="r")
    arrays = [(name, a) for name, a in root.members(max_depth=None) if isinstance(a, zarr.Array)]
    assert sorted(n for n, _ in arrays) == ["checkpoint/v0/w", "hid/batch", "hid/neuron", "hid/time", "hid/u",
                                           "metrics/epoch", "metrics/loss", "out/batch", "out/neuron",
                                           "out/r", "out/time"]
    assert all(isinstance(a.metadata.codecs[-1], Crc32cCodec) for _, a in arrays)
    _flip(store / "checkpoint" / "v0" / "w" / "c" / "0", at=3)
    with pytest.raises(ChunkChecksumError, match="checkpoint/v0/w"):
        read_checkpoint(store)


def test_a_deleted_chunk_in_a_complete_store_warns(tmp_path):
    """An intact complete store opens without warnings. After deleting chunk 2 of out/r (records 20-29
    of 30) open_recording and describe_store warn IncompleteStoreWarning 'lacks 1 of the 3 chunk files'
    naming out/r, and `info` prints it as a WARNING line. The same deletion in a store never closed
    (complete=False: a run still writing) is not reported: only a complete store promises every chunk."""
    store = tmp_path / "s.zarr"
    _store(store)
    with warnings.catch_warnings():
        warnings.simplefilter("error", IncompleteStoreWarning)
        mc.open_recording(store)
    os.remove(store / "out" / "r" / "c" / "2" / "0" / "0")
    with pytest.warns(IncompleteStoreWarning, match=r"'out/r' lacks 1 of the 3 chunk files .*chunk \(2, 0, 0\)"):
        mc.open_recording(store)
    with pytest.warns(IncompleteStoreWarning):
        text = describe_store(store)
    assert "WARNING" in text and "out/r" in text
    running = tmp_path / "running.zarr"
    _store(running, close=False)
    os.remove(running / "out" / "r" / "c" / "2" / "0" / "0")
    with warnings.catch_warnings():
        warnings.simplefilter("error", IncompleteStoreWarning)
        mc.open_recording(running)


@pytest.mark.filterwarnings("ignore::zarr.errors.ZarrUserWarning")   # zarr's own note on the orphaned folder
def test_a_deleted_group_or_array_metadata_warns(tmp_path):
    """Deleting out/zarr.json makes population 'out' unreadable: open_recording warns naming it (the tree
    then has only 'hid' and 'metrics'), describe_store lists it. Deleting hid/u/zarr.json warns that
    array 'hid/u' is missing (the group's 'arrays' attr declares it)."""
    store = tmp_path / "s.zarr"
    _store(store)
    os.remove(store / "out" / "zarr.json")
    with pytest.warns(IncompleteStoreWarning, match="population 'out' is listed"):
        tree = mc.open_recording(store)
    assert sorted(tree.children) == ["hid", "metrics"]
    with pytest.warns(IncompleteStoreWarning):
        assert "population 'out' is listed" in describe_store(store)
    os.remove(store / "hid" / "u" / "zarr.json")
    with pytest.warns(IncompleteStoreWarning, match="array 'hid/u' is missing"):
        mc.open_recording(store)


# ------------------------------------------------------------------------------------------ resume
SCENARIO = """
[scenario]
name = "integrity"

[simulation]
dt = 0.1
duration = 20.0      # 200 steps
seed = 3
chunk_steps = 50

[[templates]]
kind = "layered"
sizes = [3, 4, 2]
hidden = { tau_m = 5.0, activation = "tanh", sigma = 0.3 }
output = { tau_m = 5.0, activation = "linear", loss = "rate", beta = 0.5 }
eta = 0.05

[[stimuli]]
target = "layer0"
waveform = "array"
file = "stim.npy"
hold_steps = 10
repeat = true

[[stimuli]]
target = "layer2"
kind = "target"
waveform = "sines"
amplitude = [0.5, 0.3]
frequency_hz = [20.0, 31.0]

[[recordings]]
population = "layer1"
variables = ["u", "r"]

[output]
checkpoint_every_steps = 100
"""


def _stopped_at_checkpoint(sc, store):
    """A run of the scenario stopped after its checkpoint at step 100 (of 200)."""
    sim = sc.build(output=str(store))
    sim.checkpoint_every = 100
    sim.run(10.0)
    sim.close()
    assert read_checkpoint(store)[1]["step"] == 100


def _u(store):
    return mc.open_recording(store)["layer1"]["u"].values


def test_resume_checks_the_inputs(tmp_path, capsys):
    """Run A: 200 steps uninterrupted. B and C: stopped at their checkpoint at step 100.
    B resumes with nothing changed: exit 0, layer1/u equal to A's bit for bit (200 records).
    Then stim.npy is changed: C's resume exits 2 naming stimuli[0].file, the file and the flag, and the
    store keeps its 100 records; with --allow-changed-inputs it resumes (exit 0, complete), notes the
    change at step 100 and the new file's hash as the run's input, and its records 0-99 equal A's while
    100-199 differ (they used the new stimulus).
    Finally an edit to the scenario file refuses the resume of B too (the resume would ignore it)."""
    rng = np.random.default_rng(0)
    np.save(tmp_path / "stim.npy", rng.normal(size=(7, 3)))
    scen = tmp_path / "integrity.toml"
    scen.write_text(SCENARIO)
    sc = load_scenario(scen)
    a, b, c = (tmp_path / f"{x}.zarr" for x in "abc")
    assert main(["run", str(scen), "--out", str(a), "--no-progress"]) == 0
    _stopped_at_checkpoint(sc, b)
    _stopped_at_checkpoint(sc, c)
    assert set(mc.open_recording(b).attrs["inputs"]["files"]) == {"stimuli[0].file"}

    assert main(["run", "--resume", str(b), "--no-progress"]) == 0
    ua = _u(a)
    assert ua.shape == (200, 1, 4)
    np.testing.assert_array_equal(_u(b), ua)

    np.save(tmp_path / "stim.npy", rng.normal(size=(7, 3)))
    capsys.readouterr()
    assert main(["run", "--resume", str(c), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "stimuli[0].file" in err and str(tmp_path / "stim.npy") in err and "--allow-changed-inputs" in err
    assert mc.open_recording(c)["layer1"].sizes["time"] == 100
    assert main(["run", "--resume", str(c), "--no-progress", "--allow-changed-inputs"]) == 0
    tree = mc.open_recording(c)
    assert tree.attrs["complete"] is True
    assert [x["step"] for x in tree.attrs["resumed_with_changed_inputs"]] == [100]
    assert tree.attrs["inputs"]["files"]["stimuli[0].file"]["sha256"] == file_sha256(tmp_path / "stim.npy")
    uc = _u(c)
    np.testing.assert_array_equal(uc[:100], ua[:100])
    assert not np.array_equal(uc[100:], ua[100:])

    scen.write_text(SCENARIO + "# edited\n")
    with pytest.raises(InputsChangedError, match="integrity.toml was edited"):
        resume(b, run=False)


def test_input_files_and_directory_hashes(tmp_path):
    """The scenario's inputs are found where the build reads them: a .zarr stimulus directory and a
    weight file, 2 inputs, resolved against the scenario's folder. A directory hashes its files in
    sorted order with their relative paths: an identical copy elsewhere hashes the same, a changed
    chunk or a renamed file (same bytes) hashes differently."""
    import shutil

    from microcircuit.checkpoint import input_files
    zarr.create_array(store=str(tmp_path / "stim.zarr"), data=np.random.default_rng(1).normal(size=(7, 3)),
                      chunks=(4, 3))
    np.save(tmp_path / "w.npy", np.zeros((4, 3)))
    text = (SCENARIO.replace('file = "stim.npy"', 'file = "stim.zarr"')
            + '\n[[projections]]\npre = "layer0"\npost = "layer1"\nname = "extra"\n'
              'weights = { dist = "array", file = "w.npy" }\n')
    (tmp_path / "s.toml").write_text(text)
    files = input_files(load_scenario(tmp_path / "s.toml"))
    assert len(files) == 2 and files["stimuli[0].file"] == (tmp_path / "stim.zarr").resolve()
    assert [p for k, p in files.items() if k.endswith(".weights.file")] == [(tmp_path / "w.npy").resolve()]
    h = file_sha256(tmp_path / "stim.zarr")
    shutil.copytree(tmp_path / "stim.zarr", tmp_path / "copy.zarr")
    assert file_sha256(tmp_path / "copy.zarr") == h
    (tmp_path / "copy.zarr" / "c" / "1" / "0").rename(tmp_path / "copy.zarr" / "c" / "1" / "1")
    assert file_sha256(tmp_path / "copy.zarr") != h
    _flip(tmp_path / "stim.zarr" / "c" / "0" / "0", at=20)
    assert file_sha256(tmp_path / "stim.zarr") != h
