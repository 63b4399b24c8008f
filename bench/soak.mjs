#!/usr/bin/env node
// Soak (issue 19): customs under a mixed load for a long time, watching for slow leaks and
// unexpected errors. customs runs as shipped (`customs serve`, info logs, --gate off) with an
// upstream (Debian's docker-registry) and these loops, all at once, until --minutes have passed:
//   - pushers: images of 1-3 random layers (16 KiB - 1 MiB; monolithic or chunked uploads),
//     each version tagged, the version 20 back deleted (so garbage collection has work);
//   - pullers: a recent version by tag, then every blob, each checked against its digest;
//   - manifest readers: GET/HEAD of a few hot manifests, as fast as they are answered;
//   - proxy pullers: images of the upstream pulled through customs (cold fills, then cache hits),
//     while a publisher adds a new image upstream every few seconds;
//   - garbage collection every --gc-every seconds (POST /admin/gc, 60 s grace).
// It prints requests served, errors by kind (client side, and error lines in customs's log), the
// customs process's RSS and open file descriptors at start and end, and their slope (least
// squares over samples every --sample-seconds; also over the second half only, after warm-up),
// then runs `customs fsck` on the data directory. Exit 2 when an error happened.
// Run by hand: `node bench/soak.mjs --minutes 30`. Never part of npm test.
import { createHash, randomBytes, randomInt } from 'node:crypto';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { benchOptions } from './lib/cli.mjs';
import { installCleanup, makeTempDir, run, rssOf, setKeepTemp } from './lib/proc.mjs';
import { emitJson, fmt, machine, printTable, printTargets, target, waitIdle, warnIfLoaded } from './lib/report.mjs';
import { ensureBuilt, repoRoot, startCustoms, startDistribution } from './lib/servers.mjs';
import { OCI_MANIFEST } from './lib/oci.mjs';

const opts = benchOptions(
  {
    minutes: { type: 'string', default: '30' },
    workers: { type: 'string', default: '2' },
    'sample-seconds': { type: 'string', default: '10' },
    'gc-every': { type: 'string', default: '60' },
  },
  `usage: node bench/soak.mjs [--minutes 30] [--workers 2] [--sample-seconds 10] [--gc-every 60]
  --minutes N         how long the load runs (decimals allowed: --minutes 0.5)
  --workers N         loops of each kind (pushers, pullers, manifest readers, proxy pullers)
  --sample-seconds S  how often RSS and open fds of customs are sampled
  --gc-every S        garbage collection interval`,
);
setKeepTemp(opts.keep);
installCleanup();
const minutes = Number(opts.minutes);
const workers = Number(opts.workers);
const sampleMs = Number(opts['sample-seconds']) * 1000;
const gcMs = Number(opts['gc-every']) * 1000;
if (!(minutes > 0) || !(workers >= 1) || !(sampleMs > 0) || !(gcMs > 0)) throw new Error('--minutes, --workers, --sample-seconds and --gc-every must be positive');
const log = (m) => process.stderr.write(`${m}\n`);

const sha256 = (b) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

// --- counters ---
const served = new Map(); // operation -> requests answered as expected
const errors = new Map(); // "operation: kind" -> count
const firstErrors = [];
const ok = (op, n = 1) => served.set(op, (served.get(op) ?? 0) + n);
const fail = (op, kind, detail) => {
  const key = `${op}: ${kind}`;
  errors.set(key, (errors.get(key) ?? 0) + 1);
  if (firstErrors.length < 20) firstErrors.push({ at: new Date().toISOString(), op, kind, detail: String(detail).slice(0, 300) });
};

/** One HTTP exchange; the body is read whole. Network failures become status 0. */
async function http(url, init = {}) {
  try {
    const res = await fetch(url, init);
    const body = Buffer.from(await res.arrayBuffer());
    return { status: res.status, headers: res.headers, body };
  } catch (e) {
    return { status: 0, error: e?.cause?.code ?? e?.message ?? String(e), body: Buffer.alloc(0) };
  }
}
const kindOf = (r) => (r.status === 0 ? r.error : `HTTP ${r.status} ${(() => { try { return JSON.parse(r.body.toString()).errors?.[0]?.code ?? ''; } catch { return ''; } })()}`.trim());

