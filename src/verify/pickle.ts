import { ByteReader, EndOfData } from './byte-reader.js';
import { DANGEROUS, PickleAllowList } from './pickle-allow.js';
import { Memo, PickleError, PickleHalt, newFrame, type Frame } from './pickle-frame.js';
import { scanJoblibArray, settleShadows, wrapperKind, type Shadow } from './pickle-joblib.js';
import { LONG_NAME, MAX_KEPT_STRING, OPAQUE, globalName, isDict, isObj, isSeq, seq, type Global, type Val } from './pickle-values.js';
import { STORAGE_ELEMENT_SIZE, TORCH_LEGACY_MAGIC, scanLegacyTorchTail } from './torch-legacy.js';

export { DEFAULT_PICKLE_PAIRS, PickleAllowList, parsePickleAllowEntry } from './pickle-allow.js';

/**
 * Unsafe-pickle scanner. Walks the opcodes of pickle protocols 0-5 with a stack machine that never
 * calls anything: it records every global a pickle would import (GLOBAL, STACK_GLOBAL, INST) and
 * checks it against exact (module, name) pairs. It keeps only small values (short strings, ints,
 * bounded prefixes of containers), so memory stays bounded; what it cannot resolve is a finding,
 * never a pass. Every pickle in a stream is scanned to the end of the stream (torch.load of a legacy
 * file unpickles several in a row); bytes that are not a pickle are denied with their offset.
 * joblib writes raw array bytes after a NumpyArrayWrapper's BUILD; pickle-joblib.ts sizes and
 * checks them.
 */
export interface PickleScanResult {
  /** Every distinct global the pickle(s) import, in order of appearance. */
  readonly globals: string[];
  /** Reasons to deny: disallowed imports, malformed or unclassifiable bytes. Empty = safe. */
  readonly problems: string[];
  readonly pickles: number;
}

export interface PickleScanOptions {
  /** Extra exact pairs, `module:name` (or the older `module.name`). */
  allow?: readonly string[];
}

const MAX_STACK = 1 << 20;
const MAX_PROBLEMS = 20;
const JOBLIB_WRAPPERS = new Set(['joblib.numpy_pickle\nNumpyArrayWrapper', 'joblib.numpy_pickle\nNDArrayWrapper']);
const IDENT = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/;

export class PickleScanner {
  readonly globals: string[] = [];
  private readonly seen = new Set<string>();
  readonly problems: string[] = [];
  pickles = 0;
  private readonly allow: PickleAllowList;
  /** torch persistent ids ('storage', <torch.XStorage>, key, location, numel) of the last pickle. */
  readonly storages = new Map<string, { type: string; numel: number }>();
  /** Shadow runs over joblib array bytes, alive alongside the scan (pickle-joblib.ts). */
  readonly shadows = new Set<Shadow>();

  constructor(opts: PickleScanOptions & { allowList?: PickleAllowList } = {}) {
    this.allow = opts.allowList ?? new PickleAllowList(opts.allow);
  }

  result(): PickleScanResult {
    return { globals: this.globals, problems: this.problems, pickles: this.pickles };
  }

  problem(p: string): void {
    if (this.problems.length < MAX_PROBLEMS && !this.problems.includes(p)) this.problems.push(p);
  }

  private importGlobal(module: string, name: string, where: string, f: Frame, at: number): Global {
    const g: Global = { t: 'global', module, name };
    if (f.shadow !== undefined && !(IDENT.test(module) && IDENT.test(name))) throw new PickleHalt(); // Python's import fails
    const key = `${module}\n${name}`;
    if (JOBLIB_WRAPPERS.has(key)) f.wrapperImported = true;
    const full = globalName(g);
    if (!this.seen.has(key)) {
      this.seen.add(key);
      this.globals.push(full);
    }
    if (!this.allow.has(module, name)) {
      const why = DANGEROUS.test(full) || DANGEROUS.test(name) ? 'dangerous' : name.includes('.') ? 'an attribute path, not in the allow-list' : 'not in the allow-list';
      this.problem(f.shadow !== undefined ? `${where} imports ${full} (${why}) from joblib array bytes at offset ${(f.shadowBase ?? 0) + at} that plain pickle.load reads as opcodes` : `${where} imports ${full} (${why})`);
    }
    return g;
  }

