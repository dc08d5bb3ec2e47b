import test, { type ExecutionContext } from 'ava';
import * as samlify from 'samlify';
import { adminApi, createTenant, freePort, startTestApp, type TestApp, type TestTenant, webClient } from '../helpers/app.ts';
import { Browser, enterCredentials, unescapeHtml } from '../helpers/browser.ts';
import { formsIn, HOSTILE_TEXT } from '../helpers/hostile.ts';
import { startAuthorization } from '../helpers/oidc.ts';
import { TestSamlIdp } from '../helpers/saml-idp.ts';
import { scimCall } from '../helpers/scim.ts';
import { startUpstreamIdp } from '../helpers/upstream-idp.ts';

/**
 * Setup links over real HTTP: the Admin API that makes them, and the pages the customer's IT admin
 * opens — bound to the first browser, only what the link's features allow, only its organization,
 * audited with the link as the actor; unknown, expired, revoked or foreign-browser links change nothing.
 */

let t: TestApp;
let tenant: TestTenant;
let other: TestTenant;
let acme: string;
let globex: string;
const txt = new Map<string, string[][]>();
const idp = new TestSamlIdp();

const api = (method: string, path: string, body?: unknown) => adminApi(t, tenant, method, path, body);

test.before(async () => {
  t = await startTestApp({ txtRecords: txt });
  tenant = await createTenant(t);
  other = await createTenant(t);
  acme = (await api('POST', '/organizations', { name: 'Acme' })).body.id;
  globex = (await api('POST', '/organizations', { name: 'Globex' })).body.id;
});
test.after.always(async () => t?.stop());

/** Each test its own organization named Acme: tests run side by side, and each compares what its org holds. */
let orgs = 0;
const freshOrg = async () => (await api('POST', '/organizations', { name: 'Acme', slug: `acme-${++orgs}` })).body.id as string;

async function makeLink(features: string[], orgId: string) {
  const r = await api('POST', `/organizations/${orgId}/setup-links`, { features });
  if (r.status !== 201) throw new Error(r.text);
  return r.body as { id: string; url: string; expires_at: string; features: string[]; status: string };
}

/** A browser at the link's pages: its form token is read from the page like a person's browser would. */
class SetupBrowser {
  readonly browser: Browser;
  csrf = '';
  constructor(
    readonly url: string,
    origins: string[] = [],
  ) {
    this.browser = new Browser([t.url, ...origins]);
  }

