import type { ByteReader } from './byte-reader.js';

export async function* bunzip2(_r: ByteReader, label: string): AsyncGenerator<Buffer> {
  throw new Error(`${label}: bz2 not implemented yet`);
}
