import { pino } from 'pino';
import type { Logger as PinoLogger, DestinationStream } from 'pino';
import type { AuditRecord, SecretRedactor } from '@proxy/core';

/** Log levels an operator can choose (`log.level`). */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/**
 * The process logger: one JSON object per line, `level` as a word and an ISO `time`, so the
 * audit stream is easy to ship and to grep. With a `redactor`, every line is passed through it
 * as it is written: no log line or audit record can hold a known secret value, whichever
 * transform or field put it there.
 */
export function createLogger(level: LogLevel, destination?: DestinationStream, redactor?: SecretRedactor): PinoLogger {
  return pino(
    {
      level,
      base: null,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      ...(redactor === undefined ? {} : { hooks: { streamWrite: (line: string) => redactor.redact(line) } }),
    },
    destination ?? pino.destination({ dest: 1, sync: false }),
  );
}

/**
 * Writes one audit record as one log line: allowed and stubbed requests at INFO, rejections at
 * WARN, failures at ERROR.
 */
export function writeAudit(logger: PinoLogger, record: AuditRecord): void {
  const line = { msg: 'request', ...record };
  if (record.action === 'reject') logger.warn(line);
  else if (record.action === 'error') logger.error(line);
  else logger.info(line);
}
