import { createHash, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Gate, buildGate, describeFailures, defaultPolicy, loadTrust, parsePolicy, withMode, writeKeyPair, trustKeysDir, type PolicyInput } from '../src/verify/index.js';
import { EMPTY_CONFIG, makePickles, MemorySource, referrerManifest, sha256, VECTORS } from './helpers/verify.js';

/** The gate over its own ContentSource interface, built from real bytes (vectors and keys made here). */
const BUNDLE = 'application/vnd.dev.sigstore.bundle.v0.3+json';
const read = (p: string): Buffer => readFileSync(join(VECTORS, p));

function messageBundle(bytes: Buffer, key: KeyObject | string): Buffer {
  return Buffer.from(
    JSON.stringify({
      mediaType: BUNDLE,
      verificationMaterial: { publicKey: { hint: '' }, tlogEntries: [] },
      messageSignature: { messageDigest: { algorithm: 'SHA2_256', digest: createHash('sha256').update(bytes).digest('base64') }, signature: sign('sha256', bytes, key).toString('base64') },
    }),
  );
}

function gateFor(source: MemorySource, input: PolicyInput, dataDir = '/nonexistent'): Gate {
  const policy = parsePolicy(input);
  return new Gate({ source, policy, trust: loadTrust(policy, { dataDir, baseDir: VECTORS }) });
}

describe('default policy: a signature by a key in <data>/trust/keys', () => {
  const data = mkdtempSync(join(tmpdir(), 'customs-gate-'));
  const keyFiles = { privateKeyPath: join(data, 'customs.key'), publicKeyPath: join(trustKeysDir(data), 'customs.pub') };
  writeKeyPair(keyFiles);
  const privateKey = readFileSync(keyFiles.privateKeyPath, 'utf8');
  const source = new MemorySource();
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: EMPTY_CONFIG, layers: [] }));
  const digest = source.putManifest(manifest);
  const gate = new Gate({ source, policy: defaultPolicy(), trust: loadTrust(defaultPolicy(), { dataDir: data }) });

  it('denies the unsigned manifest, allows it once signed, denies again when the signature goes', async () => {
    const v1 = await gate.check('models/demo', digest);
    expect(v1).toMatchObject({ allowed: false, mode: 'enforce', rule: 'default' });
    expect(describeFailures(v1)[0]).toMatch(/default signatures: no signature found/);

    const sig = referrerManifest(source, digest, BUNDLE, BUNDLE, messageBundle(manifest, privateKey));
    expect((await gate.check('models/demo', digest)).allowed).toBe(false); // cached until invalidated
    gate.invalidate(digest);
    const v2 = await gate.check('models/demo', digest);
    expect(v2.allowed).toBe(true);
    expect(v2.referrers).toEqual([sig]);
    expect(v2.findings[0]!.reason).toMatch(/1 of 1 required signature\(s\) verified: key sha256:/);

    source.deleteManifest(sig);
    gate.invalidate(digest);
    expect((await gate.check('models/demo', digest)).allowed).toBe(false);
  });

  it('keeps no bookkeeping for verdicts the cache evicted (a server that checks many digests does not grow)', async () => {
    const s = new MemorySource();
    const small = new Gate({ source: s, policy: defaultPolicy(), trust: loadTrust(defaultPolicy(), { dataDir: data }), cacheSize: 3 });
    for (let i = 0; i < 20; i++) {
      const d = s.putManifest(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: EMPTY_CONFIG, layers: [], annotations: { n: String(i) } })));
      expect((await small.check('models/many', d)).allowed).toBe(false);
    }
    expect((small as unknown as { keysByDigest: Map<string, Set<string>> }).keysByDigest.size).toBe(3);
  });

  it('a signature by a key that is not trusted is denied', async () => {
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const s = new MemorySource();
    const d = s.putManifest(manifest);
    referrerManifest(s, d, BUNDLE, BUNDLE, messageBundle(manifest, other));
    const g = new Gate({ source: s, policy: defaultPolicy(), trust: loadTrust(defaultPolicy(), { dataDir: data }) });
    const v = await g.check('models/demo', d);
    expect(v.allowed).toBe(false);
    expect(describeFailures(v).join()).toMatch(/0 of 1 required signature\(s\) verified; rejected: sigstore bundle/);
  });

  it('audit mode serves but keeps the findings; off serves without checking', async () => {
    const s = new MemorySource();
    const d = s.putManifest(manifest);
    const audit = new Gate({ source: s, policy: withMode(defaultPolicy(), 'audit'), trust: loadTrust(defaultPolicy(), { dataDir: data }) });
    const v = await audit.check('x', d);
    expect(v).toMatchObject({ allowed: true, mode: 'audit', wouldDeny: true });
    expect(describeFailures(v).length).toBe(1);
    const off = new Gate({ source: s, policy: withMode(defaultPolicy(), 'off'), trust: loadTrust(defaultPolicy(), { dataDir: data }) });
    expect(await off.check('x', d)).toMatchObject({ allowed: true, mode: 'off', wouldDeny: false });
    expect(off.policyHash).not.toBe(audit.policyHash);
  });

  it('caches by (repository, digest, policy, trust), single-flight, and clears', async () => {
    const s = new MemorySource();
    const d = s.putManifest(manifest);
    const g = new Gate({ source: s, policy: defaultPolicy(), trust: loadTrust(defaultPolicy(), { dataDir: data }) });
    const [a, b] = await Promise.all([g.check('r', d), g.check('r', d)]);
    expect(a).toBe(b);
    const reads = s.reads;
    expect(await g.check('r', d)).toBe(a);
    expect(s.reads).toBe(reads);
    g.clear();
    expect(await g.check('r', d)).not.toBe(a);
  });
});

