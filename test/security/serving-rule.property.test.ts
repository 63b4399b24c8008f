import { createPublicKey, randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { opsCommands as cli } from '../../src/cli/ops/index.js';
import { digestOf, EMPTY_JSON_DIGEST, type Digest } from '../../src/oci/index.js';
import { newKey, pushModel, pushSignatureWithLayer, type PushedModel } from '../gate-fixtures.js';
import { capture } from '../ops-fixtures.js';
import { anonymous, pushRaw, startArena, type Arena } from './helpers.js';

/**
 * The one rule (docs/security.md), checked as a property over the whole HTTP API: random repositories
 * of models (signed or not) and referrers of every kind (a genuine signature, a valid SBOM, unsigned junk
 * carrying blobs of other models, a genuine signature with a smuggled layer, an unsigned legacy `.sig`
 * tag), with random manifests and blobs quarantined. An oracle written from the rule's text (not from
 * the code) says what may be served; every manifest and blob is then fetched anonymously, and what
 * customs serves must be exactly that: nothing the rule forbids, nothing it allows refused.
 */
type Kind = 'signature' | 'sbom' | 'junk' | 'signature+smuggled' | 'legacy-junk';

const scenario = fc.record({
  models: fc.array(fc.record({ layers: fc.uniqueArray(fc.nat({ max: 5 }), { minLength: 1, maxLength: 3 }), signed: fc.boolean(), quarantined: fc.boolean() }), { minLength: 1, maxLength: 3 }),
  referrers: fc.array(
    fc.record({ subject: fc.nat(), kind: fc.constantFrom<Kind>('signature', 'sbom', 'junk', 'signature+smuggled', 'legacy-junk'), smuggle: fc.nat({ max: 5 }), quarantined: fc.boolean() }),
    { maxLength: 4 },
  ),
  quarantinedBlobs: fc.uniqueArray(fc.nat({ max: 5 }), { maxLength: 2 }),
});

describe('the serving rule, as a property of the HTTP API', () => {
  let a: Arena;
  const signer = newKey();
  let run = 0;

  beforeAll(async () => {
    a = await startArena();
    await a.srv.trustKey(createPublicKey(signer.publicPem), 'release');
  });
  afterAll(async () => {
    await a?.srv.close();
  });

  it('serves exactly what the rule allows', async () => {
    await fc.assert(
      fc.asyncProperty(scenario, async (sc) => {
        const repo = `prop/r${run++}`;
        const ops = a.client('ops');
        const pool = Array.from({ length: 6 }, (_, i) => Buffer.concat([Buffer.from(`${repo} blob ${i}\n`), randomBytes(64)]));
        const quarantine = async (d: Digest) => void (await cli.quarantine(a.ops, capture().io, d, { reason: 'property' }));

        // What was pushed, and the oracle's facts about it.
        interface Node { digest: Digest; refs: Digest[]; ok: boolean; subject?: Digest; quarantined: boolean; /** a genuine signature of its subject */ signs?: boolean }
        const manifests: Node[] = [];
        const models: PushedModel[] = [];
        for (const [i, m] of sc.models.entries()) {
          const pushed = await pushModel(ops, repo, `v${i}`, m.layers.map((l) => ({ path: `f${l}.bin`, bytes: pool[l]! })), `${repo}-m${i}`);
          models.push(pushed);
          manifests.push({ digest: pushed.digest, refs: [pushed.config, ...pushed.layers], ok: m.signed, quarantined: m.quarantined });
          if (m.signed) {
            const sig = await pushSignatureWithLayer(ops, repo, pushed.descriptor, signer.key);
            manifests.push({ digest: sig.digest, refs: [EMPTY_JSON_DIGEST, sig.layer], ok: true, subject: pushed.digest, quarantined: false, signs: true });
          }
        }
        for (const r of sc.referrers) {
          const subject = models[r.subject % models.length]!;
          const smuggled = pool[r.smuggle]!;
          let node: Node;
          if (r.kind === 'signature') {
            const sig = await pushSignatureWithLayer(ops, repo, subject.descriptor, signer.key);
            node = { digest: sig.digest, refs: [EMPTY_JSON_DIGEST, sig.layer], ok: true, subject: subject.digest, quarantined: r.quarantined, signs: true };
          } else if (r.kind === 'sbom') {
            const bom = Buffer.from(JSON.stringify({ bomFormat: 'CycloneDX', specVersion: '1.6', version: 1, serialNumber: `urn:uuid:${crypto.randomUUID()}`, components: [] }));
            const d = await pushRaw(ops, repo, undefined, { artifactType: 'application/vnd.cyclonedx+json', layers: [{ mediaType: 'application/vnd.cyclonedx+json', data: bom }], subject: subject.descriptor });
            node = { digest: d, refs: [EMPTY_JSON_DIGEST, digestOf(bom)], ok: true, subject: subject.digest, quarantined: r.quarantined };
          } else if (r.kind === 'junk') {
            const d = await pushRaw(ops, repo, undefined, { artifactType: 'application/vnd.example.junk', layers: [{ mediaType: 'application/octet-stream', data: smuggled }], subject: subject.descriptor });
            node = { digest: d, refs: [EMPTY_JSON_DIGEST, digestOf(smuggled)], ok: false, subject: subject.digest, quarantined: r.quarantined };
          } else if (r.kind === 'signature+smuggled') {
            const sig = await pushSignatureWithLayer(ops, repo, subject.descriptor, signer.key);
            const bundle = (await anonymous(a.srv, 'GET', `${repo}/blobs/${sig.layer}`)).body;
            const d = await pushRaw(ops, repo, undefined, {
              artifactType: 'application/vnd.dev.sigstore.bundle.v0.3+json',
              layers: [
                { mediaType: 'application/vnd.dev.sigstore.bundle.v0.3+json', data: bundle },
                { mediaType: 'application/octet-stream', data: smuggled },
              ],
              subject: subject.descriptor,
            });
            manifests.push({ digest: sig.digest, refs: [EMPTY_JSON_DIGEST, sig.layer], ok: true, subject: subject.digest, quarantined: false, signs: true });
            node = { digest: d, refs: [EMPTY_JSON_DIGEST, digestOf(bundle), digestOf(smuggled)], ok: false, subject: subject.digest, quarantined: r.quarantined };
          } else {
            const tag = `${subject.digest.replace(':', '-')}.sig`;
            const cfg = Buffer.from(`{"legacy":"${repo}"}`);
            const d = await pushRaw(ops, repo, tag, { config: { mediaType: 'application/vnd.oci.image.config.v1+json', data: cfg }, layers: [{ mediaType: 'application/vnd.dev.cosign.simplesigning.v1+json', data: smuggled }] });
            node = { digest: d, refs: [digestOf(cfg), digestOf(smuggled)], ok: false, subject: subject.digest, quarantined: r.quarantined };
          }
          manifests.push(node);
        }
        for (const n of manifests) if (n.quarantined) await quarantine(n.digest);
        const qBlobs = new Set(sc.quarantinedBlobs.map((i) => digestOf(pool[i]!)));
        for (const d of qBlobs) await quarantine(d);

        // The oracle, from the rule's words. A genuine signature signs its subject wherever it came from
        // (quarantining a signature stops serving it; withdrawing trust in its key is what stops it counting).
        for (const n of manifests) if (n.signs) manifests.find((m) => m.digest === n.subject)!.ok = true;
        const byDigest = new Map(manifests.map((n) => [n.digest, n]));
        const served = (d: Digest, depth = 0): boolean => {
          const n = byDigest.get(d);
          if (!n || n.quarantined || depth > 4) return false;
          if (n.refs.some((r) => qBlobs.has(r) || byDigest.get(r)?.quarantined)) return false;
          if (!n.ok) return false; // unsigned, or evidence that does not verify
          return n.subject === undefined || served(n.subject, depth + 1);
        };
        const blobServed = (b: Digest): boolean => !qBlobs.has(b) && manifests.some((n) => n.refs.includes(b) && served(n.digest));

        const expected: string[] = [];
        const got: string[] = [];
        for (const n of manifests) {
          expected.push(`${n.digest} ${served(n.digest) ? 200 : 403}`);
          got.push(`${n.digest} ${(await anonymous(a.srv, 'GET', `${repo}/manifests/${n.digest}`)).status}`);
        }
        for (const b of new Set(manifests.flatMap((n) => n.refs))) {
          expected.push(`${b} ${blobServed(b) ? 200 : 403}`);
          got.push(`${b} ${(await anonymous(a.srv, 'GET', `${repo}/blobs/${b}`)).status}`);
        }
        expect(got).toEqual(expected);
      }),
      { numRuns: Number(process.env.CUSTOMS_PROPERTY_RUNS ?? 12), seed: Number(process.env.CUSTOMS_PROPERTY_SEED ?? 20261205), endOnFailure: true },
    );
  });
});
