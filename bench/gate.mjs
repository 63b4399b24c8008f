#!/usr/bin/env node
// Verification gate benchmark (issue 4). Two customs processes with the same
// config and data layout, differing only in `--gate off` vs `--gate enforce`:
//   1. manifest GET rps (wrk -c32) of a signed artifact whose verdict is cached,
//      enforce vs off (target >= 0.9x);
//   2. cold verification: first GET of freshly pushed artifacts, each with a
//      signature, an SBOM and SLSA provenance as referrers, minus the first GET
//      of the same artifacts with the gate off (target < 20 ms).
// The signing key is generated here and dropped into <data>/trust/keys/; the
// bundles are key-only sigstore bundles v0.3 (DSSE, in-toto v1), no tlog.
// Run by hand: `node bench/gate.mjs [--help]`. Never part of npm test.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { benchOptions } from './lib/cli.mjs';
import { installCleanup, makeTempDir, setKeepTemp } from './lib/proc.mjs';
import { ensureBuilt, startCustoms } from './lib/servers.mjs';
import { OCI_MANIFEST, pushSmallImage } from './lib/oci.mjs';
import { median, wrk } from './lib/measure.mjs';
import { makeKey, pushProvenance, pushSbom, pushSignature } from './lib/sign.mjs';
import { coldVerifyLibrary } from './lib/gate-library.mjs';
import { emitJson, fmt, machine, printTable, printTargets, target, waitIdle } from './lib/report.mjs';

const HELP = `usage: node bench/gate.mjs [options]
  --policy full|sig   full: signature + SLSA provenance attestation + SBOM required (config file);
                      sig: no config file, the built-in default (one signature by a key in <data>/trust/keys)
                      (default full)
  --reps N            wrk runs per mode, interleaved, median reported (default 3)
  --wrk-seconds N     seconds per wrk run (default 10)
  --cold N            artifacts for the cold-verification measurement (default 30)`;

const opt = benchOptions({
  policy: { type: 'string', default: 'full' },
  reps: { type: 'string', default: '3' },
  'wrk-seconds': { type: 'string', default: '10' },
  cold: { type: 'string', default: '30' },
}, HELP);
const reps = Number(opt.reps);
const wrkSeconds = Number(opt['wrk-seconds']);
const coldN = Number(opt.cold);
const log = (m) => process.stderr.write(`[bench:gate] ${m}\n`);

installCleanup();
setKeepTemp(opt.keep);
const machineBefore = machine();
const busyBefore = await waitIdle(Number(opt['wait-idle']), log);
await ensureBuilt({ force: opt.build });

const key = makeKey();
const extraArgs = [...opt['customs-arg']];
const trusted = [{ trustedKeys: true }];
/** The policy slice for --policy full; undefined (the built-in default) for sig. */
const policy =
  opt.policy === 'full'
    ? {
        default: 'deny',
        rules: [
          {
            name: 'bench',
            match: '**',
            mode: 'enforce',
            signatures: { threshold: 1, authorities: trusted },
            attestations: [{ predicateType: 'https://slsa.dev/provenance/', authorities: trusted }],
            sbom: { required: true },
          },
        ],
      }
    : undefined;
if (opt.policy === 'full') {
  const cfgDir = makeTempDir('gate-config');
  const cfg = join(cfgDir, 'customs.json');
  writeFileSync(cfg, JSON.stringify({ policy }));
  extraArgs.push('--config', cfg);
} else if (opt.policy !== 'sig') throw new Error(`--policy must be full or sig`);

const prepare = (dataDir) => {
  mkdirSync(join(dataDir, 'trust', 'keys'), { recursive: true });
  writeFileSync(join(dataDir, 'trust', 'keys', 'bench.pub'), key.publicKeyPem);
};
const nodeArgs = opt['customs-node-arg'];
const off = await startCustoms({ label: 'customs-gate-off', gate: 'off', extraArgs, nodeArgs, prepare });
const on = await startCustoms({ label: 'customs-gate-enforce', gate: 'enforce', extraArgs, nodeArgs, prepare });
log(`gate off ${off.url}, gate enforce ${on.url} (policy: ${opt.policy})`);

/** An image plus signature, SBOM and provenance referrers. */
async function pushSigned(reg, repo, tag, n = 0) {
  const img = await pushSmallImage(reg, repo, tag, { annotations: { 'org.opencontainers.image.title': `customs gate bench ${n}` } });
  await pushSignature(reg, repo, key, img);
  await pushSbom(reg, repo, img);
  await pushProvenance(reg, repo, key, img);
  return img;
}

async function getManifest(reg, repo, ref) {
  const t0 = performance.now();
  const res = await fetch(`${reg.url}/v2/${repo}/manifests/${ref}`, { headers: { ...reg.headers, accept: OCI_MANIFEST } });
  const body = await res.text();
  return { status: res.status, body, ms: performance.now() - t0 };
}

// --- set-up and sanity: the gate must really be enforcing -------------------------
const repo = 'bench/model';
for (const reg of [off, on]) await pushSigned(reg, repo, 'v1');
const signed = await getManifest(on, repo, 'v1');
if (signed.status !== 200) throw new Error(`gate enforce: the signed artifact is not served (HTTP ${signed.status}): ${signed.body.slice(0, 600)}`);
await pushSmallImage(on, 'bench/unsigned', 'v1');
const unsigned = await getManifest(on, 'bench/unsigned', 'v1');
const enforcing = unsigned.status === 403;
if (!enforcing) log(`warning: gate enforce served an UNSIGNED artifact (HTTP ${unsigned.status}); the comparison below means nothing`);

