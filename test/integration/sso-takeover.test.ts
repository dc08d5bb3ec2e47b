import test from 'ava';
import { sql } from 'kysely';
import * as oidc from 'openid-client';
import * as samlify from 'samlify';
import { mappedRoles } from '../../src/sso/group-roles.ts';
import { adminApi, createTenant, startTestApp, type TestApp, type TestTenant, webClient } from '../helpers/app.ts';
import { Browser, continueWithSso, enterCredentials } from '../helpers/browser.ts';
import { type RegisteredClient, startAuthorization } from '../helpers/oidc.ts';
import { keyPair, TestSamlIdp } from '../helpers/saml-idp.ts';
import { linkIn, SmtpSink } from '../helpers/smtp.ts';

/**
 * Who an SSO sign-in may become. The IdP here is hostile: its certificate is trusted by the
 * organization's connection and it asserts whatever email it likes. What must hold: it never
 * becomes a tenant administrator, never an existing account outside the organization's verified
 * domains without that account's own proof, and never creates accounts on domains nobody
 * verified unless the invited person came through their invitation link. Org admins can't
 * configure SSO at all; configuration never grants owner.
 */

let t: TestApp;
let smtp: SmtpSink;
let tenant: TestTenant;
let client: RegisteredClient;
let orgId: string;
let conn: { id: string; acs_url: string; sp_entity_id: string; sp_metadata_url: string };
let sp: ReturnType<typeof samlify.ServiceProvider>;
const idp = new TestSamlIdp(keyPair('Attacker IdP'));
const PASSWORD = 'quiet walnut 47 harbour';
const ids: Record<string, string> = {};

const api = (method: string, path: string, body?: unknown) => adminApi(t, tenant, method, path, body);
const db = () => t.app.connection.db;

test.before(async () => {
  smtp = await SmtpSink.start();
  t = await startTestApp({ env: { SMTP_URL: smtp.url, MAIL_POLL_MS: '100' } });
  tenant = await createTenant(t);
  client = (await api('POST', '/clients', webClient())).body;
  orgId = (await api('POST', '/organizations', { name: 'Victim Corp' })).body.id;
  const people: Record<string, { email: string; role?: string; verified?: boolean; password?: boolean }> = {
    owner: { email: 'owen@victim.example', role: 'owner' },
    admin: { email: 'ada@victim.example', role: 'admin' },
    member: { email: 'mo@victim.example', role: 'member' },
    pat: { email: 'pat@personal.example', role: 'member' },
    quinn: { email: 'quinn@personal.example', role: 'member', password: false },
    rita: { email: 'rita@personal.example', role: 'member' },
    una: { email: 'una@victim.example', verified: false },
  };
  for (const [k, p] of Object.entries(people)) {
    const created = await api('POST', '/users', {
      email: p.email,
      ...(p.password === false ? {} : { password: PASSWORD }),
      email_verified: p.verified ?? true,
    });
    if (created.status !== 201) throw new Error(created.text);
    ids[k] = created.body.id;
    if (p.role) await api('POST', `/organizations/${orgId}/members`, { user_id: ids[k], role: p.role });
  }
  ids.tenantAdmin = (await api('GET', `/users?email=${encodeURIComponent(tenant.adminEmail)}`)).body.data[0].id;
  // A connection trusting the attacker's certificate (made by the tenant admin here: the portal
  // refuses it to an org admin, below). The organization has verified no domain yet.
  const created = await api('POST', `/organizations/${orgId}/sso-connections`, {
    type: 'saml',
    name: 'Victim IdP',
    idp_entity_id: idp.entityId,
    idp_sso_url: idp.ssoUrl,
    idp_certificates: [idp.keys.cert],
    group_roles: { admins: 'admin' },
  });
  if (created.status !== 201) throw new Error(created.text);
  conn = created.body;
  sp = samlify.ServiceProvider({ metadata: await (await fetch(conn.sp_metadata_url)).text() });
});
test.after.always(async () => {
  await t?.stop();
  await smtp?.stop();
});

/** A sign-in at the app with organization=<org>: its SSO button, to the IdP. */
async function beginAtApp(browser = new Browser(t.url)) {
  const { config, verifier, state, url } = await startAuthorization(tenant, client, { organization: orgId });
  const toIdp = await continueWithSso(browser, await browser.follow(url));
  if (!toIdp.url.startsWith(idp.ssoUrl)) throw new Error(`expected the IdP, got ${toIdp.res.status} ${toIdp.url}`);
  return { browser, config, verifier, state, requestId: await idp.requestIdOf(sp, toIdp.url) };
}

