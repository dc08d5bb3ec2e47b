import test from 'ava';
import { jwtVerify } from 'jose';
import * as oidc from 'openid-client';
import { adminApi, createTenant, startTestApp, type TestApp, webClient } from '../helpers/app.ts';
import { discover, remoteJwks, signIn } from '../helpers/oidc.ts';

// Smoke test of the embedded default: the same migrations and SQL on PGlite.
let t: TestApp;
test.before(async () => {
  t = await startTestApp({ embedded: true });
});
test.after.always(async () => t?.stop());

test('embedded PGlite: sign-in, refresh, userinfo and client credentials work', async (tt) => {
  tt.is(t.app.connection.kind, 'embedded');
  const tenant = await createTenant(t);
  const client = (await adminApi(t, tenant, 'POST', '/clients', webClient())).body;
  const { tokens, config } = await signIn(t, tenant, client);
  const { payload } = await jwtVerify(tokens.access_token, remoteJwks(`${tenant.issuer}/jwks`), { issuer: tenant.issuer });
  tt.is(payload.client_id, client.client_id);
  const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
  tt.is((await oidc.fetchUserInfo(config, refreshed.access_token, tokens.claims()!.sub)).email, tenant.adminEmail);
  const machine = (await adminApi(t, tenant, 'POST', '/clients', { name: 'm', grant_types: ['client_credentials'], scopes: ['admin'] })).body;
  const cc = await oidc.clientCredentialsGrant(await discover(tenant, machine), { scope: 'admin' });
  tt.is((await adminApi(t, tenant, 'GET', '/users', undefined, cc.access_token)).status, 200);
});

test('embedded PGlite: row-level security binds here too', async (tt) => {
  const a = await createTenant(t);
  const b = await createTenant(t);
  const { inTenant } = await import('../../src/db/tenant-scope.ts');
  const rows = await inTenant(t.app.connection.db, a.id, (tx) => tx.selectFrom('users').select('tenant_id').execute());
  tt.true(rows.length > 0);
  tt.true(rows.every((r) => r.tenant_id === a.id));
  tt.not(a.id, b.id);
});
