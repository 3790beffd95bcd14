/**
 * @proxy/core: the contracts every part of the proxy is built on. No I/O of its own.
 */
export { ErrorCodes, ProxyError, ConfigError, formatConfigIssues } from './errors.js';
export type { ErrorCode, ConfigIssue } from './errors.js';
export { HeaderList } from './headers.js';
export {
  createProxyRequest,
  createMessageBody,
  requestUrl,
  nextRequestId,
  requestHeadBytes,
  headTooLarge,
  DEFAULT_MAX_HEAD_BYTES,
} from './request.js';
export { readSignedBody } from './body-integrity.js';
export type { BodyRefusal, SignedBody } from './body-integrity.js';
export { BytePool, BudgetLease, bufferBudgetExhausted, connectionBudgetExceeded } from './body-budget.js';
export type { BodyBudget } from './body-budget.js';
export type { ProxyRequest, ProxyResponse, ProxyRequestInit, MessageBody, MessageBodyOptions, RequestMode, TunnelInfo } from './request.js';
export { CONTINUE, reject, rejectJson, respond, retarget, defineTransform, isTransformDefinition } from './transform.js';
export type {
  Awaitable,
  AnnotationValue,
  Clock,
  ContinueDecision,
  Decision,
  HttpClient,
  Logger,
  RejectDecision,
  RespondDecision,
  RetargetDecision,
  Trace,
  Transform,
  TransformDefinition,
  ConfigInput,
  WithDefaults,
  TransformEnv,
} from './transform.js';
export { ruleSchema, rulesSchema, portsSchema, compileRules, compileHostGlob, compilePathGlob, normalizeHost, splitHostPattern } from './rules.js';
export type { CompileRulesOptions, HostPattern, PortSpec, RuleConfig, RuleSet, RuleTarget } from './rules.js';
export { CidrSet, isIpLiteral } from './cidr.js';
export type { CidrMatch, Ipv4Embedding } from './cidr.js';
export { canonicalHeaderName, compileHeaderPatterns, isRegexHeaderPattern } from './header-patterns.js';
export type { HeaderPatternSet } from './header-patterns.js';
export { compileTemplate, templateFunctions } from './template.js';
export { encodePathValue, encodeQueryValue, setQueryParam } from './url-encoding.js';
export type { CompiledTemplate } from './template.js';
export {
  envSource,
  createSecretResolver,
  secretSourceSchema,
  secretSourceRef,
  SECRET_SOURCE_SCHEMA_ID,
  SECRET_FETCH_TIMEOUT_MS,
  isSecretSourceDefinition,
  DEFAULT_FAILURE_TTL_MS,
} from './secrets.js';
export { SecretRedactor, MIN_SECRET_LENGTH } from './redactor.js';
export type {
  SecretSourceConfig,
  SecretSourceContext,
  SecretSourceDefinition,
  SecretFetcher,
  SecretHandle,
  SecretResolver,
  SecretResolverOptions,
} from './secrets.js';
export { durationSchema, parseDuration, createSchemaValidator, registerSecretSources, toConfigIssues } from './schema.js';
export type { JsonSchema, SchemaValidatorOptions } from './schema.js';
export { createTransformEnv, systemClock } from './transform-env.js';
export type { TransformEnvOptions } from './transform-env.js';
export { AuditBuilder, TraceRecorder } from './audit.js';
export type { AuditAction, AuditRecord, TraceAction, TransformTraceEntry } from './audit.js';
export { Pipeline, createPipeline } from './pipeline.js';
export type { PipelineEntry, PipelineOptions, TransformSpec } from './pipeline.js';
