import test from 'ava';
import { sql } from 'kysely';
import * as oidc from 'openid-client';
import * as samlify from 'samlify';
import { adminApi, createTenant, startTestApp, type TestApp, type TestTenant, webClient } from '../helpers/app.ts';
import { Browser, enterCredentials, formAction } from '../helpers/browser.ts';
import { type RegisteredClient, signIn, startAuthorization } from '../helpers/oidc.ts';
import { callbackLocation, hostileReturnTos } from '../helpers/return-to.ts';
import { TestSamlIdp } from '../helpers/saml-idp.ts';

/**
 * An organization's own sign-in page (/t/<slug>/o/<orgSlug>/login), the branded sign-in of any
 * authorization request with organization= (name, logo, its SSO first; straight to the IdP when
 * its policy requires SSO), and a sign-out of an organization's sign-in ending on its page.
 */

let t: TestApp;
let tenant: TestTenant;
let other: TestTenant;
let client: RegisteredClient;
const idp = new TestSamlIdp();
const PASSWORD = 'an organization sign-in 7';
const LOGO = 'https://logo.example/acme.svg';
let acme: { id: string; slug: string };
let member: { id: string; email: string };
let people = 0;

const api = (method: string, path: string, body?: unknown) => adminApi(t, tenant, method, path, body);
const pageOf = (slug: string, tenantSlug = tenant.slug) => `${t.url}/t/${tenantSlug}/o/${slug}/login`;

async function person(on = tenant) {
  const email = `person${++people}@people.example`;
  const user = (await adminApi(t, on, 'POST', '/users', { email, password: PASSWORD, email_verified: true })).body;
  return { id: user.id as string, email };
}

async function organization(body: Record<string, unknown>, on = tenant) {
  const r = await adminApi(t, on, 'POST', '/organizations', body);
  if (r.status !== 201) throw new Error(r.text);
  return r.body as { id: string; slug: string; name: string };
}

async function samlConnection(orgId: string) {
  const created = await api('POST', `/organizations/${orgId}/sso-connections`, {
    type: 'saml',
    name: 'Corp IdP',
    idp_entity_id: idp.entityId,
    idp_sso_url: idp.ssoUrl,
    idp_certificates: [idp.keys.cert],
  });
  if (created.status !== 201) throw new Error(created.text);
  return created.body as { id: string; acs_url: string; sp_entity_id: string; sp_metadata_url: string };
}

/** The sign-in page an authorization request of the app lands on (following redirects on our origin). */
async function landing(params: Record<string, string>, browser = new Browser(t.url)) {
  const { url } = await startAuthorization(tenant, client, params);
  const hop = await browser.follow(url);
  return { ...hop, html: await hop.res.text(), browser };
}