const assertion = (requestId: string, nameId: string, email: string, extra: Record<string, string | string[]> = {}) =>
  idp.response(sp, conn.acs_url, conn.sp_entity_id, { inResponseTo: requestId, nameId, attributes: { email, ...extra } });

async function post(browser: Browser, samlResponse: string) {
  return browser.follow(conn.acs_url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'https://idp.test' },
    body: new URLSearchParams({ SAMLResponse: samlResponse }).toString(),
  });
}

async function linksOf(userId: string) {
  return (await sql<{ subject: string; linked_by: string }>`select subject, linked_by from sso_identities where user_id = ${userId}`.execute(db())).rows;
}

async function auditActions(action: string) {
  const rows = (await sql<{ after: any }>`select after from org_audit_log where org_id = ${orgId} and action = ${action} order by created_at`.execute(db()))
    .rows;
  return rows.map((r) => (typeof r.after === 'string' ? JSON.parse(r.after) : r.after));
}

/** The sign-in ended on our failure page: no redirect to the app, so no code and no token. */
function refusedAtOurPage(tt: any, done: { res: Response; url: string }) {
  tt.is(done.res.status, 403);
  tt.false(done.url.startsWith(client.redirect_uris[0]!), 'no authorization response reached the app');
}

test.serial('an org admin cannot configure SSO or domains from the portal, and sees the tab read-only', async (tt) => {
  const browser = new Browser(t.url);
  const first = await browser.follow(`${t.url}/t/${tenant.slug}/portal/organizations/${orgId}/sso`);
  const page = await enterCredentials(browser, await first.res.text(), first.url, 'ada@victim.example', PASSWORD);
  const html = await page.res.text();
  tt.is(page.res.status, 200);
  tt.false(html.includes('Add SAML connection'));
  tt.regex(html, /Only the organization's owners can change single sign-on/);
  const csrf = /name="_csrf" value="([^"]+)"/.exec(html)![1]!;
  const base = `${t.url}/t/${tenant.slug}/portal/organizations/${orgId}/sso`;
  const before = (await api('GET', `/organizations/${orgId}/sso-connections`)).body.data.length;
  const create = await browser.submit(base, {
    _csrf: csrf,
    type: 'saml',
    name: 'Mine',
    idp_entity_id: 'https://evil.example',
    idp_sso_url: 'https://evil.example/sso',
    idp_certificate: idp.keys.cert,
    default_role: 'member',
    enabled: 'on',
    auto_provision: 'on',
  });
  tt.is(create.res.status, 403);
  const edit = await browser.submit(`${base}/${conn.id}`, { _csrf: csrf, name: 'Renamed', idp_certificate: keyPair('Other').cert, default_role: 'admin' });
  tt.is(edit.res.status, 403);
  tt.is((await browser.submit(`${base}/${conn.id}/delete`, { _csrf: csrf })).res.status, 403);
  tt.is((await browser.submit(`${base}/domains`, { _csrf: csrf, domain: 'victim.example' })).res.status, 403);
  tt.is((await browser.request(`${base}/new?type=saml`)).status, 403);
  const after = (await api('GET', `/organizations/${orgId}/sso-connections`)).body;
  tt.is(after.data.length, before);
  tt.is(after.data.find((c: any) => c.id === conn.id).name, 'Victim IdP', 'unchanged');
  tt.is((await api('GET', `/organizations/${orgId}/domains`)).body.data.length, 0);
});

