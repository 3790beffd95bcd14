import { randomBytes } from 'node:crypto';
import { createServer, type AddressInfo } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { describe, expect, it } from 'vitest';
import { MAX_CLIENT_HELLO_BYTES, parseClientHello } from './client-hello.js';

/** The first flight a real Node TLS client sends, captured on a raw TCP server. */
async function capturedHello(servername: string | undefined): Promise<Buffer> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const received = new Promise<Buffer>((resolve) => {
    server.once('connection', (socket) => {
      let bytes = Buffer.alloc(0);
      socket.on('data', (chunk: Buffer) => {
        bytes = Buffer.concat([bytes, chunk]);
        if (parseClientHello(bytes).status !== 'incomplete') {
          socket.destroy();
          resolve(bytes);
        }
      });
    });
  });
  const client = tlsConnect({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, ...(servername === undefined ? {} : { servername }) });
  client.on('error', () => undefined);
  try {
    return await received;
  } finally {
    client.destroy();
    server.close();
  }
}

/** A synthetic ClientHello body with the given extensions (type, data). */
function helloBody(extensions: readonly [number, Buffer][] | undefined): Buffer {
  const fixed = Buffer.concat([
    Buffer.from([0x03, 0x03]),
    Buffer.alloc(32, 7),
    Buffer.from([0]), // session id
    Buffer.from([0, 2, 0x13, 0x01]), // one cipher suite
    Buffer.from([1, 0]), // null compression
  ]);
  if (extensions === undefined) return fixed;
  const encoded = Buffer.concat(extensions.map(([type, data]) => Buffer.concat([u16(type), u16(data.length), data])));
  return Buffer.concat([fixed, u16(encoded.length), encoded]);
}

function serverNameExtension(...names: [number, string][]): [number, Buffer] {
  const entries = Buffer.concat(names.map(([type, name]) => Buffer.concat([Buffer.from([type]), u16(name.length), Buffer.from(name, 'latin1')])));
  return [0, Buffer.concat([u16(entries.length), entries])];
}

/** Wraps a handshake body into a ClientHello message and TLS records of at most `recordSize` bytes. */
function records(body: Buffer, recordSize = 16_384): Buffer {
  const message = Buffer.concat([Buffer.from([1, body.length >> 16, (body.length >> 8) & 0xff, body.length & 0xff]), body]);
  const out: Buffer[] = [];
  for (let i = 0; i < message.length; i += recordSize) {
    const fragment = message.subarray(i, i + recordSize);
    out.push(Buffer.from([0x16, 0x03, 0x01]), u16(fragment.length), fragment);
  }
  return Buffer.concat(out);
}

function u16(value: number): Buffer {
  return Buffer.from([value >> 8, value & 0xff]);
}

