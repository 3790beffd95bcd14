import type { ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { HeaderList } from '@proxy/core';
import type { Dispatcher } from 'undici';
import { stripHopByHop } from './hop-by-hop.js';

/** The status line and headers of an upstream response, hop-by-hop fields already removed. */
export interface UpstreamHead {
  readonly status: number;
  readonly statusText: string;
  readonly headers: HeaderList;
}

/** Where the upstream response body goes once the head has arrived. */
export interface BodySink {
  /** Takes one chunk; false asks the upstream to pause until the sink calls `resume`. */
  write(chunk: Buffer): boolean;
  end(): void;
  /** The upstream failed after the head: the response cannot be completed. */
  fail(err: Error): void;
}

/** What an {@link UpstreamCall} reports to the request it serves. */
export interface UpstreamCallEvents {
  /**
   * The head arrived: returns where the body goes. Called synchronously from undici's
   * response callback, so a relay can write the head and start streaming with no extra hop;
   * `resume` restarts a body the sink paused.
   */
  head(head: UpstreamHead, resume: () => void): BodySink;
  /** The call failed before the head arrived (nothing was sent to the client yet). */
  failed(err: Error): void;
  /** The call failed after the head: the sink is failed next. */
  interrupted(err: Error): void;
}

/**
 * One request forwarded with undici's `dispatch` API: the lowest-overhead path (no
 * intermediate stream or promise unless a response transform needs one).
 */
export class UpstreamCall implements Dispatcher.DispatchHandler {
  readonly #events: UpstreamCallEvents;
  #controller: Dispatcher.DispatchController | undefined;
  #abortReason: Error | undefined;
  #sink: BodySink | undefined;
  readonly #resume = (): void => this.#controller?.resume();

  constructor(events: UpstreamCallEvents) {
    this.#events = events;
  }

  /** Cancels the upstream request (the client went away or a transform refused the response). */
  abort(reason: Error): void {
    if (this.#abortReason !== undefined) return;
    this.#abortReason = reason;
    this.#controller?.abort(reason);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    if (this.#abortReason !== undefined) controller.abort(this.#abortReason);
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, _headers: unknown, statusMessage?: string): void {
    const raw = controller.rawHeaders;
    const headers = HeaderList.fromRaw(Array.isArray(raw) ? raw : []);
    stripHopByHop(headers);
    this.#sink = this.#events.head({ status: statusCode, statusText: statusMessage ?? '', headers }, this.#resume);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (!this.#sink!.write(chunk)) controller.pause();
  }

  onResponseEnd(): void {
    this.#sink!.end();
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    if (this.#sink === undefined) {
      this.#events.failed(error);
      return;
    }
    this.#events.interrupted(error);
    this.#sink.fail(error);
  }
}

/** A sink that writes straight to the client's response, with backpressure. */
export class ResponseRelay implements BodySink {
  readonly #res: ServerResponse;
  readonly #resume: () => void;
  #waiting = false;
  readonly #onDrain = (): void => {
    this.#waiting = false;
    this.#resume();
  };

  constructor(res: ServerResponse, resume: () => void) {
    this.#res = res;
    this.#resume = resume;
  }

  write(chunk: Buffer): boolean {
    if (this.#res.destroyed) return true;
    if (this.#res.write(chunk)) return true;
    if (!this.#waiting) {
      this.#waiting = true;
      this.#res.once('drain', this.#onDrain);
    }
    return false;
  }

  end(): void {
    this.#res.end();
  }

  fail(err: Error): void {
    this.#res.destroy(err);
  }
}

/** A sink that exposes the body as a Readable, for response transforms that may read it. */
export class BodyStream implements BodySink {
  readonly stream: Readable;

  constructor(resume: () => void) {
    this.stream = new Readable({ read: resume });
  }

  write(chunk: Buffer): boolean {
    return this.stream.push(chunk);
  }

  end(): void {
    this.stream.push(null);
  }

  fail(err: Error): void {
    this.stream.destroy(err);
  }
}

/** Writes the response head with the exact header casing and order given. */
export function writeHead(res: ServerResponse, status: number, statusText: string, headers: HeaderList): void {
  const raw = headers.toRaw();
  if (statusText === '') res.writeHead(status, raw);
  else res.writeHead(status, statusText, raw);
}
