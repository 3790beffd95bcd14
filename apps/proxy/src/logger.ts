import { pino } from 'pino';
import type { Logger as PinoLogger, DestinationStream } from 'pino';
import type { AuditRecord, SecretRedactor } from '@proxy/core';
import { ironProxyAuditLine } from './iron-proxy-audit.js';
import { createFdDestination, type LogBacklog } from './log-destination.js';

/** Log levels an operator can choose (`log.level`). */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/**
 * How the process writes its log lines and audit records:
 * - `native`: JSON lines on stdout, lower-case `level`, the audit record's fields at the top level;
 * - `iron-proxy` (`log.audit_format: iron-proxy`): as iron-proxy writes them, JSON lines on stderr
 *   with upper-case levels and the record's core fields in an `audit` group, so log pipelines
 *   built for iron-proxy parse them unchanged;
 * - `aws-outbound-jwt-proxy` (that proxy's command line): upper-case levels, and the per-request
 *   records at debug only, as that proxy writes them.
 */
export type LogStyle = 'native' | 'iron-proxy' | 'aws-outbound-jwt-proxy';

/** The process logger and the writer of its audit records, in one {@link LogStyle}. */
export interface ProcessLog {
  readonly logger: PinoLogger;
  /** Writes one audit record as one line: allowed and stubbed requests at INFO, rejections at WARN, failures at ERROR (all at DEBUG in the aws-outbound-jwt-proxy style). */
  writeAudit(record: AuditRecord): void;
  /** The bound on lines waiting for the output, and what it dropped; undefined for a destination without one (tests). */
  readonly backlog: LogBacklog | undefined;
}

/**
 * Creates the process logger: one JSON object per line with an ISO `time`, so the audit stream
 * is easy to ship and to grep. With a `redactor`, every line is passed through it as it is
 * written: no log line or audit record can hold a known secret value, whichever transform or
 * field put it there. `destination` replaces the style's stream (stdout, or stderr for
 * `iron-proxy`). `bindings` are fields every line carries (a cluster worker's `worker` id).
 *
 * When the destination dropped lines because its output stalled (see `LogBacklog`), a warning
 * saying how many is logged as soon as the output has caught up.
 */
export function createProcessLog(
  level: LogLevel,
  style: LogStyle,
  destination?: DestinationStream,
  redactor?: SecretRedactor,
  bindings?: Readonly<Record<string, unknown>>,
): ProcessLog {
  const upperCase = style !== 'native';
  const out = destination ?? createFdDestination(style === 'iron-proxy' ? 2 : 1);
  const logger = pino(
    {
      level,
      base: bindings ?? null,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: upperCase ? label.toUpperCase() : label }) },
      ...(redactor === undefined ? {} : { hooks: { streamWrite: (line: string) => redactor.redact(line) } }),
    },
    out,
  );
  const backlog = 'backlog' in out ? (out as { backlog: LogBacklog }).backlog : undefined;
  backlog?.onCaughtUp((dropped) => {
    logger.warn({ dropped_lines: dropped }, `the log output fell behind: ${dropped} log line(s) and audit record(s) were dropped (log.max_backlog_bytes)`);
  });
  const shape = style === 'iron-proxy' ? ironProxyAuditLine : nativeAuditLine;
  return {
    logger,
    backlog,
    writeAudit(record) {
      const line = shape(record);
      if (style === 'aws-outbound-jwt-proxy') logger.debug(line);
      else if (record.action === 'reject') logger.warn(line);
      else if (record.action === 'error') logger.error(line);
      else logger.info(line);
    },
  };
}

function nativeAuditLine(record: AuditRecord): Record<string, unknown> {
  return { msg: 'request', ...record };
}
