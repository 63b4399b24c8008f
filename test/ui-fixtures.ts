import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { expect } from 'vitest';
import { RegistryClient } from '../src/artifacts/client.js';
import { signingKeyFromPem, type SigningKey } from '../src/artifacts/sign.js';
import { hashSecret } from '../src/http/secrets.js';
import { MediaType, digestOf, type Descriptor, type Digest } from '../src/oci/index.js';
import { pushSignature } from './gate-fixtures.js';
import { writeKeyPair } from './producer-fixtures.js';
import { startTestServer, type TestServer } from './helpers/server.js';

/**
 * Shared by the console's tests: a server under the default gate (content must be signed by
 * a key in <data>/trust/keys/), with principals of every kind: an operator (admin on
 * everything), a pusher, a puller of models/** only; signed artifacts pushed over /v2/.
 */
export interface ConsoleServer {
  readonly srv: TestServer;
  readonly url: string;
  readonly work: string;
  /** `ctk_<id>_<secret>` per token id. */
  readonly tokens: Record<'oncall' | 'ci' | 'modelsPull' | 'modelsAdmin', string>;
  readonly keyPath: string;
  readonly key: SigningKey;
  /** Pushes with the ci token. */
  readonly client: RegistryClient;
  close(): Promise<void>;
}

const secret = (id: string): string => `ctk_${id}_${Buffer.from(`${id}-secret-for-console-tests`).toString('base64url')}`;

export async function startConsoleServer(extraConfig: Record<string, unknown> = {}): Promise<ConsoleServer> {
  const work = await mkdtemp(join(tmpdir(), 'customs-ui-'));
  const dataDir = join(work, 'data');
  await mkdir(join(dataDir, 'trust', 'keys'), { recursive: true });
  const { keyPath, publicPem } = await writeKeyPair(work, 'ci.key');
  // The default policy trusts every key here: what `customs keygen` and an operator set up.
  await writeFile(join(dataDir, 'trust', 'keys', 'ci.pub'), publicPem);
  const tokens = { oncall: secret('oncall'), ci: secret('ci'), modelsPull: secret('models-pull'), modelsAdmin: secret('models-admin') };
  const entry = async (id: string, t: string, permissions: unknown[]) => ({ id, hash: await hashSecret(t.split('_')[2]!), permissions });
  const srv = await startTestServer({
    dataDir,
    gate: undefined, // the default gate: enforce, signed by a trusted key
    config: {
      auth: {
        anonymous: { pull: 'never' },
        tokens: [
          await entry('oncall', tokens.oncall, [{ repositories: ['**'], actions: ['admin'] }]),
          await entry('ci', tokens.ci, [{ repositories: ['**'], actions: ['pull', 'push'] }]),
          await entry('models-pull', tokens.modelsPull, [{ repositories: ['models/**'], actions: ['pull'] }]),
          await entry('models-admin', tokens.modelsAdmin, [{ repositories: ['models/**'], actions: ['admin'] }]),
        ],
      },
      ...extraConfig,
    },
  });
  const key = signingKeyFromPem(await readFile(keyPath, 'utf8'), publicPem);
  return {
    srv,
    url: srv.url,
    work,
    tokens,
    keyPath,
    key,
    client: new RegistryClient({ url: srv.url, token: tokens.ci }),
    async close() {
      await srv.close();
      await rm(work, { recursive: true, force: true });
    },
  };
}

