import { Ajv, type ErrorObject, type FuncKeywordDefinition, type SchemaValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { CidrSet, isIpLiteral } from './cidr.js';
import { parseDuration } from './duration.js';
import type { ConfigIssue } from './errors.js';
import { compileHostGlob, hostPortConflict, isPortRange, splitHostPattern } from './rules.js';
import { envSource, secretSourceSchema, SECRET_SOURCE_SCHEMA_ID, type SecretSourceDefinition } from './secrets.js';
import { compileTemplate } from './template.js';

export { durationSchema, parseDuration } from './duration.js';

/** A JSON Schema object (draft-07, as ajv reads it). */
export type JsonSchema = Record<string, unknown>;

// ajv-formats is CommonJS; under NodeNext its default import is the module object.
const addFormats = addFormatsModule as unknown as typeof addFormatsModule.default;

/** Options of {@link createSchemaValidator}. */
export interface SchemaValidatorOptions {
  /** Secret backends the `source` schema ({@link SECRET_SOURCE_SCHEMA_ID}) accepts; default `[envSource]`. */
  readonly secretSources?: readonly SecretSourceDefinition[];
  /**
   * Instead of checking secret sources, accept any value where a schema `$ref`s
   * {@link SECRET_SOURCE_SCHEMA_ID} and report it here with its JSON pointer: lets a loader
   * find which source types a config uses before it knows every backend (third-party ones are
   * loaded by type). `secretSources` is ignored then.
   */
  readonly onSecretSource?: (source: unknown, instancePath: string) => void;
}

/**
 * Builds the ajv instance every config in the project is validated with: all errors,
 * defaults applied, strict schemas (except `strictRequired`, so `oneOf: [{ required: [...] }]`
 * works), the `discriminator` keyword, the formats of `ajv-formats` (`uri`, `ipv4`, ...) and
 * these formats and keywords:
 * - format `duration`: {@link parseDuration} accepts it;
 * - format `cidr`: an IPv4 or IPv6 CIDR (`10.0.0.0/8`, `fd00::/8`);
 * - format `host-glob`: `*`, `*.example.com`, `api.example.com`, or an IP literal (no port);
 * - format `host-port-glob`: a `host-glob` with an optional port, `1-65535` or `*`
 *   (`api.example.com:443`, `*.example.com:*`, `[2001:db8::1]:8080`);
 * - format `port-range`: `"*"` or `"lo-hi"` (1 <= lo <= hi <= 65535);
 * - format `path-glob`: starts with `/`;
 * - format `header-pattern`: a header name or a `/regex/` that compiles;
 * - keyword `proxyTemplate: { fields: [...], keyFields?: { Prefix: "<relative pointer>" } }`:
 *   the string is a template of the safe template language that only references the listed
 *   fields, and `.Prefix.<key>` for each key of the object the relative JSON pointer names
 *   (see `compileTemplate`); the error message is the template error
 *   (`template references unknown field .Foo at offset 3`), its `params.allowed` the fields;
 * - keyword `proxyHostWithoutPort: true` (on a rule's `ports`): the sibling `host` must not
 *   carry a port as well; the error is at `ports` and says so.
 * The composed secret-source schema is registered under {@link SECRET_SOURCE_SCHEMA_ID}
 * (see {@link registerSecretSources}), so transform schemas can `$ref` it.
 */
export function createSchemaValidator(options: SchemaValidatorOptions = {}): Ajv {
  const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: true, strictRequired: false, discriminator: true });
  addFormats(ajv);
  ajv.addFormat('duration', { type: 'string', validate: (s: string) => succeeds(() => parseDuration(s)) });
  ajv.addFormat('cidr', { type: 'string', validate: (s: string) => succeeds(() => CidrSet.parse([s])) });
  ajv.addFormat('host-glob', { type: 'string', validate: (s: string) => isIpLiteral(s) || succeeds(() => compileHostGlob(s)) });
  ajv.addFormat('host-port-glob', { type: 'string', validate: (s: string) => succeeds(() => splitHostPattern(s)) });
  ajv.addFormat('port-range', { type: 'string', validate: isPortRange });
  ajv.addFormat('path-glob', { type: 'string', validate: (s: string) => s.startsWith('/') });
  ajv.addFormat('header-pattern', { type: 'string', validate: isHeaderPattern });
  ajv.addKeyword(proxyTemplateKeyword);
  ajv.addKeyword(hostWithoutPortKeyword);
  const probe = options.onSecretSource;
  if (probe === undefined) {
    registerSecretSources(ajv, options.secretSources ?? [envSource]);
  } else {
    ajv.addKeyword({
      keyword: 'proxySecretSourceProbe',
      validate: (_schema: unknown, data: unknown, _parent: unknown, cxt?: { instancePath: string }) => {
        probe(data, cxt?.instancePath ?? '');
        return true;
      },
    });
    ajv.addSchema({ proxySecretSourceProbe: true }, SECRET_SOURCE_SCHEMA_ID);
  }
  return ajv;
}

