import { Command } from 'commander';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { opsCommands as cli, register, type AdminTarget } from '../src/cli/ops/index.js';
import { createOps } from '../src/ops/index.js';
import { ALLOW_ALL } from '../src/registry/index.js';
import { FaultUpstream } from './helpers/fault-upstream.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { capture, probe, Pusher, type Pushed } from './ops-fixtures.js';
import { startProxy, type ProxyHarness } from './proxy-harness.js';

const MODEL = 'application/vnd.cncf.model.manifest.v1+json';
const silent = { warn: () => undefined, info: () => undefined };

describe('pins and rollback over HTTP', () => {
  let srv: TestServer;
  let p: Pusher;
  let t: AdminTarget;
  let v1: Pushed, v2: Pushed, v3: Pushed;
  const repo = 'models/pinned';

  beforeAll(async () => {
    srv = await startTestServer();
    p = new Pusher(srv.url, srv.auth());
    t = { url: srv.url, token: srv.token };
    v1 = await p.artifact(repo, MODEL, 'v1', 'prod');
    v2 = await p.artifact(repo, MODEL, 'v2', 'prod');
    v3 = await p.artifact(repo, MODEL, 'v3', 'prod');
  });
  afterAll(async () => {
    await srv?.close();
  });

  it('refuses a push, a tag delete and a manifest delete of a pinned tag, with a message', async () => {
    const out = capture();
    // Through commander, as `customs pin models/pinned:prod --reason ...` runs it.
    const program = new Command().exitOverride();
    register(program, out.io, { CUSTOMS_TOKEN: srv.token });
    await program.parseAsync(['pin', `${repo}:prod`, '--reason', 'release 3 approved', '--url', srv.url], { from: 'user' });
    expect(out.out).toEqual([`pinned ${repo}:prod to ${v3.digest}`]);

    const v4 = await p.artifact(repo, MODEL, 'v4'); // by digest: allowed, not a tag move
    const res = await p.tag(repo, 'prod', v4);
    expect(res.status).toBe(403);
    const e = ((await res.json()) as { errors: { code: string; message: string }[] }).errors[0]!;
    expect(e.code).toBe('DENIED');
    expect(e.message).toMatch(/pinned to sha256:[0-9a-f]{64} by .*release 3 approved/);
    expect((await p.tag(repo, 'prod', v3)).status).toBe(201); // same digest: not a move
    const del = await fetch(`${srv.url}/v2/${repo}/manifests/prod`, { method: 'DELETE', headers: srv.auth() });
    expect(del.status).toBe(403);
    const delM = await fetch(`${srv.url}/v2/${repo}/manifests/${v3.digest}`, { method: 'DELETE', headers: srv.auth() });
    expect(delM.status).toBe(403);
    expect((await probe(`${srv.url}/v2/${repo}/manifests/prod`, srv.auth())).digest).toBe(v3.digest);
    const pins = await cli.pins(t, capture().io, repo, {});
    expect(pins.pins.map((x) => [x.tag, x.digest, x.reason])).toEqual([['prod', v3.digest, 'release 3 approved']]);
  });

  it('rolls back along the history, skipping quarantined digests, and pins unless --no-pin', async () => {
    await cli.quarantine(t, capture().io, v2.digest, { reason: 'bad eval' });
    const out = capture();
    const r = await cli.rollback(t, out.io, `${repo}:prod`, { reason: 'regression in v3' });
    expect(r).toMatchObject({ from: v3.digest, to: v1.digest, pinned: true });
    expect(r.skipped).toEqual([{ digest: v2.digest, eligible: false, skipped: 'quarantined' }]);
    expect(out.out.join('\n')).toMatch(/skipped sha256:[0-9a-f]{12}: quarantined/);
    expect((await probe(`${srv.url}/v2/${repo}/manifests/prod`, srv.auth())).digest).toBe(v1.digest);
    await expect(cli.rollback(t, capture().io, `${repo}:prod`, { reason: 'x', to: v2.digest })).rejects.toMatchObject({ code: 'DENIED', message: expect.stringContaining('quarantined') });
    const never = await p.artifact(repo, MODEL, 'never-tagged');
    await expect(cli.rollback(t, capture().io, `${repo}:prod`, { reason: 'x', to: never.digest })).rejects.toMatchObject({ code: 'MANIFEST_UNKNOWN' });
    // --to a later digest of the history, without pinning: the pin stays (it was pinned) and follows the tag.
    await cli.rollback(t, capture().io, `${repo}:prod`, { reason: 'roll forward', to: v3.digest, pin: false });
    expect((await cli.history(t, capture().io, `${repo}:prod`, {})).pin?.digest).toBe(v3.digest);
    await cli.unpin(t, capture().io, `${repo}:prod`, { reason: 'release train resumes' });
    await cli.rollback(t, capture().io, `${repo}:prod`, { reason: 'test no-pin', steps: 1, pin: false });
    const h = await cli.history(t, capture().io, `${repo}:prod`, {});
    expect(h.pin).toBeUndefined();
    expect(h.history.map((m) => [m.from, m.to, m.reason])).toEqual([
      [v3.digest, v1.digest, 'test no-pin'],
      [v1.digest, v3.digest, 'roll forward'],
      [v3.digest, v1.digest, 'regression in v3'],
      [v2.digest, v3.digest, undefined],
      [v1.digest, v2.digest, undefined],
      [undefined, v1.digest, undefined],
    ]);
    expect((await p.tag(repo, 'prod', v3)).status).toBe(201); // unpinned: pushes move it again
    await expect(cli.rollback(t, capture().io, `${repo}:nosuchtag`, { reason: 'x' })).rejects.toMatchObject({ code: 'MANIFEST_UNKNOWN' });
    await expect(cli.rollback(t, capture().io, `${repo}:prod`, { reason: 'x', steps: 50 })).rejects.toMatchObject({ code: 'MANIFEST_UNKNOWN' });
  });

  it('records every move in the audit log with actor and reason', async () => {
    const { entries } = await cli.auditList(t, capture().io, {});
    const moves = entries.filter((e) => e.target === `${repo}:prod`).map((e) => [e.action, e.reason]);
    expect(moves).toEqual(
      expect.arrayContaining([
        ['pin', 'release 3 approved'],
        ['rollback', 'regression in v3'],
        ['unpin', 'release train resumes'],
        ['push', undefined],
      ]),
    );
    expect(entries.every((e) => e.actor.length > 0)).toBe(true);
  });
});

