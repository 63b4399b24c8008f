import type { ByteReader } from './byte-reader.js';
import { Memo, PickleError, PickleHalt, newFrame, type Frame } from './pickle-frame.js';
import type { PickleScanner } from './pickle.js';
import { OPAQUE, dtypeInfo, isGlobal, isObj, itemsOf, type Obj, type Val } from './pickle-values.js';

/**
 * joblib's arrays. joblib.dump writes a NumpyArrayWrapper and, right after its BUILD, the array's
 * raw bytes (joblib/numpy_pickle.py, NumpyArrayWrapper.write_array); joblib.load's NumpyUnpickler
 * reads them back when BUILD leaves a wrapper on the stack. The scanner follows joblib: it sizes
 * the bytes from the wrapper's state (dtype, shape, alignment padding) and, for object arrays,
 * scans the nested pickle joblib writes instead. Two readings of the same file must both be safe:
 * plain pickle.load does not read arrays, it reads those bytes as opcodes. So the array bytes are
 * also run through a shadow unpickler that starts from the same stack and memo and stops where
 * Python would raise; a disallowed import before that point, or opcodes that run to the end of the
 * array, is a finding.
 */
const WRAPPER = new Set(['joblib.numpy_pickle.NumpyArrayWrapper', 'joblib.numpy_pickle.NDArrayWrapper']);
/** Callables that return an instance of the class given as their first argument. */
const INSTANCE_OF_ARG0 = /^(copyreg|copy_reg)\._reconstructor$|\.newObj$|\.__pyx_unpickle_/;
/** Callables whose result may be any object given to them. */
const PASS_THROUGH = /^numpy\.(_core|core)\.multiarray\.scalar$|_rebuild_from_type_v2$/;

const qualified = (v: Val | undefined): string | undefined => (isGlobal(v) ? `${v.module}.${v.name}` : undefined);

/** Whether a BUILD's target may be a joblib array wrapper (joblib then reads array bytes). */
export function wrapperKind(obj: Val): 'wrapper' | 'other' | 'unknown' {
  if (obj === OPAQUE) return 'unknown';
  if (!isObj(obj)) return 'other';
  const cls = qualified(obj.cls);
  if (cls === undefined) return 'unknown';
  if (WRAPPER.has(cls)) return 'wrapper';
  if (INSTANCE_OF_ARG0.test(cls)) {
    const a0 = qualified(itemsOf(obj.args)?.[0]);
    return a0 === undefined ? 'unknown' : WRAPPER.has(a0) ? 'wrapper' : 'other';
  }
  if (PASS_THROUGH.test(cls)) {
    const dt = dtypeInfo(itemsOf(obj.args)?.[0]);
    return typeof dt !== 'string' && !dt.hasObject && cls.endsWith('scalar') ? 'other' : 'unknown';
  }
  return 'other';
}

export async function scanJoblibArray(s: PickleScanner, r: ByteReader, where: string, f: Frame, obj: Obj): Promise<void> {
  const cls = qualified(obj.cls);
  if (cls === 'joblib.numpy_pickle.NDArrayWrapper') throw new Error('joblib NDArrayWrapper (arrays in files beside the pickle) is not supported');
  if (obj.how === 'reduce' && cls !== undefined && WRAPPER.has(cls) && itemsOf(obj.args)?.length !== 0) throw new Error('joblib array wrapper made by calling its class with arguments');
  if (obj.attrsUnknown || !obj.attrs) throw new Error('joblib array wrapper whose state is not a plain dict');
  const dt = dtypeInfo(obj.attrs.get('dtype'));
  if (typeof dt === 'string') throw new Error(`joblib array: ${dt}`);
  const shape = itemsOf(obj.attrs.get('shape'));
  if (!shape) throw new Error('joblib array without a shape');
  let count = 1;
  for (const d of shape) {
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) throw new Error('joblib array shape is not a tuple of integers');
    count *= d;
  }
  const bytes = count * dt.itemsize;
  if (!Number.isSafeInteger(bytes)) throw new Error('joblib array too large');
  // What plain pickle.load sees right after this BUILD: the same stack (the wrapper on top) and memo.
  const shadow: Frame = { stack: [...f.stack], marks: [...f.marks], memo: new Memo(f.memo), joblib: false, wrapperImported: f.wrapperImported, shadow: where, shadowBase: r.pos, keep: f.keep };
  f.stack[f.stack.length - 1] = OPAQUE; // joblib replaces the wrapper by the array
  if (dt.hasObject) {
    // Object arrays: joblib calls pickle.load on the same file, a nested pickle with its own memo.
    await s.scanOne(r, where, newFrame(false));
    return;
  }
  const align = obj.attrs.get('numpy_array_alignment_bytes');
  const pad = align === undefined || align === null ? 0 : 1 + ((await r.peek(1))[0] ?? 0);
  const { reader, rest } = r.sub(pad + bytes);
  try {
    await s.scanOne(reader, where, shadow);
  } catch (e) {
    if (e instanceof PickleError && e.reason === 'truncated pickle')
      s.problem(`${where}: joblib array bytes at offset ${shadow.shadowBase} parse as pickle opcodes to their end (plain pickle.load would run them)`);
    else if (!(e instanceof PickleHalt || e instanceof PickleError)) throw e;
  }
  await rest();
}
