import type { Descriptor, Digest } from '../oci/index.js';
import { parseManifest } from '../oci/index.js';
import { materialKind, provenanceFacts, readEnvelope } from '../ops/envelope.js';
import { readSmall } from '../ops/index.js';
import type { ProvenanceMaterial } from '../storage/index.js';
import type { ConsoleDeps } from './deps.js';
import { maySee, type Viewer } from './viewer.js';

/**
 * A referrer's content as the artifact page shows it: signatures with the signer they claim
 * (and, when it is one, the trusted key it names), SBOM components and licenses, provenance
 * with its builder, parameters, code commit and datasets. Whether the registry serves the
 * referrer (the gate's own answer) is shown beside it; content the gate does not serve is
 * shown only to a viewer with `admin` on the repository, as /admin/lineage would.
 */
const MAX_LAYER = 4 * 1024 * 1024;
const MAX_DEPTH = 3;
const MAX_NODES = 100;
const MAX_COMPONENTS = 500;
const SBOM_TYPES = ['application/vnd.cyclonedx+json', 'application/spdx+json'];
const SBOM_PREDICATES = ['https://cyclonedx.org/bom', 'https://spdx.dev/Document'];
const SIGNATURE_PREDICATES = ['https://sigstore.dev/cosign/sign/v1'];

export type EvidenceKind = 'signature' | 'sbom' | 'provenance' | 'attestation' | 'other';

export interface SignerView {
  /** As the envelope claims it: `key:<hint>`, `cert:<identity>`, `keyid:<id>`. */
  readonly claimed: string;
  /** For a key: its SHA-256 fingerprint in hex, as `customs keygen` and the overview print it. */
  readonly fingerprint: string | undefined;
  /** Where the trusted key with that fingerprint came from, if the policy trusts it. */
  readonly trustedAs: string | undefined;
}

export interface ComponentView {
  readonly name: string;
  readonly version: string | undefined;
  readonly type: string | undefined;
  readonly licenses: readonly string[];
  readonly purl: string | undefined;
}

export interface SbomView {
  readonly format: string;
  readonly name: string | undefined;
  readonly components: readonly ComponentView[];
  readonly total: number;
  readonly licenses: readonly string[];
}

export interface MaterialRef {
  readonly kind: 'code' | 'dataset' | 'base-model' | 'other';
  readonly role: string | undefined;
  readonly name: string | undefined;
  readonly uri: string | undefined;
  /** `alg:value` keys of its digest set (`sha256:...`, `gitCommit:...`): lineage looks each up. */
  readonly keys: readonly string[];
  /** Repositories where customs stores it as a manifest. */
  readonly storedIn: readonly string[];
}

export interface ProvenanceView {
  readonly predicateType: string;
  readonly builderId: string | undefined;
  readonly buildType: string | undefined;
  readonly startedOn: string | undefined;
  readonly finishedOn: string | undefined;
  readonly parameters: readonly (readonly [string, string])[];
  readonly materials: readonly MaterialRef[];
}

export interface EvidenceNode {
  readonly digest: Digest;
  readonly artifactType: string | undefined;
  readonly created: string | undefined;
  readonly kind: EvidenceKind;
  readonly predicateType: string | undefined;
  /** The registry's answer for this referrer over /v2/. */
  readonly served: { readonly served: boolean; readonly reason?: string | undefined };
  /** False when the content is withheld from this viewer (not served, and no admin permission). */
  readonly shown: boolean;
  readonly signers: readonly SignerView[];
  readonly loggedAt: readonly string[];
  readonly sbom: SbomView | undefined;
  readonly provenance: ProvenanceView | undefined;
  readonly children: readonly EvidenceNode[];
}

