import { createHash, randomUUID } from 'node:crypto';
import { Enums, Models, SPDX, Serialize, Spec } from '@cyclonedx/cyclonedx-library';
import { parseDigest, type Digest } from '../oci/index.js';
import type { PackedFile } from './modelpack.js';
import { normalizePypiName, pypiPurl, type PythonDistribution, type PythonInventory } from './python-env.js';

/**
 * CycloneDX 1.6 SBOMs with @cyclonedx/cyclonedx-library. The library has no model-card
 * class, so the modelCard (and a data component's `data`) are added to the serialised JSON.
 */
const TOOL_VERSION = '0.1.0';

export interface ModelSbomInput {
  readonly model: {
    readonly name: string;
    readonly version?: string | undefined;
    readonly repository: string;
    readonly host: string;
    readonly digest: Digest;
    readonly description?: string | undefined;
    readonly licenses?: readonly string[] | undefined;
    readonly files: readonly PackedFile[];
    readonly task?: string | undefined;
    readonly architecture?: string | undefined;
    readonly architectureFamily?: string | undefined;
  };
  readonly datasets: readonly { readonly repository?: string | undefined; readonly digest: Digest; readonly reference: string }[];
  readonly python?: PythonInventory | undefined;
  readonly timestamp: Date;
}

/** `pkg:oci/<name>@<digest>?repository_url=<host>/<repo>` (purl-spec, type "oci"). */
export function ociPurl(host: string, repository: string | undefined, digest: Digest): string {
  const name = repository ? repository.split('/').pop()! : 'unknown';
  const q = repository ? `?repository_url=${encodeURIComponent(`${host}/${repository}`)}` : '';
  return `pkg:oci/${name}@${encodeURIComponent(digest)}${q}`;
}

const sha256Hex = (d: Digest): string => parseDigest(d).hex;

/** SPDX id, SPDX expression, or a named license, in that order. */
export function makeLicense(value: string): Models.License {
  const v = value.trim();
  const id = SPDX.fixupSpdxId(v);
  if (id && SPDX.isSupportedSpdxId(id)) return new Models.SpdxLicense(id);
  if (/\s(AND|OR|WITH)\s/.test(v)) {
    const ids = v.replace(/[()]/g, ' ').split(/\s+/).filter((t) => t && !['AND', 'OR', 'WITH'].includes(t));
    if (ids.every((t: string) => SPDX.isSupportedSpdxId(t as unknown) || t.endsWith('+') || t.startsWith('LicenseRef-') || /exception/i.test(t))) return new Models.LicenseExpression(v);
  }
  return new Models.NamedLicense(v);
}

/** Licenses of a distribution: PEP 639 expression, else the License field, else the trove classifiers. */
function distributionLicenses(d: PythonDistribution): Models.License[] {
  if (d.licenseExpression) return [makeLicense(d.licenseExpression)];
  const out: Models.License[] = [];
  if (d.license && d.license.trim() && d.license.trim().toUpperCase() !== 'UNKNOWN') {
    const l = makeLicense(d.license);
    // CycloneDX forbids mixing an expression with other licenses.
    if (l instanceof Models.LicenseExpression) return [l];
    out.push(l);
  }
  // An SPDX id in the License field is precise; trove classifiers ("MIT License") would only repeat it.
  if (out[0] instanceof Models.SpdxLicense) return out;
  const seen = new Set(out.map((l) => (l as Models.NamedLicense).name));
  for (const c of d.classifiers) {
    if (seen.has(c)) continue;
    seen.add(c);
    out.push(new Models.NamedLicense(c));
  }
  return out;
}

function fileComponent(parentRef: string, path: string, hexSha256: string): Models.Component {
  return new Models.Component(Enums.ComponentType.File, path, {
    bomRef: `${parentRef}#file:${path}`,
    hashes: new Models.HashDictionary([[Enums.HashAlgorithm['SHA-256'], hexSha256]]),
  });
}

interface PythonComponents {
  readonly interpreter: Models.Component;
  readonly libraries: Models.Component[];
}

/**
 * The interpreter and one library component per distribution, bom-ref = purl (stable across runs),
 * the RECORD file's sha256 as the distribution's hash, and the Requires-Dist edges between the
 * distributions present (the only dependencies the SBOM states about them).
 */