  /**
   * Every pickle in the stream, up to its end. A legacy torch file (its first pickle is torch's
   * magic number) is classified exactly: five pickles, then each storage as its element count and
   * bytes. Anything else after a pickle must itself be a pickle.
   */
  async scanStream(r: ByteReader, where: string): Promise<void> {
    try {
      const first = await this.scanOne(r, where, newFrame(true));
      if (first === TORCH_LEGACY_MAGIC) {
        await scanLegacyTorchTail(this, r, where);
        return;
      }
      while (!(await r.atEnd())) {
        const at = r.pos;
        try {
          await this.scanOne(r, where, newFrame(true));
        } catch (e) {
          if (e instanceof PickleError) throw new PickleError(`bytes after a pickle (from offset ${at}) are not a pickle: ${e.reason}`, e.offset);
          throw e;
        }
      }
    } catch (e) {
      this.problem(`${where}: ${e instanceof PickleError ? e.message : (e as Error).message}`);
    } finally {
      await settleShadows(this, r);
    }
  }

  /** One pickle up to and including its STOP; returns the value it loads. Throws PickleError. */
  async scanOne(r: ByteReader, where: string, f: Frame): Promise<Val> {
    if (f.shadow === undefined) {
      this.pickles++;
      this.storages.clear();
    }
    let at = r.pos;
    try {
      return await this.run(r, where, f, (v) => (at = v));
    } catch (e) {
      if (e instanceof PickleError || e instanceof PickleHalt) throw e;
      if (e instanceof EndOfData) throw new PickleError('truncated pickle', r.pos);
      throw new PickleError((e as Error).message, at);
    }
  }