// --- registry operations (they count what they do; what goes to the upstream is counted apart) ---
const counters = (reg) =>
  reg === upstream ? { ok: (op, n) => ok(`upstream: ${op}`, n), fail: (op, kind, detail) => fail(`upstream: ${op}`, kind, detail) } : { ok, fail };
async function pushBlob(reg, repo, bytes, chunked) {
  const digest = sha256(bytes);
  const { ok, fail } = counters(reg);
  if (!chunked && reg !== upstream) {
    // Monolithic, in one request (distribution 2.8 has no POST ?digest=: the upstream gets POST + PUT).
    const r = await http(`${reg.url}/v2/${repo}/blobs/uploads/?digest=${digest}`, { method: 'POST', headers: { ...reg.headers, 'content-type': 'application/octet-stream' }, body: bytes });
    if (r.status !== 201) return fail('push blob', kindOf(r), repo), undefined;
    ok('push blob');
    return digest;
  }
  const start = await http(`${reg.url}/v2/${repo}/blobs/uploads/`, { method: 'POST', headers: reg.headers });
  if (start.status !== 202) return fail('push blob (chunked)', kindOf(start), repo), undefined;
  let loc = new URL(start.headers.get('location'), reg.url);
  const half = Math.floor(bytes.length / 2);
  for (const [a, b] of [[0, half], [half, bytes.length]]) {
    if (a === b) continue;
    const r = await http(loc, { method: 'PATCH', headers: { ...reg.headers, 'content-type': 'application/octet-stream', 'content-range': `${a}-${b - 1}` }, body: bytes.subarray(a, b) });
    if (r.status !== 202) return fail('push blob (chunked)', kindOf(r), repo), undefined;
    loc = new URL(r.headers.get('location'), reg.url);
  }
  loc.searchParams.set('digest', digest);
  const done = await http(loc, { method: 'PUT', headers: reg.headers });
  if (done.status !== 201) return fail('push blob (chunked)', kindOf(done), repo), undefined;
  ok('push blob (chunked)', 4);
  return digest;
}

async function pushImage(reg, repo, tag, { chunked = false } = {}) {
  const { ok, fail } = counters(reg);
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, n: randomBytes(8).toString('hex') }));
  const layers = Array.from({ length: randomInt(1, 4) }, () => randomBytes(randomInt(16 * 1024, 1024 * 1024)));
  const blobs = [config, ...layers];
  for (const b of blobs) if (!(await pushBlob(reg, repo, b, chunked && b !== config))) return undefined;
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
      layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha256(l), size: l.length })),
    }),
  );
  const r = await http(`${reg.url}/v2/${repo}/manifests/${tag}`, { method: 'PUT', headers: { ...reg.headers, 'content-type': OCI_MANIFEST }, body: manifest });
  if (r.status !== 201) return fail('push manifest', kindOf(r), `${repo}:${tag}`), undefined;
  ok('push manifest');
  return { repo, tag, digest: sha256(manifest), blobs: blobs.map((b) => ({ digest: sha256(b), size: b.length })) };
}

/** Pulls `repo:ref` and every blob; checks digests. */
async function pull(reg, op, repo, ref) {
  const m = await http(`${reg.url}/v2/${repo}/manifests/${ref}`, { headers: { ...reg.headers, accept: OCI_MANIFEST } });
  if (m.status !== 200) return fail(`${op} manifest`, kindOf(m), `${repo}:${ref}`), false;
  if (m.headers.get('docker-content-digest') !== sha256(m.body)) return fail(`${op} manifest`, 'wrong digest', `${repo}:${ref}`), false;
  ok(`${op} manifest`);
  const body = JSON.parse(m.body.toString());
  for (const d of [body.config, ...body.layers]) {
    const b = await http(`${reg.url}/v2/${repo}/blobs/${d.digest}`, { headers: reg.headers });
    if (b.status !== 200) return fail(`${op} blob`, kindOf(b), `${repo}@${d.digest}`), false;
    if (sha256(b.body) !== d.digest) return fail(`${op} blob`, 'wrong digest', `${repo}@${d.digest}`), false;
    ok(`${op} blob`);
  }
  return true;
}

