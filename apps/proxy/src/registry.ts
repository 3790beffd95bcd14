import { existsSync, readFileSync, statSync } from 'node:fs';
import { createRequire, registerHooks } from 'node:module';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { isSea } from 'node:sea';
import { pathToFileURL } from 'node:url';
import { findSecretSources, issueAt, unavailableTransformMessage } from '@proxy/config';
import type { ConfigDocument, ConfigRegistry } from '@proxy/config';
import * as core from '@proxy/core';
import { envSource, ErrorCodes, isSecretSourceDefinition, isTransformDefinition, ProxyError } from '@proxy/core';
import type { ConfigIssue, ErrorCode, SecretSourceDefinition, TransformDefinition } from '@proxy/core';
import { awsSources } from '@proxy/source-aws';
import { fileSource } from '@proxy/source-file';
import { onePasswordSources } from '@proxy/source-1password';
import allowlist from '@proxy/transform-allowlist';
import annotate from '@proxy/transform-annotate';
import awsAuth from '@proxy/transform-aws-auth';
import awsJwt from '@proxy/transform-aws-jwt';
import bodyCapture from '@proxy/transform-body-capture';
import grpc from '@proxy/transform-grpc';
import headerAllowlist from '@proxy/transform-header-allowlist';
import headerCapture from '@proxy/transform-header-capture';
import hmacSign from '@proxy/transform-hmac-sign';
import oauthToken from '@proxy/transform-oauth-token';
import gcpAuth from '@proxy/transform-gcp-auth';
import gcpIdToken from '@proxy/transform-gcp-id-token';
import judge from '@proxy/transform-judge';
import secrets from '@proxy/transform-secrets';

/** The first-party transforms, by config name. The engine never imports these; the app does. */
export const builtinTransforms: ReadonlyMap<string, TransformDefinition> = new Map(
  ([allowlist, secrets, headerAllowlist, annotate, bodyCapture, headerCapture, awsJwt, awsAuth, hmacSign, oauthToken, gcpAuth, gcpIdToken, grpc, judge] as TransformDefinition[]).map((d) => [d.name, d]),
);

/** The secret backends this build knows; a third-party backend is named by its package name (see {@link loadExternalSecretSource}). */
export const builtinSecretSources: readonly SecretSourceDefinition[] = [
  envSource as SecretSourceDefinition,
  fileSource as SecretSourceDefinition,
  ...awsSources,
  ...onePasswordSources,
];

/** True when a transform name (or a secret source type) refers to a package or a file rather than a built-in. */
export function isExternalTransformName(name: string): boolean {
  return name.startsWith('@') || name.startsWith('.') || isAbsolute(name) || /[-/]/.test(name);
}

/** A message for a name that is neither built-in nor external, or undefined when it is known. */
export function unknownTransformMessage(name: string): string | undefined {
  if (builtinTransforms.has(name) || isExternalTransformName(name)) return undefined;
  const unavailable = unavailableTransformMessage(name);
  if (unavailable !== undefined) return unavailable;
  const known = [...builtinTransforms.keys()].join(', ');
  return `unknown transform "${name}" (built-in: ${known}; third-party transforms are named by package name)`;
}

/** The built-in transforms and secret sources, without anything third-party. */
export function builtinRegistry(): ConfigRegistry {
  return { transforms: new Map(builtinTransforms), secretSources: [...builtinSecretSources] };
}

/**
 * The registry a config is validated with: the built-ins plus the third-party transforms and
 * secret sources it names, loaded from the file's directory. A name that is unknown or cannot
 * be loaded is an issue at that `name` (or source `type`), not an exception.
 */
export async function loadConfigRegistry(document: ConfigDocument): Promise<{ registry: ConfigRegistry; issues: ConfigIssue[] }> {
  const issues: ConfigIssue[] = [];
  const transforms = new Map<string, TransformDefinition>(builtinTransforms);
  const secretSources: SecretSourceDefinition[] = [...builtinSecretSources];
  for (const { index, name } of document.transformNames()) {
    const unknown = unknownTransformMessage(name);
    if (unknown !== undefined) {
      issues.push(issueAt(document, ['transforms', index, 'name'], unknown));
      continue;
    }
    if (transforms.has(name) || !isExternalTransformName(name)) continue;
    try {
      transforms.set(name, await loadExternalTransform(name, document.dir));
    } catch (err) {
      const e = err as ProxyError;
      issues.push(issueAt(document, ['transforms', index, 'name'], `${e.message} [${e.code ?? 'error'}]`));
    }
  }
  issues.push(...(await loadExternalSecretSources(document, transforms, secretSources)));
  return { registry: { transforms, secretSources }, issues };
}

/**
 * Loads the third-party secret sources the config's transforms name (a `type` that is a
 * package name or a file path, in any source block a transform schema declares) into
 * `sources`, so that validation composes their schemas. A source that cannot be loaded is an
 * issue at its `type`.
 */
