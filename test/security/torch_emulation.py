"""
torch.save's file layouts, written without torch (a CPU build of torch does not install here in
reasonable time). Everything a reader sees is reproduced from PyTorch's sources:

- the pickle: torch/serialization.py `_save` (persistent ids ('storage', <torch.XStorage>, key,
  location, numel)), torch/_tensor.py `_reduce_ex_internal` (torch._utils._rebuild_tensor_v2 with an
  empty OrderedDict of backward hooks), torch/nn/parameter.py (torch._utils._rebuild_parameter),
  torch/nn/modules/module.py (a Module's __dict__), pickle protocol 2 (torch's DEFAULT_PROTOCOL);
- the zip (caffe2/serialize/inline_container.cc, PyTorchStreamWriter on miniz): records
  `<archive>/data.pkl`, `.format_version`, `.storage_alignment`, `byteorder`, `data/<key>`, then
  `version` and `.data/serialization_id` at the end; every record stored, its local header followed
  by an `FB` extra field of 'Z' padding that puts the data on a 64-byte boundary (the central
  directory has no extra field), sizes and CRC in a data descriptor after the data (bit 3);
- the legacy format (`_use_new_zipfile_serialization=False`): pickles of the magic number, the
  protocol version and sys_info, the object, the sorted storage keys, then each storage as an
  int64 element count and its raw bytes.

The fake modules are registered under torch's own module names, so the pickles name exactly the
globals torch's do. TORCH_GLOBALS lists every torch global these files may reference.
"""
import collections
import io
import pickle
import struct
import sys
import types
import zipfile

