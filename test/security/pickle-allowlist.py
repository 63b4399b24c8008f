"""
Which (module, name) pairs real model files import when they are unpickled.

Builds real models with the libraries installed in the interpreter that runs this script
(scikit-learn: every estimator it lists, fitted on small data, plus loss/solver/kernel variants;
NumPy arrays, scalars and random states; SciPy sparse matrices; XGBoost and LightGBM when present),
serialises each with pickle protocols 0, 2, 4 and 5 and with joblib.dump, then loads every file
back with an unpickler whose find_class records each pair exactly as the file names it (before
Python's own py2 name mapping). Prints JSON: {"env": {...}, "pairs": {"<group>": [[module, name], ...]}}.

Run by test/security/pickle-allowlist.test.ts with Debian's python3 and with the pinned venv's
python; the union is src/verify/pickle-allow.json.
"""
import io
import json
import pickle
import sys
import warnings

warnings.filterwarnings("ignore")

seen = set()


class Recorder(pickle._Unpickler):
    def find_class(self, module, name):
        seen.add((module, name))
        return super().find_class(module, name)


def record_bytes(data):
    Recorder(io.BytesIO(data)).load()


def record(obj):
    for proto in (0, 2, 4, 5):
        if proto > pickle.HIGHEST_PROTOCOL:
            continue
        try:
            data = pickle.dumps(obj, protocol=proto)
        except Exception:
            continue
        record_bytes(data)
    try:
        import joblib
        import joblib.numpy_pickle as jnp

        orig = jnp.NumpyUnpickler.find_class

        def find_class(self, module, name):
            seen.add((module, name))
            return orig(self, module, name)

        jnp.NumpyUnpickler.find_class = find_class
        try:
            buf = io.BytesIO()
            joblib.dump(obj, buf)
            buf.seek(0)
            joblib.load(buf)
        finally:
            jnp.NumpyUnpickler.find_class = orig
    except Exception:
        pass


env = {"python": sys.version.split()[0]}

# NumPy: arrays of every common dtype, scalars, masked arrays, random states.
import numpy as np

env["numpy"] = np.__version__
arrays = [
    np.zeros((2, 3), dtype=t)
    for t in ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float16", "float32", "float64", "complex64", "complex128")
]
arrays += [
    np.array(["a", "bc"]),
    np.array([b"a", b"bc"]),
    np.array(["2020-01-01"], dtype="datetime64[D]"),
    np.array([1], dtype="timedelta64[s]"),
    np.zeros(2, dtype=[("x", "<f4"), ("y", "<i8")]),
    np.array([1, "a", None], dtype=object),
    np.asfortranarray(np.ones((2, 2))),
    np.ones((2, 2), dtype=">f8"),
]
for a in arrays:
    record(a)
    record(a.dtype)
for s in (np.float64(1.5), np.float32(1.5), np.int64(3), np.int32(3), np.bool_(True), np.complex128(1j), np.str_("x"), np.datetime64("2020-01-01")):
    record(s)
record(np.ma.masked_array([1, 2], mask=[0, 1]))
record(np.matrix([[1, 2]]))
record(np.random.RandomState(0))
for bg in ("MT19937", "PCG64", "PCG64DXSM", "Philox", "SFC64"):
    if hasattr(np.random, bg):
        b = getattr(np.random, bg)(0)
        record(b)
        record(np.random.Generator(b))
record(np.random.default_rng(0))

# SciPy sparse matrices (fitted vectorizers and some estimators hold them).
try:
    import scipy
    import scipy.sparse as sp

    env["scipy"] = scipy.__version__
    m = sp.random(4, 4, density=0.5, random_state=0)
    for fmt in ("csr", "csc", "coo", "bsr", "lil", "dok", "dia"):
        record(m.asformat(fmt))
    for cls in ("csr_array", "csc_array", "coo_array"):
        if hasattr(sp, cls):
            record(getattr(sp, cls)(m))
except ImportError:
    pass

# scikit-learn: every estimator, fitted where small data allows, unfitted otherwise.
import sklearn
from sklearn.utils import all_estimators

env["sklearn"] = sklearn.__version__
rng = np.random.RandomState(0)
X = np.abs(rng.randn(40, 4)) + 0.1
y_bin = np.array([0, 1] * 20)
y_multi = np.arange(40) % 3
y_reg = rng.rand(40) + 0.5
Y2 = np.c_[y_reg, y_reg * 2]
docs = ["the cat sat", "a dog ran", "the dog sat down", "cats and dogs"] * 10
dicts = [{"a": 1, "b": 2}, {"a": 3, "c": 1}] * 20