test.serial('an org admin can neither write nor hand out a permission they do not hold (portal)', async (tt) => {
  await api('POST', `/organizations/${orgId}/roles`, { name: 'finance', permissions: ['invoices:write'] });
  const browser = new Browser(t.url);
  const first = await browser.follow(`${t.url}/t/${tenant.slug}/portal/organizations/${orgId}/roles`);
  const page = await enterCredentials(browser, await first.res.text(), first.url, 'ada@victim.example', PASSWORD);
  const csrf = /name="_csrf" value="([^"]+)"/.exec(await page.res.text())![1]!;
  const base = `${t.url}/t/${tenant.slug}/portal/organizations/${orgId}`;
  const superuser = await browser.submit(`${base}/roles`, { _csrf: csrf, name: 'superuser', description: '', permissions: '* org:owner' });
  tt.is(superuser.res.status, 422);
  tt.regex(await superuser.res.text(), /permissions you do not hold/);
  tt.is((await browser.submit(`${base}/members/${ids.admin}/role`, { _csrf: csrf, role: 'finance' })).res.status, 422, 'not to herself');
  tt.is((await browser.submit(`${base}/members/${ids.member}/role`, { _csrf: csrf, role: 'finance' })).res.status, 422, 'nor to anyone');
  tt.is((await browser.submit(`${base}/invitations`, { _csrf: csrf, email: 'fin@victim.example', role: 'finance' })).res.status, 422, 'nor by invitation');
  const roles = (await api('GET', `/organizations/${orgId}/roles`)).body.data;
  tt.false(roles.some((r: any) => r.name === 'superuser'));
  const finance = roles.find((r: any) => r.name === 'finance');
  tt.is((await browser.submit(`${base}/roles/${finance.id}/delete`, { _csrf: csrf })).res.status, 409, 'nor delete a role above her');
  const members = (await api('GET', `/organizations/${orgId}/members`)).body.data;
  tt.deepEqual(members.find((m: any) => m.user_id === ids.admin).roles, ['admin']);
  tt.deepEqual(members.find((m: any) => m.user_id === ids.member).roles, ['member']);
  tt.is((await api('GET', `/organizations/${orgId}/invitations`)).body.data.filter((i: any) => i.email === 'fin@victim.example').length, 0);
  // A role within her reach is fine.
  tt.is((await browser.submit(`${base}/roles`, { _csrf: csrf, name: 'helper', description: '', permissions: '' })).res.status, 200);
});

test.serial('attack: the IdP asserts the tenant administrator, invited to the organization — refused, nothing linked, audited', async (tt) => {
  await api('POST', `/organizations/${orgId}/invitations`, { email: tenant.adminEmail, role: 'member' });
  const { browser, requestId } = await beginAtApp();
  const done = await post(browser, await assertion(requestId, 'attacker-1', tenant.adminEmail));
  refusedAtOurPage(tt, done);
  tt.deepEqual(await linksOf(ids.tenantAdmin!), []);
  const refused = await auditActions('sso.link_refused');
  tt.true(
    refused.some((a) => a.subject === 'attacker-1' && a.user_id === ids.tenantAdmin && /tenant administrator/.test(a.reason)),
    JSON.stringify(refused),
  );
  // The same NameID with another email later creates nothing either (no domain is verified).
  const again = await beginAtApp();
  refusedAtOurPage(tt, await post(again.browser, await assertion(again.requestId, 'attacker-1', 'someone@elsewhere.example')));
  tt.is((await api('GET', '/users?email=someone@elsewhere.example')).body.data.length, 0);
});

test.serial("attack: the portal's own sign-in with organization= and the tenant administrator's email — no portal session", async (tt) => {
  const browser = new Browser(t.url);
  const login = await browser.request(`${t.url}/t/${tenant.slug}/portal/login`);
  const auth = new URL(login.headers.get('location')!, t.url);
  auth.searchParams.set('organization', orgId);
  const toIdp = await continueWithSso(browser, await browser.follow(auth.href));
  tt.true(toIdp.url.startsWith(idp.ssoUrl), toIdp.url);
  const done = await post(browser, await assertion(await idp.requestIdOf(sp, toIdp.url), 'attacker-2', tenant.adminEmail));
  tt.is(done.res.status, 403);
  const portal = await browser.request(`${t.url}/t/${tenant.slug}/portal/organizations`);
  tt.is(portal.status, 302, 'still not signed in: the portal sends the browser to sign in');
  tt.regex(portal.headers.get('location') ?? '', /\/portal\/login/);
  tt.deepEqual(await linksOf(ids.tenantAdmin!), []);
});

