import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { HoldGate, listenFake } from './fake-server.js';
import { parseSigV4Authorization } from './sigv4.js';
import { checkSigV4 } from './sigv4-check.js';

/** The two operations the fake serves, by their `X-Amz-Target`. */
export type FakeAwsSecretsTarget = 'secretsmanager.GetSecretValue' | 'AmazonSSM.GetParameter';

/**
 * How the fake fails the calls it receives: an AWS JSON error (`AccessDeniedException`, 400;
 * `ThrottlingException`, 400; `InternalFailure`, 500: `InternalServiceError` for Secrets
 * Manager, `InternalServerError` for SSM) or `drop`, a connection destroyed without an answer.
 */
export type FakeAwsSecretsFailure = 'AccessDeniedException' | 'ThrottlingException' | 'InternalFailure' | 'drop';

/** One request the fake received (answered or failed). */
export interface FakeAwsSecretsCall {
  readonly target: string;
  /** `SecretId` (Secrets Manager) or `Name` (SSM) as sent. */
  readonly id: string;
  /** SSM's `WithDecryption`, when sent. */
  readonly withDecryption?: boolean;
  /** The access key of the SigV4 `Authorization` header. */
  readonly accessKeyId: string;
  /** The region of the SigV4 credential scope. */
  readonly region: string;
}

/** The type of an SSM parameter. */
export type FakeSsmParameterType = 'String' | 'StringList' | 'SecureString';

/** Options for {@link startFakeAwsSecrets}. */
export interface FakeAwsSecretsOptions {
  /** Interface to bind; default `127.0.0.1`. */
  readonly host?: string;
  /**
   * When given, only these credentials are accepted and every signature is verified
   * (`UnrecognizedClientException` for another key, `InvalidSignatureException` for a bad
   * signature). Without it any access key is accepted and only the presence of a SigV4 header
   * is checked.
   */
  readonly credentials?: { readonly accessKeyId: string; readonly secretAccessKey: string };
  /** The account id in the ARNs; default `123456789012`. */
  readonly accountId?: string;
}

/** A running fake of AWS Secrets Manager and SSM Parameter Store. */
export interface FakeAwsSecrets {
  /** Base URL: the value for `AWS_ENDPOINT_URL_SECRETS_MANAGER` and `AWS_ENDPOINT_URL_SSM`. */
  readonly url: string;
  /** Every request received, in order, failed ones included. */
  readonly calls: FakeAwsSecretsCall[];
  /**
   * Creates or rotates a Secrets Manager secret (a string is `SecretString`, a Buffer
   * `SecretBinary`); each call makes a new version. Returns the secret's ARN. It can be fetched
   * by name, by that ARN, or by a partial ARN naming it (`arn:aws:secretsmanager:<any
   * region>:<any account>:secret:<name>`).
   */
  putSecret(name: string, value: string | Buffer): string;
  /** Deletes a secret: fetching it is `ResourceNotFoundException` again. */
  deleteSecret(name: string): void;
  /** Creates or overwrites an SSM parameter (default type `SecureString`); the version counts up. */
  putParameter(name: string, value: string, type?: FakeSsmParameterType): void;
  /** Deletes a parameter: fetching it is `ParameterNotFound` again. */
  deleteParameter(name: string): void;
  /** Fails every following call (of one service, or both) the given way; `undefined` answers normally again. */
  failWith(mode: FakeAwsSecretsFailure | undefined, target?: FakeAwsSecretsTarget): void;
  /** Holds every following answer until the returned function is called (calls are recorded on arrival). */
  hold(): () => void;
  /** Closes the listener and every open connection. */
  close(): Promise<void>;
}

interface StoredSecret {
  readonly arn: string;
  value: string | Buffer;
  versionId: string;
  createdDate: number;
}

interface StoredParameter {
  value: string;
  type: FakeSsmParameterType;
  version: number;
  lastModifiedDate: number;
}

/** An AWS JSON protocol error: HTTP status, `__type` and message. */
interface AwsJsonError {
  readonly status: number;
  readonly type: string;
  readonly message: string;
}

const JSON_11 = 'application/x-amz-json-1.1';
const DEFAULT_ACCOUNT = '123456789012';

