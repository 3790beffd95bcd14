import { existsSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { isSea } from 'node:sea';
import { pathToFileURL } from 'node:url';
import { unavailableTransformMessage } from '@proxy/config';
import { envSource, ErrorCodes, isSecretSourceDefinition, isTransformDefinition, ProxyError } from '@proxy/core';
import type { ErrorCode, SecretSourceDefinition, TransformDefinition } from '@proxy/core';
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
