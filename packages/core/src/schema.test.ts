import { describe, expect, it } from 'vitest';
import { rulesSchema } from './rules.js';
import { createSchemaValidator, toConfigIssues } from './schema.js';
import { envSource, secretSourceRef, type SecretSourceDefinition } from './secrets.js';

function check(schema: object, data: unknown, validator = createSchemaValidator()) {
  const validate = validator.compile(schema);
  const ok = validate(data);
  return { ok, issues: toConfigIssues(validate.errors) };
}

describe('createSchemaValidator formats', () => {
  const cases: [string, string, boolean][] = [
    ['duration', '5m', true],
    ['duration', '1h30m', true],
    ['duration', '0', true],
    ['duration', '5', false],
    ['duration', '-1s', false],
    ['cidr', '10.0.0.0/8', true],
    ['cidr', 'fd00::/8', true],
    ['cidr', '10.0.0.0', false],
    ['cidr', '10.0.0.0/40', false],
    ['host-glob', '*', true],
    ['host-glob', '*.example.com', true],
    ['host-glob', 'api.example.com', true],
    ['host-glob', 'API.Example.com.', true],
    ['host-glob', '10.0.0.1', true],
    ['host-glob', '::1', true],
    ['host-glob', 'has space.com', false],
    ['host-glob', 'https://example.com', false],
    ['host-glob', 'api.example.com:443', false],
    ['host-glob', '[::1]:8080', false],
    ['host-glob', '*:*', false],
    ['host-port-glob', '*', true],
    ['host-port-glob', '*:*', true],
    ['host-port-glob', 'api.example.com', true],
    ['host-port-glob', 'api.example.com:443', true],
    ['host-port-glob', '*.example.com:8443', true],
    ['host-port-glob', 'api.example.com:*', true],
    ['host-port-glob', '10.0.0.1:5432', true],
    ['host-port-glob', '[2001:db8::1]:8080', true],
    ['host-port-glob', '2001:db8::1', true],
    ['host-port-glob', 'api.example.com:0', false],
    ['host-port-glob', 'api.example.com:65536', false],
    ['host-port-glob', 'api.example.com:', false],
    ['host-port-glob', 'api.example.com:80-90', false],
    ['host-port-glob', '[api.example.com]:80', false],
    ['host-port-glob', 'has space.com:80', false],
    ['host-port-glob', 'https://example.com', false],
    ['port-range', '*', true],
    ['port-range', '8000-8999', true],
    ['port-range', '1-65535', true],
    ['port-range', '443-443', true],
    ['port-range', '443', false],
    ['port-range', '9000-8000', false],
    ['port-range', '0-80', false],
    ['port-range', '1-65536', false],
    ['port-range', '80-', false],
    ['port-range', 'http', false],
    ['path-glob', '/v1/*', true],
    ['path-glob', 'v1/*', false],
    ['header-pattern', 'Authorization', true],
    ['header-pattern', 'x-api-key', true],
    ['header-pattern', '/^X-Trace-.*$/', true],
    ['header-pattern', '/^x-(a|b)$/', true],
    ['header-pattern', '/^x-(a|b)$/i', false],
    ['header-pattern', '/(unclosed/', false],
    ['header-pattern', 'bad header', false],
    ['header-pattern', '', false],
    ['uri', 'https://oauth2.example.com/token', true],
    ['ipv4', '1.2.3.4', true],
  ];
  it.each(cases)('format %s accepts %j: %s', (format, value, ok) => {
    const result = check({ type: 'object', properties: { v: { type: 'string', format } } }, { v: value });
    expect(result.ok).toBe(ok);
    if (!ok) expect(result.issues).toEqual([{ path: 'v', message: `must be a valid ${format}` }]);
  });
});

describe('proxyTemplate keyword', () => {
  const schema = { type: 'object', properties: { formatter: { type: 'string', proxyTemplate: { fields: ['Value'] } } } };
  it('accepts a template over the listed fields', () => {
    expect(check(schema, { formatter: 'Bearer {{ .Value }}' }).ok).toBe(true);
  });
  it('reports the template error', () => {
    expect(check(schema, { formatter: 'Bearer {{ .Foo }}' }).issues).toEqual([
      { path: 'formatter', message: 'template references unknown field .Foo at offset 10' },
    ]);
  });
  it('rejects a malformed keyword value at compile time', () => {
    expect(() => createSchemaValidator().compile({ type: 'string', proxyTemplate: { fields: 'Value' } })).toThrow();
    expect(() => createSchemaValidator().compile({ type: 'string', proxyTemplate: { fields: [], keyFields: { Credentials: '/credentials' } } })).toThrow();
  });
  it('lists the allowed fields in the error params', () => {
    const validate = createSchemaValidator().compile(schema);
    expect(validate({ formatter: '{{ .Foo }}' })).toBe(false);
    expect(validate.errors?.[0]?.params).toEqual({ allowed: ['Value'] });
  });
});

