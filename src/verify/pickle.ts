import { ByteReader, EndOfData } from './byte-reader.js';
import { globMatch } from './glob.js';
import { DANGEROUS, DEFAULT_PICKLE_ALLOW } from './pickle-globals.js';

export { DEFAULT_PICKLE_ALLOW } from './pickle-globals.js';

/**
 * Unsafe-pickle scanner. Walks the opcodes of pickle protocols 0-5 with a small stack
 * machine that never calls anything: it records every global a pickle would import
 * (GLOBAL, STACK_GLOBAL, INST) and checks it against an allowlist. It keeps only small
 * values (strings, ints, short tuples and dicts) so memory stays bounded; a STACK_GLOBAL
 * whose operands it cannot resolve is a finding, never a pass.
 * joblib writes raw numpy array bytes between opcodes (after a NumpyArrayWrapper's BUILD);
 * those are sized from the wrapper's state and skipped.
 */

export interface PickleScanResult {
  /** Every distinct global the pickle(s) import, in order of appearance. */
  readonly globals: string[];
  /** Reasons to deny: disallowed imports, unresolvable or malformed opcodes. Empty = safe. */
  readonly problems: string[];
  readonly pickles: number;
}

const MARK = Symbol('mark');
const OPAQUE = Object.freeze({ t: 'opaque' as const });
type Val =
  | null
  | boolean
  | number
  | string
  | typeof MARK
  | typeof OPAQUE
  | { t: 'bytes'; n: number }
  | { t: 'tuple' | 'list' | 'set'; items: Val[]; more: boolean }
  | { t: 'dict'; entries: [Val, Val][]; more: boolean }
  | { t: 'global'; name: string }
  | { t: 'obj'; cls: Val; args: Val; state?: Val };

const KEEP = 64; // items kept per container: enough for a joblib wrapper's state, bounded for huge lists
const MAX_STACK = 1 << 20;
const MAX_MEMO = 1 << 20;
const MAX_STRING = 64 * 1024;

export interface PickleScanOptions {
  allow?: readonly string[];
}

export class PickleScanner {
  private readonly allow: readonly string[];
  readonly globals: string[] = [];
  private readonly seen = new Set<string>();
  readonly problems: string[] = [];
  pickles = 0;

  constructor(opts: PickleScanOptions = {}) {
    this.allow = [...DEFAULT_PICKLE_ALLOW, ...(opts.allow ?? [])];
  }

  result(): PickleScanResult {
    return { globals: this.globals, problems: this.problems, pickles: this.pickles };
  }

  private problem(p: string): void {
    if (this.problems.length < 20 && !this.problems.includes(p)) this.problems.push(p);
  }

  private importGlobal(module: string, name: string, where: string): Val {
    const full = `${module}.${name}`;
    if (!this.seen.has(full)) {
      this.seen.add(full);
      this.globals.push(full);
      if (!this.allow.some((g) => globMatch(g, full))) {
        this.problem(DANGEROUS.test(full) ? `${where} imports ${full} (dangerous)` : `${where} imports ${full} (not in the allowlist)`);
      }
    }
    return { t: 'global', name: full };
  }

  /**
   * Scans consecutive pickles from the reader (legacy torch files hold several in a row),
   * stopping at the end or at data that does not start a new pickle.
   */
  async scanStream(r: ByteReader, where: string): Promise<void> {
    try {
      await this.scanOne(r, where);
      while (!(await r.atEnd())) {
        const next = await r.peek(1);
        if (next[0] !== 0x80) break; // trailing raw data (e.g. legacy torch storages), not a pickle
        await this.scanOne(r, where);
      }
    } catch (e) {
      this.problem(e instanceof EndOfData ? `${where}: truncated pickle` : `${where}: ${(e as Error).message}`);
    }
  }

