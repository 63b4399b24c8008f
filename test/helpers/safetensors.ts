import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { BlobSource } from './fault-upstream.js';

/**
 * A valid safetensors file around `data` (one U8 tensor of data.length elements): what the model scanner
 * accepts (src/verify/model-scan.ts validates headers, offsets and sizes). Tests that only need "some weights"
 * use this rather than random bytes, which the scanner rightly refuses as a safetensors file.
 */
export function safetensorsOf(data: Buffer): Buffer {
  let header = JSON.stringify({ __metadata__: { format: 'pt' }, weight: { dtype: 'U8', shape: [data.length], data_offsets: [0, data.length] } });
  header += ' '.repeat((8 - (header.length % 8)) % 8); // the format pads the header to 8 bytes with spaces
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(header.length));
  return Buffer.concat([len, Buffer.from(header), data]);
}

/** The same around a streamed blob (a generated 256 MiB file): the header, then the blob's bytes. */
export async function safetensorsBlob(data: BlobSource): Promise<BlobSource> {
  let header = JSON.stringify({ __metadata__: { format: 'pt' }, weight: { dtype: 'U8', shape: [data.size], data_offsets: [0, data.size] } });
  header += ' '.repeat((8 - (header.length % 8)) % 8);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(header.length));
  const prefix = Buffer.concat([len, Buffer.from(header)]);
  const size = prefix.length + data.size;
  const open = (start: number): Readable =>
    Readable.from(
      (async function* () {
        if (start < prefix.length) yield prefix.subarray(start);
        yield* data.open(Math.max(0, start - prefix.length));
      })(),
    );
  const hash = createHash('sha256');
  for await (const chunk of open(0)) hash.update(chunk as Buffer);
  return { digest: `sha256:${hash.digest('hex')}`, size, open };
}
