// notation 1.3.2 against customs and through the proxy: `notation sign` (JWS) with a test certificate
// (`notation cert generate-test`), `notation verify` through customs, and the gate accepting that
// signature under an x509 trust store policy. Negative: a certificate the policy does not trust, and a
// signature whose bytes were altered, are refused by notation and by the gate.
// As with cosign, notation reads the manifest it signs: signing happens while the rule audits.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RegistryClient } from '../src/artifacts/client.js';
import { MediaType, digestOf, type Digest } from '../src/oci/index.js';
import { startDistribution, type Distribution } from '../test/proxy-harness.js';
import { Clients, orasAuth, startCustoms, type Customs } from './helpers/clients.js';

const NOTATION_SIGNATURE = 'application/vnd.cncf.notary.signature';

let c: Clients;
let trustedCert: string;

const policy = (mode: 'audit' | 'enforce', roots: string) => ({
  default: 'deny',
  rules: [{ name: 'notary', match: ['notary/**', 'up/**'], mode, signatures: { authorities: [{ name: 'customs-test CA', x509: { roots } }] } }],
});

beforeAll(async () => {
  c = await Clients.create();
  // A test key and self-signed certificate, the default signing key; a second one the policies do not trust.
  await c.run('notation', ['cert', 'generate-test', '--default', 'customs-test']);
  await c.run('notation', ['cert', 'generate-test', 'stranger']);
  trustedCert = await readFile(join(c.home, '.config', 'notation', 'localkeys', 'customs-test.crt'), 'utf8');
  await c.file(
    '.config/notation/trustpolicy.json',
    JSON.stringify({
      version: '1.0',
      trustPolicies: [{ name: 'customs-test', registryScopes: ['*'], signatureVerification: { level: 'strict' }, trustStores: ['ca:customs-test'], trustedIdentities: ['*'] }],
    }),
  );
});
afterAll(async () => c?.close());

const auth = (r: Customs | Distribution) => ('s' in r ? ['--insecure-registry', '-u', 'ci', '-p', r.s.token!] : ['--insecure-registry']);

const pushImage = async (host: string, authArgs: string[], ref: string, text: string) => (await c.pushFile(host, authArgs, ref, text)) as Digest;

describe('notation against customs', () => {
  let reg: Customs;
  const d: Record<string, Digest> = {};
  const at = (repo: string) => `${reg.host}/${repo}@${d[repo]}`;
  const clientRefusal: Record<string, string> = {};

  beforeAll(async () => {
    reg = await startCustoms({ gate: undefined, policy: policy('audit', trustedCert) });
    for (const repo of ['notary/good', 'notary/stranger', 'notary/tampered']) d[repo] = await pushImage(reg.host, orasAuth(reg), `${repo}:v1`, `content of ${repo}`);
    await c.run('notation', ['sign', ...auth(reg), '--signature-format', 'jws', at('notary/good')]);
    await c.run('notation', ['sign', ...auth(reg), '--signature-format', 'jws', '--key', 'stranger', at('notary/stranger')]);
    await c.run('notation', ['sign', ...auth(reg), '--signature-format', 'jws', at('notary/tampered')]);
    await tamperSignature(reg, 'notary/tampered', d['notary/tampered']!);
    for (const repo of ['notary/stranger', 'notary/tampered']) clientRefusal[repo] = await c.refuses('notation', ['verify', ...auth(reg), at(repo)]);
    await reg.setPolicy(policy('enforce', trustedCert));
  }, 300_000);
  afterAll(async () => reg?.close());

  it('notation verify succeeds through customs; the gate accepts the signature under the x509 trust store policy', async () => {
    const v = await c.run('notation', ['verify', ...auth(reg), at('notary/good')]);
    expect(v.stdout).toMatch(/Successfully verified signature/);
    const res = await fetch(`${reg.s.url}/admin/verify`, { method: 'POST', headers: { ...reg.s.auth(), 'content-type': 'application/json' }, body: JSON.stringify({ repository: 'notary/good', reference: d['notary/good'] }) });
    const verdict = (await res.json()) as { allowed: boolean; mode: string; findings: { ok: boolean; reason: string }[] };
    expect(verdict).toMatchObject({ allowed: true, mode: 'enforce' });
    expect(verdict.findings[0]!.reason).toMatch(/CN=customs-test \(notation signature\)/);
    await c.run('oras', ['pull', ...orasAuth(reg), '-o', join(c.home, 'pulled-good'), `${reg.host}/notary/good:v1`]);
    expect(await readFile(join(c.home, 'pulled-good', 'data.txt'), 'utf8')).toBe('content of notary/good');
    const listed = (await c.run('notation', ['ls', ...auth(reg), at('notary/good')])).stdout;
    expect(listed).toContain(NOTATION_SIGNATURE);  });

  it('negative, a certificate nobody trusts: notation verify fails and the gate denies', async () => {
    expect(clientRefusal['notary/stranger']).toMatch(/signature verification failed|trust store|authenticity/i);
    const out = await c.refuses('oras', ['pull', ...orasAuth(reg), '-o', join(c.home, 'pulled-stranger'), `${reg.host}/notary/stranger:v1`]);
    expect(out).toMatch(/denied/i);
  });

  it('negative, a signature whose bytes were altered: notation verify fails and the gate denies', async () => {
    expect(clientRefusal['notary/tampered']).toMatch(/signature verification failed|integrity|invalid/i);
    const out = await c.refuses('oras', ['pull', ...orasAuth(reg), '-o', join(c.home, 'pulled-tampered'), `${reg.host}/notary/tampered:v1`]);
    expect(out).toMatch(/denied/i);
  });
});

