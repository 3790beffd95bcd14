import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { HoldGate, listenFake } from './fake-server.js';

/** A field of an item, as Connect returns it. */
export interface FakeConnectField {
  /** Default: a generated id. */
  readonly id?: string;
  readonly label?: string;
  readonly value?: string;
  /** `STRING`, `CONCEALED`, ...; default `CONCEALED`. */
  readonly type?: string;
  /** `USERNAME`, `PASSWORD`, `NOTES` for the built-in fields. */
  readonly purpose?: string;
  /** Id of the section the field belongs to. */
  readonly section?: string;
}

/** An item to store. */
export interface FakeConnectItemInit {
  /** Default: a generated 26-character id. */
  readonly id?: string;
  readonly title: string;
  /** Default `API_CREDENTIAL`. */
  readonly category?: string;
  readonly sections?: readonly { readonly id: string; readonly label?: string }[];
  readonly fields: readonly FakeConnectField[];
}

/** One request the fake received. */
export interface FakeConnectCall {
  readonly method: string;
  /** Path without the query. */
  readonly path: string;
  /** The `filter` query parameter, when sent. */
  readonly filter?: string;
  /** Whether the bearer token was the right one. */
  readonly authorized: boolean;
}

/** Options for {@link startFakeOnePasswordConnect}. */
export interface FakeOnePasswordConnectOptions {
  /** The access token every `/v1` request must carry as `Authorization: Bearer <token>`. */
  readonly token: string;
  /** Interface to bind; default `127.0.0.1`. */
  readonly host?: string;
}

/** A running fake 1Password Connect server. */
export interface FakeOnePasswordConnect {
  /** Base URL: the value for `OP_CONNECT_HOST`. */
  readonly url: string;
  /** Every request received, in order. */
  readonly calls: FakeConnectCall[];
  /** Creates a vault; without an `id`, returns the id of the vault with this name when there is one (with an id, a second vault of the same name can be made). */
  putVault(name: string, id?: string): string;
  /** Creates or replaces (same title) an item in a vault given by name or id; returns the item's id. */
  putItem(vault: string, item: FakeConnectItemInit): string;
  /** Sets the value of a field (by id or label) of an item (by title or id): a rotation. */
  setField(vault: string, item: string, field: string, value: string): void;
  /** Deletes an item (by title or id). */
  deleteItem(vault: string, item: string): void;
  /** Answers every following `/v1` request with this status (`drop`: destroys the connection); `undefined` answers normally. */
  failWith(mode: number | 'drop' | undefined): void;
  /** Holds every following `/v1` answer until the returned function is called (calls are recorded on arrival). */
  hold(): () => void;
  /** Closes the listener and every open connection. */
  close(): Promise<void>;
}

interface StoredItem {
  id: string;
  title: string;
  category: string;
  sections: { id: string; label?: string }[];
  fields: { id: string; label?: string; value?: string; type: string; purpose?: string; section?: { id: string } }[];
  version: number;
  updatedAt: string;
  createdAt: string;
}

interface StoredVault {
  readonly id: string;
  readonly name: string;
  readonly items: StoredItem[];
  readonly createdAt: string;
}

/** `name eq "..."` / `title eq "..."`: the SCIM filters Connect accepts for vaults and items. */
const FILTER = /^(\w+) eq "((?:[^"\\]|\\.)*)"$/;

/**
 * Starts a local 1Password Connect server speaking its REST API: `GET /v1/vaults` (with
 * `filter=name eq "..."`), `GET /v1/vaults/{id}`, `GET /v1/vaults/{id}/items` (with
 * `filter=title eq "..."`), `GET /v1/vaults/{id}/items/{id}` (the full item with `sections` and
 * `fields`), and `GET /heartbeat`. Every `/v1` request needs the bearer token (401 otherwise);
 * errors come as Connect sends them, `{"status": 404, "message": "..."}`.
 */