/** Registers the composed schema of the given secret backends under {@link SECRET_SOURCE_SCHEMA_ID}. */
export function registerSecretSources(ajv: Ajv, sources: readonly SecretSourceDefinition[]): void {
  ajv.addSchema(secretSourceSchema(sources), SECRET_SOURCE_SCHEMA_ID);
}

/**
 * Turns ajv errors into readable issues, paths written as fields (`secrets[0].source.var`,
 * the missing or unknown property included). `prefix` is prepended to every path.
 * A failed `discriminator` is dropped when a clearer error (the `type` enum listing the known
 * values, a missing `type`) was reported for the same object.
 */
export function toConfigIssues(errors: readonly ErrorObject[] | null | undefined, prefix = ''): ConfigIssue[] {
  const list = errors ?? [];
  const issues: ConfigIssue[] = [];
  for (const e of list) {
    if (e.keyword === 'discriminator' && list.some((o) => o !== e && o.instancePath.startsWith(e.instancePath) && o.keyword !== 'discriminator')) {
      continue;
    }
    let path = pointerToPath(e.instancePath, prefix);
    let message = e.message ?? 'is invalid';
    const params = e.params as Record<string, unknown>;
    if (e.keyword === 'required') {
      path = joinPath(path, String(params.missingProperty));
      message = 'is required';
    } else if (e.keyword === 'additionalProperties') {
      path = joinPath(path, String(params.additionalProperty));
      message = 'is not a known field';
    } else if (e.keyword === 'enum') {
      message = `must be one of: ${(params.allowedValues as unknown[]).map((v) => String(v)).join(', ')}`;
    } else if (e.keyword === 'const') {
      message = `must be ${JSON.stringify(params.allowedValue)}`;
    } else if (e.keyword === 'format') {
      message = `must be a valid ${String(params.format)}`;
    }
    issues.push({ path, message });
  }
  return issues;
}

/** `/secrets/0/source/var` -> `secrets[0].source.var`. */
function pointerToPath(pointer: string, prefix: string): string {
  let path = prefix;
  if (pointer === '') return path;
  for (const raw of pointer.slice(1).split('/')) {
    const segment = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    path = /^\d+$/.test(segment) ? `${path}[${segment}]` : joinPath(path, segment);
  }
  return path;
}

function joinPath(path: string, field: string): string {
  const part = /^[A-Za-z_$][\w$-]*$/.test(field) ? field : JSON.stringify(field);
  return path === '' ? part : `${path}.${part}`;
}

/** The value of a `proxyTemplate` keyword. */
interface TemplateKeyword {
  readonly fields: readonly string[];
  readonly keyFields?: Readonly<Record<string, string>>;
}

/** Validates a `proxyTemplate` string; ajv reads the errors of the last call from `.errors`. */
const validateTemplate = Object.assign(
  (schema: TemplateKeyword, data: string, _parent?: unknown, cxt?: Parameters<SchemaValidateFunction>[3]): boolean => {
    const allowed = templateFields(schema, cxt);
    try {
      compileTemplate(data, allowed);
      validateTemplate.errors = [];
      return true;
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      validateTemplate.errors = [{ keyword: 'proxyTemplate', message, params: { allowed } }];
      return false;
    }
  },
  { errors: [] as Partial<ErrorObject>[] },
);

/**
 * The fields a template may reference: the keyword's `fields`, plus `<prefix>.<key>` for each
 * key of the object each `keyFields` pointer finds. When that object is missing or is not an
 * object (its own schema reports it), any `<prefix>.*` is let through rather than cascading.
 */