/** The referrers of `subject` in `repository`, and theirs, as a tree. */
export async function evidenceTree(d: ConsoleDeps, v: Viewer, repository: string, subject: Digest, keyIndex: ReadonlyMap<string, string>): Promise<EvidenceNode[]> {
  let budget = MAX_NODES;
  const walk = async (of: Digest, depth: number): Promise<EvidenceNode[]> => {
    if (depth > MAX_DEPTH) return [];
    const out: EvidenceNode[] = [];
    for (const desc of await d.metadata.listReferrers(repository, of)) {
      if (budget-- <= 0) break;
      out.push(await node(d, v, repository, desc, keyIndex, (x) => walk(x, depth + 1)));
    }
    return out;
  };
  return walk(subject, 1);
}

async function node(d: ConsoleDeps, v: Viewer, repository: string, desc: Descriptor, keyIndex: ReadonlyMap<string, string>, below: (d: Digest) => Promise<EvidenceNode[]>): Promise<EvidenceNode> {
  const served = await d.served(repository, desc.digest);
  const shown = served.served || v.may(repository, 'admin');
  const record = await d.metadata.getManifest(repository, desc.digest);
  let predicateType = desc.annotations?.['dev.sigstore.bundle.predicateType'];
  const signers: SignerView[] = [];
  const loggedAt: string[] = [];
  let sbom: SbomView | undefined;
  let provenance: ProvenanceView | undefined;
  if (shown && record) {
    for (const layer of layersOf(record.bytes, record.mediaType)) {
      if (layer.size > MAX_LAYER) continue;
      const bytes = await readSmall(d.blobs, layer.digest, MAX_LAYER).catch(() => undefined);
      if (!bytes) continue;
      const env = readEnvelope(bytes);
      if (env) {
        for (const s of env.signers) if (!signers.some((x) => x.claimed === s)) signers.push(signer(s, keyIndex));
        loggedAt.push(...env.loggedAt);
        const st = env.statement;
        predicateType ??= st?.predicateType;
        if (st && SBOM_PREDICATES.includes(st.predicateType)) sbom = summariseSbom(st.predicate);
        const facts = st ? provenanceFacts(st) : undefined;
        if (st && facts) provenance = { predicateType: st.predicateType, ...facts, parameters: parametersOf(st.predicate), materials: await materials(d, v, facts.materials) };
      } else if (desc.artifactType && SBOM_TYPES.includes(desc.artifactType)) {
        sbom = summariseSbom(safeJson(bytes));
      }
    }
  }
  const kind: EvidenceKind = sbom || (desc.artifactType && SBOM_TYPES.includes(desc.artifactType)) || SBOM_PREDICATES.includes(predicateType ?? '')
    ? 'sbom'
    : provenance || predicateType?.startsWith('https://slsa.dev/provenance/')
      ? 'provenance'
      : SIGNATURE_PREDICATES.includes(predicateType ?? '') || /signature|cosign|notary/i.test(desc.artifactType ?? '')
        ? 'signature'
        : predicateType
          ? 'attestation'
          : 'other';
  return {
    digest: desc.digest,
    artifactType: desc.artifactType,
    created: desc.annotations?.['org.opencontainers.image.created'],
    kind,
    predicateType,
    served,
    shown,
    signers,
    loggedAt,
    sbom,
    provenance,
    children: await below(desc.digest),
  };
}

function signer(claimed: string, keyIndex: ReadonlyMap<string, string>): SignerView {
  if (!claimed.startsWith('key:')) return { claimed, fingerprint: undefined, trustedAs: undefined };
  // A sigstore bundle's key hint is base64(SHA-256(SPKI)); trusted keys are indexed by the same hash in hex.
  const hex = Buffer.from(claimed.slice(4), 'base64').toString('hex');
  const fingerprint = hex.length === 64 ? hex : undefined;
  return { claimed, fingerprint, trustedAs: fingerprint ? keyIndex.get(fingerprint) : undefined };
}

