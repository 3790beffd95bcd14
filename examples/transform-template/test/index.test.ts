import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { isTransformDefinition } from '@proxy/core';
import { runTransform, validateTransformConfig } from '@proxy/core/testing';
import transform from '../src/index.ts';

const packageName = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { name: string }).name;

describe('the transform definition', () => {
  it('is a valid definition named after the package', () => {
    assert.equal(isTransformDefinition(transform), true);
    assert.equal(transform.name, packageName);
  });

  it('validates its config block', () => {
    assert.deepEqual(validateTransformConfig(transform, { deny_paths: ['/admin'] }), []);
    assert.notDeepEqual(validateTransformConfig(transform, { deny_paths: ['admin'] }), []);
    assert.notDeepEqual(validateTransformConfig(transform, { deny_paths: ['/admin'], colour: 'blue' }), []);
    assert.notDeepEqual(validateTransformConfig(transform, {}), []);
  });
});

describe('requests', () => {
  it('lets a request outside the denied prefixes through', async () => {
    const result = await runTransform(transform, { deny_paths: ['/admin'] }, { path: '/administrator' });
    assert.equal(result.decision.action, 'continue');
  });

  it('refuses a denied prefix with 451 and records it', async () => {
    const result = await runTransform(transform, { deny_paths: ['/admin'] }, { path: '/admin/users' });
    assert.deepEqual(result.decision, { action: 'reject', status: 451, reason: 'path_denied' });
    assert.equal(result.audit.rejected_by, packageName);
    assert.deepEqual(result.audit.request_transforms[0]?.annotations, { denied_path: '/admin', rejected: 'path_denied' });
  });

  it('uses the configured status and stays within its rules', async () => {
    const config = { deny_paths: ['/admin'], status: 403, rules: [{ host: 'api.example.com' }] };
    const inScope = await runTransform(transform, config, { host: 'api.example.com', path: '/admin' });
    assert.equal(inScope.decision.action === 'reject' && inScope.decision.status, 403);
    const outOfScope = await runTransform(transform, config, { host: 'other.example.com', path: '/admin' });
    assert.equal(outOfScope.decision.action, 'continue');
  });
});
