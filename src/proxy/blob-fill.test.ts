import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Digest } from '../oci/index.js';
import type { RandomAccessBlob } from '../storage/index.js';
import { FsBlobStore } from '../storage/fs/fs-blob-store.js';
import { SqliteMetadataStore } from '../storage/sqlite/sqlite-metadata-store.js';
import { BlobFiller, type FillSource } from './blob-fill.js';
import { WINDOW_BYTES } from './fill-bytes.js';
import { silentLogger } from './logger.js';

const MiB = 1024 * 1024;
const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}` as Digest;
const tick = () => new Promise((r) => setTimeout(r, 20));

/** An upstream body the test feeds by hand. */
function manualSource(size: number): { source: FillSource; body: PassThrough } {
  const body = new PassThrough({ highWaterMark: 64 * 1024 });
  return { body, source: { upstream: 'up', overallMs: 60_000, fetch: async () => ({ size, body }) } };
}

async function readAll(blob: RandomAccessBlob, from: number, to: number): Promise<{ bytes: Buffer; lent: number; copied: number }> {
  const parts: Buffer[] = [];
  let lent = 0;
  let copied = 0;
  for (let pos = from; pos < to; ) {
    const s = await blob.readShared!(pos, to - pos);
    if (s) {
      parts.push(Buffer.concat(s.bytes));
      s.release();
      lent += s.length;
      pos += s.length;
      continue;
    }
    const buf = Buffer.alloc(Math.min(MiB, to - pos));
    const n = await blob.read(buf, 0, buf.length, pos);
    parts.push(buf.subarray(0, n));
    copied += n;
    pos += n;
  }
  return { bytes: Buffer.concat(parts), lent, copied };
}

describe('BlobFiller: who gets bytes from memory', () => {
  let dir: string;
  let metadata: SqliteMetadataStore;
  let filler: BlobFiller;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'blob-fill-'));
    const blobs = new FsBlobStore(join(dir, 'store'));
    await blobs.init();
    metadata = new SqliteMetadataStore(join(dir, 'meta.db'));
    filler = new BlobFiller({ blobs, links: metadata, tempDir: join(dir, 'fill'), logger: silentLogger });
    await filler.init();
  });
  afterEach(async () => {
    await metadata.close();
    await rm(dir, { recursive: true, force: true, maxRetries: 5 });
  });

  it('a client that keeps up is lent what arrives; one that joins past the window reads the file; both get every byte', async () => {
    const blob = randomBytes(WINDOW_BYTES + 6 * MiB);
    const digest = sha(blob);
    const { source, body } = manualSource(blob.length);
    const early = await filler.open('r', digest, source);
    const earlyBody = await early!.open(undefined);
    expect(earlyBody.kind).toBe('random-access');
    const first = (earlyBody as { blob: RandomAccessBlob }).blob;

    // The early client follows the upstream piece by piece.
    const step = MiB;
    const got: Buffer[] = [];
    let lent = 0;
    for (let o = 0; o < blob.length; o += step) {
      body.write(blob.subarray(o, o + step));
      const r = await readAll(first, o, Math.min(o + step, blob.length - 1));
      got.push(r.bytes);
      lent += r.lent;
      expect(r.copied).toBe(0);
      await tick();
    }
    expect(lent).toBe(blob.length - 1);

    // A late joiner: the window has moved past its first bytes, which come from the file.
    const late = (await (await filler.open('r', digest, source))!.open(undefined)) as { blob: RandomAccessBlob };
    const lateRead = readAll(late.blob, 0, blob.length);
    body.end();
    const last = await readAll(first, blob.length - 1, blob.length); // held back until verified
    got.push(last.bytes);
    expect(sha(Buffer.concat(got))).toBe(digest);
    const l = await lateRead;
    expect(sha(l.bytes)).toBe(digest);
    expect(l.copied).toBeGreaterThan(0);
    await first.close();
    await late.blob.close();
    await expect.poll(() => metadata.linkedBlob('r', digest)).toEqual({ digest, size: blob.length });
  });

  it('wrong bytes: a client lent everything but the last byte gets an error, not an end', async () => {
    const blob = randomBytes(2 * MiB);
    const { source, body } = manualSource(blob.length);
    const opened = (await (await filler.open('r', sha(Buffer.from('other')), source))!.open(undefined)) as { blob: RandomAccessBlob };
    body.end(blob);
    const r = await readAll(opened.blob, 0, blob.length - 1);
    expect(r.bytes.length).toBe(blob.length - 1);
    await expect(opened.blob.readShared!(blob.length - 1, 1)).rejects.toThrow(/do not match/);
    await opened.blob.close();
  });
});
