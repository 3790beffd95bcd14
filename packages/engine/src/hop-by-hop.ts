import type { HeaderList } from '@proxy/core';

/** Headers that describe one connection, not the message (RFC 9110 section 7.6.1), plus the proxy's own. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/**
 * Removes the hop-by-hop fields of a message: `Connection` and every field it names,
 * `Keep-Alive`, `Proxy-Connection`, `TE`, `Trailer`, `Transfer-Encoding`, `Upgrade`, and the
 * proxy's own `Proxy-Authorization` / `Proxy-Authenticate`. Framing is the engine's business:
 * the message is re-framed on the next hop.
 */
export function stripHopByHop(headers: HeaderList): void {
  let named: Set<string> | undefined;
  for (let i = 0; i < headers.size; i++) {
    if (headers.keyAt(i) !== 'connection') continue;
    for (const token of headers.valueAt(i)!.split(',')) {
      const name = token.trim().toLowerCase();
      if (name !== '') (named ??= new Set()).add(name);
    }
  }
  for (let i = headers.size - 1; i >= 0; i--) {
    const key = headers.keyAt(i)!;
    if (HOP_BY_HOP.has(key) || named?.has(key) === true) headers.deleteAt(i);
  }
}

/** True when the request asks to switch to the WebSocket protocol. */
export function isWebSocketUpgrade(headers: { readonly upgrade?: string | undefined }): boolean {
  return headers.upgrade !== undefined && headers.upgrade.split(',').some((p) => p.trim().toLowerCase() === 'websocket');
}
