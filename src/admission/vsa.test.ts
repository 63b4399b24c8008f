import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { cosignSignStatement, ociSubject, signingKeyFromPem, signStatement, type SigningKey } from '../artifacts/sign.js';
import { digestOf, type Digest } from '../oci/index.js';
import { verifyCosignAttestationLayer } from '../verify/cosign-legacy.js';
import type { SubjectContext } from '../verify/evidence.js';
import { parsePolicy } from '../verify/policy.js';
import { verifySigstoreBundle } from '../verify/sigstore.js';
import { loadTrust, VSA_PREDICATE_TYPE } from '../verify/trust.js';
import { legacyAttManifest, signSummary, summaryStatement, VSA_ANNOTATION, type SummaryInput } from './vsa.js';

function newKey(): SigningKey {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return signingKeyFromPem(privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
}

const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: digestOf(Buffer.from('{}')), size: 2 }, layers: [] }));
const digest = digestOf(manifest);

const input = (over: Partial<SummaryInput> = {}): SummaryInput => ({
  repository: 'models/fraud',
  digest,
  resourceUri: `oci://customs.example:5443/models/fraud@${digest}`,
  verifierId: 'https://customs.dev/verifier/v1',
  rule: 'models',
  policyHash: `sha256:${'a'.repeat(64)}`,
  trustHash: `sha256:${'b'.repeat(64)}`,
  inputs: [{ uri: `oci://customs.example:5443/models/fraud@sha256:${'c'.repeat(64)}`, digest: `sha256:${'c'.repeat(64)}` as Digest }],
  levels: ['SLSA_BUILD_LEVEL_0', 'CUSTOMS_SIGNATURES_VERIFIED'],
  issuedAt: new Date('2026-12-05T10:00:00Z'),
  ...over,
});

/** A subject context whose only authority is customs' verifier key, as the gate builds it for evidence. */
function verifierContext(key: SigningKey): SubjectContext {
  const trust = loadTrust(parsePolicy({ rules: [] }), { dataDir: '/nonexistent', verifierKey: key.publicKey });
  return { digest, bytes: manifest, authorities: [trust.verifier!], now: new Date() };
}

describe('verification summaries', () => {
  it('is a SLSA VSA v1 in-toto statement about the digest, with policy, inputs, result, levels and issue time', () => {
    const st = summaryStatement(input());
    expect(st._type).toBe('https://in-toto.io/Statement/v1');
    expect(st.subject).toEqual([{ name: 'models/fraud', digest: { sha256: digest.slice(7) } }]);
    expect(st.predicateType).toBe(VSA_PREDICATE_TYPE);
    expect(st.predicate).toMatchObject({
      verifier: { id: 'https://customs.dev/verifier/v1' },
      timeVerified: '2026-12-05T10:00:00.000Z',
      resourceUri: `oci://customs.example:5443/models/fraud@${digest}`,
      policy: { uri: 'urn:customs:policy:models', digest: { sha256: 'a'.repeat(64) } },
      inputAttestations: [{ digest: { sha256: 'c'.repeat(64) } }],
      verificationResult: 'PASSED',
      verifiedLevels: ['SLSA_BUILD_LEVEL_0', 'CUSTOMS_SIGNATURES_VERIFIED'],
      slsaVersion: '1.0',
    });
  });

  it('verifies as evidence under customs verifier key, in the bundle and in the legacy .att form', () => {
    const key = newKey();
    const signed = signSummary(summaryStatement(input()), key);
    const ctx = verifierContext(key);
    const viaBundle = verifySigstoreBundle(signed.bundleBytes, ctx);
    expect(viaBundle).toMatchObject([{ ok: true, authority: ctx.authorities[0]!.id }]);
    const att = verifyCosignAttestationLayer({ mediaType: 'application/vnd.dsse.envelope.v1+json', annotations: { predicateType: VSA_PREDICATE_TYPE }, blob: signed.envelopeBytes }, ctx);
    expect(att).toMatchObject([{ ok: true }]);
  });

  it('does not let the verifier key vouch for anything but a summary, nor another key for a summary', () => {
    const key = newKey();
    const ctx = verifierContext(key);
    // A signature of the content itself by customs' key: customs' key verifies summaries, not content.
    const sig = Buffer.from(JSON.stringify(signStatement(cosignSignStatement(ociSubject('models/fraud', digest)), key)));
    const out = verifySigstoreBundle(sig, ctx);
    expect(out).toMatchObject([{ ok: false }]);
    expect((out[0] as { reason: string }).reason).toMatch(/customs verifier key signs only https:\/\/slsa\.dev\/verification_summary\/v1 statements, not https:\/\/sigstore\.dev\/cosign\/sign\/v1/);
    // A summary signed by some other key is no summary of customs'.
    const forged = signSummary(summaryStatement(input()), newKey());
    expect(verifySigstoreBundle(forged.bundleBytes, ctx)).toMatchObject([{ ok: false }]);
    // A summary about another digest does not verify for this one.
    const other = signSummary(summaryStatement(input({ digest: `sha256:${'d'.repeat(64)}` as Digest })), key);
    expect(verifySigstoreBundle(other.bundleBytes, ctx)).toMatchObject([{ ok: false }]);
  });

  it('replaces its own earlier summary in the legacy .att manifest and keeps the producer\'s attestations', () => {
    const key = newKey();
    const first = legacyAttManifest([], signSummary(summaryStatement(input()), key), input());
    const firstLayers = (JSON.parse(first.manifest.toString()) as { layers: { digest: string; annotations?: Record<string, string> }[] }).layers;
    const producer = { mediaType: 'application/vnd.dsse.envelope.v1+json', digest: `sha256:${'e'.repeat(64)}` as Digest, size: 10, annotations: { predicateType: 'https://slsa.dev/provenance/v1' } };
    const second = legacyAttManifest([producer, ...(firstLayers as never[])], signSummary(summaryStatement(input({ policyHash: `sha256:${'f'.repeat(64)}` })), key), input({ policyHash: `sha256:${'f'.repeat(64)}` }));
    const layers = (JSON.parse(second.manifest.toString()) as { layers: { digest: string; annotations?: Record<string, string> }[] }).layers;
    expect(layers).toHaveLength(2);
    expect(layers[0]!.digest).toBe(producer.digest);
    expect(layers[1]!.annotations?.[VSA_ANNOTATION.policyHash]).toBe(`sha256:${'f'.repeat(64)}`);
    const config = JSON.parse(second.config.toString()) as { rootfs: { diff_ids: string[] } };
    expect(config.rootfs.diff_ids).toEqual(layers.map((l) => l.digest));
  });
});
