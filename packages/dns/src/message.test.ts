import { describe, expect, it } from 'vitest';
import { decode, encode, type Packet } from 'dns-packet';
import { encodeResponse, Rcode, readQuery, truncateResponse, udpLimitOf, unanswerableRcode, type DnsQuery } from './message.js';

function query(packet: Packet): DnsQuery {
  const parsed = readQuery(encode({ type: 'query', id: 77, flags: 1 << 8, questions: [{ name: 'Api.Example.com', type: 'A' }], ...packet }));
  if (parsed === undefined) throw new Error('expected a query');
  return parsed;
}

const opt = (udpPayloadSize: number) => ({ type: 'OPT' as const, name: '.', udpPayloadSize, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] });

describe('DNS messages', () => {
  it('reads a query, with its EDNS size', () => {
    expect(query({})).toMatchObject({ id: 77, opcode: 0, ednsUdpSize: undefined, questions: [{ name: 'Api.Example.com', type: 'A' }] });
    expect(query({ additionals: [opt(4096)] }).ednsUdpSize).toBe(4096);
  });

  it('rejects bytes that do not parse and responses', () => {
    expect(readQuery(Buffer.from([1, 2, 3]))).toBeUndefined();
    expect(readQuery(encode({ type: 'response', id: 1, questions: [{ name: 'a.test', type: 'A' }] }))).toBeUndefined();
  });

  it('refuses other opcodes (NOTIMP) and question counts other than one (FORMERR)', () => {
    expect(unanswerableRcode(query({}))).toBeUndefined();
    expect(unanswerableRcode(query({ flags: 2 << 11 }))).toBe(Rcode.NOTIMP);
    expect(unanswerableRcode(query({ questions: [] }))).toBe(Rcode.FORMERR);
  });

  it('limits UDP answers to 512 bytes, or the EDNS size within 512..1232', () => {
    expect(udpLimitOf(query({}))).toBe(512);
    expect(udpLimitOf(query({ additionals: [opt(1000)] }))).toBe(1000);
    expect(udpLimitOf(query({ additionals: [opt(100)] }))).toBe(512);
    expect(udpLimitOf(query({ additionals: [opt(65535)] }))).toBe(1232);
  });

  it('encodes a response echoing the question, with RD copied, RA, AA and the rcode', () => {
    const response = decode(encodeResponse(query({}), { rcode: Rcode.NXDOMAIN, authoritative: true }));
    expect(response).toMatchObject({ id: 77, flag_qr: true, flag_aa: true, flag_rd: true, flag_ra: true, flag_tc: false, rcode: 'NXDOMAIN' });
    expect(response.questions).toEqual([{ name: 'Api.Example.com', type: 'A', class: 'IN' }]);
    expect(response.additionals).toEqual([]);
    const edns = decode(encodeResponse(query({ additionals: [opt(4096)] }), { rcode: Rcode.NOERROR, authoritative: false }));
    expect(edns.flag_aa).toBe(false);
    expect(edns.additionals).toMatchObject([{ type: 'OPT', udpPayloadSize: 1232 }]);
  });

  it('truncates to the header and question with TC set, keeping the rcode', () => {
    const q = query({ additionals: [opt(1232)] });
    const full = encodeResponse(q, {
      rcode: Rcode.NOERROR,
      authoritative: true,
      answers: Array.from({ length: 50 }, () => ({ type: 'A' as const, name: 'Api.Example.com', ttl: 60, data: '10.0.0.1' })),
    });
    const truncated = decode(truncateResponse(q, full));
    expect(truncated).toMatchObject({ id: 77, flag_tc: true, flag_aa: true, rcode: 'NOERROR', answers: [] });
    expect(truncated.questions).toEqual([{ name: 'Api.Example.com', type: 'A', class: 'IN' }]);
    expect(truncated.additionals).toMatchObject([{ type: 'OPT' }]);
  });
});
