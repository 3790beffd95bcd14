// A closed-loop HTTP/1.1 load generator for the TLS cases (direct HTTPS, CONNECT, MITM).
// Every worker owns one connection and sends its next request only when the previous answer
// has been read in full, so the number of connections stays exactly `connections` (unlike
// `hey`). With `newConnection`, each request opens a fresh connection (CONNECT + handshake),
// and its latency includes the opening.
//
// Run as a child process: `node loadgen.mjs '<json options>'`; prints one JSON result line.

import net from 'node:net';
import tls from 'node:tls';
import { readFileSync } from 'node:fs';

/**
 * @typedef {object} LoadOptions
 * @property {string} host          where the TCP connection goes (the proxy, or the origin when direct)
 * @property {number} port
 * @property {string} [connect]     `host:port` to open with an HTTP CONNECT first
 * @property {boolean} tls          speak TLS to the origin (through the tunnel when `connect` is set)
 * @property {string[]} [servernames] SNI names, used round robin per new connection
 * @property {string} [ca]          PEM file the client trusts
 * @property {string} path
 * @property {string} authority     the Host header
 * @property {Record<string,string>} [headers]
 * @property {number} connections
 * @property {number} durationMs
 * @property {boolean} [newConnection]
 */

/** Reads one HTTP/1.1 response (Content-Length or chunked) off a socket, one at a time. */
class ResponseReader {
  #buf = Buffer.alloc(0);
  #pending = null;

  /** @param {import('node:stream').Duplex} socket */
  constructor(socket) {
    socket.on('data', (chunk) => {
      this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
      this.#drain();
    });
    const fail = (err) => {
      const p = this.#pending;
      this.#pending = null;
      p?.reject(err ?? new Error('connection closed'));
    };
    socket.on('error', fail);
    socket.on('close', () => fail(new Error('connection closed')));
  }

  /** @returns {Promise<number>} the status code once the whole body has arrived */
  next() {
    return new Promise((resolve, reject) => {
      this.#pending = { resolve, reject };
      this.#drain();
    });
  }

  #drain() {
    if (this.#pending === null) return;
    const end = this.#buf.indexOf('\r\n\r\n');
    if (end < 0) return;
    const head = this.#buf.toString('latin1', 0, end);
    const status = Number(head.slice(9, 12));
    const lower = head.toLowerCase();
    let bodyEnd;
    const cl = /\r\ncontent-length:\s*(\d+)/.exec(lower);
    if (cl) {
      bodyEnd = end + 4 + Number(cl[1]);
      if (this.#buf.length < bodyEnd) return;
    } else if (lower.includes('\r\ntransfer-encoding: chunked')) {
      let pos = end + 4;
      for (;;) {
        const lineEnd = this.#buf.indexOf('\r\n', pos);
        if (lineEnd < 0) return;
        const size = parseInt(this.#buf.toString('latin1', pos, lineEnd), 16);
        if (size === 0) {
          const trailerEnd = this.#buf.indexOf('\r\n\r\n', lineEnd);
          if (trailerEnd < 0 && this.#buf.length < lineEnd + 4) return;
          bodyEnd = trailerEnd < 0 ? lineEnd + 4 : trailerEnd + 4;
          break;
        }
        pos = lineEnd + 2 + size + 2;
        if (this.#buf.length < pos) return;
      }
    } else {
      bodyEnd = end + 4; // no body (204/304 or an error without length)
    }
    this.#buf = this.#buf.subarray(bodyEnd);
    const p = this.#pending;
    this.#pending = null;
    p.resolve(status);
  }
}

/** Opens a TCP connection, optionally a CONNECT tunnel, optionally TLS over it. */
async function open(o, servername, ca) {
  const connect = o.connect?.replace('{name}', servername);
  const raw = net.connect({ host: o.host, port: o.port, noDelay: true });
  await new Promise((resolve, reject) => {
    raw.once('connect', resolve);
    raw.once('error', reject);
  });
  if (connect !== undefined) {
    raw.write(`CONNECT ${connect} HTTP/1.1\r\nHost: ${connect}\r\n\r\n`);
    await new Promise((resolve, reject) => {
      let got = Buffer.alloc(0);
      const onData = (chunk) => {
        got = Buffer.concat([got, chunk]);
        const end = got.indexOf('\r\n\r\n');
        if (end < 0) return;
        raw.off('data', onData);
        const status = got.toString('latin1', 9, 12);
        if (status !== '200') return reject(new Error(`CONNECT answered ${status}`));
        if (got.length > end + 4) raw.unshift(got.subarray(end + 4));
        resolve();
      };
      raw.on('data', onData);
      raw.once('error', reject);
    });
  }
  if (!o.tls) return raw;
  const sock = tls.connect({ socket: raw, servername, ca, ALPNProtocols: ['http/1.1'] });
  await new Promise((resolve, reject) => {
    sock.once('secureConnect', resolve);
    sock.once('error', reject);
  });
  sock.setNoDelay(true);
  return sock;
}

/** @param {LoadOptions} o */
async function run(o) {
  const ca = o.ca === undefined ? undefined : readFileSync(o.ca);
  const names = o.servernames ?? [o.authority.split(':')[0]];
  const extra = Object.entries(o.headers ?? {}).map(([k, v]) => `${k}: ${v}\r\n`).join('');
  // `{name}` in `connect` and `authority` stands for the connection's SNI name.
  const requestFor = new Map(
    names.map((n) => [n, Buffer.from(`GET ${o.path} HTTP/1.1\r\nHost: ${o.authority.replace('{name}', n)}\r\nUser-Agent: proxy-bench\r\nAccept: */*\r\n${extra}\r\n`)]),
  );
  const latencies = [];
  let requests = 0;
  let errors = 0;
  let non2xx = 0;
  let opened = 0;
  const firstErrors = new Set();
  const end = Date.now() + o.durationMs;
  const started = process.hrtime.bigint();

  async function worker(index) {
    let conn = null;
    let reader = null;
    let request = null;
    let nameIndex = index;
    while (Date.now() < end) {
      const t0 = process.hrtime.bigint();
      try {
        if (conn === null) {
          const name = names[nameIndex++ % names.length];
          conn = await open(o, name, ca);
          request = requestFor.get(name);
          reader = new ResponseReader(conn);
          opened++;
        }
        const answer = reader.next();
        conn.write(request);
        const status = await answer;
        latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
        requests++;
        if (status < 200 || status > 299) non2xx++;
      } catch (err) {
        errors++;
        if (firstErrors.size < 3) firstErrors.add(String(err?.message ?? err));
        conn?.destroy();
        conn = null;
        await new Promise((r) => setTimeout(r, 20));
        continue;
      }
      if (o.newConnection) {
        conn.destroy();
        conn = null;
      }
    }
    conn?.destroy();
  }

  await Promise.all(Array.from({ length: o.connections }, (_, i) => worker(i)));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  latencies.sort((a, b) => a - b);
  const pct = (p) => (latencies.length === 0 ? null : latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))]);
  return {
    requests,
    seconds,
    rps: requests / seconds,
    p50_ms: pct(50),
    p99_ms: pct(99),
    errors,
    non2xx,
    connections_opened: opened,
    error_samples: [...firstErrors],
  };
}

const result = await run(JSON.parse(process.argv[2]));
process.stdout.write(`${JSON.stringify(result)}\n`);
process.exit(0);
