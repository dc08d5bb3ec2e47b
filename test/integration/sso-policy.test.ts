import test from 'ava';
import { decodeJwt } from 'jose';
import * as oidc from 'openid-client';
import * as samlify from 'samlify';
import { adminApi, createTenant, startTestApp, type TestApp, type TestTenant, webClient } from '../helpers/app.ts';
import { Browser, enterCredentials } from '../helpers/browser.ts';
import { type RegisteredClient, signIn, startAuthorization } from '../helpers/oidc.ts';
import { TestSamlIdp } from '../helpers/saml-idp.ts';

/**
 * What an organization's SSO tells the authentication policy: a SAML IdP's multi-factor
 * AuthnContextClassRef becomes amr ['fed','mfa'], and which organization's SSO a sign-in came
 * through is remembered, so sso_required is judged on refresh, switch and authorization requests.
 */

let t: TestApp;
let tenant: TestTenant;
let client: RegisteredClient;
let org: string;
let plain: string;
let conn: { id: string; acs_url: string; sp_entity_id: string; sp_metadata_url: string; mfa_authn_contexts: string[] };
let sp: ReturnType<typeof samlify.ServiceProvider>;
const idp = new TestSamlIdp();
let people = 0;

const api = (method: string, path: string, body?: unknown) => adminApi(t, tenant, method, path, body);
const claimsOf = (jwt: string) => decodeJwt(jwt) as Record<string, any>;
const PASSWORD = 'a long enough password 1';
const MULTIPLEAUTHN = 'http://schemas.microsoft.com/claims/multipleauthn';
const PASSWORD_CONTEXT = 'urn:oasis:names:tc:SAML:2.0:ac:classes:Password';

test.before(async () => {
  t = await startTestApp();
  tenant = await createTenant(t);
  client = (await api('POST', '/clients', webClient())).body;
  org = (await api('POST', '/organizations', { name: 'Policy SAML Corp' })).body.id;
  plain = (await api('POST', '/organizations', { name: 'Plain Co' })).body.id;
  await api('POST', `/organizations/${org}/domains`, { domain: 'policy-saml.example' });
  await api('PATCH', `/organizations/${org}/domains/policy-saml.example`, { verified: true });
  const created = await api('POST', `/organizations/${org}/sso-connections`, {
    type: 'saml',
    name: 'Corp IdP',
    idp_entity_id: idp.entityId,
    idp_sso_url: idp.ssoUrl,
    idp_certificates: [idp.keys.cert],
  });
  if (created.status !== 201) throw new Error(created.text);
  conn = created.body;
  sp = samlify.ServiceProvider({ metadata: await (await fetch(conn.sp_metadata_url)).text() });
});
test.after.always(async () => t?.stop());

/** A full SAML sign-in of `email` (routed to the IdP by its verified domain), answered with `context`. */
async function samlSignIn(
  email: string,
  context: string,
  params: Record<string, string> = {},
  rp = client,
  attributes: Record<string, string | string[]> = {},
) {
  const browser = new Browser(t.url);
  const { config, verifier, state, url } = await startAuthorization(tenant, rp, { scope: 'openid email offline_access', ...params });
  const page = await browser.follow(url);
  // organization= goes straight to the organization's IdP; otherwise the email routes there.
  const toIdp = page.url.startsWith(idp.ssoUrl) ? page : await enterCredentials(browser, await page.res.text(), page.url, email, 'unused');
  if (!toIdp.url.startsWith(idp.ssoUrl)) throw new Error(`expected the IdP, got ${toIdp.res.status} ${toIdp.url}`);
  const requestId = await idp.requestIdOf(sp, toIdp.url);
  const response = await idp.response(sp, conn.acs_url, conn.sp_entity_id, {
    inResponseTo: requestId,
    nameId: email,
    attributes: { email, ...attributes },
    authnContextClassRef: context,
  });
  let done = await browser.follow(conn.acs_url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'https://idp.test' },
    body: new URLSearchParams({ SAMLResponse: response }).toString(),
  });
  // A client that asks for consent shows its page after the IdP: allow.
  let consented = false;
  if (!done.url.startsWith(rp.redirect_uris[0]!)) {
    const html = await done.res.text();
    const consent = /would like to/.test(html) ? /<form method="post" action="([^"]+)"/.exec(html)?.[1] : undefined;
    consented = consent !== undefined;
    done = consent ? await browser.submit(new URL(consent, done.url).href, {}) : { res: new Response(html, { status: done.res.status }), url: done.url };
  }
  const back = new URL(done.url);
  if (!done.url.startsWith(rp.redirect_uris[0]!) || back.searchParams.has('error')) {
    return {
      refused: { error: back.searchParams.get('error'), description: back.searchParams.get('error_description') ?? (await done.res.text()).slice(0, 300) },
    };
  }
  const tokens = await oidc.authorizationCodeGrant(config, new URL(done.url), { pkceCodeVerifier: verifier, expectedState: state });
  return { tokens, config, consented };
}

