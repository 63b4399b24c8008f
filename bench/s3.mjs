#!/usr/bin/env node
// Scale-out benchmark (issue 7): customs with blobs in S3 (Debian's Ceph RGW) and
// metadata in PostgreSQL 15, against the AWS SDK talking to the same RGW directly.
//   GET: curl downloads a blob through customs (which streams it from RGW) vs the
//        SDK's GetObject of the same object, body drained (target >= 0.8x);
//   GET via redirect: a second customs replica on the same bucket and database with
//        storage.redirect enabled answers 307 to a presigned URL and curl -L fetches
//        the blob from RGW itself, vs the same SDK GetObject (target >= 0.9x: only
//        one small round trip through customs is added);
//   PUT: curl pushes a blob to customs (monolithic PUT; customs hashes and uploads
//        it as a multipart upload) vs the SDK's multipart Upload (lib-storage) of
//        the same file with the same part size and concurrency (target >= 0.8x).
// Starts PostgreSQL and Ceph itself (~20 s). Run by hand: `node bench/s3.mjs [--help]`.
import { createReadStream, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { benchOptions } from './lib/cli.mjs';
import { performance } from 'node:perf_hooks';
import { CreateBucketCommand, GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { installCleanup, makeTempDir, setKeepTemp } from './lib/proc.mjs';
import { ensureBuilt, startCustoms } from './lib/servers.mjs';
import { GiB, MiB, makeBlobFile, pushBlobFile, setVariant, warmFile } from './lib/oci.mjs';
import { download, median } from './lib/measure.mjs';
import { emitJson, fmt, machine, printTable, printTargets, target, waitIdle } from './lib/report.mjs';
import { startCephRgw, startPostgres } from './s3-servers.mjs';

const HELP = `usage: node bench/s3.mjs [options]
  --size GIB          blob size (default 1)
  --reps N            repetitions per measurement, median reported (default 3)
  --part-mib N        multipart part size for both customs and the SDK (default 8)
  --concurrency N     parts in flight for both (default 4)`;

const opt = benchOptions({
  size: { type: 'string', default: '1' },
  reps: { type: 'string', default: '3' },
  'part-mib': { type: 'string', default: '8' },
  concurrency: { type: 'string', default: '4' },
}, HELP);
const size = Math.round(Number(opt.size) * GiB);
const reps = Number(opt.reps);
const partMiB = Number(opt['part-mib']);
const concurrency = Number(opt.concurrency);
const log = (m) => process.stderr.write(`[bench:s3] ${m}\n`);
// CPU seconds used, a figure the machine's other load distorts less than throughput:
// this process (the SDK client) and customs (from /proc; clock ticks of 1/100 s).
const selfCpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};
const pidCpu = (pid) => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
};
setKeepTemp(opt.keep);
installCleanup();
await ensureBuilt({ force: opt.build });

log('starting PostgreSQL and Ceph RGW');
const [pgServer, ceph] = await Promise.all([startPostgres(), startCephRgw()]);
const bucket = 'customs-bench';
const s3 = new S3Client({
  endpoint: ceph.endpoint,
  region: ceph.region,
  forcePathStyle: true,
  credentials: { accessKeyId: ceph.accessKeyId, secretAccessKey: ceph.secretAccessKey },
  requestChecksumCalculation: 'WHEN_REQUIRED',
  responseChecksumValidation: 'WHEN_REQUIRED',
});
await s3.send(new CreateBucketCommand({ Bucket: bucket }));
process.env.AWS_ACCESS_KEY_ID = ceph.accessKeyId;
process.env.AWS_SECRET_ACCESS_KEY = ceph.secretAccessKey;

const dir = makeTempDir('s3');
const configFile = join(dir, 'config.json');
const storageConfig = { driver: 's3', bucket, prefix: 'customs/', endpoint: ceph.endpoint, region: ceph.region, forcePathStyle: true, partSizeMiB: partMiB, partConcurrency: concurrency };
writeFileSync(configFile, JSON.stringify({ storage: storageConfig, metadata: { driver: 'postgres', url: pgServer.url } }));
const customs = await startCustoms({ extraArgs: ['--config', configFile], quiet: true, label: 'customs-s3' });
// A second replica sharing the bucket and database, with blob GETs redirected to presigned URLs.
const redirectConfigFile = join(dir, 'config-redirect.json');
writeFileSync(redirectConfigFile, JSON.stringify({ storage: { ...storageConfig, redirect: { enabled: true } }, metadata: { driver: 'postgres', url: pgServer.url } }));
const customsRedirect = await startCustoms({ extraArgs: ['--config', redirectConfigFile], quiet: true, label: 'customs-s3-redirect' });
await waitIdle(Number(opt['wait-idle']), log);

const file = join(dir, 'blob.bin');
log(`writing a ${fmt(size / GiB)} GiB blob`);
let digest = await makeBlobFile(file, size, 0);
let variant = 0;
const repo = 'bench/s3';