function pythonComponents(inv: PythonInventory): PythonComponents {
  const interpreter = new Models.Component(Enums.ComponentType.Platform, inv.python.implementation.toLowerCase(), {
    bomRef: `python:${inv.python.version}`,
    version: inv.python.version,
    properties: new Models.PropertyRepository([new Models.Property('customs:python:executable', inv.python.executable)]),
  });
  const byName = new Map<string, Models.Component>();
  const libraries: Models.Component[] = [];
  for (const d of inv.distributions) {
    const purl = pypiPurl(d.name, d.version);
    if (libraries.some((c) => c.bomRef.value === purl)) continue; // the same distribution twice: listed once
    const c = new Models.Component(Enums.ComponentType.Library, d.name, {
      bomRef: purl,
      version: d.version,
      purl,
      licenses: new Models.LicenseRepository(distributionLicenses(d)),
      ...(d.summary ? { description: d.summary } : {}),
      ...(d.recordSha256 ? { hashes: new Models.HashDictionary([[Enums.HashAlgorithm['SHA-256'], d.recordSha256]]) } : {}),
    });
    if (d.homepage) {
      try {
        c.externalReferences.add(new Models.ExternalReference(new URL(d.homepage).toString(), Enums.ExternalReferenceType.Website));
      } catch {
        // not a URL; skip
      }
    }
    // What the hash is of: a wheel's hash would differ, the installed files are what RECORD pins.
    c.properties.add(new Models.Property('customs:python:hash', d.recordSha256 ? 'sha256 of the RECORD file' : 'none: no RECORD file'));
    libraries.push(c);
    if (!byName.has(normalizePypiName(d.name))) byName.set(normalizePypiName(d.name), c);
  }
  inv.distributions.forEach((d) => {
    const from = byName.get(normalizePypiName(d.name));
    for (const r of d.requires) {
      const to = byName.get(r);
      if (from && to && to !== from) from.dependencies.add(to.bomRef);
    }
  });
  return { interpreter, libraries };
}

/** Reproducible builds: SOURCE_DATE_EPOCH (seconds), when set, fixes the timestamp and the serial number. */
export function sourceDateEpoch(env: NodeJS.ProcessEnv = process.env): Date | undefined {
  const v = env.SOURCE_DATE_EPOCH;
  return v && /^\d+$/.test(v) ? new Date(Number(v) * 1000) : undefined;
}

function newBom(timestamp: Date): Models.Bom {
  const bom = new Models.Bom();
  bom.metadata.timestamp = timestamp;
  bom.metadata.tools.components.add(new Models.Component(Enums.ComponentType.Application, 'customs', { version: TOOL_VERSION }));
  return bom;
}

// A fixed UUID namespace for name-based (v5) serial numbers of customs SBOMs.
const SERIAL_NAMESPACE = Buffer.from('4f0c1a2e5b7d4e7f9a3c6d8e0f1a2b3c', 'hex');

