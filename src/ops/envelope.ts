import { X509Certificate } from 'node:crypto';
import { z } from 'zod';
import type { Digest } from '../oci/index.js';
import type { ProvenanceMaterial } from '../storage/index.js';
import { IN_TOTO_PAYLOAD_TYPE, statementSchema, type Statement } from '../verify/statement.js';

/**
 * Reads what lineage needs out of a referrer's layer: a sigstore bundle holding a
 * DSSE envelope, a bare DSSE envelope, or a bare in-toto statement. Nothing here
 * verifies a signature (the gate does); signers are what the envelope claims.
 */
export const SLSA_V1 = 'https://slsa.dev/provenance/v1';
export const SLSA_V02 = 'https://slsa.dev/provenance/v0.2';
export const isProvenance = (predicateType: string): boolean => predicateType === SLSA_V1 || predicateType === SLSA_V02;

const dsseSchema = z.looseObject({
  payloadType: z.string(),
  payload: z.string(),
  signatures: z.array(z.looseObject({ keyid: z.string().optional(), sig: z.string().optional() })).optional(),
});
const rawBytes = z.looseObject({ rawBytes: z.string() });
const bundleSchema = z.looseObject({
  mediaType: z.string().optional(),
  dsseEnvelope: dsseSchema.optional(),
  verificationMaterial: z
    .looseObject({
      publicKey: z.looseObject({ hint: z.string().optional() }).optional(),
      certificate: rawBytes.optional(),
      x509CertificateChain: z.looseObject({ certificates: z.array(rawBytes) }).optional(),
      tlogEntries: z.array(z.looseObject({ integratedTime: z.union([z.string(), z.number()]).optional() })).optional(),
    })
    .optional(),
});

export interface EnvelopeInfo {
  /** bundle, dsse or statement. */
  readonly kind: 'bundle' | 'dsse' | 'statement';
  readonly statement: Statement | undefined;
  /** `key:<hint>`, `cert:<subjectAltName>`, `keyid:<id>` as claimed by the envelope. */
  readonly signers: string[];
  /** Transparency-log integration times (ISO), when the bundle has them. */
  readonly loggedAt: string[];
}

/** Parses JSON layer bytes; undefined when they are none of the three shapes. */
export function readEnvelope(bytes: Buffer): EnvelopeInfo | undefined {
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof json !== 'object' || json === null) return undefined;
  if ('dsseEnvelope' in json || 'verificationMaterial' in json) {
    const b = bundleSchema.safeParse(json);
    if (!b.success) return undefined;
    const vm = b.data.verificationMaterial;
    const signers: string[] = [];
    if (vm?.publicKey?.hint) signers.push(`key:${vm.publicKey.hint}`);
    const cert = vm?.certificate?.rawBytes ?? vm?.x509CertificateChain?.certificates[0]?.rawBytes;
    if (cert) signers.push(certSigner(cert));
    const loggedAt = (vm?.tlogEntries ?? []).flatMap((t) => (t.integratedTime === undefined ? [] : [new Date(Number(t.integratedTime) * 1000).toISOString()]));
    return { kind: 'bundle', statement: b.data.dsseEnvelope ? statementOf(b.data.dsseEnvelope) : undefined, signers, loggedAt };
  }
  const d = dsseSchema.safeParse(json);
  if (d.success) {
    const signers = (d.data.signatures ?? []).flatMap((s) => (s.keyid ? [`keyid:${s.keyid}`] : []));
    return { kind: 'dsse', statement: statementOf(d.data), signers, loggedAt: [] };
  }
  const st = statementSchema.safeParse(json);
  return st.success ? { kind: 'statement', statement: st.data, signers: [], loggedAt: [] } : undefined;
}

function statementOf(env: z.infer<typeof dsseSchema>): Statement | undefined {
  if (env.payloadType !== IN_TOTO_PAYLOAD_TYPE) return undefined;
  try {
    const r = statementSchema.safeParse(JSON.parse(Buffer.from(env.payload, 'base64').toString('utf8')));
    return r.success ? r.data : undefined;
  } catch {
    return undefined;
  }
}

