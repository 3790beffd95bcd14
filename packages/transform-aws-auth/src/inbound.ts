import type { HeaderList } from '@proxy/core';
import { parseQuery, type QueryPair } from './query.js';

/** The credential scope and signed-header list of the workload's (placeholder) SigV4 signature. */
export interface InboundScope {
  /** The placeholder access key id the workload signed with. */
  readonly accessKeyId: string;
  readonly region: string;
  readonly service: string;
  /** Lowercase names of the headers the workload signed. */
  readonly signedHeaders: readonly string[];
}

/** A signature in the `Authorization` header. */
export interface HeaderSignature extends InboundScope {
  readonly kind: 'header';
}

/** A presigned URL: the signature in the query string. */
export interface QuerySignature extends InboundScope {
  readonly kind: 'query';
  /** When the workload signed the URL; the re-signed URL keeps it, so its validity window is unchanged. */
  readonly signedAt: Date;
  /** `X-Amz-Expires`, seconds. */
  readonly expiresIn: number;
  /** The query parameters other than the signature's own, as received. */
  readonly kept: readonly QueryPair[];
}

/** The workload's signature, in a header or in a presigned URL. */
export type InboundSignature = HeaderSignature | QuerySignature;

/** The query parameters of a presigned URL's signature (the placeholder ones are all removed). */
export const SIGNATURE_PARAMS: ReadonlySet<string> = new Set([
  'X-Amz-Algorithm',
  'X-Amz-Credential',
  'X-Amz-Date',
  'X-Amz-Expires',
  'X-Amz-SignedHeaders',
  'X-Amz-Signature',
  'X-Amz-Security-Token',
]);

const ALGORITHM = 'AWS4-HMAC-SHA256';
/** `AKID/yyyymmdd/region/service/aws4_request`. */
const CREDENTIAL = /^([^/\s]+)\/(\d{8})\/([a-z0-9-]+)\/([a-z0-9-]+)\/aws4_request$/;
const SIGNED_HEADERS = /^[a-z0-9!#$%&'*+.^_`|~-]+(?:;[a-z0-9!#$%&'*+.^_`|~-]+)*$/;
/** `yyyymmddThhmmssZ`. */
const AMZ_DATE = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;
/** SigV4 presigned URLs live at most a week. */
const MAX_EXPIRES_SECONDS = 604_800;

/**
 * Reads the workload's SigV4 signature: the `Authorization` header
 * (`AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...`) or, for a presigned
 * URL, the `X-Amz-*` query parameters. Undefined when the request carries neither in a form
 * that can be re-signed (no signature, another scheme, a header sent twice, a malformed scope).
 */
export function parseInboundSignature(headers: HeaderList, rawQuery: string): InboundSignature | undefined {
  const authorization = headers.getAll('authorization');
  if (authorization.length > 1) return undefined;
  if (authorization.length === 1) return parseAuthorization(authorization[0]!);
  return parsePresigned(rawQuery);
}

function parseAuthorization(value: string): HeaderSignature | undefined {
  const trimmed = value.trim();
  if (!trimmed.startsWith(`${ALGORITHM} `)) return undefined;
  const fields = new Map<string, string>();
  for (const part of trimmed.slice(ALGORITHM.length).split(',')) {
    const at = part.indexOf('=');
    if (at < 0) return undefined;
    fields.set(part.slice(0, at).trim(), part.slice(at + 1).trim());
  }
  const scope = parseScope(fields.get('Credential'), fields.get('SignedHeaders'));
  if (scope === undefined || !/^[0-9a-f]{64}$/.test(fields.get('Signature') ?? '')) return undefined;
  return { kind: 'header', ...scope };
}

function parsePresigned(rawQuery: string): QuerySignature | undefined {
  const pairs = parseQuery(rawQuery);
  const param = (name: string): string | undefined => {
    const found = pairs.filter((p) => p.name === name);
    return found.length === 1 ? found[0]!.value : undefined;
  };
  if (param('X-Amz-Credential') === undefined) return undefined;
  if (param('X-Amz-Algorithm') !== ALGORITHM) return undefined;
  const scope = parseScope(param('X-Amz-Credential'), param('X-Amz-SignedHeaders'));
  const signedAt = parseAmzDate(param('X-Amz-Date'));
  const expires = param('X-Amz-Expires');
  const expiresIn = expires !== undefined && /^\d{1,6}$/.test(expires) ? Number(expires) : NaN;
  if (scope === undefined || signedAt === undefined || !(expiresIn >= 1 && expiresIn <= MAX_EXPIRES_SECONDS)) return undefined;
  return { kind: 'query', ...scope, signedAt, expiresIn, kept: pairs.filter((p) => !SIGNATURE_PARAMS.has(p.name)) };
}

function parseScope(credential: string | undefined, signedHeaders: string | undefined): InboundScope | undefined {
  const m = credential === undefined ? null : CREDENTIAL.exec(credential);
  if (m === null || signedHeaders === undefined || !SIGNED_HEADERS.test(signedHeaders)) return undefined;
  return { accessKeyId: m[1]!, region: m[3]!, service: m[4]!, signedHeaders: signedHeaders.split(';') };
}

function parseAmzDate(value: string | undefined): Date | undefined {
  const m = value === undefined ? null : AMZ_DATE.exec(value);
  if (m === null) return undefined;
  const date = new Date(`${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}Z`);
  return Number.isNaN(date.getTime()) ? undefined : date;
}
