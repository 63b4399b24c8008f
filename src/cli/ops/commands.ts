import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { err, parseDigest, parseRepoReference, referenceString } from '../../oci/index.js';
import { verifyAuditChain, type AuditEntry, type ChainProblem, type ChainReport, type PinRecord, type QuarantineRecord, type TagMove } from '../../storage/index.js';
import type { ConsumersReport, DeepReport, Lineage, MaterialQuarantineResult, RollbackResult } from '../../ops/index.js';
import type { GcReport } from '../../registry/index.js';
import { adminGet, adminLines, adminPost, short, table, when, type AdminTarget, type Io } from './client.js';

/**
 * The operator commands as functions (the CLI calls them; tests call them too).
 * Each prints for people unless `json`, and returns what the server answered.
 */
export interface Common {
  readonly json?: boolean;
}

const tagRef = (ref: string): { repository: string; tag: string } => {
  const r = parseRepoReference(ref);
  if (r.reference.kind !== 'tag' || !/:[^/]+$/.test(ref)) throw err('NAME_INVALID', `expected <repository>:<tag>, got ${ref}`);
  return { repository: r.repository, tag: r.reference.tag };
};
const needReason = (reason: string | undefined): string => {
  if (!reason?.trim()) throw err('NAME_INVALID', '--reason is required: it is recorded in the audit log');
  return reason;
};
const emit = (io: Io, o: Common, value: unknown, human: () => string[]): void => {
  for (const l of o.json ? [JSON.stringify(value, null, 2)] : human()) io.out(l);
};

export async function pin(t: AdminTarget, io: Io, ref: string, digest: string | undefined, o: Common & { reason?: string }) {
  const { repository, tag } = tagRef(ref);
  const r = await adminPost<{ pin: PinRecord; move?: TagMove }>(t, '/pin', { repository, tag, digest, reason: needReason(o.reason) });
  emit(io, o, r, () => [`pinned ${repository}:${tag} to ${r.pin.digest}${r.move ? ` (moved from ${short(r.move.from)})` : ''}`]);
  return r;
}

/**
 * `customs tag SRC DST`: SRC is `<repo>:<tag>` or `<repo>@<digest>`, DST `<repo>:<tag>` in the same
 * repository or a bare tag. Moving a tag is a push (needs `push`), audited as `tag` with `--reason`.
 */
export async function tag(t: AdminTarget, io: Io, src: string, dst: string, o: Common & { reason?: string }) {
  const source = parseRepoReference(src);
  const target = dst.includes(':') || dst.includes('/') ? tagRef(dst) : { repository: source.repository, tag: dst };
  if (target.repository !== source.repository) {
    throw err('UNSUPPORTED', `customs tag moves a tag within one repository (${source.repository}); to copy into ${target.repository}, use oras cp, crane copy or skopeo copy`);
  }
  const r = await adminPost<{ repository: string; tag: string; digest: string; moved: boolean; from: string | null }>(t, '/tag', {
    repository: target.repository,
    tag: target.tag,
    source: referenceString(source.reference),
    reason: o.reason || undefined,
  });
  emit(io, o, r, () => [r.moved ? `tagged ${r.repository}:${r.tag} -> ${r.digest}${r.from ? ` (moved from ${short(r.from)})` : ''}` : `${r.repository}:${r.tag} already names ${r.digest}`]);
  return r;
}

export async function unpin(t: AdminTarget, io: Io, ref: string, o: Common & { reason?: string }) {
  const { repository, tag } = tagRef(ref);
  const r = await adminPost<{ unpinned: boolean }>(t, '/unpin', { repository, tag, reason: needReason(o.reason) });
  emit(io, o, r, () => [`unpinned ${repository}:${tag}`]);
  return r;
}