function certSigner(rawBase64: string): string {
  try {
    const c = new X509Certificate(Buffer.from(rawBase64, 'base64'));
    return `cert:${c.subjectAltName ?? c.subject}`;
  } catch {
    return 'cert:(unparseable)';
  }
}

/** True when the statement names `digest` among its subjects. */
export function statementNames(st: Statement, digest: Digest): boolean {
  const i = digest.indexOf(':');
  const alg = digest.slice(0, i);
  const hex = digest.slice(i + 1);
  return st.subject.some((s) => s.digest[alg]?.toLowerCase() === hex);
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
const obj = (v: unknown): Record<string, unknown> => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {});
const digestSet = (v: unknown): Record<string, string> =>
  Object.fromEntries(Object.entries(obj(v)).filter((e): e is [string, string] => typeof e[1] === 'string' && e[1] !== ''));

export interface ProvenanceFacts {
  readonly builderId: string | undefined;
  readonly buildType: string | undefined;
  readonly startedOn: string | undefined;
  readonly finishedOn: string | undefined;
  readonly materials: ProvenanceMaterial[];
}

/** SLSA v1 `resolvedDependencies` or v0.2 `materials`, with the run's builder and times. */
export function provenanceFacts(st: { readonly predicateType: string; readonly predicate?: unknown }): ProvenanceFacts | undefined {
  const p = obj(st.predicate);
  if (st.predicateType === SLSA_V1) {
    const def = obj(p.buildDefinition);
    const run = obj(p.runDetails);
    const meta = obj(run.metadata);
    const deps = Array.isArray(def.resolvedDependencies) ? def.resolvedDependencies : [];
    return {
      builderId: str(obj(run.builder).id),
      buildType: str(def.buildType),
      startedOn: str(meta.startedOn),
      finishedOn: str(meta.finishedOn),
      materials: deps.map(material).filter((m) => Object.keys(m.digest).length > 0),
    };
  }
  if (st.predicateType === SLSA_V02) {
    const meta = obj(p.metadata);
    const mats = Array.isArray(p.materials) ? p.materials : [];
    return {
      builderId: str(obj(p.builder).id),
      buildType: str(p.buildType),
      startedOn: str(meta.buildStartedOn),
      finishedOn: str(meta.buildFinishedOn),
      materials: mats.map(material).filter((m) => Object.keys(m.digest).length > 0),
    };
  }
  return undefined;
}

function material(v: unknown): ProvenanceMaterial {
  const d = obj(v);
  const digest = digestSet(d.digest);
  const role = str(obj(d.annotations).role) ?? ('gitCommit' in digest ? 'source' : undefined);
  return { role, name: str(d.name), uri: str(d.uri), digest };
}

/** Classifies a material for display: code, dataset, base model, other. */
export function materialKind(m: ProvenanceMaterial): 'code' | 'dataset' | 'base-model' | 'other' {
  const role = (m.role ?? '').toLowerCase();
  if (role === 'source' || 'gitCommit' in m.digest) return 'code';
  if (role.includes('dataset') || role.includes('data')) return 'dataset';
  if (role.includes('model')) return 'base-model';
  return 'other';
}

export interface MlflowRunFacts {
  readonly runId: string;
  readonly experimentId?: string;
  readonly runName?: string;
  readonly metrics?: Record<string, number>;
  readonly flavor?: string;
}

/** The MLflow run a provenance names (customs writes it as a `runDetails.byproducts` entry `mlflow-run/<id>`). */
export function mlflowRunOf(predicate: unknown): MlflowRunFacts | undefined {
  const byproducts = obj(obj(obj(predicate).runDetails)).byproducts;
  if (!Array.isArray(byproducts)) return undefined;
  for (const b of byproducts) {
    const name = str(obj(b).name);
    const a = obj(obj(b).annotations);
    const runId = str(a.runId);
    if (!name?.startsWith('mlflow-run/') || !runId) continue;
    const metrics = Object.fromEntries(Object.entries(obj(a.metrics)).filter((e): e is [string, number] => typeof e[1] === 'number'));
    const experimentId = str(a.experimentId);
    const runName = str(a.runName);
    const flavor = str(a.flavor);
    return { runId, ...(experimentId ? { experimentId } : {}), ...(runName ? { runName } : {}), metrics, ...(flavor ? { flavor } : {}) };
  }
  return undefined;
}
