import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pushDatasetCommand, pushModelCommand } from '../src/cli/producer/index.js';
import { errorLines } from '../src/cli/errors.js';
import { hashSecret } from '../src/http/secrets.js';
import { wireError } from '../src/oci/index.js';
import { startTestServer, type TestServer } from './helpers/server.js';

/**
 * Issue 15: the producer names what it references through the metadata route
 * (GET /admin/resolve), so `customs push model --dataset datasets/x:v1` works under the
 * default gate although the unsigned dataset itself is not served.
 */
const PULLER = 'ctk_puller_pullerpullerpullerpuller';
const PUSHER = 'ctk_pusher_pusherpusherpusherpusher';
const OTHER = 'ctk_other_otherotherotherotherother';
const PUBLISHER = 'ctk_publisher_publisherpublisherpub';
const quiet = { out: () => undefined, err: () => undefined };

describe('metadata route and producer references under the default gate', () => {
  let s: TestServer;
  let work: string;
  const prev = process.env.CUSTOMS_TOKEN;

  beforeAll(async () => {
    const perm = (repositories: string[], actions: string[]) => [{ repositories, actions }];
    s = await startTestServer({
      gate: undefined,
      config: {
        auth: {
          anonymous: { pull: 'never' },
          tokens: [
            { id: 'puller', hash: await hashSecret(PULLER.split('_')[2]!), permissions: perm(['datasets/**'], ['pull']) },
            { id: 'pusher', hash: await hashSecret(PUSHER.split('_')[2]!), permissions: perm(['datasets/**', 'models/**'], ['push']) },
            { id: 'publisher', hash: await hashSecret(PUBLISHER.split('_')[2]!), permissions: perm(['**'], ['pull', 'push']) },
            { id: 'other', hash: await hashSecret(OTHER.split('_')[2]!), permissions: perm(['elsewhere/**'], ['pull', 'push']) },
          ],
        },
      },
    });
    work = await mkdtemp(join(tmpdir(), 'customs-resolve-'));
    process.env.CUSTOMS_TOKEN = PUBLISHER;
  });
  afterAll(async () => {
    if (prev === undefined) delete process.env.CUSTOMS_TOKEN;
    else process.env.CUSTOMS_TOKEN = prev;
    await s?.close();
    if (work) await rm(work, { recursive: true, force: true });
  });

  const resolve = (token: string | undefined, q: string) =>
    fetch(`${s.url}/admin/resolve?${q}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });

  it('push dataset (unsigned), then push model --dataset by tag: the provenance names the dataset digest', async () => {
    const data = join(work, 'data');
    await mkdir(data);
    await writeFile(join(data, 'rows.csv'), 'a,b\n1,2\n');
    const ds = await pushDatasetCommand(data, { url: s.url, to: 'datasets/x:v1' }, quiet);
    // The gate does not serve it (unsigned, default policy) ...
    expect((await fetch(`${s.url}/v2/datasets/x/manifests/v1`, { method: 'HEAD', headers: { authorization: `Bearer ${PUBLISHER}` } })).status).toBe(403);
    // ... and yet a model can name it.
    const model = join(work, 'model');
    await mkdir(model);
    await writeFile(join(model, 'w.bin'), randomBytes(64));
    const m = await pushModelCommand(model, { url: s.url, to: 'models/x:v1', dataset: ['datasets/x:v1'] }, quiet);
    expect(m.datasets).toEqual([{ given: 'datasets/x:v1', repository: 'datasets/x', digest: ds.digest }]);
    const deps = (m.provenance.predicate as { buildDefinition: { resolvedDependencies: { uri?: string }[] } }).buildDefinition.resolvedDependencies;
    expect(deps.map((d) => d.uri)).toContain(`oci://${s.host}/datasets/x@${ds.digest}`);
  });

  it('answers a caller who may pull, or only push, with the descriptor and no content', async () => {
    for (const token of [PULLER, PUSHER]) {
      const res = await resolve(token, 'repository=datasets/x&reference=v1');
      expect(res.status, token).toBe(200);
      const body = (await res.json()) as Record<string, unknown>;
      expect(Object.keys(body).sort()).toEqual(['artifactType', 'digest', 'mediaType', 'reference', 'repository', 'size']);
      expect(body.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    }
  });

  it('refuses callers without pull or push there (403), anonymous callers (401 + challenge), and says what is unknown (404)', async () => {
    expect((await resolve(OTHER, 'repository=datasets/x&reference=v1')).status).toBe(403);
    const anon = await resolve(undefined, 'repository=datasets/x&reference=v1');
    expect(anon.status).toBe(401);
    expect(anon.headers.get('www-authenticate')).toMatch(/^Bearer realm=/);
    const missing = await resolve(PULLER, 'repository=datasets/x&reference=v9');
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { errors: { code: string }[] }).errors[0]!.code).toBe('MANIFEST_UNKNOWN');
    // Bad input from a caller who may not use the route learns nothing about its shape.
    expect((await resolve(undefined, 'repository=NOT_A_NAME&reference=v1')).status).toBe(401);
    expect((await resolve(PULLER, 'repository=datasets/x&reference=.bad')).status).toBe(400);
  });

  it('every CLI error shows the server reason: from the error body, else from the refusal header of a HEAD', () => {
    const body = JSON.stringify({ errors: [{ code: 'DENIED', message: 'denied by policy: default/signatures: no signature', detail: { failed: [{ rule: 'default', check: 'signatures', reason: 'no signature' }] } }] });
    expect(errorLines(wireError('GET manifest m:v1', 403, 'Forbidden', body))).toEqual([
      'error: GET manifest m:v1 failed (HTTP 403): DENIED: denied by policy: default/signatures: no signature',
      '  FAIL default/signatures: no signature',
    ]);
    expect(errorLines(wireError('HEAD manifest m:v1', 403, 'Forbidden', '', 'default/signatures: no signature'))).toEqual([
      'error: HEAD manifest m:v1 failed (HTTP 403): DENIED: default/signatures: no signature',
    ]);
    expect(errorLines(wireError('HEAD manifest m:v1', 403, 'Forbidden', ''))[0]).toBe('error: HEAD manifest m:v1 failed (HTTP 403): Forbidden');
  });
});
