import { isAbsolute, resolve } from 'node:path';
import type { ConfigDocument, SourcePosition } from './document.js';
import type { FieldPath } from './field-path.js';
import { isRecord } from './is-record.js';

/** How an override's text becomes a config value. */
type OverrideKind = 'string' | 'integer' | 'boolean' | 'path';

/** One environment variable and the config field it sets. */
export interface EnvOverride {
  readonly variable: string;
  /** Other spellings, read in order when `variable` is unset or empty (`http_proxy` after `HTTP_PROXY`). */
  readonly aliases?: readonly string[];
  readonly path: readonly string[];
  readonly kind: OverrideKind;
}

const override = (variable: string, section: string, field: string, kind: OverrideKind = 'string'): EnvOverride => ({
  variable,
  path: [section, field],
  kind,
});

/** The standard proxy variables, either case (upper case first, as Go reads them), over `proxy.upstream_proxy`. */
const proxyOverride = (variable: string, field: string): EnvOverride => ({
  variable,
  aliases: [variable.toLowerCase()],
  path: ['proxy', 'upstream_proxy', field],
  kind: 'string',
});

/**
 * The environment variables that override config fields, with iron-proxy's names: each one,
 * when set to a non-empty value, replaces the field it names (the file's value or the default).
 * The `IRON_*` ones are iron-proxy's configuration reference; `HTTP_PROXY`, `HTTPS_PROXY` and
 * `NO_PROXY` (either case) set `proxy.upstream_proxy` as they do in iron-proxy.
 */
export const ENV_OVERRIDES: readonly EnvOverride[] = Object.freeze([
  override('IRON_DNS_ENABLED', 'dns', 'enabled', 'boolean'),
  override('IRON_DNS_LISTEN', 'dns', 'listen'),
  override('IRON_DNS_PROXY_IP', 'dns', 'proxy_ip'),
  override('IRON_DNS_UPSTREAM_RESOLVER', 'dns', 'upstream_resolver'),
  override('IRON_PROXY_HTTP_LISTEN', 'proxy', 'http_listen'),
  override('IRON_PROXY_HTTPS_LISTEN', 'proxy', 'https_listen'),
  override('IRON_PROXY_TUNNEL_LISTEN', 'proxy', 'tunnel_listen'),
  override('IRON_PROXY_MAX_REQUEST_BODY_BYTES', 'proxy', 'max_request_body_bytes', 'integer'),
  override('IRON_PROXY_MAX_RESPONSE_BODY_BYTES', 'proxy', 'max_response_body_bytes', 'integer'),
  override('IRON_PROXY_UPSTREAM_RESPONSE_HEADER_TIMEOUT', 'proxy', 'upstream_response_header_timeout'),
  override('IRON_TLS_MODE', 'tls', 'mode'),
  override('IRON_TLS_CA_CERT', 'tls', 'ca_cert', 'path'),
  override('IRON_TLS_CA_KEY', 'tls', 'ca_key', 'path'),
  override('IRON_TLS_CERT_CACHE_SIZE', 'tls', 'cert_cache_size', 'integer'),
  override('IRON_TLS_LEAF_CERT_EXPIRY_HOURS', 'tls', 'leaf_cert_expiry_hours', 'integer'),
  override('IRON_METRICS_LISTEN', 'metrics', 'listen'),
  override('IRON_MANAGEMENT_LISTEN', 'management', 'listen'),
  override('IRON_LOG_LEVEL', 'log', 'level'),
  proxyOverride('HTTP_PROXY', 'http_proxy'),
  proxyOverride('HTTPS_PROXY', 'https_proxy'),
  proxyOverride('NO_PROXY', 'no_proxy'),
]);

/** The words Go's `strconv.ParseBool` accepts, as iron-proxy reads `IRON_DNS_ENABLED`. */
const BOOLEAN_WORDS: Readonly<Record<string, boolean>> = {
  '1': true,
  t: true,
  T: true,
  true: true,
  TRUE: true,
  True: true,
  '0': false,
  f: false,
  F: false,
  false: false,
  FALSE: false,
  False: false,
};

