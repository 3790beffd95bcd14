import { once } from 'node:events';
import net, { type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ConnectionSet } from './connection-set.js';

/** `count` connected client sockets to a loopback server (each closed when the test ends). */
async function connections(count: number): Promise<Socket[]> {
  const server = net.createServer((socket) => socket.on('error', () => undefined));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  const sockets = await Promise.all(
    Array.from({ length: count }, async () => {
      const socket = net.connect(port, '127.0.0.1');
      socket.on('error', () => undefined);
      await once(socket, 'connect');
      return socket;
    }),
  );
  cleanups.push(() => {
    for (const socket of sockets) socket.destroy();
    server.close();
  });
  return sockets;
}

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

/** Destroys `socket` and waits for its 'close' event (when the set hears of it too). */
const close = async (socket: Socket): Promise<void> => {
  const event = once(socket, 'close');
  socket.destroy();
  await event;
};

describe('ConnectionSet', () => {
  it('counts each connection until it closes, in any order, and says when the last one went', async () => {
    let emptied = 0;
    const set = new ConnectionSet(() => emptied++);
    const [a, b, c, d] = await connections(4);
    for (const socket of [a!, b!, c!, d!]) set.add(socket);
    expect(set.size).toBe(4);
    // The middle, the newest, the oldest, then the last one left.
    for (const [socket, left] of [[b!, 3], [d!, 2], [a!, 1], [c!, 0]] as const) {
      await close(socket);
      expect(set.size).toBe(left);
    }
    expect(emptied).toBe(1);
  });

  it('counts a connection added twice once, and refuses one already destroyed', async () => {
    const set = new ConnectionSet();
    const [a, b] = await connections(2);
    set.add(a!);
    set.add(a!);
    b!.destroy();
    set.add(b!);
    expect(set.size).toBe(1);
    await close(a!);
    expect(set.size).toBe(0);
  });

  it('keeps a connection in two sets independently (a listener accepted it, then it was spliced)', async () => {
    const accepted = new ConnectionSet();
    const spliced = new ConnectionSet();
    const [a] = await connections(1);
    accepted.add(a!);
    spliced.add(a!);
    expect([accepted.size, spliced.size]).toEqual([1, 1]);
    await close(a!);
    expect([accepted.size, spliced.size]).toEqual([0, 0]);
  });

  it('destroys every member on destroyAll, including those added after others left', async () => {
    const set = new ConnectionSet();
    const [a, b, c] = await connections(3);
    set.add(a!);
    set.add(b!);
    await close(b!);
    set.add(c!);
    const gone = Promise.all([once(a!, 'close'), once(c!, 'close')]);
    set.destroyAll();
    await gone;
    expect([a!.destroyed, c!.destroyed]).toEqual([true, true]);
    expect(set.size).toBe(0);
  });
});
