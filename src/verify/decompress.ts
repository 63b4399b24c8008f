import { createGunzip, createInflate, createInflateRaw } from 'node:zlib';
import type { Transform } from 'node:stream';
import type { ByteReader } from './byte-reader.js';
import { bunzip2 } from './bzip2.js';
import { unxz, unlzma } from './xz.js';

/**
 * joblib's compressed containers (joblib/compressor.py): zlib, gzip, bz2, lzma (the .lzma "alone"
 * format) and xz, told apart by their first bytes as joblib itself does. Each is decompressed as a
 * stream, never into memory, under a size and ratio cap; a stream that ends early, is corrupt or is
 * followed by bytes that are not another stream of the same kind is denied (joblib would either
 * fail or read on into them). zlib and gzip use Node's zlib; bz2, lzma and xz use the decoders in
 * bzip2.ts and xz.ts.
 */
export type Container = 'zlib' | 'gzip' | 'bz2' | 'lzma' | 'xz' | 'lz4' | 'zstd';

export function detectContainer(head: Buffer): Container | undefined {
  if (head.length >= 2 && head[0] === 0x78 && (head[0] * 256 + head[1]!) % 31 === 0) return 'zlib';
  if (head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.subarray(0, 3).toString('latin1') === 'BZh') return 'bz2';
  if (head[0] === 0x5d && head[1] === 0x00) return 'lzma';
  if (head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz';
  if (head.length >= 4 && head.readUInt32LE(0) === 0x184d2204) return 'lz4';
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  return undefined;
}

export interface DecompressLimits {
  /** Output may exceed the input by this factor... */
  readonly ratio: number;
  /** ...plus this many bytes (small inputs of zeros legitimately expand a lot). */
  readonly slack: number;
}

export const DEFAULT_DECOMPRESS_LIMITS: DecompressLimits = { ratio: 1024, slack: 64 << 20 };

export class DecompressError extends Error {}

export function decompress(kind: Container, r: ByteReader, label: string, limits: DecompressLimits = DEFAULT_DECOMPRESS_LIMITS): AsyncGenerator<Buffer> {
  const out = (() => {
    switch (kind) {
      case 'zlib':
        return zlibStreams(r, 'zlib', label);
      case 'gzip':
        return zlibStreams(r, 'gzip', label);
      case 'bz2':
        return bunzip2(r, label);
      case 'lzma':
        return unlzma(r, label);
      case 'xz':
        return unxz(r, label);
      default:
        throw new DecompressError(`${label}: ${kind}-compressed content cannot be scanned (joblib's zlib, gzip, bz2, lzma and xz can)`);
    }
  })();
  return capped(out, r, label, limits);
}

async function* capped(src: AsyncGenerator<Buffer>, r: ByteReader, label: string, limits: DecompressLimits): AsyncGenerator<Buffer> {
  const start = r.pos;
  let produced = 0;
  for await (const c of src) {
    produced += c.length;
    if (produced > limits.slack + limits.ratio * (r.pos - start)) throw new DecompressError(`${label}: decompresses beyond ${limits.ratio}:1 (a decompression bomb?)`);
    yield c;
  }
}

/** Consecutive zlib or gzip streams (joblib's reader goes on with a new decompressor after each). */
async function* zlibStreams(r: ByteReader, kind: 'zlib' | 'gzip', label: string): AsyncGenerator<Buffer> {
  for (;;) {
    yield* nodeZlib(r, kind === 'zlib' ? createInflate() : createGunzip(), label, true);
    if (await r.atEnd()) return;
    if (detectContainer(await r.peek(2)) !== kind) throw new DecompressError(`${label}: bytes after the ${kind} stream at offset ${r.pos} are not another ${kind} stream`);
  }
}

/** Raw deflate (a zip entry): the caller bounds the input; bytes after the end of the stream are ignored, as readers do. */
export function inflateRawStream(r: ByteReader, label: string): AsyncGenerator<Buffer> {
  return nodeZlib(r, createInflateRaw(), label, false);
}

/**
 * Feeds a Node zlib transform from the reader one chunk at a time and yields what it produces, so
 * at most one chunk's expansion is held. At the end of the compressed stream the input it did not
 * consume goes back to the reader (`bytesWritten` counts what zlib consumed).
 */
async function* nodeZlib(r: ByteReader, z: Transform & { bytesWritten: number }, label: string, putBack: boolean): AsyncGenerator<Buffer> {
  const out: Buffer[] = [];
  let ended = false;
  let error: Error | undefined;
  let wake: (() => void) | undefined;
  const poke = (): void => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  z.on('data', (d: Buffer) => {
    out.push(d);
    poke();
  });
  z.on('end', () => {
    ended = true;
    poke();
  });
  z.on('error', (e: Error) => {
    error = e;
    poke();
  });
  const wait = (): Promise<void> => new Promise((res) => (wake = res));
  let fed = 0;
  let last: Buffer = Buffer.alloc(0);
  try {
    while (!ended && !error) {
      const c = await r.chunk(32 << 10);
      if (c === null) {
        z.end();
        while (!ended && !error) {
          await wait();
          while (out.length > 0) yield out.shift()!;
        }
        break;
      }
      fed += c.length;
      last = c;
      let written = false;
      z.write(c, () => {
        written = true;
        poke();
      });
      while (!written && !ended && !error) {
        await wait();
        while (out.length > 0) yield out.shift()!;
      }
      while (out.length > 0) yield out.shift()!;
    }
    while (out.length > 0) yield out.shift()!;
    if (error) throw new DecompressError(`${label}: corrupt compressed data (${(error as Error).message})`);
    if (!ended) throw new DecompressError(`${label}: compressed data ends early`);
    const left = fed - z.bytesWritten;
    if (putBack && left > 0) r.unread(last.subarray(last.length - left));
  } finally {
    z.destroy();
  }
}
