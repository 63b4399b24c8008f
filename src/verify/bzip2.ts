import type { ByteReader } from './byte-reader.js';

/**
 * A bzip2 decoder (for joblib's bz2 container), written from the format as bzip2 1.0 writes it:
 * 'BZh' + level, blocks (pi magic, CRC, origPtr, symbol map, Huffman groups and selectors, MTF and
 * RUNA/RUNB symbols, inverse BWT, then the initial run-length coding), an end-of-stream record
 * with the combined CRC, and possibly more streams after it. A block's compressed bits are decoded
 * in one go from a buffer that holds at least a whole block (bzip2 blocks cannot exceed ~1 MB
 * compressed); the block's output, which run-length coding can expand to ~46 MB, is produced in
 * slices while walking the BWT, so memory stays at a few MB. The npm options were either not
 * streaming or materialise a block's whole output as a JavaScript array (hundreds of MB for one
 * small crafted block).
 */
export class Bzip2Error extends Error {}

const BLOCK_MAGIC = 0x314159265359;
const END_MAGIC = 0x177245385090;
const MAX_BLOCK_INPUT = 1_100_000;
const SLICE = 1 << 16;
const MAX_CODE_LEN = 20;

const CRC_TABLE = (() => {
  const t = new Int32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i << 24;
    for (let k = 0; k < 8; k++) c = c & 0x80000000 ? (c << 1) ^ 0x04c11db7 : c << 1;
    t[i] = c | 0;
  }
  return t;
})();

class Bits {
  buf: Buffer = Buffer.alloc(0);
  pos = 0; // bit position in buf
  constructor(private readonly label: string) {}
  get bytePos(): number {
    return this.pos >>> 3;
  }
  read(n: number): number {
    let v = 0;
    for (let i = 0; i < n; i++) {
      const byte = this.pos >>> 3;
      if (byte >= this.buf.length) throw new Bzip2Error(`${this.label}: bz2 data ends early`);
      v = v * 2 + ((this.buf[byte]! >>> (7 - (this.pos & 7))) & 1);
      this.pos++;
    }
    return v;
  }
  bit(): number {
    const byte = this.pos >>> 3;
    if (byte >= this.buf.length) throw new Bzip2Error(`${this.label}: bz2 data ends early`);
    const b = (this.buf[byte]! >>> (7 - (this.pos & 7))) & 1;
    this.pos++;
    return b;
  }
  align(): void {
    this.pos = (this.pos + 7) & ~7;
  }
}

export async function* bunzip2(r: ByteReader, label: string): AsyncGenerator<Buffer> {
  const bits = new Bits(label);
  let eof = false;
  /** Keeps at least `n` bytes ahead of the read position in the buffer (fewer at the end of input). */
  const fill = async (n: number): Promise<void> => {
    const start = bits.bytePos;
    if (start > 0) {
      bits.buf = bits.buf.subarray(start);
      bits.pos -= start * 8;
    }
    const parts = [bits.buf];
    let have = bits.buf.length;
    while (!eof && have < n) {
      const c = await r.chunk(n - have);
      if (c === null) eof = true;
      else {
        parts.push(c);
        have += c.length;
      }
    }
    if (parts.length > 1) bits.buf = Buffer.concat(parts);
  };
  let tt = new Int32Array(0);
  for (;;) {
    await fill(4);
    if (bits.read(24) !== 0x425a68) throw new Bzip2Error(`${label}: bz2 stream header missing`);
    const level = bits.read(8) - 0x30;
    if (level < 1 || level > 9) throw new Bzip2Error(`${label}: bz2 block size is invalid`);
    const max = level * 100_000;
    if (tt.length < max) tt = new Int32Array(max);
    let combined = 0;
    for (;;) {
      await fill(MAX_BLOCK_INPUT);
      const magic = bits.read(48);
      if (magic === END_MAGIC) {
        if (bits.read(32) !== combined >>> 0) throw new Bzip2Error(`${label}: bz2 stream CRC mismatch`);
        bits.align();
        break;
      }
      if (magic !== BLOCK_MAGIC) throw new Bzip2Error(`${label}: bz2 block header missing`);
      const want = bits.read(32);
      const { count, origPtr } = readBlock(bits, tt, max, label);
      let crc = -1;
      for (const out of emitBlock(tt, count, origPtr)) {
        for (let i = 0; i < out.length; i++) crc = (crc << 8) ^ CRC_TABLE[(crc >>> 24) ^ out[i]!]!;
        yield out;
      }
      crc = ~crc >>> 0;
      if (crc !== want) throw new Bzip2Error(`${label}: bz2 block CRC mismatch`);
      combined = (((combined << 1) | (combined >>> 31)) ^ crc) >>> 0;
    }
    // Unread what is left after the stream's last byte, then look for another stream.
    await fill(0);
    r.unread(bits.buf.subarray(bits.bytePos));
    bits.buf = Buffer.alloc(0);
    bits.pos = 0;
    eof = false;
    if (await r.atEnd()) return;
    if ((await r.peek(3)).toString('latin1') !== 'BZh') throw new Bzip2Error(`${label}: bytes after the bz2 stream at offset ${r.pos} are not another bz2 stream`);
  }
}