export async function startFakeOnePasswordConnect(options: FakeOnePasswordConnectOptions): Promise<FakeOnePasswordConnect> {
  const host = options.host ?? '127.0.0.1';
  const calls: FakeConnectCall[] = [];
  const vaults: StoredVault[] = [];
  let failure: number | 'drop' | undefined;
  const gate = new HoldGate();

  const vaultOf = (ref: string): StoredVault => {
    const vault = vaults.find((v) => v.id === ref || v.name === ref);
    if (vault === undefined) throw new Error(`no vault ${ref}`);
    return vault;
  };
  const itemOf = (vault: StoredVault, ref: string): StoredItem => {
    const item = vault.items.find((i) => i.id === ref || i.title === ref);
    if (item === undefined) throw new Error(`no item ${ref} in vault ${vault.name}`);
    return item;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://connect.invalid');
    if (url.pathname === '/heartbeat') return sendText(res, 200, '.');
    const filter = url.searchParams.get('filter') ?? undefined;
    const authorized = req.headers.authorization === `Bearer ${options.token}`;
    calls.push({ method: req.method ?? '', path: url.pathname, ...(filter === undefined ? {} : { filter }), authorized });
    if (!url.pathname.startsWith('/v1/')) return sendError(res, 404, 'not found');
    if (!authorized) return sendError(res, 401, 'Invalid token signature');
    await gate.passed();
    if (failure === 'drop') {
      req.socket.destroy();
      return;
    }
    if (failure !== undefined) return sendError(res, failure, 'Connect server failure');
    if (req.method !== 'GET') return sendError(res, 405, 'only GET is served by this fake');

    const parts = url.pathname.split('/').slice(2).map(decodeURIComponent);
    if (parts[0] !== 'vaults') return sendError(res, 404, 'not found');
    const parsedFilter = filter === undefined ? undefined : FILTER.exec(filter);
    if (filter !== undefined && (parsedFilter === null || parsedFilter === undefined)) return sendError(res, 400, `Invalid filter: ${filter}`);
    const wanted = parsedFilter?.[2]?.replace(/\\(.)/g, '$1');

    if (parts.length === 1) {
      if (parsedFilter != null && parsedFilter[1] !== 'name') return sendError(res, 400, 'Vaults can only be filtered by name');
      return sendJson(res, vaults.filter((v) => wanted === undefined || v.name === wanted).map(vaultSummary));
    }
    const vault = vaults.find((v) => v.id === parts[1]);
    if (vault === undefined) return sendError(res, 404, `vault ${parts[1]} not found`);
    if (parts.length === 2) return sendJson(res, vaultSummary(vault));
    if (parts[2] !== 'items') return sendError(res, 404, 'not found');
    if (parts.length === 3) {
      if (parsedFilter != null && parsedFilter[1] !== 'title') return sendError(res, 400, 'Items can only be filtered by title or tag');
      return sendJson(res, vault.items.filter((i) => wanted === undefined || i.title === wanted).map((i) => itemSummary(vault, i)));
    }
    const item = parts.length === 4 ? vault.items.find((i) => i.id === parts[3]) : undefined;
    if (item === undefined) return sendError(res, 404, `item ${parts[3] ?? ''} not found`);
    return sendJson(res, { ...itemSummary(vault, item), sections: item.sections, fields: item.fields });
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch(() => res.destroy());
  });
  const listening = await listenFake(server, host);

  return {
    url: listening.url,
    calls,
    putVault(name, id) {
      const existing = vaults.find((v) => (id === undefined ? v.name === name : v.id === id));
      if (existing !== undefined) return existing.id;
      const vault = { id: id ?? connectId(), name, items: [], createdAt: new Date().toISOString() };
      vaults.push(vault);
      return vault.id;
    },
    putItem(vaultRef, init) {
      const vault = vaultOf(vaultRef);
      const now = new Date().toISOString();
      const previous = vault.items.findIndex((i) => i.title === init.title || i.id === init.id);
      const item: StoredItem = {
        id: init.id ?? (previous >= 0 ? vault.items[previous]!.id : connectId()),
        title: init.title,
        category: init.category ?? 'API_CREDENTIAL',
        sections: (init.sections ?? []).map((s) => ({ ...s })),
        fields: init.fields.map((f) => ({
          id: f.id ?? connectId(),
          type: f.type ?? 'CONCEALED',
          ...(f.label === undefined ? {} : { label: f.label }),
          ...(f.value === undefined ? {} : { value: f.value }),
          ...(f.purpose === undefined ? {} : { purpose: f.purpose }),
          ...(f.section === undefined ? {} : { section: { id: f.section } }),
        })),
        version: previous >= 0 ? vault.items[previous]!.version + 1 : 1,
        createdAt: previous >= 0 ? vault.items[previous]!.createdAt : now,
        updatedAt: now,
      };
      if (previous >= 0) vault.items[previous] = item;
      else vault.items.push(item);
      return item.id;
    },
    setField(vaultRef, itemRef, fieldRef, value) {
      const item = itemOf(vaultOf(vaultRef), itemRef);
      const field = item.fields.find((f) => f.id === fieldRef) ?? item.fields.find((f) => f.label === fieldRef);
      if (field === undefined) throw new Error(`no field ${fieldRef} in item ${item.title}`);
      field.value = value;
      item.version++;
      item.updatedAt = new Date().toISOString();
    },
    deleteItem(vaultRef, itemRef) {
      const vault = vaultOf(vaultRef);
      const item = itemOf(vault, itemRef);
      vault.items.splice(vault.items.indexOf(item), 1);
    },
    failWith(mode) {
      failure = mode;
    },
    hold: () => gate.hold(),
    close: () => listening.close(),
  };
}

/** A Connect-style id: 26 lowercase letters and digits. */
function connectId(): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  return [...randomBytes(26)].map((b) => alphabet[b % alphabet.length]).join('');
}

function vaultSummary(vault: StoredVault): Record<string, unknown> {
  return {
    id: vault.id,
    name: vault.name,
    attributeVersion: 1,
    contentVersion: vault.items.length + 1,
    items: vault.items.length,
    type: 'USER_CREATED',
    createdAt: vault.createdAt,
    updatedAt: vault.createdAt,
  };
}

function itemSummary(vault: StoredVault, item: StoredItem): Record<string, unknown> {
  return {
    id: item.id,
    title: item.title,
    vault: { id: vault.id },
    category: item.category,
    version: item.version,
    createdAt: item.createdAt,
    updatedAt: item.updatedAt,
  };
}

function sendJson(res: ServerResponse, value: unknown, status = 200): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function sendText(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function sendError(res: ServerResponse, status: number, message: string): void {
  sendJson(res, { status, message }, status);
}
