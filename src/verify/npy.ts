import type { ByteReader } from './byte-reader.js';
import type { PickleScanner } from './pickle.js';

/**
 * NumPy's .npy format (numpy/lib/format.py): magic, version, a header that is a Python dict literal
 * (`descr`, `fortran_order`, `shape`), then the array's bytes, or for a dtype that holds Python
 * objects a pickle of the whole array (np.load runs it with allow_pickle=True). Object arrays are
 * scanned like any pickle; other arrays must hold exactly shape x itemsize bytes and nothing after.
 */
export const NPY_MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]);
const MAX_HEADER = 1 << 20;

export async function scanNpy(r: ByteReader, where: string, s: PickleScanner): Promise<void> {
  const start = r.pos;
  const head = await r.bytes(8);
  if (!head.subarray(0, 6).equals(NPY_MAGIC)) throw new Error('npy: bad magic');
  const major = head[6]!;
  if (major < 1 || major > 3) throw new Error(`npy: format version ${major} is not known`);
  const hlen = major === 1 ? (await r.bytes(2)).readUInt16LE(0) : (await r.bytes(4)).readUInt32LE(0);
  if (hlen > MAX_HEADER) throw new Error('npy: header larger than 1 MiB');
  const text = (await r.bytes(hlen)).toString(major === 3 ? 'utf8' : 'latin1');
  const header = parseLiteral(text.trimEnd());
  if (!(header instanceof Map)) throw new Error('npy: header is not a dict');
  const shape = header.get('shape');
  if (!Array.isArray(shape) || !shape.every((d) => typeof d === 'number' && Number.isSafeInteger(d) && d >= 0)) throw new Error('npy: shape is not a tuple of integers');
  const dt = descrInfo(header.get('descr'));
  if (dt.hasObject) {
    await s.scanStream(r, `${where} (object array)`);
    return;
  }
  const bytes = (shape as number[]).reduce((a, d) => a * d, 1) * dt.itemsize;
  if (!Number.isSafeInteger(bytes)) throw new Error('npy: array too large');
  await r.skip(bytes);
  if (!(await r.atEnd())) throw new Error(`npy: bytes after the array at offset ${r.pos - start}`);
}

type Lit = string | number | boolean | null | Lit[] | Map<string, Lit>;

function descrInfo(d: Lit | undefined, depth = 0): { itemsize: number; hasObject: boolean } {
  if (depth > 8) throw new Error('npy: dtype nested too deep');
  if (typeof d === 'string') {
    const m = /^[<>|=]?([?bBhHiIlLqQpPefdgFDGbiufcmMOSUVa])(\d*)(\[\w+\])?$/.exec(d);
    if (!m) throw new Error(`npy: dtype ${d} not understood`);
    if (m[1] === 'O') return { itemsize: 8, hasObject: true };
    if (m[2] === '') throw new Error(`npy: dtype ${d} without a size`);
    return { itemsize: m[1] === 'U' ? Number(m[2]) * 4 : Number(m[2]), hasObject: false };
  }
  if (Array.isArray(d)) {
    let itemsize = 0;
    let hasObject = false;
    for (const f of d) {
      if (!Array.isArray(f) || f.length < 2 || f.length > 3) throw new Error('npy: structured dtype field not understood');
      const sub = descrInfo(f[1], depth + 1);
      const n = f.length === 3 ? (Array.isArray(f[2]) ? f[2] : [f[2]]).reduce<number>((a, x) => (typeof x === 'number' && x >= 0 ? a * x : Number.NaN), 1) : 1;
      if (!Number.isSafeInteger(n)) throw new Error('npy: structured dtype field shape not understood');
      itemsize += sub.itemsize * n;
      hasObject ||= sub.hasObject;
    }
    return { itemsize, hasObject };
  }
  throw new Error('npy: descr is not a dtype');
}

/** The Python literals np.save writes in a header: dicts, tuples, lists, strings, ints, booleans, None. */
export function parseLiteral(text: string): Lit {
  let i = 0;
  const ws = (): void => {
    while (i < text.length && /\s/.test(text[i]!)) i++;
  };
  const value = (depth: number): Lit => {
    if (depth > 16) throw new Error('npy: header nested too deep');
    ws();
    const c = text[i];
    if (c === '{' || c === '(' || c === '[') {
      const close = c === '{' ? '}' : c === '(' ? ')' : ']';
      i++;
      const items: Lit[] = [];
      const map = new Map<string, Lit>();
      for (;;) {
        ws();
        if (text[i] === close) break;
        const v = value(depth + 1);
        if (c === '{') {
          ws();
          if (text[i++] !== ':' || typeof v !== 'string') throw new Error('npy: bad dict in header');
          if (map.has(v)) throw new Error(`npy: duplicate key ${v} in header`);
          map.set(v, value(depth + 1));
        } else items.push(v);
        ws();
        if (text[i] === ',') i++;
        else if (text[i] !== close) throw new Error('npy: bad header');
      }
      i++;
      return c === '{' ? map : items;
    }
    if (c === "'" || c === '"') {
      const end = text.indexOf(c, i + 1);
      if (end < 0) throw new Error('npy: unterminated string in header');
      const s = text.slice(i + 1, end);
      if (s.includes('\\')) throw new Error('npy: escapes in header strings are not read');
      i = end + 1;
      return s;
    }
    const m = /^(True|False|None|-?\d+L?)/.exec(text.slice(i, i + 32));
    if (!m) throw new Error(`npy: unexpected ${JSON.stringify(text.slice(i, i + 10))} in header`);
    i += m[0].length;
    return m[0] === 'True' ? true : m[0] === 'False' ? false : m[0] === 'None' ? null : Number.parseInt(m[0], 10);
  };
  const v = value(0);
  ws();
  if (i !== text.length) throw new Error('npy: bytes after the header dict');
  return v;
}
