import { Readable } from 'node:stream';
import { createGunzip, createInflateRaw } from 'node:zlib';
import type { Descriptor } from '../oci/schemas.js';
import { ByteReader } from './byte-reader.js';
import { PickleScanner, type PickleScanOptions, type PickleScanResult } from './pickle.js';
import { layerPath } from './statement.js';

/**
 * Finds the pickles in a model layer and scans them while streaming: a raw pickle, a zip
 * (torch.save's format: `<name>/data.pkl` entries), a tar (ModelPack's layer format) or any
 * of those gzipped. Memory stays at a chunk or two; weights are skipped, not buffered.
 */
export const PICKLE_EXTENSIONS = ['.pkl', '.pickle', '.pt', '.pth', '.bin', '.joblib', '.ckpt'];

const MODEL_ARCHIVE_PREFIXES = ['application/vnd.cncf.model.', 'application/vnd.kitops.modelkit.model', 'application/vnd.docker.ai.'];

const hasPickleExt = (name: string): boolean => PICKLE_EXTENSIONS.some((e) => name.toLowerCase().endsWith(e));

/** Which layers the scan must read: pickle-named files, pickle media types, and ModelPack tar layers. */
export function isPickleCandidate(layer: Descriptor): boolean {
  const path = layerPath(layer.annotations);
  if (path !== undefined && hasPickleExt(path)) return true;
  const mt = layer.mediaType.toLowerCase();
  if (mt.includes('pickle') || mt.includes('pytorch') || mt.includes('joblib')) return true;
  // Archives of model files (ModelPack, KitOps, Docker model artifacts) may hold pickles anywhere inside.
  const modelArchive = MODEL_ARCHIVE_PREFIXES.some((p) => mt.startsWith(p));
  return modelArchive && /\.tar(\+gzip|\+zstd|\.gz)?$/.test(mt);
}

export async function scanModelLayer(stream: AsyncIterable<Uint8Array>, where: string, opts: PickleScanOptions = {}): Promise<PickleScanResult> {
  const scanner = new PickleScanner(opts);
  const problems: string[] = [];
  try {
    await scanAny(ByteReader.from(stream), where, scanner, 0);
  } catch (e) {
    problems.push(`${where}: ${(e as Error).message}`);
  }
  const r = scanner.result();
  return { ...r, problems: [...r.problems, ...problems] };
}

async function scanAny(r: ByteReader, where: string, s: PickleScanner, depth: number): Promise<void> {
  if (depth > 3) throw new Error('archives nested too deep');
  const head = await r.peek(512);
  if (head.length === 0) return;
  if (head[0] === 0x1f && head[1] === 0x8b) return scanAny(ByteReader.from(Readable.from(drain(r)).pipe(createGunzip())), where, s, depth + 1);
  if (head.length >= 4 && head.readUInt32LE(0) === 0x04034b50) return scanZip(r, where, s);
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) throw new Error('zstd-compressed content cannot be scanned here; use tar or tar+gzip');
  if (head.length >= 262 && head.subarray(257, 262).toString('latin1') === 'ustar') return scanTar(r, where, s, depth);
  await s.scanStream(r, where);
}

async function* drain(r: ByteReader): AsyncGenerator<Buffer> {
  for (;;) {
    const c = await r.chunk(1 << 20);
    if (c === null) return;
    yield c;
  }
}

/** ZIP local headers in order (APPNOTE 4.3.7); the central directory ends the walk. */
async function scanZip(r: ByteReader, where: string, s: PickleScanner): Promise<void> {
  for (;;) {
    if (await r.atEnd()) return;
    const sig = (await r.peek(4)).readUInt32LE(0);
    if (sig === 0x02014b50 || sig === 0x06054b50 || sig === 0x06064b50) return;
    if (sig !== 0x04034b50) throw new Error('zip: bad local header');
    const h = await r.bytes(30);
    const flags = h.readUInt16LE(6);
    const method = h.readUInt16LE(8);
    let csize = h.readUInt32LE(18);
    const nameLen = h.readUInt16LE(26);
    const extraLen = h.readUInt16LE(28);
    const name = (await r.bytes(nameLen)).toString('utf8');
    const extra = await r.bytes(extraLen);
    if (csize === 0xffffffff) csize = zip64Size(extra, h.readUInt32LE(22) === 0xffffffff);
    if (flags & 0x08 && csize === 0) throw new Error(`zip: entry ${name} has no size (data descriptor); cannot stream it`);
    if (flags & 0x01) throw new Error(`zip: entry ${name} is encrypted`);
    const entry = `${where}:${name}`;
    if (!name.endsWith('.pkl')) {
      await r.skip(csize);
    } else {
      const { reader, rest } = r.sub(csize);
      if (method === 0) await s.scanStream(reader, entry);
      else if (method === 8) await s.scanStream(ByteReader.from(Readable.from(drain(reader)).pipe(createInflateRaw())), entry);
      else throw new Error(`zip: entry ${name} uses compression method ${method}`);
      await rest();
    }
    if (flags & 0x08) await r.skip((await r.peek(4)).readUInt32LE(0) === 0x08074b50 ? 16 : 12);
  }
}

/** ZIP64 extended information (APPNOTE 4.5.3): uncompressed size first when it overflowed too. */
function zip64Size(extra: Buffer, usizeOverflow: boolean): number {
  for (let i = 0; i + 4 <= extra.length; ) {
    const id = extra.readUInt16LE(i);
    const len = extra.readUInt16LE(i + 2);
    if (id === 0x0001) {
      const off = i + 4 + (usizeOverflow ? 8 : 0);
      return Number(extra.readBigUInt64LE(off));
    }
    i += 4 + len;
  }
  throw new Error('zip: ZIP64 size missing');
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
    if ((type === '0' || type === '\0' || type === '7') && hasPickleExt(name)) {
      const { reader, rest } = r.sub(size);
      await scanAny(reader, `${where}:${name}`, s, depth + 1);
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