/** Huffman + MTF + RUNA/RUNB decoding of one block into tt (the BWT's last column). */
function readBlock(bits: Bits, tt: Int32Array, max: number, label: string): { count: number; origPtr: number } {
  const bad = (what: string): never => {
    throw new Bzip2Error(`${label}: bz2 ${what}`);
  };
  if (bits.bit()) bad('randomised blocks are not supported');
  const origPtr = bits.read(24);
  const used = bits.read(16);
  const symbols: number[] = [];
  for (let i = 0; i < 16; i++) {
    if (!(used & (0x8000 >>> i))) continue;
    const k = bits.read(16);
    for (let j = 0; j < 16; j++) if (k & (0x8000 >>> j)) symbols.push(i * 16 + j);
  }
  if (symbols.length === 0) bad('block uses no symbols');
  const alpha = symbols.length + 2;
  const groups = bits.read(3);
  if (groups < 2 || groups > 6) bad('block has a bad number of Huffman groups');
  const nSelectors = bits.read(15);
  if (nSelectors === 0) bad('block has no selectors');
  const mtfGroups = Array.from({ length: groups }, (_, i) => i);
  const selectors = new Uint8Array(nSelectors);
  for (let i = 0; i < nSelectors; i++) {
    let j = 0;
    while (bits.bit()) if (++j >= groups) bad('selector out of range');
    const g = mtfGroups[j]!;
    mtfGroups.splice(j, 1);
    mtfGroups.unshift(g);
    selectors[i] = g;
  }
  // Canonical Huffman tables per group: limit/base/perm by code length.
  const tables = Array.from({ length: groups }, () => {
    const lens = new Uint8Array(alpha);
    let len = bits.read(5);
    for (let s = 0; s < alpha; s++) {
      for (;;) {
        if (len < 1 || len > MAX_CODE_LEN) bad('Huffman code length out of range');
        if (!bits.bit()) break;
        len += bits.bit() ? -1 : 1;
      }
      lens[s] = len;
    }
    let minLen = MAX_CODE_LEN;
    let maxLen = 0;
    for (const l of lens) {
      minLen = Math.min(minLen, l);
      maxLen = Math.max(maxLen, l);
    }
    const perm: number[] = [];
    for (let l = minLen; l <= maxLen; l++) for (let s = 0; s < alpha; s++) if (lens[s] === l) perm.push(s);
    const limit = new Int32Array(MAX_CODE_LEN + 2).fill(-1);
    const base = new Int32Array(MAX_CODE_LEN + 2);
    let code = 0;
    let idx = 0;
    for (let l = minLen; l <= maxLen; l++) {
      const n = lens.reduce((a, x) => a + (x === l ? 1 : 0), 0);
      base[l] = idx - code;
      code += n;
      idx += n;
      limit[l] = code - 1;
      code <<= 1;
    }
    return { minLen, maxLen, limit, base, perm };
  });
  // Symbols, 50 per selector.
  const mtf = Uint8Array.from(symbols);
  const counts = new Int32Array(256);
  let count = 0;
  let run = 0;
  let runBit = 1;
  let selector = 0;
  let left = 0;
  let table = tables[0]!;
  for (;;) {
    if (left === 0) {
      if (selector >= nSelectors) bad('ran out of selectors');
      table = tables[selectors[selector++]!]!;
      left = 50;
    }
    left--;
    // The next 24 bits at once (codes are at most 20 bits long); zeros past the end, caught below.
    const buf = bits.buf;
    const at = bits.pos >>> 3;
    const word = (((buf[at] ?? 0) << 24) | ((buf[at + 1] ?? 0) << 16) | ((buf[at + 2] ?? 0) << 8) | (buf[at + 3] ?? 0)) >>> 0;
    const next24 = (word << (bits.pos & 7)) >>> 8;
    let len = table.minLen;
    let code = next24 >>> (24 - len);
    while (len <= table.maxLen && code > table.limit[len]!) {
      len++;
      code = next24 >>> (24 - len);
    }
    if (len > table.maxLen) bad('bad Huffman code');
    bits.pos += len;
    if (bits.pos > buf.length * 8) throw new Bzip2Error(`${label}: bz2 data ends early`);
    const sym = table.perm[code + table.base[len]!];
    if (sym === undefined) bad('bad Huffman code');
    if (sym! <= 1) {
      // RUNA/RUNB: the run length of the front symbol, in bijective base 2.
      run += (sym! + 1) * runBit;
      runBit *= 2;
      if (run > max) bad('run longer than the block');
      continue;
    }
    if (run > 0) {
      const b = mtf[0]!;
      if (count + run > max) bad('block larger than its declared size');
      counts[b] = counts[b]! + run;
      tt.fill(b, count, count + run);
      count += run;
      run = 0;
      runBit = 1;
    }
    if (sym === alpha - 1) break;
    const i = sym! - 1;
    if (i >= mtf.length) bad('MTF index out of range');
    const b = mtf[i]!;
    if (i < 32) for (let k = i; k > 0; k--) mtf[k] = mtf[k - 1]!;
    else mtf.copyWithin(1, 0, i);
    mtf[0] = b;
    if (count >= max) bad('block larger than its declared size');
    counts[b] = counts[b]! + 1;
    tt[count++] = b;
  }
  if (origPtr >= count) bad('BWT origin outside the block');
  // Inverse BWT: link every position to its successor (high bits), keeping the byte (low 8 bits).
  const start = new Int32Array(256);
  for (let i = 0, sum = 0; i < 256; i++) {
    start[i] = sum;
    sum += counts[i]!;
  }
  for (let i = 0; i < count; i++) {
    const b = tt[i]! & 0xff;
    tt[start[b]!] = tt[start[b]!]! | (i << 8);
    start[b] = start[b]! + 1;
  }
  return { count, origPtr };
}

/** Walks the BWT and undoes the initial run-length coding (4 equal bytes, then a repeat count), in slices. */
function* emitBlock(tt: Int32Array, count: number, origPtr: number): Generator<Buffer> {
  let out = Buffer.allocUnsafe(SLICE);
  let o = 0;
  let pos = tt[origPtr]! >>> 8;
  let last = -1;
  let same = 0;
  for (let n = 0; n < count; n++) {
    const cur = tt[pos]!;
    const b = cur & 0xff;
    pos = cur >>> 8;
    if (same === 4) {
      for (let k = 0; k < b; k++) {
        out[o++] = last;
        if (o === SLICE) {
          yield out;
          out = Buffer.allocUnsafe(SLICE);
          o = 0;
        }
      }
      same = 0;
      last = -1;
      continue;
    }
    same = b === last ? same + 1 : 1;
    last = b;
    out[o++] = b;
    if (o === SLICE) {
      yield out;
      out = Buffer.allocUnsafe(SLICE);
      o = 0;
    }
  }
  if (o > 0) yield out.subarray(0, o);
}
