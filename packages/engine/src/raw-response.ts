import { STATUS_CODES, validateHeaderName, validateHeaderValue } from 'node:http';
import type { Duplex } from 'node:stream';
import type { HeaderList, RejectDecision, RespondDecision } from '@proxy/core';

/** Fields this writer sets itself: the body is sent whole and the connection closed. */
const FRAMING = new Set(['content-length', 'transfer-encoding', 'connection']);

/**
 * Writes a complete HTTP/1.1 response on a raw socket and closes it: how the engine answers
 * requests it holds as bare sockets (upgrade requests) rather than as Fastify replies.
 */
function writeRawResponse(socket: Duplex, status: number, headers: Readonly<Record<string, string>>, body: string | Uint8Array): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : Buffer.from(body);
  let head = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Unknown'}\r\n`;
  for (const [name, value] of Object.entries(headers)) {
    if (FRAMING.has(name.toLowerCase())) continue;
    validateHeaderName(name);
    validateHeaderValue(name, value);
    head += `${name}: ${value}\r\n`;
  }
  head += `Content-Length: ${bytes.length}\r\nConnection: close\r\n\r\n`;
  socket.end(Buffer.concat([Buffer.from(head, 'latin1'), bytes]));
}

/** Writes a reject (short plain text, or the body and media type it names) or respond (the transform's stub) decision on a raw socket. */
export function writeRawDecision(socket: Duplex, decision: RejectDecision | RespondDecision): void {
  if (decision.action === 'reject') {
    writeRawResponse(socket, decision.status, { 'Content-Type': decision.contentType ?? 'text/plain; charset=utf-8' }, decision.message ?? `${decision.reason}\n`);
  } else {
    writeRawResponse(socket, decision.status, decision.headers ?? {}, decision.body ?? '');
  }
}

/** Serializes a response head (status line and fields, in order and casing) for a raw socket. */
export function rawResponseHead(status: number, statusText: string, headers: HeaderList): string {
  let head = `HTTP/1.1 ${status} ${statusText || STATUS_CODES[status] || 'Unknown'}\r\n`;
  for (const [name, value] of headers) head += `${name}: ${value}\r\n`;
  return `${head}\r\n`;
}
