import { execFileSync } from 'node:child_process';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ByteReader } from './byte-reader.js';
import { walkZip } from './zip.js';

/**
 * Zips as Python's zipfile writes them, seekable (sizes in the local header) and not (data
 * descriptors, as torch.save's miniz does), with ZIP64 records, deflate, and entries whose data
 * contains descriptor signatures that are not descriptors.
 */
const PY = String.raw`
import io, json, sys, zipfile, zlib
class Unseekable(io.RawIOBase):
    def __init__(self): self.b = io.BytesIO()
    def writable(self): return True
    def write(self, d): return self.b.write(d)
    def tell(self): return self.b.tell()
    def seekable(self): return False
tricky = b"PK\x07\x08" + b"\x00" * 12 + b"PK\x07\x08\x01\x02\x03\x04\x05\x00\x00\x00" + bytes(range(256)) * 50
out = {}
for name, seekable, method, z64 in (("plain", True, zipfile.ZIP_STORED, False), ("descriptors", False, zipfile.ZIP_STORED, False), ("descriptors-deflate", False, zipfile.ZIP_DEFLATED, False), ("zip64", True, zipfile.ZIP_STORED, True), ("zip64-descriptors", False, zipfile.ZIP_DEFLATED, True)):
    f = io.BytesIO() if seekable else Unseekable()
    with zipfile.ZipFile(f, "w", method) as z:
        for n, d in (("a/tricky.bin", tricky), ("a/empty", b""), ("a/text.txt", b"hello " * 1000)):
            with z.open(n, "w", force_zip64=z64) as w:
                w.write(d)
    out[name] = (f.getvalue() if seekable else f.b.getvalue()).hex()
json.dump(out, sys.stdout)
`;
const ZIPS = JSON.parse(execFileSync('/usr/bin/python3', ['-c', PY]).toString()) as Record<string, string>;
const chunks = (b: Buffer): Readable => Readable.from(Array.from({ length: Math.ceil(b.length / 511) }, (_, i) => b.subarray(i * 511, i * 511 + 511)));

async function entries(b: Buffer): Promise<Record<string, number>> {
  const seen: Record<string, number> = {};
  await walkZip(ByteReader.from(chunks(b)), async (name, content) => {
    let n = 0;
    for (let c = await content.chunk(4096); c !== null; c = await content.chunk(4096)) n += c.length;
    seen[name] = n;
  });
  return seen;
}

describe('zip by central directory', () => {
  it.each(Object.keys(ZIPS))('%s: every entry, with its exact size', async (name) => {
    expect(await entries(Buffer.from(ZIPS[name]!, 'hex'))).toEqual({ 'a/tricky.bin': 28 + 12800, 'a/empty': 0, 'a/text.txt': 6000 });
  });
  it('a byte appended after the end record, or a changed central directory, is refused', async () => {
    const b = Buffer.from(ZIPS.descriptors!, 'hex');
    await expect(entries(Buffer.concat([b, Buffer.from([0])]))).rejects.toThrow(/bytes after the end of the archive/);
    const cd = b.indexOf(Buffer.from('PK\x01\x02', 'latin1'));
    const renamed = Buffer.from(b);
    renamed[cd + 46] = 'b'.charCodeAt(0); // a/tricky.bin -> b/tricky.bin in the central directory only
    await expect(entries(renamed)).rejects.toThrow(/a\/tricky\.bin in its local header and b\/tricky\.bin in the central directory/);
  });
});
