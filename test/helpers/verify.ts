import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { imageManifestSchema, type Descriptor } from '../../src/oci/schemas.js';
import type { ContentSource, TagResolver } from '../../src/verify/types.js';
import type { SubjectContext } from '../../src/verify/evidence.js';
import { parsePolicy, type AuthorityInput } from '../../src/verify/policy.js';
import { loadTrust, type ResolvedAuthority } from '../../src/verify/trust.js';

/** Test support for src/verify: vectors, resolved authorities, subject contexts. */
export const VECTORS = '/work/shared/vectors';
export const sha256 = (b: Buffer | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

export function authorities(list: AuthorityInput[], dataDir = '/nonexistent'): ResolvedAuthority[] {
  const policy = parsePolicy({ rules: [{ match: '**', signatures: { threshold: 1, authorities: list } }] });
  const trust = loadTrust(policy, { dataDir, baseDir: VECTORS });
  return policy.rules[0]!.signatures!.authorities.map((a) => trust.authority(a));
}

export function subjectContext(manifest: Buffer, auth: ResolvedAuthority[], now = new Date()): SubjectContext {
  let parsed;
  try {
    parsed = imageManifestSchema.safeParse(JSON.parse(manifest.toString()));
  } catch {
    parsed = undefined;
  }
  return { digest: sha256(manifest), bytes: manifest, authorities: auth, now, ...(parsed?.success ? { manifest: parsed.data } : {}) };
}

/**
 * The public-good trusted root as npm ships it (@sigstore/tuf seeds.json, a local file):
 * unlike trusted_root_pgi.json it has the timestamp authority newer bundles need.
 */
export function publicGoodRoot(): string {
  const seeds = JSON.parse(readFileSync('/usr/lib/node_modules/npm/node_modules/@sigstore/tuf/seeds.json', 'utf8')) as Record<string, { targets: Record<string, string> }>;
  const root = Buffer.from(Object.values(seeds)[0]!.targets['trusted_root.json']!, 'base64');
  const dir = mkdtempSync(join(tmpdir(), 'customs-root-'));
  writeFileSync(join(dir, 'trusted_root.json'), root);
  return join(dir, 'trusted_root.json');
}

/**
 * The gate's own interface implemented over maps of real bytes: manifests, blobs, tags.
 * Referrers are derived from the stored manifests' `subject`, as a registry does.
 */
export class MemorySource implements ContentSource, TagResolver {
  readonly manifests = new Map<string, { mediaType: string; bytes: Buffer }>();
  readonly blobs = new Map<string, Buffer>();
  readonly tags = new Map<string, string>();
  reads = 0;

  putBlob(bytes: Buffer | string): Descriptor {
    const b = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes);
    const digest = sha256(b) as Descriptor['digest'];
    this.blobs.set(digest, b);
    return { mediaType: 'application/octet-stream', digest, size: b.length };
  }

  putManifest(bytes: Buffer | string | object, tag?: string): string {
    const b = Buffer.isBuffer(bytes) ? bytes : Buffer.from(typeof bytes === 'string' ? bytes : JSON.stringify(bytes));
    const json = JSON.parse(b.toString()) as { mediaType?: string };
    const digest = sha256(b);
    this.manifests.set(digest, { mediaType: json.mediaType ?? 'application/vnd.oci.image.manifest.v1+json', bytes: b });
    if (tag) this.tags.set(tag, digest);
    return digest;
  }

  deleteManifest(digest: string): void {
    this.manifests.delete(digest);
  }

  async getManifest(_repo: string, digest: string): Promise<{ mediaType: string; bytes: Buffer } | undefined> {
    this.reads++;
    return this.manifests.get(digest);
  }

  async listReferrers(_repo: string, digest: string): Promise<Descriptor[]> {
    const out: Descriptor[] = [];
    for (const [d, m] of this.manifests) {
      const j = JSON.parse(m.bytes.toString()) as { subject?: { digest: string }; artifactType?: string; config?: { mediaType: string } };
      if (j.subject?.digest === digest) out.push({ mediaType: m.mediaType, digest: d as Descriptor['digest'], size: m.bytes.length, artifactType: j.artifactType ?? j.config?.mediaType });
    }
    return out;
  }

  async readBlob(_repo: string, digest: string, maxBytes: number): Promise<Buffer | undefined> {
    const b = this.blobs.get(digest);
    return b && b.length <= maxBytes ? b : undefined;
  }

  async openBlob(_repo: string, digest: string): Promise<Readable | undefined> {
    const b = this.blobs.get(digest);
    if (!b) return undefined;
    // Small chunks, so the scanners really stream across chunk boundaries.
    const chunks: Buffer[] = [];
    for (let i = 0; i < b.length; i += 1000) chunks.push(b.subarray(i, i + 1000));
    return Readable.from(chunks);
  }

  async resolveTag(_repo: string, tag: string): Promise<string | undefined> {
    return this.tags.get(tag);
  }
}

