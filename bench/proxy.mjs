#!/usr/bin/env node
// Pull-through benchmark (issues 3 and 16). An upstream docker-registry (CNCF
// distribution 2.8) is seeded over HTTP; customs runs with
// `--upstream up=<upstream url>` and serves it as `up/<repo>`. Targets, all
// against a peer or floor measured in the same run (issue 16):
//   1. a cold pull of a 1 GiB blob through customs: >= 1.0x the throughput of
//      docker-registry's pull-through cache (the peer), >= 0.8x that of a pull
//      straight from the upstream, and <= 1.0x the peer's CPU-s per GiB, each
//      server's CPU counted until it is done with the pull (the peer stores its
//      copy from a second upstream GET after its client has every byte);
//   2. N concurrent cold pulls of a fresh blob through customs: <= 1.2x the time
//      of N concurrent warm pulls (the clients' own cost is the floor), with one
//      upstream GET.
// Also, measured in the same run:
//   - a pull through a bare node:http relay (bench/lib/relay.mjs: no hashing, no
//     storage): what piping node:http streams alone reaches, the reason customs
//     reads blob bodies with its own client (src/proxy/bulk-get.ts);
//   - the same cold pulls through docker-registry in proxy mode (distribution's
//     pull-through cache, the peer), with its upstream GET count;
//   - writing a new file of the blob's size (page cache, no fsync): what any
//     proxy that keeps what it pulls pays at least. On a VM that returns freed
//     memory to its host, fresh page-cache pages are slow to come by;
//   - the CPU budget of target 1: the CPU-seconds a pull at 0.8x direct may take
//     on this machine, against the work no caching proxy can skip (the upstream
//     sending, the client receiving, SHA-256 of the blob, the new file).
// Run by hand: `node bench/proxy.mjs [--help]`. Never part of npm test.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { benchOptions } from './lib/cli.mjs';
import { cpuSeconds, freePort, installCleanup, makeTempDir, run, setKeepTemp, spawnServer, waitCpuQuiet, waitFor, withCpu } from './lib/proc.mjs';
import { ensureBuilt, startCustoms, startDistribution } from './lib/servers.mjs';
import { GiB, checkManifest, diskWriteProbe, makeBlobFile, pushBlobFile, pushManifestFor, setVariant, warmFile } from './lib/oci.mjs';
import { download, median } from './lib/measure.mjs';
import { emitJson, fmt, machine, printTable, printTargets, target, waitIdle } from './lib/report.mjs';

const HELP = `usage: node bench/proxy.mjs [options]
  --size GIB          blob size (default 1)
  --reps N            cold single pulls (each of a fresh blob) and direct pulls, median reported (default 3)
  --clients N         concurrent cold pulls (default 32)
  --no-peer           skip docker-registry's proxy mode (the peer)`;

const opt = benchOptions({
  size: { type: 'string', default: '1' },
  reps: { type: 'string', default: '3' },
  clients: { type: 'string', default: '32' },
  'no-peer': { type: 'boolean', default: false },
}, HELP);
const size = Math.round(Number(opt.size) * GiB);
const reps = Number(opt.reps);
const clients = Number(opt.clients);
const log = (m) => process.stderr.write(`[bench:proxy] ${m}\n`);

installCleanup();
setKeepTemp(opt.keep);
const machineBefore = machine();
const busyBefore = await waitIdle(Number(opt['wait-idle']), log);
await ensureBuilt({ force: opt.build });

const files = makeTempDir('proxy-files');
const blobPath = join(files, 'blob');
const repo = 'bench/proxy';
log(`writing a ${fmt(size / GiB)} GiB blob`);
let variant = 0;
let digest = await makeBlobFile(blobPath, size, variant);

// The access log is on so we can count the upstream GETs per blob.
const upstream = await startDistribution({ quiet: false });
const customs = await startCustoms({ gate: 'off', extraArgs: ['--upstream', `up=${upstream.url}`, ...opt['customs-arg']], nodeArgs: opt['customs-node-arg'] });
log(`upstream ${upstream.url}, customs ${customs.url} --upstream up=${upstream.url}`);

