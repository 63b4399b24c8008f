"""
The model scanner's corpus, made at test time (nothing is stored in the repository):
`python model-corpus.py DIR debian` with Debian's python3 (scikit-learn 1.2, NumPy 1.24, joblib 1.2)
and `python model-corpus.py DIR venv` with the pinned venv (scikit-learn 1.9, NumPy 2, XGBoost,
LightGBM, safetensors). Writes the files into DIR and appends one JSON line per file to
DIR/corpus.jsonl: {"file", "kind": "malicious"|"benign", "threat", "expect"} where expect is a
regular expression the scanner's finding must match.

Every malicious file is checked here to do what it claims under the loader it targets, without
running its payload: an unpickler whose find_class refuses the payload's import proves the pickle
reaches it (torch.load, joblib.load, np.load and pickle.load all resolve globals through it).
"""
import collections
import gzip
import io
import json
import os
import pickle
import struct
import sys
import tarfile
import warnings
import zipfile

warnings.filterwarnings("ignore")
out_dir, part = sys.argv[1], sys.argv[2]
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
index = open(os.path.join(out_dir, "corpus.jsonl"), "a")


def write(name, data, kind, threat, expect=""):
    with open(os.path.join(out_dir, name), "wb") as f:
        f.write(data)
    index.write(json.dumps({"file": name, "kind": kind, "threat": threat, "expect": expect}) + "\n")


class Reached(Exception):
    pass


class Probe(pickle._Unpickler):
    """Stops at the first import of a payload global: proof that a loader would get there."""

    payload = {("posix", "system"), ("os", "system"), ("nt", "system")}

    def find_class(self, module, name):
        if (module, name) in self.payload or (module == "sklearn" and name == "os.system"):
            raise Reached(f"{module}.{name}")
        return super().find_class(module, name)

    def persistent_load(self, pid):
        return None


def reaches(data, offset=0):
    f = io.BytesIO(data)
    f.seek(offset)
    try:
        while f.tell() < len(data):
            Probe(f).load()
    except Reached:
        return True
    except Exception:
        return False
    return False


class Call:
    """An object whose unpickling calls fn(*args)."""

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return (self.fn, self.args)


SHELL = "id > /dev/null"
P0_SYSTEM = b"cposix\nsystem\n(S'" + SHELL.encode() + b"'\ntR."

