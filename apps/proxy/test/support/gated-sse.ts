import { request as httpRequest } from 'node:http';

/**
 * Reads test-kit's gated SSE stream (`/sse?events=N&gate=1`) through a proxy and returns the
 * events with the response's content type. The echo upstream sends each next event only after
 * the client acknowledged the previous one on `/sse-ack`, so a proxy that buffered the stream
 * would never deliver an event and the read would time out.
 *
 * `path` is the request-target sent to `port` (absolute-form for a forward proxy, origin-form
 * for a reverse listener); `echoPort` is where the acknowledgements go, straight to the upstream.
 */
export function readGatedSse(options: {
  port: number;
  path: string;
  echoPort: number;
  events: number;
  headers?: Record<string, string>;
}): Promise<{ contentType: string | undefined; events: string[] }> {
  const events: string[] = [];
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port: options.port, path: options.path, headers: options.headers ?? {} }, (res) => {
      let buffer = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buffer += chunk;
        let i: number;
        while ((i = buffer.indexOf('\n\n')) >= 0) {
          events.push(buffer.slice(0, i));
          buffer = buffer.slice(i + 2);
          if (events.length < options.events) void fetch(`http://127.0.0.1:${options.echoPort}/sse-ack`).then((r) => r.text());
        }
      });
      res.on('end', () => resolve({ contentType: res.headers['content-type'], events }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}
