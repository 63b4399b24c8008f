import { createHash } from 'node:crypto';
import { err, isValidName, type Digest, type Reference } from '../oci/index.js';
import type { Lineage, MaterialQuarantineResult, MaterialPlan } from '../ops/index.js';
import { canonicalJson } from '../storage/index.js';
import type { ConsoleDeps } from './deps.js';
import type { MaterialRef } from './evidence.js';
import type { Graph, GraphNode } from './graph.js';
import { shortDigest } from './format.js';
import { maySee, requirePermission, type Viewer } from './viewer.js';

/**
 * The console's one adapter over src/ops/lineage.ts and the material quarantine: every page
 * that shows lineage reads it through here, so a change in what lineage returns (issue 14:
 * only verified provenance counts) changes this file and nothing else.
 */
/** A material as every lineage page shows it (the artifact page's provenance too). */
export type MaterialRow = MaterialRef;

export interface ModelLineageView {
  readonly repository: string;
  readonly digest: Digest;
  readonly artifactType: string | undefined;
  readonly tags: readonly string[];
  readonly pastTags: Lineage['pastTags'];
  readonly quarantined: boolean;
  readonly verdict: Lineage['verdict'];
  readonly provenance: Lineage['provenance'];
  /** Provenance attached without a verifying signature: shown apart, its materials are not lineage. */
  readonly unverifiedProvenance: Lineage['unverifiedProvenance'];
  readonly materials: readonly MaterialRow[];
  readonly graph: Graph;
}

export interface ConsumerRow {
  readonly repository: string;
  readonly digest: Digest;
  /** The provenance referrer that names the material. */
  readonly referrer: Digest;
  readonly via: string;
  readonly role: string | undefined;
  readonly depth: number;
  readonly tags: readonly string[];
}

export interface MaterialLineageView {
  readonly material: string;
  /** Where customs stores the material itself (a dataset pushed here). */
  readonly storedIn: readonly string[];
  readonly consumers: readonly ConsumerRow[];
  /** Named only by provenance whose signature does not verify: listed apart, never acted on. */
  readonly unverified: readonly ConsumerRow[];
  /** Consumers in repositories the viewer may not see: counted, not named. */
  readonly hidden: number;
  readonly graph: Graph;
}

export const MATERIAL = /^[A-Za-z0-9_+.-]+:[A-Za-z0-9=_.-]+$/;

export async function modelLineage(d: ConsoleDeps, v: Viewer, repository: string, reference: Reference): Promise<ModelLineageView> {
  if (!isValidName(repository)) throw err('NAME_INVALID', `invalid repository name ${JSON.stringify(repository.slice(0, 300))}`);
  requirePermission(v, repository, 'admin'); // as GET /admin/lineage
  const l = await d.ops.lineage.lineage(repository, reference);
  const materials: MaterialRow[] = [...l.code, ...l.datasets, ...l.baseModels, ...l.otherMaterials].map((m) => ({
    kind: m.kind,
    role: m.role,
    name: m.name,
    uri: m.uri,
    keys: Object.entries(m.digest).map(([alg, value]) => `${alg}:${value.toLowerCase()}`),
    storedIn: m.storedIn.filter((r) => maySee(v, r)),
  }));
  const model: GraphNode = { id: 'model', label: `${repository}@${shortDigest(l.digest)}`, kind: 'model', column: 1 };
  const nodes: GraphNode[] = [model];
  const edges: { from: string; to: string }[] = [];
  materials.forEach((m, i) => {
    const id = `m${i}`;
    nodes.push({ id, label: `${m.name ?? m.uri ?? m.kind} ${shortDigest(m.keys[0])}`, kind: m.kind, column: 0 });
    edges.push({ from: id, to: 'model' });
  });
  for (const t of l.tags) {
    nodes.push({ id: `t:${t}`, label: `${repository}:${t}`, kind: 'tag', column: 2 });
    edges.push({ from: 'model', to: `t:${t}` });
  }
  return {
    repository,
    digest: l.digest,
    artifactType: l.artifactType,
    tags: l.tags,
    pastTags: l.pastTags,
    quarantined: l.quarantined,
    verdict: l.verdict,
    provenance: l.provenance,
    unverifiedProvenance: l.unverifiedProvenance,
    materials,
    graph: { nodes, edges, title: `Lineage of ${repository}@${l.digest}` },
  };
}