# torch.nn.modules classes by file, as in torch 2.x.
NN_MODULES = {
    "module": ["Module"],
    "linear": ["Identity", "Linear", "Bilinear", "NonDynamicallyQuantizableLinear"],
    "conv": ["Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d"],
    "activation": ["Threshold", "ReLU", "RReLU", "Hardtanh", "ReLU6", "Sigmoid", "Hardsigmoid", "Tanh", "SiLU", "Mish", "Hardswish", "ELU", "CELU", "SELU", "GLU", "GELU", "Hardshrink", "LeakyReLU", "LogSigmoid", "Softplus", "Softshrink", "MultiheadAttention", "PReLU", "Softsign", "Tanhshrink", "Softmin", "Softmax", "Softmax2d", "LogSoftmax"],
    "container": ["Container", "Sequential", "ModuleList", "ModuleDict", "ParameterList", "ParameterDict"],
    "batchnorm": ["BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "SyncBatchNorm"],
    "instancenorm": ["InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d"],
    "normalization": ["LocalResponseNorm", "CrossMapLRN2d", "LayerNorm", "GroupNorm", "RMSNorm"],
    "dropout": ["Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "FeatureAlphaDropout"],
    "sparse": ["Embedding", "EmbeddingBag"],
    "rnn": ["RNNBase", "RNN", "LSTM", "GRU", "RNNCellBase", "RNNCell", "LSTMCell", "GRUCell"],
    "pooling": ["MaxPool1d", "MaxPool2d", "MaxPool3d", "MaxUnpool1d", "MaxUnpool2d", "MaxUnpool3d", "AvgPool1d", "AvgPool2d", "AvgPool3d", "FractionalMaxPool2d", "FractionalMaxPool3d", "LPPool1d", "LPPool2d", "LPPool3d", "AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "AdaptiveMaxPool3d", "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d"],
    "padding": ["ZeroPad1d", "ZeroPad2d", "ZeroPad3d", "ConstantPad1d", "ConstantPad2d", "ConstantPad3d", "ReflectionPad1d", "ReflectionPad2d", "ReflectionPad3d", "ReplicationPad1d", "ReplicationPad2d", "ReplicationPad3d", "CircularPad1d", "CircularPad2d", "CircularPad3d"],
    "flatten": ["Flatten", "Unflatten"],
    "pixelshuffle": ["PixelShuffle", "PixelUnshuffle"],
    "upsampling": ["Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d"],
    "distance": ["PairwiseDistance", "CosineSimilarity"],
    "transformer": ["Transformer", "TransformerEncoder", "TransformerDecoder", "TransformerEncoderLayer", "TransformerDecoderLayer"],
    "channelshuffle": ["ChannelShuffle"],
    "fold": ["Fold", "Unfold"],
    "loss": ["L1Loss", "NLLLoss", "NLLLoss2d", "PoissonNLLLoss", "GaussianNLLLoss", "KLDivLoss", "MSELoss", "BCELoss", "BCEWithLogitsLoss", "HingeEmbeddingLoss", "MultiLabelMarginLoss", "SmoothL1Loss", "HuberLoss", "SoftMarginLoss", "CrossEntropyLoss", "MultiLabelSoftMarginLoss", "CosineEmbeddingLoss", "MarginRankingLoss", "MultiMarginLoss", "TripletMarginLoss", "TripletMarginWithDistanceLoss", "CTCLoss"],
}
# (storage class, element size, dtype name) as torch/storage.py's _dtype_to_storage_type_map.
STORAGES = [
    ("FloatStorage", 4, "float32"), ("DoubleStorage", 8, "float64"), ("HalfStorage", 2, "float16"), ("BFloat16Storage", 2, "bfloat16"),
    ("LongStorage", 8, "int64"), ("IntStorage", 4, "int32"), ("ShortStorage", 2, "int16"), ("CharStorage", 1, "int8"),
    ("ByteStorage", 1, "uint8"), ("BoolStorage", 1, "bool"), ("ComplexFloatStorage", 8, "complex64"), ("ComplexDoubleStorage", 16, "complex128"),
    ("QInt8Storage", 1, "qint8"), ("QUInt8Storage", 1, "quint8"), ("QInt32Storage", 4, "qint32"), ("QUInt4x2Storage", 1, "quint4x2"), ("QUInt2x4Storage", 1, "quint2x4"),
]
DTYPES = [d for _, _, d in STORAGES] + ["float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz", "uint16", "uint32", "uint64", "complex32"]
REBUILDS = ["_rebuild_tensor", "_rebuild_tensor_v2", "_rebuild_tensor_v3", "_rebuild_parameter", "_rebuild_parameter_with_state", "_rebuild_qtensor", "_rebuild_sparse_tensor", "_rebuild_nested_tensor", "_rebuild_device_tensor_from_numpy", "_rebuild_device_tensor_from_cpu_tensor", "_rebuild_meta_tensor_no_storage", "_rebuild_wrapper_subclass"]
LAYOUTS = ["strided", "sparse_coo", "sparse_csr", "sparse_csc", "sparse_bsr", "sparse_bsc"]
QSCHEMES = ["per_tensor_affine", "per_channel_affine", "per_tensor_symmetric", "per_channel_symmetric", "per_channel_affine_float_qparams"]
FUNCTIONAL = ["relu", "gelu"]  # TransformerEncoderLayer keeps its activation function


def _module(name):
    m = sys.modules.get(name)
    if m is None:
        m = types.ModuleType(name)
        sys.modules[name] = m
        parent, _, child = name.rpartition(".")
        if parent:
            setattr(_module(parent), child, m)
    return m


def _define(modname, name, obj):
    obj.__module__ = modname
    obj.__qualname__ = name
    obj.__name__ = name
    setattr(_module(modname), name, obj)
    return obj


if "torch" in sys.modules and hasattr(sys.modules["torch"], "save"):
    raise RuntimeError("real torch is loaded; this emulation would shadow it")

for fn in REBUILDS:
    _define("torch._utils", fn, types.FunctionType((lambda *a: a).__code__, {}, fn))
_define("torch._tensor", "_rebuild_from_type_v2", types.FunctionType((lambda *a: a).__code__, {}, "_rebuild_from_type_v2"))
for fn in FUNCTIONAL:
    _define("torch.nn.functional", fn, types.FunctionType((lambda *a: a).__code__, {}, fn))


class _Singleton:
    """torch.dtype / torch.layout / torch.qscheme: pickled by name as globals of `torch`."""

    def __init__(self, name):
        self.name = name

    def __reduce__(self):
        return self.name


for n in DTYPES + LAYOUTS + QSCHEMES:
    setattr(_module("torch"), n, _Singleton(n))
STORAGE_CLASS = {}
for cls_name, size, dtype in STORAGES + [("UntypedStorage", 1, "uint8")]:
    STORAGE_CLASS[dtype if cls_name != "UntypedStorage" else "untyped"] = _define("torch", cls_name, type(cls_name, (), {"element_size": size}))
_define("torch", "Size", type("Size", (tuple,), {}))
_define("torch", "device", type("device", (), {}))
_define("torch.nn.parameter", "Parameter", type("Parameter", (), {}))
NN = {}
for f, classes in NN_MODULES.items():
    for c in classes:
        NN[c] = _define(f"torch.nn.modules.{f}", c, type(c, (), {}))

TORCH_GLOBALS = sorted(
    [("torch._utils", f) for f in REBUILDS]
    + [("torch._tensor", "_rebuild_from_type_v2")]
    + [("torch", n) for n in DTYPES + LAYOUTS + QSCHEMES]
    + [("torch", c.__name__) for c in STORAGE_CLASS.values()]
    + [("torch", "Size"), ("torch", "device"), ("torch.nn.parameter", "Parameter")]
    + [(f"torch.nn.modules.{f}", c) for f, cs in NN_MODULES.items() for c in cs]
    + [("torch.nn.functional", f) for f in FUNCTIONAL]
)


class Storage:
    def __init__(self, dtype, data):
        self.dtype, self.data = dtype, data
        self.cls = STORAGE_CLASS[dtype]

    @property
    def numel(self):
        return len(self.data) // self.cls.element_size


class Tensor:
    def __init__(self, dtype, shape, data, requires_grad=False):
        self.storage, self.shape, self.requires_grad = Storage(dtype, data), tuple(shape), requires_grad

    def stride(self):
        out, acc = [], 1
        for d in reversed(self.shape):
            out.append(acc)
            acc *= d
        return tuple(reversed(out))

    def __reduce_ex__(self, proto):
        args = (self.storage, 0, self.shape, self.stride(), self.requires_grad, collections.OrderedDict())
        return (sys.modules["torch._utils"]._rebuild_tensor_v2, args)


class Parameter:
    def __init__(self, tensor):
        self.tensor = tensor

    def __reduce_ex__(self, proto):
        return (sys.modules["torch._utils"]._rebuild_parameter, (self.tensor, True, collections.OrderedDict()))


def floats(*shape, seed=1.0):
    n = 1
    for d in shape:
        n *= d
    return Tensor("float32", shape, struct.pack(f"<{n}f", *[seed * (i + 1) / n for i in range(n)]))


def module(cls_name, params=None, children=None, **attrs):
    """A torch.nn.Module instance with the __dict__ Module.__init__ gives it in torch 2.x."""
    m = NN[cls_name].__new__(NN[cls_name])
    od = collections.OrderedDict
    m.__dict__.update(
        {
            "training": True,
            "_parameters": {k: Parameter(v) for k, v in (params or {}).items()},
            "_buffers": {},
            "_non_persistent_buffers_set": set(),
            "_backward_pre_hooks": od(),
            "_backward_hooks": od(),
            "_is_full_backward_hook": None,
            "_forward_hooks": od(),
            "_forward_hooks_with_kwargs": od(),
            "_forward_hooks_always_called": od(),
            "_forward_pre_hooks": od(),
            "_forward_pre_hooks_with_kwargs": od(),
            "_state_dict_hooks": od(),
            "_state_dict_pre_hooks": od(),
            "_load_state_dict_pre_hooks": od(),
            "_load_state_dict_post_hooks": od(),
            "_modules": dict(children or {}),
        }
    )
    m.__dict__.update(attrs)
    return m


def mlp():
    """nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))."""
    return module(
        "Sequential",
        children={
            "0": module("Linear", {"weight": floats(8, 4), "bias": floats(8)}, in_features=4, out_features=8),
            "1": module("ReLU", inplace=False),
            "2": module("Linear", {"weight": floats(2, 8, seed=2.0), "bias": floats(2)}, in_features=8, out_features=2),
        },
    )


def state_dict():
    sd = collections.OrderedDict([("0.weight", floats(8, 4)), ("0.bias", floats(8)), ("2.weight", floats(2, 8, seed=2.0)), ("2.bias", floats(2))])
    sd._metadata = collections.OrderedDict([("", {"version": 1}), ("0", {"version": 1}), ("1", {"version": 1}), ("2", {"version": 1})])
    return sd


def _pickle(obj, legacy):
    storages = collections.OrderedDict()
    ids = {}

    class P(pickle.Pickler):
        def persistent_id(self, o):
            if isinstance(o, Storage):
                key = ids.setdefault(id(o), str(len(ids)) if not legacy else str(140000000000000 + 64 * len(ids)))
                storages[key] = o
                pid = ("storage", o.cls, key, "cpu", o.numel)
                return pid + (None,) if legacy else pid
            return None

    buf = io.BytesIO()
    P(buf, protocol=2).dump(obj)
    return buf.getvalue(), storages


class _Unseekable(io.RawIOBase):
    """zipfile writes data descriptors when it cannot seek back, as miniz does for torch."""

    def __init__(self):
        self.buf = io.BytesIO()

    def writable(self):
        return True

    def write(self, b):
        return self.buf.write(b)

    def tell(self):
        return self.buf.tell()

    def seekable(self):
        return False


def _fb_extra(offset, name):
    start = offset + 30 + len(name) + 4
    pad = (64 - start % 64) % 64
    return b"FB" + struct.pack("<H", pad) + b"Z" * pad


def zip_records(records):
    """A zip with PyTorchStreamWriter's record layout: [(full name, bytes)] in order."""
    out = _Unseekable()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
        for name, data in records:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_STORED
            info.extra = _fb_extra(out.tell(), name.encode())
            with z.open(info, "w") as f:
                f.write(data)
            info.extra = b""  # miniz writes the padding only in the local header
    return out.buf.getvalue()


def save(obj, archive="archive", pickled=None):
    """torch.save(obj, f) in the zip format (torch >= 1.6); `pickled` replaces data.pkl's bytes."""
    data, storages = _pickle(obj, legacy=False)
    records = [("data.pkl", pickled if pickled is not None else data), (".format_version", b"1"), (".storage_alignment", b"64"), ("byteorder", b"little")]
    records += [(f"data/{k}", s.data) for k, s in storages.items()]
    records += [("version", b"3\n"), (".data/serialization_id", b"1234567890123456789012345678901234567890")]
    return zip_records([(f"{archive}/{n}", d) for n, d in records])


def save_legacy(obj):
    """torch.save(obj, f, _use_new_zipfile_serialization=False)."""
    out = io.BytesIO()
    for header in (0x1950A86A20F9469CFC6C, 1001, {"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}}):
        pickle.dump(header, out, protocol=2)
    data, storages = _pickle(obj, legacy=True)
    out.write(data)
    keys = sorted(storages)
    pickle.dump(keys, out, protocol=2)
    for k in keys:
        s = storages[k]
        out.write(struct.pack("<q", s.numel) + s.data)
    return out.getvalue()
