import { join } from 'node:path';
import type { Algorithm } from '../../oci/index.js';

/**
 * The one file that knows where things sit under the data directory
 * (distribution's paths.go habit). Nothing outside src/storage sees these paths.
 *   <root>/blobs/<alg>/<first two hex>/<hex>   committed blobs
 *   <root>/ingest/<random>                      blobs being written (cleaned at startup)
 *   <root>/uploads/<id>/{data,info.json}         upload sessions
 *   <root>/corrupt/<alg>/<hex>                   bytes set aside because they no longer hashed to their digest
 */
export class FsLayout {
  constructor(readonly root: string) {}
  blobsDir(): string {
    return join(this.root, 'blobs');
  }
  blob(algorithm: Algorithm, hex: string): string {
    return join(this.root, 'blobs', algorithm, hex.slice(0, 2), hex);
  }
  ingestDir(): string {
    return join(this.root, 'ingest');
  }
  ingest(name: string): string {
    return join(this.root, 'ingest', name);
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