test.serial('attack: the IdP asserts an existing member (the owner) of an unverified domain — proof asked, no token, no link', async (tt) => {
  const { browser, requestId } = await beginAtApp();
  const done = await post(browser, await assertion(requestId, 'attacker-3', 'owen@victim.example'));
  tt.is(done.res.status, 200);
  tt.true(done.url.endsWith(`/t/${tenant.slug}/sso/link`), done.url);
  tt.regex(await done.res.text(), /Confirm this is your account/);
  tt.deepEqual(await linksOf(ids.owner!), []);
  // A wrong password links nothing and issues nothing.
  const wrong = await browser.submit(`${t.url}/t/${tenant.slug}/sso/link/password`, { password: 'not the password' });
  tt.is(wrong.res.status, 401);
  tt.deepEqual(await linksOf(ids.owner!), []);
  // Another browser (no cookie of this sign-in) gets nothing at all.
  const stranger = new Browser(t.url);
  tt.is((await stranger.follow(`${t.url}/t/${tenant.slug}/sso/link`)).res.status, 410);
  tt.is((await stranger.submit(`${t.url}/t/${tenant.slug}/sso/link/password`, { password: PASSWORD })).res.status, 410);
  tt.true((await auditActions('sso.link_deferred')).some((a) => a.subject === 'attacker-3' && a.user_id === ids.owner));
});

test.serial('attack: a pending invitation alone does not let the IdP create an account on an unverified domain', async (tt) => {
  await api('POST', `/organizations/${orgId}/invitations`, { email: 'newbie@unverified.example', role: 'member' });
  const { browser, requestId } = await beginAtApp();
  refusedAtOurPage(tt, await post(browser, await assertion(requestId, 'newbie', 'newbie@unverified.example')));
  tt.is((await api('GET', '/users?email=newbie@unverified.example')).body.data.length, 0);
});

test.serial('the invited person follows their link and joins through SSO; another asserted email is refused', async (tt) => {
  await api('POST', `/organizations/${orgId}/invitations`, { email: 'invitee@unverified.example', role: 'billing' });
  const link = linkIn(await smtp.waitFor('invitee@unverified.example', /invited/), '/invitations/');

  // The IdP asserts someone else: refused, nobody created, the invitation still pending.
  const wrongBrowser = new Browser(t.url);
  const page = await wrongBrowser.follow(link);
  tt.regex(await page.res.text(), /Continue with Victim IdP/);
  const toIdp = await wrongBrowser.submit(link, { mode: 'sso' });
  tt.true(toIdp.url.startsWith(idp.ssoUrl), toIdp.url);
  refusedAtOurPage(tt, await post(wrongBrowser, await assertion(await idp.requestIdOf(sp, toIdp.url), 'inv-wrong', 'other@unverified.example')));
  tt.is((await api('GET', '/users?email=other@unverified.example')).body.data.length, 0);

  const browser = new Browser(t.url);
  await browser.follow(link);
  const go = await browser.submit(link, { mode: 'sso' });
  const done = await post(browser, await assertion(await idp.requestIdOf(sp, go.url), 'invitee', 'invitee@unverified.example'));
  tt.is(done.res.status, 200);
  tt.regex(await done.res.text(), /Welcome to Victim Corp/);
  const user = (await api('GET', '/users?email=invitee@unverified.example')).body.data[0];
  tt.truthy(user);
  tt.true(user.email_verified);
  const member = (await api('GET', `/organizations/${orgId}/members`)).body.data.find((m: any) => m.user_id === user.id);
  tt.deepEqual(member.roles, ['billing'], 'the invited role');
  tt.deepEqual(
    (await linksOf(user.id)).map((l) => l.linked_by),
    ['invitation'],
  );
  const invitations = (await api('GET', `/organizations/${orgId}/invitations`)).body.data;
  tt.is(invitations.find((i: any) => i.email === 'invitee@unverified.example').status, 'accepted');

  // Later sign-ins find the account by its link.
  const again = await beginAtApp();
  const back = await post(again.browser, await assertion(again.requestId, 'invitee', 'invitee@unverified.example'));
  tt.true(back.url.startsWith(client.redirect_uris[0]!), back.url);
  const tokens = await oidc.authorizationCodeGrant(again.config, new URL(back.url), { pkceCodeVerifier: again.verifier, expectedState: again.state });
  tt.is(tokens.claims()!.sub, user.id);
});

