#!/usr/bin/env node
// Operator console benchmark (issue 21). Seeds a metadata store with --repos
// repositories and --moves tag moves (each with its history row and audit entry,
// written by customs's own SQLite store, so the audit chain is real), plus a repository
// with many tags, one tag with a long history, and a dataset with --consumers models
// trained on it (a 50-node lineage graph). Then starts customs on it (default gate,
// enforce), signs in to /ui/ with the admin token and renders every page: one cold
// render (first verdicts, first chain walk) and --reps warm ones. Server time is the
// `ms` of customs's own request log line for each request (matched by x-request-id),
// not the client's wall time. Target: every warm render under 300 ms.
// Run by hand: `node bench/ui.mjs [--help]`. Never part of npm test.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { randomUUID } from 'node:crypto';
import { benchOptions } from './lib/cli.mjs';
import { installCleanup, setKeepTemp } from './lib/proc.mjs';
import { builtModule, ensureBuilt, startCustoms } from './lib/servers.mjs';
import { median } from './lib/measure.mjs';
import { emitJson, fmt, machine, printTable, printTargets, target, waitIdle } from './lib/report.mjs';

const HELP = `usage: node bench/ui.mjs [options]
  --repos N        repositories (default 10000)
  --moves N        tag moves in total (default 100000)
  --hot N          moves of one tag, the longest history (default 20000)
  --tags N         tags of one repository (default 1000)
  --consumers N    models trained on one dataset (default 50)
  --reps N         warm renders per page (default 5)`;

const opt = benchOptions(
  {
    repos: { type: 'string', default: '10000' },
    moves: { type: 'string', default: '100000' },
    hot: { type: 'string', default: '20000' },
    tags: { type: 'string', default: '1000' },
    consumers: { type: 'string', default: '50' },
    reps: { type: 'string', default: '5' },
  },
  HELP,
);
const N = { repos: Number(opt.repos), moves: Number(opt.moves), hot: Number(opt.hot), tags: Number(opt.tags), consumers: Number(opt.consumers), reps: Number(opt.reps) };
const log = (m) => process.stderr.write(`[bench:ui] ${m}\n`);

installCleanup();
setKeepTemp(opt.keep);
const machineBefore = machine();
const busyBefore = await waitIdle(Number(opt['wait-idle']), log);
await ensureBuilt({ force: opt.build });
const { SqliteMetadataStore } = await import(builtModule('storage/sqlite/sqlite-metadata-store.js'));

const MT = 'application/vnd.oci.image.manifest.v1+json';
const EMPTY = { mediaType: 'application/vnd.oci.empty.v1+json', digest: 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a', size: 2 };
const sha = (b) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const by = { actor: 'bench:seed', reason: 'seed' };

/** A model manifest (metadata only: the gate reads it and finds no signature, as for any unsigned push). */
function manifest(repository, n, artifactType = 'application/vnd.cncf.model.manifest.v1+json') {
  const layer = { mediaType: 'application/vnd.cncf.model.weight.v1.raw', digest: sha(`${repository}/${n}`), size: 1_000_000 + n, annotations: { 'org.cncf.model.filepath': `model-${n}.safetensors` } };
  const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MT, artifactType, config: EMPTY, layers: [layer] }));
  return { repository, digest: sha(bytes), mediaType: MT, artifactType, size: bytes.length, subject: undefined, annotations: undefined, bytes, references: [] };
}

const names = [];
let moves = 0;
let dataset, hotRepo = 'models/hot', manyTags = 'models/many-tags';

