import { execFileSync } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createFdDestination, LogBacklog } from './log-destination.js';

describe('createFdDestination', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  function tempFile(): { path: string; fd: number } {
    const dir = mkdtempSync(join(tmpdir(), 'log-destination-'));
    dirs.push(dir);
    const path = join(dir, 'out.log');
    return { path, fd: openSync(path, 'w') };
  }

  it('calls flush back only once every line written so far is in the file', async () => {
    const { path, fd } = tempFile();
    const destination = createFdDestination(fd);
    const line = `${'x'.repeat(4096)}\n`;
    for (let i = 0; i < 500; i++) destination.write(line);
    // Read synchronously inside the callback, as a process that exits there would see it.
    const size = await new Promise<number>((resolve, reject) =>
      destination.flush((err) => (err ? reject(err) : resolve(readFileSync(path).length))),
    );
    expect(size).toBe(500 * line.length);
    closeSync(fd);
  });

  it('calls back at once when nothing is pending, and again after later writes', async () => {
    const { path, fd } = tempFile();
    const destination = createFdDestination(fd);
    await new Promise<void>((resolve) => destination.flush(() => resolve()));
    destination.write('one\n');
    await new Promise<void>((resolve) => destination.flush(() => resolve()));
    destination.write('two\n');
    destination.write('three\n');
    const text = await new Promise<string>((resolve) => destination.flush(() => resolve(readFileSync(path, 'utf8'))));
    expect(text).toBe('one\ntwo\nthree\n');
    closeSync(fd);
  });

  it('drops and counts the lines past its backlog bound while the reader stalls, and reports them once it has caught up', async () => {
    // A named pipe nobody reads yet: the kernel takes 64 KiB, then writes wait.
    const dir = mkdtempSync(join(tmpdir(), 'log-destination-'));
    dirs.push(dir);
    const fifo = join(dir, 'out.fifo');
    execFileSync('mkfifo', [fifo]);
    const readFd = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    const writeFd = openSync(fifo, 'w');
    const destination = createFdDestination(writeFd, 256 * 1024);
    const reports: number[] = [];
    destination.backlog.onCaughtUp((dropped) => reports.push(dropped));

    const total = 4000;
    for (let i = 0; i < total; i++) destination.write(`{"n":${i},"pad":"${'x'.repeat(1000)}"}\n`);
    const dropped = destination.backlog.droppedLines;
    // 4 MB written against 256 KiB of backlog and 64 KiB of pipe: most of it is dropped.
    expect(dropped).toBeGreaterThan(total - 400);
    expect(dropped).toBeLessThan(total);
    expect(reports).toEqual([]);

    const reader = new Socket({ fd: readFd, readable: true, writable: false });
    let text = '';
    reader.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
    await new Promise<void>((resolve) => destination.flush(() => resolve()));
    await new Promise((r) => setImmediate(r));
    expect(reports).toEqual([dropped]);
    closeSync(writeFd);
    await new Promise((r) => reader.once('close', r));
    // What was kept arrived whole, in order, and with what was dropped makes up every line.
    const kept = text.split('\n').filter((l) => l !== '').map((l) => (JSON.parse(l) as { n: number }).n);
    expect(kept.length + dropped).toBe(total);
    expect(kept).toEqual([...kept].sort((a, b) => a - b));
    expect(kept[0]).toBe(0);
  });
});

describe('LogBacklog', () => {
  it('counts every line of a dropped batch, and reports each drop once', () => {
    const backlog = new LogBacklog(100);
    const reports: number[] = [];
    backlog.onCaughtUp((n) => reports.push(n));
    expect(backlog.fits(60, 40)).toBe(true);
    expect(backlog.fits(60, 41)).toBe(false);
    backlog.drop('{"a":1}\n{"b":2}\n{"c":3}\n');
    backlog.drop('{"d":4}\n');
    expect(backlog.droppedLines).toBe(4);
    backlog.caughtUp();
    backlog.caughtUp();
    expect(reports).toEqual([4]);
    backlog.drop('{"e":5}\n');
    backlog.caughtUp();
    expect(reports).toEqual([4, 1]);
    expect(backlog.droppedLines).toBe(5);
  });
});
