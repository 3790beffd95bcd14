import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FAKE_METADATA_ACCESS_TOKEN, startFakeGceMetadata, type FakeGceMetadata } from './fake-gce-metadata.js';

describe('fake GCE metadata server', () => {
  let metadata: FakeGceMetadata;
  beforeEach(async () => {
    metadata = await startFakeGceMetadata({ email: 'vm@fake-project.iam.gserviceaccount.com' });
  });
  afterEach(async () => {
    await metadata.close();
  });

  const get = (path: string, flavor = true) => fetch(`${metadata.url}${path}`, { headers: flavor ? { 'metadata-flavor': 'Google' } : {} });

  it('answers the probe, the project and the default account, flavored', async () => {
    const probe = await get('/computeMetadata/v1/instance');
    expect(probe.status).toBe(200);
    expect(probe.headers.get('metadata-flavor')).toBe('Google');
    expect(await (await get('/computeMetadata/v1/project/project-id')).text()).toBe('fake-project');
    expect(await (await get('/computeMetadata/v1/instance/service-accounts/default/email')).text()).toBe('vm@fake-project.iam.gserviceaccount.com');
    const token = (await (await get('/computeMetadata/v1/instance/service-accounts/default/token?scopes=x')).json()) as { access_token: string };
    expect(token.access_token).toBe(FAKE_METADATA_ACCESS_TOKEN);
    expect(metadata.host).toMatch(/^127\.0\.0\.1:\d+$/);
  });

  it('refuses a request without Metadata-Flavor, 404s unknown paths, and records everything', async () => {
    expect((await get('/computeMetadata/v1/instance', false)).status).toBe(403);
    expect((await get('/computeMetadata/v1/nothing')).status).toBe(404);
    expect(metadata.requests).toEqual([
      { method: 'GET', url: '/computeMetadata/v1/instance', flavor: undefined },
      { method: 'GET', url: '/computeMetadata/v1/nothing', flavor: 'Google' },
    ]);
  });
});