describe('proxyTemplate keyFields: fields named by the keys of a sibling map', () => {
  const message = { type: 'string', proxyTemplate: { fields: ['Timestamp'], keyFields: { Credentials: '2/credentials' } } };
  const header = { type: 'string', proxyTemplate: { fields: ['Signature'], keyFields: { Credentials: '3/credentials' } } };
  const schema = {
    type: 'object',
    properties: {
      credentials: { type: 'object', additionalProperties: { type: 'string' } },
      signature: { type: 'object', properties: { message } },
      headers: { type: 'array', items: { type: 'object', properties: { value: header } } },
    },
  };
  const config = (messageText: string, headerText: string, credentials: unknown = { secret: 'S', key: 'K' }) => ({
    credentials,
    signature: { message: messageText },
    headers: [{ value: '{{ .Signature }}' }, { value: headerText }],
  });

  it('accepts each configured name, at any depth', () => {
    expect(check(schema, config('{{.Timestamp}}{{.Credentials.key}}', '{{ .Credentials.secret }}')).ok).toBe(true);
  });

  it('reports a name that is not configured, with the names that are', () => {
    const validate = createSchemaValidator().compile(schema);
    expect(validate(config('{{.Credentials.passphrase}}', '{{ .Credentials.kye }}'))).toBe(false);
    expect(toConfigIssues(validate.errors)).toEqual([
      { path: 'signature.message', message: 'template references unknown field .Credentials.passphrase at offset 2' },
      { path: 'headers[1].value', message: 'template references unknown field .Credentials.kye at offset 3' },
    ]);
    expect(validate.errors?.[0]?.params).toEqual({ allowed: ['Timestamp', 'Credentials.secret', 'Credentials.key'] });
  });

  it('does not allow the map itself or fields of the other template', () => {
    expect(check(schema, config('{{ .Credentials }}', '{{ .Signature }}')).ok).toBe(false);
    expect(check(schema, config('{{ .Signature }}', '{{ .Timestamp }}')).issues.map((i) => i.path)).toEqual(['signature.message', 'headers[1].value']);
  });

  it('lets any name through when the map is missing or malformed, so its own error stands alone', () => {
    expect(check(schema, { signature: { message: '{{ .Credentials.key }}' } }).ok).toBe(true);
    expect(check(schema, config('{{ .Credentials.key }}', '{{ .Credentials.x }}', 'not a map')).issues).toEqual([
      { path: 'credentials', message: 'must be object' },
    ]);
  });

  it('resolves the pointer relative to the template, whatever the document root', () => {
    const nested = { type: 'object', properties: { transforms: { type: 'array', items: schema } } };
    expect(check(nested, { transforms: [config('{{ .Credentials.key }}', '{{ .Credentials.secret }}')] }).ok).toBe(true);
    expect(check(nested, { transforms: [config('{{ .Credentials.nope }}', '{{ .Signature }}')] }).issues).toEqual([
      { path: 'transforms[0].signature.message', message: 'template references unknown field .Credentials.nope at offset 3' },
    ]);
  });

  it('treats a pointer above the root as naming nothing', () => {
    const far = { type: 'object', properties: { t: { type: 'string', proxyTemplate: { fields: [], keyFields: { C: '5/x' } } } } };
    expect(check(far, { t: '{{ .C.any }}' }).ok).toBe(true);
  });
});

