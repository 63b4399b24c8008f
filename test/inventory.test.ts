import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPgPool, migrate } from '../src/storage/postgres/pg-pool.js';
import { PostgresMetadataStore } from '../src/storage/postgres/postgres-metadata-store.js';
import { PG_MIGRATIONS } from '../src/storage/postgres/postgres-schema.js';
import { SqliteMetadataStore } from '../src/storage/sqlite/sqlite-metadata-store.js';
import { startPostgres } from './helpers/postgres.js';
import { runInventoryContract } from './inventory-contract.js';

runInventoryContract('SQLite', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'customs-inventory-'));
  const metadata = new SqliteMetadataStore(join(dir, 'metadata.sqlite'));
  return {
    metadata,
    close: async () => {
      await metadata.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});

runInventoryContract('PostgreSQL 15', async () => {
  const server = await startPostgres();
  const pool = createPgPool({ url: await server.createDatabase('inventory') });
  await migrate(pool, PG_MIGRATIONS);
  return {
    metadata: new PostgresMetadataStore(pool),
    close: async () => {
      await pool.end();
      await server.stop();
    },
  };
});
