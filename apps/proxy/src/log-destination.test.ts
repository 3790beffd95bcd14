import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createFdDestination } from './log-destination.js';

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
});