describe('validator options', () => {
  it('applies defaults and reports every error at once', () => {
    const data: Record<string, unknown> = { extra: 1 };
    const result = check(
      {
        type: 'object',
        properties: { mode: { type: 'string', default: 'strict' }, need: { type: 'string' } },
        required: ['need'],
        additionalProperties: false,
      },
      data,
    );
    expect(data.mode).toBe('strict');
    expect(result.issues).toEqual([
      { path: 'need', message: 'is required' },
      { path: 'extra', message: 'is not a known field' },
    ]);
  });

  it('is strict: unknown keywords are schema errors', () => {
    expect(() => createSchemaValidator().compile({ type: 'string', colour: 'red' })).toThrow(/unknown keyword/);
  });

  it('compiles the shared rules schema', () => {
    expect(check(rulesSchema, [{ host: '*.example.com', methods: ['GET'], paths: ['/v1/*'] }, { cidr: '10.0.0.0/8' }]).ok).toBe(true);
    expect(check(rulesSchema, [{ host: 'a.com', cidr: '10.0.0.0/8' }]).ok).toBe(false);
    expect(check(rulesSchema, [{ cidr: 'nope' }]).issues).toContainEqual({ path: '[0].cidr', message: 'must be a valid cidr' });
  });

  it('checks ports in the shared rules schema', () => {
    expect(
      check(rulesSchema, [{ host: 'api.example.com:443' }, { host: 'a.com', ports: [443, '8000-8999', '*'] }, { cidr: '10.0.0.0/8', ports: [5432] }]).ok,
    ).toBe(true);
    expect(check(rulesSchema, [{ host: 'a.com', ports: [] }]).issues).toEqual([{ path: '[0].ports', message: 'must NOT have fewer than 1 items' }]);
    expect(check(rulesSchema, [{ host: 'a.com', ports: [0] }]).ok).toBe(false);
    expect(check(rulesSchema, [{ host: 'a.com', ports: ['443'] }]).ok).toBe(false);
    expect(check(rulesSchema, [{ host: 'a.com:99999' }]).issues).toContainEqual({ path: '[0].host', message: 'must be a valid host-port-glob' });
  });

  it('refuses ports beside a host that names a port, at ports', () => {
    expect(check(rulesSchema, [{ host: 'api.example.com:443', ports: [443] }]).issues).toEqual([
      { path: '[0].ports', message: 'host "api.example.com:443" names a port and ports is set too: write the port in one place' },
    ]);
    expect(check(rulesSchema, [{ host: '[::1]:*', ports: ['*'] }]).ok).toBe(false);
    expect(check(rulesSchema, [{ host: '::1', ports: [8080] }]).ok).toBe(true);
  });
});

describe('secret source schema', () => {
  const schema = {
    type: 'object',
    properties: { secrets: { type: 'array', items: { type: 'object', properties: { source: secretSourceRef }, additionalProperties: false } } },
  };

  it('accepts env sources with json_key and ttl', () => {
    expect(check(schema, { secrets: [{ source: { type: 'env', var: 'X', json_key: 'k', ttl: '5m' } }] }).ok).toBe(true);
  });

  it('names the missing backend field with its full path', () => {
    expect(check(schema, { secrets: [{ source: { type: 'env' } }] }).issues).toEqual([{ path: 'secrets[0].source.var', message: 'is required' }]);
  });

  it('rejects unknown fields and bad ttl', () => {
    expect(check(schema, { secrets: [{ source: { type: 'env', var: 'X', region: 'x', ttl: '5' } }] }).issues).toEqual([
      { path: 'secrets[0].source.region', message: 'is not a known field' },
      { path: 'secrets[0].source.ttl', message: 'must be a valid duration' },
    ]);
  });

  it('lists the known types for an unknown type', () => {
    expect(check(schema, { secrets: [{ source: { type: 'vault', path: 'x' } }] }).issues).toEqual([
      { path: 'secrets[0].source.type', message: 'must be one of: env' },
    ]);
    expect(check(schema, { secrets: [{ source: {} }] }).issues).toEqual([{ path: 'secrets[0].source.type', message: 'is required' }]);
  });

  it('composes registered backends', () => {
    const awsSm: SecretSourceDefinition = {
      type: 'aws_sm',
      properties: { secret_id: { type: 'string' }, region: { type: 'string' } },
      required: ['secret_id'],
      label: (c) => String(c.secret_id),
      create: () => ({ fetch: () => Promise.resolve('v') }),
    };
    const validator = createSchemaValidator({ secretSources: [envSource, awsSm] });
    expect(check(schema, { secrets: [{ source: { type: 'aws_sm', secret_id: 'arn', region: 'us-east-1', ttl: '15m' } }] }, validator).ok).toBe(true);
    expect(check(schema, { secrets: [{ source: { type: 'aws_sm', var: 'X' } }] }, validator).issues).toEqual([
      { path: 'secrets[0].source.secret_id', message: 'is required' },
      { path: 'secrets[0].source.var', message: 'is not a known field' },
    ]);
    expect(check(schema, { secrets: [{ source: { type: 'nope' } }] }, validator).issues).toEqual([
      { path: 'secrets[0].source.type', message: 'must be one of: env, aws_sm' },
    ]);
    // The default validator does not know aws_sm.
    expect(check(schema, { secrets: [{ source: { type: 'aws_sm', secret_id: 'arn' } }] }).ok).toBe(false);
  });
});

describe('toConfigIssues', () => {
  it('prefixes paths and quotes odd field names', () => {
    expect(
      toConfigIssues(
        [
          { instancePath: '/a~1b/0', schemaPath: '', keyword: 'type', params: { type: 'string' }, message: 'must be string' },
          { instancePath: '', schemaPath: '', keyword: 'required', params: { missingProperty: 'x y' } },
        ],
        'transforms[1].config',
      ),
    ).toEqual([
      { path: 'transforms[1].config."a/b"[0]', message: 'must be string' },
      { path: 'transforms[1].config."x y"', message: 'is required' },
    ]);
    expect(toConfigIssues(null)).toEqual([]);
  });
});
