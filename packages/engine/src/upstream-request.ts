import type { Dispatcher } from 'undici';
import type { Exchange } from './exchange.js';
import { stripHopByHop } from './hop-by-hop.js';

/**
 * The undici dispatch options of an exchange's upstream request, built after the request
 * pipeline ran: the request's destination (re-targeted, if a transform did so: the pipeline
 * has checked the new host; the guard checks it again when dialling), the transformed
 * method, path, query and headers (hop-by-hop fields and
 * `Expect` removed: this hop already answered `100 Continue`), and the body: the buffered
 * bytes when a transform read or replaced it, the stream a transform swapped in, else the
 * client's stream, untouched.
 */
export function upstreamDispatchOptions(exchange: Exchange): Dispatcher.DispatchOptions {
  const request = exchange.request!;
  const headers = request.headers;
  stripHopByHop(headers);
  headers.delete('expect');
  // The request's destination: the route's, unless the pipeline re-targeted the request.
  const host = request.host.includes(':') ? `[${request.host}]` : request.host;
  return {
    origin: `${request.scheme}://${host}:${request.port}`,
    path: request.query === '' ? request.path : `${request.path}?${request.query}`,
    method: request.method,
    headers: headers.toRaw(),
    body: request.body.buffered ? request.body.bytes! : (request.body.replacementStream ?? (request.body.present ? exchange.bodyStream : null)),
    headersTimeout: exchange.ingress.headersTimeoutMs,
    // Streams (SSE, long polls, slow downloads) may pause for as long as they like.
    bodyTimeout: 0,
  };
}