export const EMPTY_CONFIG = { mediaType: 'application/vnd.oci.empty.v1+json', digest: 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a', size: 2 };

/** A referrer manifest for `subject` holding one blob layer. */
export function referrerManifest(source: MemorySource, subject: string, artifactType: string, layerMediaType: string, blob: Buffer, annotations?: Record<string, string>): string {
  source.putBlob('{}');
  const layer = { ...source.putBlob(blob), mediaType: layerMediaType, ...(annotations ? { annotations } : {}) };
  const s = source.manifests.get(subject)!;
  return source.putManifest({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    artifactType,
    config: EMPTY_CONFIG,
    layers: [layer],
    subject: { mediaType: s.mediaType, digest: subject, size: s.bytes.length },
  });
}

/**
 * Pickles made by Debian's python3 at test time (never stored in the repo):
 * malicious ones whose __reduce__ calls os.system, and a real scikit-learn model via joblib.
 */
export function makePickles(): Record<string, Buffer> {
  const dir = mkdtempSync(join(tmpdir(), 'customs-pickles-'));
  const script = String.raw`
import io, os, pickle, sys, tarfile, zipfile, collections, gzip
import joblib, numpy as np
from sklearn.ensemble import IsolationForest
d = sys.argv[1]
class Evil:
    def __reduce__(self): return (os.system, ('id',))
class EvalIt:
    def __reduce__(self): return (eval, ('1+1',))
def w(name, data): open(os.path.join(d, name), 'wb').write(data)
w('evil-p4.pkl', pickle.dumps(Evil(), protocol=4))
w('evil-p0.pkl', pickle.dumps(Evil(), protocol=0))
w('evil-p2.pkl', pickle.dumps({'weights': [1.0, 2.0], 'x': Evil()}, protocol=2))
w('eval-p5.pkl', pickle.dumps(EvalIt(), protocol=5))
X = np.random.RandomState(0).randn(200, 4)
joblib.dump(IsolationForest(n_estimators=5, random_state=0).fit(X), os.path.join(d, 'iforest.joblib'))
safe = pickle.dumps(collections.OrderedDict([('layer.weight', [0.1, 0.2]), ('layer.bias', (1, 2))]), protocol=2)
for name, payload, method in [('torch-safe.pt', safe, zipfile.ZIP_STORED), ('torch-evil.pt', pickle.dumps(Evil(), protocol=2), zipfile.ZIP_STORED), ('torch-evil-deflate.pt', pickle.dumps(Evil(), protocol=2), zipfile.ZIP_DEFLATED)]:
    b = io.BytesIO()
    with zipfile.ZipFile(b, 'w', method) as z:
        z.writestr('archive/version', '3\n')
        z.writestr('archive/data.pkl', payload)
        z.writestr('archive/data/0', b'\x00' * 4096)
    w(name, b.getvalue())
for name, member, payload in [('layer-evil.tar', 'model/pytorch_model.bin', pickle.dumps(Evil(), protocol=2)), ('layer-safe.tar', 'model/model.joblib', open(os.path.join(d, 'iforest.joblib'), 'rb').read())]:
    b = io.BytesIO()
    with tarfile.open(fileobj=b, mode='w', format=tarfile.GNU_FORMAT) as t:
        ti = tarfile.TarInfo('model/config.json'); cfg = b'{"a": 1}'; ti.size = len(cfg); t.addfile(ti, io.BytesIO(cfg))
        ti = tarfile.TarInfo(member); ti.size = len(payload); t.addfile(ti, io.BytesIO(payload))
    w(name, b.getvalue())
    w(name + '.gz', gzip.compress(b.getvalue()))
`;
  execFileSync('/usr/bin/python3', ['-c', script, dir], { stdio: ['ignore', 'ignore', 'inherit'] });
  const out: Record<string, Buffer> = {};
  for (const f of readdirSync(dir)) out[f] = readFileSync(join(dir, f));
  return out;
}