async function loadExternalSecretSources(
  document: ConfigDocument,
  transforms: ReadonlyMap<string, TransformDefinition>,
  sources: SecretSourceDefinition[],
): Promise<ConfigIssue[]> {
  const issues: ConfigIssue[] = [];
  // Each failure is reported at every block naming that type.
  const failures = new Map<string, string>();
  for (const { path, source } of findSecretSources(document.data, transforms)) {
    const type = source.type;
    if (typeof type !== 'string' || !isExternalTransformName(type) || sources.some((s) => s.type === type)) continue;
    if (!failures.has(type)) {
      try {
        sources.push(await loadExternalSecretSource(type, document.dir));
        continue;
      } catch (err) {
        const e = err as ProxyError;
        failures.set(type, `${e.message} [${e.code ?? 'error'}]`);
      }
    }
    issues.push(issueAt(document, [...path, 'type'], failures.get(type)!));
  }
  return issues;
}

/** What a third-party module is loaded as, with the error codes of each failure. */
interface ExternalKind {
  /** `transform`, `secret source`: named in messages. */
  readonly noun: string;
  readonly notFound: ErrorCode;
  readonly invalidExport: ErrorCode;
}

const TRANSFORM: ExternalKind = { noun: 'transform', notFound: ErrorCodes.TRANSFORM_NOT_FOUND, invalidExport: ErrorCodes.TRANSFORM_INVALID_EXPORT };
const SECRET_SOURCE: ExternalKind = {
  noun: 'secret source',
  notFound: ErrorCodes.SECRET_SOURCE_NOT_FOUND,
  invalidExport: ErrorCodes.SECRET_SOURCE_INVALID_EXPORT,
};

/**
 * Imports a third-party module the way Node would resolve it from the config file's directory:
 * a package name from the nearest `node_modules`, or a relative/absolute file path.
 */
