// cosign 3.1.3 (offline: key pairs, no transparency log) against customs and through the proxy:
// `cosign sign --key`, `cosign attest` (SLSA v1 and CycloneDX predicates), `cosign attach sbom`,
// `cosign verify` / `verify-attestation` through customs, and customs' gate accepting what cosign
// wrote with the trusted key only. Negative: a signature by an unknown key, and a tampered signature
// (its statement rewritten to name another image), are refused by cosign and by the gate.
//
// cosign reads the manifest it signs (GET), which the gate refuses for unsigned content: signing
// happens while the repository's rule is in audit mode, then the rule is switched to enforce and
// reloaded (what an operator does when turning enforcement on; Harbor has the same catch-22).
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RegistryClient } from '../src/artifacts/client.js';
import { MediaType, digestOf, type Digest } from '../src/oci/index.js';
import { startDistribution, type Distribution } from '../test/proxy-harness.js';
import { Clients, orasAuth, startCustoms, type Customs } from './helpers/clients.js';

const BUNDLE = 'application/vnd.dev.sigstore.bundle.v0.3+json';
const sha256 = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const trustedKeys = [{ trustedKeys: true }];
const policy = (mode: 'audit' | 'enforce') => ({
  default: 'deny',
  rules: [
    {
      name: 'release',
      match: ['signed/**'],
      mode,
      signatures: { authorities: trustedKeys },
      attestations: [{ predicateType: 'https://slsa.dev/provenance/', authorities: trustedKeys, conditions: ['predicate.runDetails.builder.id == "https://ci.example/builder"'] }],
      sbom: { required: true },
    },
    { name: 'keyonly', match: ['keyonly/**'], mode, signatures: { authorities: trustedKeys } },
  ],
});

let c: Clients;
let trusted: { key: string; pub: string };
let unknown: { key: string; pub: string };

async function keyPair(dir: string): Promise<{ key: string; pub: string }> {
  await c.file(`${dir}/.keep`, '');
  await c.run('cosign', ['generate-key-pair'], { cwd: join(c.home, dir) });
  return { key: join(c.home, dir, 'cosign.key'), pub: join(c.home, dir, 'cosign.pub') };
}

beforeAll(async () => {
  c = await Clients.create();
  trusted = await keyPair('trusted');
  unknown = await keyPair('unknown');
});
afterAll(async () => c?.close());

const registry = (r: Customs | Distribution) => ('s' in r ? ['--allow-http-registry', '--registry-username', 'ci', '--registry-password', r.s.token!] : ['--allow-http-registry']);
const signArgs = (k: { key: string }) => ['--key', k.key, '--tlog-upload=false', '--use-signing-config=false', '-y'];
const verifyArgs = (k: { pub: string }) => ['--key', k.pub, '--insecure-ignore-tlog=true'];

const pushImage = async (reg: Customs, ref: string, text: string) => (await c.pushFile(reg.host, orasAuth(reg), ref, text)) as Digest;

