import { describe, expect, it } from 'vitest';
import { MIN_SECRET_LENGTH, SecretRedactor } from './redactor.js';

const SECRET = 'sk-real-9f8e7d6c5b4a';

function redactorWith(...values: string[]): SecretRedactor {
  const r = new SecretRedactor();
  for (const v of values) expect(r.add(v, 'API_KEY')).toBe(true);
  return r;
}

describe('SecretRedactor', () => {
  it('leaves text alone when it knows no secret', () => {
    expect(new SecretRedactor().redact('{"a":"b"}')).toBe('{"a":"b"}');
  });

  it('replaces the value wherever it appears, naming the secret by label', () => {
    const r = redactorWith(SECRET);
    expect(r.redact(`{"header:X-Token":"Bearer ${SECRET}","path":"/v1/${SECRET}/x"}`)).toBe(
      '{"header:X-Token":"Bearer [redacted:API_KEY]","path":"/v1/[redacted:API_KEY]/x"}',
    );
  });

  it('finds the JSON-escaped spelling a log line holds', () => {
    const odd = 'pa"ss\\word\n42';
    const r = redactorWith(odd);
    const line = JSON.stringify({ body: `x${odd}y` });
    expect(line).not.toContain(odd);
    expect(r.redact(line)).toBe('{"body":"x[redacted:API_KEY]y"}');
  });

  it('finds percent-encoded and form-encoded spellings (queries, paths)', () => {
    const odd = 'real value/with=specials&more';
    const r = redactorWith(odd);
    expect(r.redact(`q=${encodeURIComponent(odd)}`)).toBe('q=[redacted:API_KEY]');
    expect(r.redact(`q=${encodeURIComponent(odd).replace(/%20/g, '+')}`)).toBe('q=[redacted:API_KEY]');
  });

  it.each([0, 1, 2, 5])('finds the value base64-encoded after %i other bytes (Basic credentials), removing the whole run', (prefix) => {
    const r = redactorWith(SECRET);
    const user = 'u'.repeat(prefix);
    for (const text of [`${user}:${SECRET}`, `${user}:${SECRET}:tail`, `${SECRET}`]) {
      const b64 = Buffer.from(text).toString('base64');
      const url = Buffer.from(text).toString('base64url');
      expect(r.redact(`{"authorization":"Basic ${b64}"}`)).toBe('{"authorization":"Basic [redacted:API_KEY]"}');
      expect(r.redact(`token=${url}&x=1`)).toBe('token=[redacted:API_KEY]&x=1');
    }
  });

  it('does not redact unrelated base64 text', () => {
    const r = redactorWith(SECRET);
    const other = Buffer.from('user:another-password-entirely').toString('base64');
    expect(r.redact(`Basic ${other}`)).toBe(`Basic ${other}`);
  });

  it('ignores values too short to be told from ordinary text', () => {
    const r = new SecretRedactor();
    expect(r.add('a'.repeat(MIN_SECRET_LENGTH - 1), 'SHORT')).toBe(false);
    expect(r.size).toBe(0);
    expect(r.redact('aaaaa')).toBe('aaaaa');
  });

  it('forgets the oldest values beyond its capacity, and keeps re-registered ones', () => {
    const r = new SecretRedactor(2);
    r.add('first-secret', 'A');
    r.add('second-secret', 'B');
    r.add('first-secret', 'A');
    r.add('third-secret', 'C');
    expect(r.size).toBe(2);
    expect(r.redact('first-secret second-secret third-secret')).toBe('[redacted:A] second-secret [redacted:C]');
  });

  it('keeps labels harmless in a log line', () => {
    const r = new SecretRedactor();
    r.add(SECRET, 'weird"label\\with spaces');
    expect(r.redact(SECRET)).toBe('[redacted:weird_label_with_spaces]');
  });
});