/** The page with what differs between two requests (the interaction's id) taken out. */
const normalized = (html: string) => html.replace(/\/interaction\/[^/"]+/g, '/interaction/UID');

test.before(async () => {
  t = await startTestApp();
  tenant = await createTenant(t);
  other = await createTenant(t);
  client = (await api('POST', '/clients', webClient())).body;
  acme = await organization({ name: 'Acme Widgets', slug: 'acme', logo_url: LOGO });
  member = await person();
  await api('POST', `/organizations/${acme.id}/members`, { user_id: member.id, role: 'member' });
});
test.after.always(async () => t?.stop());

test('the organization’s page starts the portal’s sign-in for it; its page shows the name and logo; a member ends in the account pages', async (tt) => {
  const browser = new Browser(t.url);
  const start = await browser.request(pageOf('acme'));
  tt.is(start.status, 302);
  const auth = new URL(start.headers.get('location')!);
  tt.is(auth.pathname, `/t/${tenant.slug}/auth`);
  tt.is(auth.searchParams.get('client_id'), 'tessera:portal');
  tt.is(auth.searchParams.get('organization'), acme.id);
  const page = await browser.follow(auth.href);
  const html = await page.res.text();
  tt.regex(html, /<div class="org-brand">/);
  tt.regex(html, new RegExp(`<img src="${LOGO}" alt="Acme Widgets" referrerpolicy="no-referrer">`));
  tt.notRegex(html, /Continue with/, 'no SSO connection, no SSO button');
  const done = await enterCredentials(browser, html, page.url, member.email, PASSWORD);
  tt.is(new URL(done.url).pathname, `/t/${tenant.slug}/account/organizations`);
  tt.regex(await done.res.text(), /Acme Widgets/);
});

test('?return_to= is honoured only for the tenant’s own portal and account pages', async (tt) => {
  for (const [asked, expected] of [
    [`/t/${tenant.slug}/account/security`, `/t/${tenant.slug}/account/security`],
    ['https://evil.example/x', `/t/${tenant.slug}/portal/organizations`],
    [`//evil.example/t/${tenant.slug}/account/`, `/t/${tenant.slug}/portal/organizations`],
  ] as const) {
    const browser = new Browser(t.url);
    const page = await browser.follow(`${pageOf('acme')}?${new URLSearchParams({ return_to: asked })}`);
    const done = await enterCredentials(browser, await page.res.text(), page.url, member.email, PASSWORD);
    tt.is(new URL(done.url).pathname, expected, asked);
  }
});

test('?return_to= with dot segments, encoded dots, backslashes, other hosts or control characters goes to the portal’s home', async (tt) => {
  const browser = new Browser(t.url);
  const page = await browser.follow(pageOf('acme'));
  await enterCredentials(browser, await page.res.text(), page.url, member.email, PASSWORD);
  const login = (returnTo: string) => `${pageOf('acme')}?${new URLSearchParams({ return_to: returnTo })}`;
  for (const hostile of hostileReturnTos(tenant.slug, other.slug)) {
    const to = await callbackLocation(browser, t.url, login(hostile));
    tt.true(to === `/t/${tenant.slug}/portal/organizations` || to === 'refused 400', `${JSON.stringify(hostile)} → ${to}`);
  }
  tt.is(await callbackLocation(browser, t.url, login(`/t/${tenant.slug}/account/security`)), `/t/${tenant.slug}/account/security`);
});

test('someone who is not a member signs in on the page and is refused, with the reason', async (tt) => {
  const stranger = await person();
  const browser = new Browser(t.url);
  const page = await browser.follow(pageOf('acme'));
  const done = await enterCredentials(browser, await page.res.text(), page.url, stranger.email, PASSWORD);
  tt.is(done.res.status, 400);
  tt.regex(await done.res.text(), /The sign-in was refused: The user is not a member of the organization/);
});

test('an unknown slug, an id, another tenant’s organization, a suspended and a pending one: the same 404 page', async (tt) => {
  const suspended = await organization({ name: 'Gone Co', status: 'suspended' });
  const pending = await organization({ name: 'Waiting Co', status: 'pending' });
  const foreign = await organization({ name: 'Foreign Co', slug: 'foreign-co' }, other);
  const bodies = new Set<string>();
  for (const url of [
    pageOf('no-such-org'),
    pageOf(acme.id),
    pageOf(foreign.slug),
    pageOf(suspended.slug),
    pageOf(pending.slug),
    pageOf('%3Cscript%3E'),
    pageOf('a%00b'),
  ]) {
    const res = await fetch(url, { redirect: 'manual' });
    tt.is(res.status, 404, url);
    tt.regex(res.headers.get('content-type') ?? '', /text\/html/);
    const html = await res.text();
    tt.regex(html, /No such sign-in page/);
    tt.notRegex(html, /<script>/);
    bodies.add(html);
  }
  tt.is(bodies.size, 1, 'nothing tells an unknown slug from an organization that is not signing in');
  // The other tenant's own page for it works: the page is per tenant.
  tt.is((await fetch(pageOf(foreign.slug, other.slug), { redirect: 'manual' })).status, 302);
});

test('organization= naming nothing usable changes nothing: unknown, another tenant’s, suspended, pending', async (tt) => {
  const today = normalized((await landing({})).html);
  tt.notRegex(today, /org-brand/);
  const foreign = await organization({ name: 'Their Org', slug: 'their-org', logo_url: 'https://logo.example/theirs.svg' }, other);
  const suspended = await organization({ name: 'Suspended Org', logo_url: LOGO, status: 'suspended' });
  const pending = await organization({ name: 'Pending Org', logo_url: LOGO, status: 'pending' });
  for (const value of ['no-such-org', foreign.id, foreign.slug, suspended.id, pending.slug, '00000000-0000-4000-8000-000000000000']) {
    const { html, res } = await landing({ organization: value });
    tt.is(res.status, 200, value);
    tt.is(normalized(html), today, value);
  }
});

test('organization= with a name full of markup: escaped on the page', async (tt) => {
  const org = await organization({ name: '<script>alert(1)</script> & "Co" <img src=x onerror=alert(2)>' });
  const { html } = await landing({ organization: org.id });
  tt.notRegex(html, /<script>alert/);
  tt.notRegex(html, /<img src=x/);
  tt.regex(html, /&lt;script&gt;alert\(1\)&lt;\/script&gt; &amp; &quot;Co&quot;/);
});

test('logo_url: only https; javascript:, data:, http: and garbage are 422 naming the field, on create and update', async (tt) => {
  const bad = [
    'javascript:alert(1)',
    'data:image/svg+xml;base64,PHN2Zz48L3N2Zz4=',
    'http://logo.example/a.png',
    'not a url',
    `https://x.example/${'a'.repeat(2000)}`,
  ];
  for (const logo_url of bad) {
    const created = await api('POST', '/organizations', { name: 'Bad Logo', logo_url });
    tt.is(created.status, 422, logo_url.slice(0, 40));
    tt.regex(created.type, /problem\+json/);
    tt.true(
      created.body.errors.some((e: { field: string }) => e.field === 'logo_url'),
      created.text,
    );
    const patched = await api('PATCH', `/organizations/${acme.id}`, { logo_url });
    tt.is(patched.status, 422, logo_url.slice(0, 40));
  }
  tt.regex((await api('POST', '/organizations', { name: 'Bad Logo', logo_url: 'javascript:alert(1)' })).text, /must be an https URL/);
  tt.is((await api('GET', `/organizations/${acme.id}`)).body.logo_url, LOGO, 'unchanged');
  // Removing the logo is allowed, and the page then shows the name alone.
  const plain = await organization({ name: 'No Logo Co', logo_url: LOGO });
  tt.is((await api('PATCH', `/organizations/${plain.id}`, { logo_url: null })).body.logo_url, null);
  const { html } = await landing({ organization: plain.id });
  tt.regex(html, /<div class="org-brand">\s*<p>No Logo Co<\/p>/);
});

test('a logo stored before the https rule (http:) is not shown; the name is', async (tt) => {
  const org = await organization({ name: 'Old Logo Co' });
  // As a row written before the rule would be: straight into the table.
  await sql`update organizations set logo_url = 'http://logo.example/old.png' where tenant_id = ${tenant.id} and id = ${org.id}`.execute(t.app.connection.db);
  const { html } = await landing({ organization: org.id });
  tt.regex(html, /Old Logo Co/);
  tt.notRegex(html, /old\.png/);
});

test('an organization with SSO: its button comes before the email field and starts its IdP; email and password still work', async (tt) => {
  const org = await organization({ name: 'Button Corp', slug: 'button-corp', logo_url: LOGO });
  const conn = await samlConnection(org.id);
  const sp = samlify.ServiceProvider({ metadata: await (await fetch(conn.sp_metadata_url)).text() });
  const { html, url, browser } = await landing({ organization: 'button-corp' });
  const button = html.indexOf('Continue with Button Corp’s SSO');
  tt.true(button > 0, html.slice(0, 600));
  tt.true(button < html.indexOf('name="email"'), 'the SSO button is first');
  const action = formAction(html);
  tt.regex(action, /\/interaction\/[^/]+\/sso$/);
  const toIdp = await browser.submit(new URL(action, url).href, {});
  tt.true(toIdp.url.startsWith(idp.ssoUrl), toIdp.url);
  tt.truthy(await idp.requestIdOf(sp, toIdp.url), 'a real AuthnRequest of this connection');

  // The same page still signs in a member with a password (SSO is not required).
  const p = await person();
  await api('POST', `/organizations/${org.id}/members`, { user_id: p.id, role: 'member' });
  const withPassword = await landing({ organization: org.id });
  const identify = new URL(/action="([^"]+\/identify)"/.exec(withPassword.html)![1]!, withPassword.url).href;
  const step = await withPassword.browser.submit(identify, { email: p.email });
  const done = await enterCredentials(withPassword.browser, await step.res.text(), step.url, p.email, PASSWORD);
  tt.true(done.url.startsWith(client.redirect_uris[0]!), done.url);
});

test('the SSO button starts only the organization the request names: without one it is refused, and a form field changes nothing', async (tt) => {
  const org = await organization({ name: 'Named Corp' });
  await samlConnection(org.id);
  const plain = await landing({});
  const sso = new URL(`${new URL(plain.url).pathname}/sso`, t.url).href;
  const refused = await plain.browser.submit(sso, { organization: org.id, org_id: org.id });
  tt.is(refused.res.status, 400);
  tt.regex(await refused.res.text(), /Single sign-on is not available for this sign-in/);
  // From another site: refused before anything happens.
  const crossSite = await plain.browser.submit(sso, {}, { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' });
  tt.is(crossSite.res.status, 403);
});

test('sso_required: the email step is skipped — straight to the IdP, and back with an org-scoped token', async (tt) => {
  const org = await organization({ name: 'Strict Corp', sso_required: true });
  await api('POST', `/organizations/${org.id}/domains`, { domain: 'strict.example' });
  await api('PATCH', `/organizations/${org.id}/domains/strict.example`, { verified: true });
  const conn = await samlConnection(org.id);
  const sp = samlify.ServiceProvider({ metadata: await (await fetch(conn.sp_metadata_url)).text() });
  const browser = new Browser(t.url);
  const { config, verifier, state, url } = await startAuthorization(tenant, client, { scope: 'openid email', organization: org.id });
  const first = await browser.request(url);
  const interaction = new URL(first.headers.get('location')!, url).href;
  const toIdp = await browser.request(interaction);
  tt.is(toIdp.status, 302);
  const idpUrl = toIdp.headers.get('location')!;
  tt.true(idpUrl.startsWith(idp.ssoUrl), idpUrl);
  const email = 'rita@strict.example';
  const response = await idp.response(sp, conn.acs_url, conn.sp_entity_id, {
    inResponseTo: await idp.requestIdOf(sp, idpUrl),
    nameId: email,
    attributes: { email },
  });
  const back = await browser.follow(conn.acs_url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'https://idp.test' },
    body: new URLSearchParams({ SAMLResponse: response }).toString(),
  });
  tt.true(back.url.startsWith(client.redirect_uris[0]!), back.url);
  const tokens = await oidc.authorizationCodeGrant(config, new URL(back.url), { pkceCodeVerifier: verifier, expectedState: state });
  tt.is(tokens.claims()!.org_id, org.id);
  tt.is(tokens.claims()!.email, email);

  // The organization's own page goes there as well, with no page in between.
  const strictPage = await new Browser(t.url).follow(pageOf(org.slug));
  tt.true(strictPage.url.startsWith(idp.ssoUrl), strictPage.url);
});

test('allowed_methods ["sso"] skips the email step too; a policy that still admits passwords offers the button', async (tt) => {
  const org = await organization({ name: 'SSO Only Corp' });
  await samlConnection(org.id);
  tt.is((await api('PATCH', `/organizations/${org.id}/auth-policy`, { allowed_methods: ['sso'] })).status, 200);
  const browser = new Browser(t.url);
  const first = await browser.request((await startAuthorization(tenant, client, { organization: org.id })).url);
  const toIdp = await browser.request(new URL(first.headers.get('location')!, t.url).href);
  tt.is(toIdp.status, 302);
  tt.true(toIdp.headers.get('location')!.startsWith(idp.ssoUrl));
  tt.is((await api('PATCH', `/organizations/${org.id}/auth-policy`, { allowed_methods: ['sso', 'passkey'] })).status, 200);
  const { html, res } = await landing({ organization: org.id });
  tt.is(res.status, 200);
  tt.regex(html, /Continue with SSO Only Corp’s SSO/);
});

test('sso_required without an enabled connection: the branded page with the email step, as the policy already handles', async (tt) => {
  const org = await organization({ name: 'No Connection Corp', sso_required: true });
  const { html, res } = await landing({ organization: org.id });
  tt.is(res.status, 200);
  tt.regex(html, /No Connection Corp/);
  tt.notRegex(html, /Continue with/);
  tt.regex(html, /name="email"/);
});

/** Signs `who` in to the app for `orgId` (or for none) and answers the ID token. */
async function appSignIn(who: { email: string }, params: Record<string, string>) {
  const r = await signIn(t, tenant, client, { email: who.email, password: PASSWORD, params });
  return { idToken: r.tokens.id_token!, browser: r.browser };
}

const logoutAction = (html: string) => /<form id="op.logoutForm" method="post" action="([^"]+)"/.exec(html)![1]!;

