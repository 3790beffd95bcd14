/**
 * Merging the Prometheus text of several worker processes into one scrape (`proxy.workers` >
 * 1). Counters, histograms and summaries are summed per identical label set, so
 * `proxy_requests_total{action="allow"}` is the count of every worker together. Gauges are
 * values of one process (memory, event-loop delay, uptime, requests in flight), which a sum
 * would blur: each gauge sample keeps its value and gains a `worker` label naming the process
 * it came from. The output has one `# HELP` and one `# TYPE` per metric name, in the order the
 * names first appear.
 *
 * A retired exposition (the last one scraped from a worker that has since died) contributes its
 * counters, histograms and summaries only: the sums then never go down when a worker is
 * replaced, and its gauges, which described a process that no longer exists, are dropped.
 */

/** One process's exposition: its name (a worker's cluster id, or `primary`; the `worker` label of its gauges) and its Prometheus text. */
export interface WorkerExposition {
  readonly worker: number | 'primary';
  readonly text: string;
  /** The last exposition of a worker that died: only its cumulative families count. */
  readonly retired?: boolean;
}

/** Families whose samples are cumulative, so summing them across processes is meaningful. */
const CUMULATIVE = new Set(['counter', 'histogram', 'summary']);

interface Family {
  help?: string;
  type: string;
  /** Sample key (name and sorted labels) -> the sample. */
  readonly samples: Map<string, { readonly name: string; readonly labels: readonly Label[]; value: number }>;
}

type Label = readonly [name: string, value: string];

/** Merges the expositions (see the module comment); a line that is no valid sample is left out. */
export function mergePrometheusText(expositions: readonly WorkerExposition[]): string {
  const families = new Map<string, Family>();
  for (const { worker, text, retired = false } of expositions) {
    let current: Family | undefined;
    let currentName = '';
    for (const line of text.split('\n')) {
      const meta = /^# (HELP|TYPE) (\S+)(?: (.*))?$/.exec(line);
      if (meta !== null) {
        const [, kind, name = '', rest = ''] = meta;
        current = families.get(name) ?? { type: 'untyped', samples: new Map() };
        families.set(name, current);
        currentName = name;
        if (kind === 'HELP') current.help ??= rest;
        else current.type = rest;
        continue;
      }
      if (line === '' || line.startsWith('#')) continue;
      const sample = parseSample(line);
      if (sample === undefined) continue;
      // A sample belongs to the family declared before it when its name is that family's
      // (or a histogram's or summary's `_bucket`, `_sum`, `_count`); else to a family of its own.
      let family = current;
      if (family === undefined || !belongsTo(sample.name, currentName)) {
        family = families.get(sample.name) ?? { type: 'untyped', samples: new Map() };
        families.set(sample.name, family);
      }
      if (retired && !CUMULATIVE.has(family.type)) continue;
      const labels = family.type === 'gauge' ? [...sample.labels, ['worker', String(worker)] as const] : sample.labels;
      const key = `${sample.name}{${[...labels].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([n, v]) => `${n}=${JSON.stringify(v)}`).join(',')}}`;
      const existing = family.samples.get(key);
      if (existing === undefined) family.samples.set(key, { name: sample.name, labels, value: sample.value });
      else existing.value += sample.value;
    }
  }
  const out: string[] = [];
  for (const [name, family] of families) {
    if (family.samples.size === 0) continue;
    if (family.help !== undefined) out.push(`# HELP ${name} ${family.help}`);
    out.push(`# TYPE ${name} ${family.type}`);
    for (const s of family.samples.values()) out.push(`${s.name}${formatLabels(s.labels)} ${formatValue(s.value)}`);
  }
  return out.length === 0 ? '' : `${out.join('\n')}\n`;
}

function belongsTo(sampleName: string, familyName: string): boolean {
  if (sampleName === familyName) return true;
  if (!sampleName.startsWith(familyName)) return false;
  return ['_bucket', '_sum', '_count'].includes(sampleName.slice(familyName.length));
}

/** Parses `name{a="x",b="y"} value [timestamp]` (the timestamp is dropped); undefined when malformed. */
export function parseSample(line: string): { name: string; labels: Label[]; value: number } | undefined {
  const name = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line)?.[0];
  if (name === undefined) return undefined;
  let i = name.length;
  const labels: Label[] = [];
  if (line[i] === '{') {
    i++;
    while (line[i] !== '}') {
      const labelName = /^[a-zA-Z_][a-zA-Z0-9_]*/.exec(line.slice(i))?.[0];
      if (labelName === undefined || line[i + labelName.length] !== '=' || line[i + labelName.length + 1] !== '"') return undefined;
      i += labelName.length + 2;
      let value = '';
      for (;;) {
        const c = line[i];
        if (c === undefined) return undefined;
        i++;
        if (c === '"') break;
        if (c === '\\') {
          const e = line[i++];
          value += e === 'n' ? '\n' : (e ?? '');
        } else value += c;
      }
      labels.push([labelName, value]);
      if (line[i] === ',') i++;
      else if (line[i] !== '}') return undefined;
    }
    i++;
  }
  const [valueText] = line.slice(i).trim().split(/\s+/);
  const value = parseValue(valueText ?? '');
  return value === undefined ? undefined : { name, labels, value };
}

function parseValue(text: string): number | undefined {
  if (text === '+Inf' || text === 'Inf') return Infinity;
  if (text === '-Inf') return -Infinity;
  if (text === 'NaN') return NaN;
  if (text === '') return undefined;
  const value = Number(text);
  return Number.isNaN(value) ? undefined : value;
}

function formatValue(value: number): string {
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

function formatLabels(labels: readonly Label[]): string {
  if (labels.length === 0) return '';
  const escape = (v: string): string => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
  return `{${labels.map(([n, v]) => `${n}="${escape(v)}"`).join(',')}}`;
}
