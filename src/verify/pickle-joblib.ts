import { ByteReader } from './byte-reader.js';
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
    // Plain pickle.load reads the same opcodes as part of the outer pickle, which is no more permissive.
    shadow.memo.detach();
    await s.scanOne(r, where, newFrame(false));
    return;
  }
  spawnShadow(s, r, where, shadow);
  const align = obj.attrs.get('numpy_array_alignment_bytes');
  const pad = align === undefined || align === null ? 0 : 1 + ((await r.peek(1))[0] ?? 0);
  await r.skip(pad + bytes);
}

/**
 * A shadow run: plain pickle.load's reading of the bytes from an array's start on, with the stack
 * and memo as they were there. It runs alongside the scan, fed the same chunks through a tap on the
 * reader (holding the scan back when it lags by more than SHADOW_LAG), and ends where Python would
 * raise or at the end of the stream. Random array bytes end it within a few bytes; bytes that read
 * as opcodes are followed for as long as Python would follow them, so a disallowed import anywhere
 * on that path is found and nothing else is.
 */
export interface Shadow {
  readonly reader: ByteReader;
  readonly done: Promise<void>;
  close(): void;
}

const MAX_SHADOWS = 1024;
const SHADOW_LAG = 16 << 20;

function spawnShadow(s: PickleScanner, r: ByteReader, where: string, frame: Frame): void {
  if (s.shadows.size >= MAX_SHADOWS) {
    frame.memo.detach();
    s.problem(`${where}: more than ${MAX_SHADOWS} joblib arrays whose bytes read as pickle opcodes at once`);
    return;
  }
  const queue: (Buffer | null)[] = [];
  let queued = 0;
  let closed = false;
  let wake: (() => void) | undefined;
  let drained: (() => void) | undefined;
  const push = (c: Buffer | null): void => {
    queue.push(c);
    if (c) queued += c.length;
    const w = wake;
    wake = undefined;
    w?.();
  };
  const close = (): void => {
    if (!closed) {
      closed = true;
      push(null);
    }
    const d = drained;
    drained = undefined;
    d?.();
  };
  const start = r.pos;
  const { data } = r.buffered();
  if (data.length > 0) push(data);
  const untap = r.tap(async (c, offset) => {
    if (closed) return;
    if (c === null) return close();
    const from = Math.max(0, start - offset);
    if (from < c.length) push(c.subarray(from));
    while (queued > SHADOW_LAG && !closed) await new Promise<void>((res) => (drained = res));
  });
  const reader = new ByteReader(async () => {
    while (queue.length === 0) await new Promise<void>((res) => (wake = res));
    const c = queue.shift()!;
    if (c) queued -= c.length;
    const d = drained;
    drained = undefined;
    d?.();
    return c;
  });
  const shadow: Shadow = {
    reader: r,
    close,
    done: (async () => {
      try {
        await s.scanOne(reader, where, frame);
      } catch (e) {
        // Where Python raises (an unknown opcode, a failed import, the end of the file) the shadow ends.
        if (!(e instanceof PickleHalt || e instanceof PickleError)) s.problem(`${where}: shadow read of joblib array bytes failed: ${(e as Error).message}`);
      } finally {
        untap();
        close();
        frame.memo.detach();
      }
    })(),
  };
  s.shadows.add(shadow);
  void shadow.done.finally(() => s.shadows.delete(shadow));
}

/** At the end of a stream (or when its scan stops early): the shadows over it run to their end. */
export async function settleShadows(s: PickleScanner, r: ByteReader): Promise<void> {
  const mine = [...s.shadows].filter((x) => x.reader === r);
  for (const x of mine) x.close();
  await Promise.all(mine.map((x) => x.done));
}
