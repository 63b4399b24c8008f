import { randomBytes } from 'node:crypto';
import { expect } from 'vitest';
import { RegistryClient } from '../../src/artifacts/client.js';
import { hashSecret, newTokenSecret } from '../../src/http/secrets.js';
import { MediaType, digestOf, type Descriptor, type Digest } from '../../src/oci/index.js';
import { ACCEPT } from '../gate-fixtures.js';
import { startTestServer, type TestServer, type TestServerOptions } from '../helpers/server.js';

/**
 * The attacker of docs/security.md: holds a push token for some repositories (a CI job's token),
 * pulls anonymously from loopback like any reader, and knows every trick of the wire format.
 */
export interface Arena {
  readonly srv: TestServer;
  /** Tokens by id: `ci` pushes models/fraud, `attacker` pushes team/** and pulls everything, `reader` pulls everything, `ops` is the operator (admin). */
  token(id: 'ci' | 'attacker' | 'reader' | 'ops'): string;
  client(id: 'ci' | 'attacker' | 'reader' | 'ops'): RegistryClient;
  /** The operator, for the ops CLI functions. */
  readonly ops: { url: string; token: string };
}

export async function startArena(opts: TestServerOptions = {}): Promise<Arena> {
  const secrets = { ci: newTokenSecret(), attacker: newTokenSecret(), reader: newTokenSecret(), ops: newTokenSecret() };
  const tok = (id: keyof typeof secrets) => `ctk_${id}_${secrets[id]}`;
  const srv = await startTestServer({
    gate: 'enforce',
    ...opts,
    config: {
      ...(opts.config ?? {}),
      auth: {
        tokens: [
          { id: 'ci', hash: await hashSecret(secrets.ci), permissions: [{ repositories: ['models/fraud'], actions: ['pull', 'push'] }] },
          // A CI token as they are often issued: push to its team's repositories, pull from everywhere.
          { id: 'attacker', hash: await hashSecret(secrets.attacker), permissions: [{ repositories: ['team/**'], actions: ['pull', 'push'] }, { repositories: ['**'], actions: ['pull'] }] },
          { id: 'reader', hash: await hashSecret(secrets.reader), permissions: [{ repositories: ['**'], actions: ['pull'] }] },
          { id: 'ops', hash: await hashSecret(secrets.ops), permissions: [{ repositories: ['**'], actions: ['admin'] }] },
        ],
      },
    },
  });
  return {
    srv,
    token: tok,
    client: (id) => new RegistryClient({ url: srv.url, token: tok(id) }),
    ops: { url: srv.url, token: tok('ops') },
  };
}

/** Bytes nobody else has: when a response contains them, the forbidden blob reached the client. */
export const secretWeights = (label: string): Buffer => Buffer.concat([Buffer.from(`${label}:`), randomBytes(4096)]);

/** An anonymous read, as any client on loopback makes it. */
export async function anonymous(srv: TestServer, method: 'GET' | 'HEAD', path: string): Promise<{ status: number; body: Buffer; code?: string; message?: string }> {
  const res = await fetch(`${srv.url}/v2/${path}`, { method, headers: { accept: ACCEPT } });
  const body = Buffer.from(await res.arrayBuffer());
  let code: string | undefined;
  let message: string | undefined;
  try {
    const e = (JSON.parse(body.toString('utf8')) as { errors?: { code: string; message: string }[] }).errors?.[0];
    code = e?.code;
    message = e?.message;
  } catch {
    // a blob or manifest body
  }
  return { status: res.status, body, code, message: message ?? res.headers.get('customs-denied-reason') ?? undefined };
}

/**
 * Asserts a refusal that carried none of `forbidden`'s bytes: 403, or, for an anonymous HEAD of a blob (a
 * pusher would be told it exists), 401 with a challenge (src/http/refusal.ts).
 */
export function expectRefusedWithoutBytes(got: { status: number; body: Buffer; code?: string }, forbidden: Buffer, what: string): void {
  const refused = got.status === 403 || (got.status === 401 && /^HEAD /.test(what));
  expect({ what, status: got.status, refused }).toEqual({ what, status: got.status, refused: true });
  expect(got.body.includes(forbidden.subarray(0, 64)), `${what}: a byte of the forbidden blob reached the client`).toBe(false);
}

/** A manifest pushed with a raw PUT (what oras, crane or a script can send), with the blobs it names. */
export async function pushRaw(
  client: RegistryClient,
  repo: string,
  reference: string | undefined,
  o: { layers: { mediaType: string; data: Buffer; annotations?: Record<string, string> }[]; config?: { mediaType: string; data: Buffer }; subject?: Descriptor; artifactType?: string },
): Promise<Digest> {
  for (const l of o.layers) await client.pushBlob(repo, { kind: 'bytes', data: l.data });
  const config = o.config ?? { mediaType: 'application/vnd.oci.empty.v1+json', data: Buffer.from('{}') };
  await client.pushBlob(repo, { kind: 'bytes', data: config.data });
  const bytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      ...(o.artifactType ? { artifactType: o.artifactType } : {}),
      config: { mediaType: config.mediaType, digest: digestOf(config.data), size: config.data.length },
      layers: o.layers.map((l) => ({ mediaType: l.mediaType, digest: digestOf(l.data), size: l.data.length, ...(l.annotations ? { annotations: l.annotations } : {}) })),
      ...(o.subject ? { subject: o.subject } : {}),
    }),
  );
  const digest = digestOf(bytes);
  await client.putManifest(repo, reference ?? digest, bytes, MediaType.ociManifest);
  return digest;
}
