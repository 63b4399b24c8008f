import { Spec, Validation } from '@cyclonedx/cyclonedx-library';
import { describe, expect, it } from 'vitest';
import { digestOf, type Digest } from '../oci/index.js';
import type { PackedFile } from './modelpack.js';
import { inspectPython, pypiPurl, type PythonInventory } from './python-env.js';
import { buildModelSbom, buildPythonSbom, makeLicense, ociPurl } from './sbom.js';

const validator = new Validation.JsonStrictValidator(Spec.Version.v1dot6);
const PY = '/usr/bin/python3'; // Debian's interpreter, with python3-sklearn installed

const inventory: PythonInventory = {
  python: { version: '3.11.2', implementation: 'CPython', executable: '/usr/bin/python3' },
  distributions: [
    { name: 'scikit-learn', version: '1.2.1', license: 'new BSD', licenseExpression: null, classifiers: ['BSD License'], summary: 'ML', homepage: 'http://scikit-learn.org', hasRecord: false, files: [] },
    { name: 'Foo_Bar', version: '2.0', license: 'MIT', licenseExpression: null, classifiers: ['MIT License'], summary: null, homepage: null, hasRecord: true, files: [['foo_bar/__init__.py', 'ab'.repeat(32)]] },
    { name: 'dual', version: '1', license: null, licenseExpression: 'MIT OR Apache-2.0', classifiers: [], summary: null, homepage: 'not a url', hasRecord: false, files: [] },
  ],
};

describe('SBOM', () => {
  const modelDigest = digestOf('manifest');
  const d1 = digestOf('dataset') as Digest;
  const files: PackedFile[] = [{ path: '/m/model.joblib', relPath: 'model.joblib', size: 3, digest: digestOf('abc'), mediaType: 'x' }];

  const build = () =>
    buildModelSbom({
      model: { name: 'fraud', version: 'v1', repository: 'models/fraud', host: '127.0.0.1:5000', digest: modelDigest, licenses: ['Apache-2.0'], files, task: 'anomaly-detection', architecture: 'IsolationForest', architectureFamily: 'isolation-forest' },
      datasets: [{ repository: 'data/tx', digest: d1, reference: 'data/tx:v1' }],
      python: inventory,
      timestamp: new Date('2025-01-01T00:00:00Z'),
    });

  it('describes the model with a modelCard, the dataset as data, and Python packages; validates as CycloneDX 1.6', async () => {
    const bom = build();
    expect(await validator.validate(JSON.stringify(bom))).toBeNull();
    expect(bom.specVersion).toBe('1.6');
    const comps = bom.components as any[];
    const model = comps.find((c) => c.type === 'machine-learning-model');
    expect(model.name).toBe('fraud');
    expect(model.purl).toBe(ociPurl('127.0.0.1:5000', 'models/fraud', modelDigest));
    expect(model.modelCard.modelParameters).toEqual({ task: 'anomaly-detection', architectureFamily: 'isolation-forest', modelArchitecture: 'IsolationForest', datasets: [{ ref: `dataset:${d1}` }] });
    expect(model.components[0]).toMatchObject({ type: 'file', name: 'model.joblib', hashes: [{ alg: 'SHA-256', content: digestOf('abc').slice(7) }] });
    const data = comps.find((c) => c.type === 'data');
    expect(data).toMatchObject({ name: 'data/tx', version: d1, data: [{ type: 'dataset', name: 'data/tx:v1', contents: { url: `oci://127.0.0.1:5000/data/tx@${d1}` } }] });
    const foo = comps.find((c) => c.name === 'Foo_Bar');
    expect(foo.purl).toBe('pkg:pypi/foo-bar@2.0');
    expect(foo.licenses).toEqual([{ license: { id: 'MIT' } }]);
    expect(foo.components[0].hashes[0].content).toBe('ab'.repeat(32));
    expect(comps.find((c) => c.name === 'dual').licenses).toEqual([{ expression: 'MIT OR Apache-2.0' }]);
    expect(comps.find((c) => c.name === 'scikit-learn').licenses).toEqual(expect.arrayContaining([{ license: { name: 'new BSD' } }, { license: { name: 'BSD License' } }]));
    const deps = (bom.dependencies as any[]).find((d) => d.ref === model['bom-ref']);
    expect(deps.dependsOn).toContain(`dataset:${d1}`);
  });

  it('the validator rejects a broken SBOM (so the check above can fail)', async () => {
    const bom = build();
    (bom.components as any[])[0].type = 'not-a-type';
    expect(await validator.validate(JSON.stringify(bom))).not.toBeNull();
  });

  it('inventories a real Python environment by asking its interpreter', async () => {
    const inv = await inspectPython(PY);
    expect(inv.python.executable).toBe('/usr/bin/python3');
    const sk = inv.distributions.find((d) => d.name === 'scikit-learn');
    expect(sk?.version).toMatch(/^\d+\.\d+/);
    const withRecord = inv.distributions.find((d) => d.hasRecord && d.files.length > 0);
    if (withRecord) expect(withRecord.files[0]![1]).toMatch(/^[0-9a-f]{64}$/);
    const bom = buildPythonSbom(inv);
    expect(await validator.validate(JSON.stringify(bom))).toBeNull();
    expect((bom.components as any[]).some((c) => c.purl === pypiPurl('scikit-learn', sk!.version))).toBe(true);
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
