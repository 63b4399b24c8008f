import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { opsCommands as cli } from '../src/cli/ops/index.js';
import { hashSecret, newTokenSecret } from '../src/http/secrets.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { capture, Pusher, type Pushed } from './ops-fixtures.js';

/** The /admin/ API's permission boundaries: nobody without `admin`; repository-scoped admins only on their repositories. */
const MODEL = 'application/vnd.cncf.model.manifest.v1+json';

describe('/admin/ access', () => {
  let srv: TestServer;
  const secrets = { ops: newTokenSecret(), team: newTokenSecret(), reader: newTokenSecret() };
  const token = (id: keyof typeof secrets) => `ctk_${id}_${secrets[id]}`;
  const bearer = (id: keyof typeof secrets) => ({ authorization: `Bearer ${token(id)}` });
  let m: Pushed;

  beforeAll(async () => {
    srv = await startTestServer({
      config: {
        auth: {
          anonymous: { pull: 'never' },
          tokens: [
            { id: 'ops', hash: await hashSecret(secrets.ops), permissions: [{ repositories: ['**'], actions: ['admin'] }] },
            { id: 'team', hash: await hashSecret(secrets.team), permissions: [{ repositories: ['team/**'], actions: ['admin'] }] },
            { id: 'reader', hash: await hashSecret(secrets.reader), permissions: [{ repositories: ['**'], actions: ['pull'] }] },
          ],
        },
      },
    });
    m = await new Pusher(srv.url, bearer('team')).artifact('team/model', MODEL, 'v1', 'prod');
  });
  afterAll(async () => {
    await srv?.close();
  });

  const routes = (): [string, string, unknown?][] => [
    ['GET', '/admin/pins'],
    ['POST', '/admin/pin', { repository: 'team/model', tag: 'prod', reason: 'r' }],
    ['POST', '/admin/unpin', { repository: 'team/model', tag: 'prod', reason: 'r' }],
    ['GET', '/admin/history?repository=team/model&tag=prod'],
    ['POST', '/admin/rollback', { repository: 'team/model', tag: 'prod', reason: 'r' }],
    ['GET', '/admin/quarantine'],
    ['POST', '/admin/quarantine', { digest: m.digest, reason: 'r' }],
    ['POST', '/admin/quarantine/material', { material: m.digest, reason: 'r' }],
    ['POST', '/admin/release', { digest: m.digest, reason: 'r' }],
    ['GET', `/admin/lineage?repository=team/model&reference=prod`],
    ['GET', `/admin/consumers?digest=${m.digest}`],
    ['POST', '/admin/verify/deep', { repository: 'team/model', reference: 'prod' }],
    ['GET', '/admin/audit'],
    ['GET', '/admin/audit/export'],
    ['GET', '/admin/audit/verify'],
    ['POST', '/admin/gc', { dryRun: true }],
    ['GET', `/admin/inspect/manifest?repository=team/model&reference=prod&reason=r`],
    ['GET', `/admin/inspect/blob?repository=team/model&digest=${m.layer}&reason=r`],
    ['POST', '/admin/pin', { nonsense: true }], // bad input: still 401/403 first for those without admin
  ];
  const call = (method: string, path: string, body: unknown, headers: Record<string, string>) =>
    fetch(`${srv.url}${path}`, { method, headers: { ...headers, ...(body ? { 'content-type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : undefined });

  it('refuses every route without a token (401 with a challenge), with a wrong token, and to a pull-only token (403)', async () => {
    for (const [method, path, body] of routes()) {
      const none = await call(method, path, body, {});
      expect({ path, status: none.status }).toEqual({ path, status: 401 });
      const wrong = await call(method, path, body, { authorization: `Bearer ctk_ops_${newTokenSecret()}` });
      expect({ path, status: wrong.status }).toEqual({ path, status: 401 });
      const reader = await call(method, path, body, bearer('reader'));
      expect({ path, status: reader.status }).toEqual({ path, status: 403 });
    }
  });

  it('lets a repository-scoped admin act on its repositories only, not on global operations', async () => {
    const team = { url: srv.url, token: token('team') };
    await cli.pin(team, capture().io, 'team/model:prod', undefined, { reason: 'team freeze' });
    await expect(cli.pin(team, capture().io, 'other/model:prod', undefined, { reason: 'x' })).rejects.toMatchObject({ code: 'DENIED' });
    await expect(cli.quarantine(team, capture().io, m.digest, { reason: 'x' })).rejects.toMatchObject({ code: 'DENIED' });
    await expect(cli.auditVerify(team, capture().io, {})).rejects.toMatchObject({ code: 'DENIED' });
    await expect(cli.gc(team, capture().io, { dryRun: true })).rejects.toMatchObject({ code: 'DENIED' });
    const ops = { url: srv.url, token: token('ops') };
    await cli.quarantine(ops, capture().io, m.digest, { reason: 'global admin may' });
    const { entries } = await cli.auditList(ops, capture().io, {});
    const pin = entries.find((e) => e.action === 'pin')!;
    const q = entries.find((e) => e.action === 'quarantine')!;
    expect(pin.actor).toMatch(/team/);
    expect(q.actor).toMatch(/ops/);
    expect(pin.actor).not.toBe(q.actor);
    await expect(cli.pin(ops, capture().io, 'team/model:prod', undefined, { reason: '' })).rejects.toMatchObject({ message: expect.stringMatching(/reason/) });
  });
});
