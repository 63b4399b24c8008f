import * as CDX from '@cyclonedx/cyclonedx-library';
import { z } from 'zod';
import { globMatchCi } from './glob.js';

/**
 * SBOMs as referrers: raw CycloneDX 1.4-1.6 JSON (schema-validated) or SPDX 2.3 JSON
 * (2.2 accepted too: same JSON shape), or the same documents as in-toto predicates.
 */
export const CYCLONEDX_PREDICATE = 'https://cyclonedx.org/bom';
export const SPDX_PREDICATE = 'https://spdx.dev/Document';

export type SbomFormat = 'cyclonedx' | 'spdx';

export interface SbomSummary {
  readonly format: SbomFormat;
  readonly version: string;
  readonly components: number;
  readonly licenses: readonly string[];
  readonly purls: readonly string[];
}

export function sbomFormatOfMediaType(mt: string | undefined): SbomFormat | undefined {
  if (!mt) return undefined;
  const m = mt.toLowerCase();
  if (m.includes('cyclonedx') && m.includes('json')) return 'cyclonedx';
  if (m.includes('spdx') && m.includes('json')) return 'spdx';
  return undefined;
}

export function sbomFormatOfPredicate(predicateType: string): SbomFormat | undefined {
  if (predicateType.startsWith(CYCLONEDX_PREDICATE)) return 'cyclonedx';
  if (predicateType.startsWith(SPDX_PREDICATE)) return 'spdx';
  return undefined;
}

const CDX_VERSIONS: Record<string, CDX.Spec.Version> = {
  '1.4': CDX.Spec.Version.v1dot4,
  '1.5': CDX.Spec.Version.v1dot5,
  '1.6': CDX.Spec.Version.v1dot6,
};
// Compiling a schema costs ~0.5 s; validating with a compiled one a few ms. Keep one per version.
const validators = new Map<string, CDX.Validation.JsonStrictValidator>();
const validator = (v: string): CDX.Validation.JsonStrictValidator => {
  let x = validators.get(v);
  if (!x) {
    x = new CDX.Validation.JsonStrictValidator(CDX_VERSIONS[v]!);
    validators.set(v, x);
  }
  return x;
};

/** Compiles the CycloneDX schemas now (server start), not on the first pull. */
export async function warmUpSbomValidators(): Promise<void> {
  for (const v of Object.keys(CDX_VERSIONS)) await validator(v).validate('{}').catch(() => undefined);
}

interface CdxComponent {
  purl?: unknown;
  licenses?: unknown;
  components?: unknown;
}

/** Parses and validates; throws with a readable reason when the document is not a valid SBOM. */
export async function summarizeSbom(doc: unknown, format: SbomFormat): Promise<SbomSummary> {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new Error('SBOM is not a JSON object');
  return format === 'cyclonedx' ? summarizeCycloneDx(doc as Record<string, unknown>) : summarizeSpdx(doc);
}

async function summarizeCycloneDx(doc: Record<string, unknown>): Promise<SbomSummary> {
  if (doc['bomFormat'] !== 'CycloneDX') throw new Error('bomFormat is not CycloneDX');
  const version = String(doc['specVersion']);
  if (!(version in CDX_VERSIONS)) throw new Error(`CycloneDX specVersion ${version} is not supported (1.4-1.6)`);
  const errors = await validator(version).validate(JSON.stringify(doc));
  if (errors !== null) {
    const list = Array.isArray(errors) ? (errors as { instancePath?: string; message?: string }[]) : [];
    const first = list[0];
    throw new Error(`CycloneDX ${version} document is invalid: ${first ? `${first.instancePath || '/'} ${first.message ?? ''}` : 'schema validation failed'}`);
  }
  const licenses = new Set<string>();
  const purls = new Set<string>();
  let count = 0;
  const visit = (c: CdxComponent): void => {
    count++;
    if (typeof c.purl === 'string') purls.add(c.purl);
    if (Array.isArray(c.licenses)) {
      for (const l of c.licenses as { license?: { id?: string; name?: string }; expression?: string }[]) {
        if (l.license?.id) licenses.add(l.license.id);
        else if (l.license?.name) licenses.add(l.license.name);
        if (l.expression) for (const id of splitExpression(l.expression)) licenses.add(id);
      }
    }
    if (Array.isArray(c.components)) for (const x of c.components as CdxComponent[]) visit(x);
  };
  const metaComponent = (doc['metadata'] as { component?: CdxComponent } | undefined)?.component;
  if (metaComponent) visit(metaComponent);
  if (Array.isArray(doc['components'])) for (const c of doc['components'] as CdxComponent[]) visit(c);
  return { format: 'cyclonedx', version, components: count, licenses: [...licenses], purls: [...purls] };
}

const spdxSchema = z.looseObject({
  spdxVersion: z.enum(['SPDX-2.2', 'SPDX-2.3']),
  SPDXID: z.literal('SPDXRef-DOCUMENT'),
  dataLicense: z.string(),
  name: z.string(),
  documentNamespace: z.string(),
  creationInfo: z.looseObject({ created: z.string(), creators: z.array(z.string()).min(1) }),
  packages: z
    .array(
      z.looseObject({
        SPDXID: z.string(),
        name: z.string(),
        licenseConcluded: z.string().optional(),
        licenseDeclared: z.string().optional(),
        externalRefs: z.array(z.looseObject({ referenceType: z.string(), referenceLocator: z.string() })).optional(),
      }),
    )
    .default([]),
});

function summarizeSpdx(doc: unknown): SbomSummary {
  const r = spdxSchema.safeParse(doc);
  if (!r.success) throw new Error(`SPDX document is invalid: ${r.error.issues.slice(0, 3).map((i) => `${i.path.join('.') || '/'}: ${i.message}`).join('; ')}`);
  const licenses = new Set<string>();
  const purls = new Set<string>();
  for (const p of r.data.packages) {
    for (const e of [p.licenseConcluded, p.licenseDeclared]) if (e) for (const id of splitExpression(e)) licenses.add(id);
    for (const ref of p.externalRefs ?? []) if (ref.referenceType === 'purl') purls.add(ref.referenceLocator);
  }
  return { format: 'spdx', version: r.data.spdxVersion, components: r.data.packages.length, licenses: [...licenses], purls: [...purls] };
}

/** `(MIT OR Apache-2.0) AND GPL-2.0-only WITH Classpath-exception-2.0` -> its identifiers. */
export function splitExpression(expr: string): string[] {
  return expr
    .replace(/[()]/g, ' ')
    .split(/\s+/)
    .filter((t) => t !== '' && !/^(AND|OR|WITH)$/i.test(t) && t !== 'NOASSERTION' && t !== 'NONE');
}

/** The deny lists: every license or purl matching a glob is a reason to deny. */
export function sbomViolations(s: SbomSummary, denyLicenses: readonly string[], denyPurls: readonly string[]): string[] {
  const out: string[] = [];
  for (const l of s.licenses) {
    const g = denyLicenses.find((d) => globMatchCi(d, l));
    if (g) out.push(`license ${l} is denied (${g})`);
  }
  for (const p of s.purls) {
    const g = denyPurls.find((d) => globMatchCi(d, p));
    if (g) out.push(`package ${p} is denied (${g})`);
  }
  return out;
}