export async function pins(t: AdminTarget, io: Io, repository: string | undefined, o: Common) {
  const r = await adminGet<{ pins: PinRecord[] }>(t, '/pins', { repository });
  emit(io, o, r, () => table(['TAG', 'DIGEST', 'BY', 'AT', 'REASON'], r.pins.map((p) => [`${p.repository}:${p.tag}`, short(p.digest), p.actor, when(p.at), p.reason])));
  return r;
}

export async function history(t: AdminTarget, io: Io, ref: string, o: Common) {
  const { repository, tag } = tagRef(ref);
  const r = await adminGet<{ pin?: PinRecord; history: TagMove[] }>(t, '/history', { repository, tag });
  emit(io, o, r, () => [
    ...(r.pin ? [`${repository}:${tag} is pinned by ${r.pin.actor}: ${r.pin.reason ?? ''}`] : []),
    ...table(['AT', 'FROM', 'TO', 'ACTOR', 'REASON'], r.history.map((m) => [when(m.at), short(m.from), short(m.to), m.actor, m.reason])),
  ]);
  return r;
}

export async function rollback(t: AdminTarget, io: Io, ref: string, o: Common & { reason?: string; to?: string; steps?: number; pin?: boolean }) {
  const { repository, tag } = tagRef(ref);
  if (o.to !== undefined) parseDigest(o.to);
  const r = await adminPost<RollbackResult>(t, '/rollback', { repository, tag, to: o.to, steps: o.steps, pin: o.pin ?? true, reason: needReason(o.reason) });
  emit(io, o, r, () => [
    `rolled ${repository}:${tag} back from ${short(r.from)} to ${r.to}${r.pinned ? ' (pinned)' : ''}`,
    ...r.skipped.map((s) => `  skipped ${short(s.digest)}: ${s.skipped}`),
  ]);
  return r;
}

export async function quarantine(t: AdminTarget, io: Io, digest: string, o: Common & { reason?: string }) {
  parseDigest(digest);
  const r = await adminPost<{ digest: string; added: boolean }>(t, '/quarantine', { digest, reason: needReason(o.reason) });
  emit(io, o, r, () => [`${r.added ? 'quarantined' : 'already quarantined'} ${digest}`]);
  return r;
}

export async function quarantineMaterial(t: AdminTarget, io: Io, material: string, o: Common & { reason?: string; rollback?: boolean; pin?: boolean }) {
  const r = await adminPost<MaterialQuarantineResult>(t, '/quarantine/material', { material, rollback: o.rollback ?? false, pin: o.pin ?? true, reason: needReason(o.reason) });
  emit(io, o, r, () => [
    `material ${material}: ${r.affected} artifact(s) quarantined`,
    ...table(['ACTION', 'REPOSITORY', 'TAG', 'DIGEST', 'TO', 'NOTE'], r.actions.map((a) => [a.action, a.repository ?? '-', a.tag ?? '-', short(a.digest), short(a.to), a.note])),
    ...r.unverified.map((c) => `not acted on: ${c.repository}@${c.digest} is named only by unverified provenance ${short(c.referrer)}`),
  ]);
  return r;
}

export async function listQuarantine(t: AdminTarget, io: Io, o: Common) {
  const r = await adminGet<{ quarantined: QuarantineRecord[] }>(t, '/quarantine');
  emit(io, o, r, () => table(['DIGEST', 'BY', 'AT', 'REASON'], r.quarantined.map((q) => [q.digest, q.actor, when(q.at), q.reason])));
  return r;
}

export async function release(t: AdminTarget, io: Io, digest: string, o: Common & { reason?: string }) {
  parseDigest(digest);
  const r = await adminPost<{ released: boolean }>(t, '/release', { digest, reason: needReason(o.reason) });
  emit(io, o, r, () => [`released ${digest}`]);
  return r;
}

