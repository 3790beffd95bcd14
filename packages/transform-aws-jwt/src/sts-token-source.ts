import { GetWebIdentityTokenCommand, STSClient, STSServiceException } from '@aws-sdk/client-sts';
import { fromNodeProviderChain } from '@aws-sdk/credential-providers';
import { ErrorCodes, ProxyError } from '@proxy/core';
import type { SigningAlgorithm } from './config.js';
import { TokenMintError, type MintedToken } from './token-mint-error.js';

/** Mints tokens with STS `GetWebIdentityToken`. */
export interface StsTokenSource {
  /** Mints a token for the audience set. Rejects with a {@link TokenMintError}. */
  mint(audiences: readonly string[]): Promise<MintedToken>;
  /** Aborts calls in flight and releases the client's sockets. */
  close(): void;
}

/** What {@link createStsTokenSource} needs. */
export interface StsTokenSourceOptions {
  readonly signingAlgorithm: SigningAlgorithm;
  readonly durationSeconds: number;
  /** Aborts every call in flight when the transform closes. */
  readonly signal: AbortSignal;
}

/** Time to open a connection to STS, and to wait for its answer once connected. */
const CONNECTION_TIMEOUT_MS = 5_000;
const REQUEST_TIMEOUT_MS = 10_000;
/** An AWS error code, as it may appear in a log field, an audit record and a metric label. */
const ERROR_CODE = /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/;

/**
 * Opens an STS client configured the way every AWS SDK program is: credentials from the
 * default provider chain (environment, shared config and SSO, web identity, ECS and EC2
 * roles), the region from `AWS_REGION` or the profile, the endpoint from the SDK's standard
 * overrides (`AWS_ENDPOINT_URL_STS`, `AWS_ENDPOINT_URL`, the profile's `endpoint_url`).
 *
 * STS calls use the SDK's own HTTP handler, not the proxy's upstream guard: the STS endpoint
 * and the credential endpoints (instance metadata on a link-local address, the ECS agent, a
 * VPC endpoint on a private address) are control-plane addresses chosen by the operator, which
 * the deny list meant for workload traffic would refuse.
 *
 * Fails with `PROXY_ERR_CONFIG_INVALID` when no region can be found, so a proxy that could
 * never mint a token does not start.
 */
export async function createStsTokenSource(options: StsTokenSourceOptions): Promise<StsTokenSource> {
  const client = new STSClient({
    credentials: fromNodeProviderChain(),
    requestHandler: { connectionTimeout: CONNECTION_TIMEOUT_MS, requestTimeout: REQUEST_TIMEOUT_MS },
  });
  try {
    await client.config.region();
  } catch (err) {
    client.destroy();
    throw new ProxyError(ErrorCodes.CONFIG_INVALID, 'no AWS region: set AWS_REGION or a region in the AWS profile', { cause: err });
  }
  return {
    async mint(audiences) {
      let out;
      try {
        out = await client.send(
          new GetWebIdentityTokenCommand({
            Audience: [...audiences],
            SigningAlgorithm: options.signingAlgorithm,
            DurationSeconds: options.durationSeconds,
          }),
          { abortSignal: options.signal },
        );
      } catch (err) {
        throw new TokenMintError(errorClassOf(err), { cause: err });
      }
      if (out.WebIdentityToken === undefined || out.WebIdentityToken === '') throw new TokenMintError('invalid_response');
      // aws-outbound-jwt-proxy refuses an answer without Expiration: the refresh schedule hangs on it.
      const expiresAt = out.Expiration?.getTime();
      if (expiresAt === undefined || !Number.isFinite(expiresAt)) throw new TokenMintError('invalid_response');
      return { token: out.WebIdentityToken, expiresAt };
    },
    close() {
      client.destroy();
    },
  };
}

/** The AWS error code of a service error; `transport` for anything that is not an STS answer. */
function errorClassOf(err: unknown): string {
  if (err instanceof STSServiceException) return ERROR_CODE.test(err.name) ? err.name : 'unknown';
  return 'transport';
}
