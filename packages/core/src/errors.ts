/**
 * Typed errors with stable codes. Every error the proxy reports to an operator or a client
 * carries one of these codes; tests assert the code, never the message text.
 */

/** Every stable error code, grouped by area. */
export const ErrorCodes = {
  /** config */
  CONFIG_INVALID: 'PROXY_ERR_CONFIG_INVALID',
  CONFIG_READ: 'PROXY_ERR_CONFIG_READ',
  CONFIG_YAML: 'PROXY_ERR_CONFIG_YAML',
  CONFIG_TEMPLATE: 'PROXY_ERR_CONFIG_TEMPLATE',
  CONFIG_EXISTS: 'PROXY_ERR_CONFIG_EXISTS',
  DURATION_INVALID: 'PROXY_ERR_DURATION_INVALID',
  /** transform loading */
  TRANSFORM_NOT_FOUND: 'PROXY_ERR_TRANSFORM_NOT_FOUND',
  TRANSFORM_INVALID_EXPORT: 'PROXY_ERR_TRANSFORM_INVALID_EXPORT',
  TRANSFORM_NAME_MISMATCH: 'PROXY_ERR_TRANSFORM_NAME_MISMATCH',
  TRANSFORM_CREATE_FAILED: 'PROXY_ERR_TRANSFORM_CREATE_FAILED',
  /** request handling */
  TRANSFORM_FAILED: 'PROXY_ERR_TRANSFORM_FAILED',
  BODY_TOO_LARGE: 'PROXY_ERR_BODY_TOO_LARGE',
  BODY_BUDGET_EXHAUSTED: 'PROXY_ERR_BODY_BUDGET_EXHAUSTED',
  BODY_TIMEOUT: 'PROXY_ERR_BODY_TIMEOUT',
  HEAD_TOO_LARGE: 'PROXY_ERR_HEAD_TOO_LARGE',
  BAD_REQUEST: 'PROXY_ERR_BAD_REQUEST',
  MISDIRECTED_REQUEST: 'PROXY_ERR_MISDIRECTED_REQUEST',
  RETARGET_REFUSED: 'PROXY_ERR_RETARGET_REFUSED',
  UPSTREAM_DENIED: 'PROXY_ERR_UPSTREAM_DENIED',
  UPSTREAM_UNREACHABLE: 'PROXY_ERR_UPSTREAM_UNREACHABLE',
  UPSTREAM_TIMEOUT: 'PROXY_ERR_UPSTREAM_TIMEOUT',
  UPSTREAM_RESOLVE: 'PROXY_ERR_UPSTREAM_RESOLVE',
  RESPONSE_TOO_LARGE: 'PROXY_ERR_RESPONSE_TOO_LARGE',
  /** secrets */
  SECRET_UNAVAILABLE: 'PROXY_ERR_SECRET_UNAVAILABLE',
  SECRET_SOURCE_UNKNOWN: 'PROXY_ERR_SECRET_SOURCE_UNKNOWN',
  SECRET_JSON_KEY: 'PROXY_ERR_SECRET_JSON_KEY',
  /** third-party secret sources (`type: "@acme/proxy-source-foo"`) */
  SECRET_SOURCE_NOT_FOUND: 'PROXY_ERR_SECRET_SOURCE_NOT_FOUND',
  SECRET_SOURCE_INVALID_EXPORT: 'PROXY_ERR_SECRET_SOURCE_INVALID_EXPORT',
  SECRET_SOURCE_TYPE_MISMATCH: 'PROXY_ERR_SECRET_SOURCE_TYPE_MISMATCH',
  /** TLS interception: the CA and the leaf certificates minted with it */
  CA_READ: 'PROXY_ERR_CA_READ',
  CA_INVALID: 'PROXY_ERR_CA_INVALID',
  CA_KEY_MISMATCH: 'PROXY_ERR_CA_KEY_MISMATCH',
  CA_EXPIRED: 'PROXY_ERR_CA_EXPIRED',
  CA_EXISTS: 'PROXY_ERR_CA_EXISTS',
  CA_WRITE: 'PROXY_ERR_CA_WRITE',
  TLS_SERVER_NAME_INVALID: 'PROXY_ERR_TLS_SERVER_NAME_INVALID',
} as const;

/** The union of every stable error code. */
export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

/**
 * The base error of the project. `status` is the HTTP status a request that fails with this
 * error receives; `reason` is the short machine-readable reason written to the audit record
 * (for example `body_too_large`). Messages never contain secret values.
 */
export class ProxyError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly reason: string;

  constructor(code: ErrorCode, message: string, options: { status?: number; reason?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ProxyError';
    this.code = code;
    this.status = options.status ?? 500;
    this.reason = options.reason ?? code.replace(/^PROXY_ERR_/, '').toLowerCase();
  }
}

/** One problem found in a configuration file, located as precisely as the loader can. */
export interface ConfigIssue {
  /** Field path in the document, e.g. `transforms[1].config.secrets[0].source.var`. */
  readonly path: string;
  readonly message: string;
  readonly file?: string;
  readonly line?: number;
  readonly column?: number;
}

/** A configuration that failed validation: every issue found, reported at once. */
export class ConfigError extends ProxyError {
  readonly issues: readonly ConfigIssue[];

  constructor(issues: readonly ConfigIssue[], code: ErrorCode = ErrorCodes.CONFIG_INVALID) {
    super(code, formatConfigIssues(issues), { status: 500, reason: 'config_invalid' });
    this.name = 'ConfigError';
    this.issues = issues;
  }
}

/** Renders issues one per line as `file:line:column: path: message`. */
export function formatConfigIssues(issues: readonly ConfigIssue[]): string {
  return issues
    .map((i) => {
      const where = [i.file, i.line, i.column].filter((p) => p !== undefined).join(':');
      return `${where ? `${where}: ` : ''}${i.path ? `${i.path}: ` : ''}${i.message}`;
    })
    .join('\n');
}
