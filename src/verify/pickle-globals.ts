/**
 * Which globals a pickle may import. `*` in these globs matches across dots.
 * The allowlist decides; DANGEROUS only words the finding.
 */
/** Reconstruction helpers of sklearn, numpy, joblib and torch state dicts; harmless builtins. */
export const DEFAULT_PICKLE_ALLOW: readonly string[] = [
  'collections.OrderedDict',
  'collections.defaultdict',
  ...['set', 'frozenset', 'dict', 'list', 'tuple', 'int', 'float', 'complex', 'bool', 'str', 'bytes', 'bytearray', 'slice', 'range', 'object'].flatMap((n) => [`builtins.${n}`, `__builtin__.${n}`]),
  'copyreg._reconstructor',
  'copy_reg._reconstructor',
  '_codecs.encode',
  'numpy.ndarray',
  'numpy.dtype',
  'numpy.core.multiarray._reconstruct',
  'numpy.core.multiarray.scalar',
  'numpy.core.numeric._frombuffer',
  'numpy._core.multiarray._reconstruct',
  'numpy._core.multiarray.scalar',
  'numpy._core.numeric._frombuffer',
  'numpy.random._pickle.*',
  'numpy.random.mtrand.RandomState',
  'numpy.random.bit_generator.*',
  'numpy.random._mt19937.MT19937',
  'joblib.numpy_pickle.NumpyArrayWrapper',
  'joblib.numpy_pickle.NDArrayWrapper',
  'sklearn.*',
  'scipy.sparse.*',
  'torch._utils._rebuild_*',
  'torch._tensor._rebuild_from_type_v2',
  'torch.*Storage',
  'torch.storage.UntypedStorage',
  'torch.storage.TypedStorage',
  'torch.Size',
  'torch.device',
  'torch.dtype',
  ...['float16', 'float32', 'float64', 'bfloat16', 'int8', 'int16', 'int32', 'int64', 'uint8', 'bool', 'complex64', 'complex128', 'float8_e4m3fn', 'float8_e5m2'].map((t) => `torch.${t}`),
  'torch.nn.parameter.Parameter',
  'torch.nn.modules.*',
];

/** Named in findings as dangerous (everything outside the allowlist is denied anyway). */
export const DANGEROUS = /^(os|posix|nt|subprocess|socket|sys|shutil|runpy|pty|commands|webbrowser|importlib|ctypes|marshal|pickle|_pickle|code|pdb|timeit|platform|multiprocessing|asyncio|requests|urllib|http|ftplib|telnetlib|smtplib)(\.|$)|^(builtins|__builtin__)\.(eval|exec|compile|open|__import__|getattr|setattr|delattr|globals|locals|vars|input|breakpoint|apply|execfile|file|reload)$|^torch\.storage\._load_from_bytes$/;

