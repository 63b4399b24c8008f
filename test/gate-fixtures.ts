import { generateKeyPairSync } from 'node:crypto';
import { expect } from 'vitest';
import { RegistryClient } from '../src/artifacts/client.js';
import { ModelPack } from '../src/artifacts/media-types.js';
import { buildModelConfig, buildModelManifest, type PackedFile } from '../src/artifacts/modelpack.js';
import { pushBundle } from '../src/artifacts/referrers.js';
import { cosignSignStatement, ociSubject, signStatement, signingKeyFromPem, type SigningKey } from '../src/artifacts/sign.js';
import { MediaType, digestOf, type Descriptor, type Digest } from '../src/oci/index.js';

/**
 * Shared by the gate's end-to-end tests: ModelPack artifacts pushed over HTTP with the
 * producer client, cosign v3 signatures (sigstore bundle v0.3, DSSE) pushed as referrers,
 * and assertions on what a client sees (403 DENIED with findings, audit header).
 */
export const ACCEPT = [MediaType.ociManifest, MediaType.ociIndex, MediaType.dockerManifest, MediaType.dockerManifestList].join(', ');
export const AUDIT_HEADER = 'customs-audit-findings';

export interface Registry {
  readonly url: string;
  auth(): Record<string, string>;
}

export interface PushedModel {
  readonly digest: Digest;
  readonly descriptor: Descriptor;
  readonly config: Digest;
  readonly layers: Digest[];
}

export interface ModelFile {
  readonly path: string;
  readonly bytes: Buffer;
}

/** A fresh ECDSA P-256 key pair as the producer side uses it, and its public PEM. */
export function newKey(): { key: SigningKey; publicPem: string; privatePem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const privatePem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const publicPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  return { key: signingKeyFromPem(privatePem, publicPem), publicPem, privatePem };
}

export function clientFor(reg: Registry): RegistryClient {
  const token = reg.auth().authorization?.replace(/^Bearer /, '');
  return new RegistryClient({ url: reg.url, token });
}

/** Pushes a ModelPack model (config + one raw layer per file) and tags it. */
export async function pushModel(client: RegistryClient, repo: string, tag: string, files: ModelFile[], name = repo): Promise<PushedModel> {
  const packed: PackedFile[] = files.map((f) => ({
    path: '',
    relPath: f.path,
    size: f.bytes.length,
    digest: digestOf(f.bytes),
    mediaType: f.path.endsWith('.json') ? ModelPack.weightConfigRaw : ModelPack.weightRaw,
  }));
  for (const f of files) await client.pushBlob(repo, { kind: 'bytes', data: f.bytes });
  const created = '2026-01-01T00:00:00Z';
  const config = Buffer.from(JSON.stringify(buildModelConfig({ name, createdAt: created, licenses: ['Apache-2.0'], format: 'safetensors' }, packed)));
  await client.pushBlob(repo, { kind: 'bytes', data: config });
  const m = buildModelManifest(config, packed, 'model', created);
  await client.putManifest(repo, tag, m.bytes, MediaType.ociManifest);
  return { digest: m.digest, descriptor: m.descriptor, config: digestOf(config), layers: packed.map((p) => p.digest) };
}

/**
 * `cosign sign --key` (v3, new bundle format): a DSSE envelope over the cosign sign statement,
 * pushed as a referrer of `subject`. `bindTo` names another digest in the statement (a forgery).
 */
export async function pushSignature(client: RegistryClient, repo: string, subject: Descriptor, key: SigningKey, bindTo: Digest = subject.digest): Promise<Digest> {
  return (await pushSignatureWithLayer(client, repo, subject, key, bindTo)).digest;
}

/** As pushSignature; also returns the digest of the bundle layer. */
export async function pushSignatureWithLayer(client: RegistryClient, repo: string, subject: Descriptor, key: SigningKey, bindTo: Digest = subject.digest): Promise<{ digest: Digest; layer: Digest }> {
  const bundle = signStatement(cosignSignStatement(ociSubject(repo, bindTo)), key);
  const r = await pushBundle(client, repo, subject, bundle, 'https://sigstore.dev/cosign/sign/v1', '2026-01-01T00:00:00Z');
  return { digest: r.digest, layer: digestOf(Buffer.from(JSON.stringify(bundle))) };
}

/**
 * A /v2/ request. Reads go out anonymously (customs allows anonymous pull from loopback), as a
 * puller would; writes, and reads with `asPusher`, carry the admin token.
 */
