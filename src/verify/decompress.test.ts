import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ByteReader } from './byte-reader.js';
import { decompress, detectContainer } from './decompress.js';

/**
 * The decoders against Python's own compressors (the ones joblib uses): every container and
 * preset, data that compresses well and data that does not, streams one after another, and the
 * damaged variants a decoder must refuse. Inputs arrive in 333-byte chunks.
 */
const PY = String.raw`
import bz2, gzip, json, lzma, os, random, sys, zlib
random.seed(7)
text = b"".join(b"row %d,%f,%s\n" % (i, random.random(), b"abc" * (i % 5)) for i in range(20000))
noise = os.urandom(70000)
zeros = bytes(3 << 20)
out = []
def add(name, kind, data, plain):
    out.append({"name": name, "kind": kind, "data": data.hex(), "sha": __import__("hashlib").sha256(plain).hexdigest(), "size": len(plain)})
for label, plain in (("text", text), ("noise", noise), ("zeros", zeros), ("empty", b"")):
    add(f"zlib-{label}", "zlib", zlib.compress(plain, 6), plain)
    add(f"gzip-{label}", "gzip", gzip.compress(plain), plain)
    add(f"bz2-{label}", "bz2", bz2.compress(plain, 9), plain)
    for preset in (0, 6, 9 | lzma.PRESET_EXTREME):
        add(f"lzma-{label}-{preset}", "lzma", lzma.compress(plain, format=lzma.FORMAT_ALONE, preset=preset), plain)
        add(f"xz-{label}-{preset}", "xz", lzma.compress(plain, format=lzma.FORMAT_XZ, preset=preset), plain)
add("xz-crc32", "xz", lzma.compress(text, check=lzma.CHECK_CRC32), text)
add("xz-sha256", "xz", lzma.compress(text, check=lzma.CHECK_SHA256), text)
add("xz-two-streams", "xz", lzma.compress(text[:5000]) + bytes(8) + lzma.compress(text[5000:]), text)
add("gzip-two-members", "gzip", gzip.compress(text[:7000]) + gzip.compress(text[7000:]), text)
add("zlib-two-streams", "zlib", zlib.compress(text[:7000]) + zlib.compress(text[7000:]), text)
add("bz2-two-streams", "bz2", bz2.compress(text[:7000]) + bz2.compress(text[7000:]), text)
json.dump(out, sys.stdout)
`;
interface Case {
  name: string;
  kind: 'zlib' | 'gzip' | 'bz2' | 'lzma' | 'xz';
  data: string;
  sha: string;
  size: number;
}
const CASES = JSON.parse(execFileSync('/usr/bin/python3', ['-c', PY], { maxBuffer: 256 << 20 }).toString()) as Case[];

const reader = (b: Buffer): ByteReader => ByteReader.from(Readable.from(Array.from({ length: Math.ceil(b.length / 333) }, (_, i) => b.subarray(i * 333, i * 333 + 333))));
async function inflate(kind: Case['kind'], b: Buffer): Promise<{ sha: string; size: number }> {
  const h = createHash('sha256');
  let size = 0;
  for await (const c of decompress(kind, reader(b), 'x', { ratio: 1 << 20, slack: 64 << 20 })) {
    h.update(c);
    size += c.length;
  }
  return { sha: h.digest('hex'), size };
}

describe('decompression of joblib containers', () => {
  it.each(CASES.map((c) => [c.name, c] as const))('%s decodes to what Python compressed', async (_n, c) => {
    const b = Buffer.from(c.data, 'hex');
    if (c.size > 0 || c.kind !== 'zlib') expect(detectContainer(b)).toBe(c.kind);
    expect(await inflate(c.kind, b)).toEqual({ sha: c.sha, size: c.size });
  });
  it.each(CASES.filter((c) => c.name.endsWith('-text') || c.name.endsWith('text-6')).map((c) => [c.name, c] as const))('%s: truncated, corrupted or followed by garbage is refused', async (_n, c) => {
    const b = Buffer.from(c.data, 'hex');
    await expect(inflate(c.kind, b.subarray(0, b.length - 7))).rejects.toThrow();
    await expect(inflate(c.kind, Buffer.concat([b, Buffer.from('garbage!')]))).rejects.toThrow();
    const flipped = Buffer.from(b);
    flipped[Math.floor(b.length / 2)]! ^= 0x55;
    const r = await inflate(c.kind, flipped).catch((e: Error) => e);
    // A flipped bit is either refused or (bz2 and deflate have no per-byte check inside a block) changes the output.
    if (!(r instanceof Error)) expect(r.sha).not.toBe(c.sha);
  });
  it('a decompression bomb stops at the ratio cap', async () => {
    const zeros = CASES.find((c) => c.name === 'xz-zeros-6')!;
    const out = decompress('xz', reader(Buffer.from(zeros.data, 'hex')), 'bomb', { ratio: 100, slack: 1 << 20 });
    await expect((async () => {
      for await (const _ of out);
    })()).rejects.toThrow(/beyond 100:1/);
  });
});
