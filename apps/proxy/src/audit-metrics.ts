import type { Meter } from '@opentelemetry/api';
import type { AuditRecord } from '@proxy/core';

/** Instrument names of the audit counters; the Prometheus exporter adds `_total`. */
export const AUDIT_METRIC_NAMES = Object.freeze({
  requests: 'proxy.requests',
  rejections: 'proxy.rejections',
});

/**
 * Counters fed by the audit records: every record by its `action` (allow, reject, stub,
 * error) and every record that names what refused it by `rejected_by` (a transform's config
 * name, or an engine stage: `engine`, `upstream_guard`). Labels come only from those two
 * fields, so they never carry a host, a path or a secret.
 */
export function createAuditCounter(meter: Meter): (record: AuditRecord) => void {
  const requests = meter.createCounter(AUDIT_METRIC_NAMES.requests, {
    description: 'Requests and connections the proxy decided on, by audit action.',
    unit: '{request}',
  });
  const rejections = meter.createCounter(AUDIT_METRIC_NAMES.rejections, {
    description: 'Requests refused, by the transform or engine stage that refused them.',
    unit: '{request}',
  });
  return (record) => {
    requests.add(1, { action: record.action });
    if (record.rejected_by !== undefined) rejections.add(1, { rejected_by: record.rejected_by });
  };
}