  /** One pickle, up to and including its STOP. */
  async scanOne(r: ByteReader, where: string): Promise<void> {
    this.pickles++;
    const stack: Val[] = [];
    const marks: number[] = [];
    const memo = new Map<number, Val>();
    const push = (v: Val): void => {
      if (stack.length >= MAX_STACK) throw new Error('pickle stack too deep');
      stack.push(v);
    };
    const pop = (): Val => {
      if (stack.length === 0 || (marks.length > 0 && stack.length <= marks[marks.length - 1]!)) throw new Error('pickle stack underflow');
      return stack.pop()!;
    };
    const popMark = (): Val[] => {
      const m = marks.pop();
      if (m === undefined) throw new Error('pickle MARK missing');
      return stack.splice(m);
    };
    const top = (): Val => {
      if (stack.length === 0) throw new Error('pickle stack empty');
      return stack[stack.length - 1]!;
    };
    const memoPut = (i: number): void => {
      if (memo.size >= MAX_MEMO && !memo.has(i)) throw new Error('pickle memo too large');
      memo.set(i, top());
    };
    const seq = (t: 'tuple' | 'list' | 'set', items: Val[]): Val => ({ t, items: items.slice(0, KEEP), more: items.length > KEEP });
    const addItems = (target: Val, items: Val[]): void => {
      if (typeof target === 'object' && target !== null && 'items' in target) {
        for (const x of items) if (target.items.length < KEEP) target.items.push(x);
        if (items.length > 0 && target.items.length >= KEEP) target.more = true;
      }
    };
    const setItems = (target: Val, kv: Val[]): void => {
      if (typeof target === 'object' && target !== null && 'entries' in target) {
        for (let i = 0; i + 1 < kv.length; i += 2) if (target.entries.length < KEEP) target.entries.push([kv[i]!, kv[i + 1]!]);
      }
    };
    // Fast paths first: awaiting only at chunk boundaries keeps opcode-dense pickles quick.
    const str = (n: number, enc: BufferEncoding): Val | Promise<Val> => {
      if (n < 0) throw new Error('negative length');
      if (n > MAX_STRING) return r.skip(n).then(() => OPAQUE);
      const b = r.tryBytes(n);
      return b ? b.toString(enc) : r.bytes(n).then((x) => x.toString(enc));
    };
    const u64 = (b: Buffer): number => {
      const v = b.readBigUInt64LE(0);
      if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error('length too large');
      return Number(v);
    };

    for (;;) {
      const op = r.tryByte() ?? (await r.byte());
      switch (op) {
        case 0x2e: // STOP
          return;
        case 0x80: // PROTO
          (r.tryByte() ?? (await r.byte()));
          break;
        case 0x95: // FRAME
          if (!r.tryBytes(8)) await r.skip(8);
          break;
        case 0x28: // MARK
          marks.push(stack.length);
          break;
        case 0x30: // POP
          if (marks.length > 0 && stack.length === marks[marks.length - 1]) marks.pop();
          else pop();
          break;
        case 0x31: // POP_MARK
          popMark();
          break;
        case 0x32: // DUP
          push(top());
          break;
        case 0x4e: // NONE
          push(null);
          break;
        case 0x88: // NEWTRUE
          push(true);
          break;
        case 0x89: // NEWFALSE
          push(false);
          break;
        case 0x49: { // INT
          const l = await r.line();
          push(l === '01' ? true : l === '00' ? false : Number.parseInt(l, 10));
          break;
        }
        case 0x4c: // LONG
          await r.line();
          push(OPAQUE);
          break;
        case 0x46: // FLOAT
          push(Number.parseFloat(await r.line()));
          break;
        case 0x4a: // BININT
          push(((r.tryBytes(4) ?? (await r.bytes(4)))).readInt32LE(0));
          break;
        case 0x4b: // BININT1
          push((r.tryByte() ?? (await r.byte())));
          break;
        case 0x4d: // BININT2
          push(((r.tryBytes(2) ?? (await r.bytes(2)))).readUInt16LE(0));
          break;
        case 0x8a: { // LONG1
          const n = (r.tryByte() ?? (await r.byte()));
          const b = (r.tryBytes(n) ?? (await r.bytes(n)));
          push(n <= 6 ? (n === 0 ? 0 : b.readIntLE(0, n)) : OPAQUE);
          break;
        }
        case 0x8b: // LONG4
          await r.skip((r.tryBytes(4) ?? (await r.bytes(4))).readUInt32LE(0));
          push(OPAQUE);
          break;
        case 0x47: // BINFLOAT
          push(((r.tryBytes(8) ?? (await r.bytes(8)))).readDoubleBE(0));
          break;
        case 0x53: { // STRING: a quoted repr
          const l = await r.line();
          push(l.length >= 2 ? l.slice(1, -1) : l);
          break;
        }
        case 0x54: { // BINSTRING
          const sv = str((r.tryBytes(4) ?? (await r.bytes(4))).readInt32LE(0), 'latin1');
          push(sv instanceof Promise ? await sv : sv);
          break;
        }
        case 0x55: { // SHORT_BINSTRING
          const sv = str((r.tryByte() ?? (await r.byte())), 'latin1');
          push(sv instanceof Promise ? await sv : sv);
          break;
        }
        case 0x56: // UNICODE (raw-unicode-escape)
          push(await r.line());
          break;
        case 0x58: { // BINUNICODE
          const sv = str((r.tryBytes(4) ?? (await r.bytes(4))).readUInt32LE(0), 'utf8');
          push(sv instanceof Promise ? await sv : sv);
          break;
        }
        case 0x8c: { // SHORT_BINUNICODE
          const sv = str((r.tryByte() ?? (await r.byte())), 'utf8');
          push(sv instanceof Promise ? await sv : sv);
          break;
        }
        case 0x8d: { // BINUNICODE8
          const sv = str(u64(r.tryBytes(8) ?? (await r.bytes(8))), 'utf8');
          push(sv instanceof Promise ? await sv : sv);
          break;
        }
        case 0x42: { // BINBYTES
          const n = (r.tryBytes(4) ?? (await r.bytes(4))).readUInt32LE(0);
          await r.skip(n);
          push({ t: 'bytes', n });
          break;
        }
        case 0x43: { // SHORT_BINBYTES
          const n = (r.tryByte() ?? (await r.byte()));
          await r.skip(n);
          push({ t: 'bytes', n });
          break;
        }
        case 0x8e: // BINBYTES8
        case 0x96: { // BYTEARRAY8
          const n = u64(r.tryBytes(8) ?? (await r.bytes(8)));
          await r.skip(n);
          push({ t: 'bytes', n });
          break;
        }
        case 0x97: // NEXT_BUFFER (out-of-band, protocol 5)
          push(OPAQUE);
          break;
        case 0x98: // READONLY_BUFFER
          break;
        case 0x29: // EMPTY_TUPLE
          push(seq('tuple', []));
          break;
        case 0x74: // TUPLE
          push(seq('tuple', popMark()));
          break;
        case 0x85: // TUPLE1
          push(seq('tuple', [pop()]));
          break;
        case 0x86: { // TUPLE2
          const b = pop();
          push(seq('tuple', [pop(), b]));
          break;
        }
        case 0x87: { // TUPLE3
          const c = pop();
          const b = pop();
          push(seq('tuple', [pop(), b, c]));
          break;
        }
        case 0x5d: // EMPTY_LIST
          push(seq('list', []));
          break;
        case 0x6c: // LIST
          push(seq('list', popMark()));
          break;
        case 0x61: { // APPEND
          const v = pop();
          addItems(top(), [v]);
          break;
        }
        case 0x65: { // APPENDS
          const items = popMark();
          addItems(top(), items);
          break;
        }
        case 0x7d: // EMPTY_DICT
          push({ t: 'dict', entries: [], more: false });
          break;
        case 0x64: { // DICT
          const d: Val = { t: 'dict', entries: [], more: false };
          setItems(d, popMark());
          push(d);
          break;
        }
        case 0x73: { // SETITEM
          const v = pop();
          const k = pop();
          setItems(top(), [k, v]);
          break;
        }
        case 0x75: { // SETITEMS
          const kv = popMark();
          setItems(top(), kv);
          break;
        }
        case 0x8f: // EMPTY_SET
          push(seq('set', []));
          break;
        case 0x90: { // ADDITEMS
          const items = popMark();
          addItems(top(), items);
          break;
        }
        case 0x91: // FROZENSET
          push(seq('set', popMark()));
          break;
        case 0x63: { // GLOBAL
          const module = await r.line();
          const name = await r.line();
          push(this.importGlobal(module, name, where));
          break;
        }
        case 0x93: { // STACK_GLOBAL
          const name = pop();
          const module = pop();
          if (typeof module !== 'string' || typeof name !== 'string') {
            this.problem(`${where}: STACK_GLOBAL with operands that are not constant strings`);
            push(OPAQUE);
          } else push(this.importGlobal(module, name, where));
          break;
        }
        case 0x69: { // INST
          const module = await r.line();
          const name = await r.line();
          const cls = this.importGlobal(module, name, where);
          push({ t: 'obj', cls, args: seq('tuple', popMark()) });
          break;
        }
        case 0x6f: { // OBJ
          const items = popMark();
          push({ t: 'obj', cls: items[0] ?? OPAQUE, args: seq('tuple', items.slice(1)) });
          break;
        }
        case 0x52: { // REDUCE
          const args = pop();
          push({ t: 'obj', cls: pop(), args });
          break;
        }
        case 0x81: { // NEWOBJ
          const args = pop();
          push({ t: 'obj', cls: pop(), args });
          break;
        }
        case 0x92: { // NEWOBJ_EX
          pop();
          const args = pop();
          push({ t: 'obj', cls: pop(), args });
          break;
        }
        case 0x62: { // BUILD
          const state = pop();
          const obj = top();
          if (typeof obj === 'object' && obj !== null && 't' in obj && obj.t === 'obj') {
            obj.state = state;
            if (isGlobal(obj.cls, 'joblib.numpy_pickle.NumpyArrayWrapper')) await this.skipJoblibArray(r, obj, where);
          }
          break;
        }
        case 0x50: // PERSID
          await r.line();
          push(OPAQUE);
          break;
        case 0x51: // BINPERSID
          pop();
          push(OPAQUE);
          break;
        case 0x70: // PUT
          memoPut(Number.parseInt(await r.line(), 10));
          break;
        case 0x71: // BINPUT
          memoPut((r.tryByte() ?? (await r.byte())));
          break;
        case 0x72: // LONG_BINPUT
          memoPut((r.tryBytes(4) ?? (await r.bytes(4))).readUInt32LE(0));
          break;
        case 0x94: // MEMOIZE
          memoPut(memo.size);
          break;
        case 0x67: // GET
        case 0x68: // BINGET
        case 0x6a: { // LONG_BINGET
          const i = op === 0x67 ? Number.parseInt(await r.line(), 10) : op === 0x68 ? (r.tryByte() ?? (await r.byte())) : (r.tryBytes(4) ?? (await r.bytes(4))).readUInt32LE(0);
          if (!memo.has(i)) throw new Error(`memo key ${i} missing`);
          push(memo.get(i)!);
          break;
        }
        case 0x82: // EXT1
        case 0x83: // EXT2
        case 0x84: // EXT4
          await r.skip(op === 0x82 ? 1 : op === 0x83 ? 2 : 4);
          this.problem(`${where}: uses the copyreg extension registry (EXT opcodes)`);
          push(OPAQUE);
          break;
        default:
          throw new Error(`not a pickle: unknown opcode 0x${op.toString(16)} at offset ${r.pos - 1}`);
      }
    }
  }

