import { gaxios } from 'google-auth-library';
import { describe, expect, it } from 'vitest';
import { MintError, toMintError } from './mint-error.js';

/** A gaxios error for an HTTP answer, made by gaxios itself. */
function gaxiosAnswer(status: number, data: unknown): Error {
  const config = { url: new URL('https://oauth2.googleapis.com/token'), headers: new Headers(), responseType: 'json' as const };
  return new gaxios.GaxiosError(`Request failed with status code ${status}`, config, {
    config,
    data,
    status,
    statusText: 'x',
    headers: new Headers(),
  } as unknown as gaxios.GaxiosResponse);
}

describe('toMintError', () => {
  it('reads the OAuth error code of a gaxios answer, recognised without loading gaxios', () => {
    const err = toMintError(gaxiosAnswer(400, { error: 'invalid_grant', error_description: 'Invalid JWT Signature.' }));
    expect(err.reason).toBe('invalid_grant');
    expect(err.message).toContain('400');
  });

  it('names the status of an answer without an OAuth code, and keeps a server code that is no word out of the reason', () => {
    expect(toMintError(gaxiosAnswer(503, 'unavailable')).reason).toBe('token_endpoint_http_503');
    expect(toMintError(gaxiosAnswer(400, { error: 'bad code <script>' })).reason).toBe('token_endpoint_http_400');
  });

  it('takes an error that only looks like an HTTP answer for a plain failure', () => {
    const lookalike = Object.assign(new Error('no'), { response: { status: 401, data: { error: 'invalid_client' } } });
    expect(toMintError(lookalike).reason).toBe('mint_failed');
  });

  it('passes a MintError through', () => {
    const err = new MintError('keyfile_unavailable', 'x');
    expect(toMintError(err)).toBe(err);
  });
});
