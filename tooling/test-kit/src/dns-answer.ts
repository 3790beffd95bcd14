import type { Answer, DecodedPacket, Packet, Question } from 'dns-packet';

/** The records served for one name. */
export interface DnsRecordSet {
  A?: string[];
  AAAA?: string[];
  /** An alias: queries for other types follow it, and the CNAME is part of the answer. */
  CNAME?: string;
  /** One TXT record per entry (entries longer than 255 bytes are split into strings). */
  TXT?: string[];
}

/** DNS header flag bits and response codes used by the test server. */
const QR_RESPONSE = 1 << 15;
const AUTHORITATIVE = 1 << 10;
const TRUNCATED = 1 << 9;
const RECURSION_DESIRED = 1 << 8;
const RECURSION_AVAILABLE = 1 << 7;
const RCODE_NXDOMAIN = 3;
const RCODE_NOTIMP = 4;

const MAX_CNAME_HOPS = 16;
const MAX_TXT_STRING = 255;

/** Lowercases a name and drops the trailing root dot, so lookups are case-insensitive. */
export function normalizeName(name: string): string {
  return name.toLowerCase().replace(/\.$/, '');
}

/** Builds the lookup table from the user's records, keyed by normalized name. */
export function indexRecords(records: Record<string, DnsRecordSet>): Map<string, DnsRecordSet> {
  return new Map(Object.entries(records).map(([name, set]) => [normalizeName(name), set]));
}

/**
 * Answers a query from the table: A, AAAA, TXT and CNAME (following alias chains into the
 * answer section), NXDOMAIN for unknown names, an empty NOERROR answer for known names without
 * records of the asked type.
 */
export function answerQuery(query: DecodedPacket, table: Map<string, DnsRecordSet>, ttl: number): Packet {
  const question = query.questions?.[0];
  const flags = QR_RESPONSE | AUTHORITATIVE | RECURSION_AVAILABLE | ((query.flags ?? 0) & RECURSION_DESIRED);
  const base = { type: 'response' as const, id: query.id ?? 0, questions: query.questions ?? [] };
  if (!question) return { ...base, flags: flags | RCODE_NOTIMP };

  const answers: Answer[] = [];
  let name = normalizeName(question.name);
  let owner = question.name;
  for (let hop = 0; hop <= MAX_CNAME_HOPS; hop++) {
    const set = table.get(name);
    if (!set) return hop === 0 ? { ...base, flags: flags | RCODE_NXDOMAIN } : { ...base, flags, answers };
    if (set.CNAME !== undefined && question.type !== 'CNAME') {
      answers.push({ type: 'CNAME', name: owner, ttl, data: set.CNAME });
      owner = set.CNAME;
      name = normalizeName(set.CNAME);
      continue;
    }
    answers.push(...recordsOf(set, question, owner, ttl));
    break;
  }
  return { ...base, flags, answers };
}

function recordsOf(set: DnsRecordSet, question: Question, owner: string, ttl: number): Answer[] {
  switch (question.type) {
    case 'A':
      return (set.A ?? []).map((data) => ({ type: 'A', name: owner, ttl, data }));
    case 'AAAA':
      return (set.AAAA ?? []).map((data) => ({ type: 'AAAA', name: owner, ttl, data }));
    case 'CNAME':
      return set.CNAME === undefined ? [] : [{ type: 'CNAME', name: owner, ttl, data: set.CNAME }];
    case 'TXT':
      return (set.TXT ?? []).map((text) => ({ type: 'TXT', name: owner, ttl, data: splitTxt(text) }));
    default:
      return [];
  }
}

function splitTxt(text: string): Buffer[] {
  const bytes = Buffer.from(text, 'utf8');
  const parts: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += MAX_TXT_STRING) parts.push(bytes.subarray(i, i + MAX_TXT_STRING));
  return parts.length > 0 ? parts : [Buffer.alloc(0)];
}

/** The UDP form of a response too large for 512 bytes: header and question only, TC set. */
export function truncated(response: Packet): Packet {
  return { ...response, flags: (response.flags ?? 0) | TRUNCATED, answers: [] };
}