describe('a ModelPack model with signature, provenance, SBOM and model checks (vectors/synthetic)', () => {
  const manifest = read('synthetic/modelpack-manifest.json');
  const build = (extra?: (s: MemorySource, d: string) => void): { source: MemorySource; digest: string } => {
    const source = new MemorySource();
    const digest = source.putManifest(manifest);
    source.putBlob(read('synthetic/modelpack-config.json'));
    referrerManifest(source, digest, BUNDLE, BUNDLE, read('synthetic/msg-valid.sigstore.json'));
    referrerManifest(source, digest, BUNDLE, BUNDLE, read('synthetic/dsse-slsa-training-valid.sigstore.json'), { 'dev.sigstore.bundle.predicateType': 'https://slsa.dev/provenance/v1' });
    referrerManifest(source, digest, 'application/vnd.cyclonedx+json', 'application/vnd.cyclonedx+json', read('cyclonedx/valid-machine-learning-1.6.json'));
    extra?.(source, digest);
    return { source, digest };
  };
  const KEY1 = { key: 'synthetic/key1.pub.pem' };
  const policy = (over: Record<string, unknown> = {}): PolicyInput => ({
    rules: [
      {
        name: 'models',
        match: 'models/**',
        signatures: { threshold: 1, authorities: [KEY1] },
        attestations: [
          {
            predicateType: 'https://slsa.dev/provenance/',
            authorities: [KEY1],
            conditions: [
              'predicate.runDetails.builder.id == "https://example.com/trainer/v1"',
              'predicate.buildDefinition.resolvedDependencies.exists(d, has(d.annotations) && d.annotations.role == "training-dataset")',
            ],
          },
        ],
        sbom: { required: true, denyLicenses: ['AGPL-*'] },
        // The vector's model.safetensors is a 7-byte placeholder the scan would rightly deny; this rule checks the format only.
        model: { allowFormats: ['safetensors'], pickleScan: false },
        ...over,
      },
    ],
  });

  it('is allowed, with one ok finding per requirement', async () => {
    const { source, digest } = build();
    const v = await gateFor(source, policy()).check('models/demo', digest);
    expect(v.findings.map((f) => [f.check, f.ok])).toEqual([
      ['signatures', true],
      ['attestations', true],
      ['sbom', true],
      ['model', true],
    ]);
    expect(v.allowed).toBe(true);
  });

  it('a CEL condition that does not hold denies, naming the condition', async () => {
    const { source, digest } = build();
    const p = policy({ attestations: [{ predicateType: 'https://slsa.dev/provenance/v1', authorities: [KEY1], conditions: ['predicate.runDetails.builder.id == "https://ci.example/builder"'] }] });
    const v = await gateFor(source, p).check('models/demo', digest);
    expect(v.allowed).toBe(false);
    expect(describeFailures(v).join()).toMatch(/condition `predicate\.runDetails\.builder\.id == "https:\/\/ci\.example\/builder"` is false/);
  });

  it('provenance about another manifest does not count (wrong subject)', async () => {
    const source = new MemorySource();
    const digest = source.putManifest(manifest);
    source.putBlob(read('synthetic/modelpack-config.json'));
    referrerManifest(source, digest, BUNDLE, BUNDLE, read('synthetic/msg-valid.sigstore.json'));
    referrerManifest(source, digest, BUNDLE, BUNDLE, read('synthetic/dsse-slsa-training-wrong-subject.sigstore.json'));
    referrerManifest(source, digest, 'application/vnd.cyclonedx+json', 'application/vnd.cyclonedx+json', read('cyclonedx/valid-machine-learning-1.6.json'));
    const v = await gateFor(source, policy()).check('models/demo', digest);
    expect(v.allowed).toBe(false);
    expect(describeFailures(v).join()).toMatch(/attestations: no https:\/\/slsa\.dev\/provenance\/ attestation .*does not match the served manifest/);
  });

  it('tampered, payload-type-swapped and other-key provenance are denied', async () => {
    for (const f of ['tampered-payload', 'payloadtype-swapped', 'signed-by-other-key']) {
      const source = new MemorySource();
      const digest = source.putManifest(manifest);
      source.putBlob(read('synthetic/modelpack-config.json'));
      referrerManifest(source, digest, BUNDLE, BUNDLE, read('synthetic/msg-valid.sigstore.json'));
      referrerManifest(source, digest, BUNDLE, BUNDLE, read(`synthetic/dsse-slsa-training-${f}.sigstore.json`));
      referrerManifest(source, digest, 'application/vnd.cyclonedx+json', 'application/vnd.cyclonedx+json', read('cyclonedx/valid-machine-learning-1.6.json'));
      const v = await gateFor(source, policy()).check('models/demo', digest);
      expect(v.findings.find((x) => x.check === 'attestations')?.ok, f).toBe(false);
      expect(v.allowed).toBe(false);
    }
  });

  it('an invalid SBOM, a missing SBOM, a denied license: denied', async () => {
    const noSbom = new MemorySource();
    const d0 = noSbom.putManifest(manifest);
    noSbom.putBlob(read('synthetic/modelpack-config.json'));
    referrerManifest(noSbom, d0, BUNDLE, BUNDLE, read('synthetic/msg-valid.sigstore.json'));
    expect(describeFailures(await gateFor(noSbom, policy({ attestations: [] })).check('models/demo', d0)).join()).toMatch(/sbom: no SBOM found/);

    referrerManifest(noSbom, d0, 'application/vnd.cyclonedx+json', 'application/vnd.cyclonedx+json', read('cyclonedx/invalid-component-type-1.6.json'));
    expect(describeFailures(await gateFor(noSbom, policy({ attestations: [] })).check('models/demo', d0)).join()).toMatch(/no valid SBOM: .*components\/0\/type/);

    const spdx = JSON.parse(read('spdx/syftbom.spdx.json').toString());
    const s = new MemorySource();
    const d = s.putManifest(manifest);
    s.putBlob(read('synthetic/modelpack-config.json'));
    referrerManifest(s, d, BUNDLE, BUNDLE, read('synthetic/msg-valid.sigstore.json'));
    referrerManifest(s, d, 'application/spdx+json', 'application/spdx+json', Buffer.from(JSON.stringify(spdx)));
    const purl = spdx.packages.flatMap((p: { externalRefs?: { referenceType: string; referenceLocator: string }[] }) => p.externalRefs ?? []).find((r: { referenceType: string }) => r.referenceType === 'purl').referenceLocator as string;
    const v = await gateFor(s, policy({ attestations: [], sbom: { denyPurls: [purl.replace(/@.*/, '@*')] } })).check('models/demo', d);
    expect(describeFailures(v).join()).toMatch(/is denied/);
  });

  it('a format outside the allowlist is denied', async () => {
    const { source, digest } = build();
    const v = await gateFor(source, policy({ model: { allowFormats: ['gguf'] } })).check('models/demo', digest);
    expect(describeFailures(v).join()).toMatch(/model format safetensors is not allowed/);
  });

  it('unmatched repositories follow the default, and --gate off/audit override it', async () => {
    const { source, digest } = build();
    expect(await gateFor(source, policy()).check('other/repo', digest)).toMatchObject({ allowed: false, rule: '(default)' });
    expect(await gateFor(source, { ...policy(), default: 'allow' }).check('other/repo', digest)).toMatchObject({ allowed: true });
    expect(await gateFor(source, { ...policy(), mode: 'off' }).check('other/repo', digest)).toMatchObject({ allowed: true, mode: 'off' });
    expect(await gateFor(source, { ...policy(), mode: 'audit' }).check('other/repo', digest)).toMatchObject({ allowed: true, wouldDeny: true });
  });

  it('a threshold of 2 is not met by one signature under two names of the same key', async () => {
    const { source, digest } = build();
    const v = await gateFor(source, policy({ attestations: [], signatures: { threshold: 2, authorities: [{ name: 'a', key: 'synthetic/key1.pub.pem' }, { name: 'b', key: 'synthetic/key1.pub.pem' }] } })).check('models/demo', digest);
    expect(describeFailures(v).join()).toMatch(/1 of 2 required/);
  });
});

