import { Counter, Gauge, Registry, collectDefaultMetrics, type MetricObjectWithValues, type MetricValue } from 'prom-client';
import type { IntegrityMetrics, ScrubMetrics, ScrubReport } from '../registry/index.js';

const BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 60];

/** What one (route, method, status) has seen since start; the request path adds to it, scrapes read it. */
interface Series {
  readonly route: string;
  readonly method: string;
  readonly status: string;
  requests: number;
  /** Per BUCKETS bound (non-cumulative), plus one past the last. */
  readonly buckets: Float64Array;
  seconds: number;
  bytesIn: number;
  bytesOut: number;
}

/**
 * Prometheus metrics of one server (its own registry, so tests can run several servers in a process).
 *
 * The request path only adds to plain numbers (`observe`): prom-client hashes the label values of
 * every `inc`/`observe`, even on a child made by `labels()`, which cost more than the rest of the
 * metrics of a cached manifest GET. The numbers become prom-client's metrics when scraped.
 */
export class HttpMetrics {
  readonly registry = new Registry();
  /** route -> method -> status -> series; no key string is built per request. */
  private readonly series = new Map<string, Map<string, Map<number, Series>>>();

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'customs_' });
    const all = () => [...this.series.values()].flatMap((m) => [...m.values()].flatMap((s) => [...s.values()]));
    const requests = new Counter({
      name: 'customs_http_requests_total',
      help: 'HTTP requests by route, method and status',
      labelNames: ['route', 'method', 'status'],
      registers: [this.registry],
      collect() {
        requests.reset();
        for (const s of all()) requests.inc({ route: s.route, method: s.method, status: s.status }, s.requests);
      },
    });
    const perRoute = (name: string, help: string, pick: (s: Series) => number) => {
      const c: Counter = new Counter({
        name,
        help,
        labelNames: ['route'],
        registers: [this.registry],
        collect() {
          c.reset();
          const sums = new Map<string, number>();
          for (const s of all()) sums.set(s.route, (sums.get(s.route) ?? 0) + pick(s));
          for (const [route, n] of sums) if (n > 0) c.inc({ route }, n);
        },
      });
    };
    perRoute('customs_http_bytes_received_total', 'Bytes received (headers and bodies)', (s) => s.bytesIn);
    perRoute('customs_http_bytes_sent_total', 'Bytes sent (headers and bodies)', (s) => s.bytesOut);
    this.registry.registerMetric(new DurationHistogram(all) as never);
  }

  /**
   * customs_cache_entries{cache}: how full each in-memory cache is, read at scrape. A cache that only
   * ever grows while the registry's content does not is a leak an operator can see before RSS shows it.
   */
  cacheEntries(read: () => Record<string, number>): void {
    const g: Gauge = new Gauge({
      name: 'customs_cache_entries',
      help: 'Entries held by each in-memory cache',
      labelNames: ['cache'],
      registers: [this.registry],
      collect() {
        g.reset();
        for (const [cache, n] of Object.entries(read())) g.set({ cache }, n);
      },
    });
  }

  observe(route: string, method: string, status: number, seconds: number, bytesIn: number, bytesOut: number): void {
    let byMethod = this.series.get(route);
    if (!byMethod) this.series.set(route, (byMethod = new Map()));
    let byStatus = byMethod.get(method);
    if (!byStatus) byMethod.set(method, (byStatus = new Map()));
    let s = byStatus.get(status);
    if (!s) {
      s = { route, method, status: String(status), requests: 0, buckets: new Float64Array(BUCKETS.length + 1), seconds: 0, bytesIn: 0, bytesOut: 0 };
      byStatus.set(status, s);
    }
    s.requests++;
    let b = 0;
    while (b < BUCKETS.length && seconds > BUCKETS[b]!) b++;
    s.buckets[b] = s.buckets[b]! + 1;
    s.seconds += seconds;
    s.bytesIn += bytesIn;
    s.bytesOut += bytesOut;
  }
}

/** customs_http_request_duration_seconds by route and method, in prom-client's metric shape, built at scrape. */
class DurationHistogram {
  readonly name = 'customs_http_request_duration_seconds';
  readonly help = 'HTTP request latency by route and method';
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  constructor(private readonly all: () => Series[]) {}

  async get(): Promise<MetricObjectWithValues<MetricValue<string>>> {
    const merged = new Map<string, { route: string; method: string; buckets: Float64Array; seconds: number; count: number }>();
    for (const s of this.all()) {
      const k = `${s.route} ${s.method}`;
      let m = merged.get(k);
      if (!m) merged.set(k, (m = { route: s.route, method: s.method, buckets: new Float64Array(BUCKETS.length + 1), seconds: 0, count: 0 }));
      for (let i = 0; i < s.buckets.length; i++) m.buckets[i] = m.buckets[i]! + s.buckets[i]!;
      m.seconds += s.seconds;
      m.count += s.requests;
    }
    const values: MetricValue<string>[] = [];
    for (const m of merged.values()) {
      const labels = { route: m.route, method: m.method };
      let cumulative = 0;
      BUCKETS.forEach((le, i) => {
        cumulative += m.buckets[i]!;
        values.push({ metricName: `${this.name}_bucket`, labels: { le, ...labels }, value: cumulative } as MetricValue<string>);
      });
      values.push({ metricName: `${this.name}_bucket`, labels: { le: '+Inf', ...labels }, value: m.count } as MetricValue<string>);
      values.push({ metricName: `${this.name}_sum`, labels, value: m.seconds } as MetricValue<string>);
      values.push({ metricName: `${this.name}_count`, labels, value: m.count } as MetricValue<string>);
    }
    return { name: this.name, help: this.help, type: 'histogram' as never, aggregator: 'sum', values, collect: () => undefined };
  }

  reset(): void {}
}

/** Scrub and integrity counters, on a server's registry (`HttpMetrics.registry`). */
export class IntegrityCounters implements IntegrityMetrics, ScrubMetrics {
  private readonly findings: Counter;
  private readonly checkedItems: Counter;
  private readonly checkedBytes: Counter;
  private readonly lastRun: Gauge;
  private readonly unrepaired: Gauge;
  constructor(registry: Registry) {
    const registers = [registry];
    this.findings = new Counter({ name: 'customs_integrity_findings_total', help: 'Corrupt content found (scrub or read) and corrupt blobs repaired, by kind', labelNames: ['kind', 'outcome'], registers });
    this.checkedItems = new Counter({ name: 'customs_scrub_checked_total', help: 'Blobs and manifests re-hashed by the scrub', labelNames: ['kind'], registers });
    this.checkedBytes = new Counter({ name: 'customs_scrub_bytes_total', help: 'Bytes re-hashed by the scrub', registers });
    this.lastRun = new Gauge({ name: 'customs_scrub_last_run_timestamp_seconds', help: 'When the last scrub finished', registers });
    this.unrepaired = new Gauge({ name: 'customs_scrub_unrepaired_blobs', help: 'Corrupt blobs set aside that a repository still links, as of the last scrub', registers });
  }
  finding(kind: 'blob' | 'manifest', outcome: 'corrupt' | 'repaired'): void {
    this.findings.labels(kind, outcome).inc();
  }
  checked(kind: 'blob' | 'manifest', bytes: number): void {
    this.checkedItems.labels(kind).inc();
    this.checkedBytes.inc(bytes);
  }
  finished(report: ScrubReport): void {
    this.lastRun.set(Date.now() / 1000);
    this.unrepaired.set(report.unrepaired.length);
  }
}
