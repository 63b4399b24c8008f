import { describe, expect, it } from 'vitest';
import { digestOf, type Digest } from '../oci/index.js';
import { buildRevisionArtifact, revisionView, weightFormat, type ImportedRevision } from './manifest.js';
import { gitBlobId, lfsPointerInfo } from './names.js';

const config = Buffer.from('{"a":1}');
const weights = 'ab'.repeat(32);
const revision: ImportedRevision = {
  upstream: 'hf.co',
  repoId: 'acme/bert',
  type: 'model',
  commit: 'c'.repeat(40),
  sourceUrl: 'https://huggingface.co/acme/bert',
  lastModified: '2026-03-01T12:00:00.123Z',
  licenses: ['apache-2.0'],
  files: [
    { path: 'model.safetensors', size: 3000, oid: lfsPointerInfo(weights, 3000).oid, lfs: { sha256: weights, pointerSize: 134 }, digest: `sha256:${weights}` as Digest },
    { path: 'config.json', size: config.length, oid: gitBlobId(config), digest: digestOf(config) },
  ],
};

describe('a Hub revision as a ModelPack artifact', () => {
  it('is byte-for-byte the same for the same revision, in whatever order the files came', () => {
    const a = buildRevisionArtifact(revision);
    const b = buildRevisionArtifact({ ...revision, files: [...revision.files].reverse() });
    expect(b.manifest.equals(a.manifest)).toBe(true);
    expect(a.digest).toBe(digestOf(a.manifest));
    const cfg = JSON.parse(a.config.toString()) as { descriptor: Record<string, unknown>; config: Record<string, unknown> };
    expect(cfg.descriptor).toMatchObject({ name: 'acme/bert', revision: 'c'.repeat(40), licenses: ['apache-2.0'], createdAt: '2026-03-01T12:00:00Z', sourceURL: 'https://huggingface.co/acme/bert' });
    expect(cfg.config).toEqual({ format: 'safetensors' });
  });

  it('reads back as the revision the Hub listed: commit, ETags (sha256 for LFS, git blob id otherwise)', () => {
    const a = buildRevisionArtifact(revision);
    const v = revisionView(a.digest, a.manifest)!;
    expect(v).toMatchObject({ commit: 'c'.repeat(40), kind: 'model', origin: { upstream: 'hf.co', repoId: 'acme/bert' } });
    expect(v.files.map((f) => [f.path, f.etag, !!f.lfs])).toEqual([
      ['config.json', gitBlobId(config), false],
      ['model.safetensors', weights, true],
    ]);
  });

  it('a local artifact: commit from its digest, every file an LFS file named by its sha256', () => {
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.cncf.model.config.v1+json', digest: digestOf('{}'), size: 2 },
        layers: [
          { mediaType: 'application/vnd.cncf.model.weight.v1.raw', digest: `sha256:${weights}`, size: 10, annotations: { 'org.opencontainers.image.title': 'w.bin' } },
          { mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: digestOf('x'), size: 1 },
        ],
        annotations: { 'dev.customs.artifact.kind': 'dataset' },
      }),
    );
    const d = digestOf(manifest);
    const v = revisionView(d, manifest)!;
    expect(v.commit).toBe(d.slice(7, 47));
    expect(v.kind).toBe('dataset');
    expect(v.files).toEqual([{ path: 'w.bin', size: 10, digest: `sha256:${weights}`, oid: lfsPointerInfo(weights, 10).oid, lfs: { sha256: weights, pointerSize: lfsPointerInfo(weights, 10).pointerSize }, etag: weights }]);
    expect(revisionView(d, Buffer.from('{"schemaVersion":2,"manifests":[]}'))).toBeUndefined();
  });

  it('the weight format is the least safe one present', () => {
    expect(weightFormat(['model.safetensors', 'config.json'])).toBe('safetensors');
    expect(weightFormat(['model.safetensors', 'pytorch_model.bin'])).toBe('pytorch');
    expect(weightFormat(['model.joblib'])).toBe('joblib');
    expect(weightFormat(['README.md'])).toBeUndefined();
  });
});