describe('DSSE bundles built here: cosign v3 sign statements are signatures, other statements are not', () => {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const dsseBundle = (statement: object): Buffer => {
    const payload = Buffer.from(JSON.stringify(statement));
    const type = 'application/vnd.in-toto+json';
    const pae = Buffer.concat([Buffer.from(`DSSEv1 ${type.length} ${type} ${payload.length} `), payload]);
    return Buffer.from(JSON.stringify({ mediaType: BUNDLE, verificationMaterial: { publicKey: { hint: 'x' }, tlogEntries: [] }, dsseEnvelope: { payload: payload.toString('base64'), payloadType: type, signatures: [{ sig: sign('sha256', pae, privateKey).toString('base64') }] } }));
  };
  const setup = (predicateType: string, subjectDigest?: string) => {
    const source = new MemorySource();
    const digest = source.putManifest({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: EMPTY_CONFIG, layers: [] });
    const hex = (subjectDigest ?? digest).slice(7);
    referrerManifest(source, digest, BUNDLE, BUNDLE, dsseBundle({ _type: 'https://in-toto.io/Statement/v1', subject: [{ name: 'm', digest: { sha256: hex } }], predicateType, predicate: {} }));
    return { source, digest };
  };
  const p: PolicyInput = { rules: [{ match: '**', signatures: { authorities: [{ key: pem }] } }] };
  it('https://sigstore.dev/cosign/sign/v1 bound to the manifest: allowed', async () => {
    const { source, digest } = setup('https://sigstore.dev/cosign/sign/v1');
    expect((await gateFor(source, p).check('r', digest)).allowed).toBe(true);
  });
  it('the same statement about another digest: denied', async () => {
    const { source, digest } = setup('https://sigstore.dev/cosign/sign/v1', sha256('other'));
    const v = await gateFor(source, p).check('r', digest);
    expect(v.allowed).toBe(false);
    expect(describeFailures(v).join()).toMatch(/does not match the served manifest/);
  });
  it('a provenance statement is not a signature', async () => {
    const { source, digest } = setup('https://slsa.dev/provenance/v1');
    expect((await gateFor(source, p).check('r', digest)).allowed).toBe(false);
  });
});

