import test from 'ava';
import { decodeJwt, type JWTPayload, jwtVerify } from 'jose';
import { sql } from 'kysely';
import * as oidc from 'openid-client';
import { adminApi, createTenant, startTestApp, type TestApp, type TestTenant, webClient } from '../helpers/app.ts';
import { discover, type RegisteredClient, remoteJwks, signIn } from '../helpers/oidc.ts';

let t: TestApp;
let tenant: TestTenant;
let other: TestTenant;
let client: RegisteredClient;
let adminId: string;
let acme: { id: string; slug: string; name: string };
let globex: { id: string; slug: string; name: string };
let foreignOrg: string;

const api = (method: string, path: string, body?: unknown) => adminApi(t, tenant, method, path, body);
const claimsOf = (jwt: string) => decodeJwt(jwt) as JWTPayload & Record<string, any>;

test.before(async () => {
  t = await startTestApp();
  tenant = await createTenant(t);
  other = await createTenant(t);
  client = (await api('POST', '/clients', webClient())).body;
  adminId = (await api('GET', `/users?email=${encodeURIComponent(tenant.adminEmail)}`)).body.data[0].id;
  acme = (await api('POST', '/organizations', { name: 'Acme', slug: 'acme' })).body;
  globex = (await api('POST', '/organizations', { name: 'Globex', slug: 'globex' })).body;
  await api('POST', `/organizations/${acme.id}/roles`, { name: 'accountant', permissions: ['invoices:read', 'invoices:write'] });
  await api('POST', `/organizations/${acme.id}/members`, { user_id: adminId, roles: ['owner', 'accountant'] });
  await api('POST', `/organizations/${globex.id}/members`, { user_id: adminId, role: 'member' });
  foreignOrg = (await adminApi(t, other, 'POST', '/organizations', { name: 'Elsewhere' })).body.id;
});
test.after.always(async () => t?.stop());

async function verify(token: string) {
  const { payload } = await jwtVerify(token, remoteJwks(`${tenant.issuer}/jwks`), { issuer: tenant.issuer });
  return payload as JWTPayload & Record<string, any>;
}

test('scope organizations: ID token, access token and userinfo list every active membership with roles', async (tt) => {
  const { tokens, config } = await signIn(t, tenant, client, { scope: 'openid profile organizations' });
  const expected = [
    { id: acme.id, slug: 'acme', name: 'Acme', roles: ['accountant', 'owner'] },
    { id: globex.id, slug: 'globex', name: 'Globex', roles: ['member'] },
  ];
  tt.deepEqual(tokens.claims()!.organizations, expected);
  const at = await verify(tokens.access_token);
  tt.deepEqual(at.organizations, expected);
  tt.is(at.org_id, undefined, 'not org-scoped without an organization');
  const info = await oidc.fetchUserInfo(config, tokens.access_token, tokens.claims()!.sub);
  tt.deepEqual(info.organizations, expected);
  const without = await signIn(t, tenant, client, { scope: 'openid profile' });
  tt.is(without.tokens.claims()!.organizations, undefined, 'only with the organizations scope');
});

test('organization=<id>, =<slug> or scope organization:<slug> give org-scoped tokens', async (tt) => {
  for (const params of [{ organization: acme.id }, { organization: 'acme' }, { scope: 'openid organization:acme' }] as Array<Record<string, string>>) {
    const { tokens } = await signIn(t, tenant, client, { params, ...(params.scope ? { scope: params.scope } : {}) });
    for (const claims of [tokens.claims()!, await verify(tokens.access_token)]) {
      tt.is(claims.org_id, acme.id);
      tt.is(claims.org_slug, 'acme');
      tt.deepEqual(claims.org_roles, ['accountant', 'owner']);
      tt.deepEqual(claims.org_permissions, ['invoices:read', 'invoices:write']);
    }
  }
});

