#!/usr/bin/env node
// Pull-through benchmark (issue 3). An upstream docker-registry (CNCF
// distribution 2.8) is seeded over HTTP; customs runs with
// `--upstream up=<upstream url>` and serves it as `up/<repo>`.
//   1. cold pull of a 1 GiB blob through customs vs a pull straight from the
//      upstream (target >= 0.8x the upstream's throughput);
//   2. 32 concurrent cold pulls of a fresh 1 GiB blob through customs
//      (target < 1.3x the time of one cold pull), with the number of GETs the
//      upstream saw for that blob (single-flight: 1).
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
import { freePort, installCleanup, makeTempDir, run, setKeepTemp, spawnServer, waitFor, withCpu } from './lib/proc.mjs';
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
  const [[r, upCpu], cpu] = await withCpu(customs.pid, () => withCpu(upstream.pid, () => download(proxyUrl(d), { headers: customs.headers, size })));
  cold.push(r.secs);
  coldCpu.push({ customsSecsPerGiB: cpu / (size / GiB), upstreamSecsPerGiB: upCpu / (size / GiB) });
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
if (peer) {
  for (let i = 0; i < reps; i++) {
    const d = await freshUpstreamBlob();
    log(`GET cold through docker-registry in proxy mode (${i + 1}/${reps})`);
    const [r, cpu] = await withCpu(peer.pid, () => download(peerUrl(d), { size }));
    peerCold.push(r.secs);
    peerCpu.push(cpu / (size / GiB));
    peerUpstreamGets.push(upstreamGets(d) - 1);
  }
  const d = await freshUpstreamBlob();
  log(`GET ${clients} concurrent cold pulls through docker-registry in proxy mode`);
  peerConc = await download(peerUrl(d), { size, clients });
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
const results = {
  direct: { secs: tDirect, gibps: gibps(tDirect), runs: direct, upstreamCpuSecsPerGiB: median(directCpu) },
  bareNodeRelay: { secs: tRelay, gibps: gibps(tRelay), runs: relayed, relayCpuSecsPerGiB: median(relayCpu) },
  coldThroughCustoms: { secs: tCold, gibps: gibps(tCold), runs: cold, upstreamGets: coldUpstreamGets, cpu: coldCpu },
  warmThroughCustoms: { secs: tWarm, gibps: gibps(tWarm), runs: warm, upstreamGets: warmUpstreamGets },
  concurrentCold: { clients, secs: concCold.secs, aggregateGibps: concCold.gibps, slowestClientSecs: Math.max(...concCold.clientSecs), upstreamGets: concUpstreamGets },
  concurrentWarm: { clients, secs: concWarm.secs, aggregateGibps: concWarm.gibps, upstreamGets: concWarmUpstreamGets },
  concurrentDirect: { clients, secs: concDirect.secs, aggregateGibps: concDirect.gibps },
  newFileWrite: { secs: tNewFile, runs: newFile },
  cpuBudget: budget,
  ...(peer && {
    coldThroughPeer: { secs: tPeer, gibps: gibps(tPeer), runs: peerCold, upstreamGets: peerUpstreamGets, peerCpuSecsPerGiB: median(peerCpu) },
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
    concurrent_cold_vs_peer_concurrent_cold_time: concCold.secs / peerConc.secs,
  }),
};
printTable(
  `customs pull-through bench (${fmt(size / GiB)} GiB blobs, ${reps} reps, median; ${machineBefore.cpus} CPUs)`,
  ['measure', 'seconds', 'GiB/s (aggregate)', 'upstream GETs', 'CPU s/GiB proxy', 'CPU s/GiB upstream'],
  [
    ['1 pull direct from upstream', fmt(tDirect), fmt(gibps(tDirect)), '-', '-', fmt(median(directCpu))],
    ['1 pull through a bare node:http relay', fmt(tRelay), fmt(gibps(tRelay)), '-', fmt(median(relayCpu)), ''],
    ['1 cold pull through customs', fmt(tCold), fmt(gibps(tCold)), coldUpstreamGets.join(','), fmt(median(coldCpu.map((c) => c.customsSecsPerGiB))), fmt(median(coldCpu.map((c) => c.upstreamSecsPerGiB)))],
    ['1 warm pull through customs', fmt(tWarm), fmt(gibps(tWarm)), warmUpstreamGets.join(','), '', ''],
    [`${clients} concurrent cold pulls through customs`, fmt(concCold.secs), fmt(concCold.gibps), String(concUpstreamGets), '', ''],
    [`${clients} concurrent warm pulls through customs`, fmt(concWarm.secs), fmt(concWarm.gibps), String(concWarmUpstreamGets), '', ''],
    [`${clients} concurrent pulls direct from upstream`, fmt(concDirect.secs), fmt(concDirect.gibps), '-', '', ''],
    ...(peer
      ? [
          ['1 cold pull through docker-registry proxy', fmt(tPeer), fmt(gibps(tPeer)), peerUpstreamGets.join(','), fmt(median(peerCpu)), ''],
          [`${clients} concurrent cold pulls through docker-registry proxy`, fmt(peerConc.secs), fmt(peerConc.gibps), String(peerConcUpstreamGets), '', ''],
        ]
      : []),
    ['a new file of the blob size written (no fsync)', fmt(tNewFile), fmt(gibps(tNewFile)), '-', '', ''],
  ],
);
const targets = [
  target('cold pull through customs vs direct (throughput)', ratios.cold_vs_direct_throughput, '>=', 0.8),
  target(`${clients} concurrent cold pulls vs 1 cold pull (time)`, ratios.concurrent_cold_vs_one_cold_time, '<', 1.3),
  target(`upstream GETs for ${clients} concurrent cold pulls`, concUpstreamGets, '<', 2, ''),
];
printTargets(targets);
process.stdout.write(
  `\n(a bare node:http relay, no hashing or storage, reaches ${fmt(ratios.bare_relay_vs_direct_throughput)}x direct here: node:http's own streams cost that much;\n` +
    ` a cold pull through customs reaches ${fmt(ratios.cold_vs_bare_relay_throughput)}x the relay)\n`,
);
process.stdout.write(
  `\n(${clients} x ${fmt(size / GiB)} GiB = ${fmt((clients * size) / GiB, 0)} GiB reach the clients; on this machine that is bounded by loopback/client CPU,\n` +
    ` so also compare with ${clients} warm pulls: cold/warm time = ${fmt(ratios.concurrent_cold_vs_concurrent_warm_time)}x, cold/direct = ${fmt(ratios.concurrent_cold_vs_concurrent_direct_time)}x)\n`,
);
process.stdout.write(
  `\n(keeping the blob costs at least a new ${fmt(size / GiB)} GiB file here: ${fmt(tNewFile)} s, against ${fmt(tDirect)} s for the whole direct pull;\n` +
    ` a cold pull through customs takes ${fmt(ratios.cold_vs_new_file_write_time)}x that floor` +
    (peer ? `; docker-registry's own pull-through cache reaches ${fmt(gibps(tPeer))} GiB/s, customs ${fmt(ratios.cold_vs_peer_throughput)}x that)\n` : ')\n'),
);
process.stdout.write(
  `\n(CPU budget of the 0.8x target: a pull at 0.8x direct takes ${fmt(tDirect / 0.8)} s, ${fmt(budget.availableCpuSecs)} CPU-s on ${budget.cpus} CPUs;\n` +
    ` what no caching proxy can skip measures ${fmt(budget.unavoidableCpuSecs)} CPU-s here: upstream sending ${fmt(budget.upstreamSend)}, client receiving ${fmt(budget.clientReceive)},\n` +
    ` SHA-256 ${fmt(budget.sha256)}, the new file ${fmt(budget.newFile)}; before the proxy receives or sends a byte, ` +
    (budget.unavoidableCpuSecs >= budget.availableCpuSecs ? 'already over budget: the target cannot be met on this machine)\n' : `${fmt(budget.availableCpuSecs - budget.unavoidableCpuSecs)} CPU-s are left for that)\n`),
);
emitJson({ bench: 'pull-through', date: new Date().toISOString(), machine: machineBefore, cpuBusyBefore: busyBefore, loadavgAfter: machine().loadavg, params: { sizeGiB: size / GiB, reps, clients }, results, ratios, targets }, opt.json);
process.exitCode = targets.some((t) => t.pass === false) ? 2 : 0;
