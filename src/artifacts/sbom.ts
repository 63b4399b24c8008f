import { randomUUID } from 'node:crypto';
import { Enums, Models, SPDX, Serialize, Spec } from '@cyclonedx/cyclonedx-library';
import { parseDigest, type Digest } from '../oci/index.js';
import type { PackedFile } from './modelpack.js';
import { pypiPurl, type PythonDistribution, type PythonInventory } from './python-env.js';

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

function pythonComponents(inv: PythonInventory): Models.Component[] {
  const interp = new Models.Component(Enums.ComponentType.Platform, inv.python.implementation.toLowerCase(), {
    bomRef: `python:${inv.python.version}`,
    version: inv.python.version,
    properties: new Models.PropertyRepository([new Models.Property('customs:python:executable', inv.python.executable)]),
  });
  const libs = inv.distributions.map((d) => {
    const purl = pypiPurl(d.name, d.version);
    const c = new Models.Component(Enums.ComponentType.Library, d.name, {
      bomRef: purl,
      version: d.version,
      purl,
      licenses: new Models.LicenseRepository(distributionLicenses(d)),
      ...(d.summary ? { description: d.summary } : {}),
    });
    if (d.homepage) {
      try {
        c.externalReferences.add(new Models.ExternalReference(new URL(d.homepage).toString(), Enums.ExternalReferenceType.Website));
      } catch {
        // not a URL; skip
      }
    }
    c.properties.add(new Models.Property('customs:python:record', d.hasRecord ? 'present' : 'absent'));
    for (const [path, hex] of d.files) c.components.add(fileComponent(purl, path, hex));
    return c;
  });
  return [interp, ...libs];
}

function newBom(timestamp: Date): Models.Bom {
  const bom = new Models.Bom();
  bom.serialNumber = `urn:uuid:${randomUUID()}`;
  bom.metadata.timestamp = timestamp;
  bom.metadata.tools.components.add(new Models.Component(Enums.ComponentType.Application, 'customs', { version: TOOL_VERSION }));
  return bom;
}

function serialize(bom: Models.Bom): Record<string, unknown> {
  const serializer = new Serialize.JsonSerializer(new Serialize.JSON.Normalize.Factory(Spec.Spec1dot6));
  return JSON.parse(serializer.serialize(bom, { sortLists: true })) as Record<string, unknown>;
}

/** The SBOM of a Python environment alone (`customs sbom python`). */
export function buildPythonSbom(inv: PythonInventory, timestamp = new Date()): Record<string, unknown> {
  const bom = newBom(timestamp);
  const env = new Models.Component(Enums.ComponentType.Platform, 'python-environment', { bomRef: 'python-environment', version: inv.python.version });
  bom.metadata.component = env;
  for (const c of pythonComponents(inv)) bom.components.add(c);
  return serialize(bom);
}

/**
 * The SBOM of a trained model: the model (with its files and a modelCard), each training
 * dataset as a `data` component, and the training environment's Python distributions.
 */
export function buildModelSbom(input: ModelSbomInput): Record<string, unknown> {
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
  bom.components.add(model);

  const datasetRefs: string[] = [];
  for (const d of input.datasets) {
    const ref = `dataset:${d.digest}`;
    datasetRefs.push(ref);
    const data = new Models.Component(Enums.ComponentType.Data, d.repository ?? d.digest, {
      bomRef: ref,
      version: d.digest,
      purl: ociPurl(m.host, d.repository, d.digest),
      hashes: new Models.HashDictionary([[Enums.HashAlgorithm['SHA-256'], sha256Hex(d.digest)]]),
    });
    bom.components.add(data);
    model.dependencies.add(data.bomRef);
  }
  if (input.python) {
    for (const c of pythonComponents(input.python)) {
      bom.components.add(c);
      model.dependencies.add(c.bomRef);
    }
  }
  const json = serialize(bom);
  const components = json.components as Record<string, unknown>[];
  for (const c of components) {
    if (c['bom-ref'] === modelRef) {
      c.modelCard = {
        modelParameters: {
          ...(m.task ? { task: m.task } : {}),
          ...(m.architectureFamily ? { architectureFamily: m.architectureFamily } : {}),
          ...(m.architecture ? { modelArchitecture: m.architecture } : {}),
          ...(datasetRefs.length ? { datasets: datasetRefs.map((ref) => ({ ref })) } : {}),
        },
      };
    }
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
  return json;
}