/**
 * Replaces the notation signature of `repo@subject` by a copy whose JWS signature has one byte changed
 * (and deletes the original), so the only signature left is invalid.
 */
async function tamperSignature(reg: Customs, repo: string, subject: Digest): Promise<void> {
  const client = new RegistryClient({ url: reg.s.url, token: reg.s.token });
  const index = await client.listReferrers(repo, subject, NOTATION_SIGNATURE);
  const original = index.manifests[0]!.digest;
  const sig = await client.getManifest(repo, original);
  const m = JSON.parse(sig.bytes.toString('utf8')) as { layers: { digest: Digest; size: number }[] };
  const envelope = JSON.parse(await (await fetch(`${reg.s.url}/v2/${repo}/blobs/${m.layers[0]!.digest}`, { headers: reg.s.auth() })).text()) as { signature: string };
  const sigBytes = Buffer.from(envelope.signature, 'base64url');
  sigBytes[sigBytes.length - 1] = sigBytes[sigBytes.length - 1]! ^ 0x01;
  envelope.signature = sigBytes.toString('base64url');
  const altered = Buffer.from(JSON.stringify(envelope));
  await client.pushBlob(repo, { kind: 'bytes', data: altered });
  const manifest = Buffer.from(JSON.stringify({ ...m, layers: [{ ...m.layers[0], digest: digestOf(altered), size: altered.length }] }));
  await client.putManifest(repo, digestOf(manifest), manifest, MediaType.ociManifest);
  const del = await fetch(`${reg.s.url}/v2/${repo}/manifests/${original}`, { method: 'DELETE', headers: reg.s.auth() });
  if (del.status !== 202) throw new Error(`deleting the original signature: ${del.status}`);
}

describe('notation through the proxy (docker-registry upstream)', () => {
  let up: Distribution;
  let px: Customs;
  let good: Digest;
  let stranger: Digest;

  beforeAll(async () => {
    up = await startDistribution();
    good = await pushImage(up.host, ['--plain-http'], 'img/good:v1', 'upstream good');
    stranger = await pushImage(up.host, ['--plain-http'], 'img/stranger:v1', 'upstream stranger');
    // distribution 2.8 has no referrers API: notation falls back to the sha256-<hex> tag schema.
    await c.run('notation', ['sign', ...auth(up), '--signature-format', 'jws', `${up.host}/img/good@${good}`]);
    await c.run('notation', ['sign', ...auth(up), '--signature-format', 'jws', '--key', 'stranger', `${up.host}/img/stranger@${stranger}`]);
    px = await startCustoms({ gate: undefined, upstreams: { up: up.url }, policy: policy('enforce', trustedCert) });
  }, 300_000);
  afterAll(async () => {
    await px?.close();
    await up?.stop();
  });

  it('a signature made upstream with the trusted certificate is accepted; notation verify through customs succeeds; digest unchanged', async () => {
    await c.run('oras', ['pull', ...orasAuth(px), '-o', join(c.home, 'proxy-good'), `${px.host}/up/img/good:v1`]);
    expect(await readFile(join(c.home, 'proxy-good', 'data.txt'), 'utf8')).toBe('upstream good');
    const desc = JSON.parse((await c.run('oras', ['manifest', 'fetch', ...orasAuth(px), '--descriptor', `${px.host}/up/img/good:v1`])).stdout) as { digest: string };
    expect(desc.digest).toBe(good);
    const v = await c.run('notation', ['verify', ...auth(px), `${px.host}/up/img/good@${good}`]);
    expect(v.stdout).toMatch(/Successfully verified signature/);
  });

  it('negative: a signature by the untrusted certificate upstream is refused by the gate', async () => {
    const out = await c.refuses('oras', ['pull', ...orasAuth(px), '-o', join(c.home, 'proxy-stranger'), `${px.host}/up/img/stranger:v1`]);
    expect(out).toMatch(/denied/i);
  });
});
