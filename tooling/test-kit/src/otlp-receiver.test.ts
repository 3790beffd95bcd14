import { afterEach, describe, expect, it } from 'vitest';
import { SeverityNumber } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { LoggerProvider, SimpleLogRecordProcessor, type LogRecordExporter } from '@opentelemetry/sdk-logs';
import { OTLPLogExporter as GrpcExporter } from '@opentelemetry/exporter-logs-otlp-grpc';
import { OTLPLogExporter as JsonExporter } from '@opentelemetry/exporter-logs-otlp-http';
import { OTLPLogExporter as ProtoExporter } from '@opentelemetry/exporter-logs-otlp-proto';
import { startOtlpReceiver, type OtlpReceiver } from './otlp-receiver.js';

let receiver: OtlpReceiver | undefined;
afterEach(async () => {
  await receiver?.close();
  receiver = undefined;
});

/** Emits one record with nested attributes through the official SDK and exporter, and flushes it. */
async function emitThrough(exporter: LogRecordExporter): Promise<void> {
  const provider = new LoggerProvider({
    resource: resourceFromAttributes({ 'service.name': 'receiver-test' }),
    processors: [new SimpleLogRecordProcessor({ exporter })],
  });
  provider.getLogger('scope-a', '1.2.3').emit({
    timestamp: 1_700_000_000_123,
    severityNumber: SeverityNumber.WARN,
    severityText: 'warn',
    body: 'request',
    attributes: {
      host: 'api.example.com',
      status_code: 403,
      duration_ms: 1.25,
      ok: false,
      request_transforms: [{ name: 'allowlist', annotations: { rejected: 'not_allowlisted', ports: [443, 8443] } }],
    },
  });
  await provider.forceFlush();
  await provider.shutdown();
}

const EXPECTED = {
  resource: expect.objectContaining({ 'service.name': 'receiver-test' }),
  scope: { name: 'scope-a', version: '1.2.3' },
  timeUnixNano: '1700000000123000000',
  severityNumber: SeverityNumber.WARN,
  severityText: 'warn',
  body: 'request',
  attributes: {
    host: 'api.example.com',
    status_code: 403,
    duration_ms: 1.25,
    ok: false,
    request_transforms: [{ name: 'allowlist', annotations: { rejected: 'not_allowlisted', ports: [443, 8443] } }],
  },
};

describe('startOtlpReceiver', () => {
  it('decodes OTLP/HTTP protobuf from the official exporter', async () => {
    receiver = await startOtlpReceiver();
    await emitThrough(new ProtoExporter({ url: `${receiver.url}/v1/logs` }));
    expect(receiver.records).toEqual([{ ...EXPECTED, encoding: 'http/protobuf' }]);
    expect(receiver.requests).toBe(1);
  });

  it('decodes OTLP/HTTP JSON from the official exporter', async () => {
    receiver = await startOtlpReceiver();
    await emitThrough(new JsonExporter({ url: `${receiver.url}/v1/logs` }));
    expect(receiver.records).toEqual([{ ...EXPECTED, encoding: 'http/json' }]);
  });

  it('decodes OTLP/HTTP protobuf sent gzip-compressed', async () => {
    receiver = await startOtlpReceiver();
    await emitThrough(new ProtoExporter({ url: `${receiver.url}/v1/logs`, compression: 'gzip' as never }));
    expect(receiver.records).toEqual([{ ...EXPECTED, encoding: 'http/protobuf' }]);
  });

  it('decodes OTLP/gRPC from the official exporter', async () => {
    receiver = await startOtlpReceiver({ transport: 'grpc' });
    await emitThrough(new GrpcExporter({ url: receiver.url }));
    expect(receiver.records).toEqual([{ ...EXPECTED, encoding: 'grpc' }]);
  });

  it('refuses connections while stopped and keeps its records across a restart on the same port', async () => {
    receiver = await startOtlpReceiver();
    await emitThrough(new ProtoExporter({ url: `${receiver.url}/v1/logs` }));
    await receiver.stop();
    await expect(fetch(`${receiver.url}/v1/logs`, { method: 'POST' })).rejects.toThrow();
    await receiver.start();
    await emitThrough(new ProtoExporter({ url: `${receiver.url}/v1/logs` }));
    expect(receiver.records).toHaveLength(2);
  });

  it('answers 400 to a body it cannot decode and 404 elsewhere, recording nothing', async () => {
    receiver = await startOtlpReceiver();
    const bad = await fetch(`${receiver.url}/v1/logs`, { method: 'POST', headers: { 'content-type': 'application/x-protobuf' }, body: Buffer.from([0xff, 0xff, 0xff]) });
    expect(bad.status).toBe(400);
    const other = await fetch(`${receiver.url}/v1/traces`, { method: 'POST', body: '{}' });
    expect(other.status).toBe(404);
    expect(receiver.records).toEqual([]);
    expect(receiver.requests).toBe(0);
  });

  it('waitForRecords resolves once enough arrived and rejects on timeout', async () => {
    receiver = await startOtlpReceiver();
    const waiting = receiver.waitForRecords(1, 5000);
    await emitThrough(new ProtoExporter({ url: `${receiver.url}/v1/logs` }));
    await expect(waiting).resolves.toHaveLength(1);
    await expect(receiver.waitForRecords(2, 50)).rejects.toThrow(/1 of 2 records/);
  });
});