describe('cosign against customs: sign, attest, verify, and the gate', () => {
  let reg: Customs;
  const d: Record<string, Digest> = {};
  const at = (repo: string) => `${reg.host}/${repo}@${d[repo]}`;
  /** cosign's own refusals, asked while the subjects are still served (audit): the signature is what fails. */
  const clientRefusal: Record<string, string> = {};

  beforeAll(async () => {
    reg = await startCustoms({ policy: policy('audit'), gate: undefined, trustedKeys: { 'release.pub': await readFile(trusted.pub, 'utf8') } });
    for (const repo of ['signed/app', 'keyonly/good', 'keyonly/unknown', 'keyonly/tampered']) d[repo] = await pushImage(reg, `${repo}:v1`, `content of ${repo}`);
    // Signed while the rules audit (cosign GETs the manifest it signs).
    await c.run('cosign', ['sign', ...signArgs(trusted), ...registry(reg), at('signed/app')]);
    await c.file('slsa.json', JSON.stringify({
      buildDefinition: { buildType: 'https://ci.example/build/v1', externalParameters: { seed: '7' }, resolvedDependencies: [] },
      runDetails: { builder: { id: 'https://ci.example/builder' }, metadata: { invocationId: 'run-1', startedOn: '2026-01-01T00:00:00Z', finishedOn: '2026-01-01T00:10:00Z' } },
    }));
    await c.file('bom.cdx.json', JSON.stringify({ bomFormat: 'CycloneDX', specVersion: '1.6', version: 1, components: [{ type: 'library', name: 'numpy', version: '2.1.0', purl: 'pkg:pypi/numpy@2.1.0' }] }));
    await c.run('cosign', ['attest', ...signArgs(trusted), ...registry(reg), '--type', 'slsaprovenance1', '--predicate', join(c.home, 'slsa.json'), at('signed/app')]);
    await c.run('cosign', ['attest', ...signArgs(trusted), ...registry(reg), '--type', 'cyclonedx', '--predicate', join(c.home, 'bom.cdx.json'), at('signed/app')]);
    await c.run('cosign', ['sign', ...signArgs(trusted), ...registry(reg), at('keyonly/good')]);
    await c.run('cosign', ['sign', ...signArgs(unknown), ...registry(reg), at('keyonly/unknown')]);
    await pushTamperedSignature(reg, d['keyonly/good']!, 'keyonly/good', d['keyonly/tampered']!, 'keyonly/tampered');
    for (const repo of ['keyonly/unknown', 'keyonly/tampered']) clientRefusal[repo] = await c.refuses('cosign', ['verify', ...verifyArgs(trusted), ...registry(reg), at(repo)]);
    await reg.setPolicy(policy('enforce'));
  }, 300_000);
  afterAll(async () => reg?.close());

  it('cosign verify and verify-attestation (SLSA, CycloneDX) succeed through customs with the trusted key', async () => {
    const v = await c.run('cosign', ['verify', ...verifyArgs(trusted), ...registry(reg), at('signed/app')]);
    expect(v.stdout).toContain(d['signed/app']);
    for (const type of ['slsaprovenance1', 'cyclonedx']) {
      const a = await c.run('cosign', ['verify-attestation', ...verifyArgs(trusted), ...registry(reg), '--type', type, at('signed/app')]);
      expect(a.stderr).toMatch(/signatures were verified against the specified public key/);
    }
  });

  it('the gate serves what cosign signed and attested with the trusted key: every rule satisfied, the pull allowed', async () => {
    const res = await fetch(`${reg.s.url}/admin/verify`, { method: 'POST', headers: { ...reg.s.auth(), 'content-type': 'application/json' }, body: JSON.stringify({ repository: 'signed/app', reference: d['signed/app'] }) });
    const v = (await res.json()) as { allowed: boolean; mode: string; findings: { ok: boolean; check: string; reason: string }[] };
    expect(v.mode).toBe('enforce');
    expect(v.findings.filter((f) => !f.ok)).toEqual([]);
    expect(new Set(v.findings.map((f) => f.check))).toEqual(new Set(['signatures', 'attestations', 'sbom']));
    expect(v.allowed).toBe(true);
    await c.run('oras', ['pull', ...orasAuth(reg), '-o', join(c.home, 'pulled-app'), `${reg.host}/signed/app:v1`]);
    expect(await readFile(join(c.home, 'pulled-app', 'data.txt'), 'utf8')).toBe('content of signed/app');
    await c.run('oras', ['pull', ...orasAuth(reg), '-o', join(c.home, 'pulled-good'), `${reg.host}/keyonly/good:v1`]);
  });

  it('negative, unknown key: cosign verify with the trusted key fails, and the gate denies the image', async () => {
    expect(clientRefusal['keyonly/unknown']).toMatch(/no matching signatures|invalid signature|failed to verify/i);
    await c.refuses('cosign', ['verify', ...verifyArgs(trusted), ...registry(reg), at('keyonly/unknown')]);
    const denied = await c.refuses('oras', ['pull', ...orasAuth(reg), '-o', join(c.home, 'pulled-unknown'), `${reg.host}/keyonly/unknown:v1`]);
    expect(denied).toMatch(/denied/i);
  });

  it('negative, tampered signature (statement rewritten to name another image): cosign and the gate refuse it', async () => {
    expect(clientRefusal['keyonly/tampered']).toMatch(/no matching signatures|invalid signature|failed to verify|does not match/i);
    await c.refuses('cosign', ['verify', ...verifyArgs(trusted), ...registry(reg), at('keyonly/tampered')]);
    const denied = await c.refuses('oras', ['pull', ...orasAuth(reg), '-o', join(c.home, 'pulled-tampered'), `${reg.host}/keyonly/tampered:v1`]);
    expect(denied).toMatch(/denied/i);
  });
});

/**
 * Copies the cosign signature of `fromRepo@from` onto `toRepo@to`, its in-toto statement rewritten to
 * name `to`: the DSSE signature no longer matches its payload.
 */