/** Each material with where customs stores it: only repositories the viewer may see are named. */
async function materials(d: ConsoleDeps, v: Viewer, list: readonly ProvenanceMaterial[]): Promise<MaterialRef[]> {
  const out: MaterialRef[] = [];
  for (const m of list) {
    const keys = Object.entries(m.digest).map(([alg, value]) => `${alg}:${value.toLowerCase()}`);
    const sha = m.digest.sha256 ? (`sha256:${m.digest.sha256.toLowerCase()}` as Digest) : undefined;
    out.push({ kind: materialKind(m), role: m.role, name: m.name, uri: m.uri, keys, storedIn: sha ? (await d.metadata.repositoriesOf(sha)).filter((r) => maySee(v, r)) : [] });
  }
  return out;
}

/** SLSA v1 `buildDefinition.externalParameters` (v0.2: `invocation.parameters`), flattened to `key = value`. */
function parametersOf(predicate: unknown): [string, string][] {
  const p = (predicate ?? {}) as { buildDefinition?: { externalParameters?: unknown }; invocation?: { parameters?: unknown } };
  const params = p.buildDefinition?.externalParameters ?? p.invocation?.parameters;
  if (!params || typeof params !== 'object') return [];
  const out: [string, string][] = [];
  const flat = (prefix: string, value: unknown): void => {
    if (out.length >= 200) return;
    if (value && typeof value === 'object' && !Array.isArray(value)) for (const [k, x] of Object.entries(value)) flat(prefix ? `${prefix}.${k}` : k, x);
    else out.push([prefix, typeof value === 'string' ? value : JSON.stringify(value)]);
  };
  flat('', params);
  return out;
}

function layersOf(bytes: Buffer, mediaType: string): Descriptor[] {
  try {
    const m = parseManifest(bytes, mediaType);
    return m.blobs.filter((b) => b.digest !== m.config?.digest);
  } catch {
    return [];
  }
}

function safeJson(bytes: Buffer): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch {
    return undefined;
  }
}

const str = (x: unknown): string | undefined => (typeof x === 'string' && x !== '' ? x : undefined);

/** CycloneDX `components` or SPDX `packages`, with their licenses; undefined for anything else. */
export function summariseSbom(doc: unknown): SbomView | undefined {
  if (!doc || typeof doc !== 'object') return undefined;
  const d = doc as Record<string, unknown>;
  let components: ComponentView[];
  let format: string;
  let name: string | undefined;
  if (d.bomFormat === 'CycloneDX') {
    format = `CycloneDX ${str(d.specVersion) ?? ''}`.trim();
    name = str((d.metadata as { component?: { name?: unknown } } | undefined)?.component?.name);
    const list = Array.isArray(d.components) ? d.components : [];
    components = list.map((c: Record<string, unknown>) => ({
      name: str(c.name) ?? '(unnamed)',
      version: str(c.version),
      type: str(c.type),
      licenses: (Array.isArray(c.licenses) ? c.licenses : []).flatMap((l: { license?: { id?: unknown; name?: unknown }; expression?: unknown }) => {
        const s = str(l.license?.id) ?? str(l.license?.name) ?? str(l.expression);
        return s ? [s] : [];
      }),
      purl: str(c.purl),
    }));
  } else if (typeof d.spdxVersion === 'string') {
    format = d.spdxVersion;
    name = str(d.name);
    const list = Array.isArray(d.packages) ? d.packages : [];
    components = list.map((c: Record<string, unknown>) => {
      const lic = [str(c.licenseConcluded), str(c.licenseDeclared)].filter((x): x is string => x !== undefined && x !== 'NOASSERTION' && x !== 'NONE');
      const refs = Array.isArray(c.externalRefs) ? (c.externalRefs as { referenceType?: unknown; referenceLocator?: unknown }[]) : [];
      return { name: str(c.name) ?? '(unnamed)', version: str(c.versionInfo), type: str(c.primaryPackagePurpose)?.toLowerCase(), licenses: [...new Set(lic)], purl: str(refs.find((r) => r.referenceType === 'purl')?.referenceLocator) };
    });
  } else return undefined;
  const licenses = [...new Set(components.flatMap((c) => c.licenses))].sort();
  return { format, name, components: components.slice(0, MAX_COMPONENTS), total: components.length, licenses };
}
