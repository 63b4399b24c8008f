import type { ByteReader } from './byte-reader.js';

export async function* unxz(_r: ByteReader, label: string): AsyncGenerator<Buffer> {
  throw new Error(`${label}: xz not implemented yet`);
}
export async function* unlzma(_r: ByteReader, label: string): AsyncGenerator<Buffer> {
  throw new Error(`${label}: lzma not implemented yet`);
}
