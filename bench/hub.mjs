#!/usr/bin/env node
// Hugging Face Hub API benchmark (issue 20). A test Hub (bench/lib/test-hub.mjs: its API in
// this process, LFS files redirected to nginx with sendfile, as huggingface.co redirects to
// its CDN) and a docker-registry upstream; customs serves both: the Hub through
// `hub.upstreams` (HF_ENDPOINT=<customs>/hf/hf.co), the registry through `--upstream up=`.
// In the same run:
//   1. a cold download of a fresh safetensors file through customs' Hub API
//      (`/hf/hf.co/<id>/resolve/main/model.safetensors`), against
//        - the same download straight from the test Hub (curl -L: 302, then nginx), and
//        - customs' own OCI cold pull of a blob of the same size from the registry
//          (target: the Hub path >= 1.0x the OCI path's throughput);
//   2. a warm download of that file (stored) through the Hub API against customs' warm
//      OCI blob GET of the same blob (target >= 0.9x).
// Each cold run uses bytes customs has never seen; the revision is resolved (and its small
// files imported) before the timed GET, as the OCI pull fetches its manifest first.
// Run by hand: `node bench/hub.mjs [--help]`. Never part of npm test.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { benchOptions } from './lib/cli.mjs';
import { installCleanup, makeTempDir, run, setKeepTemp, withCpu } from './lib/proc.mjs';
import { ensureBuilt, startCustoms, startDistribution } from './lib/servers.mjs';
import { GiB, checkManifest, makeBlobFile, pushBlobFile, pushManifestFor, setVariant, warmFile } from './lib/oci.mjs';
import { download, median } from './lib/measure.mjs';
import { emitJson, fmt, machine, printTable, printTargets, target, waitIdle } from './lib/report.mjs';
import { startTestHub } from './lib/test-hub.mjs';

const HELP = `usage: node bench/hub.mjs [options]
  --size GIB          file size (default 1)
  --reps N            cold downloads (each of fresh bytes), direct and warm ones; median reported (default 3)`;

const opt = benchOptions({ size: { type: 'string', default: '1' }, reps: { type: 'string', default: '3' } }, HELP);
const size = Math.round(Number(opt.size) * GiB);
const reps = Number(opt.reps);
const log = (m) => process.stderr.write(`[bench:hub] ${m}\n`);

installCleanup();
setKeepTemp(opt.keep);
const machineBefore = machine();
const busyBefore = await waitIdle(Number(opt['wait-idle']), log);
await ensureBuilt({ force: opt.build });

const files = makeTempDir('hub-files');
const hub = await startTestHub();
const upstream = await startDistribution({ quiet: true });
const configFile = join(makeTempDir('hub-config'), 'customs.json');
writeFileSync(configFile, JSON.stringify({ hub: { upstreams: [{ name: 'hf.co', url: hub.url }] } }));
const customs = await startCustoms({ gate: 'off', extraArgs: ['--config', configFile, '--upstream', `up=${upstream.url}`, ...opt['customs-arg']], nodeArgs: opt['customs-node-arg'] });
log(`test Hub ${hub.url} (CDN ${hub.cdnUrl}), registry ${upstream.url}, customs ${customs.url}`);

/** A fresh safetensors file in a new repo of the test Hub, warm in the page cache. */
let repos = 0;
async function freshHubRepo() {
  const i = repos++;
  const path = join(files, `hub-${i}.safetensors`);
  const digest = await makeBlobFile(path, size, 1000 + i);
  hub.addRepo(`acme/m${i}`, { name: 'model.safetensors', path, sha256: digest.slice(7), size });
  await warmFile(path);
  await run('sync', []);
  return { id: `acme/m${i}`, digest };
}

const hubDirect = (id) => `${hub.url}/${id}/resolve/main/model.safetensors`;
const hubViaCustoms = (id) => `${customs.url}/hf/hf.co/${id}/resolve/main/model.safetensors`;
const ociViaCustoms = (repo, d) => `${customs.url}/v2/${repo}/blobs/${d}`;

// --- straight from the test Hub (baseline) ------------------------------------------
const first = await freshHubRepo();
await download(hubDirect(first.id), { size, follow: true }); // warm-up
const direct = [];
for (let i = 0; i < reps; i++) {
  log(`GET straight from the test Hub (${i + 1}/${reps})`);
  direct.push((await download(hubDirect(first.id), { size, follow: true })).secs);
}