if part == "debian":
    import builtins
    import importlib
    import pydoc
    import runpy
    import subprocess
    import webbrowser

    import joblib
    import numpy as np
    from sklearn import compose, ensemble, linear_model, pipeline, preprocessing

    import torch_emulation as te

    M = "malicious"
    # --- The classic payloads ---
    evil = pickle.dumps(Call(os.system, SHELL), protocol=4)
    assert reaches(evil)
    write("classic-os-system.pkl", evil, M, "os.system (posix.system on Linux) from __reduce__, protocol 4", r"imports posix\.system \(dangerous\)")
    assert reaches(P0_SYSTEM)
    write("classic-posix-system-p0.pkl", P0_SYSTEM, M, "protocol 0 GLOBAL posix.system", r"imports posix\.system \(dangerous\)")
    write("classic-subprocess.pkl", pickle.dumps(Call(subprocess.check_output, ["id"]), protocol=2), M, "subprocess.check_output (protocol 2 names it commands.check_output, Python 2's module)", r"imports commands\.check_output \(dangerous\)")
    write("classic-builtins-exec.pkl", pickle.dumps(Call(builtins.exec, "import os"), protocol=3), M, "builtins.exec", r"imports builtins\.exec \(dangerous\)")
    write("classic-builtins-eval.pkl", pickle.dumps(Call(builtins.eval, "1+1"), protocol=5), M, "builtins.eval", r"imports builtins\.eval \(dangerous\)")
    getattr_chain = (
        b"\x80\x02cbuiltins\ngetattr\ncbuiltins\n__import__\nX\x02\x00\x00\x00os\x85RX\x06\x00\x00\x00system\x86RX\x02\x00\x00\x00id\x85R."
    )
    write("classic-builtins-getattr.pkl", getattr_chain, M, "builtins.getattr(__import__('os'), 'system')", r"imports builtins\.getattr \(dangerous\)")
    write("classic-runpy.pkl", pickle.dumps(Call(runpy._run_code, "import os", {}), protocol=4), M, "runpy._run_code", r"imports runpy\._run_code \(dangerous\)")
    write("classic-pydoc.pkl", pickle.dumps(Call(pydoc.pipepager, "x", "id"), protocol=4), M, "pydoc.pipepager runs a shell command", r"imports pydoc\.pipepager \(dangerous\)")
    write("classic-webbrowser.pkl", pickle.dumps(Call(webbrowser.open, "http://127.0.0.1:9/"), protocol=4), M, "webbrowser.open", r"imports webbrowser\.open \(dangerous\)")
    write("classic-importlib.pkl", pickle.dumps(Call(importlib.import_module, "os"), protocol=4), M, "importlib.import_module", r"imports importlib\.import_module \(dangerous\)")
    write("classic-nested-pickle-loads.pkl", pickle.dumps(Call(pickle.loads, evil), protocol=4), M, "pickle.loads of a nested pickle", r"imports _pickle\.loads \(dangerous\)")

    # --- torch.load-style __reduce__ chains inside torch.save's zip ---
    sd = te.state_dict()
    sd["0.weight"] = Call(sys.modules["torch._utils"]._rebuild_tensor_v2, Call(builtins.eval, "__import__('os').system('id')"), 0, (1,), (1,), False, collections.OrderedDict())
    write("torch-reduce-chain.pt", te.save(sd), M, "torch.load: _rebuild_tensor_v2 whose storage argument is an eval", r"archive/data\.pkl imports __builtin__\.eval \(dangerous\)")
    load_from_bytes = te._define("torch.storage", "_load_from_bytes", (lambda b: b))
    nested = te.save_legacy(te.state_dict()) + P0_SYSTEM
    write("torch-load-from-bytes.pt", te.save({"m": Call(load_from_bytes, nested)}), M, "torch.storage._load_from_bytes: a nested torch.load", r"imports torch\.storage\._load_from_bytes \(dangerous\)")

    # --- The evasions of issue 14 ---
    from sklearn.utils._testing import assert_run_python_script

    write("evasion-allowed-package-callable.pkl", pickle.dumps(Call(assert_run_python_script, "import os; os.system('id')"), protocol=4), M, "a callable of an allowed package that runs code (sklearn.* glob)", r"imports sklearn\.utils\._testing\.assert_run_python_script \(not in the allow-list\)")
    dotted = b"\x80\x04\x8c\x07sklearn\x94\x8c\x09os.system\x94\x93\x94\x8c\x02id\x94\x85\x94R\x94."
    assert reaches(dotted)
    u = pickle._Unpickler(io.BytesIO(dotted))
    u.proto = 4
    assert u.find_class("sklearn", "os.system") is os.system  # what Python resolves under protocol 4
    write("evasion-dotted-stack-global.pkl", dotted, M, "STACK_GLOBAL sklearn + os.system (an attribute path)", r"imports sklearn:os\.system \(dangerous\)")
    first = pickle.dumps({"weights": [1.0, 2.0]}, protocol=2)
    assert reaches(first + P0_SYSTEM, len(first))
    write("evasion-second-pickle.pkl", first + P0_SYSTEM, M, "a protocol 0 pickle after a protocol 2 one (legacy torch.load reads both)", r"imports posix\.system \(dangerous\)")
    write("evasion-zip-appended-archive.pt", te.save(te.state_dict()) + te.save({"x": Call(os.system, SHELL)}), M, "a second archive appended after the first one's end record", r"bytes after the end of the archive")

    def plain_zip(entries):
        b = io.BytesIO()
        with zipfile.ZipFile(b, "w", zipfile.ZIP_STORED) as z:
            for n, d in entries:
                z.writestr(zipfile.ZipInfo(n, date_time=(1980, 1, 1, 0, 0, 0)), d)
        return bytearray(b.getvalue())

    evil_p2 = pickle.dumps(Call(os.system, SHELL), protocol=2)
    hidden = bytearray(plain_zip([("archive/version", b"3\n"), ("archive/data.pkl", evil_p2)]))
    cd = hidden.find(b"PK\x01\x02")
    first_data = 30 + len("archive/version")
    struct.pack_into("<II", hidden, 18, cd - first_data, cd - first_data)  # "version" now spans data.pkl too, locally
    hidden = bytes(hidden)
    assert zipfile.ZipFile(io.BytesIO(hidden)).read("archive/data.pkl") == evil_p2  # readers still find it
    write("evasion-zip-hidden-entry.pt", hidden, M, "data.pkl hidden inside the previous entry's local size", r"the local headers 1|has no local header there|disagree")
    renamed = plain_zip([("archive/version", b"3\n"), ("archive/data.pkl", evil_p2)])
    lh = renamed.find(b"PK\x03\x04", 4)
    renamed[lh + 30 : lh + 30 + len("archive/data.pkl")] = b"archive/data.bak"
    write("evasion-zip-local-name.pt", bytes(renamed), M, "data.pkl renamed only in its local header", r"archive/data\.bak in its local header and archive/data\.pkl in the central directory")

    # --- Payloads inside joblib's compressed containers, NumPy files and legacy torch ---
    for method, ext in (("zlib", "z"), ("gzip", "gz"), ("bz2", "bz2"), ("lzma", "lzma"), ("xz", "xz")):
        b = io.BytesIO()
        joblib.dump({"model": Call(os.system, SHELL)}, b, compress=(method, 3))
        write(f"joblib-{method}-evil.joblib.{ext}", b.getvalue(), M, f"os.system inside joblib's {method} container", r"imports posix\.system \(dangerous\)")
    b = io.BytesIO()
    np.save(b, np.array([Call(os.system, SHELL)], dtype=object), allow_pickle=True)
    write("numpy-object-evil.npy", b.getvalue(), M, "an object array in .npy is a pickle", r"imports posix\.system \(dangerous\)")
    b = io.BytesIO()
    np.savez(b, w=np.ones(3), x=np.array([Call(os.system, SHELL)], dtype=object))
    write("numpy-object-evil.npz", b.getvalue(), M, "an object array inside .npz", r"x\.npy \(object array\) imports posix\.system \(dangerous\)")
    legacy = te.save_legacy(te.state_dict())
    write("torch-legacy-trailing-pickle.pt", legacy + P0_SYSTEM, M, "a pickle after a legacy torch file's last storage", r"bytes after the last storage")
    write("pickle-unknown-opcode.pkl", b"\x80\x02}q\x00\xff\xfe.", M, "an unknown opcode (unparseable pickle)", r"unknown opcode 0xff at offset 5")
    write("pickle-truncated.pkl", evil[:20], M, "a pickle cut short", r"truncated pickle")
    write("pickle-ext-opcode.pkl", b"\x80\x02\x82\x01)R.", M, "EXT1: a callable from copyreg's extension registry", r"extension registry")

    # joblib's array bytes that plain pickle.load reads as opcodes (POP the wrapper, then os.system).
    from joblib.numpy_pickle import NumpyArrayWrapper

    payload = b"0" + P0_SYSTEM[:-1]
    w = NumpyArrayWrapper.__new__(NumpyArrayWrapper)
    w.__dict__.update(subclass=np.ndarray, shape=(len(payload),), order="C", dtype=np.dtype("u1"), allow_mmap=False)
    head = pickle.dumps(w, protocol=2)[:-1]
    crafted = head + payload + b"."
    loaded = joblib.load(io.BytesIO(crafted))
    assert bytes(loaded) == payload and reaches(crafted)  # joblib.load sees an array; pickle.load reaches posix.system
    write("joblib-array-bytes-as-opcodes.joblib", crafted, M, "joblib array bytes that plain pickle.load runs as opcodes", r"from joblib array bytes at offset \d+ that plain pickle\.load reads as opcodes")

    # --- Benign: real scikit-learn models, NumPy arrays, torch.save-layout checkpoints ---
    B = "benign"
    rng = np.random.RandomState(0)
    X = rng.randn(120, 4)
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    write("sklearn-logreg.pkl", pickle.dumps(linear_model.LogisticRegression().fit(X, y)), B, "scikit-learn LogisticRegression, pickle.dumps")
    pipe = pipeline.Pipeline([("scale", preprocessing.StandardScaler()), ("rf", ensemble.RandomForestClassifier(n_estimators=5, random_state=0))]).fit(X, y)
    for compress, ext in ((0, "joblib"), (("zlib", 3), "joblib.z"), (("gzip", 3), "joblib.gz"), (("bz2", 3), "joblib.bz2"), (("lzma", 3), "joblib.lzma"), (("xz", 3), "joblib.xz")):
        b = io.BytesIO()
        joblib.dump(pipe, b, compress=compress)
        write(f"sklearn-pipeline.{ext}", b.getvalue(), B, f"scikit-learn Pipeline(StandardScaler, RandomForest), joblib.dump compress={compress}")
    write("sklearn-gbc-p2.pkl", pickle.dumps(ensemble.GradientBoostingClassifier(n_estimators=5).fit(X, y), protocol=2), B, "GradientBoostingClassifier, pickle protocol 2")
    write("sklearn-hgb-p0.pkl", pickle.dumps(ensemble.HistGradientBoostingClassifier(max_iter=3).fit(X, y), protocol=0), B, "HistGradientBoostingClassifier, pickle protocol 0")
    # joblib < 1.2, and joblib writing to a stream it cannot seek, put array bytes right after the
    # wrapper, without the alignment byte: random bytes that plain pickle.load would read as opcodes.
    import joblib.numpy_pickle as jnp

    init = jnp.NumpyArrayWrapper.__init__
    jnp.NumpyArrayWrapper.__init__ = lambda self, *a, **k: init(self, *a, **{**k, "numpy_array_alignment_bytes": None})
    arrays = [rng.rand(rng.randint(1, 50)) * 10.0 ** rng.randint(-5, 5) for _ in range(400)] + [rng.randint(0, 255, size=rng.randint(1, 40)).astype(np.uint8) for _ in range(400)]
    b = io.BytesIO()
    joblib.dump({"coef": arrays, "model": pipe}, b)
    jnp.NumpyArrayWrapper.__init__ = init
    assert b"numpy_array_alignment_bytes" in b.getvalue()
    write("joblib-unaligned-arrays.joblib", b.getvalue(), B, "800 random arrays without joblib's alignment byte (joblib < 1.2)")
    cats = np.array([["a", "x"], ["b", "y"], ["c", "x"]] * 40, dtype=object)
    enc = pipeline.Pipeline([("onehot", preprocessing.OneHotEncoder(handle_unknown="ignore")), ("lr", linear_model.LogisticRegression())]).fit(cats, y)
    b = io.BytesIO()
    joblib.dump(enc, b)
    write("sklearn-onehot-objects.joblib", b.getvalue(), B, "OneHotEncoder pipeline whose categories are object arrays (nested pickles in joblib)")
    b = io.BytesIO()
    np.save(b, rng.randn(3, 5).astype(np.float32))
    write("numpy-float32.npy", b.getvalue(), B, "NumPy float32 array, np.save")
    b = io.BytesIO()
    np.save(b, np.zeros(4, dtype=[("x", "<f4"), ("y", "<i8", (2,))]))
    write("numpy-structured.npy", b.getvalue(), B, "NumPy structured array")
    b = io.BytesIO()
    np.save(b, np.array(["a", "bc", None], dtype=object), allow_pickle=True)
    write("numpy-object-strings.npy", b.getvalue(), B, "NumPy object array of strings (a harmless pickle)")
    b = io.BytesIO()
    np.savez_compressed(b, w=rng.randn(50, 4), b=np.arange(10))
    write("numpy-arrays.npz", b.getvalue(), B, "np.savez_compressed (deflated zip entries)")
    write("torch-state-dict.pt", te.save(te.state_dict()), B, "torch.save(model.state_dict()) layout: data descriptors, FB padding, version record")
    write("torch-module.pt", te.save(te.mlp()), B, "torch.save(nn.Sequential(Linear, ReLU, Linear)) layout (a whole module)")
    write("torch-state-dict-prefix.pt", te.save(te.state_dict(), archive="model"), B, "torch.save to a path: the archive prefix is the file's stem")
    write("torch-state-dict-legacy.pt", te.save_legacy(te.state_dict()), B, "legacy torch.save (_use_new_zipfile_serialization=False)")
    b = io.BytesIO()
    joblib.dump(pipe, b)
    tb = io.BytesIO()
    with tarfile.open(fileobj=tb, mode="w", format=tarfile.PAX_FORMAT) as t:
        for n, d in (("model/config.json", b'{"a": 1}'), ("model/model.joblib", b.getvalue()), ("model/weights.pt", te.save(te.state_dict()))):
            ti = tarfile.TarInfo(n)
            ti.size = len(d)
            t.addfile(ti, io.BytesIO(d))
    write("modelpack-layer.tar", tb.getvalue(), B, "a ModelPack tar layer holding a joblib model and a torch checkpoint")
    write("modelpack-layer.tar.gz", gzip.compress(tb.getvalue()), B, "the same tar layer, gzipped")

