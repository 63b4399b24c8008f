import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FsBlobStore } from '../src/storage/fs/fs-blob-store.js';
import { FsUploadStore } from '../src/storage/fs/fs-upload-store.js';
import { SqliteMetadataStore } from '../src/storage/sqlite/sqlite-metadata-store.js';
import { runStorageContract } from './storage-contract.js';

runStorageContract('filesystem + SQLite', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'customs-contract-'));
  const blobs = new FsBlobStore(dir);
  await blobs.init();
  const uploads = new FsUploadStore(blobs);
  await uploads.init();
  const metadata = new SqliteMetadataStore(join(dir, 'metadata.sqlite'));
  return {
    blobs,
    uploads,
    metadata,
    rot: (digest, bytes) => writeFile(join(dir, 'blobs', 'sha256', digest.slice(7, 9), digest.slice(7)), bytes),
    close: async () => {
      await metadata.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});
