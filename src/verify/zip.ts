import { ByteReader } from './byte-reader.js';
import { inflateRawStream } from './decompress.js';

/**
 * A zip read as its readers read it, in one pass. PyTorch (miniz) and Python's zipfile find entries
 * through the central directory at the end; a scanner that trusts local headers can be shown one
 * archive while the loader reads another (an entry hidden inside the previous entry's declared
 * size, `data.pkl` renamed only in its local header, a second archive appended after the first).
 * So this walks the local headers in order, hands every entry's bytes to the caller while
 * streaming, then reads the central directory and denies the archive unless both agree exactly:
 * the same entries at the same offsets, with the same names, methods, flags, sizes and CRCs, no
 * gap or extra byte between entries, no duplicate names, and nothing after the end record.
 * Entries whose sizes follow their data in a data descriptor (bit 3, as torch.save writes them)
 * are normal: their end is the descriptor whose compressed-size field equals the bytes before it.
 */
const LOCAL = 0x04034b50;
const CENTRAL = 0x02014b50;
const EOCD = 0x06054b50;
const EOCD64 = 0x06064b50;
const LOCATOR64 = 0x07064b50;
const DESCRIPTOR = Buffer.from([0x50, 0x4b, 0x07, 0x08]);
const MAX_ENTRIES = 1 << 20;
const SIGNATURES = [LOCAL, CENTRAL, EOCD, EOCD64, LOCATOR64, 0x08074b50].map((s) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(s);
  return b;
});

interface Entry {
  offset: number;
  name: Buffer;
  flags: number;
  method: number;
  crc: number;
  csize: number;
  usize: number;
}

export type ZipEntryHandler = (name: string, content: ByteReader) => Promise<void>;

export class ZipError extends Error {}

export async function walkZip(r: ByteReader, onEntry: ZipEntryHandler): Promise<void> {
  const base = r.pos;
  const at = (): number => r.pos - base;
  const locals: Entry[] = [];
  for (;;) {
    const head = await r.peek(4);
    if (head.length < 4) throw new ZipError(`zip: ends at offset ${at()} without a central directory`);
    const sig = head.readUInt32LE(0);
    if (sig === CENTRAL || sig === EOCD) break;
    if (sig !== LOCAL) throw new ZipError(`zip: unexpected bytes at offset ${at()} (not a local header or the central directory)`);
    if (locals.length >= MAX_ENTRIES) throw new ZipError('zip: too many entries');
    locals.push(await readEntry(r, at(), onEntry));
  }
  const cdOffset = at();
  const central: Entry[] = [];
  while ((await r.peek(4)).readUInt32LE(0) === CENTRAL) {
    if (central.length >= MAX_ENTRIES) throw new ZipError('zip: too many entries');
    central.push(await readCentral(r));
  }
  const cdSize = at() - cdOffset;
  const end = await readEnd(r, at);
  if (!(await r.atEnd())) throw new ZipError(`zip: bytes after the end of the archive at offset ${at()} (a second archive?)`);

  const count = end.entries;
  if (count !== central.length || count !== locals.length) throw new ZipError(`zip: the end record lists ${count} entries, the central directory ${central.length}, the local headers ${locals.length}`);
  if (end.cdOffset !== cdOffset || end.cdSize !== cdSize) throw new ZipError('zip: the end record does not point at the central directory');
  const byOffset = new Map(locals.map((l) => [l.offset, l]));
  const names = new Set<string>();
  for (const c of central) {
    const name = c.name.toString('utf8');
    if (names.has(name)) throw new ZipError(`zip: duplicate entry ${name}`);
    names.add(name);
    const l = byOffset.get(c.offset);
    if (!l) throw new ZipError(`zip: central directory entry ${name} at offset ${c.offset} has no local header there (hidden inside another entry?)`);
    byOffset.delete(c.offset);
    if (!l.name.equals(c.name)) throw new ZipError(`zip: entry at offset ${c.offset} is ${l.name.toString('utf8')} in its local header and ${name} in the central directory`);
    if (l.method !== c.method || l.flags !== c.flags || l.crc !== c.crc || l.csize !== c.csize || l.usize !== c.usize)
      throw new ZipError(`zip: entry ${name}: local header and central directory disagree on method, flags, CRC or sizes`);
  }
}

