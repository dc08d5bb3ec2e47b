import test from 'ava';
import { type JWTPayload, jwtVerify } from 'jose';
import * as oidc from 'openid-client';
import type { ClaimsFormat } from '../../src/oidc/claims-format.ts';
import { adminApi, createTenant, startTestApp, type TestApp, type TestTenant, webClient } from '../helpers/app.ts';
import { Browser } from '../helpers/browser.ts';
import { type RegisteredClient, remoteJwks, signIn } from '../helpers/oidc.ts';

let t: TestApp;
let tenant: TestTenant;
let other: TestTenant;
let adminId: string;
let acme: { id: string; slug: string; name: string };
let globex: { id: string; slug: string; name: string };
let outsiders: { id: string };

const api = (method: string, path: string, body?: unknown) => adminApi(t, tenant, method, path, body);
type Claims = JWTPayload & Record<string, any>;

test.before(async () => {
  t = await startTestApp();
  tenant = await createTenant(t);
  other = await createTenant(t);
  adminId = (await api('GET', `/users?email=${encodeURIComponent(tenant.adminEmail)}`)).body.data[0].id;
  acme = (await api('POST', '/organizations', { name: 'Acme', slug: 'acme' })).body;
  globex = (await api('POST', '/organizations', { name: 'Globex', slug: 'globex' })).body;
  outsiders = (await api('POST', '/organizations', { name: 'Outsiders', slug: 'outsiders' })).body;
  await api('POST', `/organizations/${acme.id}/roles`, { name: 'accountant', permissions: ['invoices:read'] });
  await api('POST', `/organizations/${acme.id}/members`, { user_id: adminId, roles: ['owner', 'accountant'] });
  await api('POST', `/organizations/${globex.id}/members`, { user_id: adminId, role: 'member' });
  // A suspended organization the person is in: absent from every format, as from Tessera's own.
  const frozen = (await api('POST', '/organizations', { name: 'Frozen', slug: 'frozen', status: 'suspended' })).body;
  await api('POST', `/organizations/${frozen.id}/members`, { user_id: adminId, role: 'owner' });
});
test.after.always(async () => t?.stop());

async function verify(token: string): Promise<Claims> {
  const { payload } = await jwtVerify(token, remoteJwks(`${tenant.issuer}/jwks`), { issuer: tenant.issuer });
  return payload as Claims;
}

async function clientWith(format: ClaimsFormat | undefined, n: number): Promise<RegisteredClient & { claims_format: string }> {
  const res = await api('POST', '/clients', webClient(`http://localhost:8080/cb-${n}`, format ? { claims_format: format } : {}));
  if (res.status !== 201) throw new Error(`client not created: ${res.status} ${res.text}`);
  return res.body;
}

/** The three places a claim goes: ID token, access token (JWT) and userinfo. */
async function everyPlace(client: RegisteredClient, browser: Browser, params?: Record<string, string>) {
  const { tokens, config } = await signIn(t, tenant, client, { scope: 'openid profile organizations', browser, ...(params ? { params } : {}) });
  const idToken = tokens.claims() as Claims;
  const accessToken = await verify(tokens.access_token);
  const userinfo = (await oidc.fetchUserInfo(config, tokens.access_token, idToken.sub!)) as Claims;
  return { 'ID token': idToken, 'access token': accessToken, userinfo };
}

/** What each format's membership list is for this person (Acme: accountant + owner; Globex: member). */
const expected = (): Record<ClaimsFormat, Record<string, unknown>> => ({
  tessera: {
    organizations: [
      { id: acme.id, slug: 'acme', name: 'Acme', roles: ['accountant', 'owner'] },
      { id: globex.id, slug: 'globex', name: 'Globex', roles: ['member'] },
    ],
  },
  flat: { org_ids: [acme.id, globex.id], org_slugs: ['acme', 'globex'], org_roles_by_org: ['acme:accountant', 'acme:owner', 'globex:member'] },
  keycloak: { organization: ['acme', 'globex'] },
  auth0: {},
  logto: { organizations: [acme.id, globex.id], organization_roles: [`${acme.id}:accountant`, `${acme.id}:owner`, `${globex.id}:member`] },
});
const LIST_CLAIMS = ['organizations', 'org_ids', 'org_slugs', 'org_roles_by_org', 'organization', 'organization_roles'];

