import test from 'ava';
import { decodeJwt } from 'jose';
import * as oidc from 'openid-client';
import * as samlify from 'samlify';
import { adminApi, startTestApp, type TestApp, webClient } from '../helpers/app.ts';
import { Browser, enterCredentials } from '../helpers/browser.ts';
import { type RegisteredClient, signIn, startAuthorization } from '../helpers/oidc.ts';
import { TestSamlIdp } from '../helpers/saml-idp.ts';
import { lastRequestOnceItIs, membersOf, scimWorld } from '../helpers/scim.ts';

// What a directory can never do, and what its changes do at once to sign-ins and tokens.

let t: TestApp;
test.before(async () => {
  t = await startTestApp();
});
test.after.always(async () => t?.stop());

const PATCH = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
const user = (userName: string, extra: Record<string, unknown> = {}) => ({
  schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
  userName,
  emails: [{ value: userName, type: 'work', primary: true }],
  active: true,
  ...extra,
});
const deactivate = { schemas: [PATCH], Operations: [{ op: 'replace', path: 'active', value: 'False' }] };

test('deactivation ends org-scoped sign-ins and API tokens at once; a group change shows at the next refresh', async (tt) => {
  const w = await scimWorld(t, { directory: { group_roles: { Admins: 'admin' } } });
  const api = w.api;
  const client: RegisteredClient = (await api('POST', '/clients', webClient())).body;
  // An account that existed (password, verified email on the verified domain): the directory links it.
  const u = (await api('POST', '/users', { email: 'erin@example.com', password: 'erin erin erin erin', email_verified: true })).body;
  const created = await w.scim('POST', '/Users', user('erin@example.com'));
  tt.is(created.status, 201, JSON.stringify(created.body));
  const id = created.body.id;

  const s = await signIn(t, w.tenant, client, { email: 'erin@example.com', password: 'erin erin erin erin', params: { organization: w.orgId } });
  tt.deepEqual(decodeJwt(s.tokens.access_token).org_roles, ['member']);
  const minted = await api('POST', `/users/${u.id}/tokens`, { scopes: ['openid', 'organizations'], expires_in: 3600, org_id: w.orgId });
  tt.is(minted.status, 201, minted.text);
  const me = (token: string) => fetch(`${t.url}/t/${w.tenant.slug}/api/v1/me/organizations`, { headers: { authorization: `Bearer ${token}` } });
  tt.is((await me(minted.body.access_token)).status, 200);

  const group = await w.scim('POST', '/Groups', { displayName: 'Admins', members: [{ value: id }] });
  tt.is(group.status, 201);
  const refreshed = await oidc.refreshTokenGrant(s.config, s.tokens.refresh_token!);
  tt.deepEqual(decodeJwt(refreshed.access_token).org_roles, ['admin'], 'the new role shows at the next refresh');

  const off = await w.scim('PATCH', `/Users/${id}`, deactivate);
  tt.is(off.status, 200, JSON.stringify(off.body));
  tt.false(off.body.active, 'Entra\'s "False" string is read as false');
  await tt.throwsAsync(oidc.refreshTokenGrant(s.config, refreshed.refresh_token!), undefined, 'the org-scoped refresh token died with the membership');
  tt.is((await me(minted.body.access_token)).status, 401, "the org's API token died with the membership");
  const account = (await api('GET', `/users/${u.id}`)).body;
  tt.false(account.disabled, 'an account the directory did not make is never disabled by it');

  // Reactivation brings the membership back with the group's role.
  const on = await w.scim('PATCH', `/Users/${id}`, { schemas: [PATCH], Operations: [{ op: 'Replace', path: 'active', value: 'True' }] });
  tt.true(on.body.active);
  tt.deepEqual(await membersOf(w), { 'erin@example.com': ['admin'] });
});

