import test from 'ava';
import { adminApi, createTenant, startTestApp, type TestApp, type TestTenant, webClient } from '../helpers/app.ts';

let t: TestApp;
let tenant: TestTenant;

test.before(async () => {
  t = await startTestApp();
  tenant = await createTenant(t);
});
test.after.always(async () => t?.stop());

function isProblem(tt: any, res: Awaited<ReturnType<typeof adminApi>>, status: number, field?: string) {
  tt.is(res.status, status, res.text);
  tt.regex(res.type, /application\/problem\+json/);
  tt.is(res.body.status, status);
  tt.truthy(res.body.title);
  tt.truthy(res.body.detail);
  if (field)
    tt.true(
      res.body.errors?.some((e: { field: string }) => e.field.split(',').includes(field) || e.field === field),
      JSON.stringify(res.body.errors),
    );
}

test('users: create, get, list with filters and cursor pagination, update, delete', async (tt) => {
  const created = await adminApi(t, tenant, 'POST', '/users', { email: 'Ada@Example.test', name: 'Ada', password: 'a very long password' });
  tt.is(created.status, 201);
  tt.is(created.body.email, 'Ada@Example.test');
  tt.false('password_hash' in created.body);
  tt.false('password' in created.body);
  const id = created.body.id;
  tt.is((await adminApi(t, tenant, 'GET', `/users/${id}`)).body.name, 'Ada');
  tt.is((await adminApi(t, tenant, 'GET', '/users?email=ada@example.test')).body.data[0].id, id);
  tt.is((await adminApi(t, tenant, 'GET', '/users?q=ada')).body.data.length, 1);

  for (let i = 0; i < 5; i++) await adminApi(t, tenant, 'POST', '/users', { email: `page${i}@x.test` });
  const seen: string[] = [];
  let cursor: string | null = null;
  do {
    const page: any = await adminApi(t, tenant, 'GET', `/users?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
    tt.is(page.status, 200);
    tt.true(page.body.data.length <= 2);
    seen.push(...page.body.data.map((u: { id: string }) => u.id));
    cursor = page.body.next_cursor;
  } while (cursor);
  tt.is(new Set(seen).size, seen.length);
  tt.true(seen.length >= 7);

  const patched = await adminApi(t, tenant, 'PATCH', `/users/${id}`, { name: 'Ada L.', email_verified: true });
  tt.is(patched.body.name, 'Ada L.');
  tt.true(patched.body.email_verified);
  tt.is((await adminApi(t, tenant, 'DELETE', `/users/${id}`)).status, 204);
  isProblem(tt, await adminApi(t, tenant, 'GET', `/users/${id}`), 404);
});

test('users: bad input is a 4xx problem naming the field, never a 500', async (tt) => {
  isProblem(tt, await adminApi(t, tenant, 'POST', '/users', '{"email": "broken'), 400);
  isProblem(tt, await adminApi(t, tenant, 'POST', '/users', '[1,2]'), 400);
  isProblem(tt, await adminApi(t, tenant, 'POST', '/users', { email: 42 }), 422, 'email');
  isProblem(tt, await adminApi(t, tenant, 'POST', '/users', { email: 'not-an-email' }), 422, 'email');
  isProblem(tt, await adminApi(t, tenant, 'POST', '/users', {}), 422, 'email');
  isProblem(tt, await adminApi(t, tenant, 'POST', '/users', { email: 'x@y.test', role: 'god' }), 422, 'role');
  isProblem(tt, await adminApi(t, tenant, 'POST', '/users', { email: 'x@y.test', name: 'n'.repeat(201) }), 422, 'name');
  isProblem(tt, await adminApi(t, tenant, 'POST', '/users', { email: `${'a'.repeat(250)}@y.test` }), 422, 'email');
  isProblem(tt, await adminApi(t, tenant, 'POST', '/users', { email: 'x@y.test', password: 'short' }), 422, 'password');
  isProblem(tt, await adminApi(t, tenant, 'POST', '/users', { email: 'x@y.test', email_verified: 'yes' }), 422, 'email_verified');
  await adminApi(t, tenant, 'POST', '/users', { email: 'dup@y.test' });
  isProblem(tt, await adminApi(t, tenant, 'POST', '/users', { email: 'DUP@y.test' }), 409, 'email');
  isProblem(tt, await adminApi(t, tenant, 'PATCH', '/users/not-a-uuid', { name: 'x' }), 404);
  isProblem(tt, await adminApi(t, tenant, 'PATCH', '/users/00000000-0000-4000-8000-000000000000', { name: 'x' }), 404);
  const u = (await adminApi(t, tenant, 'POST', '/users', { email: 'patch@y.test' })).body;
  isProblem(tt, await adminApi(t, tenant, 'PATCH', `/users/${u.id}`, {}), 422);
  isProblem(tt, await adminApi(t, tenant, 'PATCH', `/users/${u.id}`, { email: 'dup@y.test' }), 409, 'email');
  isProblem(tt, await adminApi(t, tenant, 'GET', '/users?limit=1000'), 422, 'limit');
  isProblem(tt, await adminApi(t, tenant, 'GET', '/users?limit=abc'), 422, 'limit');
  isProblem(tt, await adminApi(t, tenant, 'GET', '/users?cursor=garbage'), 400);
  isProblem(tt, await adminApi(t, tenant, 'GET', '/users?bogus=1'), 422, 'bogus');
  const text = await fetch(`${t.url}/t/${tenant.slug}/api/v1/admin/users`, {
    method: 'POST',
    headers: { authorization: `Bearer ${tenant.adminKey}`, 'content-type': 'text/plain' },
    body: 'email=x',
  });
  tt.is(text.status, 415);
  const huge = await adminApi(t, tenant, 'POST', '/users', { email: 'x@y.test', name: 'x'.repeat(200_000) });
  tt.true(huge.status === 413 || huge.status === 422, String(huge.status));
});

test('clients: create returns the secret once; get, list, patch, rotate, delete', async (tt) => {
  const created = await adminApi(t, tenant, 'POST', '/clients', webClient('https://app.example.com/cb'));
  tt.is(created.status, 201);
  tt.truthy(created.body.client_secret);
  tt.deepEqual(created.body.grant_types, ['authorization_code', 'refresh_token']);
  const id = created.body.client_id;
  const got = await adminApi(t, tenant, 'GET', `/clients/${id}`);
  tt.false('client_secret' in got.body);
  tt.false(JSON.stringify(got.body).includes(created.body.client_secret));
  tt.true((await adminApi(t, tenant, 'GET', '/clients')).body.data.some((c: { client_id: string }) => c.client_id === id));
  const patched = await adminApi(t, tenant, 'PATCH', `/clients/${id}`, { name: 'Renamed', redirect_uris: ['https://app.example.com/cb2'] });
  tt.is(patched.body.name, 'Renamed');
  tt.deepEqual(patched.body.redirect_uris, ['https://app.example.com/cb2']);
  tt.false('client_secret' in patched.body);
  const rotated = await adminApi(t, tenant, 'PATCH', `/clients/${id}`, { rotate_secret: true });
  tt.truthy(rotated.body.client_secret);
  tt.not(rotated.body.client_secret, created.body.client_secret);
  const pub = await adminApi(t, tenant, 'POST', '/clients', { ...webClient(), token_endpoint_auth_method: 'none' });
  tt.is(pub.status, 201);
  tt.false('client_secret' in pub.body);
  tt.is((await adminApi(t, tenant, 'DELETE', `/clients/${id}`)).status, 204);
  isProblem(tt, await adminApi(t, tenant, 'GET', `/clients/${id}`), 404);
});

test('clients: bad input is a 4xx problem naming the field', async (tt) => {
  isProblem(tt, await adminApi(t, tenant, 'POST', '/clients', { name: 'x' }), 422, 'redirect_uris');
  isProblem(tt, await adminApi(t, tenant, 'POST', '/clients', { ...webClient(), redirect_uris: ['not a url'] }), 422, 'redirect_uris.0');
  isProblem(tt, await adminApi(t, tenant, 'POST', '/clients', { ...webClient(), redirect_uris: ['https://a.test/cb#frag'] }), 422, 'redirect_uris.0');
  isProblem(tt, await adminApi(t, tenant, 'POST', '/clients', { ...webClient(), redirect_uris: 'https://a.test/cb' }), 422, 'redirect_uris');
  isProblem(tt, await adminApi(t, tenant, 'POST', '/clients', { ...webClient(), grant_types: ['implicit'] }), 422, 'grant_types.0');
  isProblem(tt, await adminApi(t, tenant, 'POST', '/clients', { ...webClient(), grant_types: ['password'] }), 422, 'grant_types.0');
  isProblem(tt, await adminApi(t, tenant, 'POST', '/clients', { ...webClient(), scopes: ['superuser'] }), 422, 'scopes.0');
  isProblem(tt, await adminApi(t, tenant, 'POST', '/clients', { ...webClient(), client_secret: 'mine' }), 422, 'client_secret');
  isProblem(tt, await adminApi(t, tenant, 'POST', '/clients', { ...webClient(), name: '' }), 422, 'name');
  isProblem(
    tt,
    await adminApi(t, tenant, 'POST', '/clients', { name: 'm', grant_types: ['client_credentials'], token_endpoint_auth_method: 'none' }),
    422,
    'grant_types',
  );
  // oidc-provider's own rules surface as field errors too (a web client may not use a custom scheme).
  const custom = await adminApi(t, tenant, 'POST', '/clients', { ...webClient(), redirect_uris: ['myapp:/cb'] });
  isProblem(tt, custom, 422, 'redirect_uris');
  isProblem(tt, await adminApi(t, tenant, 'PATCH', '/clients/nope', { name: 'x' }), 404);
  isProblem(tt, await adminApi(t, tenant, 'DELETE', '/clients/nope'), 404);
});

test('Admin API refuses missing, malformed and unknown credentials with 401', async (tt) => {
  const noAuth = await fetch(`${t.url}/t/${tenant.slug}/api/v1/admin/users`);
  tt.is(noAuth.status, 401);
  tt.regex(noAuth.headers.get('content-type')!, /problem\+json/);
  tt.is(noAuth.headers.get('www-authenticate'), 'Bearer');
  isProblem(tt, await adminApi(t, tenant, 'GET', '/users', undefined, 'tsk_wrong'), 401);
  isProblem(tt, await adminApi(t, tenant, 'GET', '/users', undefined, 'garbage.not.jwt'), 401);
  isProblem(tt, await adminApi(t, tenant, 'GET', '/users', undefined, `${tenant.adminKey}x`), 401);
});

test('unknown paths under the Admin API are 404 problems; wrong methods 405', async (tt) => {
  isProblem(tt, await adminApi(t, tenant, 'GET', '/nothing-here'), 404);
  const res = await adminApi(t, tenant, 'PUT', '/users', {});
  tt.true(res.status === 405 || res.status === 404, String(res.status));
});

test("a tenant's first admin gets the password policy every account gets (not only a length check)", async (tt) => {
  const weak = await tt.throwsAsync(
    t.app.services.tenants.create({ slug: `weak-${process.pid}`, name: 'Weak', adminEmail: 'boss@weak.test', adminPassword: 'password123' }),
  );
  tt.regex(weak!.message, /adminPassword/);
  const created = await t.app.services.tenants.create({
    slug: `strong-${process.pid}`,
    name: 'Strong',
    adminEmail: 'boss@strong.test',
    adminPassword: 'lantern quarry 58 orbit',
  });
  tt.truthy(created.admin);
});