for (const [n, format] of (['tessera', 'flat', 'keycloak', 'auth0', 'logto'] as const).entries()) {
  test(`${format}: the membership list in ID token, access token and userinfo has the documented shape, and nothing else`, async (tt) => {
    const client = await clientWith(format, n);
    tt.is(client.claims_format, format);
    const places = await everyPlace(client, new Browser(t.url));
    for (const [where, claims] of Object.entries(places)) {
      const list = Object.fromEntries(LIST_CLAIMS.filter((c) => c in claims).map((c) => [c, claims[c]]));
      tt.deepEqual(list, expected()[format], `${format} ${where}`);
      tt.is(claims.org_id, undefined, `${where}: not org-scoped without an organization`);
      tt.is(claims.org_name, undefined, `${where}: no org_name without an organization`);
      tt.false(JSON.stringify(claims).includes(outsiders.id), `${where}: never an organization the person is not in`);
      tt.false(JSON.stringify(claims).includes('frozen'), `${where}: never a suspended organization`);
    }
  });

  test(`${format}: an org-scoped token carries the same org claims in every format (auth0 adds org_name, the slug)`, async (tt) => {
    const client = await clientWith(format, 10 + n);
    const places = await everyPlace(client, new Browser(t.url), { organization: 'acme' });
    for (const [where, claims] of Object.entries(places)) {
      if (where === 'userinfo') continue; // userinfo answers who the person is, not the token's organization
      tt.is(claims.org_id, acme.id, where);
      tt.is(claims.org_slug, 'acme', where);
      tt.deepEqual(claims.org_roles, ['accountant', 'owner'], where);
      tt.deepEqual(claims.org_permissions, ['invoices:read'], where);
      tt.is(claims.org_name, format === 'auth0' ? 'acme' : undefined, `${where}: auth0's org_name is the unique lowercase slug, not the display name Acme`);
    }
  });
}

test('a format never opens an organization: a non-member asking for one is refused in every format', async (tt) => {
  const client = await clientWith('flat', 20);
  const err = await tt.throwsAsync(signIn(t, tenant, client, { params: { organization: outsiders.id } }));
  tt.is((err as oidc.AuthorizationResponseError).error, 'access_denied');
});

test('claims_format: default tessera, shown by GET and list; a PATCH applies to the next token', async (tt) => {
  const client = await clientWith(undefined, 30);
  tt.is(client.claims_format, 'tessera');
  tt.is((await api('GET', `/clients/${client.client_id}`)).body.claims_format, 'tessera');
  const browser = new Browser(t.url);
  tt.truthy((await everyPlace(client, browser))['ID token'].organizations);

  const patched = await api('PATCH', `/clients/${client.client_id}`, { claims_format: 'flat' });
  tt.is(patched.status, 200);
  tt.is(patched.body.claims_format, 'flat');
  tt.deepEqual(patched.body.redirect_uris, ['http://localhost:8080/cb-30'], 'other fields keep their value');
  const listed = (await api('GET', '/clients?limit=200')).body.data.find((c: { client_id: string }) => c.client_id === client.client_id);
  tt.is(listed.claims_format, 'flat');
  const after = await everyPlace(client, browser);
  for (const [where, claims] of Object.entries(after)) {
    tt.is(claims.organizations, undefined, where);
    tt.deepEqual(claims.org_roles_by_org, ['acme:accountant', 'acme:owner', 'globex:member'], where);
  }
});

test('bad claims_format: 422 naming the allowed formats; another tenant cannot change the client', async (tt) => {
  const client = await clientWith('flat', 40);
  for (const bad of ['saml', 'TESSERA', '', null, 5, ['flat'], { format: 'flat' }]) {
    for (const [method, path, body] of [
      ['POST', '/clients', webClient('http://localhost:8080/bad', { claims_format: bad })],
      ['PATCH', `/clients/${client.client_id}`, { claims_format: bad }],
    ] as const) {
      const res = await api(method, path, body);
      tt.is(res.status, 422, `${method} ${JSON.stringify(bad)}`);
      tt.regex(res.type, /application\/problem\+json/);
      const error = res.body.errors.find((e: { field: string }) => e.field === 'claims_format');
      tt.truthy(error, `${method} ${JSON.stringify(bad)} names the field`);
      tt.regex(error.message, /tessera, flat, keycloak, auth0, logto/);
    }
  }
  tt.is((await api('GET', `/clients/${client.client_id}`)).body.claims_format, 'flat', 'unchanged by refused requests');
  const foreign = await adminApi(t, other, 'PATCH', `/clients/${client.client_id}`, { claims_format: 'tessera' });
  tt.is(foreign.status, 404);
  tt.is((await api('GET', `/clients/${client.client_id}`)).body.claims_format, 'flat');
});

