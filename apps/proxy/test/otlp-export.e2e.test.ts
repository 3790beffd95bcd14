/**
 * OTLP audit export through the `proxy` binary: every audit record reaches a local OTLP
 * receiver (HTTP/protobuf, HTTP/JSON, gRPC) as a log record with the JSON line's fields; a
 * collector that goes away and comes back loses nothing within the queue bound; a dead
 * collector costs a bounded queue, with the drops counted on /metrics; no secret value is in
 * anything exported or written. `header_capture` runs after `secrets` in every run.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasCommand, startEchoServer, startOtlpReceiver, type EchoServer, type OtlpLogRecord, type OtlpReceiver } from '@proxy/test-kit';
import { curl, startProxyProcess, type LogLine, type ProxyProcess } from './support/proxy-process.js';

const SECRET = 'sk-otlp-e2e-secret-8c1f2a7b';
const OTLP_TOKEN = 'otlp-ingest-token-4d3c2b1a';
const PLACEHOLDER = 'PH-OTLP-TOKEN-1';

let echo: EchoServer;
beforeAll(async () => {
  echo = await startEchoServer();
});
afterAll(async () => {
  await echo?.close();
});

function configYaml(): string {
  return `proxy:
  http_listen: "127.0.0.1:0"
  upstream_deny_cidrs: []                # test: the upstream is on loopback
metrics:
  listen: "127.0.0.1:0"
transforms:
  - name: allowlist
    config:
      domains: ["127.0.0.1:${echo.port}"]
  - name: secrets
    config:
      secrets:
        - source: { type: env, var: UPSTREAM_TOKEN }
          replace: { proxy_value: "${PLACEHOLDER}", match_headers: [] }
          rules: []
  - name: header_capture
    config:
      headers: ["X-Request-Tag", "Authorization", "X-Forward-Value"]
`;
}

function start(env: Record<string, string>): Promise<ProxyProcess> {
  return startProxyProcess(configYaml(), { env: { UPSTREAM_TOKEN: SECRET, ...env } });
}

/** `count` allowed requests (carrying the placeholder in a captured header and in Authorization) and one refused. */
async function sendRequests(proxy: ProxyProcess, tag: string, count: number): Promise<void> {
  const urls = Array.from({ length: count }, (_, i) => `http://127.0.0.1:${echo.port}/otlp/${tag}/${i}`);
  const allowed = await curl([
    '-x', `http://127.0.0.1:${proxy.port()}`,
    '-H', `X-Request-Tag: ${tag}`,
    '-H', `Authorization: Bearer ${PLACEHOLDER}`,
    '-H', `X-Forward-Value: v=${PLACEHOLDER}`,
    ...urls,
  ]);
  expect(allowed.code).toBe(0);
  const refused = await curl(['-x', `http://127.0.0.1:${proxy.port()}`, '-o', '/dev/null', '-w', '%{http_code}', '-H', `X-Request-Tag: ${tag}`, 'http://blocked.example.invalid/x']);
  expect(refused.stdout).toBe('403');
}

/** The JSON audit line's fields that a log record carries as attributes (level, time and msg become severity, timestamp and body). */
function attributesOf(line: LogLine): Record<string, unknown> {
  const { level: _level, time: _time, msg: _msg, ...rest } = line;
  return rest;
}

function expectNoSecret(text: string): void {
  for (const value of [SECRET, OTLP_TOKEN]) {
    expect(text.includes(value), `${value} in ${text.slice(0, 200)}...`).toBe(false);
    expect(text.includes(JSON.stringify(value).slice(1, -1))).toBe(false);
  }
}