export async function gc(t: AdminTarget, io: Io, o: Common & { dryRun?: boolean; grace?: number; untagged?: number; reason?: string }) {
  const r = await adminPost<GcReport>(t, '/gc', { dryRun: o.dryRun ?? false, graceSeconds: o.grace, untaggedAfterSeconds: o.untagged, reason: o.reason || undefined });
  emit(io, o, r, () => [
    ...(r.evicted > 0 ? [`${r.dryRun ? 'would evict' : 'evicted'} ${r.evicted} cached manifest(s) nobody pulled within their upstream's evictAfterSeconds`] : []),
    ...(r.untaggedAfterSeconds === null ? [] : [`${r.dryRun ? 'would delete' : 'deleted'} ${r.manifests} untagged manifest(s) untagged for over ${r.untaggedAfterSeconds} s${r.dryRun ? ' (their blobs are counted by a run that deletes them)' : ''}`]),
    ...r.manifestSample.map((m) => `  ${m.repository}@${m.digest}`),
    ...(r.manifests > r.manifestSample.length ? [`  ... and ${r.manifests - r.manifestSample.length} more`] : []),
    `${r.dryRun ? 'would remove' : 'removed'} ${r.links} unreferenced blob link(s) made before ${r.before}; ${r.blobs} blob(s) no repository links (${r.orphans} never linked), ${r.bytes} bytes, ${r.dryRun ? 'would be' : 'were'} deleted`,
    ...r.sample.map((l) => `  ${l.repository}@${l.digest} (${l.size} bytes)`),
    ...(r.links > r.sample.length ? [`  ... and ${r.links - r.sample.length} more`] : []),
  ]);
  return r;
}

export async function lineage(t: AdminTarget, io: Io, ref: string, o: Common) {
  const { repository, reference } = parseRepoReference(ref);
  const r = await adminGet<Lineage>(t, '/lineage', { repository, reference: referenceString(reference) });
  const mat = (label: string, ms: Lineage['code']) =>
    ms.flatMap((m) => [
      `${label.padEnd(11)}${m.name ?? m.uri ?? ''} ${Object.entries(m.digest).map(([a, v]) => `${a}:${v}`).join(' ')}${m.storedIn.length ? ` (stored in ${m.storedIn.join(', ')})` : ''}`,
      ...(m.dvc ? [`${''.padEnd(11)}  dvc ${m.dvc.path ?? ''} md5:${m.dvc.md5}${m.dvc.commit ? ` commit ${m.dvc.commit}` : ''}`] : []),
      ...m.files.map((f) => `${''.padEnd(11)}  file ${f.path ?? '?'} ${f.digest}`),
    ]);
  emit(io, o, r, () => [
    `${r.repository}@${r.digest}`,
    `verdict    ${r.verdict.allowed ? 'allowed' : 'DENIED'}${r.verdict.findings.length ? `: ${r.verdict.findings.join('; ')}` : ''}`,
    `tags       ${r.tags.join(', ') || '-'}${r.pins.length ? ` (pinned: ${r.pins.map((p) => p.tag).join(', ')})` : ''}`,
    ...r.pastTags.map((m) => `past tag   ${m.tag} until ${when(m.at)} (moved to ${short(m.to)} by ${m.actor}${m.reason ? `: ${m.reason}` : ''})`),
    ...r.provenance.map((p) => `provenance ${short(p.referrer)} ${p.predicateType} builder ${p.builderId ?? '?'} finished ${p.finishedOn ?? '?'} signers ${p.signers.join(', ') || '-'}`),
    ...r.provenance.flatMap((p) => (p.mlflowRun ? [`mlflow run ${p.mlflowRun.runId}${p.mlflowRun.runName ? ` (${p.mlflowRun.runName})` : ''}${p.mlflowRun.flavor ? ` flavor ${p.mlflowRun.flavor}` : ''}${Object.keys(p.mlflowRun.metrics ?? {}).length ? ` metrics ${Object.entries(p.mlflowRun.metrics ?? {}).map(([k, v]) => `${k}=${v}`).join(' ')}` : ''}`] : [])),
    ...mat('code', r.code),
    ...mat('dataset', r.datasets),
    ...mat('base model', r.baseModels),
    ...mat('material', r.otherMaterials),
    ...r.sbom.map((s) => `sbom       ${s.format}, ${s.components} components${s.name ? ` (${s.name})` : ''} in ${(s.referrers ?? [s.referrer]).map(short).join(', ')}`),
    // Shown so an operator sees what was attached, never used for lineage decisions.
    ...r.unverifiedProvenance.map((p) => `UNVERIFIED provenance ${short(p.referrer)} ${p.predicateType} (${p.verification || 'signature does not verify'}); names ${p.materials.map((m) => Object.entries(m.digest).map(([a, v]) => `${a}:${v}`).join(' ')).join(', ') || 'nothing'}`),
    ...r.unverifiedSbom.map((s) => `UNVERIFIED sbom ${s.format}, ${s.components} components${s.name ? ` (${s.name})` : ''} in ${(s.referrers ?? [s.referrer]).map(short).join(', ')} (unsigned)`),
    ...r.referrers.map((x) => `referrer   ${short(x.digest)} [${x.evidence}] ${x.artifactType ?? ''} ${x.predicateType ?? ''} ${x.created ?? ''} ${x.signers.join(', ')} ${x.loggedAt.join(', ')}`.trimEnd()),
    ...(r.tagHistory?.length ? [`history of tag ${reference.kind === 'tag' ? reference.tag : ''} (newest first; from verified provenance):`] : []),
    ...(r.tagHistory ?? []).flatMap((v) => [
      `  ${v.current ? '*' : ' '} ${v.digest} since ${when(v.since)} by ${v.actor}${v.reason ? `: ${v.reason}` : ''}`,
      ...v.mlflowRuns.map((id) => `      mlflow run ${id}`),
      ...v.commits.map((c) => `      commit     ${c}`),
      ...v.datasets.map((d) => `      dataset    ${d.name ?? d.uri ?? ''} ${Object.entries(d.digest).map(([a, x]) => `${a}:${x}`).join(' ')}${d.dvc ? ` (dvc md5:${d.dvc.md5}${d.dvc.commit ? ` commit ${d.dvc.commit}` : ''})` : ''}`),
    ]),
  ]);
  return r;
}