export async function materialLineage(d: ConsoleDeps, v: Viewer, material: string): Promise<MaterialLineageView> {
  if (!MATERIAL.test(material)) throw err('NAME_INVALID', 'expected a material as alg:value (sha256:<hex>, gitCommit:<sha>)');
  requirePermission(v, undefined, 'admin'); // as GET /admin/consumers
  const report = await d.ops.lineage.consumers(material);
  const all = report.consumers;
  const consumers = all.filter((c) => maySee(v, c.repository));
  const unverified = report.unverified.filter((c) => maySee(v, c.repository));
  const storedIn = /^sha(256|512):/.test(material) ? (await d.metadata.repositoriesOf(material as Digest)).filter((r) => maySee(v, r)) : [];
  const nodes: GraphNode[] = [{ id: material, label: `${storedIn[0] ? `${storedIn[0]}@` : ''}${shortDigest(material)}`, kind: storedIn.length ? 'dataset' : 'material', column: 0 }];
  const edges: { from: string; to: string }[] = [];
  const idsOfDigest = new Map<string, string[]>([[material, [material]]]);
  const maxDepth = Math.max(0, ...consumers.map((c) => c.depth));
  for (const c of consumers) {
    const id = `${c.repository}@${c.digest}`;
    nodes.push({ id, label: `${c.repository}@${shortDigest(c.digest)}`, kind: 'model', column: c.depth });
    idsOfDigest.set(c.digest, [...(idsOfDigest.get(c.digest) ?? []), id]);
  }
  for (const c of consumers) {
    for (const from of idsOfDigest.get(c.via) ?? []) edges.push({ from, to: `${c.repository}@${c.digest}` });
    for (const t of c.tags) {
      nodes.push({ id: `${c.repository}:${t}`, label: `${c.repository}:${t}`, kind: 'tag', column: maxDepth + 1 });
      edges.push({ from: `${c.repository}@${c.digest}`, to: `${c.repository}:${t}` });
    }
  }
  return { material, storedIn, consumers, unverified, hidden: all.length - consumers.length, graph: { nodes, edges, title: `Consumers of ${material}` } };
}

export interface PlanView {
  readonly plan: MaterialPlan;
  /** Hash of the plan as shown: the confirmation runs only if the plan is still the same. */
  readonly hash: string;
}

export async function materialPlan(d: ConsoleDeps, v: Viewer, material: string): Promise<PlanView> {
  if (!MATERIAL.test(material)) throw err('NAME_INVALID', 'expected a material as alg:value (sha256:<hex>, gitCommit:<sha>)');
  requirePermission(v, undefined, 'admin'); // as POST /admin/quarantine/material
  const plan = await d.ops.quarantine.planMaterial(material);
  return { plan, hash: createHash('sha256').update(canonicalJson(plan)).digest('hex') };
}

/**
 * Runs the material quarantine with rollback if the plan the operator confirmed is still
 * the plan; otherwise returns the new plan to confirm (something changed in between).
 */
export async function runMaterialPlan(
  d: ConsoleDeps,
  v: Viewer,
  material: string,
  confirmedHash: string,
  opts: { pin: boolean; reason: string },
): Promise<{ done: MaterialQuarantineResult } | { changed: PlanView }> {
  const now = await materialPlan(d, v, material);
  if (now.hash !== confirmedHash) return { changed: now };
  return { done: await d.ops.quarantine.quarantineMaterial(material, { rollback: true, pin: opts.pin }, { actor: v.actor, reason: opts.reason }) };
}
