// Every built-in transform declares its config as written (schema-defaulted fields optional):
// the minimal configs below type-check as `ConfigInput<typeof definition>` (checked by
// `pnpm typecheck`, which runs tsc over test/) and pass the schema, which fills in the rest.
import type { ConfigInput, TransformDefinition } from '@proxy/core';
import { validateTransformConfig } from '@proxy/core/testing';
import { allowlistTransform } from '@proxy/transform-allowlist';
import { annotateTransform } from '@proxy/transform-annotate';
import { awsAuthTransform } from '@proxy/transform-aws-auth';
import { awsJwtTransform } from '@proxy/transform-aws-jwt';
import { bodyCaptureTransform } from '@proxy/transform-body-capture';
import { gcpAuthTransform } from '@proxy/transform-gcp-auth';
import { gcpIdTokenTransform } from '@proxy/transform-gcp-id-token';
import { grpcTransform } from '@proxy/transform-grpc';
import { headerAllowlistTransform } from '@proxy/transform-header-allowlist';
import { headerCaptureTransform } from '@proxy/transform-header-capture';
import { hmacSignTransform } from '@proxy/transform-hmac-sign';
import { judgeTransform } from '@proxy/transform-judge';
import { oauthTokenTransform } from '@proxy/transform-oauth-token';
import { secretsTransform } from '@proxy/transform-secrets';
import { describe, expect, expectTypeOf, it } from 'vitest';

/** A definition with a config as written that leaves out every field its schema defaults. */
function minimal<D extends TransformDefinition<never, unknown>>(definition: D, config: ConfigInput<D>): [TransformDefinition, unknown] {
  return [definition as unknown as TransformDefinition, config];
}

const env = (name: string) => ({ type: 'env', var: name }) as const;
const rules = [{ host: 'api.example.com' }];

const cases = {
  allowlist: minimal(allowlistTransform, { domains: ['api.example.com'] }),
  annotate: minimal(annotateTransform, {}),
  aws_auth: minimal(awsAuthTransform, { access_key_id: env('AK'), secret_access_key: env('SK'), rules }),
  aws_jwt: minimal(awsJwtTransform, { audience: ['https://api.example.com'] }),
  body_capture: minimal(bodyCaptureTransform, {}),
  gcp_auth: minimal(gcpAuthTransform, { keyfile: env('KEYFILE'), scopes: ['https://www.googleapis.com/auth/cloud-platform'] }),
  gcp_id_token: minimal(gcpIdTokenTransform, { keyfile: env('KEYFILE'), audience: 'https://run.example.com', rules }),
  grpc: minimal(grpcTransform, { name: 'policy', target: 'localhost:9500' }),
  grpc_tls: minimal(grpcTransform, { name: 'policy', target: 'localhost:9500', tls: { ca_cert: '/ca.pem' } }),
  header_allowlist: minimal(headerAllowlistTransform, { headers: ['Accept'] }),
  header_capture: minimal(headerCaptureTransform, { headers: ['User-Agent'] }),
  hmac_sign: minimal(hmacSignTransform, {
    timestamp: { format: 'unix_seconds' },
    signature: { algorithm: 'sha256', key_encoding: 'raw', output_encoding: 'hex', message: '{{ .Timestamp }}' },
    credentials: { secret: env('HMAC_KEY') },
    headers: [{ name: 'X-Signature', value: '{{ .Signature }}' }],
    rules,
  }),
  judge: minimal(judgeTransform, { name: 'judge', prompt: 'Allow reads only.', rules, provider: { type: 'anthropic', model: 'claude', api_key_env: 'KEY' } }),
  oauth_token: minimal(oauthTokenTransform, {
    tokens: [{ grant: 'client_credentials', token_endpoint: 'https://auth.example.com/token', client_id: env('ID'), client_secret: env('SECRET'), rules }],
  }),
  secrets: minimal(secretsTransform, { secrets: [{ source: env('TOKEN'), inject: { header: 'X-Api-Key' } }] }),
};

describe('config input types of the built-in transforms', () => {
  it.each(Object.entries(cases))('%s: the minimal config is valid; the schema fills in the defaults', (_name, [definition, config]) => {
    expect(validateTransformConfig(definition, config)).toEqual([]);
  });

  it('still require what the schema requires', () => {
    expectTypeOf<{ domains: number[] }>().not.toExtend<ConfigInput<typeof allowlistTransform>>();
    expectTypeOf<{ secrets: [{ inject: { header: string } }] }>().not.toExtend<ConfigInput<typeof secretsTransform>>();
    expectTypeOf<{ name: string }>().not.toExtend<ConfigInput<typeof grpcTransform>>();
    expectTypeOf<{ name: string; prompt: string; rules: []; provider: { type: 'openai' } }>().not.toExtend<ConfigInput<typeof judgeTransform>>();
  });
});