  async get(path = '') {
    const r = await this.browser.follow(`${this.url}${path}`);
    const html = await r.res.text();
    this.csrf = /name="_csrf" value="([^"]+)"/.exec(html)?.[1] ?? this.csrf;
    return { status: r.res.status, html, headers: r.res.headers, url: r.url };
  }

  async post(path: string, fields: Record<string, string> = {}, opts: { csrf?: string; origin?: string } = {}) {
    const r = await this.browser.follow(`${this.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: opts.origin ?? t.url },
      body: new URLSearchParams({ _csrf: opts.csrf ?? this.csrf, ...fields }).toString(),
    });
    return { status: r.res.status, html: await r.res.text(), url: r.url, headers: r.res.headers };
  }
}

const domainsOf = async (orgId: string) => (await api('GET', `/organizations/${orgId}/domains`)).body.data as Array<{ domain: string; verified: boolean }>;
const connectionsOf = async (orgId: string) => (await api('GET', `/organizations/${orgId}/sso-connections`)).body.data as Array<Record<string, any>>;
const directoriesOf = async (orgId: string) => (await api('GET', `/organizations/${orgId}/directories`)).body.data as Array<Record<string, any>>;
const auditOf = async (orgId: string) => (await api('GET', `/organizations/${orgId}/audit-log?limit=100`)).body.data as Array<Record<string, any>>;

/** Nothing of `orgId` a link could change has changed. */
async function unchanged(tt: ExecutionContext, orgId: string, before: { domains: unknown; connections: unknown; directories: unknown }) {
  tt.deepEqual(await domainsOf(orgId), before.domains);
  tt.deepEqual(await connectionsOf(orgId), before.connections);
  tt.deepEqual(await directoriesOf(orgId), before.directories);
}
const snapshot = async (orgId: string) => ({
  domains: await domainsOf(orgId),
  connections: await connectionsOf(orgId),
  directories: await directoriesOf(orgId),
});

test('the Admin API makes a link (its url shown once), lists it without its secret, and checks what it is given', async (tt) => {
  const made = await api('POST', `/organizations/${acme}/setup-links`, { features: ['sso', 'domains'] });
  tt.is(made.status, 201);
  tt.regex(made.body.url, new RegExp(`^${t.url}/t/${tenant.slug}/setup/stl_[A-Za-z0-9_-]{43}$`));
  tt.deepEqual(made.body.features, ['sso', 'domains']);
  tt.is(made.body.status, 'active');
  const ttl = Date.parse(made.body.expires_at) - Date.now();
  tt.true(Math.abs(ttl - 7 * 86_400_000) < 60_000, 'seven days unless told otherwise');
  tt.is(made.headers.get('location'), `/t/${tenant.slug}/api/v1/admin/organizations/${acme}/setup-links/${made.body.id}`);

  const listed = await api('GET', `/organizations/${acme}/setup-links`);
  const secret = made.body.url.split('/').pop();
  tt.false(listed.text.includes(secret), 'the list never holds the secret');
  tt.truthy(listed.body.data.find((l: { id: string }) => l.id === made.body.id));
  tt.is((await api('GET', `/organizations/${acme}/setup-links/${made.body.id}`)).body.url, undefined);

  for (const [body, field] of [
    [{ features: [] }, 'features'],
    [{ features: ['members'] }, 'features.0'],
    [{ features: ['sso'], expires_in: 31 * 86_400 }, 'expires_in'],
    [{ features: ['sso'], expires_in: 10 }, 'expires_in'],
    [{ features: ['sso'], org_id: globex }, ''],
  ] as const) {
    const r = await api('POST', `/organizations/${acme}/setup-links`, body);
    tt.is(r.status, 422, JSON.stringify(body));
    tt.regex(r.type, /application\/problem\+json/);
    if (field)
      tt.truthy(
        r.body.errors.find((e: { field: string }) => e.field === field),
        `${JSON.stringify(body)}: ${r.text}`,
      );
  }
  // Another organization's link, or another tenant's organization: not here.
  tt.is((await api('GET', `/organizations/${globex}/setup-links/${made.body.id}`)).status, 404);
  tt.is((await api('DELETE', `/organizations/${globex}/setup-links/${made.body.id}`)).status, 404);
  const elsewhere = (await adminApi(t, other, 'POST', '/organizations', { name: 'Elsewhere' })).body.id;
  tt.is((await api('POST', `/organizations/${elsewhere}/setup-links`, { features: ['sso'] })).status, 404);
  tt.is((await adminApi(t, other, 'GET', `/organizations/${elsewhere}/setup-links/${made.body.id}`)).status, 404);

  const created = (await auditOf(acme)).find((a) => a.action === 'setup_link.created' && a.target.id === made.body.id);
  tt.deepEqual(created?.actor, { type: 'api_key' });
});

test('the first browser is bound; another browser, a forged form and a cross-site post change nothing', async (tt) => {
  const acme = await freshOrg();
  const link = await makeLink(['domains'], acme);
  const first = new SetupBrowser(link.url);
  const opened = await first.get('/domains');
  tt.is(opened.status, 200);
  tt.regex(opened.html, /Set up Acme/);
  tt.is(opened.headers.get('referrer-policy'), 'no-referrer');
  tt.regex(opened.html, /<meta name="referrer" content="no-referrer">/);
  const cookie = opened.headers.getSetCookie().find((c) => c.startsWith('tessera.setup='))!;
  tt.regex(cookie, /HttpOnly/i);
  tt.regex(cookie, /SameSite=Lax/i);
  tt.true(cookie.includes(`path=${new URL(link.url).pathname}`), cookie);
  tt.is((await api('GET', `/organizations/${acme}/setup-links/${link.id}`)).body.status, 'opened');

  const before = await snapshot(acme);
  const second = new SetupBrowser(link.url);
  const refused = await second.get();
  tt.is(refused.status, 409);
  tt.regex(refused.html, /This link was opened in another browser/);
  tt.regex(refused.html, /ask Acme for a new one/);
  // The second browser's post, with the first browser's form token even: nothing.
  tt.is((await second.post('/domains', { domain: 'second.example' }, { csrf: first.csrf })).status, 409);
  // The bound browser without the form token, or from another site: nothing.
  tt.is((await first.post('/domains', { domain: 'forged.example' }, { csrf: 'x' })).status, 403);
  tt.is((await first.post('/domains', { domain: 'crosssite.example' }, { origin: 'https://evil.example' })).status, 403);
  await unchanged(tt, acme, before);
  // The bound browser may.
  tt.is((await first.post('/domains', { domain: 'bound.example' })).status, 200);
  tt.truthy((await domainsOf(acme)).find((d) => d.domain === 'bound.example'));
});

test('unknown, expired and revoked links show a clear page, and their posts change nothing', async (tt) => {
  const acme = await freshOrg();
  const unknown = new SetupBrowser(`${t.url}/t/${tenant.slug}/setup/stl_${'A'.repeat(43)}`);
  const u = await unknown.get();
  tt.is(u.status, 404);
  tt.regex(u.html, /This setup link does not work/);
  tt.is((await new SetupBrowser(`${t.url}/t/${tenant.slug}/setup/not-a-secret`).get()).status, 404);

  const revoked = await makeLink(['domains', 'sso', 'directory_sync'], acme);
  const rb = new SetupBrowser(revoked.url);
  tt.is((await rb.get()).status, 200);
  tt.is((await api('DELETE', `/organizations/${acme}/setup-links/${revoked.id}`)).status, 204);
  tt.is((await api('DELETE', `/organizations/${acme}/setup-links/${revoked.id}`)).status, 204, 'revoking again is no error');
  tt.is((await api('GET', `/organizations/${acme}/setup-links/${revoked.id}`)).body.status, 'revoked');
  const r = await rb.get();
  tt.is(r.status, 410);
  tt.regex(r.html, /This setup link was revoked/);

  const expired = await makeLink(['domains', 'sso', 'directory_sync'], acme);
  const eb = new SetupBrowser(expired.url);
  tt.is((await eb.get()).status, 200);
  await t.app.connection.db
    .updateTable('setup_links')
    .set({ expires_at: new Date(Date.now() - 1000) })
    .where('id', '=', expired.id)
    .execute();
  const e = await eb.get();
  tt.is(e.status, 410);
  tt.regex(e.html, /This setup link has expired/);
  tt.is((await api('GET', `/organizations/${acme}/setup-links/${expired.id}`)).body.status, 'expired');

  const before = await snapshot(acme);
  for (const b of [rb, eb]) {
    for (const [path, fields] of [
      ['/domains', { domain: 'late.example' }],
      ['/sso/saml', { name: 'Late', metadata_xml: idp.idp.getMetadata() }],
      ['/directory/okta', {}],
      ['/test', {}],
    ] as const) {
      const res = await b.post(path, fields);
      tt.is(res.status, 410, `${path} with a dead link`);
    }
  }
  await unchanged(tt, acme, before);
  const revokedAudit = (await auditOf(acme)).find((a) => a.action === 'setup_link.revoked' && a.target.id === revoked.id);
  tt.deepEqual(revokedAudit?.actor, { type: 'api_key' });
});

test('a link does only what its features say: without sso, the SSO step and its posts are refused', async (tt) => {
  const acme = await freshOrg();
  const link = await makeLink(['domains'], acme);
  const b = new SetupBrowser(link.url);
  const home = await b.get('/domains');
  tt.false(home.html.includes(`${new URL(link.url).pathname}/sso`), 'no SSO step is offered');
  const before = await snapshot(acme);
  tt.is((await b.get('/sso')).status, 404);
  tt.is((await b.get('/sso/okta')).status, 404);
  tt.is((await b.get('/directory')).status, 404);
  for (const [path, fields] of [
    ['/sso/saml', { name: 'Sneaky', metadata_xml: idp.idp.getMetadata() }],
    ['/sso/oidc', { name: 'Sneaky', issuer_url: 'https://idp.example', client_id: 'x', client_secret: 'y' }],
    ['/test', {}],
    ['/directory/okta', {}],
  ] as const) {
    const r = await b.post(path, fields);
    tt.is(r.status, 404, path);
    tt.regex(r.html, /This link does not set that up/);
  }
  await unchanged(tt, acme, before);
});

test('domains through a link: added and verified by the DNS record, audited with the link as actor; no override; another org untouched', async (tt) => {
  const acme = await freshOrg();
  const link = await makeLink(['domains'], acme);
  const b = new SetupBrowser(link.url);
  await b.get('/domains');
  const globexBefore = await snapshot(globex);
  const added = await b.post('/domains', { domain: 'acme-corp.example' });
  tt.is(added.status, 200);
  const record = /name <span class="copy" data-copy="record name">([^<]+)<\/span><br>value <span class="copy" data-copy="record value">([^<]+)</.exec(
    added.html,
  )!;
  tt.is(record[1], '_tessera-verification.acme-corp.example');
  // Not published yet: the page says so, and the domain stays unverified.
  const early = await b.post('/domains/acme-corp.example/verify');
  tt.is(early.status, 409);
  tt.regex(early.html, /No TXT record/);
  txt.set(record[1]!, [[unescapeHtml(record[2]!)]]);
  const verified = await b.post('/domains/acme-corp.example/verify');
  tt.is(verified.status, 200);
  tt.true((await domainsOf(acme)).find((d) => d.domain === 'acme-corp.example')!.verified);
  // Globex's domain is not the link's to verify.
  await api('POST', `/organizations/${globex}/domains`, { domain: 'globex.example' });
  const snapshotGlobex = await snapshot(globex);
  tt.is((await b.post('/domains/globex.example/verify')).status, 404);
  tt.deepEqual(await snapshot(globex), snapshotGlobex);
  tt.notDeepEqual(globexBefore, snapshotGlobex);

  const audit = await auditOf(acme);
  for (const action of ['setup_link.opened', 'domain.added', 'domain.verified']) {
    const row = audit.find((a) => a.action === action && (action === 'setup_link.opened' ? a.target.id === link.id : a.target.id === 'acme-corp.example'));
    tt.deepEqual(row?.actor, { type: 'setup_link', id: link.id }, action);
  }
});

test('SSO through a link: our values before the connection exists, created with them; roles never come from the form (owner never); a test sign-in shows what the IdP sent and signs no one in', async (tt) => {
  const acme = await freshOrg();
  const link = await makeLink(['sso'], acme);
  const b = new SetupBrowser(link.url);
  await b.get();
  const okta = await b.get('/sso/okta');
  tt.is(okta.status, 200);
  const acs = /data-copy="acs url">([^<]+)</.exec(okta.html)?.[1];
  const entity = /data-copy="entity id">([^<]+)</.exec(okta.html)?.[1];
  tt.regex(acs ?? '', new RegExp(`^${t.url}/t/${tenant.slug}/sso/saml/[0-9a-f-]{36}/acs$`));
  const plannedId = /\/saml\/([0-9a-f-]{36})\/acs/.exec(acs!)![1]!;
  tt.is(entity, `${t.url}/t/${tenant.slug}/sso/saml/${plannedId}/metadata`);
  tt.regex(okta.html, /Audience URI \(SP Entity ID\)/);

  // Bad input: named at its field, nothing made.
  const empty = await b.post('/sso/okta', { name: 'Okta' });
  tt.is(empty.status, 422);
  tt.regex(empty.html, /Give the Metadata URL/);
  const bad = await b.post('/sso/okta', { name: 'Okta', metadata_xml: '<nope/>' });
  tt.is(bad.status, 422);
  tt.regex(bad.html, /metadata/);
  tt.is((await connectionsOf(acme)).filter((c) => c.id === plannedId).length, 0);

  const saved = await b.post('/sso/okta', {
    name: 'Okta',
    metadata_xml: idp.idp.getMetadata(),
    // Whatever a hostile page posts besides: roles are not the link's to set.
    default_role: 'owner',
    'group_roles[admins]': 'owner',
    auto_provision: 'off',
  });
  tt.is(saved.status, 200, saved.html.slice(0, 300));
  tt.regex(saved.html, /Saved/);
  const conn = (await connectionsOf(acme)).find((c) => c.id === plannedId)!;
  tt.truthy(conn, 'created with the id its URLs were shown with');
  tt.is(conn.acs_url, acs);
  tt.is(conn.default_role, 'member');
  tt.deepEqual(conn.group_roles, {});
  tt.is(conn.auto_provision, true);
  tt.is(conn.idp_entity_id, idp.entityId);
  tt.deepEqual((await auditOf(acme)).find((a) => a.action === 'connection.created' && a.target.id === plannedId)?.actor, { type: 'setup_link', id: link.id });
  // An OIDC provider for an organization with a SAML connection: said, nothing changed.
  const mismatch = await b.post('/sso/oidc', { name: 'X', issuer_url: 'https://idp.example', client_id: 'a', client_secret: 'b' });
  tt.is(mismatch.status, 422);
  tt.regex(mismatch.html, /already has a SAML connection/);

  // The test sign-in: a real AuthnRequest to the IdP, a real signed answer to our ACS.
  const sp = samlify.ServiceProvider({ metadata: await (await fetch(conn.sp_metadata_url)).text() });
  const users = async () => (await api('GET', '/users?email=tess.tester%40acme-test.example')).body.data.length;
  const started = await b.browser.request(`${link.url}/test`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: t.url },
    body: new URLSearchParams({ _csrf: b.csrf }).toString(),
  });
  tt.is(started.status, 303);
  const toIdp = started.headers.get('location')!;
  tt.true(toIdp.startsWith(idp.ssoUrl), toIdp);
  const requestId = await idp.requestIdOf(sp, toIdp);
  const answer = await idp.response(sp, conn.acs_url, conn.sp_entity_id, {
    inResponseTo: requestId,
    nameId: 'tess.tester@acme-test.example',
    attributes: { email: 'tess.tester@acme-test.example', name: 'Tess Tester', groups: ['engineering', 'admins'] },
  });
  const back = await b.browser.follow(conn.acs_url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'https://idp.test' },
    body: new URLSearchParams({ SAMLResponse: answer }).toString(),
  });
  const html = await back.res.text();
  tt.is(back.url, `${link.url}/test`);
  tt.is(back.res.status, 200);
  tt.regex(html, /The test sign-in worked/);
  tt.regex(html, /tess\.tester@acme-test\.example/);
  tt.regex(html, /Tess Tester/);
  tt.regex(html, /engineering/);
  tt.regex(html, /not a verified domain of the organization: a real sign-in creates no account/);
  tt.is(await users(), 0, 'no account');
  tt.is((await t.app.connection.db.selectFrom('sso_identities').select('user_id').where('connection_id', '=', plannedId).execute()).length, 0, 'no link');
  tt.deepEqual(
    back.res.headers.getSetCookie().filter((c) => /^_session|tessera\.portal/.test(c)),
    [],
    'no session',
  );
  // The same answer again: a replay, refused, and the page says why.
  await b.browser.request(`${link.url}/test`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: t.url },
    body: new URLSearchParams({ _csrf: b.csrf }).toString(),
  });
  const replay = await b.browser.follow(conn.acs_url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'https://idp.test' },
    body: new URLSearchParams({ SAMLResponse: answer }).toString(),
  });
  // Refused before its request was known (that request was used up): the generic page, and the
  // reason on the link's test page, from the connection's last error.
  tt.regex(await replay.res.text(), /Single sign-on failed/);
  const afterReplay = await b.get('/test');
  tt.regex(afterReplay.html, /The last answer was refused/);
  tt.regex(afterReplay.html, /not a request this connection sent/);

  // A wrong audience after a fresh request: refused with every usual check, the reason on the page.
  const again = await b.browser.request(`${link.url}/test`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: t.url },
    body: new URLSearchParams({ _csrf: b.csrf }).toString(),
  });
  const id2 = await idp.requestIdOf(sp, again.headers.get('location')!);
  const wrong = await idp.response(sp, conn.acs_url, 'https://someone-else.example', {
    inResponseTo: id2,
    nameId: 'tess.tester@acme-test.example',
    attributes: { email: 'tess.tester@acme-test.example' },
  });
  const refused = await b.browser.follow(conn.acs_url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'https://idp.test' },
    body: new URLSearchParams({ SAMLResponse: wrong }).toString(),
  });
  const refusedHtml = await refused.res.text();
  tt.is(refused.url, `${link.url}/test`);
  tt.regex(refusedHtml, /The test sign-in was refused/);
  tt.regex(refusedHtml, /audience https:\/\/someone-else\.example is not this service provider/);
  tt.is(await users(), 0);
});

test('directory sync through a link: the token shown once, rotated; Google said plainly; another org’s directory out of reach; roles stay the defaults', async (tt) => {
  const acme = await freshOrg();
  const link = await makeLink(['directory_sync'], acme);
  const b = new SetupBrowser(link.url);
  await b.get('/directory/okta');
  const google = await b.get('/directory/google');
  tt.regex(google.html, /Google Workspace does not push users or groups to custom SCIM apps/);
  tt.false(google.html.includes('Create the directory'));
  tt.is((await b.post('/directory/google')).status, 200);
  tt.is((await directoriesOf(acme)).length, 0, 'Google makes no directory');

  const made = await b.post('/directory/entra', { default_role: 'owner' });
  tt.is(made.status, 200);
  const token = /data-copy="token">(scim_[A-Za-z0-9_-]+)</.exec(made.html)?.[1];
  tt.truthy(token);
  const [dir] = await directoriesOf(acme);
  tt.is(dir!.provider, 'entra');
  tt.is(dir!.default_role, 'member');
  tt.true(made.html.includes(dir!.scim_base_url));
  tt.regex(made.html, /Tenant URL: <span class="copy"/);
  const listed = await b.get('/directory');
  tt.false(listed.html.includes(token!), 'the token is shown once');

  const rotated = await b.post(`/directories/${dir!.id}/rotate`);
  const next = /data-copy="token">(scim_[A-Za-z0-9_-]+)</.exec(rotated.html)?.[1];
  tt.truthy(next);
  tt.not(next, token);
  // Globex's directory: not the link's.
  const theirs = (await api('POST', `/organizations/${globex}/directories`, { name: 'Globex Okta' })).body;
  tt.is((await b.post(`/directories/${theirs.id}/rotate`)).status, 404);
  tt.is((await api('GET', `/organizations/${globex}/directories/${theirs.id}`)).body.token.hint, theirs.bearer_token.slice(-4));

  const audit = await auditOf(acme);
  for (const action of ['directory.created', 'directory.token_rotated'])
    tt.deepEqual(audit.find((a) => a.action === action)?.actor, { type: 'setup_link', id: link.id }, action);
});

test('an OIDC connection through a link, and its test sign-in through a real upstream OpenID Provider: what it sent, or why it was refused', async (tt) => {
  const acme = await freshOrg();
  const link = await makeLink(['sso'], acme);
  const port = await freePort();
  const issuer = `http://localhost:${port}`;
  const b = new SetupBrowser(link.url, [issuer]);
  await b.get();
  const form = await b.get('/sso/oidc');
  const redirectUri = /data-copy="redirect uri">([^<]+)</.exec(form.html)![1]!;
  tt.regex(redirectUri, new RegExp(`^${t.url}/t/${tenant.slug}/sso/oidc/[0-9a-f-]{36}/callback$`));
  const upstream = await startUpstreamIdp({
    clientId: 'tessera',
    clientSecret: 'upstream-secret',
    redirectUri,
    port,
    users: {
      olga: { email: 'olga@oidc-corp.example', email_verified: true, name: 'Olga', groups: ['ops'], amr: ['pwd', 'otp', 'mfa'] },
      unverified: { email: 'umberto@oidc-corp.example', email_verified: false, name: 'Umberto' },
    },
  });
  try {
    const saved = await b.post('/sso/oidc', { name: 'Corp IdP', issuer_url: issuer, client_id: 'tessera', client_secret: 'upstream-secret' });
    tt.is(saved.status, 200, saved.html.slice(0, 300));
    const [conn] = await connectionsOf(acme);
    tt.is(conn!.redirect_uri, redirectUri);
    tt.is(conn!.type, 'oidc');

    /** Start the test, sign in at the upstream's dev login as `login`, and land where the answer sends the browser. */
    const testAs = async (login: string) => {
      let hop = await b.browser.follow(`${link.url}/test`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', origin: t.url },
        body: new URLSearchParams({ _csrf: b.csrf }).toString(),
      });
      for (let i = 0; i < 3 && hop.url.startsWith(issuer); i++) {
        const html = await hop.res.text();
        const action = new URL(/action="([^"]+)"/.exec(html)![1]!, hop.url).href;
        hop = /name="login"/.test(html)
          ? await b.browser.submit(action, { prompt: 'login', login, password: 'any' })
          : await b.browser.submit(action, { prompt: 'consent' });
      }
      return { url: hop.url, html: await hop.res.text() };
    };
    const worked = await testAs('olga');
    tt.is(worked.url, `${link.url}/test`);
    tt.regex(worked.html, /The test sign-in worked/);
    tt.regex(worked.html, /<code>olga<\/code>/, 'the subject is the upstream sub');
    tt.regex(worked.html, /olga@oidc-corp\.example/);
    tt.regex(worked.html, /yes, the provider says so/);
    tt.regex(worked.html, /ops/);
    tt.is((await api('GET', '/users?email=olga%40oidc-corp.example')).body.data.length, 0, 'no account');

    // Signed out at the upstream (its session cookie sits at /), so its login form asks again.
    await b.browser.jar.store.removeCookies('localhost', '/');
    const refused = await testAs('unverified');
    tt.is(refused.url, `${link.url}/test`);
    tt.regex(refused.html, /The test sign-in was refused/);
    tt.regex(refused.html, /email_verified is not true/);
  } finally {
    await upstream.close();
  }
});

