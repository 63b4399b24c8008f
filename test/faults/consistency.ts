import { Writable } from 'node:stream';
import { parseConfigText } from '../../src/config/load.js';
import { configSchema } from '../../src/config/schema.js';
import { fsck, type FsckReport } from '../../src/ops/index.js';
import { hasContentScan } from '../../src/storage/index.js';
import { openStorage } from '../../src/storage/open.js';

/**
 * The check every fault test ends with (`customs fsck`, in this process): every tag resolves,
 * every manifest and linked blob is whole (re-hashed), nothing partial is left that no upload owns.
 */
export async function consistency(dataDir: string, config: Record<string, unknown> = {}, o: { proxied?: string[]; leftoverGraceMs?: number } = {}): Promise<FsckReport> {
  const parsed = Object.keys(config).length ? parseConfigText(JSON.stringify(config)) : configSchema.parse({});
  const storage = await openStorage(parsed, dataDir, { info: () => undefined, warn: () => undefined }, { inspect: true });
  try {
    if (!hasContentScan(storage.metadata)) throw new Error('no content scan');
    return await fsck(
      { blobs: storage.blobs, metadata: storage.metadata, uploads: storage.uploads },
      { isProxied: (r) => (o.proxied ?? []).some((p) => r.startsWith(`${p}/`)), leftoverGraceMs: o.leftoverGraceMs ?? 0 },
    );
  } finally {
    await storage.close();
  }
}

/** A pino destination that keeps every JSON line (the tests look at levels and messages). */
export function logLines(): { lines: Array<Record<string, unknown>>; stream: Writable } {
  const lines: Array<Record<string, unknown>> = [];
  let rest = '';
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      rest += chunk.toString();
      let i: number;
      while ((i = rest.indexOf('\n')) >= 0) {
        const line = rest.slice(0, i);
        rest = rest.slice(i + 1);
        if (line.trim()) lines.push(JSON.parse(line) as Record<string, unknown>);
      }
      cb();
    },
  });
  return { lines, stream };
}
