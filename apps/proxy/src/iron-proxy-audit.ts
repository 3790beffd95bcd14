import type { AuditRecord, RequestMode } from '@proxy/core';

/** The record's fields that iron-proxy writes inside its `audit` group (in its order). */
const AUDIT_GROUP_FIELDS = ['host', 'method', 'path', 'remote_addr', 'sni', 'mode', 'action', 'status_code', 'duration_ms'] as const;

/** The fields rendered elsewhere in iron-proxy's line: not copied over as they are. */
const RENDERED_FIELDS = new Set<string>([...AUDIT_GROUP_FIELDS, 'port', 'tunnel']);

/**
 * One audit record in the shape iron-proxy writes (`msg: "request"`, the request's core fields
 * in an `audit` group, `tunnel: {target}`, the transform traces and groups at the top level):
 * - `host` carries the port when it is not 80 or 443, and always for a tunnel opening
 *   (`target:port`), as iron-proxy writes `r.Host` (never when the port is unknown, 0);
 * - `mode` is `mitm` or `sni-only`, iron-proxy's two words: plain HTTP, reverse-proxy and
 *   tunnel-opening records say `mitm`, as iron-proxy runs them through the same pipeline;
 * - a failure's reason is also written as `error`, iron-proxy's field for it.
 * Our additions (`request_id`, `reason`, `upstream_addr`, `tunnel_protocol`, `tunnel_decision`) stay at the top
 * level, where a parser of iron-proxy's lines ignores them.
 */
export function ironProxyAuditLine(record: AuditRecord): Record<string, unknown> {
  const audit: Record<string, unknown> = {};
  for (const field of AUDIT_GROUP_FIELDS) {
    if (record[field] !== undefined) audit[field] = record[field];
  }
  audit['host'] = hostOf(record);
  audit['mode'] = ironProxyMode(record.mode);
  const line: Record<string, unknown> = { msg: 'request', audit };
  if (record.tunnel !== undefined) {
    line['tunnel'] = { target: record.tunnel.target };
    line['tunnel_protocol'] = record.tunnel.protocol;
    if (record.tunnel.decision !== undefined) line['tunnel_decision'] = record.tunnel.decision;
  }
  for (const [key, value] of Object.entries(record)) {
    if (!RENDERED_FIELDS.has(key)) line[key] = value;
  }
  if (record.action === 'error' && record.reason !== undefined) line['error'] = record.reason;
  return line;
}

function hostOf(record: AuditRecord): string {
  const withPort = record.port !== 0 && (record.mode === 'tunnel' || (record.port !== 80 && record.port !== 443));
  if (!withPort) return record.host;
  return record.host.includes(':') ? `[${record.host}]:${record.port}` : `${record.host}:${record.port}`;
}

function ironProxyMode(mode: RequestMode): 'mitm' | 'sni-only' {
  return mode === 'sni-only' ? 'sni-only' : 'mitm';
}
