import { describe, expect, it } from 'vitest';
import type { PythonInventory } from './python-env.js';
import { buildPythonSpdx } from './sbom-spdx.js';

const dist = (name: string, extra: Partial<PythonInventory['distributions'][number]> = {}) => ({
  name,
  version: '1.0',
  licenseExpression: null,
  license: null,
  classifiers: [],
  summary: null,
  homepage: null,
  recordSha256: null,
  requires: [],
  ...extra,
});

describe('SPDX 2.3 of a Python environment', () => {
  const inv: PythonInventory = {
    python: { version: '3.11.7', implementation: 'CPython', executable: '/usr/bin/python3' },
    distributions: [
      dist('ruamel.yaml', { license: 'MIT' }),
      dist('Foo_Bar', { licenseExpression: 'Apache-2.0 OR MIT' }),
      dist('classic', { classifiers: ['BSD License'] }),
      dist('odd', { license: 'Some custom terms' }),
    ],
  };
  const doc = buildPythonSpdx(inv, { timestamp: new Date('2026-01-01T00:00:00.123Z'), namespace: 'https://example.test/ns' }) as any;

  it('describes the interpreter, which contains every distribution, each with its purl', () => {
    expect(doc).toMatchObject({ spdxVersion: 'SPDX-2.3', SPDXID: 'SPDXRef-DOCUMENT', creationInfo: { created: '2026-01-01T00:00:00Z' } });
    expect(doc.relationships[0]).toEqual({ spdxElementId: 'SPDXRef-DOCUMENT', relationshipType: 'DESCRIBES', relatedSpdxElement: 'SPDXRef-Package-python' });
    expect(doc.relationships).toHaveLength(5);
    const purls = doc.packages.flatMap((p: any) => (p.externalRefs ?? []).map((r: any) => r.referenceLocator));
    expect(purls).toEqual(['pkg:pypi/ruamel.yaml@1.0', 'pkg:pypi/foo-bar@1.0', 'pkg:pypi/classic@1.0', 'pkg:pypi/odd@1.0']);
  });

  it('keeps SPDX identifiers and expressions; other license names become LicenseRef- with their text', () => {
    const lic = Object.fromEntries(doc.packages.slice(1).map((p: any) => [p.name, p.licenseDeclared]));
    expect(lic).toEqual({ 'ruamel.yaml': 'MIT', Foo_Bar: 'Apache-2.0 OR MIT', classic: 'LicenseRef-BSD-License', odd: 'LicenseRef-Some-custom-terms' });
    expect(doc.hasExtractedLicensingInfos).toEqual([
      { licenseId: 'LicenseRef-BSD-License', extractedText: 'BSD License', name: 'BSD License' },
      { licenseId: 'LicenseRef-Some-custom-terms', extractedText: 'Some custom terms', name: 'Some custom terms' },
    ]);
  });
});