test.serial('proof by password: the account is linked, the sign-in continues, and later sign-ins go straight in', async (tt) => {
  const { browser, config, verifier, state, requestId } = await beginAtApp();
  const proof = await post(browser, await assertion(requestId, 'pat-at-idp', 'pat@personal.example'));
  tt.true(proof.url.endsWith('/sso/link'));
  const done = await browser.submit(`${t.url}/t/${tenant.slug}/sso/link/password`, { password: PASSWORD });
  tt.true(done.url.startsWith(client.redirect_uris[0]!), `${done.res.status} ${done.url}`);
  const tokens = await oidc.authorizationCodeGrant(config, new URL(done.url), { pkceCodeVerifier: verifier, expectedState: state });
  tt.is(tokens.claims()!.sub, ids.pat!);
  tt.is(tokens.claims()!.org_id, orgId);
  tt.deepEqual(await linksOf(ids.pat!), [{ subject: 'pat-at-idp', linked_by: 'password' }]);
  tt.true((await auditActions('sso.link_created')).some((a) => a.subject === 'pat-at-idp' && a.user_id === ids.pat && a.reason === 'password'));

  const again = await beginAtApp();
  const back = await post(again.browser, await assertion(again.requestId, 'pat-at-idp', 'pat@personal.example'));
  tt.true(back.url.startsWith(client.redirect_uris[0]!), back.url);
});

test.serial('proof by a link mailed to the stored address: at most three mails, one a minute; the link is used by a POST', async (tt) => {
  const { browser, config, verifier, state, requestId } = await beginAtApp();
  const proof = await post(browser, await assertion(requestId, 'quinn-at-idp', 'QUINN@personal.example'));
  const html = await proof.res.text();
  tt.false(html.includes('name="password"'), 'no password to offer: this account has none');
  const sent = await browser.submit(`${t.url}/t/${tenant.slug}/sso/link/email`, {});
  tt.is(sent.res.status, 200);
  tt.regex(await sent.res.text(), /We have sent a link/);
  const mail = await smtp.waitFor('quinn@personal.example', /Link your Victim Corp sign-in/);
  const to = (Array.isArray(mail.to) ? mail.to[0] : mail.to)!.value[0]!.address;
  tt.is(to, 'quinn@personal.example', 'the stored address, not the asserted one');
  const again = await browser.submit(`${t.url}/t/${tenant.slug}/sso/link/email`, {});
  tt.is(again.res.status, 429, 'one a minute');
  const confirmUrl = linkIn(mail, '/sso/link/confirm/');
  // In any other browser (the account's owner reading a mail an IdP's owner triggered), nothing happens.
  const elsewhere = new Browser(t.url);
  tt.is((await elsewhere.follow(confirmUrl)).res.status, 409);
  tt.is((await elsewhere.submit(confirmUrl, {})).res.status, 409);
  tt.deepEqual(await linksOf(ids.quinn!), []);
  // Following the link (GET) changes nothing; the button (POST) links and the sign-in continues.
  const shown = await browser.follow(confirmUrl);
  tt.regex(await shown.res.text(), /Link my account/);
  tt.deepEqual(await linksOf(ids.quinn!), []);
  const done = await browser.submit(confirmUrl, {});
  tt.true(done.url.startsWith(client.redirect_uris[0]!), `${done.res.status} ${done.url}`);
  const tokens = await oidc.authorizationCodeGrant(config, new URL(done.url), { pkceCodeVerifier: verifier, expectedState: state });
  tt.is(tokens.claims()!.sub, ids.quinn!);
  tt.deepEqual(await linksOf(ids.quinn!), [{ subject: 'quinn-at-idp', linked_by: 'email_link' }]);
  // Used once.
  tt.is((await browser.submit(confirmUrl, {})).res.status, 410);
});

test.serial('a link made before these rules is re-checked; a link to a tenant administrator is never used', async (tt) => {
  await sql`insert into sso_identities (tenant_id, connection_id, subject, user_id, linked_by) values (${tenant.id}, ${conn.id}, 'rita-old', ${ids.rita}, 'legacy')`.execute(
    db(),
  );
  const legacy = await beginAtApp();
  const r = await post(legacy.browser, await assertion(legacy.requestId, 'rita-old', 'anything@else.example'));
  tt.true(r.url.endsWith('/sso/link'), 'proof first');

  await sql`insert into sso_identities (tenant_id, connection_id, subject, user_id, linked_by) values (${tenant.id}, ${conn.id}, 'boss-link', ${ids.tenantAdmin}, 'password')`.execute(
    db(),
  );
  const boss = await beginAtApp();
  refusedAtOurPage(tt, await post(boss.browser, await assertion(boss.requestId, 'boss-link', tenant.adminEmail)));
});