async function seed(dataDir) {
  const t0 = performance.now();
  const m = new SqliteMetadataStore(join(dataDir, 'metadata.sqlite'));
  let writes = 0;
  // The store is synchronous underneath: yield now and then so Ctrl-C is heard.
  const breathe = () => (++writes % 1000 === 0 ? new Promise((r) => setImmediate(r)) : undefined);
  const put = async (rec, tag, who = by) => {
    if (await m.putManifest(rec, tag, who)) moves++;
    await breathe();
  };
  const prefixes = ['models', 'datasets', 'images', 'teams/fraud', 'teams/search'];
  const perRepo = [];
  for (let i = 0; i < N.repos; i++) {
    const name = `${prefixes[i % prefixes.length]}/r${String(i).padStart(5, '0')}`;
    names.push(name);
    const a = manifest(name, 1);
    const b = manifest(name, 2);
    await put(a, 'v1');
    await put(b, 'prod');
    perRepo.push([a, b]);
  }
  // One dataset and the models trained on it, each with an older version on prod first.
  dataset = manifest('datasets/big', 0, 'application/vnd.customs.dataset.v1');
  await put(dataset, 'v1');
  const hex = dataset.digest.slice(7);
  for (let i = 0; i < N.consumers; i++) {
    const repo = `models/consumer-${String(i).padStart(2, '0')}`;
    const old = manifest(repo, 1);
    const cur = manifest(repo, 2);
    await put(old, 'prod');
    await put(cur, 'prod');
    await m.recordProvenance({
      repository: repo,
      referrer: sha(`provenance of ${repo}`),
      subject: cur.digest,
      predicateType: 'https://slsa.dev/provenance/v1',
      builderId: 'https://ci.example/trainer/v1',
      buildType: 'https://customs.dev/ml-training/v1',
      startedOn: '2026-11-01T10:00:00Z',
      finishedOn: '2026-11-01T11:00:00Z',
      signers: [],
      materials: [
        { role: 'training-dataset', name: 'datasets/big', uri: undefined, digest: { sha256: hex } },
        { role: 'source', name: 'trainer', uri: 'git+https://git.example/trainer', digest: { gitCommit: 'a1b2c3d4e5f60718293a4b5c6d7e8f9012345678' } },
      ],
    });
  }
  // One repository with many tags.
  const mt = [manifest(manyTags, 1), manifest(manyTags, 2)];
  for (let i = 0; i < N.tags; i++) await put(mt[i % 2], `t${String(i).padStart(5, '0')}`);
  // One tag with a long history, then the rest of the moves spread over the repositories.
  const hot = [manifest(hotRepo, 1), manifest(hotRepo, 2)];
  await put(hot[1], undefined);
  await put(hot[0], 'prod');
  for (let i = 0; i < N.hot; i++) {
    if (await m.moveTag(hotRepo, 'prod', hot[(i + 1) % 2].digest, { actor: `user:dev${i % 7}`, reason: `deploy ${i}` })) moves++;
    await breathe();
  }
  let k = 0;
  while (moves < N.moves) {
    const i = (k * 7919) % N.repos; // a stride through the repositories, deterministic
    const [a, b] = perRepo[i];
    const to = Math.floor(k / N.repos) % 2 === 0 ? a : b; // each pass over the repositories moves prod the other way
    if (await m.moveTag(names[i], 'prod', to.digest, { actor: `user:dev${k % 11}`, reason: `release ${k}` })) moves++;
    await breathe();
    k++;
  }
  log(`seeded in ${((performance.now() - t0) / 1000).toFixed(1)} s: ${moves} tag moves, ${JSON.stringify(await m.inventory.counts())}`);
  await m.close();
}

log(`seeding ${N.repos} repositories and ${N.moves} tag moves...`);
const srv = await startCustoms({ gate: 'enforce', prepare: seed, label: 'customs-ui' });
const token = srv.headers.authorization.replace(/^Bearer /, '');

// Sign in as a browser would: the sign-in form's nonce cookie and CSRF token, then the session cookie.
const cookieOf = (res) => res.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
const login = await fetch(`${srv.url}/ui/login`);
const csrf = /name="csrf" value="([^"]+)"/.exec(await login.text())[1];
const signedIn = await fetch(`${srv.url}/ui/login`, { method: 'POST', redirect: 'manual', headers: { cookie: cookieOf(login), 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ csrf, token }) });
if (signedIn.status !== 303) throw new Error(`sign-in failed: ${signedIn.status}`);
const session = cookieOf(signedIn).split('; ').find((c) => c.startsWith('customs_session='));

