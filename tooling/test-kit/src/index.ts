export { startEchoServer, MAX_KEPT_BODY_BYTES } from './echo-server.js';
export type { EchoServer, EchoServerOptions, EchoRequestRecord } from './echo-server.js';
export { startDnsServer } from './dns-server.js';
export type { DnsTestServer, DnsServerOptions, DnsQueryRecord } from './dns-server.js';
export type { DnsRecordSet } from './dns-answer.js';
export { createTestPki } from './test-pki.js';
export type { TestPki, TestPkiOptions } from './test-pki.js';
export { startFakeSts } from './fake-sts.js';
export type { FakeSts, FakeStsOptions, FakeStsCall, FakeStsFailure, FakeStsSigningAlgorithm } from './fake-sts.js';