test.serial('with a verified domain: a new person is created, a verified account is linked, an unverified one must prove, a tenant admin never', async (tt) => {
  await api('POST', `/organizations/${orgId}/domains`, { domain: 'victim.example' });
  tt.is((await api('PATCH', `/organizations/${orgId}/domains/victim.example`, { verified: true })).status, 200);

  const fresh = await beginAtApp();
  const created = await post(
    fresh.browser,
    await assertion(fresh.requestId, 'newcomer', 'newcomer@victim.example', { groups: ['__proto__', 'constructor', 'toString'] }),
  );
  tt.true(created.url.startsWith(client.redirect_uris[0]!), created.url);
  const newcomer = (await api('GET', '/users?email=newcomer@victim.example')).body.data[0];
  const member = (await api('GET', `/organizations/${orgId}/members`)).body.data.find((m: any) => m.user_id === newcomer.id);
  tt.deepEqual(member.roles, ['member'], 'odd group names map to nothing: the default role');

  const mo = await beginAtApp();
  const moDone = await post(mo.browser, await assertion(mo.requestId, 'mo-at-idp', 'mo@victim.example', { groups: ['admins'] }));
  tt.true(moDone.url.startsWith(client.redirect_uris[0]!), moDone.url);
  tt.deepEqual(await linksOf(ids.member!), [{ subject: 'mo-at-idp', linked_by: 'verified_domain' }]);
  // An SSO join and a group-mapped role change are in the audit log like any other membership change.
  const log = (await api('GET', `/organizations/${orgId}/audit-log?limit=200`)).body.data as Array<{
    actor: any;
    action: string;
    target: { id: string };
    after: any;
  }>;
  const joined = log.find((e) => e.action === 'member.added' && e.target.id === newcomer.id);
  tt.deepEqual(joined?.actor, { type: 'sso_connection', id: conn.id });
  const remapped = log.find((e) => e.action === 'member.roles_changed' && e.target.id === ids.member);
  tt.deepEqual(remapped?.actor, { type: 'sso_connection', id: conn.id });
  tt.deepEqual(remapped?.after.roles, ['admin']);

  const una = await beginAtApp();
  const unaDone = await post(una.browser, await assertion(una.requestId, 'una-at-idp', 'una@victim.example'));
  tt.true(unaDone.url.endsWith('/sso/link'), 'an unverified email proves first');

  const boss = (await api('POST', '/users', { email: 'boss@victim.example', password: PASSWORD, email_verified: true, tenant_admin: true })).body;
  const b = await beginAtApp();
  refusedAtOurPage(tt, await post(b.browser, await assertion(b.requestId, 'boss-at-idp', 'boss@victim.example')));
  tt.deepEqual(await linksOf(boss.id), []);
});

test('configuration never grants owner, nor a role with permissions the person configuring lacks', async (tt) => {
  const ownerDefault = await api('POST', `/organizations/${orgId}/sso-connections`, {
    type: 'saml',
    name: 'x',
    idp_entity_id: 'e',
    idp_sso_url: 'https://idp.test/sso',
    idp_certificates: [idp.keys.cert],
    default_role: 'owner',
  });
  tt.is(ownerDefault.status, 422);
  tt.is(ownerDefault.body.errors[0].field, 'default_role');
  const ownerGroup = await api('PATCH', `/organizations/${orgId}/sso-connections/${conn.id}`, { group_roles: { everyone: 'owner' } });
  tt.is(ownerGroup.status, 422);
  tt.is(ownerGroup.body.errors[0].field, 'group_roles.everyone');

  // A custom role with a permission; an actor holding only `admin` (no such permission) may not
  // have it granted automatically, an owner may.
  await api('POST', `/organizations/${orgId}/roles`, { name: 'auditor', permissions: ['audit:export'] });
  const connections = t.app.services.connections;
  const err = await tt.throwsAsync(connections.update(tenant.id, { type: 'user', id: ids.admin! }, orgId, conn.id, { default_role: 'auditor' }));
  tt.regex(err!.message, /permissions you do not hold/);
  await tt.notThrowsAsync(connections.update(tenant.id, { type: 'user', id: ids.owner! }, orgId, conn.id, { default_role: 'member' }));
});

test('group mapping is a plain lookup: no inherited property of an object maps a group', (tt) => {
  tt.deepEqual(mappedRoles({ admins: 'admin' }, ['__proto__', 'constructor', 'toString', 'hasOwnProperty']), []);
  tt.deepEqual(mappedRoles(JSON.parse('{"__proto__":"billing","constructor":"admin"}'), ['__proto__', 'constructor']).sort(), ['admin', 'billing']);
  tt.deepEqual(mappedRoles({ everyone: 'owner', admins: 'admin' }, ['everyone', 'admins']), ['admin'], 'owner never');
});