const upstreamUrl = (d) => `${upstream.url}/v2/${repo}/blobs/${d}`;
const proxyUrl = (d) => `${customs.url}/v2/up/${repo}/blobs/${d}`;
const peer = opt['no-peer'] ? undefined : await startDistribution({ quiet: true, proxyTo: upstream.url });
if (peer) log(`peer: docker-registry ${peer.url} in proxy mode for ${upstream.url}`);
const peerUrl = (d) => `${peer.url}/v2/${repo}/blobs/${d}`;
const upstreamGets = (d) =>
  readFileSync(upstream.logFile, 'utf8')
    .split('\n')
    .filter((l) => l.includes(`"GET /v2/${repo}/blobs/${d}`)).length;

/**
 * A blob the proxy has never seen: new variant, pushed to the upstream as the
 * layer of a tagged manifest, warm in the upstream's page cache. Then, as a
 * client would, fetch the manifest through customs (not timed): customs serves
 * a blob only when it belongs to a manifest it has let through.
 */
async function freshUpstreamBlob() {
  digest = await setVariant(blobPath, ++variant);
  await warmFile(blobPath);
  await pushBlobFile(upstream, repo, blobPath, digest, size);
  const m = await pushManifestFor(upstream, repo, `v${variant}`, { digest, size });
  await download(upstreamUrl(digest), { size }); // the upstream's copy into the page cache
  await checkManifest(customs, `up/${repo}`, `v${variant}`, m.digest);
  await run('sync', []); // no writeback of the push during the timed pull
  return digest;
}

// --- direct from the upstream (baseline) -------------------------------------
await pushBlobFile(upstream, repo, blobPath, digest, size);
await download(upstreamUrl(digest), { size }); // warm-up
const direct = [];
const directCpu = [];
for (let i = 0; i < reps; i++) {
  log(`GET direct from upstream (${i + 1}/${reps})`);
  const [r, cpu] = await withCpu(upstream.pid, () => download(upstreamUrl(digest), { size }));
  direct.push(r.secs);
  directCpu.push(cpu / (size / GiB));
}

// The client's own CPU for one direct pull (curl to /dev/null; bash's `times` reports its children's).
const clientCpu = [];
for (let i = 0; i < reps; i++) {
  const r = await run('bash', ['-c', `curl -sS -o /dev/null '${upstreamUrl(digest)}'; times`]);
  const [user, sys] = (r.stdout.trim().split('\n')[1] ?? '').split(' ').map((t) => {
    const m = /^(\d+)m([\d.]+)s$/.exec(t);
    return m ? Number(m[1]) * 60 + Number(m[2]) : NaN;
  });
  clientCpu.push((user + sys) / (size / GiB));
}

// SHA-256 of the blob's size here, in this process (the same OpenSSL as customs's): CPU s per GiB.
const hashCpu = (() => {
  const buf = Buffer.alloc(64 * 1024 * 1024, 1);
  const rounds = Math.max(1, Math.round(size / buf.length));
  const runs = [];
  for (let r = 0; r < 3; r++) {
    const t = process.cpuUsage();
    const h = createHash('sha256');
    for (let i = 0; i < rounds; i++) h.update(buf);
    h.digest();
    const used = process.cpuUsage(t);
    runs.push((used.user + used.system) / 1e6 / ((rounds * buf.length) / GiB));
  }
  return median(runs);
})();

// --- through a bare Node relay (the floor of any Node proxy here) ----------------
const relayPort = await freePort();
const relayLog = join(makeTempDir('relay'), 'relay.log');
const relay = spawnServer(process.execPath, [join(import.meta.dirname, 'lib', 'relay.mjs'), upstream.url, String(relayPort)], { logFile: relayLog });
await waitFor('relay', async () => readFileSync(relayLog, 'utf8').includes('listening'), { exited: relay.exited });
const relayed = [];
const relayCpu = [];
for (let i = 0; i < reps; i++) {
  log(`GET through a bare node:http relay (${i + 1}/${reps})`);
  const [r, cpu] = await withCpu(relay.pid, () => download(`http://127.0.0.1:${relayPort}/v2/${repo}/blobs/${digest}`, { size }));
  relayed.push(r.secs);
  relayCpu.push(cpu / (size / GiB));
}
await relay.stop();

