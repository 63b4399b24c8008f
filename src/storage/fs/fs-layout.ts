import { join } from 'node:path';
import type { Algorithm } from '../../oci/index.js';

/**
 * The one file that knows where things sit under the data directory
 * (distribution's paths.go habit). Nothing outside src/storage sees these paths.
 *   <root>/blobs/<alg>/<first two hex>/<hex>   committed blobs
 *   <root>/ingest/<random>                      blobs being written (cleaned at startup)
 *   <root>/ingest/<worker>/<random>             the same, per worker process (`serve --workers N`)
 *   <root>/uploads/<id>/{data,info.json}         upload sessions
 *   <root>/corrupt/<alg>/<hex>                   bytes set aside because they no longer hashed to their digest
 */
export class FsLayout {
  /** `instance`: a worker process's own ingest directory under <root>/ingest (`customs serve --workers`). */
  constructor(
    readonly root: string,
    readonly instance?: string,
  ) {}
  blobsDir(): string {
    return join(this.root, 'blobs');
  }
  blob(algorithm: Algorithm, hex: string): string {
    return join(this.root, 'blobs', algorithm, hex.slice(0, 2), hex);
  }
  /** Where this process writes blobs being ingested. */
  ingestDir(): string {
    return this.instance ? join(this.root, 'ingest', this.instance) : join(this.root, 'ingest');
  }
  /** Every process's ingest files (what a fresh start may clean). */
  ingestRoot(): string {
    return join(this.root, 'ingest');
  }
  ingest(name: string): string {
    return join(this.ingestDir(), name);
  }
  corruptDir(): string {
    return join(this.root, 'corrupt');
  }
  corrupt(algorithm: Algorithm, hex: string): string {
    return join(this.root, 'corrupt', algorithm, hex);
  }
  uploadsDir(): string {
    return join(this.root, 'uploads');
  }
  upload(id: string): { dir: string; data: string; info: string } {
    const dir = join(this.root, 'uploads', id);
    return { dir, data: join(dir, 'data'), info: join(dir, 'info.json') };
  }
}
