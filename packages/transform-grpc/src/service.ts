/**
 * The `transform.v1.TransformService` API, loaded from the package's `.proto`, and the plain
 * objects its messages decode to (field names as in the `.proto`, bytes as `Buffer`, enums as
 * their names, absent fields `undefined`).
 */
import { fileURLToPath } from 'node:url';
import { loadPackageDefinition, type GrpcObject, type ServiceClientConstructor, type ServiceDefinition } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';

/** Path of `transform.proto`, for policy servers (and tests) that load it too. */
export const PROTO_PATH: string = fileURLToPath(new URL('../proto/transform/v1/transform.proto', import.meta.url));

/** `TransformAction` by name. UNSPECIFIED counts as CONTINUE. */
export type TransformAction = 'TRANSFORM_ACTION_UNSPECIFIED' | 'TRANSFORM_ACTION_CONTINUE' | 'TRANSFORM_ACTION_REJECT';

export interface HeaderValues {
  readonly values?: readonly string[];
}

export type HeaderMap = Readonly<Record<string, HeaderValues>>;

export interface HttpRequest {
  readonly method?: string;
  readonly url?: string;
  readonly headers?: HeaderMap;
  readonly body?: Buffer;
  readonly host?: string;
  readonly remote_addr?: string;
}

export interface HttpResponse {
  readonly status_code?: number;
  readonly headers?: HeaderMap;
  readonly body?: Buffer;
}

export interface TransformContext {
  readonly sni?: string;
  readonly client_cert_der?: Buffer;
  readonly tunnel?: { readonly target?: string; readonly request_transforms?: readonly { readonly name?: string }[] };
}

export interface TransformRequestRequest {
  readonly context: TransformContext;
  readonly request: HttpRequest;
}

export interface TransformRequestResponse {
  readonly action?: TransformAction;
  readonly response?: HttpResponse;
  readonly modified_request?: HttpRequest;
  readonly annotations?: Readonly<Record<string, string>>;
}

export interface TransformResponseRequest {
  readonly context: TransformContext;
  readonly request: HttpRequest;
  readonly response: HttpResponse;
}

export interface TransformResponseResponse {
  readonly action?: TransformAction;
  readonly modified_response?: HttpResponse;
  readonly annotations?: Readonly<Record<string, string>>;
}

/** The loaded service: a client constructor and the definition a server implements. */
export interface TransformServiceApi {
  readonly Client: ServiceClientConstructor;
  readonly definition: ServiceDefinition;
}

let loaded: TransformServiceApi | undefined;

/** Loads `transform.proto` once (bytes as Buffer, enums as names, no defaults for absent fields). */
export function transformService(): TransformServiceApi {
  if (loaded !== undefined) return loaded;
  const definition = loadSync(PROTO_PATH, { keepCase: true, enums: String, longs: Number, defaults: false, oneofs: true });
  const pkg = loadPackageDefinition(definition) as unknown as { transform: { v1: GrpcObject } };
  const Client = pkg.transform.v1.TransformService as ServiceClientConstructor;
  loaded = { Client, definition: Client.service };
  return loaded;
}