// --- cold single pulls through customs ----------------------------------------
const cold = [];
const warm = [];
const coldUpstreamGets = [];
const coldCpu = [];
const warmUpstreamGets = [];
for (let i = 0; i < reps; i++) {
  const d = await freshUpstreamBlob();
  log(`GET cold through customs (${i + 1}/${reps})`);
  const cpu0 = cpuSeconds(customs.pid);
  const [[r, upCpu], cpu] = await withCpu(customs.pid, () => withCpu(upstream.pid, () => download(proxyUrl(d), { headers: customs.headers, size })));
  cold.push(r.secs);
  // The fill's last file writes, fsync and commit finish after the client has its last byte.
  const doneAfter = await waitCpuQuiet(customs.pid);
  coldCpu.push({ customsSecsPerGiB: cpu / (size / GiB), customsUntilDoneSecsPerGiB: (cpuSeconds(customs.pid) - cpu0) / (size / GiB), doneSecsAfterClient: doneAfter, upstreamSecsPerGiB: upCpu / (size / GiB) });
  coldUpstreamGets.push(upstreamGets(d) - 1); // minus our own warm-up GET
  log(`GET warm (cached) through customs (${i + 1}/${reps})`);
  warm.push((await download(proxyUrl(d), { headers: customs.headers, size })).secs);
  warmUpstreamGets.push(upstreamGets(d) - 1 - coldUpstreamGets.at(-1)); // should be 0: served from the local copy
}

// --- the peer: docker-registry's pull-through cache ----------------------------
const peerCold = [];
const peerCpu = [];
const peerUpstreamGets = [];
let peerConc;
let peerConcUpstreamGets;
const peerDone = [];
if (peer) {
  for (let i = 0; i < reps; i++) {
    const d = await freshUpstreamBlob();
    log(`GET cold through docker-registry in proxy mode (${i + 1}/${reps})`);
    const cpu0 = cpuSeconds(peer.pid);
    const [r, cpu] = await withCpu(peer.pid, () => download(peerUrl(d), { size }));
    const atClient = upstreamGets(d) - 1;
    // Its client has every byte; its own copy comes from a second upstream GET that goes on (proxyblobstore.go's storeLocal).
    const doneAfter = await waitCpuQuiet(peer.pid);
    peerCold.push(r.secs);
    peerCpu.push(cpu / (size / GiB));
    peerDone.push({ cpuSecsPerGiB: (cpuSeconds(peer.pid) - cpu0) / (size / GiB), doneSecsAfterClient: doneAfter, upstreamGetsAtClientEnd: atClient });
    peerUpstreamGets.push(upstreamGets(d) - 1);
  }
  const d = await freshUpstreamBlob();
  log(`GET ${clients} concurrent cold pulls through docker-registry in proxy mode`);
  peerConc = await download(peerUrl(d), { size, clients });
  await waitCpuQuiet(peer.pid);
  peerConcUpstreamGets = upstreamGets(d) - 1;
}

// --- the floor: new bytes into the page cache -------------------------------------
log(`writing a new ${fmt(size / GiB)} GiB file (no fsync), ${reps} times`);
const newFile = [];
for (let i = 0; i < reps; i++) newFile.push(size / GiB / (await diskWriteProbe(files, size, { sync: false })));

// --- N concurrent cold pulls of one fresh blob --------------------------------
const dN = await freshUpstreamBlob();
log(`GET ${clients} concurrent cold pulls through customs`);
const concCold = await download(proxyUrl(dN), { headers: customs.headers, size, clients });
await waitCpuQuiet(customs.pid);
const concUpstreamGets = upstreamGets(dN) - 1;
const concWarmBefore = upstreamGets(dN);
log(`GET ${clients} concurrent warm pulls through customs (same blob, now cached)`);
const concWarm = await download(proxyUrl(dN), { headers: customs.headers, size, clients });
const concWarmUpstreamGets = upstreamGets(dN) - concWarmBefore;
log(`GET ${clients} concurrent pulls direct from upstream`);
const concDirect = await download(upstreamUrl(dN), { size, clients });

