import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Spec, Validation } from '@cyclonedx/cyclonedx-library';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RegistryClient } from '../src/artifacts/client.js';
import { pushModel } from '../src/artifacts/push.js';
import { pypiPurl } from '../src/artifacts/python-env.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { venvTool } from './helpers/tools.js';

/**
 * Issue 15, "Evidence quality": the SBOM of the same environment and inputs is byte-identical
 * (SOURCE_DATE_EPOCH), validates as CycloneDX 1.6 with the library's JSON validator, has one
 * component per installed distribution (checked against `pip list` of the pinned venv) and
 * dependency edges only where Requires-Dist names an installed distribution.
 */
const run = promisify(execFile);
const ROOT = new URL('..', import.meta.url).pathname;
const EPOCH = '1767225600'; // 2026-01-01T00:00:00Z
const validator = new Validation.JsonStrictValidator(Spec.Version.v1dot6);

interface Bom {
  serialNumber: string;
  metadata: { timestamp: string; component: { 'bom-ref': string; hashes?: { content: string }[] } };
  components: { 'bom-ref': string; type: string; name: string; purl?: string; hashes?: { alg: string; content: string }[] }[];
  dependencies?: { ref: string; dependsOn: string[] }[];
}

describe('reproducible SBOMs', () => {
  let work: string;
  const python = venvTool('python');

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'customs-sbom-'));
  });
  afterAll(async () => work && rm(work, { recursive: true, force: true }));

  const sbomPython = async (out: string) => {
    await run(process.execPath, ['bin/customs.js', 'sbom', 'python', '--python', python, '-o', out], { cwd: ROOT, env: { ...process.env, SOURCE_DATE_EPOCH: EPOCH } });
    return readFile(out);
  };

  it('customs sbom python twice with SOURCE_DATE_EPOCH: byte-identical, valid CycloneDX 1.6, one component per pip list entry', async () => {
    const a = await sbomPython(join(work, 'a.cdx.json'));
    const b = await sbomPython(join(work, 'b.cdx.json'));
    expect(b.equals(a), 'the two SBOMs differ').toBe(true);
    expect(await validator.validate(a.toString('utf8'))).toBeNull();
    const bom = JSON.parse(a.toString('utf8')) as Bom;
    expect(bom.metadata.timestamp).toBe('2026-01-01T00:00:00.000Z');
    expect(bom.serialNumber).toMatch(/^urn:uuid:[0-9a-f-]{36}$/);

    const { stdout } = await run(python, ['-m', 'pip', 'list', '--format', 'json', '--disable-pip-version-check'], { env: { ...process.env, PIP_NO_INPUT: '1' } });
    // The purl spec's pypi name: lower-case, `_` as `-`, dots kept (what cyclonedx-py writes too).
    const pip = (JSON.parse(stdout) as { name: string; version: string }[]).map((p) => decodeURIComponent(pypiPurl(p.name, p.version).replace(/^pkg:pypi\//, ''))).sort();
    const libs = bom.components.filter((c) => c.type === 'library');
    const listed = libs.map((c) => decodeURIComponent(c.purl!.replace(/^pkg:pypi\//, ''))).sort();
    expect(listed).toEqual(pip);
    expect(new Set(bom.components.map((c) => c['bom-ref'])).size).toBe(bom.components.length);
    // Every distribution with a RECORD has its sha256 as the component's hash.
    expect(libs.filter((c) => c.hashes?.[0]?.alg === 'SHA-256').length).toBeGreaterThan(libs.length / 2);

    const refs = new Set(bom.components.map((c) => c['bom-ref']));
    const edges = (bom.dependencies ?? []).flatMap((d) => d.dependsOn.map((to) => [d.ref, to] as const));
    for (const d of bom.dependencies ?? []) expect(d.dependsOn.length).toBeGreaterThan(0);
    for (const [from, to] of edges) expect(refs.has(from) && refs.has(to), `${from} -> ${to}`).toBe(true);
    const sk = libs.find((c) => c.name === 'scikit-learn')!;
    const skDeps = bom.dependencies!.find((d) => d.ref === sk['bom-ref'])!.dependsOn.map((r) => r.replace(/^pkg:pypi\/([^@]+)@.*$/, '$1'));
    expect(skDeps).toEqual(expect.arrayContaining(['numpy', 'scipy', 'joblib', 'threadpoolctl']));
    // For the report: components and edges against pip list.
    console.log(`sbom python (${python}): ${libs.length} distributions (pip list: ${pip.length}), ${bom.components.length} components with the interpreter, ${edges.length} dependency edges in ${bom.dependencies?.length ?? 0} entries`);
  }, 120_000);

  describe('push model with SOURCE_DATE_EPOCH', () => {
    let s: TestServer;
    const prev = process.env.SOURCE_DATE_EPOCH;
    beforeAll(async () => {
      s = await startTestServer();
      process.env.SOURCE_DATE_EPOCH = EPOCH;
    });
    afterAll(async () => {
      if (prev === undefined) delete process.env.SOURCE_DATE_EPOCH;
      else process.env.SOURCE_DATE_EPOCH = prev;
      await s?.close();
    });

    it('pushing the same model twice gives the same SBOM bytes (and referrer), with the model as metadata.component', async () => {
      const dir = join(work, 'model');
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, 'w.bin'), randomBytes(1024));
      const client = new RegistryClient({ url: s.url, token: s.token });
      const push = () => pushModel(client, { dir, target: { repository: 'models/repro', tag: 'v1' }, meta: {}, datasets: [], baseModels: [], allowDirty: false, builderId: 'b', params: {}, sbomPython: python });
      const a = await push();
      const b = await push();
      expect(b.digest).toBe(a.digest);
      expect(JSON.stringify(b.sbom)).toBe(JSON.stringify(a.sbom));
      expect(b.referrers[0]!.digest).toBe(a.referrers[0]!.digest); // the raw SBOM referrer: same bytes, same digest
      const bom = a.sbom as unknown as Bom;
      expect(bom.metadata.component['bom-ref']).toBe(`model:${a.digest}`);
      expect(bom.metadata.component.hashes![0]!.content).toBe(a.digest.slice(7));
      expect(await validator.validate(JSON.stringify(a.sbom))).toBeNull();
    }, 120_000);
  });
});
