import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientFor, newKey, pushModel, pushSignature } from './gate-fixtures.js';
import { httpsJson } from './helpers/https-json.js';
import { startPostgres, type PostgresServer } from './helpers/postgres.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { dataDirTrusting } from './helpers/trusted-data.js';
import { makeTestCa, pem } from './helpers/test-ca.js';

/**
 * The webhook's failure policy when customs cannot decide: metadata in a real PostgreSQL that is
 * then stopped. `failurePolicy: Fail` denies and says why; `Ignore` allows with a warning.
 */
describe('admission failure policy when the metadata store is down', () => {
  let dir: string;
  let data: string;
  let pg: PostgresServer;
  let caPem: string;
  const servers: TestServer[] = [];
  const producer = newKey();

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'customs-admission-fail-'));
    data = await dataDirTrusting(dir, { producer: producer.publicPem });
    const ca = makeTestCa(dir);
    ca.issue('server', { cn: 'customs', dns: ['customs.test'], ips: ['127.0.0.1'] });
    caPem = pem(ca.caCert);
    pg = await startPostgres();
    const metadata = { driver: 'postgres', url: await pg.createDatabase('admission') };
    const policy = { rules: [{ name: 'models', match: 'models/**', signatures: { authorities: [{ trustedKeys: true }] } }] };
    const plain = await startTestServer({ dataDir: data, gate: undefined, config: { policy, metadata } });
    const m = await pushModel(clientFor(plain), 'models/good', 'v1', [{ path: 'model.safetensors', bytes: Buffer.from('good') }]);
    await pushSignature(clientFor(plain), 'models/good', m.descriptor, producer.key);
    await plain.close({ keepData: true });
    const tls = { cert: join(dir, 'server.pem'), key: join(dir, 'server-key.pem') };
    for (const failurePolicy of ['Fail', 'Ignore']) {
      servers.push(await startTestServer({ dataDir: data, gate: undefined, config: { policy, metadata, tls, admission: { enabled: true, failurePolicy } } }));
    }
  }, 180_000);
  afterAll(async () => {
    for (const s of servers) await s.close({ keepData: true }).catch(() => undefined);
    await pg?.stop().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });

  it('Fail denies saying customs cannot decide; Ignore allows with a warning', async () => {
    const review = JSON.parse(await readFile(new URL('./fixtures/admission/deployment.json', import.meta.url), 'utf8')) as object;
    // While the database is up both allow.
    for (const s of servers) {
      const r = await httpsJson('POST', `${s.url}/admission/v1/validate`, caPem, review);
      expect((r.json as { response: { allowed: boolean } }).response.allowed).toBe(true);
    }
    pg.process.kill('SIGKILL');
    await new Promise((r) => pg.process.once('exit', r));

    const [fail, ignore] = servers;
    const denied = (await httpsJson('POST', `${fail!.url}/admission/v1/validate`, caPem, review)).json as { response: { allowed: boolean; status?: { message: string } } };
    expect(denied.response.allowed).toBe(false);
    expect(denied.response.status!.message).toMatch(/container api \(customs\.test:5443\/models\/good:v1\): customs cannot decide \(failurePolicy Fail\): /);
    const allowed = (await httpsJson('POST', `${ignore!.url}/admission/v1/mutate`, caPem, review)).json as { response: { allowed: boolean; warnings?: string[]; patch?: string } };
    expect(allowed.response.allowed).toBe(true);
    expect(allowed.response.patch).toBeUndefined(); // nothing was verified, so nothing is pinned to a digest
    expect(allowed.response.warnings?.join('\n')).toMatch(/container api: customs cannot decide; allowed by failurePolicy Ignore/);
  });
});