/** RFC 9562 UUIDv5 of `name` (the schema allows versions 1-5 in serialNumber). */
function uuidV5(name: string): string {
  const h = createHash('sha1').update(SERIAL_NAMESPACE).update(name).digest();
  h[6] = (h[6]! & 0x0f) | 0x50;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

/**
 * Serialises with sorted lists; `dependencies` keeps only entries with edges (the library writes
 * one per bom-ref, most of them empty). The serial number is random, or, when `reproducible`,
 * derived from the document itself, so the same inputs give the same bytes.
 */
function serialize(bom: Models.Bom, reproducible: boolean, patch: (json: Record<string, unknown>) => void = () => undefined): Record<string, unknown> {
  const serializer = new Serialize.JsonSerializer(new Serialize.JSON.Normalize.Factory(Spec.Spec1dot6));
  const json = JSON.parse(serializer.serialize(bom, { sortLists: true })) as Record<string, unknown>;
  const deps = (json.dependencies as { ref: string; dependsOn?: string[] }[] | undefined)?.filter((d) => (d.dependsOn?.length ?? 0) > 0);
  if (deps?.length) json.dependencies = deps;
  else delete json.dependencies;
  patch(json);
  const serial = reproducible ? uuidV5(createHash('sha256').update(JSON.stringify(json)).digest('hex')) : randomUUID();
  const { $schema, bomFormat, specVersion, serialNumber: _unused, ...rest } = json;
  return { $schema, bomFormat, specVersion, serialNumber: `urn:uuid:${serial}`, ...rest };
}

/**
 * The SBOM of a Python environment alone (`customs sbom python`). Timestamp: `timestamp`, else
 * SOURCE_DATE_EPOCH, else now; with SOURCE_DATE_EPOCH the serial number is derived from the content.
 */
export function buildPythonSbom(inv: PythonInventory, timestamp?: Date, env: NodeJS.ProcessEnv = process.env): Record<string, unknown> {
  const epoch = sourceDateEpoch(env);
  const bom = newBom(timestamp ?? epoch ?? new Date());
  bom.metadata.component = new Models.Component(Enums.ComponentType.Platform, 'python-environment', { bomRef: 'python-environment', version: inv.python.version });
  const py = pythonComponents(inv);
  bom.components.add(py.interpreter);
  for (const c of py.libraries) bom.components.add(c);
  return serialize(bom, epoch !== undefined);
}

/**
 * The SBOM of a trained model: the model itself as `metadata.component` (with its manifest digest,
 * files and a modelCard), each training dataset as a `data` component it depends on, and the
 * training environment's Python distributions with their Requires-Dist edges. With
 * SOURCE_DATE_EPOCH set (`env`), the serial number is derived from the content: same inputs, same bytes.
 */
export function buildModelSbom(input: ModelSbomInput, env: NodeJS.ProcessEnv = process.env): Record<string, unknown> {
  const bom = newBom(input.timestamp);
  const m = input.model;
  const modelRef = `model:${m.digest}`;
  const model = new Models.Component(Enums.ComponentType.MachineLearningModel, m.name, {
    bomRef: modelRef,
    purl: ociPurl(m.host, m.repository, m.digest),
    hashes: new Models.HashDictionary([[Enums.HashAlgorithm['SHA-256'], sha256Hex(m.digest)]]),
    licenses: new Models.LicenseRepository((m.licenses ?? []).map(makeLicense)),
    ...(m.version ? { version: m.version } : {}),
    ...(m.description ? { description: m.description } : {}),
  });
  for (const f of m.files) model.components.add(fileComponent(modelRef, f.relPath, sha256Hex(f.digest)));
  bom.metadata.component = model;

  const datasetRefs: string[] = [];
  for (const d of input.datasets) {
    const ref = `dataset:${d.digest}`;
    if (datasetRefs.includes(ref)) continue;
    datasetRefs.push(ref);
    const data = new Models.Component(Enums.ComponentType.Data, d.repository ?? d.digest, {
      bomRef: ref,
      version: d.digest,
      purl: ociPurl(m.host, d.repository, d.digest),
      hashes: new Models.HashDictionary([[Enums.HashAlgorithm['SHA-256'], sha256Hex(d.digest)]]),
    });
    bom.components.add(data);
    model.dependencies.add(data.bomRef); // trained on it: a real edge
  }
  if (input.python) {
    const py = pythonComponents(input.python);
    bom.components.add(py.interpreter);
    for (const c of py.libraries) bom.components.add(c);
  }
  return serialize(bom, sourceDateEpoch(env) !== undefined, (json) => {
    // The library has no model card or dataset classes: added to the JSON (CycloneDX 1.6 component fields).
    const meta = json.metadata as { component: Record<string, unknown> };
    meta.component.modelCard = {
      modelParameters: {
        ...(m.task ? { task: m.task } : {}),
        ...(m.architectureFamily ? { architectureFamily: m.architectureFamily } : {}),
        ...(m.architecture ? { modelArchitecture: m.architecture } : {}),
        ...(datasetRefs.length ? { datasets: datasetRefs.map((ref) => ({ ref })) } : {}),
      },
    };
    for (const c of (json.components as Record<string, unknown>[] | undefined) ?? []) {
      const ds = input.datasets.find((d) => c['bom-ref'] === `dataset:${d.digest}`);
      if (ds) {
        c.data = [
          {
            type: 'dataset',
            name: ds.reference,
            ...(ds.repository ? { contents: { url: `oci://${m.host}/${ds.repository}@${ds.digest}` } } : {}),
          },
        ];
      }
    }
  });
}