await Promise.all([upstream.stop(), customs.stop(), peer?.stop()]);

// --- report ---------------------------------------------------------------------
const gibps = (s, n = 1) => (n * size) / GiB / s;
const tDirect = median(direct);
const tCold = median(cold);
const tWarm = median(warm);
const tRelay = median(relayed);
const tPeer = peer ? median(peerCold) : undefined;
const tNewFile = median(newFile);
// Target 1 as CPU: at 0.8x direct a pull may take tDirect/0.8 s, i.e. that times the CPUs in CPU-seconds,
// whatever runs in parallel. The parts below must all fit in it, before the proxy's own receive and send.
const budget = {
  cpus: machineBefore.cpus,
  availableCpuSecs: (machineBefore.cpus * tDirect) / 0.8,
  upstreamSend: median(directCpu) * (size / GiB),
  clientReceive: median(clientCpu) * (size / GiB),
  sha256: hashCpu * (size / GiB),
  // Wall time of writing the new file, nearly all of it kernel time (the copy into fresh page-cache pages).
  newFile: tNewFile,
};
budget.unavoidableCpuSecs = budget.upstreamSend + budget.clientReceive + budget.sha256 + budget.newFile;
const customsCpu = median(coldCpu.map((c) => c.customsUntilDoneSecsPerGiB));
const peerCpuDone = peer ? median(peerDone.map((p) => p.cpuSecsPerGiB)) : undefined;
const results = {
  direct: { secs: tDirect, gibps: gibps(tDirect), runs: direct, upstreamCpuSecsPerGiB: median(directCpu) },
  bareNodeRelay: { secs: tRelay, gibps: gibps(tRelay), runs: relayed, relayCpuSecsPerGiB: median(relayCpu) },
  coldThroughCustoms: { secs: tCold, gibps: gibps(tCold), runs: cold, upstreamGets: coldUpstreamGets, cpu: coldCpu, cpuSecsPerGiBUntilDone: customsCpu },
  warmThroughCustoms: { secs: tWarm, gibps: gibps(tWarm), runs: warm, upstreamGets: warmUpstreamGets },
  concurrentCold: { clients, secs: concCold.secs, aggregateGibps: concCold.gibps, slowestClientSecs: Math.max(...concCold.clientSecs), upstreamGets: concUpstreamGets },
  concurrentWarm: { clients, secs: concWarm.secs, aggregateGibps: concWarm.gibps, upstreamGets: concWarmUpstreamGets },
  concurrentDirect: { clients, secs: concDirect.secs, aggregateGibps: concDirect.gibps },
  newFileWrite: { secs: tNewFile, runs: newFile },
  cpuBudget: budget,
  ...(peer && {
    coldThroughPeer: { secs: tPeer, gibps: gibps(tPeer), runs: peerCold, upstreamGets: peerUpstreamGets, peerCpuSecsPerGiBAtClientEnd: median(peerCpu), peerCpuSecsPerGiBUntilDone: peerCpuDone, done: peerDone },
    concurrentColdThroughPeer: { clients, secs: peerConc.secs, aggregateGibps: peerConc.gibps, upstreamGets: peerConcUpstreamGets },
  }),
};
const ratios = {
  cold_vs_direct_throughput: tDirect / tCold,
  bare_relay_vs_direct_throughput: tDirect / tRelay,
  cold_vs_bare_relay_throughput: tRelay / tCold,
  concurrent_cold_vs_one_cold_time: concCold.secs / tCold,
  concurrent_cold_vs_concurrent_warm_time: concCold.secs / concWarm.secs,
  concurrent_cold_vs_concurrent_direct_time: concCold.secs / concDirect.secs,
  cold_vs_new_file_write_time: tCold / tNewFile,
  ...(peer && {
    cold_vs_peer_throughput: tPeer / tCold,
    cold_cpu_vs_peer_cpu: customsCpu / peerCpuDone,
    cold_cpu_vs_peer_cpu_at_client_end: median(coldCpu.map((c) => c.customsSecsPerGiB)) / median(peerCpu),
    concurrent_cold_vs_peer_concurrent_cold_time: concCold.secs / peerConc.secs,
  }),
};
printTable(
  `customs pull-through bench (${fmt(size / GiB)} GiB blobs, ${reps} reps, median; ${machineBefore.cpus} CPUs)`,
  ['measure', 'seconds', 'GiB/s (aggregate)', 'upstream GETs', 'CPU s/GiB proxy', 'CPU s/GiB until done', 'CPU s/GiB upstream'],
  [
    ['1 pull direct from upstream', fmt(tDirect), fmt(gibps(tDirect)), '-', '-', '-', fmt(median(directCpu))],
    ['1 pull through a bare node:http relay', fmt(tRelay), fmt(gibps(tRelay)), '-', fmt(median(relayCpu)), '', ''],
    ['1 cold pull through customs', fmt(tCold), fmt(gibps(tCold)), coldUpstreamGets.join(','), fmt(median(coldCpu.map((c) => c.customsSecsPerGiB))), fmt(customsCpu), fmt(median(coldCpu.map((c) => c.upstreamSecsPerGiB)))],
    ['1 warm pull through customs', fmt(tWarm), fmt(gibps(tWarm)), warmUpstreamGets.join(','), '', '', ''],
    [`${clients} concurrent cold pulls through customs`, fmt(concCold.secs), fmt(concCold.gibps), String(concUpstreamGets), '', '', ''],
    [`${clients} concurrent warm pulls through customs`, fmt(concWarm.secs), fmt(concWarm.gibps), String(concWarmUpstreamGets), '', '', ''],
    [`${clients} concurrent pulls direct from upstream`, fmt(concDirect.secs), fmt(concDirect.gibps), '-', '', '', ''],
    ...(peer
      ? [
          ['1 cold pull through docker-registry proxy', fmt(tPeer), fmt(gibps(tPeer)), peerUpstreamGets.join(','), fmt(median(peerCpu)), fmt(peerCpuDone), ''],
          [`${clients} concurrent cold pulls through docker-registry proxy`, fmt(peerConc.secs), fmt(peerConc.gibps), String(peerConcUpstreamGets), '', '', ''],
        ]
      : []),
    ['a new file of the blob size written (no fsync)', fmt(tNewFile), fmt(gibps(tNewFile)), '-', '', '', ''],
  ],
);
console.log('("CPU s/GiB proxy": while its client downloads; "until done": until the server is idle again, its copy of the blob stored)');

