import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Descriptor } from '../src/oci/index.js';
import { verifyAuditChain, type AuditEntry } from '../src/storage/index.js';
import { expectAccessible, launchBrowser, pushSigned, screenshot, startConsoleServer, type ConsoleServer } from './ui-fixtures.js';

/**
 * The operator console in a real headless Chromium: sign in with a token, find a model
 * pushed by the producer CLI (signed, with SBOM, dataset and code commit) and see its
 * signature, SBOM and provenance; then the poisoning drill of docs/incident-runbook.md
 * through the console alone. axe-core runs on every page; each page is photographed into
 * test-results/ui/ for review.
 */
const run = promisify(execFile);
const ROOT = new URL('..', import.meta.url).pathname;
const BIN = join(ROOT, 'bin', 'customs.js');
const EXAMPLE = join(ROOT, 'examples', 'fraud-detection');
const PY = '/usr/bin/python3'; // Debian's, with python3-sklearn
const ACCEPT = 'application/vnd.oci.image.manifest.v1+json';
const REASON = 'INC-1234: training data poisoned';

describe('operator console in Chromium', () => {
  let s: ConsoleServer;
  let browser: Awaited<ReturnType<typeof launchBrowser>>;
  let page: Page;
  let repo: string;
  const pushed: Record<string, string> = {};
  const dialogs: string[] = [];
  const cspViolations: string[] = [];

  const git = (...args: string[]) => run('git', ['-C', repo, '-c', 'user.name=ml', '-c', 'user.email=ml@example.com', ...args]).then((r) => r.stdout.trim());
  /** The producer CLI, as an ML engineer runs it (CUSTOMS_TOKEN in the environment). */
  const customs = async (...args: string[]): Promise<{ digest: string }> => {
    const r = await run(process.execPath, [BIN, ...args, '--url', s.url, '--json'], { env: { ...process.env, CUSTOMS_TOKEN: s.tokens.ci }, maxBuffer: 64 * 1024 * 1024 });
    return JSON.parse(r.stdout) as { digest: string };
  };
  const train = (out: string) => run(PY, [join(repo, 'train.py'), '--data', join(repo, 'data', 'transactions.csv'), '--out', out, '--n-estimators', '20']);
  const pushModel = (dir: string, to: string, dataset: string) =>
    customs('push', 'model', dir, '--to', to, '--dataset', dataset, '--code', repo, '--sign', s.keyPath, '--sbom-python', PY, '--builder-id', 'https://ci.example/trainer/v1', '--param', 'n_estimators=20', '--param', 'contamination=0.04', '--format', 'joblib', '--license', 'Apache-2.0');
  const v2 = (path: string, token = s.tokens.modelsPull) => fetch(`${s.url}/v2/${path}`, { headers: { authorization: `Bearer ${token}`, accept: ACCEPT } });

  /** The notice of the action that led to this page (or, failing, what the page says instead). */
  const expectStatus = async (text: string | RegExp) => {
    const seen = await page.locator('[role="status"]').first().waitFor({ timeout: 20_000 }).then(() => true, () => false);
    const got = seen ? await page.locator('[role="status"]').first().textContent() : `no status on ${page.url()}: ${await page.textContent('main')}`;
    expect(got).toMatch(text);
  };

  /** Every page: no serious accessibility violation, and a screenshot for review. */
  const check = async (name: string) => {
    await expectAccessible(page, name);
    // Nothing wider than the window: long digests, URIs and JSON wrap instead.
    expect(await page.evaluate('document.documentElement.scrollWidth - window.innerWidth'), `${name}: horizontal overflow`).toBeLessThanOrEqual(0);
    await screenshot(page, name);
  };

  beforeAll(async () => {
    if (!existsSync(join(ROOT, 'dist', 'cli', 'main.js'))) throw new Error('run `npm run build` first: this test runs bin/customs.js');
    s = await startConsoleServer({ upstreams: [{ name: 'mirror.example', url: 'http://127.0.0.1:9', retries: { attempts: 1 } }] });
    repo = join(s.work, 'fraud-repo');
    await mkdir(join(repo, 'data'), { recursive: true });
    for (const f of ['train.py', 'make_data.py', 'data/transactions.csv']) await copyFile(join(EXAMPLE, f), join(repo, f));
    await git('init', '-q', '-b', 'main');
    await git('add', '.');
    await git('commit', '-q', '-m', 'fraud model');
    pushed.commit1 = await git('rev-parse', 'HEAD');
    const csv = join(repo, 'data', 'transactions.csv');
    pushed.d1 = (await customs('push', 'dataset', csv, '--to', 'datasets/transactions:v1', '--sign', s.keyPath)).digest;
    await train(join(s.work, 'm1'));
    pushed.m1 = (await pushModel(join(s.work, 'm1'), 'models/fraud:prod', 'datasets/transactions:v1')).digest;
    // The poisoning: fraud rows relabelled as legitimate, committed, pushed, trained on.
    const lines = (await readFile(csv, 'utf8')).split('\n');
    await writeFile(csv, lines.map((l, i) => (i > 0 && l.endsWith(',1') ? `${l.slice(0, -2)},0` : l)).join('\n'));
    await git('commit', '-q', '-am', 'relabel transactions');
    pushed.d2 = (await customs('push', 'dataset', csv, '--to', 'datasets/transactions:v2', '--sign', s.keyPath)).digest;
    await train(join(s.work, 'm2'));
    pushed.m2 = (await pushModel(join(s.work, 'm2'), 'models/fraud:prod', 'datasets/transactions:v2')).digest;
    pushed.c1 = (await pushModel(join(s.work, 'm2'), 'models/churn:prod', 'datasets/transactions:v2')).digest;
    // An upstream that is down: the overview reports it.
    expect((await v2('mirror.example/library/alpine/manifests/3', s.tokens.ci)).status).toBe(502);
    browser = await launchBrowser();
    page = await browser.context.newPage();
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    page.on('console', (m) => {
      if (/Content Security Policy/i.test(m.text())) cspViolations.push(m.text());
    });
  }, 600_000);

  afterAll(async () => {
    await browser?.close();
    await s?.close();
  });

  it('sends an anonymous visitor to sign in, and signs in with a token', async () => {
    await page.goto(`${s.url}/ui/`);
    expect(new URL(page.url()).pathname).toBe('/ui/login');
    await check('01-sign-in');
    await page.fill('#token', s.tokens.oncall);
    await page.click('button:has-text("Sign in")');
    await page.waitForURL(`${s.url}/ui/`);
    await expect.poll(() => page.textContent('header')).toContain('Signed in as token:oncall');
    const overview = (await page.textContent('main'))!;
    expect(overview).toMatch(/3\s*repositories/);
    expect(overview).toMatch(/mirror\.example.*failing/s);
    expect(overview).toMatch(/ECONNREFUSED/);
    expect(overview).toMatch(/Policy as loaded/);
    expect(overview).toContain('trust/keys/ci.pub');
    await check('02-overview');
  });

  it('finds a model and shows its signature, SBOM and provenance', async () => {
    await page.click('nav >> text=Repositories');
    await page.fill('#q', 'fraud');
    await page.click('button:has-text("Search")');
    await expect.poll(() => page.locator('main table a').allTextContents()).toEqual(['models/fraud']);
    await check('03-repositories');
    await page.click('main table a:has-text("models/fraud")');
    const row = page.locator('tr', { has: page.locator('a:has-text("prod")') });
    await expect.poll(() => row.locator('.badge').allTextContents()).toEqual(['allowed']);
    await check('04-repository');
    await page.click('main table a:text-is("prod")');
    await expect.poll(() => page.textContent('h1')).toContain(pushed.m2!);
    const signature = page.locator('.node[data-kind="signature"]');
    expect(await signature.count()).toBeGreaterThan(0);
    expect(await signature.first().textContent()).toMatch(/trusted key .*ci\.pub/);
    const sbom = page.locator('.node[data-kind="sbom"]').first();
    expect(await sbom.textContent()).toMatch(/CycloneDX/);
    expect(await sbom.locator('td').allTextContents()).toContain('scikit-learn');
    const prov = page.locator('.node[data-kind="provenance"]').first();
    const provText = (await prov.textContent())!;
    expect(provText).toContain('https://ci.example/trainer/v1');
    expect(provText).toContain(`gitCommit:${await git('rev-parse', 'HEAD')}`);
    expect(await prov.locator('td.mono').allTextContents()).toEqual(expect.arrayContaining(['n_estimators', '20']));
    // The dataset is a link to its lineage.
    expect(await prov.locator(`a[href="/ui/lineage?material=${encodeURIComponent(pushed.d2!)}"]`).count()).toBe(1);
    expect(await page.locator('table:has(th:text("Check")) >> text=passed').count()).toBeGreaterThan(0);
    await check('05-artifact');
    await page.click('text=Lineage: what it was built from');
    await expect.poll(() => page.textContent('h1')).toContain('Lineage of');
    expect(await page.locator('svg[role="img"]').count()).toBe(1);
    expect(await page.textContent('main')).toContain('datasets/transactions');
    await check('06-model-lineage');
  });

  it('runs the poisoning drill: dataset lineage, quarantine with rollback, the model denied over /v2/, the audit chain verified', async () => {
    // Identification: from the model's provenance to everything built from the dataset.
    await page.goBack();
    await page.click(`.node[data-kind="provenance"] a[href="/ui/lineage?material=${encodeURIComponent(pushed.d2!)}"]`);
    await expect.poll(() => page.textContent('h1')).toContain(pushed.d2!);
    const consumers = page.locator('table:has(th:text("Through")) tbody tr');
    await expect.poll(() => consumers.count()).toBe(2);
    expect(await consumers.allTextContents()).toEqual(expect.arrayContaining([expect.stringContaining('models/fraud'), expect.stringContaining('models/churn')]));
    expect(await page.locator('svg[role="img"] rect').count()).toBeGreaterThanOrEqual(5);
    await check('07-dataset-lineage');

    // Containment: the plan first, then one confirmed action.
    await page.click('text=Quarantine this material and roll back every affected tag');
    const plan = (await page.textContent('main'))!;
    for (const d of [pushed.d2!, pushed.m2!, pushed.c1!]) expect(await page.locator(`table >> [data-copy="${d}"]`).count(), d).toBeGreaterThan(0);
    const fraudRow = page.locator('tr', { has: page.locator('td:text-is("models/fraud:prod")') });
    expect(await fraudRow.locator('[data-copy]').nth(1).getAttribute('data-copy')).toBe(pushed.m1);
    expect(await page.locator('tr', { has: page.locator('td:text-is("models/churn:prod")') }).textContent()).toContain('no good version');
    expect(plan).not.toContain('quarantined;'); // nothing done yet
    expect((await v2(`models/fraud/manifests/${pushed.m2}`)).status).toBe(200);
    await check('08-quarantine-plan');
    await page.fill('#material-reason', REASON);
    await page.click('button:has-text("Quarantine and roll back")');
    await expect.poll(() => page.textContent('[role="status"]')).toContain('3 digest(s) quarantined; 1 tag(s) rolled back');
    await check('09-quarantine-done');

    // Right after, over the Distribution API: the poisoned model is denied, prod serves the good one.
    const denied = await v2(`models/fraud/manifests/${pushed.m2}`);
    expect(denied.status).toBe(403);
    expect(((await denied.json()) as { errors: { code: string }[] }).errors[0]!.code).toBe('DENIED');
    const prod = await v2('models/fraud/manifests/prod');
    expect(prod.status).toBe(200);
    expect(prod.headers.get('docker-content-digest')).toBe(pushed.m1);
    expect((await v2('models/churn/manifests/prod')).status).toBe(403);

    // The record: the chain verifies, and every change names the console user.
    await page.click('nav >> text=Audit log');
    await page.click('button:has-text("Verify the whole chain now")');
    // The walk runs in the background; the page shows its result, or its progress until it ends.
    await expect
      .poll(async () => {
        const state = (await page.textContent('#chain-state'))!;
        if (!/intact|broken/.test(state)) await page.goto(`${s.url}/ui/audit`);
        return state;
      }, { timeout: 60_000 })
      .toMatch(/intact\s+Verified up to entry \d+/);
    await page.fill('#actor', 'oncall');
    await page.click('button:has-text("Filter")');
    const actions = await page.locator('main table tbody tr td:nth-child(4)').allTextContents();
    expect(actions).toEqual(expect.arrayContaining(['quarantine.material', 'rollback', 'quarantine', 'ui.signin']));
    await check('10-audit');
    const res = await page.request.get(`${s.url}/ui/audit/export`);
    expect(res.headers()['content-type']).toBe('application/x-ndjson');
    const entries = (await res.text()).trim().split('\n').map((l) => JSON.parse(l) as AuditEntry);
    expect(verifyAuditChain(entries).ok).toBe(true);
    const mine = entries.filter((e) => ['quarantine', 'rollback', 'quarantine.material'].includes(e.action));
    expect(mine.map((e) => e.action).sort()).toEqual(['quarantine', 'quarantine', 'quarantine', 'quarantine.material', 'rollback']);
    for (const e of mine) {
      expect(e.actor, JSON.stringify(e)).toBe('token:oncall');
      expect(e.reason, JSON.stringify(e)).toContain('INC-1234');
    }

    // How the tag got where it is.
    await page.goto(`${s.url}/ui/history?repository=models/fraud&tag=prod`);
    const first = page.locator('tbody tr').first();
    expect(await first.textContent()).toMatch(/token:oncall.*INC-1234/s);
    await check('11-history');
  });

  it('rolls back to an earlier version with a required reason; pins, quarantines, releases, re-verifies and deletes with confirmation', async () => {
    const a = await pushSigned(s, 'models/iris', 'prod', 'iris v1');
    const b = await pushSigned(s, 'models/iris', 'prod', 'iris v2');
    await page.goto(`${s.url}/ui/history?repository=models/iris&tag=prod`);
    const row = page.locator('tr', { has: page.locator(`td >> [data-copy="${a.digest}"]`).last() }).filter({ has: page.locator('button:has-text("Roll back to here")') });
    await row.locator('button:has-text("Roll back to here")').click();
    // Without a reason the browser does not send the form.
    expect(await row.locator('input[name="reason"]:invalid').count()).toBe(1);
    expect((await v2('models/iris/manifests/prod')).headers.get('docker-content-digest')).toBe(b.digest);
    await row.locator('input[name="reason"]').fill('INC-1235: v2 regressed');
    await row.locator('button:has-text("Roll back to here")').click();
    await expectStatus(`Rolled models/iris:prod back to ${a.digest}`);
    expect((await v2('models/iris/manifests/prod')).headers.get('docker-content-digest')).toBe(a.digest);
    await check('12-history-rolled-back');

    await page.goto(`${s.url}/ui/artifact?repository=models/iris&reference=${a.digest}`);
    // The rollback pinned prod: unpin it, pin it again.
    await page.fill('#unpin-prod', 'INC-1235: release train resumes');
    await page.click('button:has-text("Unpin prod")');
    await expectStatus('Unpinned models/iris:prod');
    await page.fill('#pin-prod', 'INC-1235: freeze');
    await page.click('button:has-text("Pin prod")');
    await expectStatus(`Pinned models/iris:prod to ${a.digest}`);
    await page.goto(`${s.url}/ui/artifact?repository=models/iris&reference=${b.digest}`);
    await page.fill('#quarantine-reason', 'INC-1236: suspicious');
    await page.click('button:has-text("Quarantine")');
    await expectStatus(`Quarantined ${b.digest}`);
    expect(await page.locator('dd .badge.b-quarantined').count()).toBe(1);
    await page.fill('#release-reason', 'INC-1236: false alarm');
    await page.click('button:has-text("Release from quarantine")');
    await expectStatus(`Released ${b.digest}`);
    await page.click('button:has-text("Re-verify deep")');
    await expectStatus('Every check passed');
    await check('13-deep-verify');
    await page.goBack();
    await page.click('text=Delete…');
    await expect.poll(() => page.textContent('h1')).toContain('Delete models/iris@');
    await check('14-delete-confirm');
    await page.fill('#delete-reason', 'INC-1236: cleanup');
    await page.click('button:has-text("Delete it")');
    await expectStatus(`Deleted models/iris@${b.digest}`);
    expect((await v2(`models/iris/manifests/${b.digest}`)).status).toBe(404);
    await check('15-repository-after-delete');
  });

  it('shows an annotation containing <script> as text, and the CSP stops injected inline script', async () => {
    const x: Descriptor = await pushSigned(s, 'models/xss', 'v1', 'x', { annotations: { 'org.opencontainers.image.description': '<script>alert(1)</script><img src=x onerror=alert(2)>' } });
    await page.goto(`${s.url}/ui/artifact?repository=models/xss&reference=${x.digest}`);
    expect(await page.locator('td', { hasText: '<script>alert(1)</script><img src=x onerror=alert(2)>' }).count()).toBe(1);
    expect(await page.locator('main img').count()).toBe(0);
    // Runs in the page (this project's TypeScript has no DOM types, hence the string).
    const executed = await page.evaluate(`(() => {
      const el = document.createElement('script');
      el.textContent = 'window.__injected = true';
      document.body.append(el);
      return window.__injected === true;
    })()`);
    expect(executed).toBe(false);
    await expect.poll(() => cspViolations.length).toBeGreaterThan(0);
    expect(dialogs).toEqual([]);
    await check('16-artifact-escaped');
  });

  it('signs out; the console then shows nothing', async () => {
    await page.click('button:has-text("Sign out")');
    await page.waitForURL(`${s.url}/ui/login`, { timeout: 20_000 }).catch(async () => expect.fail(`after sign-out at ${page.url()}: ${await page.textContent('body')}`));
    await page.goto(`${s.url}/ui/repositories`);
    expect(new URL(page.url()).pathname).toBe('/ui/login');
    expect(await page.textContent('body')).not.toContain('models/');
  });
});
