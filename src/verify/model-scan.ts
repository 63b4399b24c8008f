import type { Descriptor } from '../oci/schemas.js';
import { ByteReader } from './byte-reader.js';
import { DecompressError, decompress, detectContainer } from './decompress.js';
import { NPY_MAGIC, scanNpy } from './npy.js';
import { PickleScanner, type PickleScanOptions, type PickleScanResult } from './pickle.js';
import { checkSafetensors } from './safetensors.js';
import { layerPath } from './statement.js';
import { walkZip } from './zip.js';

/**
 * Scans a model layer while streaming, whatever holds the model: a pickle stream (raw, joblib,
 * legacy torch), a zip (torch.save, NumPy's .npz) read by its central directory, a .npy array, a
 * safetensors file, a tar (ModelPack's layer format), or any of these in joblib's zlib, gzip, bz2,
 * lzma or xz container. Memory stays at a chunk or two plus the scanner's small values; weights
 * are skipped, never buffered. Anything the scan cannot classify is a problem, never a pass.
 */
export const PICKLE_EXTENSIONS = ['.pkl', '.pickle', '.pt', '.pth', '.bin', '.joblib', '.ckpt', '.npy', '.npz', '.safetensors'];
/** joblib picks its compressor from these suffixes (`model.joblib.xz`). */
const COMPRESSED_SUFFIX = /\.(z|gz|bz2|lzma|xz)$/i;
/** Members of torch's oldest format, a tar (torch/serialization.py legacy_load). */
const TORCH_TAR_MEMBERS = new Set(['pickle', 'sys_info', 'storages', 'tensors']);
const MODEL_ARCHIVE_PREFIXES = ['application/vnd.cncf.model.', 'application/vnd.kitops.modelkit.model', 'application/vnd.docker.ai.'];
const MAX_DEPTH = 4;

export const hasModelExt = (name: string): boolean => {
  const base = name.toLowerCase().replace(COMPRESSED_SUFFIX, '');
  return PICKLE_EXTENSIONS.some((e) => base.endsWith(e));
};

/** Which layers the scan must read: model-file names, pickle/torch/joblib/numpy/safetensors media types, model archives. */
export function isPickleCandidate(layer: Descriptor): boolean {
  const path = layerPath(layer.annotations);
  if (path !== undefined && hasModelExt(path)) return true;
  const mt = layer.mediaType.toLowerCase();
  if (['pickle', 'pytorch', 'joblib', 'safetensors', 'numpy'].some((w) => mt.includes(w))) return true;
  // Archives of model files (ModelPack, KitOps, Docker model artifacts) may hold pickles anywhere inside.
  const modelArchive = MODEL_ARCHIVE_PREFIXES.some((p) => mt.startsWith(p));
  return modelArchive && /\.tar(\+gzip|\+zstd|\.gz)?$/.test(mt);
}

/** A failure to read the layer (the upstream reset, the store is away): not a finding about the file. */
class SourceFailure extends Error {
  constructor(override readonly cause: unknown) {
    super((cause as Error)?.message ?? String(cause));
  }
}

/** The layer's bytes, with the source's own failures told apart from what the scanner finds in them. */
async function* tagged(stream: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  const it = stream[Symbol.asyncIterator]();
  try {
    for (;;) {
      let r: IteratorResult<Uint8Array>;
      try {
        r = await it.next();
      } catch (e) {
        throw new SourceFailure(e);
      }
      if (r.done) return;
      yield r.value;
    }
  } finally {
    await it.return?.();
  }
}

/**
 * Scans one layer. What is wrong with the file is returned as problems (a deny); a failure to read it
 * (the source's error) is thrown as it came, so the gate can report an unavailable upstream or store
 * instead of judging a file it could not see.
 */
export async function scanModelLayer(stream: AsyncIterable<Uint8Array>, where: string, opts: PickleScanOptions = {}): Promise<PickleScanResult> {
  const scanner = new PickleScanner(opts);
  const problems: string[] = [];
  try {
    await scanAny(ByteReader.from(tagged(stream)), where, scanner, 0);
  } catch (e) {
    if (e instanceof SourceFailure) throw e.cause;
    const msg = (e as Error).message;
    problems.push(msg.startsWith(where) ? msg : `${where}: ${msg}`);
  }
  const r = scanner.result();
  return { ...r, problems: [...r.problems, ...problems] };
}