// --- process figures ---
const fdsOf = (pid) => {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return NaN;
  }
};
/** Least-squares slope of y over t (per hour). */
function slopePerHour(samples, key) {
  const pts = samples.filter((s) => Number.isFinite(s[key]));
  if (pts.length < 2) return NaN;
  const n = pts.length;
  const mt = pts.reduce((a, s) => a + s.t, 0) / n;
  const my = pts.reduce((a, s) => a + s[key], 0) / n;
  const num = pts.reduce((a, s) => a + (s.t - mt) * (s[key] - my), 0);
  const den = pts.reduce((a, s) => a + (s.t - mt) ** 2, 0);
  return den === 0 ? 0 : (num / den) * 3600;
}

// --- main ---
await ensureBuilt({ force: opts.build });
if (Number(opts['wait-idle']) > 0) await waitIdle(Number(opts['wait-idle']), log);
warnIfLoaded(log);
const upstream = await startDistribution({ quiet: true });
const work = makeTempDir('soak');
const cfg = join(work, 'customs.yaml');
writeFileSync(cfg, `upstreams:\n  - name: up\n    url: ${upstream.url}\n    tagFreshness: 30\n`);
const customs = await startCustoms({ gate: 'off', label: 'soak', extraArgs: ['--config', cfg, ...opts['customs-arg']], nodeArgs: opts['customs-node-arg'] });
log(`customs ${customs.url} (pid ${customs.pid}), upstream ${upstream.url}; ${minutes} min, ${workers} worker(s) of each kind`);

// Seed: hot images in customs, a few images upstream.
const hot = [];
for (let i = 0; i < 4; i++) hot.push(await pushImage(customs, 'soak/hot', `h${i}`));
if (hot.some((h) => !h)) throw new Error('seeding customs failed');
const upstreamImages = [];
for (let i = 0; i < 5; i++) upstreamImages.push(await pushImage(upstream, `lib/app${i}`, 'v1'));
if (upstreamImages.some((u) => !u)) throw new Error('seeding the upstream failed');

const served0 = new Map(served); // seeding is not part of the load
served.clear();
for (const [k, v] of served0) served.set(`seed: ${k}`, v);
const started = Date.now();
const deadline = started + minutes * 60_000;
const running = () => Date.now() < deadline;
const samples = [];
/** RSS and fds from /proc; V8's heap in use and external memory from customs's own /metrics (not counted as load). */
const sample = async () => {
  const m = (await http(`${customs.url}/metrics`)).body.toString();
  const metric = (name) => Number(new RegExp(`^customs_${name} (\\S+)`, 'm').exec(m)?.[1] ?? NaN) / 1e6;
  const caches = Object.fromEntries([...m.matchAll(/^customs_cache_entries\{cache="([a-z_]+)"\} (\d+)$/gm)].map((x) => [x[1], Number(x[2])]));
  samples.push({ t: (Date.now() - started) / 1000, rssMB: rssOf(customs.pid) / 1e6, fds: fdsOf(customs.pid), heapMB: metric('nodejs_heap_size_used_bytes'), heapTotalMB: metric('nodejs_heap_size_total_bytes'), externalMB: metric('nodejs_external_memory_bytes'), caches });
};
await sample();
const recent = new Map(); // repo -> versions pushed, newest last

