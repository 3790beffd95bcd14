import type { SecretReference } from './secret-reference.js';

/** A field of a full Connect item. */
interface ConnectField {
  readonly id: string;
  readonly label?: string;
  readonly value?: string;
  readonly section?: { readonly id: string };
}

/** A full Connect item (`GET /v1/vaults/{vault}/items/{item}`). */
interface ConnectItem {
  readonly id: string;
  readonly title: string;
  readonly sections?: readonly { readonly id: string; readonly label?: string }[];
  readonly fields?: readonly ConnectField[];
}

/** Where a Connect server is and the token it takes. */
export interface ConnectServer {
  /** Base URL, e.g. `http://localhost:8080`. */
  readonly url: string;
  readonly token: string;
}

/** A Connect id: 26 lowercase letters and digits. */
const CONNECT_ID = /^[a-z0-9]{26}$/;

/**
 * Reads one field of one item from a 1Password Connect server over its REST API: the vault and
 * the item by id (`GET /v1/vaults/{id}`, `.../items/{id}`) or, when that finds nothing, by
 * name or title (`?filter=name eq "..."`, `?filter=title eq "..."`); then the section (when
 * given) and the field, each by id or else by label. Errors say what was not found or what the
 * server answered; they never carry a value or the token.
 */
export async function readConnectField(server: ConnectServer, ref: SecretReference, signal: AbortSignal): Promise<string> {
  const get = (path: string): Promise<ConnectAnswer> => request(server, path, signal);
  const vaultId = await findId(get, '/v1/vaults', ref.vault, 'name', `vault "${ref.vault}"`);
  const itemId = await findId(get, `/v1/vaults/${vaultId}/items`, ref.item, 'title', `item "${ref.item}" in vault "${ref.vault}"`);
  const answer = await get(`/v1/vaults/${vaultId}/items/${itemId}`);
  if (answer.status !== 200) throw answerError(answer, `item "${ref.item}"`);
  return fieldValue(answer.body as ConnectItem, ref);
}

interface ConnectAnswer {
  readonly status: number;
  readonly body: unknown;
}

async function request(server: ConnectServer, path: string, signal: AbortSignal): Promise<ConnectAnswer> {
  const res = await fetch(`${server.url}${path}`, {
    headers: { authorization: `Bearer ${server.token}`, accept: 'application/json' },
    signal,
  });
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  if (res.status === 401) throw new Error('the Connect server refused the token (401)');
  if (res.status !== 200 && res.status !== 404) throw answerError({ status: res.status, body }, path.split('?', 1)[0]!);
  return { status: res.status, body };
}

/** An id for `query`: tried as an id first, then looked up by `attribute` (exactly one must match). `what` names it in errors. */
async function findId(get: (path: string) => Promise<ConnectAnswer>, collection: string, query: string, attribute: 'name' | 'title', what: string): Promise<string> {
  if (CONNECT_ID.test(query)) {
    const byId = await get(`${collection}/${query}`);
    if (byId.status === 200) return query;
  }
  const filter = `${attribute} eq "${query.replace(/["\\]/g, (c) => `\\${c}`)}"`;
  const listed = await get(`${collection}?filter=${encodeURIComponent(filter)}`);
  if (listed.status !== 200 || !Array.isArray(listed.body)) throw answerError(listed, what);
  const matches = (listed.body as { id?: unknown; [key: string]: unknown }[]).filter((e) => e[attribute] === query && typeof e.id === 'string');
  if (matches.length === 0) throw new Error(`no ${what}`);
  if (matches.length > 1) throw new Error(`${matches.length} matches for ${what}; name it by id`);
  return matches[0]!.id as string;
}

function fieldValue(item: ConnectItem, ref: SecretReference): string {
  let fields = item.fields ?? [];
  if (ref.section !== undefined) {
    const section = pick(item.sections ?? [], ref.section, `section "${ref.section}" in item "${ref.item}"`);
    fields = fields.filter((f) => f.section?.id === section.id);
  }
  const field = pick(fields, ref.field, `field "${ref.field}" in item "${ref.item}"${ref.section === undefined ? '' : ` section "${ref.section}"`}`);
  if (field.value === undefined || field.value === '') throw new Error(`field "${ref.field}" in item "${ref.item}" has no value`);
  return field.value;
}

/** The entry whose id is `query`, else the one entry whose label is. */
function pick<T extends { readonly id: string; readonly label?: string }>(entries: readonly T[], query: string, what: string): T {
  const byId = entries.find((e) => e.id === query);
  if (byId !== undefined) return byId;
  const byLabel = entries.filter((e) => e.label === query);
  if (byLabel.length === 0) throw new Error(`no ${what}`);
  if (byLabel.length > 1) throw new Error(`${byLabel.length} entries match ${what}; name it by id`);
  return byLabel[0]!;
}

function answerError(answer: ConnectAnswer, what: string): Error {
  const message = typeof answer.body === 'object' && answer.body !== null ? (answer.body as { message?: unknown }).message : undefined;
  const detail = typeof message === 'string' && message !== '' ? `: ${message.slice(0, 200)}` : '';
  return new Error(answer.status === 404 ? `no ${what}` : `the Connect server answered ${answer.status} for ${what}${detail}`);
}
