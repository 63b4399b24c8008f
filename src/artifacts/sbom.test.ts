import { Spec, Validation } from '@cyclonedx/cyclonedx-library';
import { describe, expect, it } from 'vitest';
import { digestOf, type Digest } from '../oci/index.js';
import type { PackedFile } from './modelpack.js';
import { inspectPython, pypiPurl, type PythonInventory } from './python-env.js';
import { buildModelSbom, buildPythonSbom, makeLicense, ociPurl } from './sbom.js';

const validator = new Validation.JsonStrictValidator(Spec.Version.v1dot6);
const PY = '/usr/bin/python3'; // Debian's interpreter, with python3-sklearn installed

const REC = 'ab'.repeat(32);
const inventory: PythonInventory = {
  python: { version: '3.11.2', implementation: 'CPython', executable: '/usr/bin/python3' },
  distributions: [
    { name: 'scikit-learn', version: '1.2.1', license: 'new BSD', licenseExpression: null, classifiers: ['BSD License'], summary: 'ML', homepage: 'http://scikit-learn.org', recordSha256: null, requires: ['foo-bar', 'not-installed'] },
    { name: 'Foo_Bar', version: '2.0', license: 'MIT', licenseExpression: null, classifiers: ['MIT License'], summary: null, homepage: null, recordSha256: REC, requires: ['dual'] },
    { name: 'dual', version: '1', license: null, licenseExpression: 'MIT OR Apache-2.0', classifiers: [], summary: null, homepage: 'not a url', recordSha256: null, requires: [] },
    { name: 'foo-bar', version: '2.0', license: 'MIT', licenseExpression: null, classifiers: [], summary: null, homepage: null, recordSha256: REC, requires: [] },
  ],
};
const EPOCH = { SOURCE_DATE_EPOCH: '1735689600' };

