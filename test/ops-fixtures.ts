import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { digestOf, EMPTY_JSON_DIGEST, type Digest } from '../src/oci/index.js';
import { keyHint, signStatement, type SigningKey } from '../src/artifacts/sign.js';

/**
 * Builds and pushes, over real HTTP, what the operator tests need: artifacts
 * (datasets, models) and their provenance referrers as sigstore bundles holding a
 * DSSE-signed in-toto v1 statement with an SLSA v1 predicate.
 */
export interface Pushed {
  readonly digest: Digest;
  readonly config: Digest;
  readonly layer: Digest;
  readonly bytes: Buffer;
}

export class Pusher {
  readonly key: SigningKey;
  constructor(
    readonly url: string,
    private readonly auth: Record<string, string>,
  ) {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    this.key = { privateKey, publicKey, hint: keyHint(publicKey) };
  }

  async blob(repo: string, data: Buffer): Promise<Digest> {
    const digest = digestOf(data);
    const res = await fetch(`${this.url}/v2/${repo}/blobs/uploads/?digest=${digest}`, {
      method: 'POST',
      headers: { ...this.auth, 'content-type': 'application/octet-stream', 'content-length': String(data.length) },
      body: data,
    });
    if (res.status !== 201) throw new Error(`blob push ${repo}: ${res.status} ${await res.text()}`);
    return digest;
  }

  /** PUT a manifest; returns the response (tests look at refusals). */
  putManifest(repo: string, reference: string, bytes: Buffer): Promise<Response> {
    return fetch(`${this.url}/v2/${repo}/manifests/${reference}`, {
      method: 'PUT',
      headers: { ...this.auth, 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
      body: bytes,
    });
  }

  /** An artifact with one config blob and one layer (weights or data), pushed and optionally tagged. */
  async artifact(repo: string, artifactType: string, name: string, tag?: string, size = 4096): Promise<Pushed> {
    const configBytes = Buffer.from(JSON.stringify({ name, created: new Date().toISOString() }));
    const layerBytes = Buffer.concat([Buffer.from(`${name}\n`), randomBytes(size)]);
    const config = await this.blob(repo, configBytes);
    const layer = await this.blob(repo, layerBytes);
    const bytes = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        artifactType,
        config: { mediaType: 'application/vnd.cncf.model.config.v1+json', digest: config, size: configBytes.length },
        layers: [{ mediaType: 'application/vnd.cncf.model.weight.v1.raw', digest: layer, size: layerBytes.length, annotations: { 'org.cncf.model.filepath': `${name}.bin` } }],
        annotations: { 'org.opencontainers.image.title': name },
      }),
    );
    const digest = digestOf(bytes);
    const res = await this.putManifest(repo, tag ?? digest, bytes);
    if (res.status !== 201) throw new Error(`manifest push ${repo}: ${res.status} ${await res.text()}`);
    return { digest, config, layer, bytes };
  }

  /** Moves `tag` to an already pushed manifest (a re-push of the same bytes under the tag). */
  tag(repo: string, tag: string, m: Pushed): Promise<Response> {
    return this.putManifest(repo, tag, m.bytes);
  }

  /** Pushes a referrer carrying one JSON layer (an SBOM, say). */
  async referrer(repo: string, subject: Pushed, artifactType: string, doc: unknown): Promise<Digest> {
    const data = Buffer.from(JSON.stringify(doc));
    const layer = await this.blob(repo, data);
    await this.blob(repo, Buffer.from('{}'));
    const bytes = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        artifactType,
        config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: EMPTY_JSON_DIGEST, size: 2 },
        layers: [{ mediaType: artifactType, digest: layer, size: data.length }],
        subject: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: subject.digest, size: subject.bytes.length },
      }),
    );
    const digest = digestOf(bytes);
    const res = await this.putManifest(repo, digest, bytes);
    if (res.status !== 201) throw new Error(`referrer push ${repo}: ${res.status} ${await res.text()}`);
    return digest;
  }

  /** Pushes SLSA v1 provenance about `subject` as an OCI 1.1 referrer (sigstore bundle v0.3, DSSE). */
  async provenance(
    repo: string,
    subject: Pushed,
    materials: { role: string; name: string; digest: Record<string, string>; uri?: string }[],
  ): Promise<Digest> {
    const statement = {
      _type: 'https://in-toto.io/Statement/v1' as const,
      subject: [{ name: repo, digest: { sha256: subject.digest.slice(7) } }],
      predicateType: 'https://slsa.dev/provenance/v1',
      predicate: {
        buildDefinition: {
          buildType: 'https://customs.dev/ml-training/v1',
          externalParameters: { epochs: '3' },
          resolvedDependencies: materials.map((m) => ({ name: m.name, ...(m.uri ? { uri: m.uri } : {}), digest: m.digest, annotations: { role: m.role } })),
        },
        runDetails: { builder: { id: 'https://ci.example/trainer' }, metadata: { startedOn: '2026-11-01T10:00:00Z', finishedOn: '2026-11-01T11:00:00Z' } },
      },
    };
    const bundle = Buffer.from(JSON.stringify(signStatement(statement, this.key)));
    const layer = await this.blob(repo, bundle);
    await this.blob(repo, Buffer.from('{}'));
    const bytes = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        artifactType: 'application/vnd.dev.sigstore.bundle.v0.3+json',
        config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: EMPTY_JSON_DIGEST, size: 2 },
        layers: [{ mediaType: 'application/vnd.dev.sigstore.bundle.v0.3+json', digest: layer, size: bundle.length }],
        subject: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: subject.digest, size: subject.bytes.length },
        annotations: {
          'dev.sigstore.bundle.content': 'dsse-envelope',
          'dev.sigstore.bundle.predicateType': 'https://slsa.dev/provenance/v1',
          'org.opencontainers.image.created': '2026-11-01T11:00:01Z',
        },
      }),
    );
    const digest = digestOf(bytes);
    const res = await this.putManifest(repo, digest, bytes);
    if (res.status !== 201) throw new Error(`referrer push ${repo}: ${res.status} ${await res.text()}`);
    return digest;
  }
}

export const sha = (d: Digest): Record<string, string> => ({ sha256: d.slice(7) });

/** Status and OCI error code of a GET. */
export async function probe(url: string, auth: Record<string, string> = {}): Promise<{ status: number; code: string | undefined; digest: string | null }> {
  const res = await fetch(url, { headers: { ...auth, accept: 'application/vnd.oci.image.manifest.v1+json' } });
  const text = await res.text();
  let code: string | undefined;
  try {
    code = (JSON.parse(text) as { errors?: { code: string }[] }).errors?.[0]?.code;
  } catch {
    code = undefined;
  }
  return { status: res.status, code, digest: res.headers.get('docker-content-digest') };
}

/** Collects what a CLI command prints. */
export function capture(): { out: string[]; err: string[]; io: { out(l: string): void; err(l: string): void } } {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, io: { out: (l) => void out.push(l), err: (l) => void err.push(l) } };
}
