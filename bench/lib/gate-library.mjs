// Cold verification through the gate library alone (no HTTP, no storage): the
// verifiers' own cost for a manifest with a signature, SLSA provenance and a
// CycloneDX SBOM as referrers, read from memory. Used by bench/gate.mjs.
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { Readable } from 'node:stream';
import { makeTempDir } from './proc.mjs';
import { builtModule } from './servers.mjs';
import { BUNDLE_TYPE, COSIGN_SIGN, CYCLONEDX_TYPE, SLSA_V1, provenanceBundle, sbomBytes, signatureBundle } from './sign.mjs';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const EMPTY = { mediaType: 'application/vnd.oci.empty.v1+json', digest: 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a', size: 2 };
const sha = (b) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** The gate's ContentSource over maps, as the registry would answer (referrers derived from `subject`). */
class MemorySource {
  manifests = new Map();
  blobs = new Map();
  referrers = new Map();
  putBlob(bytes) {
    const digest = sha(bytes);
    this.blobs.set(digest, bytes);
    return { digest, size: bytes.length };
  }
  putManifest(obj) {
    const bytes = Buffer.from(JSON.stringify(obj));
    const digest = sha(bytes);
    this.manifests.set(digest, { mediaType: OCI_MANIFEST, bytes });
    if (obj.subject) {
      const list = this.referrers.get(obj.subject.digest) ?? [];
      list.push({ mediaType: OCI_MANIFEST, digest, size: bytes.length, artifactType: obj.artifactType, ...(obj.annotations ? { annotations: obj.annotations } : {}) });
      this.referrers.set(obj.subject.digest, list);
    }
    return { mediaType: OCI_MANIFEST, digest, size: bytes.length };
  }
  referrer(subject, artifactType, layer, annotations) {
    const l = this.putBlob(layer);
    return this.putManifest({ schemaVersion: 2, mediaType: OCI_MANIFEST, artifactType, config: EMPTY, layers: [{ mediaType: artifactType, ...l }], subject, ...(annotations ? { annotations } : {}) });
  }
  async getManifest(_r, d) {
    return this.manifests.get(d);
  }
  async listReferrers(_r, d) {
    return [...(this.referrers.get(d) ?? [])];
  }
  async readBlob(_r, d, max) {
    const b = this.blobs.get(d);
    return b && b.length <= max ? b : undefined;
  }
  async openBlob(_r, d) {
    const b = this.blobs.get(d);
    return b ? Readable.from([b]) : undefined;
  }
  async resolveTag() {
    return undefined;
  }
}

/**
 * Verifies `n` distinct artifacts, each once (nothing cached), under `policy`; returns the
 * per-artifact milliseconds. Trust: `key`'s public key in a temporary <data>/trust/keys/.
 */
export async function coldVerifyLibrary({ key, policy, n }) {
  const { buildGate, warmUpSbomValidators } = await import(pathToFileURL(builtModule('verify/index.js')).href);
  warmUpSbomValidators(); // the server does this at start-up
  const dataDir = makeTempDir('gate-lib');
  mkdirSync(join(dataDir, 'trust', 'keys'), { recursive: true });
  writeFileSync(join(dataDir, 'trust', 'keys', 'bench.pub'), key.publicKeyPem);
  const source = new MemorySource();
  const repo = 'bench/lib';
  const subjects = [];
  for (let i = 0; i < n + 1; i++) {
    const layer = source.putBlob(Buffer.from(`layer ${i} `.repeat(100)));
    const subject = source.putManifest({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: EMPTY, layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...layer }], annotations: { n: String(i) } });
    source.referrer(subject, BUNDLE_TYPE, signatureBundle(key, repo, subject.digest), { 'dev.sigstore.bundle.predicateType': COSIGN_SIGN });
    source.referrer(subject, BUNDLE_TYPE, provenanceBundle(key, repo, subject.digest), { 'dev.sigstore.bundle.predicateType': SLSA_V1 });
    source.referrer(subject, CYCLONEDX_TYPE, sbomBytes());
    subjects.push(subject.digest);
  }
  const gate = buildGate({ source, policy, dataDir });
  const first = await gate.check(repo, subjects[0]); // JIT warm-up, not counted
  if (!first.allowed) throw new Error(`library gate denied the bench artifact: ${JSON.stringify(first.findings)}`);
  const ms = [];
  for (const d of subjects.slice(1)) {
    const t0 = performance.now();
    const v = await gate.check(repo, d);
    ms.push(performance.now() - t0);
    if (!v.allowed) throw new Error(`library gate denied ${d}: ${JSON.stringify(v.findings)}`);
  }
  return ms;
}
