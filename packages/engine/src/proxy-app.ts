import { METHODS, createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { pipeline } from 'node:stream';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { createMessageBody, reject, requestHeadBytes } from '@proxy/core';
import type { Decision, Logger, ProxyResponse } from '@proxy/core';
import { sendDecision } from '@proxy/core/fastify';
import type { Dispatcher } from 'undici';
import { Exchange, STATUS_CLIENT_CLOSED, type ExchangeHost } from './exchange.js';
import { stripHopByHop } from './hop-by-hop.js';
import type { Ingress } from './ingress.js';
import { describeUpstreamFailure } from './upstream-failure.js';
import { BodyStream, ResponseRelay, UpstreamCall, writeHead, type BodySink, type UpstreamHead } from './upstream-call.js';
import { upstreamDispatchOptions } from './upstream-request.js';

/** What the app needs from the engine around it. */
export interface ProxyAppOptions {
  /** Where exchanges get their pipeline, limits and audit sink. */
  readonly host: ExchangeHost;
  /** The guarded undici dispatcher upstream requests go through (a tunnel brings its own). */
  readonly dispatcher: Dispatcher;
  readonly maxResponseBodyBytes: number;
  readonly logger: Logger;
  /** True once the engine is shutting down: responses then close their connection. */
  readonly closing: () => boolean;
}

/** How a request reached the app: recorded by the listener before the app sees it. */
interface Arrival {
  readonly ingress: Ingress;
  /** The request-target as the client sent it (`req.url` is rewritten for routing). */
  readonly target: string;
  exchange?: Exchange;
  /** The upstream call, once dispatched: cancelled when the client leaves first. */
  call?: UpstreamCall;
}

/** Where a request carries its {@link Arrival} (a property, not a WeakMap: no ephemeron per request for the GC). */
const ARRIVAL = Symbol('proxy.arrival');

type ArrivedRequest = IncomingMessage & { [ARRIVAL]?: Arrival };

function arrivalOf(req: IncomingMessage): Arrival {
  return (req as ArrivedRequest)[ARRIVAL]!;
}

/** Methods Node's parser accepts that the app routes besides Fastify's defaults; CONNECT is a tunnel. */
const EXTRA_METHODS = METHODS.filter((m) => m !== 'CONNECT');

/**
 * The one Fastify instance all HTTP traffic ends in, whatever listener it came from.
 *
 * Per request: `onRequest` builds the exchange (destination, `ProxyRequest`, audit record,
 * pipeline hold) -> `preHandler` runs the request pipeline -> the catch-all route forwards
 * with undici, runs response transforms when the pipeline has any, and streams the response
 * back. The audit record is emitted when the response closes, on every path.
 */
export class ProxyApp {
  readonly fastify: FastifyInstance;
  readonly #options: ProxyAppOptions;
  #handler: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;

  constructor(options: ProxyAppOptions) {
    this.#options = options;
    this.fastify = Fastify({
      // Listeners are the engine's own servers; this one only captures Fastify's request handler.
      serverFactory: (handler) => {
        this.#handler = handler;
        return createServer();
      },
      logger: false,
      requestIdHeader: false,
      return503OnClosing: false,
      exposeHeadRoutes: false,
    });
    this.#configure();
  }

  /** Feeds a request received by a listener into the app. */
  handle(req: IncomingMessage, res: ServerResponse, ingress: Ingress): void {
    const target = req.url ?? '';
    (req as ArrivedRequest)[ARRIVAL] = { ingress, target };
    // One catch-all route serves every request, so Fastify's router is given a fixed URL: a
    // proxy forwards any target as sent (absolute-form, invalid percent-encoding, any length),
    // and the target travels in the arrival, never through the router's decoding.
    req.url = '/';
    this.#handler!(req, res);
  }

  #configure(): void {
    const app = this.fastify;
    for (const method of EXTRA_METHODS) {
      if (!app.supportedMethods.includes(method)) app.addHttpMethod(method);
    }
    // Bodies stream: no parser ever consumes them. A transform that needs one calls body.read().
    app.removeAllContentTypeParsers();
    app.addContentTypeParser('*', (_request, _payload, done) => done(null));

    app.setErrorHandler((error, request, reply) => {
      const errorClass = error instanceof Error ? error.name : typeof error;
      const exchange = (request.raw as ArrivedRequest)[ARRIVAL]?.exchange;
      this.#options.logger.error({ request_id: exchange?.id, error_class: errorClass }, 'request handling failed');
      if (exchange !== undefined && !exchange.completed) exchange.audit.failed('engine_error', 'engine');
      if (reply.sent) {
        if (!reply.raw.writableEnded) reply.raw.destroy();
        return;
      }
      return sendDecision(reply, reject(500, 'engine_error', 'internal proxy error'));
    });

    // Callback-style hooks: no promise per request unless a transform is asynchronous.
    app.addHook('onRequest', (request, reply, done) => {
      const arrival = arrivalOf(request.raw);
      const { exchange, refusal } = Exchange.begin(this.#options.host, arrival.ingress, request.raw, arrival.target, request.raw);
      arrival.exchange = exchange;
      this.#completeOnClose(arrival, exchange, reply.raw);
      if (refusal !== undefined) {
        sendDecision(reply, reject(refusal.status, refusal.reason, refusal.message));
        return;
      }
      if (exchange.request!.body.present) this.#watchBodyArrival(arrival, exchange, request.raw, reply);
      done();
    });

    app.addHook('preHandler', (request, reply, done) => {
      const exchange = this.#exchangeOf(request);
      const pipeline = exchange.pipeline!;
      if (!pipeline.hasRequestHooks) {
        done();
        return;
      }
      const decision = pipeline.runRequest(exchange.request!, exchange.audit);
      // A throw while answering goes to Fastify's error handler, never to an unhandled rejection.
      if (decision instanceof Promise) decision.then((d) => this.#afterRequestHooks(exchange, reply, d, done)).catch(done);
      else this.#afterRequestHooks(exchange, reply, decision, done);
    });

    app.route({
      method: app.supportedMethods.filter((m) => m !== 'CONNECT'),
      url: '/',
      handler: (request, reply) => this.#forward(request, reply),
    });
  }

  /** Answers a request the pipeline refused, or lets it go on to be forwarded (`done()`). */
  #afterRequestHooks(exchange: Exchange, reply: FastifyReply, decision: Decision, done: () => void): void {
    const request = exchange.request!;
    const readError = request.body.readError;
    // A body refused for want of memory was left unread: the connection cannot serve another request.
    if (readError !== undefined && readError.reason !== 'body_too_large') reply.header('connection', 'close');
    if (decision.action !== 'continue') {
      sendDecision(reply, decision);
      return;
    }
    if (readError !== undefined) {
      // A transform read the body, failed (e.g. over the limit) and carried on: the stream is
      // spent, so the request is refused rather than forwarded with a truncated body.
      exchange.audit.rejected('engine', readError.reason);
      sendDecision(reply, reject(readError.status, readError.reason));
      return;
    }
    // Transforms may have grown the head (a secret swapped in for a short placeholder).
    if (requestHeadBytes(request) > request.maxHeadBytes) {
      exchange.audit.rejected('engine', 'header_too_large');
      sendDecision(reply, reject(413, 'header_too_large'));
      return;
    }
    done();
  }

  /**
   * Watches a request whose body is still arriving: a client silent for longer than the body
   * idle timeout gets 408 (or, once the response has started, its connection closed), the
   * upstream call is cancelled, and the audit record says `body_timeout`. The watch ends when
   * the body has arrived.
   */
  #watchBodyArrival(arrival: Arrival, exchange: Exchange, req: IncomingMessage, reply: FastifyReply): void {
    const timeoutMs = this.#options.host.limits.bodyIdleTimeoutMs;
    if (timeoutMs <= 0 || req.complete) return;
    const res = reply.raw;
    const socket = req.socket;
    const stalled = (): void => {
      exchange.audit.settle('body_timeout');
      if (res.headersSent) {
        socket.destroy();
      } else {
        reply.hijack();
        res.shouldKeepAlive = false;
        res.writeHead(408, { 'content-type': 'text/plain; charset=utf-8', connection: 'close' });
        res.end('request refused by the proxy: body_timeout\n', () => socket.destroy());
      }
      // After the answer: the call's failure then finds the response already ended.
      arrival.call?.abort(new Error('the client stopped sending the request body'));
    };
    req.setTimeout(timeoutMs, stalled);
    req.once('end', () => {
      req.off('timeout', stalled);
      // Once the response is done Node owns the socket's timeout (keep-alive); before, clear ours.
      if (!res.writableFinished) socket.setTimeout(0);
    });
  }

  #forward(request: FastifyRequest, reply: FastifyReply): void {
    const arrival = arrivalOf(request.raw);
    const exchange = arrival.exchange!;
    const direct = !exchange.pipeline!.hasResponseHooks;
    const call: UpstreamCall = new UpstreamCall({
      head: (head, resume) => {
        exchange.upstreamAnswered();
        if (direct) return this.#relay(exchange, reply, call, head, resume);
        const body = new BodyStream(resume);
        // Response transforms run once undici has the sink, never inside its callback.
        queueMicrotask(() => {
          this.#transformResponse(exchange, reply, call, head, body).catch((err: unknown) => reply.send(err));
        });
        return body;
      },
      failed: (err) => this.#failUpstream(exchange, reply, err),
      interrupted: () => {
        // After the client left, the failure is the cancellation the engine itself caused.
        if (!exchange.completed) exchange.audit.failed('upstream_aborted');
      },
    });
    arrival.call = call;
    // A tunnel's requests go over its own upstream connection (unless re-targeted); all others share the pool.
    const dispatcher = exchange.dedicatedUpstream?.dispatcher ?? this.#options.dispatcher;
    exchange.upstreamStarted();
    dispatcher.dispatch(upstreamDispatchOptions(exchange), call);
  }

  /** Writes the head now and returns a sink streaming the body straight to the client. */
  #relay(exchange: Exchange, reply: FastifyReply, call: UpstreamCall, head: UpstreamHead, resume: () => void): BodySink {
    if (!this.#startResponse(exchange, reply, call, head.status, head.statusText, head)) return discardingSink;
    return new ResponseRelay(reply.raw, resume);
  }

  /**
   * Takes the response over from Fastify and writes the head with the upstream's casing and
   * order. A head Node refuses to write (invalid field values) ends the request with 502.
   */
  #startResponse(exchange: Exchange, reply: FastifyReply, call: UpstreamCall, status: number, statusText: string, head: { headers: UpstreamHead['headers'] }): boolean {
    const res = reply.raw;
    reply.hijack();
    if (this.#options.closing()) res.shouldKeepAlive = false;
    try {
      writeHead(res, status, statusText, head.headers);
      return true;
    } catch {
      call.abort(new Error('invalid response head'));
      exchange.audit.failed('invalid_response_head');
      res.writeHead(502, { 'content-type': 'text/plain; charset=utf-8' }).end('upstream error\n');
      return false;
    }
  }

  async #transformResponse(
    exchange: Exchange,
    reply: FastifyReply,
    call: UpstreamCall,
    head: UpstreamHead,
    body: BodyStream,
  ): Promise<FastifyReply | undefined> {
    const response: ProxyResponse = {
      status: head.status,
      headers: head.headers,
      body: createMessageBody({
        headers: head.headers,
        stream: body.stream,
        limit: this.#options.maxResponseBodyBytes,
        limitName: 'proxy.max_response_body_bytes',
        budget: exchange.responseBudget(),
        untilClose: true,
      }),
    };
    const decision = await exchange.pipeline!.runResponse(exchange.request!, response, exchange.audit);
    if (decision.action !== 'continue') {
      call.abort(new Error('response refused by a transform'));
      body.stream.destroy();
      return sendDecision(reply, decision);
    }

    const res = reply.raw;
    stripHopByHop(response.headers);
    const statusText = response.status === head.status ? head.statusText : '';
    if (!this.#startResponse(exchange, reply, call, response.status, statusText, response)) {
      body.stream.destroy();
      return undefined;
    }
    const replacement = response.body.replacementStream;
    if (response.body.buffered) {
      if (!body.stream.readableEnded) call.abort(new Error('response body replaced'));
      res.end(response.body.bytes);
    } else if (replacement !== undefined) {
      // A transform processes the body as it arrives (an event stream filtered event by event).
      pipeline(replacement, res, (err) => {
        if (err !== undefined && err !== null && !body.stream.readableEnded) call.abort(err);
      });
    } else {
      pipeline(body.stream, res, () => undefined);
    }
    return undefined;
  }

  #failUpstream(exchange: Exchange, reply: FastifyReply, err: unknown): FastifyReply | undefined {
    // The client left first, or the engine already answered (a stalled body): the upstream was cancelled for it.
    if (reply.raw.destroyed || reply.raw.writableEnded) return undefined;
    const failure = describeUpstreamFailure(err);
    exchange.upstreamFailed(failure);
    if (failure.rejectedBy !== undefined) exchange.audit.rejected(failure.rejectedBy, failure.reason);
    else exchange.audit.failed(failure.reason);
    this.#options.logger.warn(
      { request_id: exchange.id, host: exchange.request!.host, reason: failure.reason, code: failure.code, detail: failure.detail },
      `upstream request failed: ${failure.reason}`,
    );
    if (reply.sent || reply.raw.headersSent) {
      reply.raw.destroy();
      return undefined;
    }
    return sendDecision(reply, reject(failure.status, failure.reason, failure.message));
  }

  /**
   * Once the response is over (sent, refused, failed or abandoned): emits the audit record and,
   * when the client left before the end, cancels the upstream call.
   */
  #completeOnClose(arrival: Arrival, exchange: Exchange, res: ServerResponse): void {
    res.once('close', () => {
      const finished = res.writableFinished;
      if (!finished && exchange.audit.action === 'allow') exchange.audit.failed('client_closed');
      exchange.complete(res.headersSent ? res.statusCode : STATUS_CLIENT_CLOSED);
      if (!finished) arrival.call?.abort(new Error('client closed the connection'));
    });
  }

  #exchangeOf(request: FastifyRequest): Exchange {
    return arrivalOf(request.raw).exchange!;
  }
}

const discardingSink: BodySink = { write: () => true, end: () => undefined, fail: () => undefined };