const customsCpuAtClient = median(coldCpu.map((c) => c.customsSecsPerGiB));
// Each target carries the reason it is missed, from this run's own figures.
const targets = [
  ...(peer
    ? [
        target('1 cold pull through customs vs docker-registry proxy (throughput)', ratios.cold_vs_peer_throughput, '>=', 1.0),
        target('1 cold pull through customs vs docker-registry proxy (CPU-s per GiB, until done)', ratios.cold_cpu_vs_peer_cpu, '<=', 1.0),
      ]
    : []),
  target('1 cold pull through customs vs direct from upstream (throughput)', ratios.cold_vs_direct_throughput, '>=', 0.8),
  target(`${clients} concurrent cold pulls vs ${clients} concurrent warm pulls (time)`, ratios.concurrent_cold_vs_concurrent_warm_time, '<=', 1.2),
  target(`upstream GETs for ${clients} concurrent cold pulls`, concUpstreamGets, '<', 2, ''),
];
const why = {
  'throughput-peer': () =>
    `the peer's client path is a relay (no hashing, no file on it: it stores its copy from a second upstream GET afterwards); customs hashes and keeps the bytes on the way, ` +
    `${fmt(customsCpuAtClient)} CPU-s/GiB while its client downloads against the peer's ${fmt(median(peerCpu))}, on ${machineBefore.cpus} CPUs shared with the upstream and the client`,
  'throughput-direct': () =>
    `a pull at 0.8x direct may take ${fmt(budget.availableCpuSecs)} CPU-s here; the work no caching proxy can skip measures ${fmt(budget.unavoidableCpuSecs)} CPU-s ` +
    `(upstream ${fmt(budget.upstreamSend)}, client ${fmt(budget.clientReceive)}, SHA-256 ${fmt(budget.sha256)}, new file ${fmt(budget.newFile)}), customs itself ${fmt(customsCpuAtClient * (size / GiB))}`,
  cpu: () => `customs ${fmt(customsCpu)} CPU-s/GiB until its commit, the peer ${fmt(peerCpuDone)} until its copy is stored`,
  concurrent: () =>
    `${clients} cold pulls took ${fmt(concCold.secs)} s against ${fmt(concWarm.secs)} s warm and ${fmt(concDirect.secs)} s straight from the upstream: the upstream itself needs that long to send one copy while ${clients} clients receive theirs`,
  gets: () => `single flight broken: ${concUpstreamGets} upstream GETs`,
};
const reasons = [peer ? why['throughput-peer'] : undefined, peer ? why.cpu : undefined, why['throughput-direct'], why.concurrent, why.gets].filter(Boolean);
targets.forEach((t, i) => {
  if (t.pass === false) t.reason = reasons[i]();
});
printTargets(targets);
for (const t of targets.filter((x) => x.pass === false)) process.stdout.write(`missed: ${t.name}: ${t.reason}\n`);

