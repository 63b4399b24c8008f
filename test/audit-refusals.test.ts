import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { digestOf } from '../src/oci/index.js';
import { startTestServer, type TestServer } from './helpers/server.js';

describe('audit log: denies and authentication failures', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer({ gate: 'enforce' }); // default policy, no trusted keys: everything is denied
  });
  afterAll(() => s.close());

  it('records a policy deny once per minute per (actor, target, reason) and every distinct auth failure', async () => {
    const config = Buffer.from('{}');
    expect((await fetch(`${s.url}/v2/m/x/blobs/uploads/?digest=${digestOf(config)}`, { method: 'POST', body: config, headers: s.auth() })).status).toBe(201);
    const manifest = JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: digestOf(config), size: 2 }, layers: [] });
    expect((await fetch(`${s.url}/v2/m/x/manifests/v1`, { method: 'PUT', body: manifest, headers: { ...s.auth(), 'content-type': 'application/vnd.oci.image.manifest.v1+json' } })).status).toBe(201);
    for (let i = 0; i < 3; i++) {
      const r = await fetch(`${s.url}/v2/m/x/manifests/v1`);
      expect(r.status).toBe(403);
      expect(((await r.json()) as { errors: { code: string }[] }).errors[0]!.code).toBe('DENIED');
    }
    expect((await fetch(`${s.url}/v2/m/x/manifests/v1`, { headers: { authorization: 'Bearer ctk_admin_notthetokennotthetoken' } })).status).toBe(401);
    await new Promise((r) => setTimeout(r, 100));
    const audit = (await (await fetch(`${s.url}/admin/audit`, { headers: s.auth() })).json()) as { entries: { action: string; actor: string; target?: string; reason?: string }[] };
    const denies = audit.entries.filter((e) => e.action === 'deny');
    expect(denies).toHaveLength(1);
    expect(denies[0]).toMatchObject({ actor: 'anonymous', target: '/v2/m/x/manifests/v1' });
    expect(denies[0]!.reason).toMatch(/signature/);
    expect(audit.entries.filter((e) => e.action === 'auth.failure')).toHaveLength(1);
    expect(JSON.stringify(audit.entries)).not.toContain('notthetoken');
    const verify = (await (await fetch(`${s.url}/admin/audit/verify`, { headers: s.auth() })).json()) as { ok: boolean };
    expect(verify.ok).toBe(true);
  });
});
