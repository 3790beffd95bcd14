import { describe, expect, it } from 'vitest';
import { mergePrometheusText, parseSample } from './metrics-merge.js';

const worker1 = `# HELP proxy_requests_total Requests and connections the proxy decided on, by audit action.
# UNIT proxy_requests_total requests
# TYPE proxy_requests_total counter
proxy_requests_total{action="allow",otel_scope_name="@proxy/app"} 3
proxy_requests_total{action="reject",otel_scope_name="@proxy/app"} 1
# HELP http_server_request_duration_seconds Duration of HTTP server requests.
# TYPE http_server_request_duration_seconds histogram
http_server_request_duration_seconds_count{http_request_method="GET",otel_scope_name="@proxy/engine"} 4
http_server_request_duration_seconds_sum{http_request_method="GET",otel_scope_name="@proxy/engine"} 0.5
http_server_request_duration_seconds_bucket{http_request_method="GET",otel_scope_name="@proxy/engine",le="0.1"} 3
http_server_request_duration_seconds_bucket{http_request_method="GET",otel_scope_name="@proxy/engine",le="+Inf"} 4
# HELP process_memory_usage_bytes Resident set size of the proxy process.
# TYPE process_memory_usage_bytes gauge
process_memory_usage_bytes{otel_scope_name="@proxy/app"} 1000
`;

const worker2 = `# HELP proxy_requests_total Requests and connections the proxy decided on, by audit action.
# TYPE proxy_requests_total counter
proxy_requests_total{otel_scope_name="@proxy/app",action="allow"} 2
proxy_requests_total{action="error",otel_scope_name="@proxy/app"} 5
# HELP http_server_request_duration_seconds Duration of HTTP server requests.
# TYPE http_server_request_duration_seconds histogram
http_server_request_duration_seconds_count{http_request_method="GET",otel_scope_name="@proxy/engine"} 1
http_server_request_duration_seconds_sum{http_request_method="GET",otel_scope_name="@proxy/engine"} 0.25
http_server_request_duration_seconds_bucket{http_request_method="GET",otel_scope_name="@proxy/engine",le="0.1"} 0
http_server_request_duration_seconds_bucket{http_request_method="GET",otel_scope_name="@proxy/engine",le="+Inf"} 1
# HELP process_memory_usage_bytes Resident set size of the proxy process.
# TYPE process_memory_usage_bytes gauge
process_memory_usage_bytes{otel_scope_name="@proxy/app"} 2000
# HELP only_here A metric only the second worker has.
# TYPE only_here gauge
only_here 7
`;

describe('mergePrometheusText', () => {
  const merged = mergePrometheusText([
    { worker: 1, text: worker1 },
    { worker: 2, text: worker2 },
  ]);
  const lines = merged.split('\n');

  it('sums counters per identical label set, whatever the label order', () => {
    expect(lines).toContain('proxy_requests_total{action="allow",otel_scope_name="@proxy/app"} 5');
    expect(lines).toContain('proxy_requests_total{action="reject",otel_scope_name="@proxy/app"} 1');
    expect(lines).toContain('proxy_requests_total{action="error",otel_scope_name="@proxy/app"} 5');
  });

  it('sums histogram buckets, sums and counts', () => {
    expect(lines).toContain('http_server_request_duration_seconds_count{http_request_method="GET",otel_scope_name="@proxy/engine"} 5');
    expect(lines).toContain('http_server_request_duration_seconds_sum{http_request_method="GET",otel_scope_name="@proxy/engine"} 0.75');
    expect(lines).toContain('http_server_request_duration_seconds_bucket{http_request_method="GET",otel_scope_name="@proxy/engine",le="0.1"} 3');
    expect(lines).toContain('http_server_request_duration_seconds_bucket{http_request_method="GET",otel_scope_name="@proxy/engine",le="+Inf"} 5');
  });

  it('keeps each gauge sample per process, labelled by worker', () => {
    expect(lines).toContain('process_memory_usage_bytes{otel_scope_name="@proxy/app",worker="1"} 1000');
    expect(lines).toContain('process_memory_usage_bytes{otel_scope_name="@proxy/app",worker="2"} 2000');
    expect(lines).toContain('only_here{worker="2"} 7');
  });

  it('writes one HELP and one TYPE per metric name, before its samples', () => {
    const types = lines.filter((l) => l.startsWith('# TYPE ')).map((l) => l.split(' ')[2]);
    expect(types).toEqual(['proxy_requests_total', 'http_server_request_duration_seconds', 'process_memory_usage_bytes', 'only_here']);
    expect(lines.filter((l) => l.startsWith('# HELP ')).length).toBe(4);
    expect(lines.indexOf('# TYPE proxy_requests_total counter')).toBeLessThan(lines.findIndex((l) => l.startsWith('proxy_requests_total{')));
    expect(merged.endsWith('\n')).toBe(true);
  });

  it('adds a retired exposition\'s counters and histograms, never its gauges', () => {
    const withRetired = mergePrometheusText([
      { worker: 3, text: worker2 },
      { worker: 0, text: worker1, retired: true },
    ]).split('\n');
    expect(withRetired).toContain('proxy_requests_total{otel_scope_name="@proxy/app",action="allow"} 5');
    expect(withRetired).toContain('http_server_request_duration_seconds_count{http_request_method="GET",otel_scope_name="@proxy/engine"} 5');
    expect(withRetired).toContain('process_memory_usage_bytes{otel_scope_name="@proxy/app",worker="3"} 2000');
    expect(withRetired.filter((l) => l.includes('worker="0"'))).toEqual([]);
    // Retired expositions fold into one, which stays retired.
    const folded = mergePrometheusText([{ worker: 1, text: worker1, retired: true }]);
    expect(folded).not.toContain('process_memory_usage_bytes');
    expect(folded).toContain('proxy_requests_total{action="allow",otel_scope_name="@proxy/app"} 3');
  });

  it('is empty for no input, and leaves malformed lines out', () => {
    expect(mergePrometheusText([])).toBe('');
    expect(mergePrometheusText([{ worker: 1, text: 'x{a="unterminated 1\nok_total 2\n' }])).toBe('# TYPE ok_total untyped\nok_total 2\n');
  });
});

describe('parseSample', () => {
  it('reads escaped label values, special values and drops timestamps', () => {
    expect(parseSample('m{a="q\\"x\\\\y\\nz",b=""} +Inf 1700000000')).toEqual({
      name: 'm',
      labels: [
        ['a', 'q"x\\y\nz'],
        ['b', ''],
      ],
      value: Infinity,
    });
    expect(parseSample('m NaN')?.value).toBeNaN();
    expect(parseSample('m 1e3')?.value).toBe(1000);
    expect(parseSample('m{a="x"}')).toBeUndefined();
    expect(parseSample('m{a=x} 1')).toBeUndefined();
  });

  it('round-trips escapes through a merge', () => {
    expect(mergePrometheusText([{ worker: 1, text: '# TYPE m counter\nm{a="q\\"x\\\\y\\nz"} 1\n' }])).toBe('# TYPE m counter\nm{a="q\\"x\\\\y\\nz"} 1\n');
  });
});