describe('pins and upstream refresh', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    while (cleanups.length) await cleanups.pop()!();
  });

  async function setup(askPins: boolean) {
    let now = 1_000_000;
    const up = await FaultUpstream.start();
    let px: ProxyHarness | undefined;
    const pins = { isPinned: (r: string, tag: string) => createOps({ metadata: px!.metadata, blobs: px!.blobs, gate: ALLOW_ALL, log: silent }).pins.isPinned(r, tag) };
    px = await startProxy([{ name: 'up', url: up.url, tagFreshness: 60 }], { clock: () => now, ...(askPins ? { pins } : {}) });
    cleanups.push(async () => {
      await px!.close();
      await up.stop().catch(() => undefined);
    });
    const ops = createOps({ metadata: px.metadata, blobs: px.blobs, gate: ALLOW_ALL, log: silent });
    return { up, px, ops, advance: (ms: number) => (now += ms) };
  }

  for (const askPins of [true, false]) {
    it(`an upstream refresh does not move a pinned tag (${askPins ? 'proxy asks PinLookup' : 'store refuses inside the transaction'})`, async () => {
      const { up, px, ops, advance } = await setup(askPins);
      const first = up.addImage('team/model', ['prod'], [Buffer.from('weights 1')]);
      expect((await px.service.manifest('up/team/model', { kind: 'tag', tag: 'prod' }))?.digest).toBe(first.digest);
      await ops.tags.pin('up/team/model', 'prod', undefined, { actor: 'op', reason: 'freeze' });
      const second = up.addImage('team/model', ['prod'], [Buffer.from('weights 2')]);
      advance(120_000);
      const got = await px.service.manifest('up/team/model', { kind: 'tag', tag: 'prod' });
      expect(got?.digest).toBe(first.digest);
      expect(await px.metadata.resolveTag('up/team/model', 'prod')).toBe(first.digest);
      await ops.tags.unpin('up/team/model', 'prod', { actor: 'op', reason: 'thaw' });
      advance(120_000);
      expect((await px.service.manifest('up/team/model', { kind: 'tag', tag: 'prod' }))?.digest).toBe(second.digest);
      expect((await px.metadata.tagHistory('up/team/model', 'prod'))[0]).toMatchObject({ from: first.digest, to: second.digest, actor: 'upstream:up' });
    });
  }
});