const switchTo = (accessToken: string, orgId: string) =>
  fetch(`${t.url}/t/${tenant.slug}/api/v1/me/organizations/${orgId}/switch`, { method: 'POST', headers: { authorization: `Bearer ${accessToken}` } });

const refreshError = (config: oidc.Configuration, rt: string, organization: string) =>
  oidc.refreshTokenGrant(config, rt, { organization }).then(
    () => undefined,
    (e: { error?: string; error_description?: string }) => e,
  );

test.serial('SAML: the connection shows the default MFA contexts; bad lists are 422 naming the field', async (tt) => {
  tt.true(conn.mfa_authn_contexts.includes(MULTIPLEAUTHN));
  tt.true(conn.mfa_authn_contexts.includes('urn:oasis:names:tc:SAML:2.0:ac:classes:MultiFactor'));
  tt.false(conn.mfa_authn_contexts.includes(PASSWORD_CONTEXT));
  const path = `/organizations/${org}/sso-connections/${conn.id}`;
  for (const bad of ['urn:x', [''], [42], Array.from({ length: 21 }, (_, i) => `urn:x:${i}`), ['x'.repeat(501)]]) {
    const r = await api('PATCH', path, { mfa_authn_contexts: bad });
    tt.is(r.status, 422, JSON.stringify(bad).slice(0, 60));
    tt.regex(r.type, /problem\+json/);
    tt.true(
      (r.body.errors ?? []).some((e: { field: string }) => e.field.startsWith('mfa_authn_contexts')),
      r.text,
    );
  }
});

test.serial('SAML: a multi-factor AuthnContextClassRef gives amr fed+mfa, a password one fed; the list is the connection’s own', async (tt) => {
  const email = `ctx${++people}@policy-saml.example`;
  const mfa = await samlSignIn(email, MULTIPLEAUTHN);
  tt.deepEqual(mfa.tokens!.claims()!.amr, ['fed', 'mfa']);
  tt.deepEqual(claimsOf(mfa.tokens!.access_token).amr, ['fed', 'mfa']);
  const multi = await samlSignIn(email, 'urn:oasis:names:tc:SAML:2.0:ac:classes:MultiFactor');
  tt.deepEqual(multi.tokens!.claims()!.amr, ['fed', 'mfa']);
  const pwd = await samlSignIn(email, PASSWORD_CONTEXT);
  tt.deepEqual(pwd.tokens!.claims()!.amr, ['fed']);
  // AD FS and Entra ID may keep the Password class and list the methods in an attribute.
  const methods = { 'http://schemas.microsoft.com/claims/authnmethodsreferences': [PASSWORD_CONTEXT, MULTIPLEAUTHN] };
  tt.deepEqual((await samlSignIn(email, PASSWORD_CONTEXT, {}, client, methods)).tokens!.claims()!.amr, ['fed', 'mfa']);

  // The connection's own list replaces the default: only its value counts now.
  const path = `/organizations/${org}/sso-connections/${conn.id}`;
  const set = await api('PATCH', path, { mfa_authn_contexts: ['urn:example:idp:strong'] });
  tt.is(set.status, 200, set.text);
  tt.deepEqual(set.body.mfa_authn_contexts, ['urn:example:idp:strong']);
  tt.deepEqual((await samlSignIn(email, 'urn:example:idp:strong')).tokens!.claims()!.amr, ['fed', 'mfa']);
  tt.deepEqual((await samlSignIn(email, MULTIPLEAUTHN)).tokens!.claims()!.amr, ['fed']);
  // An empty list: nothing the IdP says counts as MFA.
  tt.is((await api('PATCH', path, { mfa_authn_contexts: [] })).status, 200);
  tt.deepEqual((await samlSignIn(email, 'urn:example:idp:strong')).tokens!.claims()!.amr, ['fed']);
  // null: back to the defaults.
  const back = await api('PATCH', path, { mfa_authn_contexts: null });
  tt.is(back.status, 200, back.text);
  tt.true(back.body.mfa_authn_contexts.includes(MULTIPLEAUTHN));
  tt.deepEqual((await samlSignIn(email, MULTIPLEAUTHN)).tokens!.claims()!.amr, ['fed', 'mfa']);
  const log = (await api('GET', `/organizations/${org}/audit-log?limit=50`)).body.data as Array<Record<string, any>>;
  tt.true(
    log.some((e) => e.action === 'connection.updated'),
    'the change is audited as any connection change',
  );
});