const loops = [];
for (let w = 0; w < workers; w++) {
  loops.push(
    (async () => {
      const repo = `soak/p${w}`;
      const versions = [];
      recent.set(repo, versions);
      for (let i = 0; running(); i++) {
        const img = await pushImage(customs, repo, `v${i}`, { chunked: i % 3 === 0 });
        if (!img) continue;
        versions.push(img);
        if (versions.length > 20) {
          const old = versions.shift();
          const r = await http(`${customs.url}/v2/${repo}/manifests/${old.digest}`, { method: 'DELETE', headers: customs.headers });
          if (r.status === 202) ok('delete manifest');
          else fail('delete manifest', kindOf(r), old.digest);
        }
      }
    })(),
    (async () => {
      while (running()) {
        // Pull a recent version (well away from the one being deleted).
        const pushed = [...recent.values()].filter((v) => v.length > 0);
        if (pushed.length === 0) {
          await sleep(100);
          continue;
        }
        const versions = pushed[randomInt(pushed.length)];
        const img = versions[versions.length - 1 - randomInt(Math.min(versions.length, 10))];
        await pull(customs, 'pull', img.repo, img.tag);
      }
    })(),
    (async () => {
      for (let i = 0; running(); i++) {
        const img = hot[i % hot.length];
        const head = i % 2 === 0;
        const r = await http(`${customs.url}/v2/${img.repo}/manifests/${img.tag}`, { method: head ? 'HEAD' : 'GET', headers: { ...customs.headers, accept: OCI_MANIFEST } });
        if (r.status === 200 && r.headers.get('docker-content-digest') === img.digest) ok(head ? 'manifest HEAD' : 'manifest GET');
        else fail(head ? 'manifest HEAD' : 'manifest GET', kindOf(r), img.tag);
      }
    })(),
    (async () => {
      while (running()) {
        const img = upstreamImages[randomInt(upstreamImages.length)];
        await pull(customs, 'proxy pull', `up/${img.repo}`, img.tag);
      }
    })(),
  );
}
// The upstream publishes a new image every few seconds: cold fills all along.
loops.push(
  (async () => {
    for (let i = 0; running(); i++) {
      await sleep(5000);
      const img = await pushImage(upstream, `lib/new${i % 50}`, `v${i}`);
      if (img) upstreamImages.push(img);
    }
  })(),
);
// Garbage collection and sampling.
const gcRuns = [];
loops.push(
  (async () => {
    while (running()) {
      await sleep(Math.min(gcMs, Math.max(0, deadline - Date.now())));
      if (!running()) break;
      const r = await http(`${customs.url}/admin/gc`, { method: 'POST', headers: { ...customs.headers, 'content-type': 'application/json' }, body: JSON.stringify({ graceSeconds: 60, reason: 'soak' }) });
      if (r.status === 200) {
        ok('gc');
        const j = JSON.parse(r.body.toString());
        gcRuns.push({ links: j.links, blobs: j.blobs, bytes: j.bytes });
      } else fail('gc', kindOf(r), r.body.toString().slice(0, 200));
    }
  })(),
  (async () => {
    while (running()) {
      await sleep(Math.min(sampleMs, Math.max(0, deadline - Date.now())));
      await sample();
      const done = (Date.now() - started) / (deadline - started);
      const requests = [...served].filter(([k]) => !k.startsWith('upstream') && !k.startsWith('seed')).reduce((a, [, b]) => a + b, 0);
      const errs = [...errors.values()].reduce((a, b) => a + b, 0);
      log(`${(done * 100).toFixed(0).padStart(3)}%  requests ${requests}  errors ${errs}  rss ${samples.at(-1).rssMB.toFixed(1)} MB  heap ${samples.at(-1).heapMB.toFixed(1)} MB  fds ${samples.at(-1).fds}`);
    }
  })(),
);
await Promise.all(loops);
await sample();
const seconds = (Date.now() - started) / 1000;
const metrics = await http(`${customs.url}/metrics`);
const serverRequests = [...metrics.body.toString().matchAll(/^customs_http_requests_total\{[^}]*\} (\d+)/gm)].reduce((a, m) => a + Number(m[1]), 0);
await customs.stop();
await upstream.stop();

// What customs logged at error level (and warnings, by message).
const levels = { error: 0, warn: 0 };
const byMessage = new Map();
for (const line of readFileSync(customs.logFile, 'utf8').split('\n')) {
  if (!line.startsWith('{')) continue;
  let j;
  try {
    j = JSON.parse(line);
  } catch {
    continue;
  }
  if (j.level < 40) continue;
  const lvl = j.level >= 50 ? 'error' : 'warn';
  levels[lvl]++;
  const key = `${lvl}: ${j.msg}`;
  byMessage.set(key, (byMessage.get(key) ?? 0) + 1);
}
const fsck = await run(process.execPath, [join(repoRoot, 'bin', 'customs.js'), 'fsck', '--data', customs.dataDir, '--config', cfg, '--leftover-grace', '0']);

