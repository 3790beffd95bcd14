import { describe, expect, it } from 'vitest';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import type { LogRecordExporter, ReadableLogRecord } from '@opentelemetry/sdk-logs';
import { RetainingExporter } from './retaining-exporter.js';

/** An exporter whose answers the test decides: each call takes the next result (the last repeats). */
function scripted(results: ExportResult['code'][]): LogRecordExporter & { calls: number } {
  const exporter = {
    calls: 0,
    export(_records: ReadableLogRecord[], done: (result: ExportResult) => void) {
      const code = results[Math.min(exporter.calls, results.length - 1)]!;
      exporter.calls++;
      done(code === ExportResultCode.SUCCESS ? { code } : { code, error: new Error(`refused #${exporter.calls}`) });
    },
    shutdown: () => Promise.resolve(),
    forceFlush: () => Promise.resolve(),
  };
  return exporter;
}

const batch = [] as unknown as ReadableLogRecord[];
const exportOnce = (exporter: LogRecordExporter) => new Promise<ExportResult>((resolve) => exporter.export(batch, resolve));
const backoff = { initialMs: 5, maxMs: 20 };

describe('RetainingExporter', () => {
  it('retries a refused batch until the collector takes it, saying when it fails and when it recovers', async () => {
    const { FAILED, SUCCESS } = ExportResultCode;
    const inner = scripted([FAILED, FAILED, FAILED, SUCCESS]);
    const events: string[] = [];
    const exporter = new RetainingExporter(inner, { onFailing: (e) => events.push(`failing: ${e?.message}`), onRecovered: () => events.push('recovered') }, backoff);
    await expect(exportOnce(exporter)).resolves.toEqual({ code: SUCCESS });
    expect(inner.calls).toBe(4);
    expect(events).toEqual(['failing: refused #1', 'recovered']);
  });

  it('tries a batch once more and gives it up once stopping', async () => {
    const inner = scripted([ExportResultCode.FAILED]);
    const exporter = new RetainingExporter(inner, { onFailing: () => undefined, onRecovered: () => undefined }, { initialMs: 60_000, maxMs: 60_000 });
    const pending = exportOnce(exporter);
    await new Promise((r) => setTimeout(r, 10));
    expect(inner.calls).toBe(1);
    // Stopping wakes the waiting batch: one last attempt, then the failure is reported.
    exporter.stopping();
    await expect(pending).resolves.toMatchObject({ code: ExportResultCode.FAILED });
    expect(inner.calls).toBe(2);
    await expect(exportOnce(exporter)).resolves.toMatchObject({ code: ExportResultCode.FAILED });
    expect(inner.calls).toBe(3);
  });
});