async function readEntry(r: ByteReader, offset: number, onEntry: ZipEntryHandler): Promise<Entry> {
  const h = await r.bytes(30);
  const flags = h.readUInt16LE(6);
  const method = h.readUInt16LE(8);
  const name = Buffer.from(await r.bytes(h.readUInt16LE(26)));
  const extra = await r.bytes(h.readUInt16LE(28));
  const z64 = zip64Field(extra);
  const label = name.toString('utf8');
  if (flags & 0x01) throw new ZipError(`zip: entry ${label} is encrypted`);
  if (method !== 0 && method !== 8) throw new ZipError(`zip: entry ${label} uses compression method ${method} (only stored and deflate are read)`);
  const e: Entry = { offset, name, flags, method, crc: h.readUInt32LE(14), csize: h.readUInt32LE(18), usize: h.readUInt32LE(22) };
  if (z64) {
    // APPNOTE 4.5.3: in a local header the ZIP64 field holds both sizes.
    if (e.usize === 0xffffffff) e.usize = readU64(z64, 0);
    if (e.csize === 0xffffffff) e.csize = readU64(z64, 8);
  }
  const descriptor = (flags & 0x08) !== 0;
  const found = { crc: 0, csize: 0, usize: 0 };
  const compressed = descriptor ? ByteReader.from(untilDescriptor(r, z64 !== undefined, found, label)) : r.sub(e.csize).reader;
  const content = method === 0 ? compressed : ByteReader.from(inflateRawStream(compressed, label));
  let produced = 0;
  const counted = new ByteReader(async () => {
    const c = await content.chunk(1 << 20);
    if (c !== null) produced += c.length;
    return c;
  });
  await onEntry(label, counted);
  while ((await counted.chunk(1 << 20)) !== null);
  while ((await compressed.chunk(1 << 20)) !== null);
  if (descriptor) Object.assign(e, found);
  if (produced !== e.usize) throw new ZipError(`zip: entry ${label} holds ${produced} bytes, its headers say ${e.usize}`);
  return e;
}

/**
 * The compressed bytes of an entry whose sizes follow it: everything up to the data descriptor
 * (with its signature, as miniz and Python write it) whose compressed-size field equals the number
 * of bytes before it and that a header follows. Keeps a descriptor's length of look-ahead, never
 * the entry.
 */
async function* untilDescriptor(r: ByteReader, zip64: boolean, out: { crc: number; csize: number; usize: number }, label: string): AsyncGenerator<Buffer> {
  const dlen = zip64 ? 24 : 16;
  let emitted = 0;
  let pending = Buffer.alloc(0);
  for (;;) {
    for (let i = pending.indexOf(DESCRIPTOR); i !== -1 && i + dlen + 4 <= pending.length; i = pending.indexOf(DESCRIPTOR, i + 1)) {
      const csize = zip64 ? readU64(pending, i + 8) : pending.readUInt32LE(i + 8);
      const next = pending.readUInt32LE(i + dlen);
      // A descriptor is followed by the next entry or the central directory; data that merely looks
      // like one is passed over (and one crafted to fool this still fails the central directory check).
      if (csize !== emitted + i || (next !== LOCAL && next !== CENTRAL)) continue;
      out.crc = pending.readUInt32LE(i + 4);
      out.csize = csize;
      out.usize = zip64 ? readU64(pending, i + 16) : pending.readUInt32LE(i + 12);
      if (i > 0) yield pending.subarray(0, i);
      r.unread(pending.subarray(i + dlen));
      return;
    }
    const emit = Math.max(0, pending.length - (dlen + 3));
    if (emit > 0) {
      yield pending.subarray(0, emit);
      emitted += emit;
      pending = pending.subarray(emit);
    }
    const c = await r.chunk(1 << 20);
    if (c === null) throw new ZipError(`zip: entry ${label} has no data descriptor`);
    pending = Buffer.concat([pending, c]);
  }
}