describe('parseClientHello', () => {
  it('reads the server name of a real client hello, whatever the TCP reads it arrives in', async () => {
    const hello = await capturedHello('API.Example.com');
    const complete = parseClientHello(hello);
    expect(complete).toEqual({ status: 'complete', serverName: 'api.example.com', length: hello.length });
    for (let cut = 0; cut < hello.length; cut++) {
      expect(parseClientHello(hello.subarray(0, cut)).status).toBe('incomplete');
    }
  });

  it('reports no server name when the client sent none', async () => {
    const hello = await capturedHello(undefined);
    expect(parseClientHello(hello)).toMatchObject({ status: 'complete', serverName: undefined });
  });

  it('reads a hello split over several TLS records and ignores what follows it', () => {
    const body = helloBody([serverNameExtension([0, 'split.example.com.']), [0x0010, Buffer.from([0, 3, 2, 0x68, 0x32])]]);
    const bytes = records(body, 16);
    const trailing = Buffer.from([0x17, 0x03, 0x03, 0x00, 0x01, 0x00]);
    expect(parseClientHello(Buffer.concat([bytes, trailing]))).toEqual({ status: 'complete', serverName: 'split.example.com', length: bytes.length });
    expect(parseClientHello(bytes.subarray(0, bytes.length - 1)).status).toBe('incomplete');
  });

  it('accepts a hello without extensions', () => {
    expect(parseClientHello(records(helloBody(undefined)))).toMatchObject({ status: 'complete', serverName: undefined });
  });

  it('says not_tls as soon as the first bytes are not a TLS handshake record', () => {
    expect(parseClientHello(Buffer.from('G'))).toEqual({ status: 'invalid', problem: 'not_tls' });
    expect(parseClientHello(Buffer.from('GET / HTTP/1.1\r\n'))).toEqual({ status: 'invalid', problem: 'not_tls' });
    expect(parseClientHello(Buffer.from([0x16, 0x02]))).toEqual({ status: 'invalid', problem: 'not_tls' });
    expect(parseClientHello(Buffer.from([0x05, 0x01, 0x00]))).toEqual({ status: 'invalid', problem: 'not_tls' });
  });

  it('refuses a handshake record that does not carry a ClientHello', () => {
    const serverHello = Buffer.from([0x16, 0x03, 0x03, 0x00, 0x04, 0x02, 0x00, 0x00, 0x00]);
    expect(parseClientHello(serverHello)).toEqual({ status: 'invalid', problem: 'malformed' });
  });

  it('refuses broken lengths inside the hello', () => {
    const body = helloBody([serverNameExtension([0, 'a.example'])]);
    const truncatedExtensions = Buffer.from(body);
    truncatedExtensions.writeUInt16BE(body.length, 41); // extensions length past the end
    expect(parseClientHello(records(truncatedExtensions))).toEqual({ status: 'invalid', problem: 'malformed' });
    const longSessionId = Buffer.from(body);
    longSessionId[34] = 33;
    expect(parseClientHello(records(longSessionId))).toEqual({ status: 'invalid', problem: 'malformed' });
    const duplicate = helloBody([serverNameExtension([0, 'a.example']), serverNameExtension([0, 'b.example'])]);
    expect(parseClientHello(records(duplicate))).toEqual({ status: 'invalid', problem: 'malformed' });
    const twoHostNames = helloBody([serverNameExtension([0, 'a.example'], [0, 'b.example'])]);
    expect(parseClientHello(records(twoHostNames))).toEqual({ status: 'invalid', problem: 'malformed' });
  });

  it('refuses a server name that is not a host name', () => {
    for (const name of ['bad name.example', 'a..example', 'evil.example\u0000.com', '-lead.example', '']) {
      const result = parseClientHello(records(helloBody([serverNameExtension([0, name])])));
      expect(result.status, name).toBe('invalid');
    }
  });

  it('refuses a hello longer than the limit before receiving it all', () => {
    const body = helloBody([[0x0015, Buffer.alloc(MAX_CLIENT_HELLO_BYTES)]]); // a huge padding extension
    const bytes = records(body);
    expect(parseClientHello(bytes.subarray(0, 64))).toEqual({ status: 'invalid', problem: 'oversized' });
    expect(parseClientHello(bytes.subarray(0, 64), 1 << 20).status).toBe('incomplete');
    expect(parseClientHello(bytes, 1 << 20)).toMatchObject({ status: 'complete', serverName: undefined });
  });

  it('never throws on random or truncated bytes', async () => {
    const hello = await capturedHello('fuzz.example');
    for (let i = 0; i < 2_000; i++) {
      const mutated = Buffer.from(hello.subarray(0, 1 + (i % hello.length)));
      const flips = 1 + (i % 5);
      for (let f = 0; f < flips; f++) mutated[randomBytes(2).readUInt16BE() % mutated.length] = randomBytes(1)[0]!;
      expect(() => parseClientHello(mutated)).not.toThrow();
      expect(() => parseClientHello(randomBytes(1 + (i % 300)))).not.toThrow();
    }
  });
});
