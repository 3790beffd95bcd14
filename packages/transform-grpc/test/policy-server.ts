import { Server, ServerCredentials, status, type sendUnaryData, type ServerUnaryCall, type UntypedServiceImplementation } from '@grpc/grpc-js';
import { transformService } from '../src/service.js';
import {
  type TransformRequestRequest,
  type TransformRequestResponse,
  type TransformResponseRequest,
  type TransformResponseResponse,
} from '../src/index.js';

/** What a test policy server answers; a handler returning `'hang'` never answers, `'fail'` answers UNAVAILABLE. */
export interface PolicyHandlers {
  request?(call: TransformRequestRequest): TransformRequestResponse | 'hang' | 'fail';
  response?(call: TransformResponseRequest): TransformResponseResponse | 'hang' | 'fail';
}

/** TLS of a test policy server: its certificate, and the CA whose client certificates it requires. */
export interface PolicyServerTls {
  readonly cert: string;
  readonly key: string;
  readonly clientCa?: string;
}

/** A running policy server, written with @grpc/grpc-js from the package's own `.proto`. */
export interface PolicyServer {
  readonly port: number;
  readonly target: string;
  /** Every call it received, in order. */
  readonly requests: TransformRequestRequest[];
  readonly responses: TransformResponseRequest[];
  handlers: PolicyHandlers;
  close(): Promise<void>;
}

/** Starts a policy server on 127.0.0.1 (plaintext, TLS, or mutual TLS). */
export async function startPolicyServer(handlers: PolicyHandlers = {}, tls?: PolicyServerTls): Promise<PolicyServer> {
  const server = new Server();
  const requests: TransformRequestRequest[] = [];
  const responses: TransformResponseRequest[] = [];
  const hung: (() => void)[] = [];
  const state: PolicyServer = {
    port: 0,
    target: '',
    requests,
    responses,
    handlers,
    async close() {
      for (const release of hung) release();
      server.forceShutdown();
    },
  };
  function answer<In, Out>(seen: In[], handler: ((call: In) => Out | 'hang' | 'fail') | undefined, fallback: Out) {
    return (call: ServerUnaryCall<In, Out>, callback: sendUnaryData<Out>): void => {
      seen.push(call.request);
      const result = handler === undefined ? fallback : handler(call.request);
      if (result === 'hang') hung.push(() => callback({ code: status.CANCELLED, details: 'server closed' }));
      else if (result === 'fail') callback({ code: status.UNAVAILABLE, details: 'policy backend down' });
      else callback(null, result);
    };
  }
  const implementation: UntypedServiceImplementation = {
    TransformRequest: (call: ServerUnaryCall<TransformRequestRequest, TransformRequestResponse>, callback: sendUnaryData<TransformRequestResponse>) =>
      answer(requests, state.handlers.request, { action: 'TRANSFORM_ACTION_CONTINUE' })(call, callback),
    TransformResponse: (call: ServerUnaryCall<TransformResponseRequest, TransformResponseResponse>, callback: sendUnaryData<TransformResponseResponse>) =>
      answer(responses, state.handlers.response, { action: 'TRANSFORM_ACTION_CONTINUE' })(call, callback),
  };
  server.addService(transformService().definition, implementation);
  const credentials =
    tls === undefined
      ? ServerCredentials.createInsecure()
      : ServerCredentials.createSsl(
          tls.clientCa === undefined ? null : Buffer.from(tls.clientCa),
          [{ cert_chain: Buffer.from(tls.cert), private_key: Buffer.from(tls.key) }],
          tls.clientCa !== undefined,
        );
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync('127.0.0.1:0', credentials, (err, bound) => (err === null ? resolve(bound) : reject(err)));
  });
  return Object.assign(state, { port, target: `127.0.0.1:${port}` });
}