export async function req(reg: Registry, method: string, path: string, opts: { asPusher?: boolean } = {}): Promise<Response> {
  const auth = opts.asPusher || !['GET', 'HEAD'].includes(method) ? reg.auth() : {};
  return fetch(`${reg.url}/v2/${path}`, { method, headers: { accept: ACCEPT, ...auth } });
}

export interface DeniedBody {
  code: string;
  message: string;
  detail: { digest?: string; rule?: string; failed?: { rule: string; check: string; reason: string }[]; quarantined?: string[] };
}

/**
 * Asserts a 403 DENIED whose detail names each failed rule and why; returns the error. One refusal
 * answers differently (src/http/refusal.ts): an anonymous HEAD of a blob is 401 with a challenge for
 * push, because a pusher would be told the blob exists; that is accepted here for a bodiless blob answer.
 */
export async function expectDenied(res: Response, what: string): Promise<DeniedBody> {
  // An anonymous HEAD is challenged where credentials could change the answer (src/http/refusal.ts): a
  // pusher learns that a blob exists, a caller with `discover` that a denied manifest exists.
  if (res.status === 401 && /\/blobs\/sha256:/.test(res.url) && (await res.clone().text()) === '') {
    expect(res.headers.get('www-authenticate') ?? '', `${what}: challenge`).toMatch(/scope="repository:[^"]+:pull,push"/);
    return { code: 'UNAUTHORIZED', message: '', detail: {} };
  }
  if (res.status === 401 && /\/manifests\//.test(res.url) && (await res.clone().text()) === '') {
    expect(res.headers.get('www-authenticate') ?? '', `${what}: challenge`).toMatch(/scope="repository:[^"]+:pull"/);
    return { code: 'UNAUTHORIZED', message: '', detail: {} };
  }
  expect(res.status, `${what}: status`).toBe(403);
  if (res.headers.get('content-length') === '0' || !res.body) return { code: 'DENIED', message: '', detail: {} };
  const text = await res.text();
  if (text === '') return { code: 'DENIED', message: '', detail: {} }; // HEAD: no body
  const e = (JSON.parse(text) as { errors: DeniedBody[] }).errors[0]!;
  expect(e.code, what).toBe('DENIED');
  expect(e.detail.failed ?? [], `${what}: detail.failed in ${JSON.stringify(e)}`).not.toHaveLength(0);
  for (const f of e.detail.failed!) {
    expect(f.rule, what).toBeTruthy();
    expect(f.check, what).toBeTruthy();
    expect(f.reason, what).toBeTruthy();
  }
  return e;
}

export async function expectOk(res: Response, what: string, digest?: string): Promise<Buffer> {
  const body = Buffer.from(await res.arrayBuffer());
  expect(res.status, `${what}: ${body.toString().slice(0, 400)}`).toBe(200);
  if (digest && res.headers.get('content-length') !== '0' && body.length > 0) expect(digestOf(body), what).toBe(digest);
  return body;
}

/** Every read a client makes to pull `m` by tag: GET/HEAD manifest by tag and digest, GET/HEAD each blob. */
export function pullRequests(repo: string, tag: string, m: PushedModel): { method: string; path: string; digest: string | undefined }[] {
  const out = [
    { method: 'GET', path: `${repo}/manifests/${tag}`, digest: m.digest },
    { method: 'GET', path: `${repo}/manifests/${m.digest}`, digest: m.digest },
    { method: 'HEAD', path: `${repo}/manifests/${tag}`, digest: undefined },
    { method: 'HEAD', path: `${repo}/manifests/${m.digest}`, digest: undefined },
  ];
  for (const b of [m.config, ...m.layers]) {
    out.push({ method: 'GET', path: `${repo}/blobs/${b}`, digest: b });
    out.push({ method: 'HEAD', path: `${repo}/blobs/${b}`, digest: undefined });
  }
  return out;
}

export async function expectPullDenied(reg: Registry, repo: string, tag: string, m: PushedModel): Promise<DeniedBody[]> {
  const out: DeniedBody[] = [];
  for (const r of pullRequests(repo, tag, m)) out.push(await expectDenied(await req(reg, r.method, r.path), `${r.method} ${r.path}`));
  return out;
}

export async function expectPullAllowed(reg: Registry, repo: string, tag: string, m: PushedModel): Promise<Response[]> {
  const out: Response[] = [];
  for (const r of pullRequests(repo, tag, m)) {
    const res = await req(reg, r.method, r.path);
    await expectOk(res, `${r.method} ${r.path}`, r.digest);
    out.push(res);
  }
  return out;
}
