import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { MAX_WORKERS } from '@proxy/config';
import { DEFAULT_HEALTH_URL } from './health-command.js';

/** Key algorithms `proxy ca generate` offers (`rsa4096` through iron-proxy's `generate-ca`). */
export type CaAlgorithm = 'ec' | 'rsa' | 'rsa4096' | 'ed25519';

/**
 * What the command line asked for. `configFile` is a path or an `s3://bucket/key` URL; without
 * it the config is the `IRON_*` environment variables and the defaults, as in iron-proxy.
 */
export type Command =
  /** `workers`: the `--workers` flag, which overrides `proxy.workers`. */
  | { kind: 'run'; configFile?: string; workers?: WorkerCount }
  | { kind: 'validate'; configFile?: string; checkSecrets: boolean }
  /** `days` may be fractional: `generate-ca -expiry-hours` is converted to days. */
  | { kind: 'ca-generate'; outDir: string; commonName?: string; days?: number; algorithm: CaAlgorithm }
  | { kind: 'init'; dir: string; allow: string[] }
  /** `configFile`: also the third-party transforms and secret sources that config names. */
  | { kind: 'schema'; configFile?: string }
  | { kind: 'health'; url: string }
  | { kind: 'version' }
  | { kind: 'help' }
  | { kind: 'error'; message: string };

/** How many processes serve the proxy: a count from 1 to `MAX_WORKERS`, or `auto` (one per available core). */
export type WorkerCount = number | 'auto';

export const usage = `Usage:
  proxy [--config FILE|s3://BUCKET/KEY] [--workers N|auto]
                                 run the proxy (also: -config FILE, as iron-proxy accepts); the
                                 IRON_* environment variables override the file; without
                                 --config the config is those variables and the defaults;
                                 --workers runs N processes (auto: one per core; 1 to ${MAX_WORKERS}),
                                 overriding proxy.workers
  proxy validate [--config FILE|s3://BUCKET/KEY] [--check-secrets]
                                 check a config and print every problem in it;
                                 --check-secrets also fetches every secret once
  proxy ca generate [--out DIR] [--name CN] [--days N] [--alg ec|rsa|ed25519]
                                 write a new interception CA (ca.crt, ca.key) into DIR (default .)
  proxy generate-ca [-outdir DIR] [-name CN] [-expiry-hours N] [-alg rsa4096|ed25519]
                                 the same, with iron-proxy's flags (default -alg rsa4096)
  proxy init [--dir DIR] [--allow host,host]
                                 write a CA and a starter proxy.yaml into DIR (default .)
  proxy schema [--config FILE]   print the config's JSON Schema (built-in transforms; with
                                 --config also the third-party ones that file names)
  proxy health [--url URL]       check a running proxy's health endpoint (default
                                 http://127.0.0.1:9090/healthz): exit 0 when it answers 2xx
  proxy aws-jwt [flags]          run as aws-outbound-jwt-proxy (see "proxy aws-jwt --help")
  proxy --version                print the version (also: version, -version, -v)
  proxy --help                   print this help
`;

/**
 * Parses the command line. The run and validate commands take flags with one or two dashes
 * and `=` or a separate value (`--config f`, `-config=f`), so iron-proxy command lines work
 * unchanged.
 */
export function parseCommandLine(argv: readonly string[]): Command {
  const [first, second] = argv;
  if (first === 'help') return { kind: 'help' };
  if (first === 'version') return { kind: 'version' };
  if (first === 'ca') {
    if (second !== 'generate') return { kind: 'error', message: `unknown command "ca ${second ?? ''}" (did you mean "ca generate"?)` };
    return parseCaGenerate(argv.slice(2));
  }
  if (first === 'generate-ca') return parseIronGenerateCa(argv.slice(1));
  if (first === 'init') return parseInit(argv.slice(1));
  if (first === 'validate') return parseConfigCommand('validate', argv.slice(1));
  if (first === 'schema') return parseSchema(argv.slice(1));
  if (first === 'health') return parseHealth(argv.slice(1));
  return parseConfigCommand('run', argv);
}

/** Why iron-proxy's `-token` (and `IRON_PROXY_TOKEN`) is refused. */
export const MANAGED_MODE_UNAVAILABLE =
  "iron-proxy's managed mode (configuration synced from a control plane with a proxy token) is not available in this version; run with -config FILE";