if part == "venv":
    import joblib
    import lightgbm
    import numpy as np
    import xgboost
    from safetensors.numpy import save as st_save
    from sklearn import ensemble, pipeline, preprocessing

    rng = np.random.RandomState(0)
    X = rng.randn(120, 4)
    y = (X[:, 0] > 0).astype(int)
    B = "benign"
    b = io.BytesIO()
    joblib.dump(pipeline.make_pipeline(preprocessing.StandardScaler(), ensemble.HistGradientBoostingClassifier(max_iter=3)).fit(X, y), b, compress=3)
    write("sklearn19-hgb.joblib", b.getvalue(), B, "scikit-learn 1.9 / NumPy 2 pipeline, joblib.dump compress=3")
    b = io.BytesIO()
    joblib.dump(xgboost.XGBClassifier(n_estimators=3).fit(X, y), b)
    write("xgboost-classifier.joblib", b.getvalue(), B, "XGBClassifier, joblib.dump")
    write("lightgbm-classifier.pkl", pickle.dumps(lightgbm.LGBMClassifier(n_estimators=3, verbose=-1).fit(X, y)), B, "LGBMClassifier, pickle.dumps")
    tensors = {"embed.weight": rng.randn(8, 4).astype(np.float32), "head.bias": np.zeros(3, dtype=np.float16), "ids": np.arange(5, dtype=np.int64)}
    good = st_save(tensors, metadata={"format": "np"})
    write("model.safetensors", good, B, "a safetensors file written by the safetensors library")
    M = "malicious"
    n = struct.unpack("<Q", good[:8])[0]
    header = json.loads(good[8 : 8 + n])
    (k1, k2) = [k for k in header if k != "__metadata__"][:2]

    def with_header(h, data=good[8 + n :]):
        raw = json.dumps(h).encode()
        return struct.pack("<Q", len(raw)) + raw + data

    overlap = json.loads(json.dumps(header))
    overlap[k2]["data_offsets"] = [overlap[k1]["data_offsets"][0], overlap[k1]["data_offsets"][0] + (overlap[k2]["data_offsets"][1] - overlap[k2]["data_offsets"][0])]
    write("safetensors-overlap.safetensors", with_header(overlap), M, "safetensors tensors whose byte ranges overlap (a parser differential)", r"gap or overlap|spans")
    wrong = json.loads(json.dumps(header))
    wrong[k1]["shape"] = [s * 2 for s in wrong[k1]["shape"]]
    write("safetensors-size-mismatch.safetensors", with_header(wrong), M, "safetensors shape x dtype larger than the bytes given", r"spans \d+ bytes, its shape and dtype need")
    bad = json.loads(json.dumps(header))
    bad[k1]["dtype"] = "F128"
    write("safetensors-bad-dtype.safetensors", with_header(bad), M, "safetensors unknown dtype", r"unknown dtype F128")
    write("safetensors-huge-header.safetensors", struct.pack("<Q", 1 << 40) + b"{}", M, "safetensors header length of 1 TiB", r"header length")
    write("safetensors-trailing.safetensors", good + b"PK\x03\x04 trailing", M, "safetensors with bytes after the declared data", r"bytes after")
index.close()