process.stdout.write(
  `\n(a bare node:http relay, no hashing or storage, reaches ${fmt(ratios.bare_relay_vs_direct_throughput)}x direct here: node:http's own streams cost that much;\n` +
    ` a cold pull through customs reaches ${fmt(ratios.cold_vs_bare_relay_throughput)}x the relay)\n`,
);
if (peer) {
  const p = peerDone;
  process.stdout.write(
    `\n(docker-registry's proxy answers its client from one upstream GET and stores its own copy from a second one: at its client's end it has used\n` +
      ` ${fmt(median(peerCpu))} CPU-s/GiB and the upstream had logged ${p.map((x) => x.upstreamGetsAtClientEnd).join(',')} GET(s); it went on for ${p.map((x) => fmt(x.doneSecsAfterClient, 1)).join(', ')} s more,\n` +
      ` ${fmt(peerCpuDone)} CPU-s/GiB in all, ${peerUpstreamGets.join(',')} upstream GETs. Timed and counted at the client's end only, as this bench did before,\n` +
      ` the peer looks ${fmt(peerCpuDone / median(peerCpu))}x cheaper than it is, and its background copy runs into the next measurement)\n`,
  );
}
process.stdout.write(
  `\n(${clients} x ${fmt(size / GiB)} GiB = ${fmt((clients * size) / GiB, 0)} GiB reach the clients; cold/warm time = ${fmt(ratios.concurrent_cold_vs_concurrent_warm_time)}x, cold/direct = ${fmt(ratios.concurrent_cold_vs_concurrent_direct_time)}x, cold/one cold = ${fmt(ratios.concurrent_cold_vs_one_cold_time)}x)\n`,
);
process.stdout.write(
  `\n(keeping the blob costs at least a new ${fmt(size / GiB)} GiB file here: ${fmt(tNewFile)} s, against ${fmt(tDirect)} s for the whole direct pull;\n` +
    ` a cold pull through customs takes ${fmt(ratios.cold_vs_new_file_write_time)}x that floor)\n`,
);
emitJson({ bench: 'pull-through', date: new Date().toISOString(), machine: machineBefore, cpuBusyBefore: busyBefore, loadavgAfter: machine().loadavg, params: { sizeGiB: size / GiB, reps, clients }, results, ratios, targets }, opt.json);
process.exitCode = targets.some((t) => t.pass === false) ? 2 : 0;
