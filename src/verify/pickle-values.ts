/**
 * The values the pickle scanner's stack machine keeps: enough to resolve STACK_GLOBAL operands,
 * joblib's array wrappers, NumPy dtypes and torch's persistent ids; everything else is OPAQUE.
 * Containers keep a bounded prefix of their items, strings a bounded length, so memory stays
 * proportional to what is small and needed, never to the model's size.
 */
export const MARK = Symbol('mark');
export const OPAQUE = Object.freeze({ t: 'opaque' as const });
/** A string too long to keep whose characters could make a module or attribute path. */
export const LONG_NAME = Object.freeze({ t: 'long-name' as const });

export type Seq = { t: 'tuple' | 'list' | 'set'; items: Val[]; more: boolean };
export type Dict = { t: 'dict'; entries: [Val, Val][]; more: boolean };
export type Global = { t: 'global'; module: string; name: string };
/**
 * An object made by REDUCE/NEWOBJ/OBJ/INST. `build` is the last BUILD state given to it; `attrs`
 * merges the dict states of every BUILD (what Python's __dict__.update does), and `attrsUnknown`
 * says a BUILD state was something else (a slot-state tuple, an opaque value).
 */
export type Obj = { t: 'obj'; how: 'reduce' | 'newobj' | 'obj' | 'inst'; cls: Val; args: Val; build?: Val; attrs?: Map<string, Val>; attrsUnknown?: boolean };

export type Val =
  | null
  | boolean
  | number
  | bigint
  | string
  | typeof MARK
  | typeof OPAQUE
  | typeof LONG_NAME
  | { t: 'bytes'; n: number }
  | Seq
  | Dict
  | Global
  | Obj;

export const KEEP = 64;
export const MAX_KEPT_STRING = 256;

export const seq = (t: Seq['t'], items: Val[], keep = KEEP): Seq => ({ t, items: items.slice(0, keep), more: items.length > keep });

export const isSeq = (v: Val | undefined): v is Seq => typeof v === 'object' && v !== null && 'items' in v;
export const isDict = (v: Val | undefined): v is Dict => typeof v === 'object' && v !== null && 'entries' in v;
export const isObj = (v: Val | undefined): v is Obj => typeof v === 'object' && v !== null && 't' in v && v.t === 'obj';
export const isGlobal = (v: Val | undefined, module?: string, name?: string): v is Global =>
  typeof v === 'object' && v !== null && 't' in v && v.t === 'global' && (module === undefined || v.module === module) && (name === undefined || v.name === name);

export const globalName = (g: Global): string => (g.name.includes('.') ? `${g.module}:${g.name}` : `${g.module}.${g.name}`);

/** Items of a fully kept tuple/list, else undefined. */
export function itemsOf(v: Val | undefined): Val[] | undefined {
  return isSeq(v) && !v.more ? v.items : undefined;
}

/**
 * A NumPy dtype as pickled: REDUCE(numpy.dtype, (typestr, False, True)) + BUILD((3, byteorder,
 * subarray, names, fields, elsize, alignment, flags[, metadata])). Returns the item size and
 * whether the dtype holds Python objects, or a reason it cannot tell.
 */
export function dtypeInfo(v: Val | undefined, depth = 0): { itemsize: number; hasObject: boolean } | string {
  if (depth > 8) return 'dtype nested too deep';
  if (!isObj(v) || !(isGlobal(v.cls, 'numpy', 'dtype'))) return 'dtype is not numpy.dtype(...)';
  const typestr = itemsOf(v.args)?.[0];
  if (typeof typestr !== 'string') return 'dtype without a type string';
  const m = /^([biufcmMOSUV])(\d*)$/.exec(typestr.replace(/^[<>|=]/, ''));
  if (!m) return `dtype ${typestr} not understood`;
  if (m[1] === 'O') return { itemsize: 8, hasObject: true };
  const n = Number(m[2] || '0');
  const itemsize = m[1] === 'U' ? n * 4 : n;
  const st = v.build;
  if (st === undefined) return m[1] === 'V' ? 'structured dtype without fields' : { itemsize, hasObject: false };
  const s = itemsOf(st);
  if (!s || s.length < 8) return 'dtype state not understood';
  if (s[2] !== null) return 'sub-array dtypes are not supported';
  if (m[1] !== 'V') {
    if (s[3] !== null || s[4] !== null) return 'fields on a non-structured dtype';
    if (typeof s[5] !== 'number' || (s[5] !== -1 && s[5] !== itemsize)) return 'dtype state size disagrees with its type';
    return { itemsize, hasObject: false };
  }
  const fields = s[4];
  if (!isDict(fields) || fields.more || s[5] !== itemsize) return 'structured dtype fields not understood';
  let hasObject = false;
  for (const [, f] of fields.entries) {
    const sub = dtypeInfo(itemsOf(f)?.[0], depth + 1);
    if (typeof sub === 'string') return sub;
    hasObject ||= sub.hasObject;
  }
  return { itemsize, hasObject };
}