async function importExternal(name: string, configDir: string, kind: ExternalKind): Promise<{ mod: Record<string, unknown>; isPath: boolean }> {
  shareOwnCore();
  const isPath = name.startsWith('.') || isAbsolute(name);
  const file = isPath ? resolve(configDir, name) : resolvePackageEntry(name, configDir, kind);
  if (!existsSync(file)) {
    throw new ProxyError(kind.notFound, `${kind.noun} module "${name}" not found at ${file}`);
  }
  try {
    return { mod: isSea() ? requireFromDisk(file) : ((await import(pathToFileURL(file).href)) as Record<string, unknown>), isPath };
  } catch (err) {
    throw new ProxyError(kind.invalidExport, `${kind.noun} package "${name}" failed to load: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Loads a module from disk in the single executable, whose `import()` and `require` reach only
 * the modules bundled into it: `require` from the file's own location, which loads ES modules
 * too (not those with top-level `await`). A CommonJS module's exports become its `default`, as
 * `import()` would give them.
 */
function requireFromDisk(file: string): Record<string, unknown> {
  const loaded = createRequire(file)(file) as Record<string | symbol, unknown>;
  return loaded[Symbol.toStringTag] === 'Module' ? loaded : { ...loaded, default: loaded };
}

/**
 * Loads a third-party transform (see {@link importExternal}). The module's `default` export (or
 * its named `transform` export) must be a transform definition whose `name` equals the
 * configured name (file paths are exempt from that check).
 */
export async function loadExternalTransform(name: string, configDir: string): Promise<TransformDefinition> {
  const { mod, isPath } = await importExternal(name, configDir, TRANSFORM);
  const candidate = mod.default ?? mod.transform;
  if (!isTransformDefinition(candidate)) {
    throw new ProxyError(
      ErrorCodes.TRANSFORM_INVALID_EXPORT,
      `transform package "${name}" does not export a transform definition (expected a default or named "transform" export with name, schema and create)`,
    );
  }
  if (!isPath && candidate.name !== name) {
    throw new ProxyError(
      ErrorCodes.TRANSFORM_NAME_MISMATCH,
      `transform package "${name}" exports a definition named "${candidate.name}"; the names must match`,
    );
  }
  return candidate;
}

/**
 * Loads a third-party secret source named by its `type` (see {@link importExternal}). The
 * module's `default` export (or its named `source` export) must be a secret source definition
 * whose `type` equals the configured type; a file path's definition takes the path as its type.
 */
export async function loadExternalSecretSource(type: string, configDir: string): Promise<SecretSourceDefinition> {
  const { mod, isPath } = await importExternal(type, configDir, SECRET_SOURCE);
  const candidate = mod.default ?? mod.source;
  if (!isSecretSourceDefinition(candidate)) {
    throw new ProxyError(
      ErrorCodes.SECRET_SOURCE_INVALID_EXPORT,
      `secret source package "${type}" does not export a secret source definition (expected a default or named "source" export with type, properties, required, label and create)`,
    );
  }
  if (isPath) return { ...candidate, type };
  if (candidate.type !== type) {
    throw new ProxyError(
      ErrorCodes.SECRET_SOURCE_TYPE_MISMATCH,
      `secret source package "${type}" exports a definition of type "${candidate.type}"; the type must be the package name`,
    );
  }
  return candidate;
}

let coreShared = false;

/**
 * Makes every `import '@proxy/core'` (and its subpaths) in the process resolve to the app's own
 * copy, whatever module it comes from. A third-party package declares `@proxy/core` as a peer
 * dependency; installed next to the config file, npm installs a second `@proxy/core` beside it,
 * and without this the package would build its `ProxyError`s and definitions from that copy:
 * the pipeline's `instanceof ProxyError` would fail and a refusal's status would become 502.
 * With one copy, what a plugin throws keeps its status, and module state (metrics, error codes)
 * is shared. The hook is a Node module resolution hook (`module.registerHooks`, Node >= 22.15),
 * registered once, before the first third-party module is imported. In the single executable
 * the app's copy is inside the bundle: see {@link shareBundledCore}.
 */
function shareOwnCore(): void {
  if (coreShared) return;
  coreShared = true;
  if (isSea()) {
    shareBundledCore();
    return;
  }
  const appModule = import.meta.url;
  registerHooks({
    resolve(specifier, context, nextResolve) {
      if (specifier === '@proxy/core' || specifier.startsWith('@proxy/core/')) return nextResolve(specifier, { ...context, parentURL: appModule });
      return nextResolve(specifier, context);
    },
  });
}

/** The URL under which the single executable serves its bundled `@proxy/core` to plugins. */
const BUNDLED_CORE_URL = 'proxy-bundled:@proxy/core';
/** Where the bundled `@proxy/core` is handed to the module {@link BUNDLED_CORE_URL} loads. */
const BUNDLED_CORE_KEY = '@proxy/app:bundled-core';

/**
 * The single executable's {@link shareOwnCore}: the bundle's `@proxy/core` has no file to
 * resolve to, so `import '@proxy/core'` from a plugin resolves to a module whose source
 * re-exports the bundled one's bindings (held on `globalThis` under a registered symbol).
 * Subpaths (`@proxy/core/fastify`, `/testing`) are not in the bundle and resolve from disk.
 */
function shareBundledCore(): void {
  (globalThis as Record<symbol, unknown>)[Symbol.for(BUNDLED_CORE_KEY)] = core;
  const names = Object.keys(core).filter((name) => /^[A-Za-z_$][\w$]*$/.test(name) && name !== 'default');
  const source = `const core = globalThis[Symbol.for(${JSON.stringify(BUNDLED_CORE_KEY)})];\nexport const { ${names.join(', ')} } = core;\n`;
  registerHooks({
    resolve: (specifier, context, nextResolve) =>
      specifier === '@proxy/core' ? { url: BUNDLED_CORE_URL, format: 'module', shortCircuit: true } : nextResolve(specifier, context),
    load: (url, context, nextLoad) => (url === BUNDLED_CORE_URL ? { format: 'module', source, shortCircuit: true } : nextLoad(url, context)),
  });
}

/** Finds `node_modules/<name>` from `fromDir` upwards and resolves its ESM entry point. */
function resolvePackageEntry(name: string, fromDir: string, kind: ExternalKind): string {
  for (let dir = resolve(fromDir); ; dir = dirname(dir)) {
    const pkgDir = join(dir, 'node_modules', name);
    const manifest = join(pkgDir, 'package.json');
    if (existsSync(manifest) && statSync(manifest).isFile()) {
      const pkg = JSON.parse(readFileSync(manifest, 'utf8')) as { exports?: unknown; module?: string; main?: string };
      return join(pkgDir, entryFromManifest(pkg) ?? 'index.js');
    }
    if (dirname(dir) === dir) break;
  }
  throw new ProxyError(
    kind.notFound,
    `${kind.noun} package "${name}" is not installed: no node_modules/${name} from ${fromDir} upwards (run "npm install ${name}" in the config file's directory)`,
  );
}

function entryFromManifest(pkg: { exports?: unknown; module?: string; main?: string }): string | undefined {
  const pick = (target: unknown): string | undefined => {
    if (typeof target === 'string') return target;
    if (typeof target === 'object' && target !== null) {
      const t = target as Record<string, unknown>;
      for (const condition of ['node', 'import', 'default']) {
        const found = pick(t[condition]);
        if (found !== undefined) return found;
      }
    }
    return undefined;
  };
  if (pkg.exports !== undefined) {
    const root = typeof pkg.exports === 'object' && pkg.exports !== null && '.' in pkg.exports ? (pkg.exports as Record<string, unknown>)['.'] : pkg.exports;
    return pick(root);
  }
  return pkg.module ?? pkg.main;
}