const mid = names[Math.floor(N.repos / 2)];
const consumer = 'models/consumer-07';
const pages = [
  ['overview', '/ui/'],
  ['repositories, first page', '/ui/repositories'],
  ['repositories, a page in the middle', `/ui/repositories?after=${encodeURIComponent(mid)}`],
  ['repositories, search (substring)', '/ui/repositories?q=r0421'],
  ['repositories, search (no match)', '/ui/repositories?q=zzz'],
  [`tags, first 50 of ${N.tags}`, `/ui/repository?name=${manyTags}`],
  ['tags, a repository with 2', `/ui/repository?name=${encodeURIComponent(mid)}`],
  ['artifact', `/ui/artifact?repository=${encodeURIComponent(mid)}&reference=prod`],
  [`history, a tag with ${N.hot} moves (first 100)`, `/ui/history?repository=${hotRepo}&tag=prod`],
  ['history, a tag with few moves', `/ui/history?repository=${encodeURIComponent(mid)}&tag=prod`],
  ['lineage of a model', `/ui/lineage?repository=${consumer}&reference=prod`],
  [`lineage of a dataset (${N.consumers} models, ${2 * N.consumers + 1} nodes)`, `/ui/lineage?material=${encodeURIComponent(dataset.digest)}`],
  [`quarantine plan (${N.consumers} models to roll back)`, `/ui/quarantine/plan?material=${encodeURIComponent(dataset.digest)}`],
  ['audit log, newest 100', '/ui/audit'],
  ['audit log, filtered by actor', '/ui/audit?actor=dev3'],
  ['audit log, filtered by action and time', '/ui/audit?action=rollback&since=24h'],
  ['audit log, a full walk of the chain started', '/ui/audit?verify=1'],
];
// Pages after which a full walk of the hash chain runs in the background: wait for it (and time it) before the warm renders.
const walks = new Set(['/ui/audit', '/ui/audit?verify=1']);

/** One render: its server time from customs's log line (matched by request id), and its status. */
async function render(path) {
  const id = randomUUID();
  const t0 = performance.now();
  const res = await fetch(`${srv.url}${path}`, { headers: { cookie: session, 'x-request-id': id }, redirect: 'manual' });
  const body = await res.text();
  const wall = performance.now() - t0;
  if (res.status !== 200) throw new Error(`GET ${path}: ${res.status} ${body.slice(0, 400)}`);
  let ms;
  for (let tries = 0; ms === undefined && tries < 100; tries++) {
    for (const line of readFileSync(srv.logFile, 'utf8').split('\n')) {
      if (!line.includes(id)) continue;
      try {
        const j = JSON.parse(line);
        if (j.msg === 'request' && j.reqId === id) ms = j.ms;
      } catch {
        /* partial line */
      }
    }
    if (ms === undefined) await new Promise((r) => setTimeout(r, 20)); // pino writes asynchronously
  }
  return { ms, wall, bytes: body.length };
}

/** Seconds until the audit page reports a finished full walk of the chain (polled every 100 ms). */
async function waitForWalk() {
  const t0 = performance.now();
  for (;;) {
    const page = await (await fetch(`${srv.url}/ui/audit`, { headers: { cookie: session } })).text();
    const m = /Verified up to entry (\d+)/.exec(page);
    if (m && !page.includes('A new full walk is running')) return { seconds: +((performance.now() - t0) / 1000).toFixed(2), entries: Number(m[1]) };
    if (page.includes('First broken entry')) throw new Error('the seeded chain does not verify');
    await new Promise((r) => setTimeout(r, 100));
  }
}

const chainWalks = [];
const rows = [];
const results = [];
for (const [name, path] of pages) {
  const cold = await render(path);
  if (walks.has(path)) chainWalks.push(await waitForWalk());
  const warm = [];
  for (let i = 0; i < N.reps; i++) warm.push((await render(path)).ms);
  const r = { page: name, path, coldMs: cold.ms, warmMedianMs: median(warm), warmMaxMs: Math.max(...warm), kib: +(cold.bytes / 1024).toFixed(1) };
  results.push(r);
  rows.push([name, fmt(r.coldMs, 1), fmt(r.warmMedianMs, 1), fmt(r.warmMaxMs, 1), fmt(r.kib, 1)]);
  log(`${name}: cold ${r.coldMs} ms, warm median ${r.warmMedianMs} ms`);
}
await srv.stop();

printTable(`Console pages, server time in ms (${N.repos} repositories, ${moves} tag moves; ${N.reps} warm renders each)`, ['page', 'cold', 'warm median', 'warm max', 'KiB'], rows);
printTable('Full walks of the audit hash chain (background, after the page above started them)', ['walk', 'entries', 'seconds after the page'], chainWalks.map((w, i) => [String(i + 1), String(w.entries), fmt(w.seconds, 2)]));
const targets = results.map((r) => target(`${r.page}: warm max`, r.warmMaxMs, '<', 300, ' ms'));
printTargets(targets);
emitJson({ bench: 'ui', machine: machineBefore, busyBefore, sizes: { ...N, movesSeeded: moves }, results, chainWalks, targets }, opt.json);
process.exit(targets.every((t) => t.pass !== false) ? 0 : 2);
