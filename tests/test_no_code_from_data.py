"""No code from data (issue 17): a scenario file and the files it points at are untrusted input.

Before the fix, ``[protocol] dataset = "cifar10"`` with ``dataset_args = { cache_dir = "evil" }``
unpickled ``evil/cifar-10-batches-py/data_batch_1`` (a pickle runs any callable it names), and
``dataset`` was resolved with ``getattr(microcircuit.datasets, name)`` (``"__class__"``,
``"one_hot"`` ... were reachable), while ``microcircuit validate`` called the file OK.
"""
from __future__ import annotations

import ast
import pickle
import sys
import tokenize
from pathlib import Path

import numpy as np
import pytest

from microcircuit.cli import main
from microcircuit.datasets import DATASETS, DatasetError, cifar10
from microcircuit.errors import MicrocircuitError, ScenarioError
from microcircuit.protocols import load_dataset
from microcircuit.scenario import load_scenario

PKG = Path(__file__).resolve().parents[1] / "microcircuit"
CIFAR_BIN = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
CIFAR_PY = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


# ----------------------------------------------------------------------------- (a) source scan
# Each pattern is a way for bytes from a file, or a string from a scenario, to become code:
# unpickling calls whatever callable the pickle names (``__reduce__``), so does np.load with
# allow_pickle=True; eval/exec/compile run strings; __import__ / import_module with a computed name
# import any module; getattr on a module with a computed name reaches any callable in it (the
# ``load_dataset`` bug). None of them is needed to read numbers, so the package has none.
_UNSAFE_MODULES = {"pickle", "_pickle", "cPickle", "cloudpickle", "dill", "marshal", "shelve", "joblib"}


def _code_tokens(path: Path):
    """Tokens of the file's code: comments and strings (docstrings, messages) dropped."""
    with open(path, "rb") as fh:
        toks = list(tokenize.tokenize(fh.readline))
    skip = {tokenize.COMMENT, tokenize.STRING, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT,
            tokenize.DEDENT, tokenize.ENCODING, tokenize.ENDMARKER}
    for name in ("FSTRING_START", "FSTRING_MIDDLE", "FSTRING_END"):  # Python >= 3.12
        if hasattr(tokenize, name):
            skip.add(getattr(tokenize, name))
    return [t for t in toks if t.type not in skip]


def _token_hits(path: Path) -> list[str]:
    toks = _code_tokens(path)
    s = [t.string for t in toks]
    hits = []
    for i, t in enumerate(s):
        prev = s[i - 1] if i else ""
        nxt = s[i + 1] if i + 1 < len(s) else ""
        at = f"{path.relative_to(PKG.parent)}:{toks[i].start[0]}"
        if t in ("pickle", "_pickle", "cPickle", "dill", "cloudpickle") and nxt == "." and \
                i + 2 < len(s) and s[i + 2] in ("load", "loads", "Unpickler"):
            hits.append(f"{at}: {t}.{s[i + 2]}")
        if t == "from" and nxt in _UNSAFE_MODULES:                       # from pickle import load
            hits.append(f"{at}: from {nxt}")
        first = next(k for k in range(i, -1, -1) if k == 0 or toks[k - 1].start[0] != toks[i].start[0])
        if t == "import" and s[first] != "from":                          # import os, pickle as p
            j = i + 1
            while j < len(s) and toks[j].start[0] == toks[i].start[0]:
                if s[j] in _UNSAFE_MODULES and s[j - 1] in (",", "import"):
                    hits.append(f"{at}: import {s[j]}")
                j += 1
        if t in ("eval", "exec", "compile") and nxt == "(" and prev != "." and prev != "def":
            hits.append(f"{at}: {t}(")
        if t == "allow_pickle" and nxt == "=" and i + 2 < len(s) and s[i + 2] != "False":
            hits.append(f"{at}: allow_pickle={s[i + 2]}")
        if t == "__import__":
            hits.append(f"{at}: __import__")
    return hits


