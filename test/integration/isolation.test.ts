import test from 'ava';
import { sql } from 'kysely';
import * as oidc from 'openid-client';
import { inTenant } from '../../src/db/tenant-scope.ts';
import { adminApi, createTenant, startTestApp, type TestApp, type TestTenant, webClient } from '../helpers/app.ts';
import { authorizationUrl, discover, type RegisteredClient, signIn } from '../helpers/oidc.ts';

let t: TestApp;
let a: TestTenant;
let b: TestTenant;
let clientA: RegisteredClient;
let clientB: RegisteredClient;

test.before(async () => {
  t = await startTestApp();
  a = await createTenant(t);
  b = await createTenant(t);
  clientA = (await adminApi(t, a, 'POST', '/clients', webClient())).body;
  clientB = (await adminApi(t, b, 'POST', '/clients', webClient())).body;
});
test.after.always(async () => t?.stop());

test('every token type of tenant A is refused at tenant B', async (tt) => {
  const { tokens } = await signIn(t, a, clientA);
  const configB = await discover(b, clientB);
  // Access, refresh and ID tokens of A: inactive at B's introspection…
  for (const token of [tokens.access_token, tokens.refresh_token!, tokens.id_token!]) {
    tt.false((await oidc.tokenIntrospection(configB, token)).active);
  }
  // …refused at B's userinfo and token endpoint…
  const userinfo = await fetch(`${b.issuer}/me`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
  tt.is(userinfo.status, 401);
  const refused = await tt.throwsAsync(oidc.refreshTokenGrant(configB, tokens.refresh_token!));
  tt.is((refused as oidc.ResponseBodyError).error, 'invalid_grant');
  // …and at B's Admin API, even when it carries the admin scope.
  tt.is((await adminApi(t, b, 'GET', '/users', undefined, tokens.access_token)).status, 401);
});

test("A's admin-scoped machine token works at A's Admin API and not at B's", async (tt) => {
  const m = (await adminApi(t, a, 'POST', '/clients', { name: 'ops', grant_types: ['client_credentials'], scopes: ['admin'] })).body;
  const tokens = await oidc.clientCredentialsGrant(await discover(a, m), { scope: 'admin' });
  tt.is((await adminApi(t, a, 'GET', '/clients', undefined, tokens.access_token)).status, 200);
  tt.is((await adminApi(t, b, 'GET', '/clients', undefined, tokens.access_token)).status, 401);
});

test('a client of A is unknown at B', async (tt) => {
  const res = await fetch(`${b.issuer}/token`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${Buffer.from(`${clientA.client_id}:${(clientA as { client_secret: string }).client_secret}`).toString('base64')}`,
    },
    body: 'grant_type=client_credentials',
  });
  tt.is(res.status, 401);
  tt.is((await res.json()).error, 'invalid_client');
  const auth = await fetch(
    `${b.issuer}/auth?client_id=${clientA.client_id}&response_type=code&scope=openid&redirect_uri=${encodeURIComponent(clientA.redirect_uris[0]!)}`,
    { redirect: 'manual' },
  );
  tt.is(auth.status, 400);
  tt.is((await adminApi(t, b, 'GET', `/clients/${clientA.client_id}`)).status, 404);
});

test("A's admin API key is refused at B, and B's users are not visible from A", async (tt) => {
  const res = await adminApi(t, b, 'GET', '/users', undefined, a.adminKey);
  tt.is(res.status, 401);
  tt.regex(res.type, /problem\+json/);
  const userB = (await adminApi(t, b, 'POST', '/users', { email: 'only-b@x.test' })).body;
  tt.is((await adminApi(t, a, 'GET', `/users/${userB.id}`)).status, 404);
  tt.is((await adminApi(t, a, 'PATCH', `/users/${userB.id}`, { name: 'x' })).status, 404);
  tt.is((await adminApi(t, a, 'DELETE', `/users/${userB.id}`)).status, 404);
  tt.is((await adminApi(t, a, 'GET', '/users?email=only-b@x.test')).body.data.length, 0);
});

test('row-level security: a tenant-scoped query that forgets its tenant filter sees only that tenant', async (tt) => {
  const { db } = t.app.connection;
  await adminApi(t, a, 'POST', '/users', { email: 'rls-a@x.test' });
  await adminApi(t, b, 'POST', '/users', { email: 'rls-b@x.test' });
  // Deliberately no WHERE tenant_id: only RLS stands between A and B's rows.
  const seenFromA = await inTenant(db, a.id, (tx) => tx.selectFrom('users').select(['tenant_id', 'email']).execute());
  tt.true(seenFromA.length > 0);
  tt.true(seenFromA.every((u) => u.tenant_id === a.id));
  const keysFromA = await inTenant(db, a.id, (tx) => tx.selectFrom('signing_keys').select('tenant_id').execute());
  tt.true(keysFromA.every((k) => k.tenant_id === a.id));
  // The transaction really runs as the unprivileged role (superusers would bypass RLS).
  const who = await inTenant(db, a.id, (tx) => sql<{ u: string; su: string }>`select current_user as u, current_setting('is_superuser') as su`.execute(tx));
  tt.is(who.rows[0]!.u, 'tessera_app');
  tt.is(who.rows[0]!.su, 'off');
  // Writing a row for another tenant is refused by the policy's WITH CHECK.
  await tt.throwsAsync(
    inTenant(db, a.id, (tx) =>
      tx
        .insertInto('users')
        .values({
          tenant_id: b.id,
          email: 'sneaky@x.test',
          email_key: 'sneaky@x.test',
          last_login_at: null,
          name: null,
          given_name: null,
          family_name: null,
          password_hash: null,
        })
        .execute(),
    ),
    { message: /row-level security/ },
  );
});

test('row-level security: with no tenant set, the app role sees nothing at all', async (tt) => {
  const { db } = t.app.connection;
  const rows = await db.transaction().execute(async (tx) => {
    await sql`set local role tessera_app`.execute(tx);
    return tx.selectFrom('users').select('email').execute();
  });
  tt.is(rows.length, 0);
});

test("A's session cookie means nothing at B: B asks to sign in", async (tt) => {
  const { browser } = await signIn(t, a, clientA);
  const configB = await discover(b, clientB);
  const url = await authorizationUrl(configB, clientB);
  const hop = await browser.follow(url);
  tt.regex(await hop.res.text(), /Sign in to/);
});