test('a directory never takes over an account its SSO could not sign in to, nor creates one off its verified domains', async (tt) => {
  const w = await scimWorld(t);
  const api = w.api;
  // The tenant administrator's own account (example.com is the org's verified domain here).
  await api('POST', '/users', { email: 'root@example.com', password: 'root root root root', email_verified: true, tenant_admin: true });
  const admin = await w.scim('POST', '/Users', user('root@example.com'));
  tt.is(admin.status, 409);
  tt.regex(admin.body.detail, /tenant administrator/);
  tt.deepEqual(admin.body.schemas, ['urn:ietf:params:scim:api:messages:2.0:Error']);

  await api('POST', '/users', { email: 'unverified@example.com', password: 'some password here' });
  const unverified = await w.scim('POST', '/Users', user('unverified@example.com'));
  tt.is(unverified.status, 409);
  tt.regex(unverified.body.detail, /never verified/);

  await api('POST', '/users', { email: 'someone@gmail.test', password: 'some password here', email_verified: true });
  const foreign = await w.scim('POST', '/Users', user('someone@gmail.test'));
  tt.is(foreign.status, 400, 'an existing account off the verified domains: the same answer as for no account');
  tt.regex(foreign.body.detail, /gmail\.test is not a verified domain of the organization/);
  const fresh = await w.scim('POST', '/Users', user('new@elsewhere.test'));
  tt.is(fresh.status, 400);
  tt.is(fresh.body.scimType, 'invalidValue');
  tt.regex(fresh.body.detail, /elsewhere\.test is not a verified domain of the organization/);
  tt.is((await api('GET', '/users?email=new@elsewhere.test')).body.data.length, 0, 'no account was made');

  // A created account may not move onto another account's address.
  const mine = (await w.scim('POST', '/Users', user('fay@example.com'))).body.id;
  const moved = await w.scim('PATCH', `/Users/${mine}`, {
    schemas: [PATCH],
    Operations: [{ op: 'replace', path: 'emails[type eq "work"].value', value: 'root@example.com' }],
  });
  tt.is(moved.status, 409);
  tt.deepEqual(await membersOf(w), { 'fay@example.com': ['member'] });
});

test('the last owner is never removed by the directory, and owner is never granted', async (tt) => {
  const w = await scimWorld(t, { directory: { group_roles: { Admins: 'admin' } } });
  const id = (await w.scim('POST', '/Users', user('gus@example.com'))).body.id;
  const account = (await w.api('GET', '/users?email=gus@example.com')).body.data[0];
  // The tenant makes Gus the owner (configuration can't).
  tt.is((await w.api('PATCH', `/organizations/${w.orgId}/members/${account.id}`, { roles: ['owner'] })).status, 200);
  await w.scim('POST', '/Groups', { displayName: 'Admins', members: [{ value: id }] });
  tt.deepEqual((await membersOf(w))['gus@example.com'], ['admin', 'owner'], 'an owner keeps owner beside the mapped roles');
  const off = await w.scim('PATCH', `/Users/${id}`, deactivate);
  tt.is(off.status, 409);
  tt.regex(off.body.detail, /last owner/);
  tt.true((await w.scim('GET', `/Users/${id}`)).body.active, 'nothing changed');
  const del = await w.scim('DELETE', `/Users/${id}`);
  tt.is(del.status, 409);
  const last = await lastRequestOnceItIs(
    async () => (await w.api('GET', `/organizations/${w.orgId}/directories/${w.directoryId}`)).body,
    (l) => l.method === 'DELETE',
  );
  tt.like(last, { method: 'DELETE', status: 409 });
  tt.regex(String(last?.outcome), /last owner/);
});

