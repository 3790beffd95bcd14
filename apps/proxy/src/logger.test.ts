import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { SecretRedactor } from '@proxy/core';
import type { AuditRecord } from '@proxy/core';
import { createProcessLog } from './logger.js';
import type { LogLevel, LogStyle } from './logger.js';
import { WorkerLogChannel, type LogBatchMessage } from './worker-log-channel.js';

function capture(level: LogLevel, style: LogStyle, redactor?: SecretRedactor): { log: ReturnType<typeof createProcessLog>; lines: () => Record<string, unknown>[] } {
  let text = '';
  const out = new Writable({
    write(chunk: Buffer, _enc, cb) {
      text += chunk.toString('utf8');
      cb();
    },
  });
  const log = createProcessLog(level, style, out, redactor);
  return { log, lines: () => text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) };
}

const record = (action: AuditRecord['action'], extra: Partial<AuditRecord> = {}): AuditRecord => ({
  request_id: 'r',
  host: 'api.example.com',
  port: 443,
  method: 'GET',
  path: '/x',
  remote_addr: '127.0.0.1',
  mode: 'mitm',
  action,
  status_code: 200,
  duration_ms: 1,
  request_transforms: [],
  response_transforms: [],
  ...extra,
});

describe('createProcessLog', () => {
  it('native: lower-case levels, the record at the top level, rejections at warn and failures at error', () => {
    const { log, lines } = capture('info', 'native');
    for (const action of ['allow', 'stub', 'reject', 'error'] as const) log.writeAudit(record(action));
    expect(lines().map((l) => [l['level'], l['action'], l['msg']])).toEqual([
      ['info', 'allow', 'request'],
      ['info', 'stub', 'request'],
      ['warn', 'reject', 'request'],
      ['error', 'error', 'request'],
    ]);
  });

  it("iron-proxy: upper-case levels and the record's fields in the audit group", () => {
    const { log, lines } = capture('info', 'iron-proxy');
    log.logger.info({ listener: 'http' }, 'listening');
    log.writeAudit(record('reject', { status_code: 403 }));
    const [listening, audit] = lines();
    expect(listening).toMatchObject({ level: 'INFO', msg: 'listening' });
    expect(audit).toMatchObject({ level: 'WARN', msg: 'request', audit: { host: 'api.example.com', action: 'reject', status_code: 403, mode: 'mitm' } });
    expect(audit).not.toHaveProperty('host');
  });

  it('aws-outbound-jwt-proxy: upper-case levels, and per-request records only at debug', () => {
    const quiet = capture('info', 'aws-outbound-jwt-proxy');
    quiet.log.logger.info('listening');
    quiet.log.writeAudit(record('error'));
    expect(quiet.lines()).toEqual([expect.objectContaining({ level: 'INFO', msg: 'listening' })]);
    const verbose = capture('debug', 'aws-outbound-jwt-proxy');
    verbose.log.writeAudit(record('reject'));
    expect(verbose.lines()).toEqual([expect.objectContaining({ level: 'DEBUG', msg: 'request', action: 'reject' })]);
  });

  it('passes every line through the redactor, whatever the style', () => {
    for (const style of ['native', 'iron-proxy', 'aws-outbound-jwt-proxy'] as const) {
      const redactor = new SecretRedactor();
      redactor.add('sk-live-0123456789', 'API_KEY');
      const { log, lines } = capture('debug', style, redactor);
      log.writeAudit(record('allow', { path: '/?key=sk-live-0123456789' }));
      expect(JSON.stringify(lines()), style).not.toContain('sk-live-0123456789');
    }
  });

  it('writes how many lines its destination dropped once the output has caught up, in the style\'s level case', async () => {
    const held: (() => void)[] = [];
    const sent: LogBatchMessage[] = [];
    const channel = new WorkerLogChannel((message, callback) => {
      sent.push(message);
      held.push(() => callback(null));
    });
    channel.backlog.maxBytes = 65_536;
    const log = createProcessLog('info', 'iron-proxy', channel);
    expect(log.backlog).toBe(channel.backlog);
    for (let i = 0; i < 2000; i++) log.writeAudit(record('allow', { path: `/${i}` }));
    await new Promise((r) => setImmediate(r));
    const dropped = channel.backlog.droppedLines;
    expect(dropped).toBeGreaterThan(1000);
    for (const take of held.splice(0)) take();
    await new Promise((r) => setImmediate(r));
    const warning = sent
      .flatMap((m) => m.lines.split('\n').filter(Boolean))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => l['dropped_lines'] !== undefined);
    expect(warning).toMatchObject({ level: 'WARN', dropped_lines: dropped });
    expect(String(warning?.['msg'])).toContain(`${dropped} log line(s)`);
  });
});
