import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { listenFake } from './fake-server.js';

/**
 * What a fake LLM answers one call with:
 * - `{ text }`: a successful completion whose model output is `text` (use {@link llmDecision}
 *   for a well-formed judge answer, or any malformed or fenced text);
 * - `{ status }`: an API error in the provider's error format (`message` optional);
 * - `{ hang: true }`: no answer at all until the fake is closed (or the client gives up);
 * - `{ drop: true }`: the connection is destroyed without an answer (a network error).
 * `delayMs` waits before answering (slowness).
 */
export type FakeLlmAnswer =
  | { readonly text: string; readonly delayMs?: number; readonly inputTokens?: number; readonly outputTokens?: number }
  | { readonly status: number; readonly message?: string; readonly delayMs?: number }
  | { readonly hang: true }
  | { readonly drop: true };

/** One call a fake LLM received, parsed from the provider's wire format. */
export interface FakeLlmCall {
  /** The system prompt (Anthropic `system`; OpenAI the `system`/`developer` message). */
  readonly system: string;
  /** The user message text (the judge's request envelope). */
  readonly user: string;
  readonly model: string;
  /** Anthropic `max_tokens`; OpenAI `max_completion_tokens` (or `max_tokens`). */
  readonly maxTokens: number | undefined;
  /** The API key the call carried (`x-api-key`, or the Bearer token). */
  readonly apiKey: string | undefined;
  /** The request body as received (parsed JSON). */
  readonly body: unknown;
}

/** Chooses the answer to a call; the default answers ALLOW. */
export type FakeLlmResponder = (call: FakeLlmCall, index: number) => FakeLlmAnswer;

/** Options of the fake LLM servers. */
export interface FakeLlmOptions {
  /** Interface to bind; default `127.0.0.1`. */
  readonly host?: string;
  /** When set, calls carrying another key get the provider's 401 authentication error. */
  readonly apiKey?: string;
  /** How calls are answered; default: every call is allowed. Change later with `answer()`. */
  readonly responder?: FakeLlmResponder;
}

/** A running fake LLM API. */
export interface FakeLlm {
  /** Base URL, e.g. `http://127.0.0.1:40123` (the judge's `base_url`). */
  readonly url: string;
  /** Every call received, in order of arrival, failed ones included. */
  readonly calls: FakeLlmCall[];
  /** Calls being answered right now (arrived, not yet answered). */
  readonly inFlight: number;
  /** The most calls that were ever in flight at once. */
  readonly maxInFlight: number;
  /** Replaces the responder for every following call. */
  answer(responder: FakeLlmResponder): void;
  /** Closes the listener and every connection, hanging calls included. */
  close(): Promise<void>;
}

/** The model text of a well-formed judge answer: `{"decision":"ALLOW","reason":"..."}`. */
export function llmDecision(decision: 'ALLOW' | 'DENY' | string, reason = `fake ${decision.toLowerCase()}`): string {
  return JSON.stringify({ decision, reason });
}

/** What a provider module supplies: its path, how it reads a call, how it writes answers. */
export interface LlmWireFormat {
  readonly path: string;
  /** Parses a request body; returns an error message for a body the real API would refuse (400). */
  parse(body: unknown, headers: IncomingMessage['headers']): Omit<FakeLlmCall, 'body'> | string;
  success(call: FakeLlmCall, answer: { text: string; inputTokens: number; outputTokens: number }): unknown;
  /** The error body the real API sends with an HTTP error status. */
  error(status: number, message: string): unknown;
}

/** Starts a fake LLM server speaking `format`. Used by the provider modules. */
export async function startFakeLlm(format: LlmWireFormat, options: FakeLlmOptions = {}): Promise<FakeLlm> {
  const host = options.host ?? '127.0.0.1';
  let responder: FakeLlmResponder = options.responder ?? (() => ({ text: llmDecision('ALLOW') }));
  const calls: FakeLlmCall[] = [];
  let inFlight = 0;
  let maxInFlight = 0;

  const sendJson = (res: ServerResponse, status: number, body: unknown): void => {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'request-id': `req_fake_${calls.length}` });
    res.end(text);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const raw = await readBody(req);
    const path = (req.url ?? '/').split('?', 1)[0];
    if (req.method !== 'POST' || path !== format.path) return sendJson(res, 404, format.error(404, `no route ${req.method} ${path}`));
    let body: unknown;
    try {
      body = JSON.parse(raw.toString('utf8'));
    } catch {
      return sendJson(res, 400, format.error(400, 'the request body is not valid JSON'));
    }
    const parsed = format.parse(body, req.headers);
    if (typeof parsed === 'string') return sendJson(res, 400, format.error(400, parsed));
    const call: FakeLlmCall = { ...parsed, body };
    const index = calls.push(call) - 1;
    if (options.apiKey !== undefined && call.apiKey !== options.apiKey) return sendJson(res, 401, format.error(401, 'invalid x-api-key'));
    const answer = responder(call, index);
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    res.on('close', () => inFlight--);
    if ('hang' in answer) return;
    if ('drop' in answer) {
      req.socket.destroy();
      return;
    }
    if (answer.delayMs !== undefined) await new Promise((resolve) => setTimeout(resolve, answer.delayMs));
    if (res.destroyed) return;
    if ('status' in answer) return sendJson(res, answer.status, format.error(answer.status, answer.message ?? `fake error ${answer.status}`));
    sendJson(res, 200, format.success(call, { text: answer.text, inputTokens: answer.inputTokens ?? 100, outputTokens: answer.outputTokens ?? 12 }));
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch(() => res.destroy());
  });
  const listening = await listenFake(server, host);
  const url = listening.url;
  return {
    url,
    calls,
    get inFlight() {
      return inFlight;
    },
    get maxInFlight() {
      return maxInFlight;
    },
    answer(next) {
      responder = next;
    },
    close: () => listening.close(),
  };
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
