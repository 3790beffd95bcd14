import { pino } from 'pino';
import type { DestinationStream } from 'pino';

/** Log output formats: pino's JSON lines, or one human-readable line per entry. */
export type LogFormat = 'json' | 'text';

/** A log destination that can also be flushed (pino's `logger.flush` calls it). */
export interface FlushableDestination extends DestinationStream {
  flush(cb: (err?: Error) => void): void;
}

/**
 * Renders one JSON log line as `<time> <LEVEL> <msg> key=value ...`: every field is kept (an
 * audit record loses nothing), strings are quoted only when they hold spaces, quotes or `=`,
 * objects and arrays are written as JSON. A line that is not a JSON object passes unchanged.
 */
export function formatTextLine(jsonLine: string): string {
  let entry: unknown;
  try {
    entry = JSON.parse(jsonLine);
  } catch {
    return jsonLine.endsWith('\n') ? jsonLine : `${jsonLine}\n`;
  }
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) return `${jsonLine.trimEnd()}\n`;
  const { time, level, msg, ...fields } = entry as Record<string, unknown>;
  const head = [String(time ?? ''), String(level ?? '').toUpperCase().padEnd(5), textValue(msg ?? '')];
  const tail = Object.entries(fields).map(([key, value]) => `${key}=${textValue(value)}`);
  return `${[...head, ...tail].join(' ')}\n`;
}

function textValue(value: unknown): string {
  if (typeof value === 'string') return /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value);
  return JSON.stringify(value) ?? String(value);
}

/** A destination that writes {@link formatTextLine} lines to `out` (default: stdout, asynchronously). */
export function createTextDestination(out: FlushableDestination = pino.destination({ dest: 1, sync: false })): FlushableDestination {
  return {
    write: (line: string) => out.write(formatTextLine(line)),
    flush: (cb) => out.flush(cb),
  };
}