def _ast_hits(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    modules = set()         # names bound by an import in this file
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules |= {a.asname or a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            modules |= {a.asname or a.name for a in node.names}
    hits = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        fname = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else None
        const = bool(node.args) and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
        at = f"{path.relative_to(PKG.parent)}:{node.lineno}"
        if fname == "import_module" and not const:
            hits.append(f"{at}: import_module(<non-literal>)")
        if fname == "getattr" and len(node.args) >= 2 and isinstance(node.args[0], ast.Name) \
                and node.args[0].id in modules \
                and not (isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str)):
            hits.append(f"{at}: getattr({node.args[0].id}, <non-literal>)")
    return hits


def _calls_of(name):
    for path in sorted(PKG.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and (
                    isinstance(node.func, ast.Name) and node.func.id == name
                    or isinstance(node.func, ast.Attribute) and node.func.attr == name):
                yield path, node


# ephys._need(module) imports optional readers (igor2, pyabf, h5py, efel) by name; it is the one
# import_module with a parameter, and every call of _need passes a string literal (checked below).
_ALLOWED = {"microcircuit/ephys.py": {"import_module(<non-literal>)"}}


def test_package_source_has_no_code_from_data_constructs():
    files = sorted(PKG.rglob("*.py"))
    assert len(files) > 30
    hits = []
    for path in files:
        rel = str(path.relative_to(PKG.parent))
        for h in _token_hits(path) + _ast_hits(path):
            if h.split(": ", 1)[1] not in _ALLOWED.get(rel, ()):
                hits.append(h)
    assert hits == [], "constructs that can turn data into code:\n" + "\n".join(hits)
    need = list(_calls_of("_need"))
    assert need and all(isinstance(c.args[0], ast.Constant) and isinstance(c.args[0].value, str)
                        for _, c in need)


def test_source_scan_catches_the_patterns(tmp_path, monkeypatch):
    """The scanner itself: it flags each construct in code and ignores text in strings/comments."""
    bad = tmp_path / "microcircuit" / "bad.py"
    bad.parent.mkdir()
    bad.write_text(
        "import os, pickle\nfrom numpy import load\nimport importlib\nfrom . import datasets\n"
        "x = pickle.load(open('f', 'rb'))\ny = pickle.loads(b'')\nz = eval('1')\nexec('2')\n"
        "w = load('f', allow_pickle=True)\nm = __import__('os')\nimportlib.import_module(name)\n"
        "fn = getattr(datasets, name)\n"
        "'''pickle.load(eval(exec( allow_pickle=True __import__'''\n# pickle.load(f) eval(x)\n"
        "s = 'import pickle'\nv = np.eval(x)\nok = getattr(os, 'sep')\n", encoding="utf-8")
    monkeypatch.setattr(sys.modules[__name__], "PKG", bad.parent)
    found = [h.split(": ", 1)[1] for h in _token_hits(bad) + _ast_hits(bad)]
    assert sorted(found) == sorted([
        "import pickle", "pickle.load", "pickle.loads", "eval(", "exec(", "allow_pickle=True",
        "__import__", "import_module(<non-literal>)", "getattr(datasets, <non-literal>)"])


# ----------------------------------------------------------------------------- (b) malicious pickle
class _Payload:
    """Unpickling this object calls ``open(marker, "w")``: the marker file appears."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _scenario(tmp_path, dataset='"cifar10"', dataset_args=None, name="s.toml"):
    args = "" if dataset_args is None else f"dataset_args = {dataset_args}\n"
    text = f"""
[scenario]
name = "no_code"

[simulation]
dt = 0.1
seed = 0

[[templates]]
kind = "layered"
sizes = [3072, 10]
input = "input"
prefix = "layer"
output_name = "output"
output = {{ tau_m = 10.0, activation = "logistic" }}
weights = {{ dist = "normal", mean = 0.0, std = 0.01 }}
eta = 1.0

[protocol]
dataset = {dataset}
{args}t_pres = 1.0
epochs = 1
lr = 0.1
phases = ["train", "test"]

[output]
path = "{(tmp_path / 'out.zarr').as_posix()}"
"""
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def _plant(cache: Path, payload: bytes, pad_to_record: bool):
    """The payload where the old loader read (Python version) and as the binary batch files."""
    (cache / "cifar-10-batches-py").mkdir(parents=True)
    (cache / "cifar-10-batches-bin").mkdir(parents=True)
    for n in CIFAR_PY:
        (cache / "cifar-10-batches-py" / n).write_bytes(payload)
    body = payload + b"\0" * ((-len(payload)) % 3073) if pad_to_record else payload
    for n in CIFAR_BIN:
        (cache / "cifar-10-batches-bin" / n).write_bytes(body)
    return body


def test_payload_is_live(tmp_path):
    """Sanity: the payload really runs code when unpickled (so its absence below means something)."""
    probe = tmp_path / "probe"
    pickle.loads(pickle.dumps(_Payload(probe))).close()
    assert probe.exists()


@pytest.mark.parametrize("pad", [False, True], ids=["bad-size", "size-ok-label-byte-128"])
def test_malicious_cifar_files_never_unpickled(tmp_path, capsys, pad):
    marker = tmp_path / "PWNED"
    cache = tmp_path / "evil"
    body = _plant(cache, pickle.dumps(_Payload(marker), protocol=2), pad)
    assert (len(body) % 3073 == 0) == pad
    sc = _scenario(tmp_path, dataset_args=f'{{ cache_dir = "{cache.as_posix()}" }}')
    first = str(cache / "cifar-10-batches-bin" / "data_batch_1.bin")

    # direct calls: loader and registry
    with pytest.raises(DatasetError, match="data_batch_1.bin"):
        cifar10(n_val=0, cache_dir=cache)
    with pytest.raises(DatasetError, match="data_batch_1.bin"):
        load_dataset("cifar10", cache_dir=str(cache), n_val=0)

    # validate: a size that is not a multiple of 3073 is caught by stat; a padded file passes
    # validation (nothing is read there) and is refused by the loader at run time
    rc = main(["validate", str(sc)])
    out, err = capsys.readouterr()
    if pad:
        assert rc == 0, err
    else:
        assert rc == 2
        assert "protocol.dataset_args.cache_dir" in err and first in err and "3073" in err
        assert "Traceback" not in err + out

    rc = main(["run", str(sc), "--no-progress"])
    out, err = capsys.readouterr()
    assert rc == 2, out + err
    assert first in err and "Traceback" not in err + out
    assert ("label byte 128" in err) if pad else ("not a positive multiple of 3073" in err)
    assert not marker.exists()
    assert not (tmp_path / "out.zarr").exists()


def test_python_version_only_is_reported_not_read(tmp_path, capsys):
    marker = tmp_path / "PWNED"
    cache = tmp_path / "evil"
    (cache / "cifar-10-batches-py").mkdir(parents=True)
    for n in CIFAR_PY:
        (cache / "cifar-10-batches-py" / n).write_bytes(pickle.dumps(_Payload(marker)))
    sc = _scenario(tmp_path, dataset_args=f'{{ cache_dir = "{cache.as_posix()}" }}')
    for cmd in (["validate", str(sc)], ["run", str(sc), "--no-progress"]):
        rc = main(cmd)
        out, err = capsys.readouterr()
        assert rc == 2 and "Traceback" not in err
        assert "cifar-10-batches-bin/data_batch_1.bin" in err and "cifar-10-binary.tar.gz" in err
        assert "pickle" in err          # says why the Python version is ignored
    with pytest.raises(FileNotFoundError, match="cifar-10-binary.tar.gz"):
        cifar10(cache_dir=cache)
    assert not marker.exists()


# ----------------------------------------------------------------------------- (c) names and args
@pytest.mark.parametrize("name", ["__class__", "one_hot", "DatasetError", "DATASETS", "registry",
                                  "__builtins__", "load"])
def test_only_registered_names(tmp_path, capsys, name):
    sc = _scenario(tmp_path, dataset=f'"{name}"')
    with pytest.raises(ScenarioError) as ei:
        load_scenario(sc)
    paths = [p for p, _ in ei.value.problems]
    assert "protocol.dataset" in paths
    msg = dict(ei.value.problems)["protocol.dataset"]
    assert "unknown data set" in msg and "yin_yang" in msg       # the fix: the registered names
    assert main(["validate", str(sc)]) == 2
    err = capsys.readouterr().err
    assert "protocol.dataset" in err and "Traceback" not in err
    with pytest.raises(DatasetError, match="protocol.dataset: unknown data set"):
        load_dataset(name)


@pytest.mark.parametrize("args, path, text", [
    ('{ cache_dir = 5 }', "protocol.dataset_args.cache_dir", "folder path"),
    ('{ cach_dir = "x" }', "protocol.dataset_args.cach_dir", "did you mean 'cache_dir'"),
    ('{ n_val = "10" }', "protocol.dataset_args.n_val", "expected an integer"),
    ('{ n_val = -1 }', "protocol.dataset_args.n_val", "must lie in"),
    ('{ n_val = 1.5 }', "protocol.dataset_args.n_val", "expected an integer"),
])
def test_bad_dataset_args_rejected_at_load(tmp_path, args, path, text):
    with pytest.raises(ScenarioError) as ei:
        load_scenario(_scenario(tmp_path, dataset_args=args))
    problems = dict(ei.value.problems)
    assert path in problems and text in problems[path], ei.value.problems


def test_registry_declares_every_argument():
    """Each registered loader takes exactly the declared arguments (no hidden, unchecked ones)."""
    import inspect
    assert set(DATASETS) == {"yin_yang", "bars", "digits", "mnist1d", "teacher_student", "mnist", "cifar10",
                            "mnist_idx", "speech_shaped"}
    for name, e in DATASETS.items():
        params = inspect.signature(e.loader).parameters
        assert set(e.args) == set(params), name
        assert e.doc and e.name == name


def test_shipped_protocol_scenarios_still_validate():
    root = PKG.parent / "scenarios"
    for p in sorted(root.glob("*.toml")):
        if "[protocol]" in p.read_text(encoding="utf-8"):
            load_scenario(p)


# ----------------------------------------------------------------------------- (d) binary CIFAR
def _write_cifar_bin(cache: Path, n=10, seed=0):
    """Tiny binary CIFAR-10: ``n`` records per file; returns {file: (labels, images (n, 3, 32, 32))}."""
    rng = np.random.default_rng(seed)
    root = cache / "cifar-10-batches-bin"
    root.mkdir(parents=True)
    sets = {}
    for k, name in enumerate(CIFAR_BIN):
        labels = ((np.arange(n) + k) % 10).astype(np.uint8)
        img = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
        rec = np.concatenate([labels[:, None], img.reshape(n, 3072)], axis=1)
        assert rec.shape == (n, 3073)
        (root / name).write_bytes(rec.tobytes())
        sets[name] = (labels, img)
    return sets


def test_synthetic_binary_cifar_loads(tmp_path):
    sets = _write_cifar_bin(tmp_path)
    d = cifar10(n_val=5, cache_dir=tmp_path)
    assert d.x_train.shape == (45, 3072) and d.x_val.shape == (5, 3072) and d.x_test.shape == (10, 3072)
    assert d.n_classes == 10 and d.x_train.dtype == np.float64
    train_labels = np.concatenate([sets[n][0] for n in CIFAR_BIN[:5]]).astype(np.int64)
    train_img = np.concatenate([sets[n][1] for n in CIFAR_BIN[:5]])
    np.testing.assert_array_equal(d.y_train, train_labels[:45])
    np.testing.assert_array_equal(d.y_val, train_labels[45:])
    np.testing.assert_array_equal(d.y_test, sets["test_batch.bin"][0])
    # pixel order: channel-major, row by row; value = byte / 255
    labels, img = sets["data_batch_1.bin"]
    r, c, i, j = 2, 1, 3, 7         # record 2, green plane, row 3, column 7
    assert d.x_train[r, c * 1024 + i * 32 + j] == img[r, c, i, j] / 255.0
    raw = (tmp_path / "cifar-10-batches-bin" / "data_batch_1.bin").read_bytes()
    assert d.x_train[r, c * 1024 + i * 32 + j] == raw[r * 3073 + 1 + c * 1024 + i * 32 + j] / 255.0
    np.testing.assert_array_equal(d.x_train.reshape(-1, 3, 32, 32), train_img[:45] / 255.0)
    np.testing.assert_array_equal(d.x_test.reshape(-1, 3, 32, 32), sets["test_batch.bin"][1] / 255.0)
    # the same through the registry and through a scenario's validation
    d2 = load_dataset("cifar10", cache_dir=str(tmp_path), n_val=5)
    np.testing.assert_array_equal(d2.x_train, d.x_train)
    load_scenario(_scenario(tmp_path, dataset_args=f'{{ cache_dir = "{tmp_path.as_posix()}", n_val = 5 }}'))


@pytest.mark.parametrize("size, text", [(3072, "not a positive multiple of 3073"), (0, "0 bytes"),
                                        (3073 * 10001, "more than the 10000")])
def test_cifar_size_checks_name_the_file(tmp_path, size, text):
    _write_cifar_bin(tmp_path)
    bad = tmp_path / "cifar-10-batches-bin" / "data_batch_3.bin"
    bad.write_bytes(b"\1" * size)
    with pytest.raises(DatasetError, match=text) as ei:
        cifar10(n_val=0, cache_dir=tmp_path)
    assert str(bad) in str(ei.value)


# ----------------------------------------------------------------------------- other readers
def test_mnist_npz_with_object_array_is_refused(tmp_path):
    marker = tmp_path / "PWNED"
    obj = np.empty(1, object)
    obj[0] = _Payload(marker)
    np.savez(tmp_path / "mnist.npz", x_train=obj, y_train=np.zeros(1, np.uint8),
             x_test=np.zeros((1, 28, 28), np.uint8), y_test=np.zeros(1, np.uint8))
    assert not marker.exists()
    with pytest.raises(DatasetError, match="mnist.npz"):
        load_dataset("mnist", cache_dir=str(tmp_path), n_val=0)
    assert not marker.exists()


def test_zarr_stimulus_with_pickle_codec_is_refused(tmp_path):
    """A Zarr v2 array with the numcodecs 'pickle' object codec (a stimulus file) is not decoded."""
    import json
    from microcircuit.stimuli import load_array, StimulusError
    marker = tmp_path / "PWNED"
    store = tmp_path / "s.zarr"
    store.mkdir()
    (store / ".zarray").write_text(json.dumps({
        "zarr_format": 2, "shape": [1], "chunks": [1], "dtype": "|O", "compressor": None,
        "fill_value": None, "filters": [{"id": "pickle", "protocol": 5}], "order": "C"}))
    arr = np.empty(1, object)
    arr[0] = _Payload(marker)
    (store / "0").write_bytes(pickle.dumps(arr, protocol=5))
    with pytest.raises(StimulusError):
        load_array(store)
    assert not marker.exists()


def test_morphology_error_is_typed_and_escapes_file_content(tmp_path):
    from microcircuit.morphology import MorphologyError, read_swc
    assert issubclass(MorphologyError, MicrocircuitError) and issubclass(MorphologyError, ValueError)
    f = tmp_path / "cell.swc"
    f.write_text("1 1 0 0 0 \x1b[2J\x1b]0;title\x07 -1\n", encoding="utf-8")
    with pytest.raises(MorphologyError) as ei:
        read_swc(f)
    msg = str(ei.value)
    assert "\x1b" not in msg and "\x07" not in msg and "\\x1b" in msg and f"{f}:1" in msg
    g = tmp_path / "cell\x1b[31m.swc"
    g.write_text("1 1 0 0 0 1 -1\n2 3 0 0 0 x 1\n", encoding="utf-8")
    with pytest.raises(MorphologyError) as ei:
        read_swc(g)
    assert "\x1b" not in str(ei.value) and "cell\\x1b[31m.swc:2" in str(ei.value)