/** A small artifact (one layer), signed with the trusted key so the default gate serves it. */
export async function pushSigned(
  s: ConsoleServer,
  repo: string,
  tag: string,
  content: string,
  opts: { annotations?: Record<string, string>; artifactType?: string; sign?: boolean } = {},
): Promise<Descriptor> {
  const layer = Buffer.from(content);
  const config = Buffer.from('{}');
  await s.client.pushBlob(repo, { kind: 'bytes', data: layer });
  await s.client.pushBlob(repo, { kind: 'bytes', data: config });
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      artifactType: opts.artifactType ?? 'application/vnd.cncf.model.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: digestOf(config), size: config.length },
      layers: [{ mediaType: 'application/vnd.cncf.model.weight.v1.raw', digest: digestOf(layer), size: layer.length, annotations: { 'org.cncf.model.filepath': 'model.bin' } }],
      ...(opts.annotations ? { annotations: opts.annotations } : {}),
    }),
  );
  const { digest } = await s.client.putManifest(repo, tag, manifest, MediaType.ociManifest);
  const desc: Descriptor = { mediaType: MediaType.ociManifest, digest, size: manifest.length };
  if (opts.sign !== false) await pushSignature(s.client, repo, desc, s.key);
  return desc;
}

// --- HTTP-level sessions (no browser) ---

export interface HttpSession {
  readonly cookie: string;
  /** The CSRF token of this session (read from a page's sign-out form). */
  readonly csrf: string;
}

export const cookiesOf = (r: Response): string[] => r.headers.getSetCookie();
const pairs = (list: string[]): string => list.map((c) => c.split(';')[0]).join('; ');

export async function signIn(url: string, token: string): Promise<HttpSession> {
  const login = await fetch(`${url}/ui/login`);
  const html = await login.text();
  const csrf = /name="csrf" value="([^"]+)"/.exec(html)![1]!;
  const r = await fetch(`${url}/ui/login`, {
    method: 'POST',
    redirect: 'manual',
    headers: { cookie: pairs(cookiesOf(login)), 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ csrf, token }),
  });
  expect(r.status, await r.clone().text()).toBe(303);
  const cookie = pairs(cookiesOf(r).filter((c) => c.startsWith('customs_session=')));
  const page = await (await fetch(`${url}/ui/`, { headers: { cookie } })).text();
  return { cookie, csrf: /name="csrf" value="([^"]+)"/.exec(page)![1]! };
}

export function post(url: string, path: string, fields: Record<string, string>, s: Partial<HttpSession> = {}, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${url}${path}`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...(s.cookie ? { cookie: s.cookie } : {}), ...headers },
    body: new URLSearchParams(fields),
  });
}

export const get = (url: string, path: string, s: Partial<HttpSession> = {}): Promise<Response> => fetch(`${url}${path}`, { redirect: 'manual', headers: s.cookie ? { cookie: s.cookie } : {} });

// --- the browser ---

/** Debian's chromium, headless, with a fresh profile; the flags keep it off the network. */
export async function launchBrowser(): Promise<{ context: BrowserContext; close(): Promise<void> }> {
  const profile = await mkdtemp(join(tmpdir(), 'customs-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1360, height: 900 },
  });
  return {
    context,
    async close() {
      await context.close();
      await rm(profile, { recursive: true, force: true });
    },
  };
}

/** Screenshots for review: test-results/ui/ (git-ignored). */
export const SHOTS = join(new URL('..', import.meta.url).pathname, 'test-results', 'ui');

export async function screenshot(page: Page, name: string): Promise<void> {
  await mkdir(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

const AXE = readFile(new URL('../node_modules/axe-core/axe.min.js', import.meta.url), 'utf8');

/**
 * axe-core run in the page (evaluated through the DevTools protocol, which the page's CSP
 * does not govern); fails on any serious or critical violation, naming each.
 */
export async function expectAccessible(page: Page, what: string): Promise<void> {
  await page.evaluate(await AXE);
  const result = (await page.evaluate(() => (globalThis as unknown as { axe: { run(o: object): Promise<unknown> } }).axe.run({ resultTypes: ['violations'] }))) as {
    violations: { id: string; impact: string | null; help: string; nodes: { target: string[]; failureSummary?: string }[] }[];
  };
  const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  expect(bad.map((v) => `${v.impact} ${v.id}: ${v.help} at ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(' | ')}`), `axe on ${what}`).toEqual([]);
}

export type { Digest };