async function pushTamperedSignature(reg: Customs, from: Digest, fromRepo: string, to: Digest, toRepo: string): Promise<void> {
  const client = new RegistryClient({ url: reg.s.url, token: reg.s.token });
  const index = await client.listReferrers(fromRepo, from, BUNDLE);
  const sig = await client.getManifest(fromRepo, index.manifests[0]!.digest);
  const m = JSON.parse(sig.bytes.toString('utf8')) as { layers: { digest: Digest; size: number; mediaType: string; annotations?: Record<string, string> }[]; subject: unknown };
  const layer = m.layers[0]!;
  const res = await fetch(`${reg.s.url}/v2/${fromRepo}/blobs/${layer.digest}`, { headers: reg.s.auth() });
  const bundle = JSON.parse(await res.text()) as { dsseEnvelope: { payload: string } };
  const statement = JSON.parse(Buffer.from(bundle.dsseEnvelope.payload, 'base64').toString('utf8')) as { subject: { digest: { sha256: string } }[] };
  statement.subject[0]!.digest.sha256 = to.slice(7);
  bundle.dsseEnvelope.payload = Buffer.from(JSON.stringify(statement)).toString('base64');
  const tampered = Buffer.from(JSON.stringify(bundle));
  await client.pushBlob(toRepo, { kind: 'bytes', data: tampered });
  await client.pushBlob(toRepo, { kind: 'bytes', data: Buffer.from('{}') });
  const target = await client.resolveName(toRepo, to);
  const manifest = Buffer.from(JSON.stringify({ ...m, layers: [{ ...layer, digest: sha256(tampered), size: tampered.length }], subject: { mediaType: target.mediaType, digest: to, size: target.size } }));
  await client.putManifest(toRepo, digestOf(manifest), manifest, MediaType.ociManifest);
}

describe('cosign attach sbom round trip (gate off): the bytes come back unchanged', () => {
  let reg: Customs;
  beforeAll(async () => {
    reg = await startCustoms({ gate: 'off' });
  });
  afterAll(async () => reg?.close());

  it('attach sbom, then download sbom through customs', async () => {
    const digest = await pushImage(reg, 'plain/app:v1', 'plain');
    const bom = JSON.stringify({ bomFormat: 'CycloneDX', specVersion: '1.6', version: 1, components: [] });
    const file = await c.file('attach.cdx.json', bom);
    await c.run('cosign', ['attach', 'sbom', ...registry(reg), '--sbom', file, '--type', 'cyclonedx', `${reg.host}/plain/app@${digest}`]);
    const list = (await (await fetch(`${reg.s.url}/v2/plain/app/tags/list`, { headers: reg.s.auth() })).json()) as { tags: string[] };
    expect(list.tags).toContain(`sha256-${digest.slice(7)}.sbom`);
    const down = await c.run('cosign', ['download', 'sbom', ...registry(reg), `${reg.host}/plain/app@${digest}`]);
    expect(down.stdout.trim()).toBe(bom);
  });
});

describe('cosign through the proxy (docker-registry upstream, signatures by the referrers tag schema)', () => {
  let up: Distribution;
  let px: Customs;
  const d: Record<string, Digest> = {};

  beforeAll(async () => {
    up = await startDistribution();
    for (const [repo, key] of [['img/good', trusted], ['img/stranger', unknown]] as const) {
      const dir = `up-${repo.replace('/', '-')}`;
      await c.file(`${dir}/data.txt`, `upstream ${repo}`);
      const out = await c.run('oras', ['push', '--plain-http', '--format', 'json', `${up.host}/${repo}:v1`, 'data.txt'], { cwd: join(c.home, dir) });
      d[repo] = (JSON.parse(out.stdout) as { digest: Digest }).digest;
      // distribution 2.8 has no referrers API: cosign writes the sha256-<hex> fallback tag.
      await c.run('cosign', ['sign', ...signArgs(key), ...registry(up), `${up.host}/${repo}@${d[repo]}`]);
    }
    px = await startCustoms({ gate: undefined, upstreams: { up: up.url }, trustedKeys: { 'release.pub': await readFile(trusted.pub, 'utf8') } });
  }, 300_000);
  afterAll(async () => {
    await px?.close();
    await up?.stop();
  });

  it('content signed upstream with the trusted key is served, and cosign verify through customs succeeds; digests unchanged', async () => {
    await c.run('oras', ['pull', ...orasAuth(px), '-o', join(c.home, 'proxy-good'), `${px.host}/up/img/good:v1`]);
    expect(await readFile(join(c.home, 'proxy-good', 'data.txt'), 'utf8')).toBe('upstream img/good');
    const desc = JSON.parse((await c.run('oras', ['manifest', 'fetch', ...orasAuth(px), '--descriptor', `${px.host}/up/img/good:v1`])).stdout) as { digest: string };
    expect(desc.digest).toBe(d['img/good']);
    const v = await c.run('cosign', ['verify', ...verifyArgs(trusted), ...registry(px), `${px.host}/up/img/good@${d['img/good']}`]);
    expect(v.stdout).toContain(d['img/good']);
  });

  it('negative: content signed upstream by an unknown key is refused by the gate (and by cosign with the trusted key)', async () => {
    const out = await c.refuses('oras', ['pull', ...orasAuth(px), '-o', join(c.home, 'proxy-stranger'), `${px.host}/up/img/stranger:v1`]);
    expect(out).toMatch(/denied/i);
    await c.refuses('cosign', ['verify', ...verifyArgs(trusted), ...registry(up), `${up.host}/img/stranger@${d['img/stranger']}`]);
  });
});
