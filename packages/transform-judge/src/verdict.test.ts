import { describe, expect, it } from 'vitest';
import { parseVerdict } from './verdict.js';

describe('parseVerdict', () => {
  it.each([
    ['{"decision":"ALLOW","reason":"ok"}', 'ALLOW'],
    ['  {"decision":"deny","reason":"billing"}\n', 'DENY'],
    ['```json\n{"decision":"Allow","reason":"fenced"}\n```', 'ALLOW'],
    ['```\n{"decision":"DENY"}\n```', 'DENY'],
  ])('reads %j as %s', (text, decision) => {
    expect(parseVerdict(text)?.decision).toBe(decision);
  });

  it.each([
    'ALLOW',
    'Sure! {"decision":"ALLOW"}',
    '{"decision":"MAYBE"}',
    '{"decision":true}',
    '["ALLOW"]',
    '',
    '```json\n{"decision":"ALLOW"\n```',
  ])('refuses %j', (text) => {
    expect(parseVerdict(text)).toBeUndefined();
  });

  it('caps the reason at 512 characters and defaults it to empty', () => {
    expect(parseVerdict(JSON.stringify({ decision: 'DENY', reason: 'x'.repeat(600) }))?.reason).toHaveLength(512);
    expect(parseVerdict('{"decision":"ALLOW"}')?.reason).toBe('');
  });
});
