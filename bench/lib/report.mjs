// Table and JSON output.
import { readFileSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { cpus, loadavg, release } from 'node:os';

export function fmt(v, digits = 2) {
  if (v === undefined || v === null || Number.isNaN(v)) return '-';
  if (typeof v === 'string') return v;
  return v >= 1000 ? Math.round(v).toLocaleString('en-US') : v.toFixed(digits);
}

export function ratio(a, b) {
  return a && b ? a / b : NaN;
}

/** Print rows (arrays of strings) as an aligned table with a header row. */
export function printTable(title, header, rows) {
  const all = [header, ...rows].map((r) => r.map((c) => String(c)));
  const w = header.map((_, i) => Math.max(...all.map((r) => r[i].length)));
  const line = (r) => r.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  ');
  process.stdout.write(`\n${title}\n${line(all[0])}\n${w.map((n) => '-'.repeat(n)).join('  ')}\n`);
  for (const r of all.slice(1)) process.stdout.write(`${line(r)}\n`);
}

/** A target check: value compared with limit by op ('>=', '<=' or '<'). */
export function target(name, value, op, limit, unit = 'x') {
  const pass = Number.isFinite(value) ? (op === '>=' ? value >= limit : op === '<=' ? value <= limit : value < limit) : null;
  return { name, value: Number.isFinite(value) ? +value.toFixed(3) : null, op, limit, unit, pass };
}

export function printTargets(targets) {
  printTable(
    'Targets',
    ['target', 'measured', 'wanted', 'ok'],
    targets.map((t) => [t.name, t.value === null ? '-' : `${t.value}${t.unit}`, `${t.op} ${t.limit}${t.unit}`, t.pass === null ? 'n/a' : t.pass ? 'yes' : 'NO']),
  );
}

export function machine() {
  return { node: process.version, cpus: cpus().length, cpuModel: cpus()[0]?.model, kernel: release(), loadavg: loadavg().map((x) => +x.toFixed(2)) };
}

/** Warn when the machine is busy: every figure would be noise. */
export function warnIfLoaded(log) {
  const [l1] = loadavg();
  if (l1 > 0.7) log(`warning: load average ${l1.toFixed(2)} before start; other processes will distort the figures`);
  return l1;
}

/** Print the JSON summary between markers (easy to cut out) and optionally write it. */
export function emitJson(summary, file) {
  const text = JSON.stringify(summary, null, 2);
  process.stdout.write(`\nJSON summary:\n${text}\n`);
  if (file) writeFileSync(file, `${text}\n`);
}

function cpuTimes() {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const idle = f[3] + (f[4] ?? 0); // idle + iowait
  return { idle, total: f.reduce((a, b) => a + b, 0) };
}

/** Fraction of all CPUs busy over `ms` (load average reacts too slowly to tell). */
export async function cpuBusy(ms = 1000) {
  const a = cpuTimes();
  await sleep(ms);
  const b = cpuTimes();
  return b.total > a.total ? 1 - (b.idle - a.idle) / (b.total - a.total) : 0;
}

/**
 * Before measuring: wait (up to maxSecs) until the other processes on the
 * machine leave the CPUs idle (< 10% busy over 2 s); report what was seen.
 */
export async function waitIdle(maxSecs, log) {
  const deadline = Date.now() + maxSecs * 1000;
  let busy = await cpuBusy(2000);
  while (busy > 0.1 && Date.now() < deadline) {
    log(`CPUs ${Math.round(busy * 100)}% busy before start; waiting for quiet (up to ${Math.round((deadline - Date.now()) / 1000)} s more)`);
    busy = await cpuBusy(5000);
  }
  if (busy > 0.1) log(`warning: CPUs ${Math.round(busy * 100)}% busy before start: other processes will distort the figures`);
  return +busy.toFixed(3);
}
