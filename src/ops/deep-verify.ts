import { digestOf, parseManifest, type Digest, type Reference } from '../oci/index.js';
import type { BlobFetcher, ManifestRecord, MetadataStore } from '../storage/index.js';
import type { LineageService } from './lineage.js';
import { rehash, type Judge, type ReadGateLike } from './types.js';

export interface DeepCheck {
  /** manifest, blob, referrer, gate, material, quarantine */
  readonly kind: string;
  readonly digest: string;
  readonly ok: boolean;
  readonly detail: string;
}

export interface DeepReport {
  readonly repository: string;
  readonly digest: Digest;
  readonly ok: boolean;
  readonly checks: DeepCheck[];
}

/**
 * `customs verify --deep`: trusts nothing recorded. Re-hashes the manifest, every
 * blob and child manifest it references, and every referrer with its blobs, from
 * storage; asks the gate again; and re-hashes every provenance material customs
 * stores (as a manifest, with its blobs) to show it still has the digest the
 * (verified) provenance names.
 */
export class DeepVerifier {
  constructor(
    private readonly metadata: MetadataStore,
    private readonly blobs: BlobFetcher,
    private readonly lineage: LineageService,
    private readonly judge: Judge,
    private readonly gate: Pick<ReadGateLike, 'invalidate'>,
  ) {}

  async verify(repository: string, reference: Reference): Promise<DeepReport> {
    const record = await this.lineage.resolve(repository, reference);
    const checks: DeepCheck[] = [];
    const visited = new Set<string>();
    await this.content(record, 'manifest', checks, visited);
    for (const r of await this.metadata.listReferrers(repository, record.digest)) {
      const rec = await this.metadata.getManifest(repository, r.digest);
      if (rec) await this.content(rec, 'referrer', checks, visited);
    }
    const quarantined = (await this.metadata.quarantinedAmong([record.digest])).length > 0;
    checks.push({ kind: 'quarantine', digest: record.digest, ok: !quarantined, detail: quarantined ? 'quarantined' : 'not quarantined' });
    // Re-run, not re-read: drop the cached verdict so the gate evaluates the policy again.
    this.gate.invalidate(record.digest);
    const v = await this.judge(repository, record.digest);
    checks.push({ kind: 'gate', digest: record.digest, ok: v.allowed, detail: v.allowed ? 'allowed' : v.findings.join('; ') });
    const prov = await this.lineage.provenanceOf(repository, record.digest);
    for (const p of prov.unverified) {
      // Listed, not acted on: anyone with a push token can attach provenance; only a verified signature makes it evidence.
      checks.push({ kind: 'provenance', digest: p.referrer, ok: true, detail: `unverified provenance (${p.detail}): its materials are not checked` });
    }
    for (const p of prov.verified) {
      for (const m of p.materials) {
        const hex = m.digest.sha256?.toLowerCase();
        if (!hex) continue; // a git commit or another algorithm: not content customs holds
        const d = `sha256:${hex}` as Digest;
        const where = await this.metadata.repositoriesOf(d);
        if (where.length === 0) {
          // A blob customs holds (a dataset pushed as a single file) is checked too.
          const again = await rehash(this.blobs, d).catch(() => undefined);
          checks.push(
            again
              ? { kind: 'material', digest: d, ok: again.digest === d, detail: again.digest === d ? `${m.name ?? m.role ?? 'material'}: stored blob still hashes to ${d}` : `${m.name ?? 'material'}: stored blob now hashes to ${again.digest}` }
              : { kind: 'material', digest: d, ok: true, detail: `${m.name ?? m.role ?? 'material'}: not stored in customs (not checked)` },
          );
          continue;
        }
        for (const repo of where) {
          const rec = await this.metadata.getManifest(repo, d);
          if (!rec) continue;
          const before = checks.length;
          await this.content(rec, 'material', checks, visited);
          const bad = checks.slice(before).filter((c) => !c.ok);
          if (bad.length === 0) checks.push({ kind: 'material', digest: d, ok: true, detail: `${m.name ?? m.role ?? 'material'} in ${repo}: manifest and blobs match ${d}` });
        }
      }
    }
    return { repository, digest: record.digest, ok: checks.every((c) => c.ok), checks };
  }

  /** Re-hashes a manifest's bytes and each blob it references, once per digest. */
  private async content(record: ManifestRecord, kind: string, checks: DeepCheck[], visited: Set<string>): Promise<void> {
    const key = `${record.repository}@${record.digest}`;
    if (visited.has(key)) return;
    visited.add(key);
    const alg = record.digest.startsWith('sha512:') ? 'sha512' : 'sha256';
    const actual = digestOf(record.bytes, alg);
    checks.push({ kind, digest: record.digest, ok: actual === record.digest, detail: actual === record.digest ? 'manifest bytes match' : `manifest bytes hash to ${actual}` });
    let parsed;
    try {
      parsed = parseManifest(record.bytes, record.mediaType);
    } catch (e) {
      checks.push({ kind, digest: record.digest, ok: false, detail: `manifest no longer parses: ${(e as Error).message}` });
      return;
    }
    for (const b of parsed.blobs) {
      if (visited.has(b.digest)) continue;
      visited.add(b.digest);
      const again = await rehash(this.blobs, b.digest);
      if (!again) checks.push({ kind: 'blob', digest: b.digest, ok: false, detail: 'missing from storage' });
      else if (again.digest !== b.digest) checks.push({ kind: 'blob', digest: b.digest, ok: false, detail: `content now hashes to ${again.digest}` });
      else if (again.size !== b.size) checks.push({ kind: 'blob', digest: b.digest, ok: false, detail: `size ${again.size}, descriptor says ${b.size}` });
      else checks.push({ kind: 'blob', digest: b.digest, ok: true, detail: `${again.size} bytes re-hashed` });
    }
    for (const m of parsed.manifests) {
      const child = await this.metadata.getManifest(record.repository, m.digest);
      if (!child) checks.push({ kind: 'manifest', digest: m.digest, ok: false, detail: 'child manifest missing' });
      else await this.content(child, 'manifest', checks, visited);
    }
  }
}
