import { crc32 } from 'node:zlib';
import type { ByteReader } from './byte-reader.js';
import { IN_MARGIN, LzmaDecoder, LzmaError, decodeProps } from './lzma.js';

/**
 * The two LZMA containers joblib writes (Python's lzma module): the .lzma "alone" format
 * (FORMAT_ALONE: properties, dictionary size, uncompressed size or -1, then one LZMA stream) and
 * .xz (FORMAT_XZ: stream header, blocks of LZMA2 chunks, index, footer; tukaani.org's xz file
 * format 1.2.1). Decoded as streams with lzma.ts; headers, the index and the footer are checked
 * against what was decoded. Block checks (CRC64, SHA-256) are skipped: a mismatch makes Python's
 * own reader fail, it never changes the bytes the scan sees. Only the LZMA2 filter is accepted
 * (what Python writes by default); other filter chains are denied.
 */
const XZ_MAGIC = Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]);
const CHECK_SIZE = [0, 4, 4, 4, 8, 8, 8, 16, 16, 16, 32, 32, 32, 64, 64, 64];
const MAX_BLOCKS = 1 << 20;

/** .lzma streams, one after another (joblib's reader goes on into a following stream). */
export async function* unlzma(r: ByteReader, label: string): AsyncGenerator<Buffer> {
  for (;;) {
    const h = await r.bytes(13);
    const dict = h.readUInt32LE(1);
    const size = h.readBigUInt64LE(5);
    const d = new LzmaDecoder(Math.max(dict, 4096));
    d.resetState(decodeProps(h[0]!));
    let left = size === 0xffffffffffffffffn ? undefined : Number(size);
    let buf = Buffer.from(await r.bytes(5));
    let at = d.initRange(buf, 0);
    let final = false;
    for (;;) {
      const before = d.total;
      at = d.decode(buf, at, final, left);
      if (left !== undefined) left -= d.total - before;
      const out = d.take();
      if (out.length > 0) yield out;
      if (d.ended || left === 0) break;
      if (!final && buf.length - at < IN_MARGIN) {
        const c = await r.chunk(64 << 10);
        if (c === null) final = true;
        else {
          buf = Buffer.concat([buf.subarray(at), c]);
          at = 0;
        }
      }
    }
    if (left === 0 && !d.ended && !d.rangeFinished) throw new LzmaError(`${label}: lzma stream longer than its declared size`);
    r.unread(buf.subarray(at));
    if (await r.atEnd()) return;
    const next = await r.peek(2);
    if (next[0] !== 0x5d || next[1] !== 0x00) throw new LzmaError(`${label}: bytes after the lzma stream at offset ${r.pos} are not another lzma stream`);
  }
}

/** .xz streams, with the zero padding the format allows between and after them. */
export async function* unxz(r: ByteReader, label: string): AsyncGenerator<Buffer> {
  for (;;) {
    yield* xzStream(r, label);
    for (;;) {
      const p = await r.peek(4);
      if (p.length === 4 && p.readUInt32LE(0) === 0) await r.skip(4);
      else break;
    }
    if (await r.atEnd()) return;
    if (!(await r.peek(6)).equals(XZ_MAGIC)) throw new LzmaError(`${label}: bytes after the xz stream at offset ${r.pos} are not another xz stream`);
  }
}

