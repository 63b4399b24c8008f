import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { IntegrityMetrics, ScrubMetrics, ScrubReport } from '../registry/index.js';

/** Prometheus metrics of one server (its own registry, so tests can run several servers in a process). */
export class HttpMetrics {
  readonly registry = new Registry();
  readonly requests = new Counter({ name: 'customs_http_requests_total', help: 'HTTP requests by route, method and status', labelNames: ['route', 'method', 'status'], registers: [this.registry] });
  readonly duration = new Histogram({
    name: 'customs_http_request_duration_seconds',
    help: 'HTTP request latency by route and method',
    labelNames: ['route', 'method'],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 60],
    registers: [this.registry],
  });
  readonly bytesIn = new Counter({ name: 'customs_http_bytes_received_total', help: 'Bytes received (headers and bodies)', labelNames: ['route'], registers: [this.registry] });
  readonly bytesOut = new Counter({ name: 'customs_http_bytes_sent_total', help: 'Bytes sent (headers and bodies)', labelNames: ['route'], registers: [this.registry] });
  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'customs_' });
  }
  /** Labelled children by route, method and status: prom-client hashes the label values on every `labels()` call. */
  private readonly children = new Map<string, { requests: Counter.Internal; duration: Histogram.Internal<string>; bytesIn: Counter.Internal; bytesOut: Counter.Internal }>();

  observe(route: string, method: string, status: number, seconds: number, bytesIn: number, bytesOut: number): void {
    const key = `${route} ${method} ${status}`;
    let c = this.children.get(key);
    if (!c) {
      c = { requests: this.requests.labels(route, method, String(status)), duration: this.duration.labels(route, method), bytesIn: this.bytesIn.labels(route), bytesOut: this.bytesOut.labels(route) };
      this.children.set(key, c);
    }
    c.requests.inc();
    c.duration.observe(seconds);
    if (bytesIn > 0) c.bytesIn.inc(bytesIn);
    if (bytesOut > 0) c.bytesOut.inc(bytesOut);
  }
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
