import type { IncomingHttpHeaders } from 'node:http';

/** What the `Authorization` header of a SigV4-signed request says about its signer. */
export interface SigV4Authorization {
  readonly accessKeyId: string;
  /** `yyyymmdd` of the credential scope. */
  readonly date: string;
  readonly region: string;
  readonly service: string;
  /** Lowercase header names, in the order they were signed. */
  readonly signedHeaders: readonly string[];
  /** Hex signature. */
  readonly signature: string;
}

const AUTHORIZATION =
  /^AWS4-HMAC-SHA256 Credential=([^/,\s]+)\/(\d{8})\/([^/,\s]+)\/([^/,\s]+)\/aws4_request,\s*SignedHeaders=([a-z0-9;-]+),\s*Signature=([0-9a-f]{64})$/;

/** Parses an `AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...` header; undefined when it is not one. */
export function parseSigV4Authorization(header: string | undefined): SigV4Authorization | undefined {
  const m = header === undefined ? null : AUTHORIZATION.exec(header.trim());
  if (m === null) return undefined;
  return {
    accessKeyId: m[1]!,
    date: m[2]!,
    region: m[3]!,
    service: m[4]!,
    signedHeaders: m[5]!.split(';'),
    signature: m[6]!,
  };
}

/** The parts of a received request a SigV4 signature covers. */
export interface SignedRequest {
  readonly method: string;
  /** The request target: path and optional query. */
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
}