test.serial('SAML: MFA required with upstream MFA accepted — an org token only when the IdP said multi-factor', async (tt) => {
  tt.is((await api('PUT', `/organizations/${org}/auth-policy`, { mfa_required: true, upstream_mfa_satisfies: true })).status, 200);
  const email = `mfa${++people}@policy-saml.example`;
  const ok = await samlSignIn(email, MULTIPLEAUTHN);
  tt.is(claimsOf(ok.tokens!.access_token).org_id, org, 'the IdP’s MFA satisfies the organization');
  const refused = await samlSignIn(email, PASSWORD_CONTEXT);
  tt.is(refused.refused?.error, 'access_denied');
  tt.regex(refused.refused?.description ?? '', /missing: mfa/);

  // Without upstream_mfa_satisfies the IdP's MFA does not count: Tessera's own factor is asked for.
  await api('PATCH', `/organizations/${org}/auth-policy`, { upstream_mfa_satisfies: false });
  const notAccepted = await samlSignIn(email, MULTIPLEAUTHN);
  tt.is(notAccepted.refused?.error, 'access_denied');
  await api('PUT', `/organizations/${org}/auth-policy`, {});
});

test.serial('SAML: another organization’s IdP reporting MFA does not satisfy an organization that accepts its own IdP’s MFA', async (tt) => {
  // `plain` accepts upstream MFA; the person signs in through `org`'s IdP (which its owner controls).
  tt.is((await api('PUT', `/organizations/${plain}/auth-policy`, { mfa_required: true, upstream_mfa_satisfies: true })).status, 200);
  try {
    const email = `cross${++people}@policy-saml.example`;
    const viaOther = await samlSignIn(email, MULTIPLEAUTHN);
    tt.deepEqual(viaOther.tokens!.claims()!.amr, ['fed', 'mfa']);
    const userId = viaOther.tokens!.claims()!.sub;
    tt.is((await api('POST', `/organizations/${plain}/members`, { user_id: userId, role: 'member' })).status, 201);
    const refused = await refreshError(viaOther.config!, viaOther.tokens!.refresh_token!, plain);
    tt.is(refused?.error, 'invalid_target');
    tt.regex(refused?.error_description ?? '', /missing: mfa/);
    const sw = await switchTo(viaOther.tokens!.access_token, plain);
    tt.is(sw.status, 403);
    tt.like(await sw.json(), { missing: 'mfa' });
    const asked = await samlSignIn(email, MULTIPLEAUTHN, { organization: plain });
    tt.is(asked.refused?.error, 'access_denied', 'not on the authorization request either');
  } finally {
    await api('PUT', `/organizations/${plain}/auth-policy`, {});
  }
});

