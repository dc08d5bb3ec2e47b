import { createHash } from 'node:crypto';
import test from 'ava';
import { sql } from 'kysely';
import { adminApi, createTenant, startTestApp, type TestApp, type TestTenant } from '../helpers/app.ts';
import { lastRequestOnceItIs, scimCall } from '../helpers/scim.ts';

// The Admin API of an organization's directories: the token shown once and stored as its hash,
// rotation and revocation taking effect at once, owner refused as a grant, other orgs' ids 404.

let t: TestApp;
let tenant: TestTenant;
let orgId: string;
const api = (method: string, path: string, body?: unknown) => adminApi(t, tenant, method, path, body);

test.before(async () => {
  t = await startTestApp();
  tenant = await createTenant(t);
  orgId = (await api('POST', '/organizations', { name: 'Dir Corp' })).body.id;
});
test.after.always(async () => t?.stop());

test('create, read, list, update, delete; the token is shown once and only its hash is stored', async (tt) => {
  const created = await api('POST', `/organizations/${orgId}/directories`, {
    name: 'Okta',
    provider: 'okta',
    default_role: 'member',
    group_roles: { Admins: 'admin' },
  });
  tt.is(created.status, 201, created.text);
  const d = created.body;
  tt.regex(d.bearer_token, /^scim_[A-Za-z0-9_-]{43}$/);
  tt.is(d.scim_base_url, `${t.url}/t/${tenant.slug}/scim/v2/${d.id}`);
  tt.is(d.token.hint, d.bearer_token.slice(-4));

  const read = await api('GET', `/organizations/${orgId}/directories/${d.id}`);
  tt.false(JSON.stringify(read.body).includes(d.bearer_token), 'never shown again');
  tt.like(read.body, { name: 'Okta', provider: 'okta', group_roles: { Admins: 'admin' }, counts: { users: 0, groups: 0 } });
  const stored = await sql<{ token_hash: string }>`select token_hash from scim_directories where id = ${d.id}`.execute(t.app.connection.db);
  tt.is(stored.rows[0]!.token_hash, createHash('sha256').update(d.bearer_token).digest('hex'));

  tt.is((await scimCall(d.scim_base_url, d.bearer_token, 'GET', '/ServiceProviderConfig')).status, 200);
  tt.true((await api('GET', `/organizations/${orgId}/directories`)).body.data.some((x: { id: string }) => x.id === d.id));
  const updated = await api('PATCH', `/organizations/${orgId}/directories/${d.id}`, { sso_match: 'email', enabled: false });
  tt.like(updated.body, { sso_match: 'email', enabled: false });
  const off = await scimCall(d.scim_base_url, d.bearer_token, 'GET', '/Users');
  tt.is(off.status, 403, 'a directory turned off is refused');
  tt.regex(off.body.detail, /turned off\. An owner of the organization turns it on/, 'saying who turns it on, to the token holder only');
  tt.is((await scimCall(d.scim_base_url, 'scim_wrong', 'GET', '/Users')).status, 401, 'without the token, nothing is learnt');
  await api('PATCH', `/organizations/${orgId}/directories/${d.id}`, { enabled: true });
  const last = await lastRequestOnceItIs(
    async () => (await api('GET', `/organizations/${orgId}/directories/${d.id}`)).body,
    (l) => l.path === '/ServiceProviderConfig',
  );
  tt.like(last, { method: 'GET', path: '/ServiceProviderConfig', status: 200 }, 'refused requests are not recorded: they are not the directory');

  tt.is((await api('DELETE', `/organizations/${orgId}/directories/${d.id}`)).status, 204);
  tt.is((await api('GET', `/organizations/${orgId}/directories/${d.id}`)).status, 404);
  tt.is((await scimCall(d.scim_base_url, d.bearer_token, 'GET', '/Users')).status, 401);
});

test('rotation kills the old token at once; revocation → 401 until the next rotation', async (tt) => {
  const d = (await api('POST', `/organizations/${orgId}/directories`, { name: 'Entra', provider: 'entra' })).body;
  const rotated = await api('POST', `/organizations/${orgId}/directories/${d.id}/token`);
  tt.is(rotated.status, 200);
  tt.not(rotated.body.bearer_token, d.bearer_token);
  tt.is((await scimCall(d.scim_base_url, d.bearer_token, 'GET', '/Users')).status, 401);
  tt.is((await scimCall(d.scim_base_url, rotated.body.bearer_token, 'GET', '/Users')).status, 200);
  const revoked = await api('DELETE', `/organizations/${orgId}/directories/${d.id}/token`);
  tt.is(revoked.body.token, null);
  tt.is((await scimCall(d.scim_base_url, rotated.body.bearer_token, 'GET', '/Users')).status, 401);
  tt.is((await scimCall(d.scim_base_url, '', 'GET', '/Users')).status, 401);
});

test('owner is refused as default_role and in group_roles (422); unknown roles too', async (tt) => {
  const owner = await api('POST', `/organizations/${orgId}/directories`, { name: 'X', default_role: 'owner' });
  tt.is(owner.status, 422);
  const mapped = await api('POST', `/organizations/${orgId}/directories`, { name: 'X', group_roles: { Everyone: 'owner' } });
  tt.is(mapped.status, 422);
  const d = (await api('POST', `/organizations/${orgId}/directories`, { name: 'Y' })).body;
  tt.is((await api('PATCH', `/organizations/${orgId}/directories/${d.id}`, { default_role: 'owner' })).status, 422);
  tt.is((await api('PATCH', `/organizations/${orgId}/directories/${d.id}`, { group_roles: { G: 'no-such-role' } })).status, 422);
});

test("another organization's or tenant's directory ids are 404", async (tt) => {
  const d = (await api('POST', `/organizations/${orgId}/directories`, { name: 'Mine' })).body;
  const otherOrg = (await api('POST', '/organizations', { name: 'Other Corp' })).body.id;
  for (const [method, path] of [
    ['GET', `/organizations/${otherOrg}/directories/${d.id}`],
    ['PATCH', `/organizations/${otherOrg}/directories/${d.id}`],
    ['DELETE', `/organizations/${otherOrg}/directories/${d.id}`],
    ['POST', `/organizations/${otherOrg}/directories/${d.id}/token`],
    ['DELETE', `/organizations/${otherOrg}/directories/${d.id}/token`],
  ] as const)
    tt.is((await api(method, path, method === 'PATCH' ? { name: 'Taken' } : undefined)).status, 404, `${method} ${path}`);
  const other = await createTenant(t);
  const foreignOrg = (await adminApi(t, other, 'POST', '/organizations', { name: 'Foreign' })).body.id;
  tt.is((await adminApi(t, other, 'GET', `/organizations/${foreignOrg}/directories/${d.id}`)).status, 404);
  tt.is((await adminApi(t, other, 'GET', `/organizations/${orgId}/directories`)).status, 404);
  tt.is((await api('GET', `/organizations/${orgId}/directories/${d.id}`)).body.name, 'Mine', 'untouched');
});
