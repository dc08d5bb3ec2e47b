import test from 'ava';
import { decodeJwt } from 'jose';
import { sql } from 'kysely';
import * as oidc from 'openid-client';
import { adminApi, createTenant, freePort, startTestApp, type TestApp, type TestTenant, webClient } from '../helpers/app.ts';
import { Browser, continueWithSso, enterCredentials, formAction } from '../helpers/browser.ts';
import { authorizationUrl, discover, type RegisteredClient, signIn, startAuthorization } from '../helpers/oidc.ts';
import { startUpstreamIdp, type UpstreamUser } from '../helpers/upstream-idp.ts';

let t: TestApp;
let tenant: TestTenant;
let client: RegisteredClient;
let corp: { id: string };
let connection: { id: string; redirect_uri: string };
let upstream: Awaited<ReturnType<typeof startUpstreamIdp>>;
const txt = new Map<string, string[][]>();
const users: Record<string, UpstreamUser> = {
  alice: { email: 'alice@corp.example', email_verified: true, name: 'Alice', groups: ['engineering', 'admins'] },
  bob: { email: 'bob@corp.example', email_verified: true, name: 'Bob', groups: [] },
  unverified: { email: 'mallory@corp.example', email_verified: false, name: 'Mallory' },
  taken: { email: 'existing@corp.example', email_verified: true, name: 'Not Me' },
  outsider: { email: 'eve@elsewhere.example', email_verified: true, name: 'Eve' },
  lookalike: { email: 'k\u200Dim@corp.example', email_verified: true, name: 'Kim Look-Alike' },
  // Signed in at the IdP with a password and a one-time code, and with the password only.
  twoFactors: { email: 'dana@corp.example', email_verified: true, name: 'Dana', amr: ['pwd', 'otp', 'mfa'] },
  oneFactor: { email: 'olaf@corp.example', email_verified: true, name: 'Olaf', amr: ['pwd'] },
};

const api = (method: string, path: string, body?: unknown) => adminApi(t, tenant, method, path, body);

test.before(async () => {
  t = await startTestApp({ txtRecords: txt });
  tenant = await createTenant(t);
  client = (await api('POST', '/clients', webClient())).body;
  corp = (await api('POST', '/organizations', { name: 'Corp' })).body;
  const domain = (await api('POST', `/organizations/${corp.id}/domains`, { domain: 'corp.example' })).body;
  txt.set(domain.txt_record.name, [[domain.txt_record.value]]);
  await api('POST', `/organizations/${corp.id}/domains/corp.example/verify`);
  const port = await freePort();
  const created = await api('POST', `/organizations/${corp.id}/sso-connections`, {
    type: 'oidc',
    name: 'Corp Okta',
    issuer_url: `http://localhost:${port}`,
    client_id: 'tessera',
    client_secret: 'upstream-secret',
    default_role: 'member',
    group_roles: { admins: 'admin' },
  });
  if (created.status !== 201) throw new Error(created.text);
  connection = created.body;
  upstream = await startUpstreamIdpOn(port);
});
test.after.always(async () => {
  await upstream?.close();
  await t?.stop();
});

async function startUpstreamIdpOn(port: number) {
  // freePort() then listen: the helper picks its own port, so bind to the one we registered.
  const idp = await startUpstreamIdp({ clientId: 'tessera', clientSecret: 'upstream-secret', redirectUri: connection.redirect_uri, users, port });
  return idp;
}

