import {
  canonicalHeaderName,
  compileHeaderPatterns,
  encodePathValue,
  encodeQueryValue,
  ErrorCodes,
  headTooLarge,
  ProxyError,
  requestHeadBytes,
  type ProxyRequest,
} from '@proxy/core';
import type { ReplaceConfig } from './config.js';
import type { SecretAction } from './secret-action.js';

/** `Basic <base64>` credentials, whose decoded `user:password` may hold the placeholder. */
const BASIC_CREDENTIALS = /^(basic[ \t]+)([A-Za-z0-9+/_-]+={0,2})[ \t]*$/i;

/**
 * Compiles a replace block: swap the placeholder for the real value in the scanned headers
 * (including inside `Authorization: Basic` credentials), and, when enabled, in the body, the
 * path and the raw query (where the URL-encoded placeholder is found too, and the value goes
 * in encoded).
 */
export function compileReplace(config: ReplaceConfig): SecretAction {
  const token = config.proxy_value;
  const tokenBytes = Buffer.from(token, 'utf8');
  // The spellings of the placeholder a URL may carry: as sent, and percent-encoded.
  const urlSpellings = [...new Set([token, encodeURIComponent(token), encodePathValue(token)])];
  const scope = compileHeaderPatterns(config.match_headers ?? []);
  const matchBody = config.match_body ?? false;
  const matchPath = config.match_path ?? false;
  const matchQuery = config.match_query ?? false;

  /** The header value with the placeholder swapped, or undefined when it holds none. */
  const swapHeaderValue = (name: string, value: string, secret: () => string, room: HeadRoom): string | undefined => {
    if (value.includes(token)) return room.replaceAll(value, token, secret());
    if (name.toLowerCase() !== 'authorization') return undefined;
    const basic = BASIC_CREDENTIALS.exec(value);
    if (basic === null) return undefined;
    const decoded = Buffer.from(basic[2]!, 'base64').toString('utf8');
    if (!decoded.includes(token)) return undefined;
    // The credentials grow by a third more once encoded again: check that size before building it.
    const real = secret();
    room.take(encodedGrowth(decoded.length, occurrences(decoded, token) * (real.length - token.length)));
    return basic[1]! + Buffer.from(replaceAll(decoded, token, real), 'utf8').toString('base64');
  };

  /** The URL part with every spelling of the placeholder swapped for the encoded value, or undefined. */
  const swapInUrl = (text: string, encode: (value: string) => string, secret: () => string, room: HeadRoom): string | undefined => {
    let out = text;
    let found = false;
    for (const spelling of urlSpellings) {
      if (!out.includes(spelling)) continue;
      out = room.replaceAll(out, spelling, encode(secret()));
      found = true;
    }
    return found ? out : undefined;
  };

  return {
    kind: 'swapped',
    required: config.require ?? false,
    apply(request: ProxyRequest, secret: () => string) {
      const locations: string[] = [];
      const headers = request.headers;
      const room = new HeadRoom(request);
      for (let i = 0; i < headers.size; i++) {
        // Most fields hold no placeholder: skip them before anything is allocated.
        if (!headers.valueAt(i)!.includes(token) && headers.keyAt(i) !== 'authorization') continue;
        const [name, value] = headers.at(i)!;
        // An empty match_headers scans every header, sent under its own name.
        const sendAs = scope.size === 0 ? name : scope.match(name);
        if (sendAs === undefined) continue;
        const swapped = swapHeaderValue(name, value, secret, room);
        if (swapped === undefined) continue;
        headers.setAt(i, swapped, sendAs);
        const location = `header:${canonicalHeaderName(name)}`;
        if (!locations.includes(location)) locations.push(location);
      }
      if (matchQuery) {
        const query = swapInUrl(request.query, encodeQueryValue, secret, room);
        if (query !== undefined) {
          request.query = query;
          locations.push('query');
        }
      }
      if (matchPath) {
        const path = swapInUrl(request.path, encodePathValue, secret, room);
        if (path !== undefined) {
          request.path = path;
          locations.push('path');
        }
      }
      return locations;
    },
    ...(matchBody
      ? {
          async applyToBody(request: ProxyRequest, secret: () => string): Promise<string | undefined> {
            if (!request.body.present) return undefined;
            const body = replaceBytes(await request.body.read(), tokenBytes, () => Buffer.from(secret(), 'utf8'), request.body.limit);
            if (body === undefined) return undefined;
            request.body.replace(body);
            return 'body';
          },
        }
      : {}),
  };
}

/** Replaces every occurrence of `needle` (literally: `$` in the value has no special meaning). */
function replaceAll(text: string, needle: string, replacement: string): string {
  return text.split(needle).join(replacement);
}

/** How many times `needle` occurs in `text`, without overlaps. */
function occurrences(text: string, needle: string): number {
  let count = 0;
  for (let at = text.indexOf(needle); at >= 0; at = text.indexOf(needle, at + needle.length)) count++;
  return count;
}

/** How much longer the base64 of a text of `length` bytes gets when the text grows by `growth`. */
function encodedGrowth(length: number, growth: number): number {
  return Math.ceil((length + growth) / 3) * 4 - Math.ceil(length / 3) * 4;
}

/**
 * How much the request head may still grow (`ProxyRequest.maxHeadBytes`): every swap is sized
 * before it is built, so a short placeholder repeated many times cannot make the proxy build a
 * huge header (413 `header_too_large` instead).
 */
class HeadRoom {
  readonly #request: ProxyRequest;
  #left: number | undefined;

  constructor(request: ProxyRequest) {
    this.#request = request;
  }

  /** Takes `growth` characters of room; throws 413 when there is not that much left. */
  take(growth: number): void {
    this.#left ??= this.#request.maxHeadBytes - requestHeadBytes(this.#request);
    if (growth > this.#left) throw headTooLarge(this.#request.maxHeadBytes);
    this.#left -= growth;
  }

  /** {@link replaceAll}, once the grown text is known to fit. */
  replaceAll(text: string, needle: string, replacement: string): string {
    this.take(occurrences(text, needle) * (replacement.length - needle.length));
    return replaceAll(text, needle, replacement);
  }
}

/**
 * `haystack` with every occurrence of `needle` replaced, or undefined when there is none.
 * Throws 413 `body_too_large`, before building anything, when the result would exceed `limit`
 * (0 = no limit).
 */
function replaceBytes(haystack: Buffer, needle: Buffer, replacement: () => Buffer, limit: number): Buffer | undefined {
  let at = haystack.indexOf(needle);
  if (at < 0) return undefined;
  const value = replacement();
  if (limit > 0) {
    let count = 0;
    for (let i = at; i >= 0; i = haystack.indexOf(needle, i + needle.length)) count++;
    const size = haystack.length + count * (value.length - needle.length);
    if (size > limit) {
      throw new ProxyError(ErrorCodes.BODY_TOO_LARGE, `the body with the secret swapped in would exceed proxy.max_request_body_bytes (${limit} bytes)`, {
        status: 413,
        reason: 'body_too_large',
      });
    }
  }
  const parts: Buffer[] = [];
  let from = 0;
  while (at >= 0) {
    parts.push(haystack.subarray(from, at), value);
    from = at + needle.length;
    at = haystack.indexOf(needle, from);
  }
  parts.push(haystack.subarray(from));
  return Buffer.concat(parts);
}