export async function consumers(t: AdminTarget, io: Io, digest: string, o: Common) {
  const r = await adminGet<{ material: string } & ConsumersReport>(t, '/consumers', { digest });
  emit(io, o, r, () => [
    ...r.containedIn.map((m) => `file of ${m.repository}@${m.digest}`),
    ...table(['REPOSITORY', 'DIGEST', 'TAGS', 'ROLE', 'VIA', 'DEPTH'], r.consumers.map((c) => [c.repository, c.digest, c.tags.join(',') || '-', c.role ?? '-', short(c.via), c.depth])),
    ...(r.unverified.length
      ? ['UNVERIFIED (provenance whose signature does not verify; not acted on):', ...table(['REPOSITORY', 'DIGEST', 'TAGS', 'REFERRER', 'VIA'], r.unverified.map((c) => [c.repository, c.digest, c.tags.join(',') || '-', short(c.referrer), short(c.via)]))]
      : []),
  ]);
  return r;
}

/** `customs verify --deep <ref>` (the lead's `verify` command calls this). Throws when a check fails. */
export async function deepVerify(t: AdminTarget, io: Io, ref: string, o: Common) {
  const { repository, reference } = parseRepoReference(ref);
  const r = await adminPost<DeepReport>(t, '/verify/deep', { repository, reference: referenceString(reference) });
  emit(io, o, r, () => [
    ...table(['CHECK', 'DIGEST', 'RESULT', 'DETAIL'], r.checks.map((c) => [c.kind, short(c.digest), c.ok ? 'ok' : 'FAIL', c.detail])),
    `${r.repository}@${r.digest}: ${r.ok ? 'all checks passed' : `${r.checks.filter((c) => !c.ok).length} check(s) FAILED`}`,
  ]);
  if (!r.ok) throw err('DENIED', `deep verification of ${ref} failed`);
  return r;
}