/** end_session with `params`, confirmed with "Sign out"; answers every hop after the confirmation. */
async function signOut(browser: Browser, params: Record<string, string>) {
  const page = await browser.follow(`${tenant.issuer}/session/end?${new URLSearchParams(params)}`);
  const html = await page.res.text();
  const xsrf = /name="xsrf" value="([^"]+)"/.exec(html)?.[1];
  if (!xsrf) throw new Error(`no sign-out form: ${html.slice(0, 300)}`);
  const from = browser.visited.length;
  const after = await browser.submit(logoutAction(html), { xsrf, logout: 'yes' });
  return { ...after, hops: browser.visited.slice(from) };
}

test('sign-out of an organization’s sign-in with no post_logout_redirect_uri ends on the organization’s page', async (tt) => {
  const { idToken, browser } = await appSignIn(member, { organization: acme.id });
  const out = await signOut(browser, { id_token_hint: idToken });
  tt.true(
    out.hops.some((h) => h === pageOf('acme')),
    out.hops.join('\n'),
  );
  // …and that page starts a new sign-in for the organization: the session is gone.
  const html = await out.res.text();
  tt.regex(out.url, /\/interaction\//);
  tt.regex(html, /Acme Widgets/);
  tt.regex(html, /name="email"/);

  // By client_id instead of an ID token: the same.
  const again = await appSignIn(member, { organization: acme.slug });
  const byClient = await signOut(again.browser, { client_id: client.client_id });
  tt.true(byClient.hops.includes(pageOf('acme')), byClient.hops.join('\n'));
});

test('sign-out with a registered post_logout_redirect_uri, or of a sign-in without an organization: as before', async (tt) => {
  const withOrg = await appSignIn(member, { organization: acme.id });
  const toApp = await signOut(withOrg.browser, { id_token_hint: withOrg.idToken, post_logout_redirect_uri: 'http://localhost:8080/bye', state: 's1' });
  tt.is(toApp.url, 'http://localhost:8080/bye?state=s1');
  tt.false(toApp.hops.some((h) => h.includes('/o/')));

  const withoutOrg = await appSignIn(member, {});
  const plain = await signOut(withoutOrg.browser, { id_token_hint: withoutOrg.idToken });
  tt.is(plain.res.status, 200);
  tt.regex(new URL(plain.url).pathname, /\/session\/end\/success$/);
  tt.regex(await plain.res.text(), /<h1>Signed out<\/h1>/);
  tt.false(plain.hops.some((h) => h.includes('/o/')));
});

test('“Stay signed in” ends the app’s sign-in only: the tenant’s page naming the app, not the organization’s', async (tt) => {
  const { idToken, browser } = await appSignIn(member, { organization: acme.id });
  const page = await browser.follow(`${tenant.issuer}/session/end?${new URLSearchParams({ id_token_hint: idToken })}`);
  const html = await page.res.text();
  const xsrf = /name="xsrf" value="([^"]+)"/.exec(html)![1]!;
  const from = browser.visited.length;
  const after = await browser.submit(logoutAction(html), { xsrf });
  tt.is(after.res.status, 200);
  tt.regex(await after.res.text(), /signed out of Test app/);
  tt.false(
    browser.visited.slice(from).some((h) => h.includes('/o/')),
    browser.visited.slice(from).join('\n'),
  );
});

