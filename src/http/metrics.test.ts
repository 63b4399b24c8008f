import { describe, expect, it } from 'vitest';
import { HttpMetrics } from './metrics.js';

describe('HttpMetrics', () => {
  it('exposes what observe() recorded as prom-client counters and a histogram, at scrape time', async () => {
    const m = new HttpMetrics();
    m.observe('manifest', 'GET', 200, 0.0004, 100, 2000);
    m.observe('manifest', 'GET', 200, 0.003, 100, 2000);
    m.observe('manifest', 'GET', 404, 0.2, 90, 150);
    m.observe('blob', 'HEAD', 200, 70, 0, 300);
    const text = await m.registry.metrics();
    expect(text).toContain('customs_http_requests_total{route="manifest",method="GET",status="200"} 2');
    expect(text).toContain('customs_http_requests_total{route="manifest",method="GET",status="404"} 1');
    expect(text).toContain('customs_http_bytes_sent_total{route="manifest"} 4150');
    expect(text).toContain('customs_http_bytes_received_total{route="manifest"} 290');
    expect(text).not.toContain('customs_http_bytes_received_total{route="blob"}');
    // Cumulative buckets over both statuses of the route and method.
    expect(text).toContain('customs_http_request_duration_seconds_bucket{le="0.0005",route="manifest",method="GET"} 1');
    expect(text).toContain('customs_http_request_duration_seconds_bucket{le="0.005",route="manifest",method="GET"} 2');
    expect(text).toContain('customs_http_request_duration_seconds_bucket{le="0.25",route="manifest",method="GET"} 3');
    expect(text).toContain('customs_http_request_duration_seconds_bucket{le="+Inf",route="blob",method="HEAD"} 1');
    expect(text).toContain('customs_http_request_duration_seconds_bucket{le="60",route="blob",method="HEAD"} 0');
    expect(text).toMatch(/customs_http_request_duration_seconds_sum\{route="manifest",method="GET"\} 0\.2034/);
    expect(text).toContain('customs_http_request_duration_seconds_count{route="manifest",method="GET"} 3');
    expect(text).toContain('# TYPE customs_http_request_duration_seconds histogram');
    // A second scrape counts the same, not twice.
    m.observe('manifest', 'GET', 200, 0.0004, 0, 0);
    expect(await m.registry.metrics()).toContain('customs_http_requests_total{route="manifest",method="GET",status="200"} 3');
  });
});