/** Through the RP's sign-in: email first, on to the upstream IdP, its dev login and consent, and back. */
async function ssoSignIn(login: string, params: Record<string, string> = {}) {
  const browser = new Browser([t.url, upstream.issuer]);
  const { config, verifier, state, url } = await startAuthorization(tenant, client, { scope: 'openid profile email organizations', ...params });
  // With organization=, the page offers the organization's SSO first: the person takes it.
  let hop = await continueWithSso(browser, await browser.follow(url));
  if (hop.url.startsWith(`${t.url}/t/${tenant.slug}/interaction/`)) {
    hop = await enterCredentials(browser, await hop.res.text(), hop.url, users[login]?.email ?? login, 'ignored');
  }
  // The upstream's dev login, then its consent.
  for (let i = 0; i < 3 && hop.url.startsWith(upstream.issuer); i++) {
    const html = await hop.res.text();
    const action = new URL(/action="([^"]+)"/.exec(html)![1]!, hop.url).href;
    hop = /name="login"/.test(html)
      ? await browser.submit(action, { prompt: 'login', login, password: 'any' })
      : await browser.submit(action, { prompt: 'consent' });
  }
  if (!hop.url.startsWith(client.redirect_uris[0]!)) return { failed: { status: hop.res.status, html: await hop.res.text(), url: hop.url } };
  const tokens = await oidc.authorizationCodeGrant(config, new URL(hop.url), { pkceCodeVerifier: verifier, expectedState: state });
  return { tokens, config };
}

test('SP-initiated SSO: email routes to the IdP, JIT creates the user and membership, tokens are org-scoped, groups map to roles', async (tt) => {
  const r = await ssoSignIn('alice');
  tt.truthy(r.tokens, JSON.stringify(r.failed)?.slice(0, 300));
  const claims = r.tokens!.claims()!;
  tt.is(claims.email, 'alice@corp.example');
  tt.true(claims.email_verified);
  tt.is(claims.org_id, corp.id);
  tt.deepEqual(claims.org_roles, ['admin']);
  tt.deepEqual(decodeJwt(r.tokens!.access_token).org_id, corp.id);
  // Federated, and the upstream reported no second factor (its amr carries none).
  tt.deepEqual(claims.amr, ['fed']);
  tt.is(claims.acr, 'urn:tessera:acr:fed');
  tt.deepEqual(decodeJwt(r.tokens!.access_token).amr, ['fed']);
  const member = (await api('GET', `/organizations/${corp.id}/members`)).body.data.find((m: any) => m.email === 'alice@corp.example');
  tt.deepEqual(member.roles, ['admin']);
  tt.is(member.name, 'Alice');

  // Second sign-in: the profile and the mapped roles follow the IdP.
  users.alice = { ...users.alice!, name: 'Alice Liddell', groups: ['engineering'] };
  const again = await ssoSignIn('alice');
  tt.is(again.tokens!.claims()!.name, 'Alice Liddell');
  const found = (await api('GET', '/users?email=alice@corp.example')).body.data;
  tt.is(found.length, 1, 'the same account, found by (connection, subject)');
  const detail = (await api('GET', `/users/${found[0].id}`)).body;
  tt.is(detail.identities.length, 1);
  tt.is(detail.identities[0].connection_id, connection.id);
  tt.is(detail.identities[0].organization_id, corp.id);
  tt.is(detail.identities[0].subject, 'alice');
  tt.truthy(detail.identities[0].last_login_at);
});

test('organization= on the authorization request: its SSO button goes to its IdP', async (tt) => {
  const r = await ssoSignIn('bob', { organization: corp.id });
  tt.is(r.tokens!.claims()!.org_id, corp.id);
  tt.deepEqual(r.tokens!.claims()!.org_roles, ['member'], 'the default role');
});

