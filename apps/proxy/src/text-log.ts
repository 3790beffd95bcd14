import { createFdDestination, type FlushableDestination } from './log-destination.js';

/** Log output formats: pino's JSON lines, or one human-readable line per entry. */
export type LogFormat = 'json' | 'text';

/**
 * Renders one JSON log line as Go slog's text handler writes it, the form
 * aws-outbound-jwt-proxy's `--log-format=text` users parse: `time=… level=INFO msg=… key=value …`.
 * Every field is kept (an audit record loses nothing): a nested object becomes dotted keys
 * (`tunnel.target=…`, slog's groups), arrays are written as JSON, strings are quoted only when
 * they hold spaces, quotes, `=` or nothing. A line that is not a JSON object passes unchanged.
 */
export function formatTextLine(jsonLine: string): string {
  let entry: unknown;
  try {
    entry = JSON.parse(jsonLine);
  } catch {
    return jsonLine.endsWith('\n') ? jsonLine : `${jsonLine}\n`;
  }
  if (!isObject(entry)) return `${jsonLine.trimEnd()}\n`;
  const { time, level, msg, ...fields } = entry;
  const pairs = [`time=${textValue(time ?? '')}`, `level=${String(level ?? '').toUpperCase()}`, `msg=${textValue(msg ?? '')}`];
  appendPairs(pairs, '', fields);
  return `${pairs.join(' ')}\n`;
}

function appendPairs(pairs: string[], prefix: string, fields: Record<string, unknown>): void {
  for (const [key, value] of Object.entries(fields)) {
    if (isObject(value)) appendPairs(pairs, `${prefix}${key}.`, value);
    else pairs.push(`${prefix}${key}=${textValue(value)}`);
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function textValue(value: unknown): string {
  if (typeof value === 'string') return /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value);
  return JSON.stringify(value) ?? String(value);
}

/** A destination that writes {@link formatTextLine} lines to `out` (default: stdout, asynchronously). */
export function createTextDestination(out: FlushableDestination = createFdDestination(1)): FlushableDestination {
  return {
    backlog: out.backlog,
    write: (line: string) => out.write(formatTextLine(line)),
    flush: (cb) => out.flush(cb),
  };
}
