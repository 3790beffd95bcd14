import { StringDecoder } from 'node:string_decoder';
import { Transform, type TransformCallback } from 'node:stream';
import { idKey, parseJsonRpc, type JsonRpcBody } from './json-rpc.js';

/** What the filter reports for each `tools/list` answer it saw. */
export interface ToolsListOutcome {
  readonly id: unknown;
  /** How many tools were removed. */
  readonly filtered: number;
}

/** Decides which tools a `tools/list` answer may show. */
export type ToolVisibility = (name: string) => boolean;

/**
 * Removes the tools a policy does not allow from the `tools/list` answers in a JSON-RPC body
 * (one message or a batch). Only answers to the ids in `listIds` are touched; a tool without a
 * string `name` is kept. Returns the body to send (undefined when nothing changed) and what
 * was filtered.
 */
export function filterToolsList(body: JsonRpcBody, listIds: ReadonlySet<string>, visible: ToolVisibility): { changed: boolean; outcomes: ToolsListOutcome[] } {
  const outcomes: ToolsListOutcome[] = [];
  let changed = false;
  for (const message of body.messages) {
    if (message.kind !== 'response' || !listIds.has(idKey(message.id))) continue;
    const result = message.raw.result;
    if (typeof result !== 'object' || result === null || !Array.isArray((result as { tools?: unknown }).tools)) continue;
    const tools = (result as { tools: unknown[] }).tools;
    const kept = tools.filter((tool) => {
      const name = (tool as { name?: unknown } | null)?.name;
      return typeof name !== 'string' || visible(name);
    });
    outcomes.push({ id: message.id, filtered: tools.length - kept.length });
    if (kept.length !== tools.length) {
      (result as { tools: unknown[] }).tools = kept;
      changed = true;
    }
  }
  return { changed, outcomes };
}

/** Serialises a parsed body again (a batch as an array). */
export function serialiseBody(body: JsonRpcBody): string {
  return JSON.stringify(body.batch ? body.messages.map((m) => m.raw) : body.messages[0]!.raw);
}

/**
 * Filters a `text/event-stream` response event by event, as it arrives: each event is passed on
 * as soon as its blank line is read, unchanged unless its data is a `tools/list` answer with
 * tools to remove, which is re-emitted with the same `id`/`event`/`retry` fields and one
 * `data:` line holding the filtered message. The stream is never buffered beyond one event; an
 * event larger than `maxEventBytes` ends the stream with an error (it is never passed on
 * unfiltered).
 */
export class ToolsListEventFilter extends Transform {
  readonly #listIds: ReadonlySet<string>;
  readonly #visible: ToolVisibility;
  readonly #onOutcome: (outcome: ToolsListOutcome) => void;
  readonly #maxEventBytes: number;
  readonly #decoder = new StringDecoder('utf8');
  /** Text received and not yet passed on: the lines of the event being read. */
  #pending = '';

  constructor(options: { listIds: ReadonlySet<string>; visible: ToolVisibility; onOutcome: (outcome: ToolsListOutcome) => void; maxEventBytes: number }) {
    super();
    this.#listIds = options.listIds;
    this.#visible = options.visible;
    this.#onOutcome = options.onOutcome;
    this.#maxEventBytes = options.maxEventBytes;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.#pending += this.#decoder.write(chunk);
    for (let end = eventEnd(this.#pending); end >= 0; end = eventEnd(this.#pending)) {
      const event = this.#pending.slice(0, end);
      this.#pending = this.#pending.slice(end);
      this.push(this.#rewrite(event));
    }
    if (Buffer.byteLength(this.#pending) > this.#maxEventBytes) {
      done(new Error(`an event of the MCP response exceeds ${this.#maxEventBytes} bytes`));
      return;
    }
    done();
  }

  override _flush(done: TransformCallback): void {
    this.#pending += this.#decoder.end();
    if (this.#pending !== '') this.push(this.#rewrite(this.#pending));
    this.#pending = '';
    done();
  }

  /** The event's text, filtered when it is a `tools/list` answer to one of our ids. */
  #rewrite(event: string): string {
    const lines = event.split(/\r\n|\r|\n/);
    const data = lines.filter((l) => l.startsWith('data:')).map((l) => l.slice(l.startsWith('data: ') ? 6 : 5));
    if (data.length === 0) return event;
    const body = parseJsonRpc(data.join('\n'));
    if (body === undefined) return event;
    const { changed, outcomes } = filterToolsList(body, this.#listIds, this.#visible);
    for (const outcome of outcomes) this.#onOutcome(outcome);
    if (!changed) return event;
    const others = lines.filter((l) => l !== '' && !l.startsWith('data:'));
    return `${[...others, `data: ${serialiseBody(body)}`].join('\n')}\n\n`;
  }
}

/** The index just after the first complete event (its terminating blank line), or -1. */
function eventEnd(text: string): number {
  const match = /\r\n\r\n|\n\n|\r\r|\r\n\n|\n\r\n/.exec(text);
  return match === null ? -1 : match.index + match[0].length;
}
