import { randomUUID } from 'node:crypto';
import { SPDX } from '@cyclonedx/cyclonedx-library';
import { pypiPurl, type PythonDistribution, type PythonInventory } from './python-env.js';

/**
 * SPDX 2.3 JSON (https://spdx.github.io/spdx-spec/v2.3/) of a Python environment, from the same
 * inventory as the CycloneDX SBOM: the interpreter as the described package, each distribution a
 * package that the interpreter CONTAINS, with its purl (the same as cyclonedx-py's), declared
 * license and summary. Files are not listed (`filesAnalyzed: false`): SPDX 2.3 requires a SHA-1 per
 * file and RECORD gives sha256 only. License names that are no SPDX identifier become
 * `LicenseRef-` entries with the original text in `hasExtractedLicensingInfos`.
 */
const TOOL = 'customs-0.1.0';

export interface SpdxOptions {
  readonly timestamp?: Date | undefined;
  /** Defaults to a fresh UUID URN under customs.dev; pass one for reproducible output. */
  readonly namespace?: string | undefined;
}

const idPart = (s: string): string => s.replace(/[^A-Za-z0-9.-]+/g, '-').replace(/^-+|-+$/g, '') || 'x';
const spdxTime = (d: Date): string => d.toISOString().replace(/\.\d{3}Z$/, 'Z');

class LicenseRefs {
  private readonly byText = new Map<string, string>();
  readonly infos: { licenseId: string; extractedText: string; name: string }[] = [];

  ref(text: string): string {
    const known = this.byText.get(text);
    if (known) return known;
    let id = `LicenseRef-${idPart(text).slice(0, 60)}`;
    if (this.infos.some((i) => i.licenseId === id)) id = `${id}-${this.infos.length}`;
    this.byText.set(text, id);
    this.infos.push({ licenseId: id, extractedText: text, name: text.slice(0, 200) });
    return id;
  }
}

const isSpdxId = (t: string): boolean => t.startsWith('LicenseRef-') || SPDX.isSupportedSpdxId(t);

/** An SPDX license expression, when every identifier in it is a known SPDX id. */
function spdxExpression(value: string): string | undefined {
  const v = value.trim();
  const fixed = SPDX.fixupSpdxId(v);
  if (fixed && SPDX.isSupportedSpdxId(fixed)) return fixed;
  if (!/^[A-Za-z0-9.+()\s-]+$/.test(v)) return undefined;
  const tokens = v.replace(/[()]/g, ' ').split(/\s+/).filter(Boolean);
  if (tokens.length < 3) return undefined;
  for (const [i, t] of tokens.entries()) {
    const op = i % 2 === 1;
    if (op ? !/^(AND|OR|WITH)$/.test(t) : !(isSpdxId(t.replace(/\+$/, '')) || /exception/i.test(t))) return undefined;
  }
  return v;
}

/** PEP 639 expression, else the License field, else the license trove classifiers (each a LicenseRef). */
function declaredLicense(d: PythonDistribution, refs: LicenseRefs): string {
  for (const v of [d.licenseExpression, d.license]) {
    if (!v || !v.trim() || v.trim().toUpperCase() === 'UNKNOWN') continue;
    return spdxExpression(v) ?? refs.ref(v.trim());
  }
  const classifiers = [...new Set(d.classifiers)].filter((c) => c !== 'OSI Approved');
  if (classifiers.length === 0) return 'NOASSERTION';
  const ids = classifiers.map((c) => refs.ref(c));
  return ids.length === 1 ? ids[0]! : `(${ids.join(' AND ')})`;
}

function validUrl(u: string | null | undefined): string | undefined {
  if (!u) return undefined;
  try {
    return new URL(u).toString();
  } catch {
    return undefined;
  }
}

/** The SPDX 2.3 document of a Python environment (`customs sbom python --format spdx`). */
export function buildPythonSpdx(inv: PythonInventory, opts: SpdxOptions = {}): Record<string, unknown> {
  const refs = new LicenseRefs();
  const rootId = 'SPDXRef-Package-python';
  const seen = new Set<string>();
  const packages: Record<string, unknown>[] = [
    {
      SPDXID: rootId,
      name: inv.python.implementation.toLowerCase(),
      versionInfo: inv.python.version,
      downloadLocation: 'NOASSERTION',
      filesAnalyzed: false,
      primaryPackagePurpose: 'APPLICATION',
      comment: `Python environment of ${inv.python.executable}`,
    },
  ];
  const relationships: Record<string, string>[] = [{ spdxElementId: 'SPDXRef-DOCUMENT', relationshipType: 'DESCRIBES', relatedSpdxElement: rootId }];
  for (const d of inv.distributions) {
    let id = `SPDXRef-Package-pypi-${idPart(d.name)}-${idPart(d.version)}`;
    if (seen.has(id)) id = `${id}-${seen.size}`;
    seen.add(id);
    const homepage = validUrl(d.homepage);
    packages.push({
      SPDXID: id,
      name: d.name,
      versionInfo: d.version,
      downloadLocation: 'NOASSERTION',
      filesAnalyzed: false,
      licenseConcluded: 'NOASSERTION',
      licenseDeclared: declaredLicense(d, refs),
      copyrightText: 'NOASSERTION',
      primaryPackagePurpose: 'LIBRARY',
      ...(d.summary ? { summary: d.summary } : {}),
      ...(homepage ? { homepage } : {}),
      externalRefs: [{ referenceCategory: 'PACKAGE-MANAGER', referenceType: 'purl', referenceLocator: pypiPurl(d.name, d.version) }],
    });
    relationships.push({ spdxElementId: rootId, relationshipType: 'CONTAINS', relatedSpdxElement: id });
  }
  return {
    spdxVersion: 'SPDX-2.3',
    dataLicense: 'CC0-1.0',
    SPDXID: 'SPDXRef-DOCUMENT',
    name: `python-${inv.python.version}-environment`,
    documentNamespace: opts.namespace ?? `https://customs.dev/spdx/python-environment/${randomUUID()}`,
    creationInfo: { created: spdxTime(opts.timestamp ?? new Date()), creators: [`Tool: ${TOOL}`] },
    packages,
    relationships,
    ...(refs.infos.length ? { hasExtractedLicensingInfos: refs.infos } : {}),
  };
}
