import { durationSchema, rulesSchema, type JsonSchema, type RuleConfig, type WithDefaults } from '@proxy/core';

/** TLS to the policy server. */
export interface GrpcTlsConfig {
  /** Use TLS; default false (plaintext, as iron-proxy). */
  readonly enabled: boolean;
  /** PEM file of the CA that signed the server's certificate; default: the system roots. */
  readonly ca_cert?: string;
  /** PEM file of the client certificate, for mutual TLS (with `key`). */
  readonly cert?: string;
  /** PEM file of the client certificate's private key (with `cert`). */
  readonly key?: string;
}

/** The `config` block of a `grpc` transform, after schema defaults. */
export interface GrpcConfig {
  /** The instance's name: its audit entries and log lines carry it. */
  readonly name: string;
  /** The policy server, in gRPC target syntax (`localhost:9500`, `dns:///policy:9500`, `unix:/run/policy.sock`). */
  readonly target: string;
  readonly tls: GrpcTlsConfig;
  /** Send the request body to the server (default false: headers only). */
  readonly send_request_body: boolean;
  /** Send the response body to the server (default false: headers only). */
  readonly send_response_body: boolean;
  /**
   * How long one call may take (Go duration, default `5s`); a call past it fails the request
   * with 502. An extension: iron-proxy waits without limit.
   */
  readonly timeout: string;
  /** The requests sent to the server; empty (the default) means every request. */
  readonly rules: readonly RuleConfig[];
}

/** The `config` block as written: the fields the schema defaults (`tls` and its `enabled` included) are optional. */
export type GrpcInput = WithDefaults<Omit<GrpcConfig, 'tls'>, 'send_request_body' | 'send_response_body' | 'timeout' | 'rules'> & {
  readonly tls?: WithDefaults<GrpcTlsConfig, 'enabled'>;
};

/** JSON Schema of the `grpc` transform's config. */
export const grpcSchema: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'target'],
  properties: {
    name: { type: 'string', minLength: 1 },
    target: { type: 'string', minLength: 1 },
    tls: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        enabled: { type: 'boolean', default: false },
        ca_cert: { type: 'string', minLength: 1 },
        cert: { type: 'string', minLength: 1 },
        key: { type: 'string', minLength: 1 },
      },
      dependencies: { cert: ['key'], key: ['cert'] },
    },
    send_request_body: { type: 'boolean', default: false },
    send_response_body: { type: 'boolean', default: false },
    timeout: { ...durationSchema, default: '5s' },
    rules: { ...rulesSchema, default: [] },
  },
};