// Serial, these two: each reads the connection's last_error, which the other (and any refusal) overwrites.
test.serial('refusals: unverified email, an existing account not in the organization; a generic page, the reason on the connection', async (tt) => {
  const unverified = await ssoSignIn('unverified');
  tt.is(unverified.failed?.status, 403);
  tt.regex(unverified.failed!.html, /Single sign-on failed/);
  tt.false(unverified.failed!.html.includes('email_verified'), 'the reason is not shown to the user');
  tt.regex((await api('GET', `/organizations/${corp.id}/sso-connections/${connection.id}`)).body.last_error, /email_verified/);
  tt.is((await api('GET', '/users?email=mallory@corp.example')).body.data.length, 0);

  // An account whose email was never verified (anyone may register one): no link until its
  // owner proves it is theirs; the browser is asked to, and nothing is issued meanwhile.
  await api('POST', '/users', { email: 'existing@corp.example', password: 'my own password', email_verified: false });
  const taken = await ssoSignIn('taken');
  tt.is(taken.failed?.status, 200);
  tt.true(taken.failed!.url.endsWith(`/t/${tenant.slug}/sso/link`), taken.failed!.url);
  tt.regex(taken.failed!.html, /Confirm this is your account/);
  const existing = (await api('GET', '/users?email=existing@corp.example')).body.data[0];
  tt.is((await api('GET', `/users/${existing.id}`)).body.identities.length, 0, 'nothing linked');
});

test('an existing account of the verified domain, its email verified, is linked at its first SSO sign-in', async (tt) => {
  users.verified = { email: 'veri@corp.example', email_verified: true, name: 'Veri' };
  const created = await api('POST', '/users', { email: 'veri@corp.example', password: 'my own password too', email_verified: true });
  const r = await ssoSignIn('verified');
  tt.truthy(r.tokens, JSON.stringify(r.failed)?.slice(0, 300));
  tt.is(r.tokens!.claims()!.sub, created.body.id);
  const detail = (await api('GET', `/users/${created.body.id}`)).body;
  tt.is(detail.identities.length, 1);
});

test.serial('an IdP asserting an address the email rule refuses gets no account: the same rule as every other way in', async (tt) => {
  // To the IdP by the organization's SSO button (organization=): the email-first page would refuse the address itself.
  const r = await ssoSignIn('lookalike', { organization: corp.id });
  tt.is(r.failed?.status, 403);
  tt.regex(r.failed!.html, /Single sign-on failed/);
  const lastError = (await api('GET', `/organizations/${corp.id}/sso-connections/${connection.id}`)).body.last_error;
  tt.regex(lastError, /not a usable email address: it contains an invisible character \(U\+200D\)/);
  const [n] = (
    await sql<{ n: number }>`select count(*)::int as n from users where tenant_id = ${tenant.id} and name = 'Kim Look-Alike'`.execute(t.app.connection.db)
  ).rows;
  tt.is(n!.n, 0);
});

test.serial('an organization requiring MFA: the IdP’s MFA counts only when the organization accepts it, and only for who used it', async (tt) => {
  const policy = `/organizations/${corp.id}/auth-policy`;
  try {
    tt.is((await api('PATCH', policy, { mfa_required: true })).status, 200);
    // The app hears the refusal at its redirect URI, as openid-client reports it.
    const refusal = async (login: string) => tt.throwsAsync<oidc.AuthorizationResponseError>(ssoSignIn(login));
    const byDefault = await refusal('twoFactors');
    tt.is(byDefault?.error, 'access_denied', 'upstream MFA does not count by default');
    tt.regex(byDefault?.error_description ?? '', /missing: mfa/);

    tt.is((await api('PATCH', policy, { upstream_mfa_satisfies: true })).status, 200);
    const strong = await ssoSignIn('twoFactors');
    tt.truthy(strong.tokens, JSON.stringify(strong.failed)?.slice(0, 300));
    tt.deepEqual(strong.tokens!.claims()!.amr, ['fed', 'mfa']);
    tt.is(strong.tokens!.claims()!.org_id, corp.id);
    tt.is(decodeJwt(strong.tokens!.access_token).org_id, corp.id);

    const weak = await refusal('oneFactor');
    tt.is(weak?.error, 'access_denied', 'one factor at the IdP is not MFA');
  } finally {
    await api('PUT', policy, {});
  }
});