def instances(Est):
    out = []
    try:
        from sklearn.utils._test_common.instance_generator import _construct_instances

        for inst in _construct_instances(Est):
            out.append(inst)
    except Exception:
        pass
    if not out:
        try:
            from sklearn.utils.estimator_checks import _construct_instance

            out.append(_construct_instance(Est))
        except Exception:
            pass
    if not out:
        try:
            out.append(Est())
        except Exception:
            pass
    return out


def fits(est):
    attempts = [
        lambda: est.fit(X, y_multi),
        lambda: est.fit(X, y_bin),
        lambda: est.fit(X, y_reg),
        lambda: est.fit(X),
        lambda: est.fit(X, Y2),
        lambda: est.fit(docs),
        lambda: est.fit(dicts),
        lambda: est.fit(y_multi),
        lambda: est.fit(X[:, 0], y_reg),
        lambda: est.fit([["a", "b"], ["c"]] * 20),
        lambda: est.fit(X[:, :2].astype(int)),
    ]
    for a in attempts:
        try:
            a()
            return True
        except Exception:
            continue
    return False


import copy

for _, Est in all_estimators():
    for inst in instances(Est):
        # Estimators left at random_state=None draw from NumPy's global generator (OutputCodeClassifier's
        # code book, for one): reseed so a run records the same classes every time.
        np.random.seed(0)
        try:
            record(inst)
        except Exception:
            pass
        try:
            fitted = copy.deepcopy(inst)
            if fits(fitted):
                record(fitted)
        except Exception:
            pass

# Variants whose fitted state holds other classes (losses, solvers, trees, kernels, neighbor trees).
from sklearn import ensemble, linear_model, neighbors, neural_network, gaussian_process, pipeline, preprocessing, compose, impute

variants = []
for loss in ("squared_error", "absolute_error", "huber", "quantile"):
    variants.append((ensemble.GradientBoostingRegressor(loss=loss, n_estimators=2), y_reg))
for yv in (y_bin, y_multi):
    variants.append((ensemble.GradientBoostingClassifier(n_estimators=2), yv))
    variants.append((ensemble.HistGradientBoostingClassifier(max_iter=2), yv))
    variants.append((ensemble.GradientBoostingClassifier(n_estimators=2, loss="exponential"), y_bin))
for loss in ("squared_error", "absolute_error", "poisson", "gamma", "quantile"):
    try:
        variants.append((ensemble.HistGradientBoostingRegressor(loss=loss, max_iter=2, **({"quantile": 0.5} if loss == "quantile" else {})), y_reg))
    except TypeError:
        pass
for loss in ("hinge", "log_loss", "log", "modified_huber", "squared_hinge", "perceptron"):
    variants.append((linear_model.SGDClassifier(loss=loss, max_iter=5), y_multi))
for loss in ("squared_error", "huber", "epsilon_insensitive", "squared_epsilon_insensitive"):
    variants.append((linear_model.SGDRegressor(loss=loss, max_iter=5), y_reg))
for solver in ("adam", "sgd", "lbfgs"):
    variants.append((neural_network.MLPClassifier(solver=solver, max_iter=5, hidden_layer_sizes=(3,)), y_multi))
    variants.append((neural_network.MLPRegressor(solver=solver, max_iter=5, hidden_layer_sizes=(3,)), y_reg))
for algo in ("kd_tree", "ball_tree", "brute"):
    variants.append((neighbors.KNeighborsClassifier(algorithm=algo, n_neighbors=3), y_multi))
    variants.append((neighbors.NearestNeighbors(algorithm=algo), None))
    variants.append((neighbors.KernelDensity(algorithm=algo), None))
from sklearn.gaussian_process import kernels as K

for kern in (K.RBF(), K.Matern(), K.RationalQuadratic(), K.ExpSineSquared(), K.DotProduct(), K.ConstantKernel() * K.RBF() + K.WhiteKernel(), K.RBF() ** 2, K.PairwiseKernel()):
    variants.append((gaussian_process.GaussianProcessRegressor(kernel=kern), y_reg))