/**
 * The value an override's text stands for. Text that is not of the field's kind is kept as
 * text, so validation reports it ("must be an integer (got "12k")") under the variable's name.
 * A relative path is made absolute against `cwd`: it comes from the environment, not the file.
 */
function overrideValue(kind: OverrideKind, text: string, cwd: string): unknown {
  switch (kind) {
    case 'integer':
      return /^[+-]?\d+$/.test(text) ? Number(text) : text;
    case 'boolean':
      return BOOLEAN_WORDS[text] ?? text;
    case 'path':
      return isAbsolute(text) ? text : resolve(cwd, text);
    case 'string':
      return text;
  }
}

/** An override `env` sets: the spelling found and its value. */
interface ActiveOverride {
  readonly variable: string;
  readonly value: string;
  readonly path: readonly string[];
  readonly kind: OverrideKind;
}

/** The overrides `env` sets (non-empty values only), in table order, each under the spelling that set it. */
export function activeEnvOverrides(env: Readonly<Record<string, string | undefined>>): ActiveOverride[] {
  return ENV_OVERRIDES.flatMap((o) => {
    const variable = [o.variable, ...(o.aliases ?? [])].find((name) => (env[name] ?? '') !== '');
    return variable === undefined ? [] : [{ variable, value: env[variable]!, path: o.path, kind: o.kind }];
  });
}

/**
 * Applies the `IRON_*` overrides `env` sets to a parsed document (creating a section the file
 * does not have), as iron-proxy does after reading its file and before its defaults. The
 * result reports each overridden field as set by its variable (`envVariable`), so validation
 * errors name the variable instead of a line; relative paths in overrides resolve against
 * `cwd`. Returns `doc` itself when no override is set.
 */
export function applyEnvOverrides(doc: ConfigDocument, env: Readonly<Record<string, string | undefined>>, cwd: string = process.cwd()): ConfigDocument {
  const active = activeEnvOverrides(env);
  if (active.length === 0) return doc;
  const data: unknown = structuredClone(doc.data ?? {});
  if (!isRecord(data)) return doc; // A document that is not a mapping is reported as written.
  for (const o of active) {
    let target: Record<string, unknown> = data;
    for (const key of o.path.slice(0, -1)) {
      const existing = target[key];
      target = isRecord(existing) ? existing : (target[key] = {});
    }
    target[o.path.at(-1)!] = overrideValue(o.kind, o.value, cwd);
  }
  return new OverriddenDocument(doc, data, active);
}

/**
 * A config made of the environment alone (no config file): empty, then the `IRON_*`
 * overrides; `name` stands for the file in messages, relative paths resolve against `cwd`.
 */
export function environmentDocument(env: Readonly<Record<string, string | undefined>>, name: string, cwd: string = process.cwd()): ConfigDocument {
  return applyEnvOverrides(new EmptyDocument(name, cwd), env, cwd);
}

/** A document with nothing written in it. */
class EmptyDocument implements ConfigDocument {
  readonly data = {};
  constructor(
    readonly file: string,
    readonly dir: string,
  ) {}
  locate(): undefined {
    return undefined;
  }
  locateKey(): undefined {
    return undefined;
  }
  transformNames(): { index: number; name: string }[] {
    return [];
  }
  envVariable(): undefined {
    return undefined;
  }
}

/** A parsed document with overrides applied: fields set by a variable are located at that variable, not in the file. */
class OverriddenDocument implements ConfigDocument {
  constructor(
    private readonly written: ConfigDocument,
    readonly data: unknown,
    private readonly overrides: readonly ActiveOverride[],
  ) {}

  get file(): string {
    return this.written.file;
  }

  get dir(): string {
    return this.written.dir;
  }

  locate(path: FieldPath): SourcePosition | undefined {
    return this.envVariable(path) === undefined ? this.written.locate(path) : undefined;
  }

  locateKey(path: FieldPath): SourcePosition | undefined {
    return this.envVariable(path) === undefined ? this.written.locateKey(path) : undefined;
  }

  transformNames(): { index: number; name: string }[] {
    return this.written.transformNames();
  }

  envVariable(path: FieldPath): string | undefined {
    return this.overrides.find((o) => o.path.every((segment, i) => path[i] === segment))?.variable;
  }
}