describe('other signature formats through the gate', () => {
  it('cosign legacy .sig tag (vectors/cosign-legacy/dir-img-cosign-valid)', async () => {
    const dir = 'cosign-legacy/dir-img-cosign-valid';
    const source = new MemorySource();
    const digest = source.putManifest(read(`${dir}/manifest.json`));
    const payload = read(`${dir}/derived-signature-1.payload`);
    const sigManifest = JSON.parse(read(`${dir}/derived-sig-manifest.json`).toString());
    source.putBlob(payload);
    source.putManifest(sigManifest, read(`${dir}/derived-sig-tag.txt`).toString().trim());
    const p: PolicyInput = { rules: [{ match: '**', signatures: { authorities: [{ key: 'cosign-legacy/cosign.pub' }] } }] };
    expect((await gateFor(source, p).check('cosign-signed', digest)).allowed).toBe(true);
    const wrong: PolicyInput = { rules: [{ match: '**', signatures: { authorities: [{ key: 'synthetic/key1.pub.pem' }] } }] };
    expect((await gateFor(source, wrong).check('cosign-signed', digest)).allowed).toBe(false);
  });

  it('notation JWS referrer (vectors/notation)', async () => {
    const source = new MemorySource();
    const digest = source.putManifest(read('notation/oci-layout/blobs/sha256/19dbd2e48e921426ee8ace4dc892edfb2ecdc1d1a72d5416c83670c30acecef0'));
    referrerManifest(source, digest, 'application/vnd.cncf.notary.signature', 'application/jose+json', read('notation/jws_signature.sig'));
    const p = (roots: string): PolicyInput => ({ rules: [{ match: '**', signatures: { authorities: [{ x509: { roots } }] } }] });
    expect((await gateFor(source, p('notation/truststore/alpine-selfsigned-from-jws-x5c.pem')).check('alpine', digest)).allowed).toBe(true);
    expect((await gateFor(source, p('notation/truststore/NotationTestRoot.pem')).check('alpine', digest)).allowed).toBe(false);
  });

  it('OpenSSF model-signing bundle bound to the model layers', async () => {
    const set = join(VECTORS, 'model-signing/v1.1.0-elliptic-key');
    const source = new MemorySource();
    const layers = ['signme-1', 'signme-2'].map((f) => ({ ...source.putBlob(readFileSync(join(set, f))), mediaType: 'application/vnd.cncf.model.weight.v1.raw', annotations: { 'org.cncf.model.filepath': f } }));
    const digest = source.putManifest({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', artifactType: 'application/vnd.cncf.model.manifest.v1+json', config: EMPTY_CONFIG, layers });
    referrerManifest(source, digest, BUNDLE, BUNDLE, readFileSync(join(set, 'model.sig')));
    const v = await gateFor(source, { rules: [{ match: '**', signatures: { authorities: [{ key: 'model-signing/keys/certificate/signing-key-pub.pem' }] }, model: {} }] }).check('m', digest);
    expect(v.allowed).toBe(true);
  });
});

describe('pickles through the gate', () => {
  let P: Record<string, Buffer>;
  beforeAll(() => {
    P = makePickles();
  });
  const modelWith = (file: string, bytes: Buffer): { source: MemorySource; digest: string } => {
    const source = new MemorySource();
    const layer = { ...source.putBlob(bytes), mediaType: 'application/vnd.cncf.model.weight.v1.raw', annotations: { 'org.cncf.model.filepath': file } };
    return { source, digest: source.putManifest({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: EMPTY_CONFIG, layers: [layer] }) };
  };
  const policy: PolicyInput = { rules: [{ match: '**', model: { pickleScan: true } }] };
  it('a pickle that calls os.system is denied', async () => {
    const { source, digest } = modelWith('model.pkl', P['evil-p4.pkl']!);
    const v = await gateFor(source, policy).check('m', digest);
    expect(v.allowed).toBe(false);
    expect(describeFailures(v).join()).toMatch(/model\.pkl imports posix\.system \(dangerous\)/);
  });
  it('a scikit-learn IsolationForest (joblib) is allowed', async () => {
    const { source, digest } = modelWith('model.joblib', P['iforest.joblib']!);
    expect((await gateFor(source, policy).check('m', digest)).allowed).toBe(true);
  });
  it('a missing layer denies and is not cached', async () => {
    const { source, digest } = modelWith('model.pkl', P['evil-p4.pkl']!);
    source.blobs.clear();
    const g = gateFor(source, policy);
    const v = await g.check('m', digest);
    expect(describeFailures(v).join()).toMatch(/not available/);
    expect(g.peek('m', digest)).toBeUndefined();
  });
});

describe('buildGate (server.ts and SIGHUP)', () => {
  it('parses the config slice, resolves paths from the config directory, applies --gate', async () => {
    const source = new MemorySource();
    const manifest = read('synthetic/modelpack-manifest.json');
    const digest = source.putManifest(manifest);
    referrerManifest(source, digest, BUNDLE, BUNDLE, read('synthetic/msg-valid.sigstore.json'));
    const policy = { default: 'deny', rules: [{ match: 'models/**', signatures: { authorities: [{ key: 'key1.pub.pem' }] } }] };
    const g = buildGate({ source, policy, dataDir: '/nonexistent', configDir: join(VECTORS, 'synthetic') });
    expect((await g.check('models/demo', digest)).allowed).toBe(true);
    expect((await g.check('library/demo', digest)).allowed).toBe(false);
    const audit = buildGate({ source, policy, dataDir: '/nonexistent', configDir: join(VECTORS, 'synthetic'), mode: 'audit' });
    expect(await audit.check('library/demo', digest)).toMatchObject({ allowed: true, wouldDeny: true, mode: 'audit' });
    expect(() => buildGate({ source, policy: { rules: [{ match: 'x', mode: 'maybe' }] }, dataDir: '/x' })).toThrow(/policy\.rules\.0\.mode/);
    expect(() => buildGate({ source, policy, dataDir: '/x', configDir: '/nonexistent' })).toThrow(/ENOENT/);
  });
});

describe('fail closed', () => {
  it('a ContentSource that throws yields a denying, uncached verdict', async () => {
    const source = new MemorySource();
    const digest = source.putManifest({ schemaVersion: 2, config: EMPTY_CONFIG, layers: [] });
    source.listReferrers = async () => {
      throw new Error('disk on fire');
    };
    const g = gateFor(source, { rules: [{ match: '**', signatures: { authorities: [{ key: 'synthetic/key1.pub.pem' }] } }] });
    const v = await g.check('x', digest);
    expect(v.allowed).toBe(false);
    expect(describeFailures(v).join()).toMatch(/disk on fire/);
    expect(g.peek('x', digest)).toBeUndefined();
  });
  it('an unknown manifest is denied', async () => {
    const g = gateFor(new MemorySource(), { default: 'deny', rules: [{ match: '**', signatures: { authorities: [{ key: 'synthetic/key1.pub.pem' }] } }] });
    expect(await g.check('x', sha256('nothing'))).toMatchObject({ allowed: false });
  });
});