// --- cold and warm through customs' Hub API ---------------------------------------------
const cold = [];
const coldCpu = [];
const warm = [];
const warmOci = [];
for (let i = 0; i < reps; i++) {
  const r = await freshHubRepo();
  await download(hubDirect(r.id), { size, follow: true }); // the CDN's copy into the page cache
  // Untimed: the revision resolved and imported (small files, manifest), as a client's HEAD does.
  const info = await fetch(`${customs.url}/hf/hf.co/api/models/${r.id}/revision/main`, { headers: customs.headers });
  if (info.status !== 200) throw new Error(`customs: model info of ${r.id}: HTTP ${info.status} ${await info.text()}`);
  await info.arrayBuffer();
  log(`GET cold through customs' Hub API (${i + 1}/${reps})`);
  const [d, cpu] = await withCpu(customs.pid, () => download(hubViaCustoms(r.id), { headers: customs.headers, size }));
  cold.push(d.secs);
  coldCpu.push(cpu / (size / GiB));
  log(`GET warm through the Hub API and as an OCI blob (${i + 1}/${reps})`);
  warm.push((await download(hubViaCustoms(r.id), { headers: customs.headers, size })).secs);
  warmOci.push((await download(ociViaCustoms(`hf.co/${r.id}`, r.digest), { headers: customs.headers, size })).secs);
}

// --- customs' own OCI cold pull (pull-through from the registry) ------------------------
const ociPath = join(files, 'oci.blob');
const repo = 'bench/hub';
let variant = 0;
await makeBlobFile(ociPath, size, variant);
const ociCold = [];
const ociCpu = [];
for (let i = 0; i < reps; i++) {
  const d = await setVariant(ociPath, ++variant);
  await warmFile(ociPath);
  await pushBlobFile(upstream, repo, ociPath, d, size);
  const m = await pushManifestFor(upstream, repo, `v${variant}`, { digest: d, size });
  await download(`${upstream.url}/v2/${repo}/blobs/${d}`, { size }); // the registry's copy into the page cache
  await checkManifest(customs, `up/${repo}`, `v${variant}`, m.digest);
  await run('sync', []);
  log(`GET cold through customs' OCI pull-through (${i + 1}/${reps})`);
  const [r, cpu] = await withCpu(customs.pid, () => download(ociViaCustoms(`up/${repo}`, d), { headers: customs.headers, size }));
  ociCold.push(r.secs);
  ociCpu.push(cpu / (size / GiB));
}

await Promise.all([customs.stop(), upstream.stop(), hub.stop()]);

// --- report ------------------------------------------------------------------------------
const gibps = (s) => size / GiB / s;
const t = { direct: median(direct), cold: median(cold), ociCold: median(ociCold), warm: median(warm), warmOci: median(warmOci) };
const results = {
  directFromTestHub: { secs: t.direct, gibps: gibps(t.direct), runs: direct },
  coldThroughHubApi: { secs: t.cold, gibps: gibps(t.cold), runs: cold, customsCpuSecsPerGiB: median(coldCpu) },
  coldThroughOciPullThrough: { secs: t.ociCold, gibps: gibps(t.ociCold), runs: ociCold, customsCpuSecsPerGiB: median(ociCpu) },
  warmThroughHubApi: { secs: t.warm, gibps: gibps(t.warm), runs: warm },
  warmOciBlobGet: { secs: t.warmOci, gibps: gibps(t.warmOci), runs: warmOci },
};
const ratios = {
  cold_hub_vs_cold_oci_throughput: t.ociCold / t.cold,
  cold_hub_vs_direct_throughput: t.direct / t.cold,
  warm_hub_vs_warm_oci_throughput: t.warmOci / t.warm,
};
printTable(
  `customs Hugging Face API bench (${fmt(size / GiB)} GiB files, ${reps} reps, median; ${machineBefore.cpus} CPUs)`,
  ['measure', 'seconds', 'GiB/s', 'CPU s/GiB customs'],
  [
    ['straight from the test Hub (302 + nginx)', fmt(t.direct), fmt(gibps(t.direct)), '-'],
    ['cold through customs Hub API', fmt(t.cold), fmt(gibps(t.cold)), fmt(median(coldCpu))],
    ['cold through customs OCI pull-through', fmt(t.ociCold), fmt(gibps(t.ociCold)), fmt(median(ociCpu))],
    ['warm through customs Hub API', fmt(t.warm), fmt(gibps(t.warm)), '-'],
    ['warm customs OCI blob GET', fmt(t.warmOci), fmt(gibps(t.warmOci)), '-'],
  ],
);
const targets = [
  target('cold Hub API / cold OCI pull-through (throughput)', ratios.cold_hub_vs_cold_oci_throughput, '>=', 1.0),
  target('warm Hub API / warm OCI blob GET (throughput)', ratios.warm_hub_vs_warm_oci_throughput, '>=', 0.9),
];
printTargets(targets);
emitJson({ bench: 'hub', size, reps, machine: machineBefore, busyBefore, results, ratios, targets }, opt.json);
if (targets.some((x) => x.pass === false)) process.exitCode = 2;
