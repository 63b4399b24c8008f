// Clients and samplers: curl downloads, wrk, RSS sampling.
import { performance } from 'node:perf_hooks';
import { processTree, rssOf, run } from './proc.mjs';
import { GiB } from './oci.mjs';

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function curlHeaders(headers = {}) {
  return Object.entries(headers).flatMap(([k, v]) => ['-H', `${k}: ${v}`]);
}

/**
 * One curl download to /dev/null; checks HTTP 200 and the byte count. With `follow`,
 * curl follows a redirect (-L; it keeps an Authorization header for the first host
 * only) and exactly one redirect must have happened.
 */
async function curlOnce(url, headers, size, follow = false) {
  const r = await run('curl', ['-sS', ...(follow ? ['-L'] : []), '-o', '/dev/null', '-w', '%{http_code} %{size_download} %{time_total} %{num_redirects}', ...curlHeaders(headers), url]);
  const [code, got, total, redirects] = r.stdout.trim().split(' ');
  if (r.code !== 0 || code !== '200' || Number(got) !== size || (follow && redirects !== '1')) {
    throw new Error(`GET ${url}: curl exit ${r.code}, HTTP ${code}, ${got}/${size} bytes, ${redirects} redirects ${r.stderr.trim()}`);
  }
  return Number(total);
}

/**
 * `clients` concurrent curl downloads of the same URL. Returns the wall time
 * from first spawn to last exit and the aggregate throughput in GiB/s.
 */
export async function download(url, { headers = {}, size, clients = 1, follow = false }) {
  const t0 = performance.now();
  const times = await Promise.all(Array.from({ length: clients }, () => curlOnce(url, headers, size, follow)));
  const secs = (performance.now() - t0) / 1000;
  return { secs, gibps: (clients * size) / GiB / secs, clientSecs: times };
}

/** `reps` runs of download(); the median by throughput. */
export async function downloadMedian(url, opts, reps) {
  const runs = [];
  for (let i = 0; i < reps; i++) runs.push(await download(url, opts));
  const gibps = median(runs.map((r) => r.gibps));
  return { gibps, secs: median(runs.map((r) => r.secs)), runs: runs.map((r) => +r.gibps.toFixed(3)) };
}

function toMs(v, unit) {
  const n = Number(v);
  return unit === 'us' ? n / 1000 : unit === 's' ? n * 1000 : unit === 'm' ? n * 60000 : n;
}

/** wrk -c<conn> -d<secs>s --latency; parses rps, p50/p99 and errors. */
export async function wrk(url, { headers = {}, connections = 32, threads = 2, seconds = 10 } = {}) {
  const args = [`-t${threads}`, `-c${connections}`, `-d${seconds}s`, '--latency', ...curlHeaders(headers), url];
  const r = await run('wrk', args);
  if (r.code !== 0) throw new Error(`wrk ${url}: exit ${r.code} ${r.stderr}`);
  const out = r.stdout;
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
  const lat = (p) => {
    const m = new RegExp(`^\\s+${p}%\\s+([\\d.]+)(us|ms|s|m)\\s*$`, 'm').exec(out);
    return m ? toMs(m[1], m[2]) : NaN;
  };
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? 0);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const socketErrors = sock ? sock.slice(1).reduce((a, b) => a + Number(b), 0) : 0;
  const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? 0);
  if (!Number.isFinite(rps)) throw new Error(`wrk ${url}: cannot parse output:\n${out}`);
  return { rps, p50ms: lat(50), p99ms: lat(99), requests, non2xx, socketErrors, raw: out };
}

/**
 * Sample VmRSS of pid and its descendants every intervalMs until stop().
 * Returns { stop(): { maxBytes, samples, lastBytes } }.
 */
export function sampleRss(pid, intervalMs = 100) {
  let max = 0;
  let last = 0;
  let samples = 0;
  const tick = () => {
    last = processTree(pid).reduce((a, p) => a + rssOf(p), 0);
    if (last > max) max = last;
    samples++;
  };
  tick();
  const timer = setInterval(tick, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      tick();
      return { maxBytes: max, lastBytes: last, samples };
    },
  };
}