test('a link is its tenant’s only: its secret at another tenant opens nothing', async (tt) => {
  const acme = await freshOrg();
  const link = await makeLink(['domains'], acme);
  const secret = link.url.split('/').pop()!;
  const elsewhere = new SetupBrowser(`${t.url}/t/${other.slug}/setup/${secret}`);
  const r = await elsewhere.get();
  tt.is(r.status, 404);
  tt.regex(r.html, /This setup link does not work/);
  tt.is((await api('GET', `/organizations/${acme}/setup-links/${link.id}`)).body.status, 'active', 'and it was not opened');
});

test('every form of a link’s pages answers hostile values below 500, and a refused one changes nothing', async (tt) => {
  const acme = await freshOrg();
  const link = await makeLink(['domains', 'sso', 'directory_sync'], acme);
  const b = new SetupBrowser(link.url);
  await b.get();
  const path = new URL(link.url).pathname;
  let requests = 0;
  for (const page of ['/domains', '/sso/saml', '/sso/oidc', '/sso/okta']) {
    const html = (await b.get(page)).html;
    for (const form of formsIn(html).filter((f) => f.method === 'post')) {
      const fields = Object.keys(form.fields).filter((f) => f !== '_csrf');
      for (const field of fields) {
        for (const [name, value] of HOSTILE_TEXT) {
          const before = await snapshot(acme);
          const res = await b.post(form.action.slice(path.length), { ...form.fields, _csrf: b.csrf, [field]: value });
          requests++;
          tt.true(res.status < 500, `${form.action} ${field}=${name}: ${res.status}`);
          if (res.status >= 400) await unchanged(tt, acme, before);
        }
      }
    }
  }
  tt.true(requests > 50, `${requests} requests`);
});