variants.append((gaussian_process.GaussianProcessClassifier(kernel=K.RBF()), y_multi))
ct = compose.ColumnTransformer([("num", preprocessing.StandardScaler(), [0, 1]), ("sel", "passthrough", compose.make_column_selector(dtype_include=np.number))], remainder="drop")
variants.append((pipeline.Pipeline([("impute", impute.SimpleImputer()), ("ct", ct), ("clf", ensemble.RandomForestClassifier(n_estimators=3))]), y_multi))
variants.append((pipeline.make_pipeline(preprocessing.FunctionTransformer(np.log1p), linear_model.LogisticRegression()), y_bin))
variants.append((pipeline.make_union(preprocessing.StandardScaler(), preprocessing.MinMaxScaler()), None))
# One-vs-rest over a label no sample has: scikit-learn stores a _ConstantPredictor for it.
from sklearn import multiclass

variants.append((multiclass.OneVsRestClassifier(linear_model.LogisticRegression()), np.c_[y_bin, 1 - y_bin, np.zeros(40, dtype=int)]))
for est, yv in variants:
    np.random.seed(0)
    try:
        est.fit(X) if yv is None else est.fit(X, yv)
        record(est)
    except Exception:
        pass

# XGBoost and LightGBM (the pinned venv has them; Debian's python does not).
try:
    import xgboost as xgb

    env["xgboost"] = xgb.__version__
    for est, yv in ((xgb.XGBClassifier(n_estimators=2), y_bin), (xgb.XGBClassifier(n_estimators=2), y_multi), (xgb.XGBRegressor(n_estimators=2), y_reg), (xgb.XGBRFClassifier(n_estimators=2), y_bin), (xgb.XGBRFRegressor(n_estimators=2), y_reg)):
        est.fit(X, yv)
        record(est)
        record(est.get_booster())
    rk = xgb.XGBRanker(n_estimators=2)
    rk.fit(X, y_multi, qid=np.repeat(np.arange(4), 10))
    record(rk)
    record(xgb.train({}, xgb.DMatrix(X, label=y_reg), num_boost_round=2))
except ImportError:
    pass
try:
    import lightgbm as lgb

    env["lightgbm"] = lgb.__version__
    for est, yv in ((lgb.LGBMClassifier(n_estimators=2, verbose=-1), y_bin), (lgb.LGBMClassifier(n_estimators=2, verbose=-1), y_multi), (lgb.LGBMRegressor(n_estimators=2, verbose=-1), y_reg)):
        est.fit(X, yv)
        record(est)
        record(est.booster_)
    rk = lgb.LGBMRanker(n_estimators=2, verbose=-1, min_child_samples=1)
    rk.fit(X, y_multi, group=[10, 10, 10, 10])
    record(rk)
    record(lgb.train({"verbose": -1}, lgb.Dataset(X, label=y_reg), num_boost_round=2))
except ImportError:
    pass

# PyTorch: real torch when the interpreter has it; else torch.save's layout emulated from torch's
# sources (torch_emulation.py), whose TORCH_GLOBALS are the rebuild functions, storage, dtype and
# layout names and torch.nn.modules classes torch's own pickles name.
class TorchRecorder(Recorder):
    def persistent_load(self, pid):
        return None


try:
    import torch  # noqa: F401

    env["torch"] = torch.__version__
    for obj in (torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU()),):
        for o in (obj, obj.state_dict()):
            buf = io.BytesIO()
            torch.save(o, buf)
            buf.seek(0)
            torch.load(buf, weights_only=False)
except ImportError:
    import os

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import torch_emulation as te

    env["torch"] = "emulated (test/security/torch_emulation.py)"
    for obj in (te.mlp(), te.state_dict()):
        for legacy in (False, True):
            TorchRecorder(io.BytesIO(te._pickle(obj, legacy)[0])).load()
    seen.update(te.TORCH_GLOBALS)

# Plain containers a checkpoint holds around the model.
import collections

record({"model": [1.0, 2.0], "opt": (1, 2), "s": {1, 2}, "f": frozenset([1]), "b": b"x", "ba": bytearray(b"x"), "c": 1j, "sl": slice(1, 2), "r": range(3)})
record(collections.OrderedDict(a=1))
record(collections.defaultdict(list, a=[1]))
record(collections.Counter("ab"))

groups = {}
for module, name in sorted(seen):
    top = module.split(".")[0]
    group = {"__builtin__": "builtins", "copy_reg": "builtins", "copyreg": "builtins", "_codecs": "builtins", "collections": "builtins", "__main__": None}.get(top, top)
    if group is None:
        continue
    groups.setdefault(group, []).append([module, name])
json.dump({"env": env, "pairs": groups}, sys.stdout, indent=None)