test('a change of claims_format is in the tenant audit log with who made it; an unchanged one is not', async (tt) => {
  const client = await clientWith('tessera', 50);
  const audit = async () =>
    ((await api('GET', '/audit-log?limit=200')).body.data as Array<Record<string, any>>).filter(
      (e) => e.action === 'client.claims_format.updated' && e.target.id === client.client_id,
    );
  await api('PATCH', `/clients/${client.client_id}`, { claims_format: 'logto' });
  await api('PATCH', `/clients/${client.client_id}`, { claims_format: 'logto', name: 'Renamed' });
  const entries = await audit();
  tt.is(entries.length, 1);
  tt.like(entries[0], {
    actor: { type: 'api_key' },
    target: { type: 'client', id: client.client_id },
    before: { claims_format: 'tessera' },
    after: { claims_format: 'logto' },
  });
});

test('refresh: the new access token keeps the format; switching to an organization adds auth0 org_name', async (tt) => {
  for (const [n, format] of (['flat', 'auth0'] as const).entries()) {
    const client = await clientWith(format, 60 + n);
    const { tokens, config } = await signIn(t, tenant, client, { scope: 'openid organizations offline_access', params: { prompt: 'consent' } });
    const first = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
    const refreshed = await verify(first.access_token);
    tt.deepEqual(Object.fromEntries(LIST_CLAIMS.filter((c) => c in refreshed).map((c) => [c, refreshed[c]])), expected()[format], `${format} after refresh`);
    const switched = await verify((await oidc.refreshTokenGrant(config, first.refresh_token!, { organization: globex.id })).access_token);
    tt.is(switched.org_id, globex.id);
    tt.deepEqual(switched.org_roles, ['member']);
    tt.is(switched.org_name, format === 'auth0' ? 'globex' : undefined, format);
  }
});

test('a machine client acting for an organization: the same org claims, auth0 adds org_name', async (tt) => {
  for (const format of ['tessera', 'auth0'] as const) {
    const m = (
      await api('POST', '/clients', {
        name: `sync ${format}`,
        grant_types: ['client_credentials'],
        scopes: ['openid'],
        organization_ids: [acme.id],
        claims_format: format,
      })
    ).body;
    const config = await oidc.discovery(new URL(tenant.issuer), m.client_id, m.client_secret, undefined, { execute: [oidc.allowInsecureRequests] });
    const claims = await verify((await oidc.clientCredentialsGrant(config, { organization: acme.id })).access_token);
    tt.like(claims, { org_id: acme.id, org_slug: 'acme', org_roles: [], sub: m.client_id });
    tt.is(claims.org_name, format === 'auth0' ? 'acme' : undefined, format);
    tt.is((await verify((await oidc.clientCredentialsGrant(config)).access_token)).org_name, undefined, `${format}: none without an organization`);
  }
});

test("past the tenant's cap, each claim of the format points at userinfo, which answers in the format", async (tt) => {
  // Another tenant, so that the cap applies to no other test of this file.
  const api2 = (method: string, path: string, body?: unknown) => adminApi(t, other, method, path, body);
  tt.is((await api2('PATCH', '/settings', { organizations_claim_cap: 1 })).status, 200);
  const me = (await api2('GET', `/users?email=${encodeURIComponent(other.adminEmail)}`)).body.data[0].id;
  for (const slug of ['one', 'two']) {
    const org = (await api2('POST', '/organizations', { name: slug, slug })).body;
    await api2('POST', `/organizations/${org.id}/members`, { user_id: me, role: 'member' });
  }
  const client = (await api2('POST', '/clients', webClient('http://localhost:8080/cap', { claims_format: 'flat' }))).body;
  const { tokens, config } = await signIn(t, other, client, { scope: 'openid organizations' });
  for (const claims of [tokens.claims() as Claims, (await jwtVerify(tokens.access_token, remoteJwks(`${other.issuer}/jwks`))).payload as Claims]) {
    tt.is(claims.org_roles_by_org, undefined);
    tt.deepEqual(claims._claim_names, { org_ids: 'tessera_userinfo', org_slugs: 'tessera_userinfo', org_roles_by_org: 'tessera_userinfo' });
    tt.is(claims._claim_sources.tessera_userinfo.endpoint, `${other.issuer}/me`);
  }
  const info = await oidc.fetchUserInfo(config, tokens.access_token, tokens.claims()!.sub);
  tt.deepEqual(info.org_roles_by_org, ['one:member', 'two:member']);
});
