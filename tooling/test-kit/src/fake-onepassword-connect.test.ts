import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startFakeOnePasswordConnect, type FakeOnePasswordConnect } from './fake-onepassword-connect.js';

const TOKEN = 'connect-test-token-0123';

describe('fake 1Password Connect over its REST API', () => {
  let connect: FakeOnePasswordConnect;
  let vaultId: string;
  let itemId: string;

  const get = async (path: string, token = TOKEN): Promise<{ status: number; body: unknown }> => {
    const res = await fetch(`${connect.url}${path}`, { headers: { Authorization: `Bearer ${token}` } });
    return { status: res.status, body: await res.json() };
  };

  beforeEach(async () => {
    connect = await startFakeOnePasswordConnect({ token: TOKEN });
    vaultId = connect.putVault('Engineering');
    connect.putVault('Other');
    itemId = connect.putItem('Engineering', {
      title: 'OpenAI',
      sections: [{ id: 'sec1', label: 'Prod' }],
      fields: [
        { id: 'username', label: 'username', value: 'svc', type: 'STRING', purpose: 'USERNAME' },
        { id: 'credential', label: 'credential', value: 'sk-plain' },
        { id: 'f-prod', label: 'credential', value: 'sk-prod', section: 'sec1' },
      ],
    });
  });
  afterEach(async () => {
    await connect.close();
  });

  it('lists vaults, filtered by name', async () => {
    const all = await get('/v1/vaults');
    expect(all.status).toBe(200);
    expect((all.body as { name: string }[]).map((v) => v.name)).toEqual(['Engineering', 'Other']);
    const one = await get(`/v1/vaults?filter=${encodeURIComponent('name eq "Engineering"')}`);
    expect(one.body).toMatchObject([{ id: vaultId, name: 'Engineering', items: 1 }]);
    expect(vaultId).toMatch(/^[a-z0-9]{26}$/);
    expect((await get(`/v1/vaults?filter=${encodeURIComponent('name eq "Nope"')}`)).body).toEqual([]);
    expect((await get(`/v1/vaults/${vaultId}`)).body).toMatchObject({ id: vaultId, name: 'Engineering' });
  });

  it('lists items filtered by title and serves the full item with sections and fields', async () => {
    const items = await get(`/v1/vaults/${vaultId}/items?filter=${encodeURIComponent('title eq "OpenAI"')}`);
    expect(items.body).toMatchObject([{ id: itemId, title: 'OpenAI', vault: { id: vaultId } }]);
    expect((items.body as Record<string, unknown>[])[0]).not.toHaveProperty('fields');
    const full = await get(`/v1/vaults/${vaultId}/items/${itemId}`);
    expect(full.body).toMatchObject({
      id: itemId,
      sections: [{ id: 'sec1', label: 'Prod' }],
      fields: [
        { id: 'username', purpose: 'USERNAME', value: 'svc' },
        { id: 'credential', label: 'credential', value: 'sk-plain', type: 'CONCEALED' },
        { id: 'f-prod', section: { id: 'sec1' }, value: 'sk-prod' },
      ],
    });
    expect(connect.calls.at(-2)).toEqual({ method: 'GET', path: `/v1/vaults/${vaultId}/items`, filter: 'title eq "OpenAI"', authorized: true });
  });

  it('rotates a field value and bumps the item version', async () => {
    connect.setField('Engineering', 'OpenAI', 'f-prod', 'sk-prod-2');
    const full = await get(`/v1/vaults/${vaultId}/items/${itemId}`);
    expect(full.body).toMatchObject({ version: 2, fields: [{}, {}, { id: 'f-prod', value: 'sk-prod-2' }] });
  });

  it('answers 401 without the right bearer token, 404 for unknown vaults and items, 400 for other filters', async () => {
    expect(await get('/v1/vaults', 'wrong')).toEqual({ status: 401, body: { status: 401, message: 'Invalid token signature' } });
    expect((await fetch(`${connect.url}/v1/vaults`)).status).toBe(401);
    expect(connect.calls.slice(-2).map((c) => c.authorized)).toEqual([false, false]);
    expect((await get('/v1/vaults/aaaaaaaaaaaaaaaaaaaaaaaaaa')).status).toBe(404);
    expect((await get(`/v1/vaults/${vaultId}/items/bbbbbbbbbbbbbbbbbbbbbbbbbb`)).status).toBe(404);
    expect((await get(`/v1/vaults?filter=${encodeURIComponent('title eq "Engineering"')}`)).status).toBe(400);
    connect.deleteItem('Engineering', itemId);
    expect((await get(`/v1/vaults/${vaultId}/items/${itemId}`)).status).toBe(404);
  });

  it('fails as told, holds answers, and keeps the heartbeat open', async () => {
    connect.failWith(500);
    expect((await get('/v1/vaults')).status).toBe(500);
    connect.failWith('drop');
    await expect(get('/v1/vaults')).rejects.toThrow();
    connect.failWith(undefined);
    expect((await fetch(`${connect.url}/heartbeat`)).status).toBe(200);
    const release = connect.hold();
    let settled = false;
    const pending = get('/v1/vaults').finally(() => (settled = true));
    await expect.poll(() => connect.calls.length).toBe(3);
    expect(settled).toBe(false);
    release();
    expect((await pending).status).toBe(200);
  });
});