/** A flag as Go's `flag` package takes it: one or two dashes, then the name, then `=value` or nothing. */
const GO_FLAG = /^--?([a-z-]+)(?:=(.*))?$/;

function parseConfigCommand(kind: 'run' | 'validate', args: readonly string[]): Command {
  let configFile: string | undefined;
  let checkSecrets = false;
  let workers: WorkerCount | undefined;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const m = GO_FLAG.exec(arg);
    if (m === null) return { kind: 'error', message: `unexpected argument "${arg}"` };
    const [, name, inline] = m;
    switch (name) {
      case 'help':
      case 'h':
        return { kind: 'help' };
      case 'version':
      case 'v':
        return { kind: 'version' };
      case 'config':
      case 'c': {
        const value = inline ?? args[++i];
        if (value === undefined || value === '') return { kind: 'error', message: `flag --${name} needs a file path or s3:// URL` };
        configFile = value;
        break;
      }
      case 'token':
        // iron-proxy's -token starts its managed mode: nothing to fall back to here.
        return { kind: 'error', message: `flag "${arg}": ${MANAGED_MODE_UNAVAILABLE}` };
      case 'workers': {
        if (kind !== 'run') return { kind: 'error', message: `unknown flag "${arg}"` };
        const value = inline ?? args[++i];
        workers = parseWorkerCount(value);
        if (workers === undefined) return { kind: 'error', message: `flag --workers needs a whole number from 1 to ${MAX_WORKERS} or "auto" (got "${value ?? ''}")` };
        break;
      }
      case 'check-secrets':
        if (kind !== 'validate' || inline !== undefined) return { kind: 'error', message: `unknown flag "${arg}"` };
        checkSecrets = true;
        break;
      default:
        return { kind: 'error', message: `unknown flag "${arg}"` };
    }
  }
  const config = configFile === undefined ? {} : { configFile };
  return kind === 'validate' ? { kind, ...config, checkSecrets } : { kind, ...config, ...(workers === undefined ? {} : { workers }) };
}

/** The number of processes a {@link WorkerCount} means here: `auto` is the available parallelism (at most `MAX_WORKERS`). */
export function resolveWorkerCount(count: WorkerCount): number {
  return count === 'auto' ? Math.min(availableParallelism(), MAX_WORKERS) : count;
}

/** A `--workers` value: `auto`, or a whole number from 1 to `MAX_WORKERS` (a larger one is refused, not clamped); undefined when it is neither. */
export function parseWorkerCount(value: string | undefined): WorkerCount | undefined {
  if (value === 'auto') return 'auto';
  if (value === undefined || !/^\d+$/.test(value)) return undefined;
  const count = Number(value);
  return count >= 1 && count <= MAX_WORKERS ? count : undefined;
}

/** iron-proxy's `generate-ca` value flags. */
const IRON_GENERATE_CA_FLAGS = new Set(['outdir', 'name', 'expiry-hours', 'alg']);

/** Longest CA validity `generate-ca` accepts: the ten years `ca generate --days` allows. */
const MAX_EXPIRY_HOURS = 3650 * 24;

/**
 * iron-proxy's `generate-ca [-outdir .] [-name CN] [-expiry-hours 8760] [-alg rsa4096|ed25519]`
 * (one or two dashes, `=` or a separate value), run as `proxy ca generate`.
 */
