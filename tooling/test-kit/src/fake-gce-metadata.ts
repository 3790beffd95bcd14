import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { listenFake } from './fake-server.js';

/** The access token the fake metadata server hands out: a test asserts it never reaches a workload through the proxy. */
export const FAKE_METADATA_ACCESS_TOKEN = 'fake-metadata-server-token';

/** One request the fake metadata server received. */
export interface FakeMetadataRequest {
  readonly method: string;
  /** The path and query as received. */
  readonly url: string;
  /** The `Metadata-Flavor` header as received. */
  readonly flavor: string | undefined;
}

/** A running GCE/GKE metadata-server-shaped HTTP target. */
export interface FakeGceMetadata {
  readonly url: string;
  /** `host:port`: the value for `GCE_METADATA_HOST`. */
  readonly host: string;
  readonly requests: FakeMetadataRequest[];
  close(): Promise<void>;
}

/** Options for {@link startFakeGceMetadata}. */
export interface FakeGceMetadataOptions {
  /** The default service account's email; default `default@fake-project.iam.gserviceaccount.com`. */
  readonly email?: string;
  /** The project id; default `fake-project`. */
  readonly projectId?: string;
}

/**
 * Starts an HTTP server on loopback shaped like the GCE metadata server, as
 * `gcp-metadata`/`google-auth-library` probe it: every answer carries `Metadata-Flavor: Google`;
 * a request without the `Metadata-Flavor: Google` header gets 403. It serves the probe
 * (`/computeMetadata/v1/instance`), `project/project-id`, the default service account's
 * `email` and `scopes`, a `token` ({@link FAKE_METADATA_ACCESS_TOKEN}) and an `identity` (an
 * unsigned placeholder); anything else is 404. Every request is recorded.
 */
export async function startFakeGceMetadata(options: FakeGceMetadataOptions = {}): Promise<FakeGceMetadata> {
  const email = options.email ?? 'default@fake-project.iam.gserviceaccount.com';
  const projectId = options.projectId ?? 'fake-project';
  const requests: FakeMetadataRequest[] = [];
  const account = '/computeMetadata/v1/instance/service-accounts/';
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    req.resume();
    const flavor = req.headers['metadata-flavor'];
    requests.push({ method: req.method ?? '', url: req.url ?? '', flavor: typeof flavor === 'string' ? flavor : undefined });
    const send = (status: number, type: string, body: string): void => {
      res.writeHead(status, { 'metadata-flavor': 'Google', 'content-type': type }).end(body);
    };
    if (flavor?.toString().toLowerCase() !== 'google') return send(403, 'text/plain', 'Missing Metadata-Flavor:Google header.');
    const path = (req.url ?? '/').split('?')[0]!;
    const accountPath = /^\/computeMetadata\/v1\/instance\/service-accounts\/([^/]+)\/([a-z-]+)\/?$/.exec(path);
    if (path === '/computeMetadata/v1/instance' || path === '/computeMetadata/v1/instance/') return send(200, 'application/text', 'attributes/\nhostname\nid\nservice-accounts/\nzone\n');
    if (path === '/computeMetadata/v1/project/project-id') return send(200, 'application/text', projectId);
    if (path === account) return send(200, 'application/text', `default/\n${email}/\n`);
    if (accountPath !== null && (accountPath[1] === 'default' || accountPath[1] === email)) {
      switch (accountPath[2]) {
        case 'email':
          return send(200, 'application/text', email);
        case 'scopes':
          return send(200, 'application/text', 'https://www.googleapis.com/auth/cloud-platform\n');
        case 'token':
          return send(200, 'application/json', JSON.stringify({ access_token: FAKE_METADATA_ACCESS_TOKEN, expires_in: 3599, token_type: 'Bearer' }));
        case 'identity':
          return send(200, 'text/html', 'fake-metadata-identity.unsigned.token');
      }
    }
    send(404, 'text/plain', 'Not Found');
  };
  const listening = await listenFake(createServer(handler), '127.0.0.1');
  return { url: listening.url, host: new URL(listening.url).host, requests, close: () => listening.close() };
}
