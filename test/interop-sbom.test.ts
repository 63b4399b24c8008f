import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RegistryClient } from '../src/artifacts/client.js';
import { inspectPython, type PythonInventory } from '../src/artifacts/python-env.js';
import { buildPythonSbom } from '../src/artifacts/sbom.js';
import { buildPythonSpdx } from '../src/artifacts/sbom-spdx.js';
import { signingKeyFromPem } from '../src/artifacts/sign.js';
import { attachCommand } from '../src/cli/producer/index.js';
import { opsCommands as cmd } from '../src/cli/ops/index.js';
import { ACCEPT, pushModel as pushTestModel, pushSignature } from './gate-fixtures.js';
import { capture } from './ops-fixtures.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { goTool, venvTool } from './helpers/tools.js';

/**
 * customs' Python SBOMs against the reference tools on the same virtual environment (the pinned one):
 * - CycloneDX: every distribution `cyclonedx-py environment` (cyclonedx-bom 7.5.0) lists is in
 *   `customs sbom python` with the same purl, and customs' SBOM passes the official CycloneDX 1.6
 *   JSON schema (cyclonedx-python-lib's strict validator);
 * - SPDX: `customs sbom python --format spdx` is SPDX 2.3 JSON that `pyspdxtools` (spdx-tools 0.8.5) validates;
 * - the gate serves (unsigned, as policy.evidence.allowUnsigned allows) a CycloneDX SBOM from cyclonedx-py
 *   and an SPDX SBOM written by pyspdxtools, attached with `customs attach` or `oras attach`.
 */
const run = promisify(execFile);
const PY = venvTool('python');
const quiet = { out() {}, err() {} };

let work: string;
let inv: PythonInventory;
let cdxpy: { components: { name: string; version: string; purl?: string }[] };
let s: TestServer;
const saved = process.env.CUSTOMS_TOKEN;

/** Distributions cyclonedx-py lists whose purl customs' SBOM lacks. */
function missingFrom(reference: typeof cdxpy, ours: Record<string, unknown>): string[] {
  const purls = new Set((ours.components as { purl?: string }[]).map((c) => c.purl));
  return reference.components.filter((c) => c.purl && !purls.has(c.purl)).map((c) => c.purl!);
}

async function cdxSchemaErrors(file: string): Promise<string> {
  const script = [
    'import sys',
    'from cyclonedx.schema import SchemaVersion',
    'from cyclonedx.validation.json import JsonStrictValidator',
    'e = JsonStrictValidator(SchemaVersion.V1_6).validate_str(open(sys.argv[1]).read())',
    'print("valid" if e is None else f"invalid: {e}"[:500])',
  ].join('\n');
  return (await run(PY, ['-c', script, file], { maxBuffer: 16 * 1024 * 1024 })).stdout.trim();
}

const pyspdxtools = (...args: string[]) =>
  run(venvTool('pyspdxtools'), args).then(
    (r) => ({ ok: true, out: r.stdout + r.stderr }),
    (e: { stdout: string; stderr: string }) => ({ ok: false, out: e.stdout + e.stderr }),
  );