export async function auditList(t: AdminTarget, io: Io, o: Common & { since?: string; after?: number; limit?: number }) {
  const r = await adminGet<{ entries: AuditEntry[] }>(t, '/audit', { since: o.since, after: o.after, limit: o.limit });
  emit(io, o, r, () => table(['SEQ', 'AT', 'ACTOR', 'ACTION', 'TARGET', 'REASON'], r.entries.map((e) => [e.seq, when(e.at), e.actor, e.action, e.target ?? e.repository, e.reason])));
  return r;
}

export async function auditExport(t: AdminTarget, io: Io, o: { since?: string }) {
  let n = 0;
  await adminLines(t, '/audit/export', { since: o.since }, (line) => {
    n++;
    io.out(line);
  });
  return n;
}

/**
 * Checks an exported log (`customs audit export > file`) offline, without the server:
 * an export that starts mid-log (`--since`) is checked from its first entry on.
 */
export async function verifyExport(file: string, head: string | undefined): Promise<ChainReport> {
  const expect = head ? { seq: Number(head.split(':')[0]), hash: head.split(':')[1] ?? '' } : undefined;
  const problems: ChainProblem[] = [];
  let start: { seq: number; hash: string } | undefined;
  let checked = 0;
  let headSeen = false;
  let page: AuditEntry[] = [];
  const flush = () => {
    if (page.length === 0) return;
    const r = verifyAuditChain(page, { start: start ?? (page[0]!.seq > 1 ? { seq: page[0]!.seq - 1, hash: page[0]!.prevHash } : undefined) });
    problems.push(...r.problems);
    checked += r.checked;
    const h = expect && page.find((e) => e.seq === expect.seq);
    if (h) {
      headSeen = true;
      if (h.hash !== expect.hash) problems.push({ seq: h.seq, problem: `hash differs from the recorded head ${expect.hash}` });
    }
    start = page[page.length - 1]!;
    page = [];
  };
  let lineNo = 0;
  for await (const line of createInterface({ input: createReadStream(file), crlfDelay: Infinity })) {
    lineNo++;
    if (!line.trim()) continue;
    try {
      page.push(JSON.parse(line) as AuditEntry);
    } catch {
      throw err('NAME_INVALID', `${file}:${lineNo}: not JSON`);
    }
    if (page.length >= 1000) flush();
  }
  flush();
  if (expect && !headSeen) problems.push({ seq: expect.seq, problem: 'the recorded head entry is missing: the log was truncated' });
  return { ok: problems.length === 0, checked, head: start ? { seq: start.seq, hash: start.hash } : undefined, problems };
}

/** Fails (throws) when the chain is broken, naming each bad entry. With `file`, checks an export offline. */
export async function auditVerify(t: AdminTarget, io: Io, o: Common & { head?: string; file?: string }) {
  const r = o.file ? await verifyExport(o.file, o.head) : await adminGet<ChainReport>(t, '/audit/verify', { head: o.head });
  emit(io, o, r, () =>
    r.ok
      ? [`audit log intact: ${r.checked} entries; head ${r.head ? `${r.head.seq}:${r.head.hash}` : '(empty)'} (record it to detect truncation later with --head)`]
      : [`audit log BROKEN: ${r.problems.length} problem(s) in ${r.checked} entries`, ...r.problems.map((p) => `  entry ${p.seq}: ${p.problem}`)],
  );
  if (!r.ok) throw err('DENIED', `audit log verification failed at entr${r.problems.length > 1 ? 'ies' : 'y'} ${[...new Set(r.problems.map((p) => p.seq))].join(', ')}`, r.problems);
  return r;
}