test.serial(
  'sso_required on tokens: a password session of a member of the organization’s domain is refused on refresh, switch and authorization; an SSO session gets it',
  async (tt) => {
    // A member of both organizations, of the SSO organization's domain, signed in with a password
    // before the organization required SSO (a session the sign-in step can no longer refuse).
    const email = `alice${++people}@policy-saml.example`;
    const userId = (await api('POST', '/users', { email, password: PASSWORD, email_verified: true })).body.id;
    for (const o of [org, plain]) await api('POST', `/organizations/${o}/members`, { user_id: userId, role: 'member' });
    // (While the connection is off, the domain's people sign in with their passwords.)
    const connPath = `/organizations/${org}/sso-connections/${conn.id}`;
    await api('PATCH', connPath, { enabled: false });
    const pwd = await signIn(t, tenant, client, { email, password: PASSWORD, params: { organization: plain } });
    await api('PATCH', connPath, { enabled: true });
    tt.deepEqual(claimsOf(pwd.tokens.access_token).amr, ['pwd']);
    tt.is(claimsOf(pwd.tokens.access_token).org_id, plain);
    const before = await oidc.refreshTokenGrant(pwd.config, pwd.tokens.refresh_token!, { organization: org });
    tt.is(claimsOf(before.access_token).org_id, org, 'before SSO is required, the password session works in it');

    tt.is((await api('PATCH', `/organizations/${org}/auth-policy`, { sso_required: true })).status, 200);
    const refresh = await refreshError(pwd.config, before.refresh_token!, org);
    tt.is(refresh?.error, 'invalid_target');
    tt.regex(refresh?.error_description ?? '', /missing: sso/);
    const sw = await switchTo(pwd.tokens.access_token, org);
    tt.is(sw.status, 403);
    tt.regex(sw.headers.get('content-type') ?? '', /problem\+json/);
    tt.like(await sw.json(), { code: 'auth_policy_not_met', missing: 'sso' });
    // A new authorization request in the same browser session, naming the organization.
    const again = await signIn(t, tenant, client, { browser: pwd.browser, params: { organization: org } }).then(
      () => undefined,
      (e: { error?: string; error_description?: string }) => e,
    );
    tt.is(again?.error, 'access_denied');
    tt.regex(again?.error_description ?? '', /missing: sso/);
    // The refusals spent nothing: the session still works in the other organization.
    const still = await oidc.refreshTokenGrant(pwd.config, before.refresh_token!, { organization: plain });
    tt.is(claimsOf(still.access_token).org_id, plain);

    // Through the organization's SSO connection the same person gets it, on every path.
    const sso = await samlSignIn(email, PASSWORD_CONTEXT, { organization: org });
    tt.is(claimsOf(sso.tokens!.access_token).org_id, org);
    const toPlain = await oidc.refreshTokenGrant(sso.config!, sso.tokens!.refresh_token!, { organization: plain });
    tt.is(claimsOf(toPlain.access_token).org_id, plain);
    const backToOrg = await oidc.refreshTokenGrant(sso.config!, toPlain.refresh_token!, { organization: org });
    tt.is(claimsOf(backToOrg.access_token).org_id, org, 'a refresh of the SSO sign-in keeps knowing it came through SSO');
    const swPlain = await switchTo(sso.tokens!.access_token, plain);
    tt.is(swPlain.status, 200);
    const swOrg = await switchTo((await swPlain.json()).new_token, org);
    tt.is(swOrg.status, 200, 'and so does a switch of it');
    tt.is((await swOrg.json()).org_id, org);

    await api('PATCH', `/organizations/${org}/auth-policy`, { sso_required: false });
  },
);

test.serial('sso_required on tokens: a member from outside the organization’s domains (a guest) is not asked for its SSO', async (tt) => {
  const email = `guest${++people}@elsewhere.example`;
  const userId = (await api('POST', '/users', { email, password: PASSWORD, email_verified: true })).body.id;
  for (const o of [org, plain]) await api('POST', `/organizations/${o}/members`, { user_id: userId, role: 'member' });
  await api('PATCH', `/organizations/${org}/auth-policy`, { sso_required: true });
  const guest = await signIn(t, tenant, client, { email, password: PASSWORD, params: { organization: plain } });
  const refreshed = await oidc.refreshTokenGrant(guest.config, guest.tokens.refresh_token!, { organization: org });
  tt.is(claimsOf(refreshed.access_token).org_id, org, 'sign-in never routes a guest to the IdP, and tokens agree');
  tt.is((await switchTo(guest.tokens.access_token, org)).status, 200);
  await api('PATCH', `/organizations/${org}/auth-policy`, { sso_required: false });
});

