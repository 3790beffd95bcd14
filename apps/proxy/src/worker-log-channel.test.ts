import { describe, expect, it } from 'vitest';
import { isLogBatch, WorkerLogChannel, type LogBatchMessage } from './worker-log-channel.js';

function channel(): { log: WorkerLogChannel; sent: LogBatchMessage[] } {
  const sent: LogBatchMessage[] = [];
  return {
    sent,
    log: new WorkerLogChannel((message, callback) => {
      sent.push(message);
      setImmediate(() => callback(null));
    }),
  };
}

describe('WorkerLogChannel', () => {
  it('sends the lines of one event-loop turn as one batch of whole lines', async () => {
    const { log, sent } = channel();
    const long = `{"msg":"request","path":"/${'x'.repeat(10_000)}"}\n`;
    log.write('{"a":1}\n');
    log.write(long);
    log.write('{"b":2}\n');
    expect(sent).toEqual([]);
    await new Promise((r) => setImmediate(r));
    expect(sent).toEqual([{ type: 'proxy:log', lines: `{"a":1}\n${long}{"b":2}\n` }]);
    log.write('{"c":3}\n');
    await new Promise((r) => setImmediate(r));
    expect(sent.map((m) => m.lines)).toEqual([`{"a":1}\n${long}{"b":2}\n`, '{"c":3}\n']);
    expect(sent.every(isLogBatch)).toBe(true);
  });

  it('flush sends what is pending at once and calls back once it was sent', async () => {
    const { log, sent } = channel();
    log.write('{"last":true}\n');
    await new Promise<void>((resolve) => log.flush(() => resolve()));
    expect(sent).toEqual([{ type: 'proxy:log', lines: '{"last":true}\n' }]);
    await new Promise<void>((resolve) => log.flush(() => resolve()));
    expect(sent).toHaveLength(1);
  });

  it('drops the lines without failing when the channel to the primary is gone', async () => {
    const log = new WorkerLogChannel(() => {
      throw new Error('channel closed');
    });
    log.write('{"x":1}\n');
    await new Promise<void>((resolve) => log.flush(() => resolve()));
  });

  it('bounds the lines a stalled primary has not taken, drops and counts the rest, and reports them once taken', async () => {
    // The channel takes nothing until `take` runs: a primary that stopped reading.
    const held: (() => void)[] = [];
    const sent: LogBatchMessage[] = [];
    const log = new WorkerLogChannel((message, callback) => {
      sent.push(message);
      held.push(() => callback(null));
    });
    log.backlog.maxBytes = 10_000;
    const reports: number[] = [];
    log.backlog.onCaughtUp((n) => reports.push(n));
    const line = (i: number): string => `{"n":${i},"pad":"${'x'.repeat(80)}"}\n`;
    for (let turn = 0; turn < 10; turn++) {
      for (let i = 0; i < 50; i++) log.write(line(turn * 50 + i));
      await new Promise((r) => setImmediate(r));
    }
    const keptLines = sent.flatMap((m) => m.lines.split('\n').filter((l) => l !== ''));
    expect(log.backlog.droppedLines).toBeGreaterThan(0);
    expect(keptLines.length + log.backlog.droppedLines).toBe(500);
    expect(sent.reduce((sum, m) => sum + m.lines.length, 0)).toBeLessThanOrEqual(10_000);
    expect(reports).toEqual([]);

    for (const take of held.splice(0)) take();
    expect(reports).toEqual([log.backlog.droppedLines]);
    // Room again: the next lines go out.
    log.write(line(500));
    const flushed = new Promise<void>((resolve) => log.flush(() => resolve()));
    for (const take of held.splice(0)) take();
    await flushed;
    expect(sent.at(-1)?.lines).toBe(line(500));
    expect(reports).toHaveLength(1);
  });

  it('recognises only log batches', () => {
    expect(isLogBatch({ type: 'proxy:log', lines: '' })).toBe(true);
    expect(isLogBatch({ type: 'proxy:ready' })).toBe(false);
    expect(isLogBatch(null)).toBe(false);
  });
});