test.serial('the callback refuses a state it did not issue', async (tt) => {
  const res = await fetch(`${connection.redirect_uri}?code=abc&state=forged`);
  tt.is(res.status, 403);
  tt.regex((await api('GET', `/organizations/${corp.id}/sso-connections/${connection.id}`)).body.last_error, /state/);
  tt.is((await fetch(`${t.url}/t/${tenant.slug}/sso/oidc/not-a-uuid/callback?state=x`)).status, 403);
});

test('SSO required: users of the domain cannot use a password', async (tt) => {
  await api('POST', '/users', { email: 'pw@corp.example', password: 'password user here', email_verified: true });
  await api('PATCH', `/organizations/${corp.id}`, { sso_required: true });
  try {
    const browser = new Browser(t.url);
    const page = await browser.follow(await authorizationUrl(await discover(tenant, client), client));
    // Straight to the password step's endpoint, skipping the email step: still sent to the IdP.
    const login = formAction(await page.res.text()).replace(/\/identify$/, '/login');
    const res = await browser.request(new URL(login, t.url).href, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: t.url },
      body: new URLSearchParams({ email: 'pw@corp.example', password: 'password user here' }).toString(),
    });
    tt.is(res.status, 302);
    tt.true(res.headers.get('location')!.startsWith(upstream.issuer));
  } finally {
    await api('PATCH', `/organizations/${corp.id}`, { sso_required: false });
  }
  // Other domains sign in with passwords as before.
  await tt.notThrowsAsync(signIn(t, tenant, client));
});

test('domains: TXT verification, the audited override, one organization per verified domain', async (tt) => {
  const o = (await api('POST', '/organizations', { name: 'Dom' })).body;
  const added = await api('POST', `/organizations/${o.id}/domains`, { domain: 'Dom.Example' });
  tt.is(added.status, 201);
  tt.is(added.body.domain, 'dom.example');
  tt.false(added.body.verified);
  tt.is(added.body.txt_record.name, '_tessera-verification.dom.example');
  tt.regex(added.body.txt_record.value, /^tessera-verification=/);
  const missing = await api('POST', `/organizations/${o.id}/domains/dom.example/verify`);
  tt.is(missing.status, 409);
  tt.regex(missing.body.detail, /No TXT record/);
  txt.set(added.body.txt_record.name, [['unrelated'], [added.body.txt_record.value]]);
  tt.true((await api('POST', `/organizations/${o.id}/domains/dom.example/verify`)).body.verified);
  // corp.example is verified by Corp: another organization can add it but not verify it.
  await api('POST', `/organizations/${o.id}/domains`, { domain: 'corp.example' });
  tt.is((await api('PATCH', `/organizations/${o.id}/domains/corp.example`, { verified: true })).status, 409);
  tt.is((await api('PATCH', `/organizations/${o.id}/domains/dom.example`, { verified: false })).body.verified, false);
  const audit = (await api('GET', `/organizations/${o.id}/audit-log`)).body.data.map((e: any) => e.action);
  tt.true(audit.includes('domain.verification_overridden'));
  tt.true(audit.includes('domain.verified'));
  tt.is((await api('DELETE', `/organizations/${o.id}/domains/dom.example`)).status, 204);
  tt.is((await api('POST', `/organizations/${o.id}/domains`, { domain: 'not a domain' })).status, 422);
  tt.is((await api('POST', `/organizations/${o.id}/domains/nope.example/verify`)).status, 404);
});