  /** joblib (numpy_pickle.py, NumpyArrayWrapper.write_array): padding byte(s), then the array's raw bytes. */
  private async skipJoblibArray(r: ByteReader, obj: Extract<Val, { t: 'obj' }>, where: string): Promise<void> {
    const state = obj.state;
    if (typeof state !== 'object' || state === null || !('entries' in state)) throw new Error('joblib array wrapper without state');
    const get = (k: string): Val | undefined => state.entries.find(([key]) => key === k)?.[1];
    const dtype = get('dtype');
    const shape = get('shape');
    const typestr = dtypeString(dtype);
    if (typestr === undefined) throw new Error('joblib array with an unreadable dtype');
    if (typestr === 'O') {
      // Object arrays are a nested pickle in the same stream (pickle.dump(array, file)).
      await this.scanOne(r, where);
      return;
    }
    const itemsize = itemsizeOf(typestr);
    if (itemsize === undefined || typeof shape !== 'object' || shape === null || !('items' in shape) || shape.more) throw new Error(`joblib array with an unsupported dtype or shape (${typestr})`);
    let count = 1;
    for (const d of shape.items) {
      if (typeof d !== 'number' || d < 0) throw new Error('joblib array shape is not constant');
      count *= d;
    }
    if (get('numpy_array_alignment_bytes') !== undefined && get('numpy_array_alignment_bytes') !== null) {
      const pad = (r.tryByte() ?? (await r.byte()));
      await r.skip(pad);
    }
    await r.skip(count * itemsize);
  }
}

