import { describe, expect, it } from 'vitest';
import { FrameReader, frame } from './tcp-frames.js';

describe('TCP framing', () => {
  it('prefixes the length', () => {
    expect(frame(Buffer.from('abc'))).toEqual(Buffer.from([0, 3, 0x61, 0x62, 0x63]));
  });

  it('reassembles messages split anywhere, and several in one chunk', () => {
    const stream = Buffer.concat([frame(Buffer.from('first')), frame(Buffer.alloc(0)), frame(Buffer.from('third message'))]);
    for (let split = 0; split <= stream.length; split++) {
      const reader = new FrameReader();
      const messages = [...reader.push(stream.subarray(0, split)), ...reader.push(stream.subarray(split))];
      expect(messages.map((m) => m.toString())).toEqual(['first', '', 'third message']);
    }
  });

  it('returns nothing until a message is complete', () => {
    const reader = new FrameReader();
    const bytes = frame(Buffer.from('xyz'));
    for (const byte of bytes.subarray(0, -1)) expect(reader.push(Buffer.from([byte]))).toEqual([]);
    expect(reader.push(bytes.subarray(-1)).map((m) => m.toString())).toEqual(['xyz']);
  });
});
