// A self-check of the load generator's HTTP/1.1 reading against awkward servers: answers
// written a few bytes at a time, chunked bodies with extensions and trailers, `Connection:
// close`, a kept-alive connection closed without notice, a body delimited by the server
// closing, 204, and a 500. Each server is a plain
// node:net listener; the load generator must finish with no errors and the expected status
// counts. Run after changing loadgen.c:
//
//   make -C bench/loadgen && node bench/loadgen/check.mjs [path/to/loadgen]

import { execFile } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const BINARY = process.argv[2] ?? fileURLToPath(new URL('./loadgen', import.meta.url));

const CHUNKED = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n1a\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-Trailer: t\r\n\r\n';

/** Each case: what the server answers to every request, and whether it closes after. */
const CASES = [
  { name: 'content-length, 3 bytes a write', answer: 'HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789', slice: 3 },
  { name: 'chunked with extension and trailer, 1 byte a write', answer: CHUNKED, slice: 1 },
  { name: 'chunked in one write', answer: CHUNKED },
  { name: 'Connection: close', answer: 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok', close: true, closes: true },
  { name: 'silent close after each answer', answer: 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok', close: true, closes: true },
  { name: 'body until close', answer: 'HTTP/1.1 200 OK\r\n\r\nuntil the end', close: true, closes: true },
  { name: '204 without body', answer: 'HTTP/1.1 204 No Content\r\n\r\n' },
  { name: '500 is counted as non-2xx', answer: 'HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n', non2xx: true },
];

/** A server answering every request (one at a time per connection) with `answer`. */
async function serve({ answer, slice, close }) {
  const server = net.createServer((socket) => {
    let pending = '';
    socket.on('data', async (chunk) => {
      pending += chunk;
      while (pending.includes('\r\n\r\n')) {
        pending = pending.slice(pending.indexOf('\r\n\r\n') + 4);
        for (let i = 0; i < answer.length; i += slice ?? answer.length) {
          socket.write(answer.slice(i, i + (slice ?? answer.length)));
          if (slice !== undefined) await new Promise((r) => setImmediate(r));
        }
        if (close) socket.end();
      }
    });
    socket.on('error', () => {});
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

let failed = 0;
for (const c of CASES) {
  const server = await serve(c);
  const { stdout } = await run(BINARY, ['--port', String(server.address().port), '-c', '4', '-d', '0.5']);
  server.close();
  const r = JSON.parse(stdout);
  const problems = [];
  if (r.requests === 0) problems.push('no requests');
  if (r.errors !== 0) problems.push(`${r.errors} errors ${JSON.stringify(r.errors_by_kind)} ${r.error_samples.join('; ')}`);
  if (c.non2xx ? r.non2xx !== r.requests : r.non2xx !== 0) problems.push(`non2xx ${r.non2xx} of ${r.requests}`);
  if (c.closes && r.closed_connections === 0) problems.push('no closed connection counted');
  console.log(`${problems.length === 0 ? 'ok  ' : 'FAIL'} ${c.name}: ${r.requests} requests${problems.length > 0 ? ` (${problems.join(', ')})` : ''}`);
  if (problems.length > 0) failed++;
}

// Open loop against a fast server: the achieved rate within 2% of the target, nothing left
// unanswered.
const server = await serve(CASES[2]);
const rate = 2000;
const { stdout } = await run(BINARY, ['--port', String(server.address().port), '-c', '10', '-d', '2', '--rate', String(rate), '--warmup', '0.5']);
server.close();
const r = JSON.parse(stdout);
const rateOk = Math.abs(r.rps - rate) / rate <= 0.02 && r.unfinished === 0 && r.errors === 0;
console.log(`${rateOk ? 'ok  ' : 'FAIL'} open loop at ${rate}/s: ${r.rps.toFixed(1)} req/s, ${r.unfinished} unfinished, p50 ${r.p50_ms} ms`);
if (!rateOk) failed++;
process.exit(failed === 0 ? 0 : 1);