const half = samples.filter((s) => s.t >= seconds / 2);
const first = samples[0];
const last = samples.at(-1);
const requests = [...served].filter(([k]) => !k.startsWith('upstream') && !k.startsWith('seed')).reduce((a, [, b]) => a + b, 0);
const errorCount = [...errors.values()].reduce((a, b) => a + b, 0);
printTable('Requests served (client side, answered as expected)', ['operation', 'count', 'per s'], [...served].sort().map(([op, n]) => [op, fmt(n, 0), fmt(n / seconds, 1)]));
printTable('Errors by kind (client side)', ['operation: kind', 'count'], errors.size ? [...errors].sort().map(([k, n]) => [k, String(n)]) : [['(none)', '0']]);
printTable('customs log lines at warn and error', ['level: message', 'count'], byMessage.size ? [...byMessage].sort().map(([k, n]) => [k, String(n)]) : [['(none)', '0']]);
printTable(
  'customs process',
  ['figure', 'start', 'end', 'slope per hour (all)', 'slope per hour (2nd half)'],
  [
    ['RSS (MB)', fmt(first.rssMB, 1), fmt(last.rssMB, 1), fmt(slopePerHour(samples, 'rssMB'), 1), fmt(slopePerHour(half, 'rssMB'), 1)],
    ['open fds', String(first.fds), String(last.fds), fmt(slopePerHour(samples, 'fds'), 1), fmt(slopePerHour(half, 'fds'), 1)],
    ['V8 heap used (MB)', fmt(first.heapMB, 1), fmt(last.heapMB, 1), fmt(slopePerHour(samples, 'heapMB'), 1), fmt(slopePerHour(half, 'heapMB'), 1)],
    ['V8 heap reserved (MB)', fmt(first.heapTotalMB, 1), fmt(last.heapTotalMB, 1), fmt(slopePerHour(samples, 'heapTotalMB'), 1), fmt(slopePerHour(half, 'heapTotalMB'), 1)],
    ['external memory (MB)', fmt(first.externalMB, 1), fmt(last.externalMB, 1), fmt(slopePerHour(samples, 'externalMB'), 1), fmt(slopePerHour(half, 'externalMB'), 1)],
  ],
);
// Every cache is bounded; one whose entries keep growing while the stored content does not holds the dead.
printTable(
  'in-memory caches (entries, customs_cache_entries)',
  ['cache', 'start', 'middle', 'end'],
  Object.keys(last.caches ?? {}).map((c) => [c, String(first.caches?.[c] ?? ''), String(half[0]?.caches?.[c] ?? ''), String(last.caches[c])]),
);
process.stdout.write(`\n${fmt(requests, 0)} requests to customs answered as expected in ${fmt(seconds, 0)} s (customs counted ${fmt(serverRequests, 0)}, seeding and metrics included), ${errorCount} error(s); ${gcRuns.length} gc run(s) removed ${gcRuns.reduce((a, g) => a + g.blobs, 0)} blob(s)\n`);
process.stdout.write(`customs fsck: ${fsck.code === 0 ? 'consistent' : `FAILED (exit ${fsck.code})`}\n${fsck.stdout.split('\n').filter((l) => l.startsWith('PROBLEM')).slice(0, 10).join('\n')}`);
if (firstErrors.length) process.stdout.write(`\nfirst errors:\n${firstErrors.map((e) => `  ${e.at} ${e.op}: ${e.kind} (${e.detail})`).join('\n')}\n`);
const targets = [
  target('unexpected client errors', errorCount, '<', 1, ''),
  target('error lines in customs log', levels.error, '<', 1, ''),
  target('fsck problems (exit code)', fsck.code, '<', 1, ''),
];
printTargets(targets);
emitJson(
  {
    bench: 'soak',
    machine: machine(),
    minutes,
    workers,
    seconds: Math.round(seconds),
    requests,
    serverRequests,
    served: Object.fromEntries(served),
    errors: Object.fromEntries(errors),
    firstErrors,
    logLevels: levels,
    logMessages: Object.fromEntries(byMessage),
    rss: { startMB: +first.rssMB.toFixed(1), endMB: +last.rssMB.toFixed(1), slopeMBPerHour: +slopePerHour(samples, 'rssMB').toFixed(1), secondHalfSlopeMBPerHour: +slopePerHour(half, 'rssMB').toFixed(1) },
    fds: { start: first.fds, end: last.fds, slopePerHour: +slopePerHour(samples, 'fds').toFixed(1), secondHalfSlopePerHour: +slopePerHour(half, 'fds').toFixed(1) },
    heap: { startMB: +first.heapMB.toFixed(1), endMB: +last.heapMB.toFixed(1), secondHalfSlopeMBPerHour: +slopePerHour(half, 'heapMB').toFixed(1) },
    gcRuns: gcRuns.length,
    fsck: fsck.code === 0 ? 'consistent' : 'failed',
    samples,
    targets,
  },
  opts.json,
);
process.exit(targets.every((t) => t.pass) ? 0 : 2);