function templateFields(schema: TemplateKeyword, cxt: Parameters<SchemaValidateFunction>[3] | undefined): string[] {
  const fields = [...schema.fields];
  for (const [prefix, pointer] of Object.entries(schema.keyFields ?? {})) {
    const target = cxt === undefined ? undefined : resolveRelativePointer(cxt.rootData, cxt.instancePath, pointer);
    if (typeof target === 'object' && target !== null && !Array.isArray(target)) {
      for (const key of Object.keys(target)) fields.push(`${prefix}.${key}`);
    } else {
      fields.push(`${prefix}.*`);
    }
  }
  return fields;
}

/** `2/credentials` from `/signature/message`: up two levels, then down `credentials`. */
function resolveRelativePointer(root: unknown, instancePath: string, pointer: string): unknown {
  const m = /^(\d+)((?:\/[^/]*)*)$/.exec(pointer);
  if (m === null) return undefined;
  const here = instancePath === '' ? [] : instancePath.slice(1).split('/');
  const up = Number(m[1]);
  if (up > here.length) return undefined;
  const down = m[2] === '' ? [] : m[2]!.slice(1).split('/');
  let node: unknown = root;
  for (const raw of [...here.slice(0, here.length - up), ...down]) {
    if (typeof node !== 'object' || node === null) return undefined;
    node = (node as Record<string, unknown>)[raw.replace(/~1/g, '/').replace(/~0/g, '~')];
  }
  return node;
}

/**
 * The `proxyTemplate` keyword: a string that compiles as a template over the listed fields,
 * and over `<prefix>.<key>` for every key of the objects named by `keyFields` (relative JSON
 * pointers from the template string: `{ Credentials: "2/credentials" }` at
 * `signature.message` lets `.Credentials.<name>` name each entry of the sibling
 * `credentials` map, and nothing else).
 */
const proxyTemplateKeyword: FuncKeywordDefinition = {
  keyword: 'proxyTemplate',
  type: 'string',
  schemaType: 'object',
  metaSchema: {
    type: 'object',
    properties: {
      fields: { type: 'array', items: { type: 'string' } },
      keyFields: { type: 'object', additionalProperties: { type: 'string', pattern: '^\\d+(?:/[^/]*)*$' } },
    },
    required: ['fields'],
    additionalProperties: false,
  },
  errors: true,
  validate: validateTemplate,
};

/** Validates a rule's `ports` against its sibling `host`; ajv reads the errors of the last call from `.errors`. */
const validateHostWithoutPort = Object.assign(
  (enabled: boolean, _ports: unknown, _schema?: unknown, cxt?: Parameters<SchemaValidateFunction>[3]): boolean => {
    const host: unknown = (cxt?.parentData as Record<string, unknown> | undefined)?.host;
    const port = enabled && typeof host === 'string' ? hostPortOf(host) : undefined;
    validateHostWithoutPort.errors = port === undefined ? [] : [{ keyword: 'proxyHostWithoutPort', message: hostPortConflict(String(host)), params: {} }];
    return port === undefined;
  },
  { errors: [] as Partial<ErrorObject>[] },
);

/**
 * The `proxyHostWithoutPort` keyword, on a rule's `ports`: a rule names its ports in one place,
 * so `ports` beside a `host` that carries a port (`api.example.com:443`) is an error.
 */
const hostWithoutPortKeyword: FuncKeywordDefinition = {
  keyword: 'proxyHostWithoutPort',
  type: 'array',
  schemaType: 'boolean',
  errors: true,
  validate: validateHostWithoutPort,
};

/** The port written in a `host-port-glob`, or undefined (none, or the host is malformed: its format reports that). */
function hostPortOf(host: string): number | '*' | undefined {
  try {
    return splitHostPattern(host).port;
  } catch {
    return undefined;
  }
}

/** An HTTP field-name token (RFC 9110). */
const HEADER_TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** A header name, or `/regex/flags` that compiles. */
function isHeaderPattern(s: string): boolean {
  const m = /^\/(.+)\/$/s.exec(s);
  if (m === null) return HEADER_TOKEN.test(s);
  return succeeds(() => new RegExp(m[1]!, 'i'));
}

function succeeds(run: () => unknown): boolean {
  try {
    run();
    return true;
  } catch {
    return false;
  }
}
