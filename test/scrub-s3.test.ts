import { GetObjectCommand, HeadObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scrub } from '../src/cli/integrity.js';
import type { Digest } from '../src/oci/index.js';
import { startDockerRegistry, type DockerRegistry } from '../conformance/helpers/docker-registry.js';
import { capture } from './ops-fixtures.js';
import { getBlob, getManifest, pushImage, type Image } from './helpers/registry-client.js';
import { scaleoutEnv, type ScaleoutEnv } from './helpers/scaleout.js';
import { startTestServer, type TestServer } from './helpers/server.js';

/**
 * The scrub on S3 (Ceph RGW) + PostgreSQL: one byte of a stored object is flipped behind the
 * server's back (the object is rewritten with the same length). The pulled-through blob is set
 * aside and fetched again from its upstream (Debian's docker-registry); the pushed one is set
 * aside and never served again.
 */
describe('scrub: S3 + PostgreSQL', () => {
  let env: ScaleoutEnv;
  let upstream: DockerRegistry;
  let server: TestServer;
  let s3: S3Client;
  let proxied: Image;
  let pushed: Image;
  const key = (d: Digest) => `customs/blobs/sha256/${d.slice(7, 9)}/${d.slice(7)}`;

  beforeAll(async () => {
    env = await scaleoutEnv('scrub');
    process.env.AWS_ACCESS_KEY_ID = env.s3.accessKeyId;
    process.env.AWS_SECRET_ACCESS_KEY = env.s3.secretAccessKey;
    s3 = new S3Client({ endpoint: env.s3.endpoint, region: env.s3.region, forcePathStyle: true, credentials: { accessKeyId: env.s3.accessKeyId, secretAccessKey: env.s3.secretAccessKey } });
    upstream = await startDockerRegistry();
    proxied = await pushImage(upstream.url, 'lib/app', 'v1', [6 * 1024 * 1024 + 7]);
    server = await startTestServer({
      config: {
        upstreams: [{ name: 'up', url: upstream.url }],
        storage: { driver: 's3', bucket: env.bucket, prefix: 'customs/', endpoint: env.s3.endpoint, region: env.s3.region, forcePathStyle: true, partSizeMiB: 5 },
        metadata: { driver: 'postgres', url: env.pgUrl, poolSize: 5 },
      },
    });
    pushed = await pushImage(server.url, 'local/model', 'v1', [1024 * 1024], server.auth());
    expect((await getManifest(server.url, 'up/lib/app', 'v1', server.auth())).status).toBe(200);
    for (const b of proxied.blobs) expect(await getBlob(server.url, 'up/lib/app', b.digest, server.auth())).toMatchObject({ status: 200, ok: true });
    // The fill commits (multipart) after the last byte went out: wait until the object is there.
    for (const deadline = Date.now() + 60_000; ; ) {
      if (await s3.send(new HeadObjectCommand({ Bucket: env.bucket, Key: key(proxied.blobs[1]!.digest) })).then(() => true, () => false)) break;
      expect(Date.now()).toBeLessThan(deadline);
      await new Promise((r) => setTimeout(r, 100));
    }
    for (const [d, at] of [[proxied.blobs[1]!.digest, 5_000_000], [pushed.blobs[1]!.digest, 777]] as const) {
      const obj = await s3.send(new GetObjectCommand({ Bucket: env.bucket, Key: key(d) }));
      const bytes = Buffer.from(await obj.Body!.transformToByteArray());
      bytes[at]! ^= 0x40;
      await s3.send(new PutObjectCommand({ Bucket: env.bucket, Key: key(d), Body: bytes }));
    }
  });
  afterAll(async () => {
    await server?.close();
    await upstream?.close();
    s3?.destroy();
    await env?.stop();
  });

  it('detects both, sets them aside, fetches the proxied one again and serves it; never serves the other', async () => {
    const { io, out } = capture();
    await expect(scrub({ url: server.url, token: server.token }, io, { rate: 0 })).rejects.toMatchObject({ code: 'CONTENT_CORRUPT' });
    const text = out.join('\n');
    expect(text).toContain(`CORRUPT blob ${proxied.blobs[1]!.digest}`);
    expect(text).toContain(`CORRUPT blob ${pushed.blobs[1]!.digest}`);
    expect(text).toContain(`repaired ${proxied.blobs[1]!.digest}`);
    expect(text).toContain(`UNREPAIRED ${pushed.blobs[1]!.digest}`);
    expect(await getBlob(server.url, 'up/lib/app', proxied.blobs[1]!.digest, server.auth())).toMatchObject({ status: 200, ok: true });
    const bad = await getBlob(server.url, 'local/model', pushed.blobs[1]!.digest, server.auth());
    expect(bad).toMatchObject({ status: 500, code: 'UNKNOWN' });
    expect(bad.message).toMatch(/corrupt/);
    const corrupt = await s3.send(new GetObjectCommand({ Bucket: env.bucket, Key: `customs/corrupt/sha256/${pushed.blobs[1]!.digest.slice(7)}` }));
    expect((await corrupt.Body!.transformToByteArray()).length).toBe(pushed.blobs[1]!.bytes.length);
    const audit = (await (await fetch(`${server.url}/admin/audit?limit=10000`, { headers: server.auth() })).json()) as { entries: { action: string; target?: string }[] };
    expect(audit.entries.filter((e) => e.action === 'integrity.corrupt').map((e) => e.target)).toEqual(expect.arrayContaining([proxied.blobs[1]!.digest, pushed.blobs[1]!.digest]));
    expect(audit.entries.filter((e) => e.action === 'integrity.repaired').map((e) => e.target)).toEqual([proxied.blobs[1]!.digest]);
  });
});