const isGlobal = (v: Val, name: string): boolean => typeof v === 'object' && v !== null && 't' in v && v.t === 'global' && v.name === name;

/** numpy pickles a dtype as REDUCE(numpy.dtype, ('f8', False, True)) + BUILD(state). */
function dtypeString(v: Val | undefined): string | undefined {
  if (typeof v !== 'object' || v === null || !('t' in v) || v.t !== 'obj' || !isGlobal(v.cls, 'numpy.dtype')) return undefined;
  const args = v.args;
  if (typeof args !== 'object' || args === null || !('items' in args)) return undefined;
  const s = args.items[0];
  return typeof s === 'string' ? s : undefined;
}

function itemsizeOf(typestr: string): number | undefined {
  const m = /^[<>|=]?([biufcmMSUV])(\d+)(?:\[[a-zA-Z]+\])?$/.exec(typestr);
  if (!m) return undefined;
  const n = Number(m[2]);
  return m[1] === 'U' ? n * 4 : n;
}

/** Convenience: scan one stream that holds pickles directly. */
export async function scanPickleStream(source: AsyncIterable<Uint8Array>, where: string, opts: PickleScanOptions = {}): Promise<PickleScanResult> {
  const s = new PickleScanner(opts);
  await s.scanStream(ByteReader.from(source), where);
  return s.result();
}
