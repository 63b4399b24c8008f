import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { opsCommands as cli, register, type AdminTarget } from '../src/cli/ops/index.js';
import { hashSecret } from '../src/http/secrets.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { capture, Pusher, type Pushed } from './ops-fixtures.js';

const MODEL = 'application/vnd.cncf.model.manifest.v1+json';
const PUSHER = 'ctk_pusher_pusherpusherpusherpusher';
const PULLER = 'ctk_puller_pullerpullerpullerpuller';
const ADMIN = 'ctk_ops_opsopsopsopsopsopsopsopsops';

/** Issue 15: `customs tag SRC DST` moves a tag without a raw manifest PUT; audited, pins respected. */
describe('customs tag', () => {
  let srv: TestServer;
  let p: Pusher;
  let v1: Pushed, v2: Pushed;
  const repo = 'models/tagged';
  const as = (token: string): AdminTarget => ({ url: srv.url, token });

  beforeAll(async () => {
    srv = await startTestServer({
      config: {
        auth: {
          tokens: [
            { id: 'pusher', hash: await hashSecret(PUSHER.split('_')[2]!), permissions: [{ repositories: ['models/**'], actions: ['pull', 'push'] }] },
            { id: 'puller', hash: await hashSecret(PULLER.split('_')[2]!), permissions: [{ repositories: ['models/**'], actions: ['pull'] }] },
            { id: 'ops', hash: await hashSecret(ADMIN.split('_')[2]!), permissions: [{ repositories: ['**'], actions: ['admin'] }] },
          ],
        },
      },
    });
    p = new Pusher(srv.url, { authorization: `Bearer ${PUSHER}` });
    v1 = await p.artifact(repo, MODEL, 'v1', 'v1');
    v2 = await p.artifact(repo, MODEL, 'v2', 'v2');
  });
  afterAll(async () => srv?.close());

  it('points DST at what SRC names (tag or digest), with history and an audit entry carrying the reason', async () => {
    const out = capture();
    const program = new Command().exitOverride();
    register(program, out.io, { CUSTOMS_TOKEN: PUSHER });
    await program.parseAsync(['tag', `${repo}:v1`, 'prod', '--reason', 'release 1', '--url', srv.url], { from: 'user' });
    expect(out.out).toEqual([`tagged ${repo}:prod -> ${v1.digest}`]);
    const get = await fetch(`${srv.url}/v2/${repo}/manifests/prod`, { headers: { authorization: `Bearer ${PUSHER}`, accept: 'application/vnd.oci.image.manifest.v1+json' } });
    expect(get.headers.get('docker-content-digest')).toBe(v1.digest);

    const r = await cli.tag(as(PUSHER), capture().io, `${repo}@${v2.digest}`, `${repo}:prod`, { reason: 'release 2' });
    expect(r).toMatchObject({ moved: true, digest: v2.digest, from: v1.digest });
    const again = await cli.tag(as(PUSHER), capture().io, `${repo}:v2`, 'prod', {});
    expect(again.moved).toBe(false);

    const history = await cli.history(as(ADMIN), capture().io, `${repo}:prod`, {});
    expect(history.history.map((m) => [m.from ?? null, m.to, m.actor, m.reason])).toEqual([
      [v1.digest, v2.digest, 'token:pusher', 'release 2'],
      [null, v1.digest, 'token:pusher', 'release 1'],
    ]);
    const audit = await cli.auditList(as(ADMIN), capture().io, {});
    const tags = audit.entries.filter((e) => e.action === 'tag');
    expect(tags.map((e) => [e.actor, e.target, e.reason])).toEqual([
      ['token:pusher', `${repo}:prod`, 'release 1'],
      ['token:pusher', `${repo}:prod`, 'release 2'],
    ]);
  });

  it('refuses a pinned tag, an evidence tag, another repository, an unknown source, and a caller without push', async () => {
    await cli.pin(as(ADMIN), capture().io, `${repo}:prod`, undefined, { reason: 'freeze' });
    await expect(cli.tag(as(PUSHER), capture().io, `${repo}:v1`, 'prod', {})).rejects.toMatchObject({ code: 'DENIED', message: expect.stringMatching(/pinned to sha256:[0-9a-f]{64} by token:ops \(freeze\)/) });
    await expect(cli.tag(as(PUSHER), capture().io, `${repo}:v1`, `sha256-${v2.digest.slice(7)}.sig`, {})).rejects.toMatchObject({ code: 'DENIED' });
    await expect(cli.tag(as(PUSHER), capture().io, `${repo}:v1`, 'models/other:prod', {})).rejects.toMatchObject({ code: 'UNSUPPORTED' });
    await expect(cli.tag(as(PUSHER), capture().io, `${repo}:nope`, 'x', {})).rejects.toMatchObject({ code: 'MANIFEST_UNKNOWN' });
    await expect(cli.tag(as(PULLER), capture().io, `${repo}:v1`, 'x', {})).rejects.toMatchObject({ code: 'DENIED', message: expect.stringMatching(/HTTP 403.*may not push/) });
    await expect(cli.tag({ url: srv.url, token: undefined }, capture().io, `${repo}:v1`, 'x', {})).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
  });
});