test('an SSO sign-in through the organization lands in the account the directory made (sso_match external_id)', async (tt) => {
  const w = await scimWorld(t, { domain: 'saml.example', directory: { sso_match: 'external_id' } });
  const client: RegisteredClient = (await w.api('POST', '/clients', webClient())).body;
  const idp = new TestSamlIdp();
  const conn = (
    await w.api('POST', `/organizations/${w.orgId}/sso-connections`, {
      type: 'saml',
      name: 'Corp IdP',
      idp_entity_id: idp.entityId,
      idp_sso_url: idp.ssoUrl,
      idp_certificates: [idp.keys.cert],
    })
  ).body;
  const sp = samlify.ServiceProvider({ metadata: await (await fetch(conn.sp_metadata_url)).text() });
  const made = await w.scim('POST', '/Users', user('hal@saml.example', { externalId: '00u-hal' }));
  tt.is(made.status, 201);

  const browser = new Browser(t.url);
  const { config, verifier, state, url } = await startAuthorization(w.tenant, client);
  const page = await browser.follow(url);
  const toIdp = await enterCredentials(browser, await page.res.text(), page.url, 'hal@saml.example', 'unused');
  tt.true(toIdp.url.startsWith(idp.ssoUrl));
  const requestId = await idp.requestIdOf(sp, toIdp.url);
  // The IdP names Hal by his directory id and an address the organization never verified.
  const response = await idp.response(sp, conn.acs_url, conn.sp_entity_id, {
    inResponseTo: requestId,
    nameId: '00u-hal',
    attributes: { email: 'hal@personal.test', name: 'Hal' },
  });
  const done = await browser.follow(conn.acs_url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'https://idp.test' },
    body: new URLSearchParams({ SAMLResponse: response }).toString(),
  });
  tt.true(done.url.startsWith(client.redirect_uris[0]!), `${done.res.status} ${done.url}`);
  const tokens = await oidc.authorizationCodeGrant(config, new URL(done.url), { pkceCodeVerifier: verifier, expectedState: state });
  const account = (await w.api('GET', '/users?email=hal@saml.example')).body.data[0];
  tt.is(tokens.claims()!.sub, account.id, "the directory's account, not a new one");
  const audit = (await w.api('GET', `/organizations/${w.orgId}/audit-log?limit=100`)).body.data;
  tt.true(audit.some((e: any) => e.action === 'sso.link_created' && e.after?.reason === 'directory'));

  // Deactivated: the account the directory made is disabled, so no sign-in opens it.
  await w.scim('PATCH', `/Users/${made.body.id}`, deactivate);
  tt.true((await adminApi(t, w.tenant, 'GET', `/users/${account.id}`)).body.disabled);

  // An account that existed before (the directory linked it, never disabled it): once the
  // directory deactivates the person, a sign-in through the organization's IdP does not bring
  // them back into the organization.
  await w.api('POST', '/users', { email: 'ian@saml.example', password: 'ian ian ian ian ian', email_verified: true });
  const ian = await w.scim('POST', '/Users', user('ian@saml.example', { externalId: '00u-ian' }));
  tt.is(ian.status, 201);
  const signInAsIan = async () => {
    const b = new Browser(t.url);
    const start = await startAuthorization(w.tenant, client);
    const first = await b.follow(start.url);
    const hop = await enterCredentials(b, await first.res.text(), first.url, 'ian@saml.example', 'unused');
    const id = await idp.requestIdOf(sp, hop.url);
    const r = await idp.response(sp, conn.acs_url, conn.sp_entity_id, {
      inResponseTo: id,
      nameId: '00u-ian',
      attributes: { email: 'ian@saml.example', name: 'Ian' },
    });
    return b.follow(conn.acs_url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'https://idp.test' },
      body: new URLSearchParams({ SAMLResponse: r }).toString(),
    });
  };
  tt.true((await signInAsIan()).url.startsWith(client.redirect_uris[0]!));
  await w.scim('PATCH', `/Users/${ian.body.id}`, deactivate);
  tt.false((await w.api('GET', '/users?email=ian@saml.example')).body.data[0].disabled);
  const refused = await signInAsIan();
  tt.false(refused.url.startsWith(client.redirect_uris[0]!), 'refused: the directory decides who is in the organization');
  tt.false('ian@saml.example' in (await membersOf(w)));
  const lastError = (await w.api('GET', `/organizations/${w.orgId}/sso-connections/${conn.id}`)).body.last_error;
  tt.regex(JSON.stringify(lastError), /directory deactivated this person/);

  // Deleted (Entra deactivates, then deletes): the directory forgets its user, the organization
  // does not — still no way back in through its IdP. Pushed again, the person is back.
  tt.is((await w.scim('DELETE', `/Users/${ian.body.id}`)).status, 204);
  tt.false((await signInAsIan()).url.startsWith(client.redirect_uris[0]!), 'a deleted person stays out too');
  tt.false('ian@saml.example' in (await membersOf(w)));
  tt.is((await w.scim('POST', '/Users', user('ian@saml.example', { externalId: '00u-ian' }))).status, 201);
  tt.true('ian@saml.example' in (await membersOf(w)), 'pushed again: a member again');
  tt.true((await signInAsIan()).url.startsWith(client.redirect_uris[0]!));
});