async function* xzStream(r: ByteReader, label: string): AsyncGenerator<Buffer> {
  const bad = (what: string): never => {
    throw new LzmaError(`${label}: xz ${what}`);
  };
  const h = await r.bytes(12);
  if (!h.subarray(0, 6).equals(XZ_MAGIC)) bad('magic missing');
  const flags = Buffer.from(h.subarray(6, 8));
  if (flags[0] !== 0 || (flags[1]! & 0xf0) !== 0 || crc32(flags) !== h.readUInt32LE(8)) bad('stream header is corrupt');
  const check = flags[1]! & 0x0f;
  if (![0, 1, 4, 10].includes(check)) bad(`check type ${check} is not supported`);
  const records: [number, number][] = [];
  for (;;) {
    const first = (await r.peek(1))[0];
    if (first === undefined) bad('stream ends before its index');
    if (first === 0) break;
    if (records.length >= MAX_BLOCKS) bad('has too many blocks');
    const hsize = (first! + 1) * 4;
    const hdr = Buffer.from(await r.bytes(hsize));
    if (crc32(hdr.subarray(0, hsize - 4)) !== hdr.readUInt32LE(hsize - 4)) bad('block header is corrupt');
    const bf = hdr[1]!;
    if (bf & 0x3c) bad('block header has reserved flags');
    const pos = { i: 2 };
    const csize = bf & 0x40 ? varint(hdr, pos) : undefined;
    const usize = bf & 0x80 ? varint(hdr, pos) : undefined;
    const filters: [number, Buffer][] = [];
    for (let f = 0; f < (bf & 3) + 1; f++) {
      const id = varint(hdr, pos);
      const n = varint(hdr, pos);
      filters.push([id, hdr.subarray(pos.i, pos.i + n)]);
      pos.i += n;
    }
    if (pos.i > hsize - 4 || hdr.subarray(pos.i, hsize - 4).some((b) => b !== 0)) bad('block header is malformed');
    if (filters.length !== 1 || filters[0]![0] !== 0x21 || filters[0]![1].length !== 1) bad('block uses filters other than LZMA2 alone');
    const bits = filters[0]![1][0]! & 0x3f;
    if (bits > 40) bad('LZMA2 dictionary size is invalid');
    const dict = bits === 40 ? 0xffffffff : (2 | (bits & 1)) * 2 ** (bits / 2 + 11 - (bits & 1) / 2);
    const start = r.pos;
    let produced = 0;
    for await (const out of lzma2(r, Math.floor(dict), label)) {
      produced += out.length;
      yield out;
    }
    const compressed = r.pos - start;
    if ((csize !== undefined && csize !== compressed) || (usize !== undefined && usize !== produced)) bad('block sizes disagree with its header');
    const pad = (4 - (compressed % 4)) % 4;
    if ((await r.bytes(pad)).some((b) => b !== 0)) bad('block padding is not zero');
    await r.skip(CHECK_SIZE[check]!);
    records.push([hsize + compressed + CHECK_SIZE[check]!, produced]);
  }
  // Index (its bytes kept for its CRC32: a few per block) and footer.
  const idx: number[] = [];
  const byte = async (): Promise<number> => {
    const b = (await r.bytes(1))[0]!;
    idx.push(b);
    return b;
  };
  const readVarint = async (): Promise<number> => {
    let v = 0;
    for (let i = 0; i < 9; i++) {
      const b = await byte();
      v += (b & 0x7f) * 2 ** (7 * i);
      if (!(b & 0x80)) {
        if (i > 0 && b === 0) bad('index has a non-minimal integer');
        return v;
      }
    }
    return bad('index integer too long');
  };
  await byte();
  const n = await readVarint();
  if (n !== records.length) bad(`index lists ${n} blocks, the stream has ${records.length}`);
  for (const [unpadded, usize] of records) if ((await readVarint()) !== unpadded || (await readVarint()) !== usize) bad('index disagrees with the blocks');
  while (idx.length % 4 !== 0) if ((await byte()) !== 0) bad('index padding is not zero');
  const crc = (await r.bytes(4)).readUInt32LE(0);
  if (crc32(Buffer.from(idx)) !== crc) bad('index is corrupt');
  const foot = Buffer.from(await r.bytes(12));
  if (crc32(foot.subarray(4, 10)) !== foot.readUInt32LE(0) || (foot.readUInt32LE(4) + 1) * 4 !== idx.length + 4 || !foot.subarray(8, 10).equals(flags) || foot.subarray(10).toString('latin1') !== 'YZ') bad('stream footer is corrupt');
}

function varint(b: Buffer, pos: { i: number }): number {
  let v = 0;
  for (let k = 0; k < 9; k++) {
    if (pos.i >= b.length) throw new LzmaError('xz: integer runs past its header');
    const x = b[pos.i++]!;
    v += (x & 0x7f) * 2 ** (7 * k);
    if (!(x & 0x80)) return v;
  }
  throw new LzmaError('xz: integer too long');
}

/** LZMA2 chunks up to the end marker (control byte 0). A packed chunk is at most 64 KiB. */
async function* lzma2(r: ByteReader, dict: number, label: string): AsyncGenerator<Buffer> {
  const d = new LzmaDecoder(Math.max(dict, 4096));
  let needDict = true;
  let needProps = true;
  for (;;) {
    const c = (await r.bytes(1))[0]!;
    if (c === 0) return;
    if (c === 1 || c === 2) {
      if (c === 1) {
        d.resetDict();
        needDict = false;
      } else if (needDict) throw new LzmaError(`${label}: lzma2 chunk without a dictionary reset`);
      for (let left = (await r.bytes(2)).readUInt16BE(0) + 1; left > 0; ) {
        const n = Math.min(left, d.slice);
        d.putRaw(await r.bytes(n));
        left -= n;
        yield d.take();
      }
      continue;
    }
    if (c < 0x80) throw new LzmaError(`${label}: lzma2 control byte ${c} is invalid`);
    const sizes = await r.bytes(4);
    let left = (c & 0x1f) * 65536 + sizes.readUInt16BE(0) + 1;
    const packed = sizes.readUInt16BE(2) + 1;
    const mode = (c >> 5) & 3;
    if (mode === 3) {
      d.resetDict();
      needDict = false;
    } else if (needDict) throw new LzmaError(`${label}: lzma2 chunk without a dictionary reset`);
    if (mode >= 2) {
      const props = decodeProps((await r.bytes(1))[0]!);
      if (props.lc + props.lp > 4) throw new LzmaError(`${label}: lzma2 properties with lc + lp > 4`);
      d.resetState(props);
      needProps = false;
    } else if (needProps) throw new LzmaError(`${label}: lzma2 chunk without properties`);
    else if (mode === 1) d.resetState();
    const input = Buffer.from(await r.bytes(packed));
    if (packed < 5) throw new LzmaError(`${label}: lzma2 chunk too short`);
    let at = d.initRange(input, 0);
    while (left > 0) {
      const before = d.total;
      at = d.decode(input, at, true, left);
      left -= d.total - before;
      yield d.take();
      if (d.ended) throw new LzmaError(`${label}: lzma2 chunk holds an end marker`);
    }
    if (at !== input.length || !d.rangeFinished) throw new LzmaError(`${label}: lzma2 chunk sizes disagree with its data`);
  }
}