  private async run(r: ByteReader, where: string, f: Frame, setAt: (v: number) => void): Promise<Val> {
    const { stack, marks } = f;
    const memo = f.memo;
    const shadow = f.shadow !== undefined;
    const fail = (msg: string): never => {
      if (shadow) throw new PickleHalt();
      throw new Error(msg);
    };
    const push = (v: Val): void => {
      if (stack.length >= MAX_STACK) fail('pickle stack deeper than 1M');
      stack.push(v);
    };
    const pop = (): Val => {
      if (stack.length === 0 || (marks.length > 0 && stack.length <= marks[marks.length - 1]!)) fail('pickle stack underflow');
      return stack.pop()!;
    };
    const popMark = (): Val[] => {
      const m = marks.pop();
      if (m === undefined) fail('pickle MARK missing');
      return stack.splice(m!);
    };
    const top = (): Val => {
      if (stack.length === 0) fail('pickle stack empty');
      return stack[stack.length - 1]!;
    };
    const memoPut = (i: number): void => {
      if (!Number.isSafeInteger(i) || i < 0) fail('bad memo index');
      memo.set(i, top());
    };
    const addItems = (target: Val, items: Val[]): void => {
      if (isSeq(target)) {
        for (const x of items) if (target.items.length < f.keep) target.items.push(x);
        if (items.length > 0 && target.items.length >= f.keep) target.more = true;
      } else if (!(typeof target === 'object' && target !== null)) fail('APPEND to a value that is not a list');
    };
    const setItems = (target: Val, kv: Val[]): void => {
      if (kv.length % 2 !== 0) fail('odd number of items for SETITEMS');
      if (isDict(target)) {
        for (let i = 0; i + 1 < kv.length; i += 2) {
          if (target.entries.length < f.keep) target.entries.push([kv[i]!, kv[i + 1]!]);
          else target.more = true;
        }
      } else if (!(typeof target === 'object' && target !== null)) fail('SETITEM on a value that is not a dict');
    };
    // Strings are kept when short (module and attribute names, dict keys); longer ones are skipped.
    const str = async (n: number, utf8: boolean): Promise<Val> => {
      if (n < 0) fail('negative length');
      if (n > MAX_KEPT_STRING) {
        // Not kept, but remembered if it could name something (os + "path.os.path...system" is os.system).
        let name = true;
        for (let left = n; left > 0; ) {
          const c = await r.chunk(Math.min(left, 1 << 16));
          if (c === null) throw new EndOfData();
          left -= c.length;
          if (name && !/^[A-Za-z0-9_.]*$/.test(c.toString('latin1'))) name = false;
        }
        return name ? LONG_NAME : OPAQUE;
      }
      const b = r.tryBytes(n) ?? (await r.bytes(n));
      if (!utf8) return b.toString('latin1');
      const s = b.toString('utf8');
      if (s.includes('\ufffd') && !Buffer.from(s, 'utf8').equals(b)) return shadow ? fail('invalid utf-8') : OPAQUE;
      return s;
    };
    const u64 = (b: Buffer): number => {
      const v = b.readBigUInt64LE(0);
      if (v > BigInt(Number.MAX_SAFE_INTEGER)) fail('length too large');
      return Number(v);
    };
    const byte = async (): Promise<number> => r.tryByte() ?? (await r.byte());
    const bytes = async (n: number): Promise<Buffer> => r.tryBytes(n) ?? (await r.bytes(n));

    for (;;) {
      setAt(r.pos);
      const opAt = r.pos;
      const op = await byte();
      switch (op) {
        case 0x2e: // STOP
          if (stack.length === 0) fail('STOP with an empty stack');
          return stack[stack.length - 1]!;
        case 0x80: // PROTO
          if ((await byte()) > 5) fail('unsupported pickle protocol');
          break;
        case 0x95: // FRAME
          await bytes(8);
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
          if (!/^[+-]?\d+$/.test(l.trim())) fail('INT is not a number');
          push(l === '01' ? true : l === '00' ? false : Number.parseInt(l, 10));
          break;
        }
        case 0x4c: { // LONG
          const l = (await r.line()).replace(/L$/, '');
          if (!/^[+-]?\d+$/.test(l.trim())) fail('LONG is not a number');
          push(BigInt(l.trim()));
          break;
        }
        case 0x46: // FLOAT
          push(Number.parseFloat(await r.line()));
          break;
        case 0x4a: // BININT
          push((await bytes(4)).readInt32LE(0));
          break;
        case 0x4b: // BININT1
          push(await byte());
          break;
        case 0x4d: // BININT2
          push((await bytes(2)).readUInt16LE(0));
          break;
        case 0x8a: { // LONG1
          const n = await byte();
          const b = await bytes(n);
          push(n === 0 ? 0 : n <= 6 ? b.readIntLE(0, n) : BigInt.asIntN(n * 8, BigInt(`0x${Buffer.from(b).reverse().toString('hex')}`)));
          break;
        }
        case 0x8b: { // LONG4
          const n = (await bytes(4)).readInt32LE(0);
          if (n < 0) fail('negative LONG4 length');
          await r.skip(n);
          push(OPAQUE);
          break;
        }
        case 0x47: // BINFLOAT
          push((await bytes(8)).readDoubleBE(0));
          break;
        case 0x53: { // STRING: a quoted repr; escapes make it opaque (no allowed name has any)
          const l = await r.line();
          if (l.length < 2 || l[0] !== l[l.length - 1] || (l[0] !== "'" && l[0] !== '"')) fail('the STRING opcode argument must be quoted');
          const body = l.slice(1, -1);
          push(body.includes('\\') || body.length > MAX_KEPT_STRING ? OPAQUE : body);
          break;
        }
        case 0x54: // BINSTRING
          push(await str((await bytes(4)).readInt32LE(0), false));
          break;
        case 0x55: // SHORT_BINSTRING
          push(await str(await byte(), false));
          break;
        case 0x56: { // UNICODE (raw-unicode-escape: only \u and \U escape)
          const l = await r.line();
          push(/\\[uU]/.test(l) || l.length > MAX_KEPT_STRING ? OPAQUE : l);
          break;
        }
        case 0x58: // BINUNICODE
          push(await str((await bytes(4)).readUInt32LE(0), true));
          break;
        case 0x8c: // SHORT_BINUNICODE
          push(await str(await byte(), true));
          break;
        case 0x8d: // BINUNICODE8
          push(await str(u64(await bytes(8)), true));
          break;
        case 0x42: { // BINBYTES
          const n = (await bytes(4)).readUInt32LE(0);
          await r.skip(n);
          push({ t: 'bytes', n });
          break;
        }
        case 0x43: { // SHORT_BINBYTES
          const n = await byte();
          await r.skip(n);
          push({ t: 'bytes', n });
          break;
        }
        case 0x8e: // BINBYTES8
        case 0x96: { // BYTEARRAY8
          const n = u64(await bytes(8));
          await r.skip(n);
          push({ t: 'bytes', n });
          break;
        }
        case 0x97: // NEXT_BUFFER (out-of-band, protocol 5): plain loads raise without buffers
          fail('NEXT_BUFFER: out-of-band buffers are not part of the file');
          break;
        case 0x98: // READONLY_BUFFER
          top();
          break;
        case 0x29: // EMPTY_TUPLE
          push(seq('tuple', []));
          break;
        case 0x74: // TUPLE
          push(seq('tuple', popMark(), f.keep));
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
          push(seq('list', popMark(), f.keep));
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
          push(seq('set', popMark(), f.keep));
          break;
        case 0x63: { // GLOBAL
          const module = await r.line();
          const name = await r.line();
          push(this.importGlobal(module, name, where, f, opAt));
          break;
        }
        case 0x93: { // STACK_GLOBAL
          const name = pop();
          const module = pop();
          if (typeof module === 'string' && typeof name === 'string') push(this.importGlobal(module, name, where, f, opAt));
          else if (module !== LONG_NAME && name !== LONG_NAME && (shadow || (module !== OPAQUE && name !== OPAQUE))) fail('STACK_GLOBAL requires str'); // Python raises too
          else {
            this.problem(`${where}: STACK_GLOBAL with operands that are not short constant strings at offset ${(f.shadowBase ?? 0) + opAt}${shadow ? ' (joblib array bytes read as opcodes)' : ''}`);
            push(OPAQUE);
          }
          break;
        }
        case 0x69: { // INST
          const module = await r.line();
          const name = await r.line();
          const cls = this.importGlobal(module, name, where, f, opAt);
          push({ t: 'obj', how: 'inst', cls, args: seq('tuple', popMark()) });
          break;
        }
        case 0x6f: { // OBJ
          const items = popMark();
          if (items.length === 0) fail('OBJ without a class');
          push({ t: 'obj', how: 'obj', cls: items[0]!, args: seq('tuple', items.slice(1)) });
          break;
        }
        case 0x52: { // REDUCE
          const args = pop();
          push({ t: 'obj', how: 'reduce', cls: pop(), args });
          break;
        }
        case 0x81: { // NEWOBJ
          const args = pop();
          push({ t: 'obj', how: 'newobj', cls: pop(), args });
          break;
        }
        case 0x92: { // NEWOBJ_EX
          pop();
          const args = pop();
          push({ t: 'obj', how: 'newobj', cls: pop(), args });
          break;
        }
        case 0x62: { // BUILD
          const state = pop();
          const obj = top();
          if (isObj(obj)) {
            obj.build = state;
            if (isDict(state) && !state.more && state.entries.every(([k]) => typeof k === 'string')) {
              obj.attrs ??= new Map();
              for (const [k, v] of state.entries) obj.attrs.set(k as string, v);
            } else if (state !== null) obj.attrsUnknown = true;
          }
          if (f.joblib && f.wrapperImported && !shadow) {
            const kind = wrapperKind(obj);
            if (kind === 'unknown') fail('BUILD on an object that may be a joblib array wrapper');
            if (kind === 'wrapper' && isObj(obj)) await scanJoblibArray(this, r, where, f, obj);
          }
          break;
        }
        case 0x50: // PERSID
          await r.line();
          push(OPAQUE);
          break;
        case 0x51: { // BINPERSID: torch's storages ('storage', <class>, key, location, numel[, view])
          const pid = pop();
          if (!shadow && isSeq(pid) && pid.items[0] === 'storage' && (pid.items.length === 5 || pid.items.length === 6)) {
            const [, type, key, , numel] = pid.items;
            if (typeof key === 'string' && typeof numel === 'number' && typeof type === 'object' && type !== null && 't' in type && type.t === 'global' && type.module === 'torch' && STORAGE_ELEMENT_SIZE[type.name] !== undefined)
              this.storages.set(key, { type: type.name, numel });
          }
          push(OPAQUE);
          break;
        }
        case 0x70: // PUT
          memoPut(Number.parseInt(await r.line(), 10));
          break;
        case 0x71: // BINPUT
          memoPut(await byte());
          break;
        case 0x72: // LONG_BINPUT
          memoPut((await bytes(4)).readUInt32LE(0));
          break;
        case 0x94: // MEMOIZE
          memoPut(memo.size);
          break;
        case 0x67: // GET
        case 0x68: // BINGET
        case 0x6a: { // LONG_BINGET
          const i = op === 0x67 ? Number.parseInt(await r.line(), 10) : op === 0x68 ? await byte() : (await bytes(4)).readUInt32LE(0);
          if (!memo.has(i)) fail(`memo key ${i} missing`);
          push(memo.get(i)!);
          break;
        }
        case 0x82: // EXT1
        case 0x83: // EXT2
        case 0x84: // EXT4
          await r.skip(op === 0x82 ? 1 : op === 0x83 ? 2 : 4);
          fail('uses the copyreg extension registry (EXT opcodes)');
          break;
        default:
          if (shadow) throw new PickleHalt();
          throw new PickleError(`not a pickle: unknown opcode 0x${op.toString(16).padStart(2, '0')}`, opAt);
      }
    }
  }
}

export { Memo, PickleError, PickleHalt, newFrame, type Frame };

/** Convenience: scan one stream that holds pickles directly. */
export async function scanPickleStream(source: AsyncIterable<Uint8Array>, where: string, opts: PickleScanOptions = {}): Promise<PickleScanResult> {
  const s = new PickleScanner(opts);
  await s.scanStream(ByteReader.from(source), where);
  return s.result();
}
