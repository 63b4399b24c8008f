import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { VECTORS } from '../../test/helpers/verify.js';
import { sbomViolations, splitExpression, summarizeSbom } from './sbom.js';

const json = (p: string): unknown => JSON.parse(readFileSync(join(VECTORS, p), 'utf8'));

describe('SBOM validation (vectors/cyclonedx, vectors/spdx)', () => {
  for (const f of ['valid-machine-learning-1.6.json', 'valid-machine-learning-considerations-env-1.6.json', 'valid-component-data-1.6.json', 'valid-component-types-1.6.json', 'valid-bom-1.6.json', 'cosign-bom-go-mod.cyclonedx.json']) {
    it(`${f} is valid`, async () => {
      const s = await summarizeSbom(json(`cyclonedx/${f}`), 'cyclonedx');
      expect(s.format).toBe('cyclonedx');
    });
  }
  it('invalid-component-type-1.6.json is invalid, and says where', async () => {
    await expect(summarizeSbom(json('cyclonedx/invalid-component-type-1.6.json'), 'cyclonedx')).rejects.toThrow(/\/components\/0\/type/);
  });
  it('SPDX: the syft 2.3 document and the cosign 2.2 one parse; garbage does not', async () => {
    const s = await summarizeSbom(json('spdx/syftbom.spdx.json'), 'spdx');
    expect(s.version).toBe('SPDX-2.3');
    expect(s.purls.length).toBeGreaterThan(0);
    expect((await summarizeSbom(json('spdx/cosign-bom-go-mod.spdx.json'), 'spdx')).version).toBe('SPDX-2.2');
    await expect(summarizeSbom({ spdxVersion: 'SPDX-2.3' }, 'spdx')).rejects.toThrow(/SPDX document is invalid/);
    await expect(summarizeSbom(json('spdx/syftbom.spdx.json'), 'cyclonedx')).rejects.toThrow(/bomFormat/);
  });
  it('deny lists match licenses (case-insensitive globs) and purls', async () => {
    const s = await summarizeSbom(json('spdx/syftbom.spdx.json'), 'spdx');
    const purl = s.purls[0]!;
    const type = purl.slice(0, purl.indexOf('/'));
    expect(sbomViolations(s, [], [`${type}/*`]).length).toBeGreaterThan(0);
    expect(sbomViolations(s, [], ['pkg:nothing/*'])).toEqual([]);
    const lic = s.licenses[0];
    if (lic) expect(sbomViolations(s, [lic.toLowerCase()], [])[0]).toMatch(/is denied/);
    expect(splitExpression('(MIT OR Apache-2.0) AND GPL-2.0-only WITH Classpath-exception-2.0')).toEqual(['MIT', 'Apache-2.0', 'GPL-2.0-only', 'Classpath-exception-2.0']);
  });
});