test('a test sign-in of a person the organization’s directory pushed says the real sign-in opens the directory’s account', async (tt) => {
  const acme = await freshOrg();
  await api('POST', `/organizations/${acme}/domains`, { domain: 'dir-corp.example' });
  await api('PATCH', `/organizations/${acme}/domains/dir-corp.example`, { verified: true });
  const conn = (await api('POST', `/organizations/${acme}/sso-connections`, { type: 'saml', name: 'Corp', metadata_xml: idp.idp.getMetadata() })).body;
  const dir = (await api('POST', `/organizations/${acme}/directories`, { name: 'Corp directory' })).body;
  const pushed = await scimCall(dir.scim_base_url, dir.bearer_token, 'POST', '/Users', {
    schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
    userName: 'dora@dir-corp.example',
    emails: [{ value: 'dora@dir-corp.example', primary: true }],
    active: true,
  });
  tt.is(pushed.status, 201, JSON.stringify(pushed.body));
  const link = await makeLink(['sso'], acme);
  const b = new SetupBrowser(link.url);
  await b.get('/test');
  const started = await b.browser.request(`${link.url}/test`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: t.url },
    body: new URLSearchParams({ _csrf: b.csrf }).toString(),
  });
  const sp = samlify.ServiceProvider({ metadata: await (await fetch(conn.sp_metadata_url)).text() });
  const answer = await idp.response(sp, conn.acs_url, conn.sp_entity_id, {
    inResponseTo: await idp.requestIdOf(sp, started.headers.get('location')!),
    nameId: 'dora@dir-corp.example',
    attributes: { email: 'dora@dir-corp.example' },
  });
  const back = await b.browser.follow(conn.acs_url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'https://idp.test' },
    body: new URLSearchParams({ SAMLResponse: answer }).toString(),
  });
  const html = await back.res.text();
  tt.regex(html, /The test sign-in worked/);
  tt.regex(html, /directory holds this person: a real sign-in opens the account the directory made or linked/);
  tt.is((await t.app.connection.db.selectFrom('sso_identities').select('user_id').where('connection_id', '=', conn.id).execute()).length, 0, 'nothing linked');
});

