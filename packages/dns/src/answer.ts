/**
 * How a query is answered: static records first, then passthrough names forwarded upstream,
 * then interception (the proxy's own address for every other name).
 */
import { randomInt } from 'node:crypto';
import type { Answer, Question, RecordType } from 'dns-packet';
import { normalizeHost } from '@proxy/core';
import { encodeQuery, encodeResponse, Rcode, unanswerableRcode, type DnsQuery, type ResponseInit } from './message.js';
import type { StaticRecords } from './static-records.js';
import type { UpstreamResolver } from './upstream.js';

/** Which rule answered a query. */
export type AnswerSource = 'static' | 'passthrough' | 'intercept' | 'unsupported';

/** A response, where it came from, and why it failed when it is a SERVFAIL of ours. */
export interface Answered {
  readonly response: Buffer;
  readonly source: AnswerSource;
  readonly failure?: string;
}

/** Everything the answering rules use. */
export interface AnswerRules {
  readonly records: StaticRecords;
  /** Whether a name is forwarded upstream (`dns.passthrough`). */
  readonly isPassthrough: (name: string) => boolean;
  readonly upstream: UpstreamResolver;
  readonly proxyIp: string;
  readonly proxyIpv6: string | undefined;
  /** TTL of synthesized records, in seconds. */
  readonly ttlSeconds: number;
  /** Called for every intercepted query, with the address answered (null: no answer). */
  readonly onIntercept: (name: string, type: string, client: string, answer: string | null) => void;
}

const MAX_MESSAGE_ID = 0x10000;

/** Answers queries by the rules. */
export class QueryAnswerer {
  readonly #rules: AnswerRules;

  constructor(rules: AnswerRules) {
    this.#rules = rules;
  }

  /**
   * Answers `query` from `client`. Never rejects: an upstream failure is a SERVFAIL. `signal`
   * aborts upstream exchanges (at shutdown).
   */
  async answer(query: DnsQuery, client: string, signal: AbortSignal): Promise<Answered> {
    const unanswerable = unanswerableRcode(query);
    if (unanswerable !== undefined) return respond(query, 'unsupported', { rcode: unanswerable, authoritative: false });
    const question = query.questions[0] as Question;
    if ((question.class ?? 'IN') !== 'IN') return respond(query, 'unsupported', { rcode: Rcode.REFUSED, authoritative: false });

    const rules = this.#rules;
    const fromRecords = rules.records.answer(question.name, question.type, rules.ttlSeconds);
    switch (fromRecords.kind) {
      case 'answer':
        return respond(query, 'static', { rcode: Rcode.NOERROR, authoritative: true, answers: fromRecords.answers });
      case 'loop':
        return respond(query, 'static', { rcode: Rcode.SERVFAIL, authoritative: false }, 'the CNAME chain in dns.records loops or is too long');
      case 'none':
        if (rules.isPassthrough(question.name)) return this.#forward(query, signal);
        return respond(query, 'intercept', this.#intercept(question, question.name, client, []));
      case 'alias':
        if (rules.isPassthrough(fromRecords.target)) return this.#forwardAlias(query, fromRecords.answers, fromRecords.target, signal);
        return respond(query, 'intercept', this.#intercept(question, fromRecords.target, client, fromRecords.answers));
    }
  }

  /** Relays the query as received (same id, same question) and the upstream's answer as received. */
  async #forward(query: DnsQuery, signal: AbortSignal): Promise<Answered> {
    const question = query.questions[0] as Question;
    try {
      const { message } = await this.#rules.upstream.exchange(query.message, { id: query.id, question }, signal);
      return { response: message, source: 'passthrough' };
    } catch (error) {
      return respond(query, 'passthrough', { rcode: Rcode.SERVFAIL, authoritative: false }, reasonOf(error));
    }
  }

  /** Asks upstream for the end of a static CNAME chain and answers with the chain, then its records. */
  async #forwardAlias(query: DnsQuery, chain: readonly Answer[], target: string, signal: AbortSignal): Promise<Answered> {
    const question: Question = { name: target, type: (query.questions[0] as Question).type, class: 'IN' };
    const id = randomInt(MAX_MESSAGE_ID);
    try {
      const { packet } = await this.#rules.upstream.exchange(encodeQuery(id, question), { id, question }, signal);
      return respond(query, 'passthrough', {
        rcode: (packet.flags ?? 0) & 0xf,
        authoritative: false,
        answers: [...chain, ...(packet.answers ?? [])],
        authorities: packet.authorities ?? [],
      });
    } catch (error) {
      return respond(query, 'passthrough', { rcode: Rcode.SERVFAIL, authoritative: false }, reasonOf(error));
    }
  }

  /** The proxy's address for `owner` (A: proxy_ip; AAAA: proxy_ipv6 when set; otherwise no record). */
  #intercept(question: Question, owner: string, client: string, chain: readonly Answer[]): ResponseInit {
    const rules = this.#rules;
    const address = addressFor(question.type, rules.proxyIp, rules.proxyIpv6);
    rules.onIntercept(normalizeHost(question.name), question.type, client, address ?? null);
    const record: Answer[] =
      address === undefined ? [] : [{ type: question.type as 'A' | 'AAAA', name: owner, ttl: rules.ttlSeconds, data: address }];
    return { rcode: Rcode.NOERROR, authoritative: true, answers: [...chain, ...record] };
  }
}

function addressFor(type: RecordType, proxyIp: string, proxyIpv6: string | undefined): string | undefined {
  if (type === 'A') return proxyIp;
  if (type === 'AAAA') return proxyIpv6;
  return undefined;
}

function respond(query: DnsQuery, source: AnswerSource, init: ResponseInit, failure?: string): Answered {
  const response = encodeResponse(query, init);
  return failure === undefined ? { response, source } : { response, source, failure };
}

function reasonOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