// --- PUT ---
const sdkPut = [];
const customsPut = [];
const cpu = { sdkPut: 0, customsPut: 0, sdkGet: 0, customsGet: 0, customsRedirectGet: 0 };
for (let i = 0; i < reps; i++) {
  digest = await setVariant(file, ++variant);
  warmFile(file);
  const t0 = performance.now();
  const c0 = selfCpu();
  await new Upload({
    client: s3,
    params: { Bucket: bucket, Key: `direct/${digest}`, Body: createReadStream(file, { highWaterMark: MiB }) },
    partSize: partMiB * MiB,
    queueSize: concurrency,
  }).done();
  sdkPut.push(size / GiB / ((performance.now() - t0) / 1000));
  cpu.sdkPut += selfCpu() - c0;
  digest = await setVariant(file, ++variant);
  warmFile(file);
  const p0 = pidCpu(customs.pid);
  const secs = await pushBlobFile(customs, repo, file, digest, size);
  cpu.customsPut += pidCpu(customs.pid) - p0;
  customsPut.push(size / GiB / secs);
  log(`PUT rep ${i + 1}: sdk ${fmt(sdkPut.at(-1))} GiB/s, customs ${fmt(customsPut.at(-1))} GiB/s`);
}

// --- GET: the last blob pushed through customs, and the same bytes as a plain object ---
const directKey = `direct/${digest}`;
await new Upload({ client: s3, params: { Bucket: bucket, Key: directKey, Body: createReadStream(file, { highWaterMark: MiB }) }, partSize: partMiB * MiB, queueSize: concurrency }).done();
const sdkGet = [];
const customsGet = [];
const redirectGet = [];
for (let i = 0; i < reps; i++) {
  const t0 = performance.now();
  const c0 = selfCpu();
  const r = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: directKey }));
  let got = 0;
  for await (const chunk of r.Body) got += chunk.length;
  if (got !== size) throw new Error(`SDK GET returned ${got} of ${size} bytes`);
  sdkGet.push(size / GiB / ((performance.now() - t0) / 1000));
  cpu.sdkGet += selfCpu() - c0;
  const p0 = pidCpu(customs.pid);
  const d = await download(`${customs.url}/v2/${repo}/blobs/${digest}`, { headers: customs.headers, size });
  customsGet.push(d.gibps);
  cpu.customsGet += pidCpu(customs.pid) - p0;
  const r0 = pidCpu(customsRedirect.pid);
  const dr = await download(`${customsRedirect.url}/v2/${repo}/blobs/${digest}`, { headers: customsRedirect.headers, size, follow: true });
  redirectGet.push(dr.gibps);
  cpu.customsRedirectGet += pidCpu(customsRedirect.pid) - r0;
  log(`GET rep ${i + 1}: sdk ${fmt(sdkGet.at(-1))} GiB/s, customs ${fmt(customsGet.at(-1))} GiB/s, customs via redirect ${fmt(redirectGet.at(-1))} GiB/s`);
}

const m = (xs) => median(xs);
const mibps = (g) => fmt(g * 1024, 0);
printTable(`Blob throughput, ${fmt(size / GiB)} GiB, median of ${reps} (MiB/s)`, ['', 'S3 SDK direct', 'customs (S3 + PostgreSQL)', 'ratio'], [
  ['GET', mibps(m(sdkGet)), mibps(m(customsGet)), fmt(m(customsGet) / m(sdkGet))],
  ['GET via redirect (307 + curl -L)', mibps(m(sdkGet)), mibps(m(redirectGet)), fmt(m(redirectGet) / m(sdkGet))],
  ['PUT', mibps(m(sdkPut)), mibps(m(customsPut)), fmt(m(customsPut) / m(sdkPut))],
]);
const perGiB = (x) => x / reps / (size / GiB);
printTable('CPU seconds per GiB (the SDK client process vs the customs process; RGW and curl not counted)', ['', 'S3 SDK client', 'customs'], [
  ['GET', fmt(perGiB(cpu.sdkGet)), fmt(perGiB(cpu.customsGet))],
  ['GET via redirect', fmt(perGiB(cpu.sdkGet)), fmt(perGiB(cpu.customsRedirectGet))],
  ['PUT', fmt(perGiB(cpu.sdkPut)), fmt(perGiB(cpu.customsPut))],
]);
const targets = [
  target('GET customs / SDK', m(customsGet) / m(sdkGet), '>=', 0.8),
  target('GET via redirect / SDK', m(redirectGet) / m(sdkGet), '>=', 0.9),
  target('PUT customs / SDK', m(customsPut) / m(sdkPut), '>=', 0.8),
];
printTargets(targets);
emitJson(
  {
    bench: 's3',
    machine: machine(),
    sizeBytes: size,
    partMiB,
    concurrency,
    gibps: { sdkGet, customsGet, redirectGet, sdkPut, customsPut },
    cpuSecondsPerGiB: Object.fromEntries(Object.entries(cpu).map(([k, v]) => [k, +perGiB(v).toFixed(3)])),
    median: { sdkGet: m(sdkGet), customsGet: m(customsGet), redirectGet: m(redirectGet), sdkPut: m(sdkPut), customsPut: m(customsPut) },
    targets,
  },
  opt.json,
);
s3.destroy();
await Promise.all([customs.stop(), customsRedirect.stop()]);
await Promise.all([ceph.stop(), pgServer.stop()]);
