import { request as httpRequest, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { ErrorCodes, HeaderList, ProxyError, reject } from '@proxy/core';
import type { Logger } from '@proxy/core';
import type { ConnectionSet } from './connection-set.js';
import { Exchange, STATUS_CLIENT_CLOSED, type ExchangeHost } from './exchange.js';
import { isWebSocketUpgrade, stripHopByHop } from './hop-by-hop.js';
import type { Ingress } from './ingress.js';
import { rawResponseHead, writeRawDecision } from './raw-response.js';
import { splice } from './splice.js';
import { describeUpstreamFailure } from './upstream-failure.js';
import type { UpstreamGuard } from './upstream-guard.js';

/** What the upgrade path needs from the engine. */
export interface UpgradeContext {
  readonly host: ExchangeHost;
  readonly guard: UpstreamGuard;
  readonly logger: Logger;
  /** Spliced connections, so that shutdown can wait for and then end them. */
  readonly tunnels: ConnectionSet;
}

/**
 * Proxies a WebSocket upgrade request received on a listener's `upgrade` event (and answers
 * a CONNECT where the ingress does not open tunnels, which it refuses): the same
 * exchange as any request (destination, `ProxyRequest`, audit record, request pipeline; a
 * refusal is written as an HTTP response on the socket), then the upstream is dialled through
 * the guard, the upgrade request replayed with the transformed headers, and once the upstream
 * switches protocols the two sockets are piped both ways. The audit record is emitted when
 * the upgrade completes or fails.
 */
export async function proxyWebSocketUpgrade(
  context: UpgradeContext,
  ingress: Ingress,
  req: IncomingMessage,
  client: Duplex,
  head: Buffer,
): Promise<void> {
  client.on('error', () => client.destroy());
  const begun = Exchange.begin(context.host, ingress, req, req.url ?? '', null);
  const exchange = begun.exchange;
  try {
    let refusal = begun.refusal;
    if (refusal === undefined && !isWebSocketUpgrade(req.headers)) {
      // Only reached on Node versions without `shouldUpgradeCallback`, which upgrade any protocol.
      refusal = { status: 501, reason: 'unsupported_upgrade', message: 'only WebSocket upgrades are proxied' };
      exchange.audit.rejected('engine', refusal.reason);
    }
    if (refusal !== undefined) {
      writeRawDecision(client, reject(refusal.status, refusal.reason, refusal.message));
      exchange.complete(refusal.status);
      return;
    }
    await forwardUpgrade(context, exchange, req, client, head);
  } catch (err) {
    context.logger.error({ request_id: exchange.id, error_class: err instanceof Error ? err.name : typeof err }, 'upgrade handling failed');
    if (!exchange.completed) {
      exchange.audit.failed('engine_error', 'engine');
      client.destroy();
      exchange.complete(500);
    }
  }
}

async function forwardUpgrade(context: UpgradeContext, exchange: Exchange, req: IncomingMessage, client: Duplex, head: Buffer): Promise<void> {
  const request = exchange.request!;
  const decision = await exchange.pipeline!.runRequest(request, exchange.audit);
  if (decision.action !== 'continue') {
    writeRawDecision(client, decision);
    exchange.complete(decision.status);
    return;
  }
  if (client.destroyed) {
    exchange.audit.failed('client_closed');
    exchange.complete(STATUS_CLIENT_CLOSED);
    return;
  }

  let upstream: Socket;
  try {
    // A tunnel has its own upstream connection (unless re-targeted); everything else dials through the guard.
    const dialer = exchange.dedicatedUpstream ?? context.guard;
    exchange.upstreamStarted();
    upstream = await dialer.connect({ host: request.host, port: request.port, tls: request.scheme === 'https' });
  } catch (err) {
    failUpgrade(context, exchange, client, err);
    return;
  }
  if (client.destroyed) {
    upstream.destroy();
    exchange.audit.failed('client_closed');
    exchange.complete(STATUS_CLIENT_CLOSED);
    return;
  }
  replayUpgrade(context, exchange, req, client, head, upstream);
}

function replayUpgrade(context: UpgradeContext, exchange: Exchange, req: IncomingMessage, client: Duplex, head: Buffer, upstream: Socket): void {
  const request = exchange.request!;
  const headers = request.headers;
  stripHopByHop(headers);
  headers.append('Connection', 'Upgrade');
  headers.append('Upgrade', req.headers.upgrade ?? 'websocket');

  const upstreamReq = httpRequest({
    method: request.method,
    path: request.query === '' ? request.path : `${request.path}?${request.query}`,
    headers: headers.toRaw(),
    createConnection: () => upstream,
  });
  const timeoutMs = exchange.ingress.headersTimeoutMs;
  const timer = setTimeout(() => {
    const timedOut = new ProxyError(ErrorCodes.UPSTREAM_TIMEOUT, `upstream did not answer the upgrade within ${timeoutMs} ms`, {
      status: 504,
      reason: 'upstream_timeout',
    });
    upstreamReq.destroy(timedOut);
  }, timeoutMs);
  const settle = (): void => clearTimeout(timer);
  const abandon = (): void => {
    settle();
    upstreamReq.destroy();
  };
  client.once('close', abandon);

  upstreamReq.on('upgrade', (res: IncomingMessage, upstreamSocket: Duplex, upstreamHead: Buffer) => {
    settle();
    exchange.upstreamAnswered();
    client.off('close', abandon);
    const responseHeaders = HeaderList.fromRaw(res.rawHeaders);
    client.write(rawResponseHead(res.statusCode ?? 101, res.statusMessage ?? '', responseHeaders));
    if (upstreamHead.length > 0) client.write(upstreamHead);
    if (head.length > 0) upstreamSocket.write(head);
    splice(client, upstreamSocket, context.tunnels);
    exchange.complete(res.statusCode ?? 101);
  });

  upstreamReq.on('response', (res: IncomingMessage) => {
    // The upstream declined to switch protocols: relay its answer, then close.
    settle();
    exchange.upstreamAnswered();
    client.off('close', abandon);
    const responseHeaders = HeaderList.fromRaw(res.rawHeaders);
    stripHopByHop(responseHeaders);
    responseHeaders.append('Connection', 'close');
    client.write(rawResponseHead(res.statusCode ?? 502, res.statusMessage ?? '', responseHeaders));
    res.pipe(client);
    res.on('error', () => client.destroy());
    exchange.complete(res.statusCode ?? 502);
  });

  upstreamReq.on('error', (err) => {
    settle();
    client.off('close', abandon);
    if (client.destroyed) {
      exchange.audit.failed('client_closed');
      exchange.complete(STATUS_CLIENT_CLOSED);
      return;
    }
    failUpgrade(context, exchange, client, err);
  });
  upstreamReq.end();
}

function failUpgrade(context: UpgradeContext, exchange: Exchange, client: Duplex, err: unknown): void {
  const failure = describeUpstreamFailure(err);
  exchange.upstreamFailed(failure);
  if (failure.rejectedBy !== undefined) exchange.audit.rejected(failure.rejectedBy, failure.reason);
  else exchange.audit.failed(failure.reason);
  context.logger.warn(
    { request_id: exchange.id, host: exchange.request!.host, reason: failure.reason, code: failure.code, detail: failure.detail },
    `upstream upgrade failed: ${failure.reason}`,
  );
  writeRawDecision(client, reject(failure.status, failure.reason, failure.message));
  exchange.complete(failure.status);
}