test('not a member, unknown, foreign, malformed or suspended organization: an OAuth error, never a token', async (tt) => {
  const outsider = (await api('POST', '/organizations', { name: 'Outsiders' })).body;
  // Suspended from the start: the tests of this file run at once, and one that lists the
  // admin's organizations must never see it active for a moment.
  const suspended = (await api('POST', '/organizations', { name: 'Frozen', status: 'suspended' })).body;
  tt.is((await api('POST', `/organizations/${suspended.id}/members`, { user_id: adminId })).status, 201);
  for (const organization of [outsider.id, 'no-such-org', foreignOrg, '../../etc', 'x'.repeat(300), suspended.id]) {
    const err = await tt.throwsAsync(signIn(t, tenant, client, { params: { organization } }));
    tt.is((err as oidc.AuthorizationResponseError).error, 'access_denied', organization);
    tt.regex(String((err as oidc.AuthorizationResponseError).error_description), organization === suspended.id ? /suspended/ : /not a member/);
  }
});

test("organization_usage: 'require' shows the picker; 'deny' refuses an organization", async (tt) => {
  const req = (await api('POST', '/clients', { ...webClient('http://localhost:8080/req'), organization_usage: 'require' })).body;
  tt.is(req.organization_usage, 'require');
  const { tokens } = await signIn(t, tenant, req, { pick: globex.id });
  tt.is(tokens.claims()!.org_id, globex.id);
  tt.deepEqual((await verify(tokens.access_token)).org_roles, ['member']);
  // A named organization skips the picker.
  const named = await signIn(t, tenant, req, { params: { organization: 'acme' } });
  tt.is(named.tokens.claims()!.org_id, acme.id);

  const deny = (await api('POST', '/clients', { ...webClient('http://localhost:8080/deny'), organization_usage: 'deny' })).body;
  const err = await tt.throwsAsync(signIn(t, tenant, deny, { params: { organization: 'acme' } }));
  tt.is((err as oidc.AuthorizationResponseError).error, 'invalid_request');
  const plain = await signIn(t, tenant, deny);
  tt.is(plain.tokens.claims()!.org_id, undefined);
});

