/**
 * The `dns.records` table: static A, AAAA and CNAME records that take precedence over
 * passthrough and interception. Names match case-insensitively, with or without a trailing dot.
 */
import { isIPv4, isIPv6 } from 'node:net';
import type { Answer, RecordType } from 'dns-packet';
import { ErrorCodes, normalizeHost, ProxyError } from '@proxy/core';

/** One `dns.records[]` entry. */
export interface StaticRecord {
  readonly name: string;
  readonly type: 'A' | 'AAAA' | 'CNAME';
  readonly value: string;
}

/** How the static records answer a question. */
export type StaticAnswer =
  /** The name has no static records: passthrough or interception decide. */
  | { readonly kind: 'none' }
  /** The complete answer (empty when the name has no record of the asked type). */
  | { readonly kind: 'answer'; readonly answers: readonly Answer[] }
  /** A CNAME chain that leaves the static records at `target`, which is resolved like any name. */
  | { readonly kind: 'alias'; readonly answers: readonly Answer[]; readonly target: string }
  /** A CNAME chain that loops or exceeds {@link MAX_CNAME_HOPS}. */
  | { readonly kind: 'loop' };

/** The longest CNAME chain followed through the static records. */
export const MAX_CNAME_HOPS = 8;

/** The validated, indexed static records. */
export class StaticRecords {
  readonly #byName = new Map<string, StaticRecord[]>();

  /**
   * Indexes the records. Throws a `ProxyError` (`PROXY_ERR_CONFIG_INVALID`) for an A value that
   * is not IPv4, an AAAA value that is not IPv6, an empty name or CNAME target, or a CNAME that
   * shares its name with another record (RFC 1034 §3.6.2).
   */
  constructor(records: readonly StaticRecord[]) {
    records.forEach((record, index) => {
      const problem = recordProblem(record);
      if (problem !== undefined) throw invalid(index, problem);
      const name = normalizeHost(record.name);
      const set = this.#byName.get(name) ?? [];
      if (set.length > 0 && (record.type === 'CNAME' || set.some((r) => r.type === 'CNAME'))) {
        throw invalid(index, `"${record.name}" has a CNAME record, so it can have no other record`);
      }
      set.push(record);
      this.#byName.set(name, set);
    });
  }

  /**
   * Answers `type` for `name` from the static records. A CNAME answers every type but CNAME
   * itself by following its chain: each hop is in the answer, owned by the name that pointed to it.
   */
  answer(name: string, type: RecordType, ttl: number): StaticAnswer {
    const answers: Answer[] = [];
    const seen = new Set<string>();
    let owner = name;
    for (let hop = 0; hop <= MAX_CNAME_HOPS; hop++) {
      const key = normalizeHost(owner);
      const set = this.#byName.get(key);
      if (set === undefined) return hop === 0 ? { kind: 'none' } : { kind: 'alias', answers, target: owner };
      if (seen.has(key)) return { kind: 'loop' };
      seen.add(key);
      const alias = set.find((r) => r.type === 'CNAME');
      if (alias !== undefined && type !== 'CNAME') {
        answers.push({ type: 'CNAME', name: owner, ttl, data: alias.value });
        owner = alias.value;
        continue;
      }
      for (const record of set) {
        if (record.type === type) answers.push({ type: record.type, name: owner, ttl, data: record.value });
      }
      return { kind: 'answer', answers };
    }
    return { kind: 'loop' };
  }
}

function recordProblem(record: StaticRecord): string | undefined {
  if (normalizeHost(record.name) === '') return 'the name is empty';
  switch (record.type) {
    case 'A':
      return isIPv4(record.value) ? undefined : `"${record.value}" is not an IPv4 address`;
    case 'AAAA':
      return isIPv6(record.value) ? undefined : `"${record.value}" is not an IPv6 address`;
    case 'CNAME':
      return normalizeHost(record.value) === '' ? 'the CNAME target is empty' : undefined;
    default:
      return `unsupported record type "${String((record as { type: unknown }).type)}" (use A, AAAA or CNAME)`;
  }
}

function invalid(index: number, problem: string): ProxyError {
  return new ProxyError(ErrorCodes.CONFIG_INVALID, `dns.records[${index}]: ${problem}`, { reason: 'config_invalid' });
}