test.serial('sso_required on tokens: a client that asks for consent — the SSO sign-in is recorded once its grant exists', async (tt) => {
  const thirdParty: RegisteredClient = (await api('POST', '/clients', { ...webClient('http://localhost:8080/consent-cb'), require_consent: true })).body;
  await api('PATCH', `/organizations/${org}/auth-policy`, { sso_required: true });
  const email = `carla${++people}@policy-saml.example`;
  const sso = await samlSignIn(email, PASSWORD_CONTEXT, { organization: org }, thirdParty);
  tt.falsy(sso.refused, JSON.stringify(sso.refused));
  tt.true(sso.consented, 'the consent page came after the IdP');
  tt.is(claimsOf(sso.tokens!.access_token).org_id, org);
  const refreshed = await oidc.refreshTokenGrant(sso.config!, sso.tokens!.refresh_token!, { organization: org });
  tt.is(claimsOf(refreshed.access_token).org_id, org);
  await api('PATCH', `/organizations/${org}/auth-policy`, { sso_required: false });
});

test.serial(
  'sso_required in the portal: a password session of the domain’s admin gets 403 (missing sso); signing in again through the organization’s SSO opens the pages',
  async (tt) => {
    const email = `pia${++people}@policy-saml.example`;
    const userId = (await api('POST', '/users', { email, password: PASSWORD, email_verified: true })).body.id;
    for (const o of [org, plain]) await api('POST', `/organizations/${o}/members`, { user_id: userId, role: 'admin' });
    const portal = (path: string) => `${t.url}/t/${tenant.slug}/portal/${path}`;
    // A portal session made with the password while the connection was off.
    const connPath = `/organizations/${org}/sso-connections/${conn.id}`;
    await api('PATCH', connPath, { enabled: false });
    const browser = new Browser(t.url);
    const first = await browser.follow(portal('organizations'));
    const listed = await enterCredentials(browser, await first.res.text(), first.url, email, PASSWORD);
    tt.is(listed.url, portal('organizations'));
    await api('PATCH', connPath, { enabled: true });
    tt.is((await api('PATCH', `/organizations/${org}/auth-policy`, { sso_required: true })).status, 200);

    const refused = await browser.follow(portal(`organizations/${org}/members`));
    tt.is(refused.res.status, 403);
    const html = await refused.res.text();
    tt.regex(html, /missing: <code>sso<\/code>/);
    tt.is((await browser.follow(portal(`organizations/${plain}/members`))).res.status, 200, 'the other organization keeps working');

    // "Sign in again": prompt=login, the email routes to the organization's IdP, and back to the page.
    const href = /<a class="button" href="([^"]+)"/.exec(html)![1]!.replace(/&amp;/g, '&');
    tt.is(new URL(href, t.url).searchParams.get('step'), 'login');
    const page = await browser.follow(new URL(href, t.url).href);
    const toIdp = await enterCredentials(browser, await page.res.text(), page.url, email, 'unused');
    tt.true(toIdp.url.startsWith(idp.ssoUrl), toIdp.url);
    const response = await idp.response(sp, conn.acs_url, conn.sp_entity_id, {
      inResponseTo: await idp.requestIdOf(sp, toIdp.url),
      nameId: email,
      attributes: { email },
      authnContextClassRef: PASSWORD_CONTEXT,
    });
    const back = await browser.follow(conn.acs_url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'https://idp.test' },
      body: new URLSearchParams({ SAMLResponse: response }).toString(),
    });
    tt.is(back.url, portal(`organizations/${org}/members`));
    tt.is(back.res.status, 200);

    await api('PATCH', `/organizations/${org}/auth-policy`, { sso_required: false });
  },
);
