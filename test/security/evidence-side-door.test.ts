import { execFile } from 'node:child_process';
import { createPublicKey } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { digestOf, type Digest } from '../../src/oci/index.js';
import { newKey, pushModel, pushSignatureWithLayer, type PushedModel } from '../gate-fixtures.js';
import { goTool } from '../helpers/tools.js';
import { anonymous, expectRefusedWithoutBytes, pushRaw, secretWeights, startArena, type Arena } from './helpers.js';

const run = promisify(execFile);

/**
 * Threats T1 (evidence as a side door) and T2 (the legacy tag scheme as a side door) of
 * docs/security.md, under `--gate enforce` with the secure default policy (a signature by a key in
 * <data>/trust/keys). `models/fraud:v1` is signed by the trusted key and allowed; the attacker holds
 * the CI job's push token for `models/fraud` and wants bytes the gate denies served to every reader.
 */
describe('T1/T2: evidence is served only when it verifies as evidence', () => {
  let a: Arena;
  let allowed: PushedModel;
  let sigLayer: Digest;
  const signer = newKey();
  const deniedWeights = secretWeights('weights of a model the gate denies');

  beforeAll(async () => {
    a = await startArena();
    await a.srv.trustKey(createPublicKey(signer.publicPem), 'release');
    const ci = a.client('ci');
    allowed = await pushModel(ci, 'models/fraud', 'v1', [{ path: 'model.safetensors', bytes: secretWeights('good weights') }]);
    sigLayer = (await pushSignatureWithLayer(ci, 'models/fraud', allowed.descriptor, signer.key)).layer;
    expect((await anonymous(a.srv, 'GET', 'models/fraud/manifests/v1')).status).toBe(200);
  });
  afterAll(async () => {
    await a?.srv.close();
  });

  it('an unsigned referrer of the allowed model, carrying denied weights, is refused with its layer', async () => {
    const ci = a.client('ci');
    const ref = await pushRaw(ci, 'models/fraud', undefined, {
      artifactType: 'application/vnd.example.signature',
      layers: [{ mediaType: 'application/octet-stream', data: deniedWeights }],
      subject: allowed.descriptor,
    });
    const m = await anonymous(a.srv, 'GET', `models/fraud/manifests/${ref}`);
    expect(m.status).toBe(403);
    expect(m.message).toMatch(/evidence not verified: layer 0 \(application\/octet-stream\) is not evidence/);
    expectRefusedWithoutBytes(await anonymous(a.srv, 'GET', `models/fraud/blobs/${digestOf(deniedWeights)}`), deniedWeights, 'GET the smuggled layer');
    expectRefusedWithoutBytes(await anonymous(a.srv, 'HEAD', `models/fraud/blobs/${digestOf(deniedWeights)}`), deniedWeights, 'HEAD the smuggled layer');
    // Discovery is metadata: the referrer is listed, and marked unverified.
    const listed = (await (await fetch(`${a.srv.url}/v2/models/fraud/referrers/${allowed.digest}`)).json()) as { manifests: { digest: string; annotations?: Record<string, string> }[] };
    expect(listed.manifests.find((d) => d.digest === ref)?.annotations?.['io.customs.evidence']).toBe('unverified');
  });

  it('a real signature next to a smuggled layer, or a smuggled config, does not carry them through', async () => {
    const ci = a.client('ci');
    const bundle = (await anonymous(a.srv, 'GET', `models/fraud/blobs/${sigLayer}`)).body; // evidence is served: anyone has it
    const withExtraLayer = await pushRaw(ci, 'models/fraud', undefined, {
      artifactType: 'application/vnd.dev.sigstore.bundle.v0.3+json',
      layers: [
        { mediaType: 'application/vnd.dev.sigstore.bundle.v0.3+json', data: bundle },
        { mediaType: 'application/vnd.dev.sigstore.bundle.v0.3+json', data: deniedWeights },
      ],
      subject: allowed.descriptor,
    });
    const inConfig = await pushRaw(ci, 'models/fraud', undefined, {
      artifactType: 'application/vnd.dev.sigstore.bundle.v0.3+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', data: deniedWeights },
      layers: [{ mediaType: 'application/vnd.dev.sigstore.bundle.v0.3+json', data: bundle }],
      subject: allowed.descriptor,
    });
    for (const ref of [withExtraLayer, inConfig]) {
      const m = await anonymous(a.srv, 'GET', `models/fraud/manifests/${ref}`);
      expect(m.status).toBe(403);
      expect(m.message).toMatch(/evidence not verified/);
    }
    expectRefusedWithoutBytes(await anonymous(a.srv, 'GET', `models/fraud/blobs/${digestOf(deniedWeights)}`), deniedWeights, 'GET the smuggled blob');
    // The genuine signature itself is served: it verifies for its subject.
    expect((await anonymous(a.srv, 'GET', `models/fraud/blobs/${sigLayer}`)).status).toBe(200);
  });

  it('a signature that verifies for another digest is not evidence for this one', async () => {
    const ci = a.client('ci');
    const other = await pushModel(ci, 'models/fraud', 'other', [{ path: 'x.safetensors', bytes: secretWeights('other') }]);
    // Signed, but the statement binds `other`, and it is attached to `allowed`.
    const forged = await pushSignatureWithLayer(ci, 'models/fraud', allowed.descriptor, signer.key, other.digest);
    const m = await anonymous(a.srv, 'GET', `models/fraud/manifests/${forged.digest}`);
    expect(m.status).toBe(403);
    expect(m.message).toMatch(/does not verify/);
  });

  it('an SBOM the policy allows unsigned is served when it parses; junk with an SBOM media type is not', async () => {
    const ci = a.client('ci');
    const bom = Buffer.from(JSON.stringify({ bomFormat: 'CycloneDX', specVersion: '1.6', version: 1, components: [{ type: 'library', name: 'numpy', version: '1.26.4' }] }));
    const sbom = await pushRaw(ci, 'models/fraud', undefined, { artifactType: 'application/vnd.cyclonedx+json', layers: [{ mediaType: 'application/vnd.cyclonedx+json', data: bom }], subject: allowed.descriptor });
    expect((await anonymous(a.srv, 'GET', `models/fraud/manifests/${sbom}`)).status).toBe(200);
    expect((await anonymous(a.srv, 'GET', `models/fraud/blobs/${digestOf(bom)}`)).body.equals(bom)).toBe(true);
    const junk = await pushRaw(ci, 'models/fraud', undefined, { artifactType: 'application/vnd.cyclonedx+json', layers: [{ mediaType: 'application/vnd.cyclonedx+json', data: deniedWeights }], subject: allowed.descriptor });
    const m = await anonymous(a.srv, 'GET', `models/fraud/manifests/${junk}`);
    expect(m.status).toBe(403);
    expect(m.message).toMatch(/SBOM is not JSON/);
    expectRefusedWithoutBytes(await anonymous(a.srv, 'GET', `models/fraud/blobs/${digestOf(deniedWeights)}`), deniedWeights, 'GET junk posing as an SBOM');
  });

  it('T2: an unsigned manifest tagged sha256-<hex>.sig of the allowed digest is refused by tag and digest, with its blobs', async () => {
    const ci = a.client('ci');
    const tag = `${allowed.digest.replace(':', '-')}.sig`;
    const legacy = await pushRaw(ci, 'models/fraud', tag, {
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', data: Buffer.from('{"architecture":"","os":""}') },
      layers: [{ mediaType: 'application/vnd.dev.cosign.simplesigning.v1+json', data: deniedWeights, annotations: { 'dev.cosignproject.cosign/signature': 'AAAA' } }],
    });
    for (const path of [`models/fraud/manifests/${tag}`, `models/fraud/manifests/${legacy}`]) {
      const m = await anonymous(a.srv, 'GET', path);
      expect({ path, status: m.status }).toEqual({ path, status: 403 });
    }
    expectRefusedWithoutBytes(await anonymous(a.srv, 'GET', `models/fraud/blobs/${digestOf(deniedWeights)}`), deniedWeights, 'GET the legacy layer');
  });

  it('oras attach of a smuggling file with the CI token: oras pull of it, and of the layer, is refused', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'customs-oras-'));
    try {
      const oras = goTool('oras');
      await writeFile(join(dir, 'weights.bin'), deniedWeights);
      const attached = await run(oras, ['attach', '--plain-http', '--username', 'x', '--password', a.token('ci'), '--artifact-type', 'application/vnd.example.attestation', '--format', 'go-template', '--template', '{{.digest}}', `${a.srv.host}/models/fraud:v1`, 'weights.bin'], { cwd: dir });
      const ref = attached.stdout.trim();
      expect(ref).toMatch(/^sha256:[a-f0-9]{64}$/);
      const pulled = await run(oras, ['pull', '--plain-http', '-o', join(dir, 'out'), `${a.srv.host}/models/fraud@${ref}`], { cwd: dir }).then(
        () => 'pulled',
        (e: { stderr?: string }) => e.stderr ?? 'refused',
      );
      expect(pulled).toMatch(/403|denied/i);
      expect(existsSync(join(dir, 'out', 'weights.bin'))).toBe(false);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('skopeo, a real client, cannot copy the smuggling referrer out', async () => {
    const ci = a.client('ci');
    const ref = await pushRaw(ci, 'models/fraud', 'smuggler', {
      artifactType: 'application/vnd.example.sbom',
      layers: [{ mediaType: 'application/octet-stream', data: deniedWeights }],
      subject: allowed.descriptor,
    });
    const out = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${a.srv.host}/models/fraud@${ref}`]).then(
      (r) => ({ ok: true, text: r.stdout }),
      (e: { stderr?: string }) => ({ ok: false, text: e.stderr ?? '' }),
    );
    expect(out.ok).toBe(false);
    expect(out.text).toMatch(/denied|403/i);
  });
});