// --- 1. rps with a cached verdict vs gate off ------------------------------------
const url = (reg) => `${reg.url}/v2/${repo}/manifests/v1`;
const headers = (reg) => ({ ...reg.headers, accept: OCI_MANIFEST });
for (const reg of [off, on]) await wrk(url(reg), { headers: headers(reg), seconds: 2 }); // warm-up (verdict cached, JIT)
const runs = { off: [], enforce: [] };
const p99 = { off: [], enforce: [] };
for (let i = 0; i < reps; i++) {
  for (const [mode, reg] of [['off', off], ['enforce', on]]) {
    log(`wrk gate ${mode} (${i + 1}/${reps})`);
    const w = await wrk(url(reg), { headers: headers(reg), seconds: wrkSeconds });
    if (w.non2xx || w.socketErrors) log(`warning: gate ${mode}: ${w.non2xx} non-2xx, ${w.socketErrors} socket errors`);
    runs[mode].push(w.rps);
    p99[mode].push(w.p99ms);
  }
}

// --- 2. cold verification ----------------------------------------------------------
const cold = { off: [], enforce: [], enforceCached: [], offCached: [] };
const coldRepo = 'bench/cold';
log(`pushing ${coldN} signed artifacts (signature + SBOM + provenance) to both`);
for (let i = 0; i < coldN; i++) for (const reg of [off, on]) await pushSigned(reg, coldRepo, `v${i}`, i + 1);
for (let i = 0; i < coldN; i++) {
  for (const [mode, reg] of [['off', off], ['enforce', on]]) {
    const first = await getManifest(reg, coldRepo, `v${i}`);
    if (first.status !== 200) throw new Error(`gate ${mode}: cold artifact v${i}: HTTP ${first.status} ${first.body.slice(0, 400)}`);
    const again = await getManifest(reg, coldRepo, `v${i}`);
    cold[mode].push(first.ms);
    cold[mode === 'off' ? 'offCached' : 'enforceCached'].push(again.ms);
  }
}

await Promise.all([off.stop(), on.stop()]);

// --- 3. cold verification in the library alone (no HTTP, content in memory) --------------
log(`library: verifying ${coldN} artifacts once each (signature + SBOM + provenance)`);
const libMs = await coldVerifyLibrary({ key, policy, n: coldN });

// --- report ----------------------------------------------------------------------
const rpsOff = median(runs.off);
const rpsOn = median(runs.enforce);
const coldVerifyMs = median(cold.enforce) - median(cold.off);
const results = {
  enforcing,
  unsignedStatus: unsigned.status,
  manifestGet: { off: { rps: rpsOff, p99ms: median(p99.off), runs: runs.off }, enforceCached: { rps: rpsOn, p99ms: median(p99.enforce), runs: runs.enforce } },
  firstGetMs: { off: median(cold.off), enforce: median(cold.enforce), offMax: Math.max(...cold.off), enforceMax: Math.max(...cold.enforce) },
  secondGetMs: { off: median(cold.offCached), enforce: median(cold.enforceCached) },
  coldVerifyMs,
  libraryColdVerifyMs: { median: median(libMs), max: Math.max(...libMs) },
};
printTable(
  `customs gate bench (policy ${opt.policy}; wrk -c32, ${reps} x ${wrkSeconds} s, median; ${machineBefore.cpus} CPUs)`,
  ['measure', 'gate off', 'gate enforce', 'enforce/off'],
  [
    ['manifest GET (req/s)', fmt(rpsOff, 0), fmt(rpsOn, 0), fmt(rpsOn / rpsOff)],
    ['manifest GET p99 (ms)', fmt(median(p99.off)), fmt(median(p99.enforce)), fmt(median(p99.enforce) / median(p99.off))],
    [`first GET of a new artifact, median of ${coldN} (ms)`, fmt(median(cold.off)), fmt(median(cold.enforce)), '-'],
    ['second GET (ms)', fmt(median(cold.offCached)), fmt(median(cold.enforceCached)), '-'],
    [`library: one cold verification, median of ${coldN} (max) (ms)`, '-', `${fmt(median(libMs))} (${fmt(Math.max(...libMs))})`, '-'],
  ],
);
const targets = [
  target('manifest GET rps, cached verdict vs gate off', enforcing ? rpsOn / rpsOff : NaN, '>=', 0.9),
  target('cold verification (first GET enforce - off, median)', enforcing ? coldVerifyMs : NaN, '<', 20, ' ms'),
  target('cold verification in the library (median)', median(libMs), '<', 20, ' ms'),
];
printTargets(targets);
emitJson({ bench: 'gate', date: new Date().toISOString(), machine: machineBefore, cpuBusyBefore: busyBefore, loadavgAfter: machine().loadavg, params: { policy: opt.policy, reps, wrkSeconds, coldN }, results, targets }, opt.json);
process.exitCode = !enforcing || targets.some((t) => t.pass === false) ? 2 : 0;
