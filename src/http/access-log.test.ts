import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { AccessLog, type AccessLine } from './access-log.js';

function logger(level = 'info') {
  const lines: string[] = [];
  const dest = new Writable({
    write(chunk, _enc, cb) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      cb();
    },
  });
  return { log: pino({ level, base: { svc: 'customs' } }, dest), lines: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

const line = (o: Partial<AccessLine> = {}): AccessLine => ({ reqId: 'r1', method: 'GET', path: '/v2/a/manifests/v1', route: 'manifest', status: 200, ms: 0.4, actor: 'admin', bytesIn: 120, bytesOut: 900, ...o });

describe('AccessLog', () => {
  it('writes the line pino would, with free text escaped', async () => {
    const { log, lines } = logger();
    const a = new AccessLog(log);
    a.write(line({ path: '/v2/"x\\y\n/blobs', actor: 'user:o"hara' }));
    a.write(line({ actor: undefined, status: 404 }));
    expect(lines()).toEqual([]); // batched
    a.flush();
    log.info({ reqId: 'r1', method: 'GET', path: '/v2/a/manifests/v1', route: 'manifest', status: 200, ms: 0.4, actor: 'admin', in: 120, out: 900 }, 'request');
    await new Promise((r) => setImmediate(r));
    const [first, second, byPino] = lines();
    expect(first).toMatchObject({ level: 30, svc: 'customs', msg: 'request', path: '/v2/"x\\y\n/blobs', actor: 'user:o"hara', in: 120, out: 900, status: 200 });
    expect(typeof first!.time).toBe('number');
    expect(second).not.toHaveProperty('actor');
    expect(Object.keys(byPino!).sort()).toEqual(Object.keys(first!).sort());
  });

  it('errors: only refusals, errors and clients that left, plus one success in N when sampling', () => {
    const { log, lines } = logger();
    const a = new AccessLog(log, { access: 'errors', sampleEvery: 3 });
    for (const status of [200, 201, 403, 200, 499, 500, 404, 200, 200, 200]) a.write(line({ status }));
    a.flush();
    expect(lines().map((l) => l.status)).toEqual([403, 200, 499, 500, 404, 200]);
    const none = logger();
    const b = new AccessLog(none.log, { access: 'errors', sampleEvery: 0 });
    for (const status of [200, 206, 307, 401]) b.write(line({ status }));
    b.flush();
    expect(none.lines().map((l) => l.status)).toEqual([401]);
  });

  it('nothing below the configured level', () => {
    const { log, lines } = logger('warn');
    const a = new AccessLog(log);
    a.write(line());
    a.flush();
    expect(lines()).toEqual([]);
  });

  it('writes a batch by itself after a moment, or once it is long enough', async () => {
    const { log, lines } = logger();
    const a = new AccessLog(log);
    a.write(line());
    await new Promise((r) => setTimeout(r, 250));
    expect(lines()).toHaveLength(1);
    for (let i = 0; i < 40; i++) a.write(line({ reqId: `r${i}` }));
    await new Promise((r) => setImmediate(r));
    expect(lines().length).toBeGreaterThan(1);
  });
});