describe('SBOM interop: cyclonedx-py, CycloneDX schema, pyspdxtools, the gate', () => {
  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'customs-sbom-'));
    inv = await inspectPython(PY);
    await run(venvTool('cyclonedx-py'), ['environment', '--sv', '1.6', '--of', 'JSON', '-o', join(work, 'cyclonedx-py.cdx.json'), PY]);
    cdxpy = JSON.parse(await readFile(join(work, 'cyclonedx-py.cdx.json'), 'utf8'));
  }, 180_000);
  afterAll(async () => {
    process.env.CUSTOMS_TOKEN = saved;
    await s?.close();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('every distribution cyclonedx-py lists is in customs sbom python with the same purl; an SBOM missing one is caught', () => {
    expect(cdxpy.components.length).toBeGreaterThan(100);
    const ours = buildPythonSbom(inv);
    expect(missingFrom(cdxpy, ours)).toEqual([]);
    // Names with dots keep them in the purl (packageurl's pypi rule), e.g. ruamel.yaml.
    expect((ours.components as { purl?: string }[]).some((c) => c.purl?.startsWith('pkg:pypi/ruamel.yaml@'))).toBe(true);
    const dropped = { ...ours, components: (ours.components as { purl?: string }[]).filter((c) => !c.purl?.startsWith('pkg:pypi/scikit-learn@')) };
    expect(missingFrom(cdxpy, dropped)).toEqual([expect.stringMatching(/^pkg:pypi\/scikit-learn@/)]);
  });

  it("customs' CycloneDX SBOM validates with the official 1.6 schema; a broken one does not", async () => {
    // Debian's interpreter (50 distributions, ~1 MB with RECORD files): jsonschema in Python needs ~30 s
    // for that; the venv's 7.7 MB SBOM would take minutes. The SBOM builder is the same.
    const file = join(work, 'customs.cdx.json');
    const bom = buildPythonSbom(await inspectPython('/usr/bin/python3'));
    await writeFile(file, JSON.stringify(bom));
    expect(await cdxSchemaErrors(file)).toBe('valid');
    const broken = join(work, 'broken.cdx.json');
    const small = buildPythonSbom({ ...inv, distributions: inv.distributions.slice(0, 3) });
    await writeFile(broken, JSON.stringify({ ...small, components: [{ type: 'not-a-type', name: 'x' }, ...(small.components as unknown[])] }));
    expect(await cdxSchemaErrors(broken)).toMatch(/^invalid/);
  }, 300_000);

  it('customs sbom python --format spdx is SPDX 2.3 that pyspdxtools validates, with the same purls; pyspdxtools rejects a broken one', async () => {
    const doc = buildPythonSpdx(inv);
    const file = join(work, 'customs.spdx.json');
    await writeFile(file, JSON.stringify(doc, null, 2));
    const ok = await pyspdxtools('-i', file);
    expect(ok.out).toBe('');
    expect(ok.ok).toBe(true);
    const purls = (doc.packages as { externalRefs?: { referenceLocator: string }[] }[]).flatMap((p) => (p.externalRefs ?? []).map((r) => r.referenceLocator));
    expect(cdxpy.components.filter((c) => c.purl && !purls.includes(c.purl))).toEqual([]);
    const broken = { ...doc, relationships: [...(doc.relationships as unknown[]), { spdxElementId: 'SPDXRef-DOCUMENT', relationshipType: 'DESCRIBES', relatedSpdxElement: 'SPDXRef-missing' }] };
    await writeFile(join(work, 'broken.spdx.json'), JSON.stringify(broken));
    const bad = await pyspdxtools('-i', join(work, 'broken.spdx.json'));
    expect(bad.ok).toBe(false);
    expect(bad.out).toMatch(/SPDXRef-missing/);
  });

  it('the gate serves a CycloneDX SBOM from cyclonedx-py and an SPDX SBOM from pyspdxtools, attached with customs attach or oras attach', async () => {
    // pyspdxtools writes the SPDX JSON (converted from the tag-value it writes of customs' document).
    await pyspdxtools('-i', join(work, 'customs.spdx.json'), '-o', join(work, 'env.spdx'));
    const conv = await pyspdxtools('-i', join(work, 'env.spdx'), '-o', join(work, 'pyspdxtools.spdx.json'));
    expect(conv.ok, conv.out).toBe(true);

    s = await startTestServer({ gate: 'enforce', config: { auth: { anonymous: { pull: 'never' } } } });
    process.env.CUSTOMS_TOKEN = s.token ?? '';
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    await s.trustKey(publicKey, 'ml');
    const key = signingKeyFromPem(privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
    const client = new RegistryClient({ url: s.url, token: s.token });
    const model = await pushTestModel(client, 'models/sbom', 'v1', [{ path: 'model.safetensors', bytes: Buffer.alloc(64, 1) }]);
    await pushSignature(client, 'models/sbom', model.descriptor, key);
    const get = (digest: string) => fetch(`${s.url}/v2/models/sbom/manifests/${digest}`, { headers: { accept: ACCEPT, ...s.auth() } });
    const oras = (file: string, mediaType?: string) =>
      run(goTool('oras'), ['attach', '--plain-http', '-u', 'ci', '-p', s.token ?? '', '--artifact-type', mediaType ?? 'application/vnd.example.report', `${s.host}/models/sbom:v1`, mediaType ? `${file}:${mediaType}` : file, '--format', 'json'], {
        cwd: work,
      }).then((r) => (JSON.parse(r.stdout) as { digest: string }).digest);

    const viaCustoms = [
      await attachCommand('models/sbom:v1', { url: s.url, sbom: join(work, 'cyclonedx-py.cdx.json') }, quiet),
      await attachCommand('models/sbom:v1', { url: s.url, sbom: join(work, 'pyspdxtools.spdx.json') }, quiet),
    ];
    expect(viaCustoms.map((r) => r.artifactType)).toEqual(['application/vnd.cyclonedx+json', 'application/spdx+json']);
    const viaOras = [await oras('cyclonedx-py.cdx.json', 'application/vnd.cyclonedx+json'), await oras('pyspdxtools.spdx.json', 'application/spdx+json')];
    for (const d of [...viaCustoms.map((r) => r.digest), ...viaOras]) expect((await get(d)).status, d).toBe(200);
    const lin = await cmd.lineage({ url: s.url, token: s.token }, capture().io, 'models/sbom:v1', { json: true });
    // Unsigned, so listed apart from verified SBOMs; each document once, with both referrers that carry it.
    expect(lin.unverifiedSbom.map((x) => [x.format, x.referrers.length]).sort()).toEqual([['CycloneDX 1.6', 2], ['SPDX-2.3', 2]]);

    // Negative: oras attach giving neither layer nor artifact an SBOM media type (the layer is then a tar),
    // and an SPDX document missing its creationInfo.
    const untyped = await oras('cyclonedx-py.cdx.json');
    const r1 = await get(untyped);
    expect(r1.status).toBe(403);
    expect(await r1.text()).toMatch(/not evidence this gate can verify/);
    const spdx = JSON.parse(await readFile(join(work, 'pyspdxtools.spdx.json'), 'utf8'));
    delete spdx.creationInfo;
    await writeFile(join(work, 'no-creation.spdx.json'), JSON.stringify(spdx));
    const r2 = await get(await oras('no-creation.spdx.json', 'application/spdx+json'));
    expect(r2.status).toBe(403);
    expect(await r2.text()).toMatch(/SPDX document is invalid: creationInfo/);
  }, 180_000);
});
