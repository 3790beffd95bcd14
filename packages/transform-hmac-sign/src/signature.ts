import { createHmac } from 'node:crypto';
import type { HmacAlgorithm, KeyEncoding, OutputEncoding, TimestampFormat } from './config.js';

/**
 * `.Timestamp` for the instant `ms` (milliseconds since the epoch, from the transform's clock):
 * Unix seconds, milliseconds or nanoseconds as decimal digits, or RFC 3339 in UTC to the
 * second (`2024-05-01T12:00:00Z`, Go's `time.RFC3339` layout).
 */
export function formatTimestamp(format: TimestampFormat, ms: number): string {
  const whole = Math.floor(ms);
  switch (format) {
    case 'unix_seconds':
      return String(Math.floor(whole / 1000));
    case 'unix_millis':
      return String(whole);
    case 'unix_nanos':
      return String(BigInt(whole) * 1_000_000n);
    case 'rfc3339':
      return `${new Date(whole).toISOString().slice(0, 19)}Z`;
  }
}

/** The `secret` credential did not decode under `key_encoding`. The message never holds the key. */
export class KeyDecodeError extends Error {
  override readonly name = 'KeyDecodeError';
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const HEX = /^(?:[0-9A-Fa-f]{2})*$/;

/**
 * The HMAC key bytes of the `secret` credential: its UTF-8 bytes (`raw`), or the bytes it
 * encodes in padded standard base64 or in hex. Decoding is strict, as Go's decoders are: a
 * value with characters outside the alphabet, missing padding or an odd number of hex digits
 * throws a {@link KeyDecodeError} rather than signing with a key nobody meant.
 */
export function decodeKey(value: string, encoding: KeyEncoding): Buffer {
  switch (encoding) {
    case 'raw':
      return Buffer.from(value, 'utf8');
    case 'base64': {
      // Go's StdEncoding skips line breaks; nothing else.
      const compact = value.replace(/[\r\n]/g, '');
      if (!BASE64.test(compact)) throw new KeyDecodeError('the HMAC key is not valid padded standard base64');
      return Buffer.from(compact, 'base64');
    }
    case 'hex':
      if (!HEX.test(value)) throw new KeyDecodeError('the HMAC key is not valid hex (an even number of 0-9a-f digits)');
      return Buffer.from(value, 'hex');
  }
}

/** HMAC of `message` under `key`, written as padded standard base64 or lowercase hex. */
export function sign(algorithm: HmacAlgorithm, key: Uint8Array, message: Uint8Array, output: OutputEncoding): string {
  return createHmac(algorithm, key).update(message).digest(output);
}