test('a test sign-in tells the person testing nothing about accounts outside the organization’s verified domains', async (tt) => {
  const acme = await freshOrg();
  const conn = (await api('POST', `/organizations/${acme}/sso-connections`, { type: 'saml', name: 'Corp', metadata_xml: idp.idp.getMetadata() })).body;
  await api('POST', '/users', { email: 'existing.person@elsewhere.example', email_verified: true, password: 'a long enough password 1' });
  const link = await makeLink(['sso'], acme);
  const b = new SetupBrowser(link.url);
  await b.get('/test');
  const sp = samlify.ServiceProvider({ metadata: await (await fetch(conn.sp_metadata_url)).text() });
  const outcomeFor = async (email: string) => {
    const started = await b.browser.request(`${link.url}/test`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: t.url },
      body: new URLSearchParams({ _csrf: b.csrf }).toString(),
    });
    const answer = await idp.response(sp, conn.acs_url, conn.sp_entity_id, {
      inResponseTo: await idp.requestIdOf(sp, started.headers.get('location')!),
      nameId: email,
      attributes: { email },
    });
    const back = await b.browser.follow(conn.acs_url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'https://idp.test' },
      body: new URLSearchParams({ SAMLResponse: answer }).toString(),
    });
    const html = await back.res.text();
    tt.regex(html, /The test sign-in worked/);
    return /not a verified domain[^<]*/.exec(html)?.[0];
  };
  const existing = await outcomeFor('existing.person@elsewhere.example');
  const absent = await outcomeFor('nobody.here@elsewhere.example');
  tt.truthy(existing);
  tt.is(existing, absent, 'the same words whether or not an account has the address');
  tt.is((await t.app.connection.db.selectFrom('sso_identities').select('user_id').where('connection_id', '=', conn.id).execute()).length, 0, 'nothing linked');
});