/**
 * Starts a local AWS Secrets Manager and SSM Parameter Store in one server, speaking the AWS
 * JSON 1.1 protocol both services use: a SigV4-signed `POST /` whose `X-Amz-Target` names the
 * operation (`secretsmanager.GetSecretValue`, `AmazonSSM.GetParameter`), a JSON body, a JSON
 * answer, and errors as `{"__type": "...", "message": "..."}` with their HTTP status. The real
 * `@aws-sdk/client-secrets-manager` and `@aws-sdk/client-ssm` talk to it through
 * `AWS_ENDPOINT_URL_SECRETS_MANAGER` / `AWS_ENDPOINT_URL_SSM` (or an `endpoint` option).
 */
export async function startFakeAwsSecrets(options: FakeAwsSecretsOptions = {}): Promise<FakeAwsSecrets> {
  const host = options.host ?? '127.0.0.1';
  const account = options.accountId ?? DEFAULT_ACCOUNT;
  const calls: FakeAwsSecretsCall[] = [];
  const secrets = new Map<string, StoredSecret>();
  const parameters = new Map<string, StoredParameter>();
  const failures = new Map<FakeAwsSecretsTarget, FakeAwsSecretsFailure>();
  const gate = new HoldGate();

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const body = await readBody(req);
    if (req.method !== 'POST' || (req.url ?? '/').split('?', 1)[0] !== '/') {
      return sendError(res, { status: 404, type: 'UnknownOperationException', message: 'only POST / is served' });
    }
    const target = String(req.headers['x-amz-target'] ?? '');
    if (target !== 'secretsmanager.GetSecretValue' && target !== 'AmazonSSM.GetParameter') {
      return sendError(res, { status: 400, type: 'UnknownOperationException', message: `operation ${target || '(none)'} is not implemented` });
    }
    if (!String(req.headers['content-type'] ?? '').startsWith(JSON_11)) {
      return sendError(res, { status: 400, type: 'SerializationException', message: `expected Content-Type ${JSON_11}` });
    }
    const auth = parseSigV4Authorization(req.headers.authorization);
    if (auth === undefined) {
      return sendError(res, { status: 400, type: 'MissingAuthenticationTokenException', message: 'Missing Authentication Token' });
    }
    let input: Record<string, unknown>;
    try {
      const parsed: unknown = JSON.parse(body.toString('utf8'));
      input = typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>) : {};
    } catch {
      return sendError(res, { status: 400, type: 'SerializationException', message: 'the body is not JSON' });
    }
    const isSecrets = target === 'secretsmanager.GetSecretValue';
    const id = String((isSecrets ? input.SecretId : input.Name) ?? '');
    calls.push({
      target,
      id,
      ...(typeof input.WithDecryption === 'boolean' ? { withDecryption: input.WithDecryption } : {}),
      accessKeyId: auth.accessKeyId,
      region: auth.region,
    });

    if (options.credentials !== undefined) {
      if (auth.accessKeyId !== options.credentials.accessKeyId) {
        return sendError(res, { status: 400, type: 'UnrecognizedClientException', message: 'The security token included in the request is invalid.' });
      }
      if ((await checkSigV4({ method: req.method ?? 'POST', url: req.url ?? '/', headers: req.headers, body }, options.credentials)).error !== undefined) {
        return sendError(res, {
          status: 400,
          type: 'InvalidSignatureException',
          message: 'The request signature we calculated does not match the signature you provided.',
        });
      }
    }
    await gate.passed();
    const failure = failures.get(target);
    if (failure === 'drop') {
      req.socket.destroy();
      return;
    }
    if (failure !== undefined) return sendError(res, failureError(failure, isSecrets, auth.accessKeyId));
    if (id === '') {
      return sendError(res, { status: 400, type: 'ValidationException', message: `1 validation error detected: Value null at '${isSecrets ? 'secretId' : 'name'}' failed to satisfy constraint: Member must not be null` });
    }
    return isSecrets ? answerSecret(res, id) : answerParameter(res, id, input.WithDecryption === true, auth.region);
  };

  // By name, by full ARN, or by partial ARN (the ARN without its random suffix), as Secrets Manager finds them.
  const findSecret = (id: string): [string, StoredSecret] | undefined => {
    const byName = secrets.get(id);
    if (byName !== undefined) return [id, byName];
    for (const entry of secrets) if (entry[1].arn === id) return entry;
    const partial = /^arn:aws:secretsmanager:[^:]*:[^:]*:secret:(.+)$/.exec(id)?.[1];
    const byPartial = partial === undefined ? undefined : secrets.get(partial);
    return byPartial === undefined ? undefined : [partial!, byPartial];
  };

  const answerSecret = (res: ServerResponse, id: string): void => {
    const found = findSecret(id);
    if (found === undefined) return sendError(res, { status: 400, type: 'ResourceNotFoundException', message: "Secrets Manager can't find the specified secret." });
    const [name, secret] = found;
    sendJson(res, {
      ARN: secret.arn,
      Name: name,
      VersionId: secret.versionId,
      ...(typeof secret.value === 'string' ? { SecretString: secret.value } : { SecretBinary: secret.value.toString('base64') }),
      VersionStages: ['AWSCURRENT'],
      CreatedDate: secret.createdDate,
    });
  };

  const answerParameter = (res: ServerResponse, id: string, withDecryption: boolean, region: string): void => {
    const name = id.startsWith('arn:') ? id.slice(id.indexOf(':parameter') + ':parameter'.length) : id;
    const parameter = parameters.get(name);
    if (parameter === undefined) return sendError(res, { status: 400, type: 'ParameterNotFound', message: '' });
    // Without decryption a SecureString comes back as its ciphertext, as SSM does.
    const value =
      parameter.type === 'SecureString' && !withDecryption ? Buffer.concat([Buffer.from('fake-kms:'), randomBytes(24)]).toString('base64') : parameter.value;
    sendJson(res, {
      Parameter: {
        Name: name,
        Type: parameter.type,
        Value: value,
        Version: parameter.version,
        LastModifiedDate: parameter.lastModifiedDate,
        ARN: `arn:aws:ssm:${region}:${account}:parameter${name.startsWith('/') ? '' : '/'}${name}`,
        DataType: 'text',
      },
    });
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch(() => res.destroy());
  });
  const listening = await listenFake(server, host);
  const url = listening.url;

  return {
    url,
    calls,
    putSecret(name, value) {
      const now = Date.now() / 1000;
      const existing = secrets.get(name);
      if (existing !== undefined) {
        Object.assign(existing, { value, versionId: randomUUID(), createdDate: now });
        return existing.arn;
      }
      const arn = `arn:aws:secretsmanager:us-east-1:${account}:secret:${name}-${randomBytes(3).toString('hex')}`;
      secrets.set(name, { arn, value, versionId: randomUUID(), createdDate: now });
      return arn;
    },
    deleteSecret(name) {
      secrets.delete(name);
    },
    putParameter(name, value, type = 'SecureString') {
      const version = (parameters.get(name)?.version ?? 0) + 1;
      parameters.set(name, { value, type, version, lastModifiedDate: Date.now() / 1000 });
    },
    deleteParameter(name) {
      parameters.delete(name);
    },
    failWith(mode, target) {
      const targets: FakeAwsSecretsTarget[] = target === undefined ? ['secretsmanager.GetSecretValue', 'AmazonSSM.GetParameter'] : [target];
      for (const t of targets) {
        if (mode === undefined) failures.delete(t);
        else failures.set(t, mode);
      }
    },
    hold: () => gate.hold(),
    close: () => listening.close(),
  };
}

function failureError(mode: Exclude<FakeAwsSecretsFailure, 'drop'>, isSecrets: boolean, accessKeyId: string): AwsJsonError {
  const action = isSecrets ? 'secretsmanager:GetSecretValue' : 'ssm:GetParameter';
  switch (mode) {
    case 'AccessDeniedException':
      return {
        status: 400,
        type: 'AccessDeniedException',
        message: `User: arn:aws:iam::123456789012:user/${accessKeyId} is not authorized to perform: ${action} because no identity-based policy allows the ${action} action`,
      };
    case 'ThrottlingException':
      return { status: 400, type: 'ThrottlingException', message: 'Rate exceeded' };
    case 'InternalFailure':
      return { status: 500, type: isSecrets ? 'InternalServiceError' : 'InternalServerError', message: 'An error occurred on the server side.' };
  }
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks);
}

function sendJson(res: ServerResponse, value: unknown, status = 200): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'content-type': JSON_11, 'content-length': Buffer.byteLength(body), 'x-amzn-requestid': randomUUID() });
  res.end(body);
}

function sendError(res: ServerResponse, error: AwsJsonError): void {
  sendJson(res, { __type: error.type, message: error.message }, error.status);
}