describe('SBOM', () => {
  const modelDigest = digestOf('manifest');
  const d1 = digestOf('dataset') as Digest;
  const files: PackedFile[] = [{ path: '/m/model.joblib', relPath: 'model.joblib', size: 3, digest: digestOf('abc'), mediaType: 'x' }];

  const build = (env: NodeJS.ProcessEnv = EPOCH) =>
    buildModelSbom(
      {
        model: { name: 'fraud', version: 'v1', repository: 'models/fraud', host: '127.0.0.1:5000', digest: modelDigest, licenses: ['Apache-2.0'], files, task: 'anomaly-detection', architecture: 'IsolationForest', architectureFamily: 'isolation-forest' },
        datasets: [{ repository: 'data/tx', digest: d1, reference: 'data/tx:v1' }],
        python: inventory,
        timestamp: new Date('2025-01-01T00:00:00Z'),
      },
      env,
    );

  it('describes the model as metadata.component with its digest and a modelCard, the dataset as data, and Python packages; validates as CycloneDX 1.6', async () => {
    const bom = build();
    expect(await validator.validate(JSON.stringify(bom))).toBeNull();
    expect(bom.specVersion).toBe('1.6');
    const model = (bom.metadata as any).component;
    expect(model).toMatchObject({ type: 'machine-learning-model', name: 'fraud', 'bom-ref': `model:${modelDigest}`, hashes: [{ alg: 'SHA-256', content: modelDigest.slice(7) }] });
    expect(model.purl).toBe(ociPurl('127.0.0.1:5000', 'models/fraud', modelDigest));
    expect(model.modelCard.modelParameters).toEqual({ task: 'anomaly-detection', architectureFamily: 'isolation-forest', modelArchitecture: 'IsolationForest', datasets: [{ ref: `dataset:${d1}` }] });
    expect(model.components[0]).toMatchObject({ type: 'file', name: 'model.joblib', hashes: [{ alg: 'SHA-256', content: digestOf('abc').slice(7) }] });
    const comps = bom.components as any[];
    expect(comps.some((c) => c.type === 'machine-learning-model')).toBe(false); // not twice
    const data = comps.find((c) => c.type === 'data');
    expect(data).toMatchObject({ name: 'data/tx', version: d1, data: [{ type: 'dataset', name: 'data/tx:v1', contents: { url: `oci://127.0.0.1:5000/data/tx@${d1}` } }] });
    const foo = comps.find((c) => c.name === 'Foo_Bar');
    expect(foo).toMatchObject({ 'bom-ref': 'pkg:pypi/foo-bar@2.0', purl: 'pkg:pypi/foo-bar@2.0', hashes: [{ alg: 'SHA-256', content: REC }] });
    expect(foo.licenses).toEqual([{ license: { id: 'MIT' } }]);
    expect(comps.filter((c) => c.purl === 'pkg:pypi/foo-bar@2.0')).toHaveLength(1); // Foo_Bar and foo-bar are one distribution
    expect(comps.find((c) => c.name === 'dual').licenses).toEqual([{ expression: 'MIT OR Apache-2.0' }]);
    expect(comps.find((c) => c.name === 'scikit-learn').licenses).toEqual(expect.arrayContaining([{ license: { name: 'new BSD' } }, { license: { name: 'BSD License' } }]));
  });

  it('dependencies: only real edges (model -> dataset, Requires-Dist between installed distributions), none empty', () => {
    const bom = build();
    expect(bom.dependencies).toEqual([
      { ref: `model:${modelDigest}`, dependsOn: [`dataset:${d1}`] },
      { ref: 'pkg:pypi/foo-bar@2.0', dependsOn: ['pkg:pypi/dual@1'] },
      { ref: 'pkg:pypi/scikit-learn@1.2.1', dependsOn: ['pkg:pypi/foo-bar@2.0'] },
    ]);
  });

  it('is byte-identical for the same inputs with SOURCE_DATE_EPOCH (serial number derived from the content); random serial without', () => {
    const a = JSON.stringify(build());
    expect(JSON.stringify(build())).toBe(a);
    expect(JSON.parse(a).serialNumber).toMatch(/^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(build({}).serialNumber).not.toBe(build({}).serialNumber);
    const py = (env: NodeJS.ProcessEnv) => buildPythonSbom(inventory, undefined, env);
    expect(JSON.stringify(py(EPOCH))).toBe(JSON.stringify(py(EPOCH)));
    expect((py(EPOCH).metadata as any).timestamp).toBe('2025-01-01T00:00:00.000Z');
  });

  it('the validator rejects a broken SBOM (so the check above can fail)', async () => {
    const bom = build();
    (bom.components as any[])[0].type = 'not-a-type';
    expect(await validator.validate(JSON.stringify(bom))).not.toBeNull();
  });

  it('inventories a real Python environment by asking its interpreter: one component per distribution, RECORD hashes, Requires-Dist edges', async () => {
    const inv = await inspectPython(PY);
    expect(inv.python.executable).toBe('/usr/bin/python3');
    const sk = inv.distributions.find((d) => d.name === 'scikit-learn');
    expect(sk?.version).toMatch(/^\d+\.\d+/);
    const bom = buildPythonSbom(inv, undefined, EPOCH);
    expect(await validator.validate(JSON.stringify(bom))).toBeNull();
    const comps = bom.components as any[];
    expect(comps.some((c) => c.purl === pypiPurl('scikit-learn', sk!.version))).toBe(true);
    const refs = new Set(comps.map((c) => c['bom-ref']));
    expect(refs.size).toBe(comps.length); // no duplicates
    for (const d of bom.dependencies as { ref: string; dependsOn: string[] }[]) {
      expect(d.dependsOn.length).toBeGreaterThan(0);
      for (const r of [d.ref, ...d.dependsOn]) expect(refs.has(r), r).toBe(true);
    }
  }, 60_000);
  it('reports a missing interpreter clearly', async () => {
    await expect(inspectPython('/nonexistent/python')).rejects.toThrow(/no such interpreter/);
  });

  it('maps license strings', () => {
    expect(makeLicense('Apache-2.0').constructor.name).toBe('SpdxLicense');
    expect(makeLicense('MIT OR Apache-2.0').constructor.name).toBe('LicenseExpression');
    expect(makeLicense('new BSD').constructor.name).toBe('NamedLicense');
  });
});