test('what a link sets up is off until an owner turns it on: no real sign-in through its IdP (the owner’s account out of reach), no directory pushes; its test sign-in still works', async (tt) => {
  const acme = await freshOrg();
  await api('POST', `/organizations/${acme}/domains`, { domain: 'trust-corp.example' });
  await api('PATCH', `/organizations/${acme}/domains/trust-corp.example`, { verified: true });
  const owner = (await api('POST', '/users', { email: 'owner@trust-corp.example', email_verified: true, password: 'a long enough password 1' })).body;
  await api('POST', `/organizations/${acme}/members`, { user_id: owner.id, role: 'owner' });
  const client = (await api('POST', '/clients', webClient())).body;
  const routedToIdp = async (email: string) => {
    const browser = new Browser(t.url);
    const { url } = await startAuthorization(tenant, client);
    const page = await browser.follow(url);
    const next = await enterCredentials(browser, await page.res.text(), page.url, email, 'unused');
    return next.url.startsWith(idp.ssoUrl);
  };

  const link = await makeLink(['sso', 'directory_sync'], acme);
  const b = new SetupBrowser(link.url);
  await b.get('/sso/okta');
  tt.is((await b.post('/sso/okta', { name: 'Okta', metadata_xml: idp.idp.getMetadata() })).status, 200);
  const [conn] = await connectionsOf(acme);
  tt.false(conn!.enabled, 'a connection a link made starts off');
  tt.false(await routedToIdp('owner@trust-corp.example'), 'no real sign-in goes to an IdP no owner turned on');

  // The IT admin's test sign-in runs through it all the same.
  const sp = samlify.ServiceProvider({ metadata: await (await fetch(conn!.sp_metadata_url)).text() });
  const started = await b.browser.request(`${link.url}/test`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: t.url },
    body: new URLSearchParams({ _csrf: b.csrf }).toString(),
  });
  tt.is(started.status, 303);
  const answer = await idp.response(sp, conn!.acs_url, conn!.sp_entity_id, {
    inResponseTo: await idp.requestIdOf(sp, started.headers.get('location')!),
    nameId: 'someone@trust-corp.example',
    attributes: { email: 'someone@trust-corp.example' },
  });
  const back = await b.browser.follow(conn!.acs_url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'https://idp.test' },
    body: new URLSearchParams({ SAMLResponse: answer }).toString(),
  });
  tt.regex(await back.res.text(), /The test sign-in worked/);

  // An owner turns it on; the link changing it again turns it off again.
  tt.is((await api('PATCH', `/organizations/${acme}/sso-connections/${conn!.id}`, { enabled: true })).status, 200);
  tt.true(await routedToIdp('newcomer@trust-corp.example'), 'on once an owner turned it on');
  tt.is((await b.post(`/sso/okta`, { name: 'Okta renamed', metadata_xml: idp.idp.getMetadata() })).status, 200);
  tt.false((await connectionsOf(acme))[0]!.enabled, 'a change through a link turns it off until an owner turns it on again');
  tt.false(await routedToIdp('owner@trust-corp.example'));

  // The same for a directory: its token works only once an owner turned it on.
  const made = await b.post('/directory/okta');
  const token = /data-copy="token">(scim_[A-Za-z0-9_-]+)</.exec(made.html)?.[1];
  const [dir] = await directoriesOf(acme);
  tt.false(dir!.enabled);
  const pushed = await scimCall(dir!.scim_base_url, token!, 'POST', '/Users', { userName: 'pushed@trust-corp.example' });
  tt.is(pushed.status, 403);
  tt.regex(pushed.body.detail, /turned off/);
  tt.is((await api('PATCH', `/organizations/${acme}/directories/${dir!.id}`, { enabled: true })).status, 200);
  tt.is((await scimCall(dir!.scim_base_url, token!, 'GET', '/Users')).status, 200);
  // A new token through the link puts the directory in the link holder's hands again: off.
  const rotated = await b.post(`/directories/${dir!.id}/rotate`);
  const next = /data-copy="token">(scim_[A-Za-z0-9_-]+)</.exec(rotated.html)?.[1];
  tt.is((await scimCall(dir!.scim_base_url, next!, 'GET', '/Users')).status, 403);
});