test('connections: the secret is write-only; bad input and other organizations are refused', async (tt) => {
  const got = await api('GET', `/organizations/${corp.id}/sso-connections/${connection.id}`);
  tt.is(got.body.client_id, 'tessera');
  tt.false(got.text.includes('upstream-secret'));
  tt.is(got.body.redirect_uri, `${tenant.issuer}/sso/oidc/${connection.id}/callback`);
  tt.is(
    (await api('POST', `/organizations/${corp.id}/sso-connections`, { type: 'oidc', name: 'x', issuer_url: 'not a url', client_id: 'a', client_secret: 'b' }))
      .status,
    422,
  );
  tt.is(
    (await api('POST', `/organizations/${corp.id}/sso-connections`, { type: 'oidc', name: 'x', issuer_url: 'https://idp.example', client_id: 'a' })).status,
    422,
  );
  tt.is(
    (
      await api('POST', `/organizations/${corp.id}/sso-connections`, {
        type: 'oidc',
        name: 'x',
        issuer_url: 'https://idp.example',
        client_id: 'a',
        client_secret: 'b',
        default_role: 'wizard',
      })
    ).status,
    422,
  );
  tt.is((await api('POST', `/organizations/${corp.id}/sso-connections`, { type: 'ldap', name: 'x' })).status, 422);
  const other = (await api('POST', '/organizations', { name: 'Other' })).body;
  tt.is((await api('GET', `/organizations/${other.id}/sso-connections/${connection.id}`)).status, 404);
  tt.is((await api('DELETE', `/organizations/${other.id}/sso-connections/${connection.id}`)).status, 404);
  const foreign = await createTenant(t);
  const fo = (await adminApi(t, foreign, 'POST', '/organizations', { name: 'F' })).body;
  tt.is((await adminApi(t, foreign, 'GET', `/organizations/${fo.id}/sso-connections/${connection.id}`)).status, 404);
  tt.is((await adminApi(t, foreign, 'GET', `/organizations/${corp.id}/sso-connections`)).status, 404);
});

// Serial: it rewrites the pending request rows, so no other sign-in may be in flight.
test.serial('a nonce that does not match the ID token is refused', async (tt) => {
  const browser = new Browser([t.url, upstream.issuer]);
  const config = await discover(tenant, client);
  const hop = await browser.follow(await authorizationUrl(config, client));
  const toIdp = await enterCredentials(browser, await hop.res.text(), hop.url, 'bob@corp.example', 'x');
  tt.true(toIdp.url.startsWith(upstream.issuer));
  // The request we stored now expects another nonce than the one the IdP will put in the ID token.
  await sql`update sso_requests set nonce = 'not-the-nonce' where tenant_id = ${tenant.id}`.execute(t.app.connection.db);
  let step = toIdp;
  for (let i = 0; i < 3 && step.url.startsWith(upstream.issuer); i++) {
    const html = await step.res.text();
    const action = new URL(/action="([^"]+)"/.exec(html)![1]!, step.url).href;
    step = /name="login"/.test(html)
      ? await browser.submit(action, { prompt: 'login', login: 'bob', password: 'x' })
      : await browser.submit(action, { prompt: 'consent' });
  }
  tt.is(step.res.status, 403);
  tt.regex((await api('GET', `/organizations/${corp.id}/sso-connections/${connection.id}`)).body.last_error, /nonce/);
});

test('an IdP whose discovery names another issuer is refused before the user leaves', async (tt) => {
  const o = (await api('POST', '/organizations', { name: 'Mismatch' })).body;
  const domain = (await api('POST', `/organizations/${o.id}/domains`, { domain: 'mismatch.example' })).body;
  await api('PATCH', `/organizations/${o.id}/domains/${domain.domain}`, { verified: true });
  // Same IdP, reached under another name: its discovery document says issuer http://localhost:…
  const c = (
    await api('POST', `/organizations/${o.id}/sso-connections`, {
      type: 'oidc',
      name: 'Wrong issuer',
      issuer_url: upstream.issuer.replace('localhost', '127.0.0.1'),
      client_id: 'tessera',
      client_secret: 'upstream-secret',
    })
  ).body;
  const browser = new Browser(t.url);
  const hop = await browser.follow(await authorizationUrl(await discover(tenant, client), client));
  const res = await enterCredentials(browser, await hop.res.text(), hop.url, 'someone@mismatch.example', 'x');
  tt.is(res.res.status, 403);
  tt.regex(await res.res.text(), /Single sign-on failed/);
  tt.regex((await api('GET', `/organizations/${o.id}/sso-connections/${c.id}`)).body.last_error, /issuer/i);
});