async function scanAny(r: ByteReader, where: string, s: PickleScanner, depth: number): Promise<void> {
  if (depth > MAX_DEPTH) throw new Error('archives nested too deep');
  const head = await r.peek(512);
  if (head.length === 0) return;
  if (head.length >= 4 && head.readUInt32LE(0) === 0x04034b50) return walkZip(r, (name, content) => scanMember(content, `${where}:${name}`, name, s, depth));
  if (head.subarray(0, 6).equals(NPY_MAGIC)) return scanNpy(r, where, s);
  if (head.length >= 262 && head.subarray(257, 262).toString('latin1') === 'ustar') return scanTar(r, where, s, depth);
  const container = detectContainer(head);
  if (container !== undefined) {
    const inner = ByteReader.from(decompress(container, r, where));
    await scanAny(inner, where, s, depth + 1);
    while ((await inner.chunk(1 << 20)) !== null); // the whole container: a bomb or corrupt tail is found too
    return;
  }
  if (where.toLowerCase().endsWith('.safetensors') || looksLikeSafetensors(head)) {
    const problem = await checkSafetensors(r);
    if (problem) s.problem(`${where}: ${problem}`);
    return;
  }
  await s.scanStream(r, where);
}

const looksLikeSafetensors = (head: Buffer): boolean => head.length >= 9 && head[8] === 0x7b && head.readBigUInt64LE(0) < 100_000_000n;

/** A pickle protocol 2-5 header (torch.load and pickle.load read files by any name). */
const looksLikePickle = (head: Buffer): boolean => head[0] === 0x80 && head[1]! >= 2 && head[1]! <= 5 && (head[1]! < 4 || head[2] === 0x95);

/**
 * An entry of a zip or a tar: scanned when a loader would read it as a model file: by name (.pkl
 * inside torch.save's zip, .npy inside .npz, model-file extensions, torch's tar members) or by its
 * first bytes (NumPy's magic, which np.load honours under any name; a pickle or zip header). Other
 * entries (torch's raw storages, text) are skipped.
 */
async function scanMember(content: ByteReader, where: string, name: string, s: PickleScanner, depth: number): Promise<void> {
  const lower = name.toLowerCase();
  const base = lower.slice(lower.lastIndexOf('/') + 1);
  const head = await content.peek(8);
  if (lower.endsWith('.pkl') || lower.endsWith('.pickle') || TORCH_TAR_MEMBERS.has(base)) return s.scanStream(content, where);
  if (lower.endsWith('.npy') || head.subarray(0, 6).equals(NPY_MAGIC)) return scanNpy(content, where, s);
  if (hasModelExt(name) || looksLikePickle(head) || (head.length >= 4 && head.readUInt32LE(0) === 0x04034b50)) return scanAny(content, where, s, depth + 1);
}

/** POSIX ustar with GNU long names and pax `path` records. */
async function scanTar(r: ByteReader, where: string, s: PickleScanner, depth: number): Promise<void> {
  let longName: string | undefined;
  for (;;) {
    if (await r.atEnd()) return;
    const h = await r.bytes(512);
    if (h.every((b) => b === 0)) return;
    const size = tarSize(h.subarray(124, 136));
    const type = String.fromCharCode(h[156]!);
    const prefix = cstr(h.subarray(345, 500));
    const name = longName ?? (prefix ? `${prefix}/${cstr(h.subarray(0, 100))}` : cstr(h.subarray(0, 100)));
    longName = undefined;
    const padded = Math.ceil(size / 512) * 512;
    if (type === 'L' || type === 'x') {
      if (size > 64 * 1024) throw new Error('tar: header record too large');
      const data = (await r.bytes(padded)).subarray(0, size).toString('utf8');
      if (type === 'L') longName = data.replace(/\0+$/, '');
      else longName = /(?:^|\n)\d+ path=([^\n]*)\n/.exec(data)?.[1];
      continue;
    }
    if (type === '0' || type === '\0' || type === '7') {
      const { reader, rest } = r.sub(size);
      await scanMember(reader, `${where}:${name}`, name, s, depth);
      await rest();
      await r.skip(padded - size);
    } else await r.skip(padded);
  }
}

function tarSize(f: Buffer): number {
  if (f[0]! & 0x80) {
    let v = 0;
    for (let i = 1; i < f.length; i++) v = v * 256 + f[i]!;
    return v;
  }
  const t = cstr(f).trim();
  return t === '' ? 0 : Number.parseInt(t, 8);
}

const cstr = (b: Buffer): string => {
  const z = b.indexOf(0);
  return b.subarray(0, z === -1 ? b.length : z).toString('utf8');
};

export { DecompressError };