test('signed assertions: a response signed only at the message level is refused unless the connection says otherwise', async (tt) => {
  // An SP description asking for message signatures only, so the test IdP signs the response, not the assertion.
  const messageOnly = samlify.ServiceProvider({
    entityID: conn.sp_entity_id,
    assertionConsumerService: [{ Binding: samlify.Constants.namespace.binding.post, Location: conn.acs_url }],
    wantAssertionsSigned: false,
    wantMessageSigned: true,
  });
  const make = (requestId: string, who: string) =>
    idp.response(messageOnly, conn.acs_url, conn.sp_entity_id, { inResponseTo: requestId, nameId: who, attributes: { email: `${who}@victim.example` } });
  const xml = (r: string) => Buffer.from(r, 'base64').toString('utf8');

  const first = await beginAtApp();
  const unsigned = await make(first.requestId, 'msgsig1');
  tt.regex(xml(unsigned), /<samlp:Response[^>]*>[\s\S]*<ds:Signature[\s\S]*<saml:Assertion/, 'the message carries the signature');
  tt.notRegex(xml(unsigned).slice(xml(unsigned).indexOf('<saml:Assertion')), /<ds:Signature/, 'the assertion carries none');
  refusedAtOurPage(tt, await post(first.browser, unsigned));
  tt.regex((await api('GET', `/organizations/${orgId}/sso-connections/${conn.id}`)).body.last_error, /requires signed assertions/);
  tt.regex(await (await fetch(conn.sp_metadata_url)).text(), /WantAssertionsSigned="true"/);

  const other = (await api('POST', '/organizations', { name: 'Message Signers' })).body.id;
  await api('POST', `/organizations/${other}/domains`, { domain: 'msg.example' });
  await api('PATCH', `/organizations/${other}/domains/msg.example`, { verified: true });
  const relaxed = (
    await api('POST', `/organizations/${other}/sso-connections`, {
      type: 'saml',
      name: 'Relaxed',
      idp_entity_id: idp.entityId,
      idp_sso_url: idp.ssoUrl,
      idp_certificates: [idp.keys.cert],
      want_assertions_signed: false,
    })
  ).body;
  tt.false(relaxed.want_assertions_signed);
  tt.regex(await (await fetch(relaxed.sp_metadata_url)).text(), /WantAssertionsSigned="false"/);
  const relaxedSp = samlify.ServiceProvider({
    entityID: relaxed.sp_entity_id,
    assertionConsumerService: [{ Binding: samlify.Constants.namespace.binding.post, Location: relaxed.acs_url }],
    wantAssertionsSigned: false,
    wantMessageSigned: true,
  });
  const browser = new Browser(t.url);
  const { url } = await startAuthorization(tenant, client, { organization: other });
  const toIdp = await continueWithSso(browser, await browser.follow(url));
  const requestId = await idp.requestIdOf(samlify.ServiceProvider({ metadata: await (await fetch(relaxed.sp_metadata_url)).text() }), toIdp.url);
  const response = await idp.response(relaxedSp, relaxed.acs_url, relaxed.sp_entity_id, {
    inResponseTo: requestId,
    nameId: 'relaxed',
    attributes: { email: 'relaxed@msg.example' },
  });
  const done = await browser.follow(relaxed.acs_url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ SAMLResponse: response }).toString(),
  });
  tt.true(
    done.url.startsWith(client.redirect_uris[0]!),
    `${done.res.status} ${done.url} ${(await api('GET', `/organizations/${other}/sso-connections/${relaxed.id}`)).body.last_error}`,
  );
});

test.serial('an IdP asserting a look-alike address (a zero-width joiner) gets no account, and the reason is named', async (tt) => {
  const { browser, requestId } = await beginAtApp();
  refusedAtOurPage(tt, await post(browser, await assertion(requestId, 'zwj', 'mo\u200d@victim.example')));
  tt.regex((await api('GET', `/organizations/${orgId}/sso-connections/${conn.id}`)).body.last_error, /not a usable email address/);
  tt.deepEqual(await linksOf(ids.member!), [{ subject: 'mo-at-idp', linked_by: 'verified_domain' }], 'nothing new linked');
});