test('sign-out of an organization suspended meanwhile: the tenant’s signed-out page, never a 500', async (tt) => {
  const org = await organization({ name: 'Soon Suspended' });
  const p = await person();
  await api('POST', `/organizations/${org.id}/members`, { user_id: p.id, role: 'member' });
  const { idToken, browser } = await appSignIn(p, { organization: org.id });
  const page = await browser.follow(`${tenant.issuer}/session/end?${new URLSearchParams({ id_token_hint: idToken })}`);
  const html = await page.res.text();
  await api('PATCH', `/organizations/${org.id}`, { status: 'suspended' });
  const xsrf = /name="xsrf" value="([^"]+)"/.exec(html)![1]!;
  const after = await browser.submit(logoutAction(html), { xsrf, logout: 'yes' });
  tt.is(after.res.status, 200);
  tt.regex(await after.res.text(), /<h1>Signed out<\/h1>/);
});

test('a forged signed-out cookie sends nobody anywhere', async (tt) => {
  const browser = new Browser(t.url);
  await browser.jar.setCookie(`tessera.signed-out-org=${acme.id}; Path=/t/${tenant.slug}/session/end`, `${tenant.issuer}/session/end/success`);
  const res = await browser.request(`${tenant.issuer}/session/end/success`);
  tt.is(res.status, 200);
  tt.regex(await res.text(), /<h1>Signed out<\/h1>/);
});