async function readCentral(r: ByteReader): Promise<Entry> {
  const h = await r.bytes(46);
  const name = Buffer.from(await r.bytes(h.readUInt16LE(28)));
  const extra = await r.bytes(h.readUInt16LE(30));
  await r.skip(h.readUInt16LE(32)); // comment
  if (h.readUInt16LE(34) !== 0 && h.readUInt16LE(34) !== 0xffff) throw new ZipError('zip: multi-disk archives are not read');
  const e: Entry = { offset: h.readUInt32LE(42), name, flags: h.readUInt16LE(8), method: h.readUInt16LE(10), crc: h.readUInt32LE(16), csize: h.readUInt32LE(20), usize: h.readUInt32LE(24) };
  // APPNOTE 4.5.3: the ZIP64 field holds, in order, only the values that overflowed.
  const z64 = zip64Field(extra);
  if (z64) {
    let i = 0;
    for (const k of ['usize', 'csize', 'offset'] as const)
      if (e[k] === 0xffffffff) {
        e[k] = readU64(z64, i);
        i += 8;
      }
  }
  return e;
}

async function readEnd(r: ByteReader, at: () => number): Promise<{ entries: number; cdSize: number; cdOffset: number }> {
  let z64: { entries: number; cdSize: number; cdOffset: number } | undefined;
  if ((await r.peek(4)).readUInt32LE(0) === EOCD64) {
    const h = await r.bytes(56);
    const size = readU64(h, 4);
    if (size < 44 || size > 1 << 16) throw new ZipError('zip: bad ZIP64 end record');
    await r.skip(size - 44);
    if (h.readUInt32LE(16) !== 0 || h.readUInt32LE(20) !== 0) throw new ZipError('zip: multi-disk archives are not read');
    z64 = { entries: readU64(h, 32), cdSize: readU64(h, 40), cdOffset: readU64(h, 48) };
    const loc = await r.bytes(20);
    if (loc.readUInt32LE(0) !== LOCATOR64) throw new ZipError('zip: ZIP64 end record without its locator');
  }
  const atEnd = at();
  const h = await r.bytes(22);
  if (h.readUInt32LE(0) !== EOCD) throw new ZipError(`zip: no end of central directory record at offset ${atEnd}`);
  if (h.readUInt16LE(4) !== 0 || h.readUInt16LE(6) !== 0) throw new ZipError('zip: multi-disk archives are not read');
  const comment = await r.bytes(h.readUInt16LE(20));
  // A comment that holds zip records could be read as a second archive by a reader that scans back from the end.
  if (SIGNATURES.some((s) => comment.includes(s))) throw new ZipError('zip: the archive comment holds zip records (a second archive?)');
  const pick = (v: number, max: number, w: 'entries' | 'cdSize' | 'cdOffset'): number => {
    if (v !== max) return v;
    if (!z64) throw new ZipError('zip: ZIP64 values without a ZIP64 end record');
    return z64[w];
  };
  return { entries: pick(h.readUInt16LE(10), 0xffff, 'entries'), cdSize: pick(h.readUInt32LE(12), 0xffffffff, 'cdSize'), cdOffset: pick(h.readUInt32LE(16), 0xffffffff, 'cdOffset') };
}

function zip64Field(extra: Buffer): Buffer | undefined {
  for (let i = 0; i + 4 <= extra.length; ) {
    const id = extra.readUInt16LE(i);
    const len = extra.readUInt16LE(i + 2);
    if (i + 4 + len > extra.length) throw new ZipError('zip: extra field overruns its header');
    if (id === 0x0001) return extra.subarray(i + 4, i + 4 + len);
    i += 4 + len;
  }
  return undefined;
}

function readU64(b: Buffer, off: number): number {
  if (off + 8 > b.length) throw new ZipError('zip: ZIP64 field too short');
  const v = b.readBigUInt64LE(off);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new ZipError('zip: size beyond 2^53');
  return Number(v);
}
