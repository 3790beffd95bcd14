import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { JWTPayload } from 'jose';
import { hostForUrl } from './host.js';

/** One request the API received. */
export interface ProtectedApiRequest {
  readonly method: string;
  readonly path: string;
  /** The `Authorization` header as received. */
  readonly authorization: string | undefined;
  /** Whether the bearer token verified. */
  readonly verified: boolean;
}

/** A running API that accepts only verified bearer tokens. */
export interface ProtectedApi {
  readonly url: string;
  readonly port: number;
  readonly requests: ProtectedApiRequest[];
  close(): Promise<void>;
}

/**
 * Starts an HTTP API on loopback that checks `Authorization: Bearer <token>` with `verify`
 * (for instance an authorization server's JWKS through jose): 200 with the token's claims as
 * JSON when it verifies, 401 `{"error":"invalid_token"}` when it does not or is missing.
 */
export async function startProtectedApi(verify: (token: string) => Promise<JWTPayload>): Promise<ProtectedApi> {
  const requests: ProtectedApiRequest[] = [];
  const sockets = new Set<Socket>();
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    req.resume();
    const authorization = req.headers.authorization;
    const match = /^Bearer (\S+)$/i.exec(authorization ?? '');
    const answer = (status: number, body: unknown, verified: boolean): void => {
      requests.push({ method: req.method ?? '', path: (req.url ?? '').split('?')[0]!, authorization, verified });
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    };
    if (match === null) {
      answer(401, { error: 'invalid_token', error_description: 'no bearer token' }, false);
      return;
    }
    verify(match[1]!).then(
      (claims) => answer(200, { claims }, true),
      () => answer(401, { error: 'invalid_token' }, false),
    );
  };
  const server = createServer(handler);
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${hostForUrl('127.0.0.1')}:${port}`,
    port,
    requests,
    close() {
      for (const socket of sockets) socket.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