function parseIronGenerateCa(args: readonly string[]): Command {
  const values = new Map<string, string>();
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const m = GO_FLAG.exec(arg);
    if (m === null) return { kind: 'error', message: `generate-ca: unexpected argument "${arg}"` };
    const [, name = '', inline] = m;
    if (!IRON_GENERATE_CA_FLAGS.has(name)) return { kind: 'error', message: `generate-ca: unknown flag "${arg}" (flags: -outdir, -name, -expiry-hours, -alg)` };
    const value = inline ?? args[++i];
    if (value === undefined) return { kind: 'error', message: `generate-ca: flag -${name} needs a value` };
    values.set(name, value);
  }
  const algorithm = values.get('alg') ?? 'rsa4096';
  if (algorithm !== 'rsa4096' && algorithm !== 'ed25519') {
    return { kind: 'error', message: `generate-ca: -alg must be rsa4096 or ed25519 (got "${algorithm}")` };
  }
  const hours = values.get('expiry-hours') ?? '8760';
  if (!/^\d+$/.test(hours) || Number(hours) < 1 || Number(hours) > MAX_EXPIRY_HOURS) {
    return { kind: 'error', message: `generate-ca: -expiry-hours must be a whole number from 1 to ${MAX_EXPIRY_HOURS} (got "${hours}")` };
  }
  const name = values.get('name');
  if (name !== undefined && name.trim() === '') return { kind: 'error', message: 'generate-ca: -name must not be empty' };
  const outDir = values.get('outdir') ?? '.';
  if (outDir === '') return { kind: 'error', message: 'generate-ca: -outdir must not be empty' };
  return { kind: 'ca-generate', outDir, algorithm, days: Number(hours) / 24, ...(name === undefined ? {} : { commonName: name }) };
}

/** Runs node's strict parseArgs, turning its exceptions into a usage error. */
function strictArgs<T extends Record<string, { type: 'string' | 'boolean' }>>(args: readonly string[], options: T) {
  try {
    return { values: parseArgs({ args: [...args], options, strict: true, allowPositionals: false }).values };
  } catch (err) {
    return { error: (err as Error).message };
  }
}

function parseCaGenerate(args: readonly string[]): Command {
  const parsed = strictArgs(args, { out: { type: 'string' }, name: { type: 'string' }, days: { type: 'string' }, alg: { type: 'string' } });
  if ('error' in parsed) return { kind: 'error', message: `ca generate: ${parsed.error}` };
  const { out, name, days, alg } = parsed.values as { out?: string; name?: string; days?: string; alg?: string };
  const algorithm = alg ?? 'ec';
  if (algorithm !== 'ec' && algorithm !== 'rsa' && algorithm !== 'ed25519') {
    return { kind: 'error', message: `ca generate: --alg must be ec, rsa or ed25519 (got "${algorithm}")` };
  }
  let validity: number | undefined;
  if (days !== undefined) {
    if (!/^\d+$/.test(days) || Number(days) < 1 || Number(days) > 3650) {
      return { kind: 'error', message: `ca generate: --days must be a whole number from 1 to 3650 (got "${days}")` };
    }
    validity = Number(days);
  }
  if (name !== undefined && name.trim() === '') return { kind: 'error', message: 'ca generate: --name must not be empty' };
  return {
    kind: 'ca-generate',
    outDir: out ?? '.',
    algorithm,
    ...(name === undefined ? {} : { commonName: name }),
    ...(validity === undefined ? {} : { days: validity }),
  };
}

function parseInit(args: readonly string[]): Command {
  const parsed = strictArgs(args, { dir: { type: 'string' }, allow: { type: 'string' } });
  if ('error' in parsed) return { kind: 'error', message: `init: ${parsed.error}` };
  const { dir, allow } = parsed.values as { dir?: string; allow?: string };
  const hosts = (allow ?? '')
    .split(',')
    .map((h) => h.trim())
    .filter((h) => h !== '');
  return { kind: 'init', dir: dir ?? '.', allow: hosts };
}

function parseSchema(args: readonly string[]): Command {
  const parsed = strictArgs(args, { config: { type: 'string' } });
  if ('error' in parsed) return { kind: 'error', message: `schema: ${parsed.error}` };
  const { config } = parsed.values as { config?: string };
  if (config === '') return { kind: 'error', message: 'schema: --config needs a file path' };
  return { kind: 'schema', ...(config === undefined ? {} : { configFile: config }) };
}

function parseHealth(args: readonly string[]): Command {
  const parsed = strictArgs(args, { url: { type: 'string' } });
  if ('error' in parsed) return { kind: 'error', message: `health: ${parsed.error}` };
  const { url } = parsed.values as { url?: string };
  if (url === undefined) return { kind: 'health', url: DEFAULT_HEALTH_URL };
  if (!URL.canParse(url) || !/^https?:$/.test(new URL(url).protocol)) return { kind: 'error', message: `health: --url must be an http(s) URL (got "${url}")` };
  return { kind: 'health', url };
}