test("organization_usage 'deny': no organization or team through refresh or the switch API either, and none once a client becomes deny", async (tt) => {
  const deny = (await api('POST', '/clients', { ...webClient('http://localhost:8080/deny-refresh'), organization_usage: 'deny' })).body;
  const team = (await api('POST', `/organizations/${acme.id}/teams`, { name: 'Deny Crew' })).body;
  tt.is((await api('POST', `/organizations/${acme.id}/teams/${team.id}/members`, { user_id: adminId })).status, 201);
  const { tokens, config } = await signIn(t, tenant, deny, { scope: 'openid organizations offline_access' });
  tt.truthy(tokens.refresh_token);
  for (const params of [{ organization: acme.id }, { organization: 'acme' }, { organization: acme.id, team: team.id }, { team: team.id }] as Array<
    Record<string, string>
  >) {
    const err = await tt.throwsAsync(oidc.refreshTokenGrant(config, tokens.refresh_token!, params));
    tt.is((err as oidc.ResponseBodyError).error, 'invalid_request', JSON.stringify(params));
    tt.is((err as oidc.ResponseBodyError).error_description, 'this client does not use organizations; leave out the organization and team parameters');
  }
  // The refusals did not spend the refresh token, and it still works without an organization.
  const plain = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
  tt.is((await verify(plain.access_token)).org_id, undefined);

  // The switch API with the deny client's access token: a problem saying so; the sign-in stays out of organizations.
  const switchTo = (orgId: string, body?: unknown) =>
    fetch(`${t.url}/t/${tenant.slug}/api/v1/me/organizations/${orgId}/switch`, {
      method: 'POST',
      headers: { authorization: `Bearer ${plain.access_token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
  for (const res of [await switchTo(acme.id), await switchTo(acme.id, { team: team.id })]) {
    tt.is(res.status, 403);
    tt.is(res.headers.get('content-type'), 'application/problem+json');
    tt.regex((await res.json()).detail, /does not use organizations/);
  }
  const after = await oidc.refreshTokenGrant(config, plain.refresh_token!);
  tt.is((await verify(after.access_token)).org_id, undefined);
  tt.is(after.claims()!.org_id, undefined);

  // A client that worked in an organization and is then set to deny: its sign-ins' next tokens have none.
  const was = (await api('POST', '/clients', { ...webClient('http://localhost:8080/becomes-deny') })).body;
  const s = await signIn(t, tenant, was, { params: { organization: acme.id } });
  tt.is((await verify(s.tokens.access_token)).org_id, acme.id);
  tt.is((await api('PATCH', `/clients/${was.client_id}`, { organization_usage: 'deny' })).status, 200);
  const refreshed = await oidc.refreshTokenGrant(s.config, s.tokens.refresh_token!);
  tt.is((await verify(refreshed.access_token)).org_id, undefined);
  tt.is(refreshed.claims()!.org_id, undefined);
});

test('switching by refresh_token grant with organization=<id>; refresh keeps it; refusals are OAuth errors', async (tt) => {
  const { tokens, config } = await signIn(t, tenant, client, { params: { organization: acme.id } });
  const switched = await oidc.refreshTokenGrant(config, tokens.refresh_token!, { organization: globex.id });
  tt.is((await verify(switched.access_token)).org_id, globex.id);
  tt.is(switched.claims()!.org_id, globex.id, 'the ID token of the refresh switches too');
  tt.deepEqual((await verify(switched.access_token)).org_roles, ['member']);
  const kept = await oidc.refreshTokenGrant(config, switched.refresh_token!);
  tt.is((await verify(kept.access_token)).org_id, globex.id);
  for (const organization of [foreignOrg, 'nope', '']) {
    const err = await tt.throwsAsync(oidc.refreshTokenGrant(config, kept.refresh_token!, { organization }));
    tt.is((err as oidc.ResponseBodyError).error, 'invalid_target', organization);
  }
  // The refusals did not spend the refresh token.
  tt.truthy((await oidc.refreshTokenGrant(config, kept.refresh_token!)).access_token);
});

test('switching with POST /api/v1/me/organizations/{orgId}/switch, and listing memberships', async (tt) => {
  const { tokens } = await signIn(t, tenant, client, { params: { organization: acme.id }, scope: 'openid organizations' });
  const me = (path: string, method = 'GET', token = tokens.access_token) =>
    fetch(`${t.url}/t/${tenant.slug}/api/v1/me${path}`, { method, headers: { authorization: `Bearer ${token}` } });
  const list = await (await me('/organizations')).json();
  tt.deepEqual(
    // (Other tests of this file add memberships concurrently; these two are this test's.)
    list.data
      .filter((o: any) => ['acme', 'globex'].includes(o.slug))
      .map((o: any) => [o.slug, o.roles, o.current])
      .sort(),
    [
      ['acme', ['accountant', 'owner'], true],
      ['globex', ['member'], false],
    ],
  );
  tt.true(list.data.every((o: any) => ['active', 'trialing', 'pending', 'suspended'].includes(o.status)));
  const res = await me(`/organizations/${globex.id}/switch`, 'POST');
  tt.is(res.status, 200);
  const body = await res.json();
  const claims = await verify(body.new_token);
  tt.is(claims.org_id, globex.id);
  tt.is(claims.sub, adminId);
  tt.is(claims.client_id, client.client_id);
  tt.is(body.org_id, globex.id);
  const config = await discover(tenant, client);
  tt.true((await oidc.tokenIntrospection(config, body.new_token)).active);
  tt.is((await me(`/organizations/${foreignOrg}/switch`, 'POST')).status, 404);
  tt.is((await me('/organizations/not-an-id/switch', 'POST')).status, 404);
  tt.is((await me('/organizations', 'GET', 'garbage')).status, 401);
});

test('removal, role changes, role deletion, suspension and deletion: tokens follow', async (tt) => {
  const org = (await api('POST', '/organizations', { name: 'Churn' })).body;
  const u = (await api('POST', '/users', { email: 'churn@x.test', password: 'churn baby churn', email_verified: true })).body;
  await api('POST', `/organizations/${org.id}/members`, { user_id: u.id, role: 'member' });
  const login = () => signIn(t, tenant, client, { email: 'churn@x.test', password: 'churn baby churn', params: { organization: org.id } });

  // Role change: the next refresh reflects it.
  let s = await login();
  await api('PATCH', `/organizations/${org.id}/members/${u.id}`, { role: 'admin' });
  tt.deepEqual((await verify((await oidc.refreshTokenGrant(s.config, s.tokens.refresh_token!)).access_token)).org_roles, ['admin']);

  // Role deleted (force): sign-ins of its holders end.
  await api('POST', `/organizations/${org.id}/roles`, { name: 'temp' });
  await api('PATCH', `/organizations/${org.id}/members/${u.id}`, { roles: ['member', 'temp'] });
  s = await login();
  const roleId = (await api('GET', `/organizations/${org.id}/roles`)).body.data.find((r: any) => r.name === 'temp').id;
  await api('DELETE', `/organizations/${org.id}/roles/${roleId}?force=true`);
  await tt.throwsAsync(oidc.refreshTokenGrant(s.config, s.tokens.refresh_token!));
  tt.false((await oidc.tokenIntrospection(s.config, s.tokens.access_token)).active);

  // Removed from the organization: refresh fails, access token inactive.
  s = await login();
  await api('DELETE', `/organizations/${org.id}/members/${u.id}`);
  await tt.throwsAsync(oidc.refreshTokenGrant(s.config, s.tokens.refresh_token!));
  tt.false((await oidc.tokenIntrospection(s.config, s.tokens.access_token)).active);

  // Suspended, then deleted.
  await api('POST', `/organizations/${org.id}/members`, { user_id: u.id });
  s = await login();
  await api('PATCH', `/organizations/${org.id}`, { status: 'suspended' });
  await tt.throwsAsync(oidc.refreshTokenGrant(s.config, s.tokens.refresh_token!));
  tt.false((await oidc.tokenIntrospection(s.config, s.tokens.access_token)).active);
  await api('PATCH', `/organizations/${org.id}`, { status: 'active' });
  s = await login();
  await api('DELETE', `/organizations/${org.id}`);
  await tt.throwsAsync(oidc.refreshTokenGrant(s.config, s.tokens.refresh_token!));
  tt.false((await oidc.tokenIntrospection(s.config, s.tokens.access_token)).active);

  // A sign-in without an organization loses it from its organizations claim at the next refresh.
  const org2 = (await api('POST', '/organizations', { name: 'Leaving' })).body;
  await api('POST', `/organizations/${org2.id}/members`, { user_id: u.id });
  const plain = await signIn(t, tenant, client, { email: 'churn@x.test', password: 'churn baby churn', scope: 'openid organizations offline_access' });
  tt.true(claimsOf(plain.tokens.access_token).organizations.some((o: any) => o.id === org2.id));
  await api('DELETE', `/organizations/${org2.id}/members/${u.id}`);
  const next = await oidc.refreshTokenGrant(plain.config, plain.tokens.refresh_token!);
  tt.false(claimsOf(next.access_token).organizations.some((o: any) => o.id === org2.id));
});

test('scoped API tokens: mint, use on /me, introspect, list with last use, revoke; org-scoped ones die with the membership', async (tt) => {
  const u = (await api('POST', '/users', { email: 'bot-owner@x.test', email_verified: true })).body;
  await api('POST', `/organizations/${acme.id}/members`, { user_id: u.id, role: 'billing' });
  const minted = await api('POST', `/users/${u.id}/tokens`, { scopes: ['openid', 'organizations'], expires_in: 3600, org_id: acme.id });
  tt.is(minted.status, 201, minted.text);
  tt.truthy(minted.body.access_token);
  tt.is(minted.body.expires_in, 3600);
  const claims = await verify(minted.body.access_token);
  tt.is(claims.sub, u.id);
  tt.is(claims.org_id, acme.id);
  tt.deepEqual(claims.org_roles, ['billing']);
  const config = await discover(tenant, client);
  tt.true((await oidc.tokenIntrospection(config, minted.body.access_token)).active);
  const me = await fetch(`${t.url}/t/${tenant.slug}/api/v1/me/organizations`, { headers: { authorization: `Bearer ${minted.body.access_token}` } });
  tt.is(me.status, 200);
  const listed = await api('GET', `/users/${u.id}/tokens`);
  const row = listed.body.data.find((x: any) => x.id === minted.body.id);
  tt.truthy(row.last_used_at);
  tt.is(row.status, 'active');
  tt.false(listed.text.includes(minted.body.access_token));
  // An API token can't switch organizations.
  tt.is(
    (
      await fetch(`${t.url}/t/${tenant.slug}/api/v1/me/organizations/${globex.id}/switch`, {
        method: 'POST',
        headers: { authorization: `Bearer ${minted.body.access_token}` },
      })
    ).status,
    403,
  );

  // Dies with the membership.
  await api('DELETE', `/organizations/${acme.id}/members/${u.id}`);
  tt.false((await oidc.tokenIntrospection(config, minted.body.access_token)).active);
  tt.is((await api('GET', `/users/${u.id}/tokens`)).body.data.find((x: any) => x.id === minted.body.id).status, 'revoked');

  // Revocation by the admin.
  const plain = (await api('POST', `/users/${u.id}/tokens`, { scopes: ['openid'], expires_in: 600 })).body;
  tt.true((await oidc.tokenIntrospection(config, plain.access_token)).active);
  tt.is((await api('DELETE', `/users/${u.id}/tokens/${plain.id}`)).status, 204);
  tt.false((await oidc.tokenIntrospection(config, plain.access_token)).active);
  tt.is((await fetch(`${t.url}/t/${tenant.slug}/api/v1/me/organizations`, { headers: { authorization: `Bearer ${plain.access_token}` } })).status, 401);

  // Expired (its stored record ran out): refused like a revoked one.
  const short = (await api('POST', `/users/${u.id}/tokens`, { scopes: ['openid'], expires_in: 60 })).body;
  await sql`update oidc_payloads set expires_at = now() - interval '1 second' where payload->>'jti' = ${claimsOf(short.access_token).jti}`.execute(
    t.app.connection.db,
  );
  tt.false((await oidc.tokenIntrospection(config, short.access_token)).active);
  const expiredUse = await fetch(`${t.url}/t/${tenant.slug}/api/v1/me/organizations`, { headers: { authorization: `Bearer ${short.access_token}` } });
  tt.is(expiredUse.status, 401);
  tt.regex(expiredUse.headers.get('content-type')!, /problem\+json/);

  // Bad input.
  tt.is((await api('POST', `/users/${u.id}/tokens`, { scopes: ['openid'], expires_in: 3600, org_id: acme.id })).status, 422, 'no longer a member');
  tt.is((await api('POST', `/users/${u.id}/tokens`, { scopes: [], expires_in: 3600 })).status, 422);
  tt.is((await api('POST', `/users/${u.id}/tokens`, { scopes: ['openid'], expires_in: 5 })).status, 422);
  tt.is((await api('POST', `/users/${u.id}/tokens`, { scopes: ['root'], expires_in: 600 })).status, 422);
  tt.is((await api('POST', `/users/${u.id}/tokens`, { scopes: ['openid'], expires_in: 600, org_id: foreignOrg })).status, 422);
  tt.is((await api('DELETE', `/users/${u.id}/tokens/00000000-0000-4000-8000-000000000000`)).status, 404);
  tt.is((await api('POST', '/users/00000000-0000-4000-8000-000000000000/tokens', { scopes: ['openid'], expires_in: 600 })).status, 404);
});

test('a machine client granted an organization gets org-scoped client-credentials tokens for it only', async (tt) => {
  const m = (await api('POST', '/clients', { name: 'acme-sync', grant_types: ['client_credentials'], scopes: ['openid'], organization_ids: [acme.id] })).body;
  tt.deepEqual(m.organization_ids, [acme.id]);
  const config = await discover(tenant, m);
  const token = await oidc.clientCredentialsGrant(config, { organization: acme.id });
  const claims = await verify(token.access_token);
  tt.is(claims.org_id, acme.id);
  tt.is(claims.org_slug, 'acme');
  tt.is(claims.sub, m.client_id);
  tt.is((await verify((await oidc.clientCredentialsGrant(config)).access_token)).org_id, undefined);
  // The scope organization:<slug> is the parameter's other spelling: an org-scoped token or a refusal, never a tenant-wide one.
  tt.is((await verify((await oidc.clientCredentialsGrant(config, { scope: 'openid organization:acme' })).access_token)).org_id, acme.id);
  const byScope = await tt.throwsAsync(oidc.clientCredentialsGrant(config, { scope: 'openid organization:globex' }));
  tt.is((byScope as oidc.ResponseBodyError).error, 'invalid_target');
  for (const organization of [globex.id, foreignOrg, 'acme-but-not']) {
    const err = await tt.throwsAsync(oidc.clientCredentialsGrant(config, { organization }));
    tt.is((err as oidc.ResponseBodyError).error, 'invalid_target', organization);
  }
  const bad = await api('POST', '/clients', { name: 'x', grant_types: ['client_credentials'], scopes: ['openid'], organization_ids: [foreignOrg] });
  tt.is(bad.status, 422);
  tt.is(bad.body.errors[0].field, 'organization_ids');
});

test("a machine client's org-scoped tokens are revoked when the organization is suspended, deleted or its trial ends, or the client is no longer granted it", async (tt) => {
  const machine = async (orgIds: string[]) => {
    const m = (await api('POST', '/clients', { name: 'machine', grant_types: ['client_credentials'], scopes: ['openid', 'admin'], organization_ids: orgIds }))
      .body;
    const config = await discover(tenant, m);
    return {
      m,
      config,
      token: async (orgId = orgIds[0]!) => (await oidc.clientCredentialsGrant(config, { organization: orgId, scope: 'admin' })).access_token,
    };
  };
  // Both places a token is checked: introspection, and Tessera's own APIs (here the Admin API, which machine tokens with `admin` may use).
  const works = async (config: oidc.Configuration, token: string) => {
    const active = (await oidc.tokenIntrospection(config, token)).active;
    const status = (await adminApi(t, tenant, 'GET', '/organizations?limit=1', undefined, token)).status;
    tt.is(status, active ? 200 : 401, 'introspection and the API agree');
    return active;
  };
  // Revoked, not hidden: the stored token is gone.
  const stored = async (token: string) => {
    const r = await sql<{ n: number }>`select count(*)::int as n from oidc_payloads
      where tenant_id = ${tenant.id} and model = 'ClientCredentials' and id = ${claimsOf(token).jti as string}`.execute(t.app.connection.db);
    return r.rows[0]!.n === 1;
  };

  // Suspended, then active again: the old token stays inactive; a new one of the same client works,
  // and so does the token of the client's other organization, all along.
  const suspended = (await api('POST', '/organizations', { name: 'Machine Suspended' })).body;
  const bystander = (await api('POST', '/organizations', { name: 'Machine Bystander' })).body;
  const a = await machine([suspended.id, bystander.id]);
  const aToken = await a.token();
  const aOther = await a.token(bystander.id);
  tt.is((await verify(aToken)).org_id, suspended.id);
  tt.is((await verify(aOther)).org_id, bystander.id);
  tt.true(await works(a.config, aToken));
  tt.is((await api('PATCH', `/organizations/${suspended.id}`, { status: 'suspended' })).status, 200);
  tt.false(await works(a.config, aToken));
  tt.false(await stored(aToken));
  tt.true(await works(a.config, aOther));
  tt.is((await api('PATCH', `/organizations/${suspended.id}`, { status: 'active' })).status, 200);
  tt.false(await works(a.config, aToken), 'reactivating the organization does not revive its revoked tokens');
  tt.true(await works(a.config, await a.token()));
  tt.true(await works(a.config, aOther));

  // Deleted.
  const deleted = (await api('POST', '/organizations', { name: 'Machine Deleted' })).body;
  const b = await machine([deleted.id]);
  const bToken = await b.token();
  tt.true(await works(b.config, bToken));
  tt.is((await api('DELETE', `/organizations/${deleted.id}`)).status, 204);
  tt.false(await works(b.config, bToken));
  tt.false(await stored(bToken));

  // No longer among the client's organizations, then put back: the old token stays inactive. The
  // client's token without an organization, and its token of the organization it keeps, are
  // unaffected — as is another client's token of the same organization.
  const ungranted = (await api('POST', '/organizations', { name: 'Machine Ungranted' })).body;
  const kept = (await api('POST', '/organizations', { name: 'Machine Kept' })).body;
  const c = await machine([ungranted.id, kept.id]);
  const cToken = await c.token();
  const cKept = await c.token(kept.id);
  const plain = (await oidc.clientCredentialsGrant(c.config, { scope: 'admin' })).access_token;
  const d = await machine([ungranted.id]);
  const dToken = await d.token();
  tt.true(await works(c.config, cToken));
  tt.is((await api('PATCH', `/clients/${c.m.client_id}`, { organization_ids: [kept.id] })).status, 200);
  tt.false(await works(c.config, cToken));
  tt.false(await stored(cToken));
  tt.true(await works(c.config, plain));
  tt.true(await works(c.config, cKept));
  tt.true(await works(d.config, dToken), "another client's token of the organization is not this client's to lose");
  tt.is((await api('PATCH', `/clients/${c.m.client_id}`, { organization_ids: [ungranted.id, kept.id] })).status, 200);
  tt.false(await works(c.config, cToken), 'granting the organization again does not revive the revoked token');
  tt.true(await works(c.config, await c.token()));

  // The trial job's suspension revokes them too, and only that organization's.
  const ends = new Date(Date.now() + 3_600_000);
  const trial = (await api('POST', '/organizations', { name: 'Machine Trial', status: 'trialing', trial_ends_at: ends.toISOString() })).body;
  const e = await machine([trial.id, bystander.id]);
  const eToken = await e.token();
  const eOther = await e.token(bystander.id);
  tt.true(await works(e.config, eToken));
  await t.app.services.lifecycle.expireTrials(new Date(ends.getTime() + 1000));
  tt.is((await api('GET', `/organizations/${trial.id}`)).body.status, 'suspended');
  tt.false(await works(e.config, eToken));
  tt.false(await stored(eToken));
  tt.true(await works(e.config, eOther));
  tt.is((await api('PATCH', `/organizations/${trial.id}`, { status: 'active' })).status, 200);
  tt.false(await works(e.config, eToken), 'ending the suspension does not revive the token');
});

test('a user in 1,000 organizations: tokens stay small and point to userinfo, which lists all 1,000', async (tt) => {
  const u = (await api('POST', '/users', { email: 'busy@x.test', password: 'so many orgs here', email_verified: true })).body;
  const { db } = t.app.connection;
  await sql`
    with orgs as (
      insert into organizations (tenant_id, name, slug)
      select ${tenant.id}::uuid, 'Bulk ' || g, 'bulk-' || g from generate_series(1, 1000) g
      returning tenant_id, id)
    , roles as (
      insert into org_roles (tenant_id, org_id, name, builtin) select tenant_id, id, 'member', true from orgs returning tenant_id, org_id, id)
    , members as (
      insert into org_members (tenant_id, org_id, user_id) select tenant_id, id, ${u.id}::uuid from orgs returning tenant_id, org_id, user_id)
    insert into org_member_roles (tenant_id, org_id, user_id, role_id)
    select r.tenant_id, r.org_id, ${u.id}::uuid, r.id from roles r`.execute(db);

  const { tokens, config } = await signIn(t, tenant, client, { email: 'busy@x.test', password: 'so many orgs here', scope: 'openid organizations' });
  for (const jwt of [tokens.id_token!, tokens.access_token]) {
    const claims = claimsOf(jwt);
    tt.is(claims.organizations, undefined);
    tt.deepEqual(claims._claim_names, { organizations: 'tessera_userinfo' });
    tt.is(claims._claim_sources.tessera_userinfo.endpoint, `${tenant.issuer}/me`);
    tt.true(jwt.length < 4096, `token is ${jwt.length} bytes`);
  }
  const info = await oidc.fetchUserInfo(config, tokens.access_token, tokens.claims()!.sub);
  tt.is((info.organizations as unknown[]).length, 1000);
});
