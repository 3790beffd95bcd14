import { describe, expect, it } from 'vitest';
import { loggableEndpoint, readOtlpAuditSettings } from './otlp-settings.js';

describe('readOtlpAuditSettings', () => {
  it('is off unless an endpoint variable is set', () => {
    expect(readOtlpAuditSettings({})).toBeUndefined();
    expect(readOtlpAuditSettings({ OTEL_EXPORTER_OTLP_ENDPOINT: '  ', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' })).toBeUndefined();
  });

  it('defaults to http/protobuf and the specification batch bounds', () => {
    expect(readOtlpAuditSettings({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' })).toEqual({
      endpoint: 'http://collector:4318',
      endpointVariable: 'OTEL_EXPORTER_OTLP_ENDPOINT',
      protocol: 'http/protobuf',
      maxQueueSize: 2048,
      maxExportBatchSize: 512,
      scheduledDelayMs: 1000,
    });
  });

  it('prefers the logs-specific endpoint and protocol', () => {
    const settings = readOtlpAuditSettings({
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://generic:4318',
      OTEL_EXPORTER_OTLP_LOGS_ENDPOINT: 'https://logs:4318/v1/logs',
      OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
      OTEL_EXPORTER_OTLP_LOGS_PROTOCOL: 'http/json',
    });
    expect(settings).toMatchObject({ endpoint: 'https://logs:4318/v1/logs', endpointVariable: 'OTEL_EXPORTER_OTLP_LOGS_ENDPOINT', protocol: 'http/json' });
  });

  it('reads the batch bounds; an unset batch size follows a smaller queue', () => {
    const env = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_BLRP_MAX_QUEUE_SIZE: '100', OTEL_BLRP_SCHEDULE_DELAY: '50' };
    expect(readOtlpAuditSettings(env)).toMatchObject({ maxQueueSize: 100, maxExportBatchSize: 100, scheduledDelayMs: 50 });
    expect(readOtlpAuditSettings({ ...env, OTEL_BLRP_MAX_EXPORT_BATCH_SIZE: '10' })).toMatchObject({ maxExportBatchSize: 10 });
  });

  it.each([
    [{ OTEL_EXPORTER_OTLP_PROTOCOL: 'thrift' }, 'OTEL_EXPORTER_OTLP_PROTOCOL: unknown OTLP protocol "thrift" (use http/protobuf, http/json, grpc)'],
    [{ OTEL_EXPORTER_OTLP_LOGS_PROTOCOL: 'HTTP' }, 'OTEL_EXPORTER_OTLP_LOGS_PROTOCOL: unknown OTLP protocol "HTTP"'],
    [{ OTEL_BLRP_MAX_QUEUE_SIZE: '0' }, 'OTEL_BLRP_MAX_QUEUE_SIZE: must be a positive integer (got "0")'],
    [{ OTEL_BLRP_SCHEDULE_DELAY: '1.5' }, 'OTEL_BLRP_SCHEDULE_DELAY: must be a positive integer'],
    [{ OTEL_BLRP_MAX_QUEUE_SIZE: '10', OTEL_BLRP_MAX_EXPORT_BATCH_SIZE: '20' }, 'must not exceed OTEL_BLRP_MAX_QUEUE_SIZE (10)'],
  ])('refuses %j naming the variable', (extra, message) => {
    expect(() => readOtlpAuditSettings({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', ...extra })).toThrow(message);
  });

  it.each([
    ['not a url', 'OTEL_EXPORTER_OTLP_ENDPOINT: not a URL: "not a url"'],
    ['ftp://c:21', 'must start with http:// or https:// (got ftp:)'],
  ])('refuses the endpoint %s', (endpoint, message) => {
    expect(() => readOtlpAuditSettings({ OTEL_EXPORTER_OTLP_ENDPOINT: endpoint })).toThrow(message);
  });
});

describe('loggableEndpoint', () => {
  it('takes out user and password', () => {
    expect(loggableEndpoint('https://user:s3cret-pass@collector:4318/v1/logs')).toBe('https://collector:4318/v1/logs');
  });
});