// Each suite's traffic is sent with curl in its hook: skipped where curl is missing.
describe.skipIf(!hasCommand('curl')).each(['http/protobuf', 'http/json', 'grpc'] as const)('OTLP audit export over %s', (protocol) => {
  let receiver: OtlpReceiver;
  let proxy: ProxyProcess;
  let audits: LogLine[];

  beforeAll(async () => {
    receiver = await startOtlpReceiver({ transport: protocol === 'grpc' ? 'grpc' : 'http' });
    proxy = await start({
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      ...(protocol === 'http/protobuf' ? {} : { OTEL_EXPORTER_OTLP_PROTOCOL: protocol }),
      OTEL_EXPORTER_OTLP_HEADERS: `Authorization=Bearer ${OTLP_TOKEN}`,
      ...(protocol === 'grpc' ? { OTEL_SERVICE_NAME: 'egress-proxy', OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment=test' } : {}),
      OTEL_BLRP_SCHEDULE_DELAY: '100',
    });
    await sendRequests(proxy, protocol, 3);
    await proxy.waitForLine(() => proxy.audits().length >= 4);
    // Shutdown flushes what is still queued.
    await proxy.stop();
    audits = proxy.audits();
  }, 30_000);
  afterAll(async () => {
    await receiver?.close();
  });

  it('logs that the exporter is on, with endpoint and protocol', () => {
    const line = proxy.lines().find((l) => l.msg === 'otel exporter enabled');
    expect(line).toMatchObject({ endpoint: `${receiver.url}/`, protocol });
  });

  it('exports every audit record with the same fields as its JSON line', () => {
    expect(audits).toHaveLength(4);
    expect(receiver.records).toHaveLength(4);
    for (const line of audits) {
      const record = receiver.records.find((r) => r.attributes['request_id'] === line['request_id']) as OtlpLogRecord;
      expect(record, `record of ${String(line['request_id'])}`).toBeDefined();
      expect(record.attributes).toEqual(attributesOf(line));
      expect(record.body).toBe('request');
      expect(record.severityText).toBe(line.level);
      expect(record.encoding).toBe(protocol);
      // Timestamped when the request arrived: at most its duration before the line's time.
      const arrived = Number(BigInt(record.timeUnixNano) / 1_000_000n);
      expect(arrived).toBeLessThanOrEqual(Date.parse(String(line.time)) + 1);
      expect(arrived).toBeGreaterThan(Date.parse(String(line.time)) - 5_000);
    }
    const refused = receiver.records.find((r) => r.attributes['action'] === 'reject')!;
    expect(refused).toMatchObject({ severityText: 'warn', severityNumber: 13, attributes: { status_code: 403, rejected_by: 'allowlist' } });
    expect(receiver.records.filter((r) => r.severityText === 'info')).toHaveLength(3);
  });

  it('carries annotations as nested maps: header_capture after secrets, credentials redacted', () => {
    const allowed = receiver.records.find((r) => r.attributes['action'] === 'allow')!;
    const traces = allowed.attributes['request_transforms'] as { name: string; annotations?: Record<string, unknown> }[];
    expect(traces.map((t) => t.name)).toEqual(['allowlist', 'secrets', 'header_capture']);
    expect(traces[2]!.annotations).toEqual({
      headers: { 'X-Request-Tag': protocol, Authorization: '[redacted]', 'X-Forward-Value': 'v=[redacted:UPSTREAM_TOKEN]' },
    });
    // The swap happened: the upstream received the real value.
    expect(JSON.stringify(echo.requests.filter((r) => r.headers['x-request-tag'] === protocol))).toContain(SECRET);
  });

  it('names the service and carries OTEL_RESOURCE_ATTRIBUTES', () => {
    const resource = receiver.records[0]!.resource;
    if (protocol === 'grpc') expect(resource).toMatchObject({ 'service.name': 'egress-proxy', 'deployment.environment': 'test' });
    else expect(resource['service.name']).toBe('proxy');
    expect(resource['service.version']).toEqual(expect.any(String));
  });

  it('exports no secret value and writes none, nor the exporter credentials', () => {
    expectNoSecret(JSON.stringify(receiver.records));
    expectNoSecret(proxy.stdout() + proxy.stderr());
  });
});

describe('a collector that goes away and comes back', () => {
  it('loses no record within the queue bound', async () => {
    const receiver = await startOtlpReceiver();
    const proxy = await start({
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_BLRP_SCHEDULE_DELAY: '100',
      OTEL_BLRP_MAX_QUEUE_SIZE: '100',
      OTEL_EXPORTER_OTLP_TIMEOUT: '1000',
    });
    try {
      await sendRequests(proxy, 'before', 2);
      await receiver.waitForRecords(3);
      await receiver.stop();
      // Away for 30 s while traffic goes on: the exporter fails and says so, keeping the records.
      const awayUntil = Date.now() + 30_000;
      for (let i = 0; Date.now() < awayUntil; i++) {
        await sendRequests(proxy, `during-${i}`, 1);
        await new Promise((r) => setTimeout(r, Math.min(3_000, Math.max(0, awayUntil - Date.now()))));
      }
      const total = proxy.audits().length;
      expect(total).toBeGreaterThan(3 + 2 * 8);
      expect(total).toBeLessThanOrEqual(100);
      expect(proxy.lines().some((l) => l.msg?.startsWith('otel exporter failing') === true)).toBe(true);
      await receiver.start();
      await receiver.waitForRecords(total, 20_000);
      await proxy.waitForLine((l) => l.msg === 'otel exporter recovered');
      const ids = new Set(receiver.records.map((r) => r.attributes['request_id']));
      expect(ids).toEqual(new Set(proxy.audits().map((a) => a['request_id'])));
      expectNoSecret(JSON.stringify(receiver.records) + proxy.stdout() + proxy.stderr());
    } finally {
      await proxy.stop();
      await receiver.close();
    }
  }, 75_000);
});

describe('a dead collector', () => {
  it('keeps a bounded queue, counts the drops on /metrics and does not hold up shutdown', async () => {
    // A port nothing listens on: every export is refused.
    const gone = await startOtlpReceiver();
    await gone.close();
    const proxy = await start({
      OTEL_EXPORTER_OTLP_ENDPOINT: gone.url,
      OTEL_BLRP_MAX_QUEUE_SIZE: '20',
      OTEL_BLRP_MAX_EXPORT_BATCH_SIZE: '5',
      OTEL_BLRP_SCHEDULE_DELAY: '50',
      OTEL_EXPORTER_OTLP_TIMEOUT: '500',
    });
    try {
      for (let i = 0; i < 4; i++) await sendRequests(proxy, `dead-${i}`, 24);
      await proxy.waitForLine(() => proxy.audits().length >= 100);
      const scrape = (await curl([`http://127.0.0.1:${proxy.port('metrics')}/metrics`])).stdout;
      const dropped = metricValue(scrape, 'otel_sdk_processor_log_processed_total', 'error_type="queue_full"');
      // At most the queue and the one batch being retried are held; everything else was dropped and counted.
      expect(dropped).toBeGreaterThanOrEqual(100 - 20 - 5);
      expect(metricValue(scrape, 'otel_sdk_processor_log_queue_size')).toBeLessThanOrEqual(20);
      expect(metricValue(scrape, 'otel_sdk_processor_log_queue_capacity')).toBe(20);
      expect(proxy.lines().some((l) => l.msg?.startsWith('otel exporter failing') === true)).toBe(true);
    } finally {
      const stopping = Date.now();
      await proxy.stop();
      // The shutdown flush is bounded (5 s) even though the collector never answers.
      expect(Date.now() - stopping).toBeLessThan(9_000);
    }
    expectNoSecret(proxy.stdout() + proxy.stderr());
  }, 30_000);
});

describe('OTEL settings the proxy cannot use', () => {
  it.each([
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318', OTEL_EXPORTER_OTLP_PROTOCOL: 'thrift' }, /OTEL_EXPORTER_OTLP_PROTOCOL: unknown OTLP protocol "thrift"/],
    [{ OTEL_EXPORTER_OTLP_LOGS_ENDPOINT: 'collector:4318' }, /OTEL_EXPORTER_OTLP_LOGS_ENDPOINT: the collector URL must start with http:\/\/ or https:\/\//],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318', OTEL_BLRP_MAX_QUEUE_SIZE: 'lots' }, /OTEL_BLRP_MAX_QUEUE_SIZE: must be a positive integer/],
  ])('stop startup with one line naming the variable (%j)', async (env, message) => {
    const proxy = startProxyProcess(configYaml(), { env: { UPSTREAM_TOKEN: SECRET, ...env } });
    await expect(proxy).rejects.toThrow(message);
  });
});

/** The sum of a metric's samples (those whose labels contain `labels`, when given). */
function metricValue(scrape: string, name: string, labels?: string): number {
  let sum = 0;
  let seen = false;
  for (const line of scrape.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (labels !== undefined && !line.includes(labels)) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
    seen = true;
  }
  if (!seen) throw new Error(`no ${name}${labels === undefined ? '' : `{${labels}}`} in the scrape:\n${scrape}`);
  return sum;
}

