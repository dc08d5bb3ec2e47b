import test from 'ava';
import { decodeProtectedHeader, jwtVerify } from 'jose';
import * as oidc from 'openid-client';
import { adminApi, createTenant, startTestApp, type TestApp, type TestTenant, webClient } from '../helpers/app.ts';
import { Browser, enterCredentials } from '../helpers/browser.ts';
import { authorizationUrl, discover, type RegisteredClient, remoteJwks, signIn, startAuthorization } from '../helpers/oidc.ts';

let t: TestApp;
let tenant: TestTenant;
let client: RegisteredClient;

test.before(async () => {
  t = await startTestApp();
  tenant = await createTenant(t);
  client = (await adminApi(t, tenant, 'POST', '/clients', webClient())).body;
});
test.after.always(async () => t?.stop());

const form = (fields: Record<string, string>) => ({
  method: 'POST',
  headers: { 'content-type': 'application/x-www-form-urlencoded' },
  body: new URLSearchParams(fields).toString(),
});
const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

test('code + PKCE sign-in gives an ID token and a JWT access token that verify offline against the JWKS', async (tt) => {
  const { tokens, config } = await signIn(t, tenant, client);
  const idClaims = tokens.claims()!;
  tt.is(idClaims.iss, tenant.issuer);
  tt.is(idClaims.aud, client.client_id);
  tt.is(idClaims.email, tenant.adminEmail);
  tt.is(idClaims.email_verified, true);
  tt.truthy(tokens.refresh_token);

  const jwks = remoteJwks(config.serverMetadata().jwks_uri!);
  const header = decodeProtectedHeader(tokens.access_token);
  tt.is(header.typ, 'at+jwt');
  tt.is(header.alg, 'ES256');
  const { payload } = await jwtVerify(tokens.access_token, jwks, { issuer: tenant.issuer, audience: `${tenant.issuer}/api`, typ: 'at+jwt' });
  tt.is(payload.sub, idClaims.sub);
  tt.is(payload.client_id, client.client_id);
  tt.true(String(payload.scope).split(' ').includes('openid'));
  tt.truthy(payload.jti);
  tt.truthy(payload.exp! - payload.iat! <= 15 * 60);
});

test('userinfo answers the JWT access token with the profile claims', async (tt) => {
  const { tokens, config } = await signIn(t, tenant, client);
  const info = await oidc.fetchUserInfo(config, tokens.access_token, tokens.claims()!.sub);
  tt.is(info.email, tenant.adminEmail);
  tt.is(info.name, 'Administrator');
});

test('refresh rotates the refresh token; reusing the old one revokes the whole grant', async (tt) => {
  const { tokens, config } = await signIn(t, tenant, client);
  const first = tokens.refresh_token!;
  const refreshed = await oidc.refreshTokenGrant(config, first);
  tt.truthy(refreshed.refresh_token);
  tt.not(refreshed.refresh_token, first);
  tt.not(refreshed.access_token, tokens.access_token);

  const reuse = await tt.throwsAsync(oidc.refreshTokenGrant(config, first));
  tt.is((reuse as oidc.ResponseBodyError).error, 'invalid_grant');
  // Reuse detection revoked the grant: the rotated token and the access tokens are dead too.
  const after = await tt.throwsAsync(oidc.refreshTokenGrant(config, refreshed.refresh_token!));
  tt.is((after as oidc.ResponseBodyError).error, 'invalid_grant');
  const intro = await oidc.tokenIntrospection(config, refreshed.access_token);
  tt.false(intro.active);
  await tt.throwsAsync(oidc.fetchUserInfo(config, refreshed.access_token, oidc.skipSubjectCheck));
});

test('introspection: active for live access and refresh tokens, inactive after revocation', async (tt) => {
  const { tokens, config } = await signIn(t, tenant, client);
  const at = await oidc.tokenIntrospection(config, tokens.access_token);
  tt.true(at.active);
  tt.is(at.client_id, client.client_id);
  tt.is(at.sub, tokens.claims()!.sub);
  tt.is(at.aud, `${tenant.issuer}/api`);
  tt.is(at.token_type, 'Bearer');
  const rt = await oidc.tokenIntrospection(config, tokens.refresh_token!);
  tt.true(rt.active);

  await oidc.tokenRevocation(config, tokens.access_token);
  tt.false((await oidc.tokenIntrospection(config, tokens.access_token)).active);
  const userinfo = await tt.throwsAsync(oidc.fetchUserInfo(config, tokens.access_token, oidc.skipSubjectCheck));
  tt.truthy(userinfo);
  await oidc.tokenRevocation(config, tokens.refresh_token!);
  tt.false((await oidc.tokenIntrospection(config, tokens.refresh_token!)).active);
});

test('a forged or tampered access token is inactive and refused at userinfo', async (tt) => {
  const { tokens, config } = await signIn(t, tenant, client);
  const [h, p, s] = tokens.access_token.split('.');
  const claims = JSON.parse(Buffer.from(p!, 'base64url').toString());
  const tampered = [h, Buffer.from(JSON.stringify({ ...claims, sub: 'someone-else' })).toString('base64url'), s].join('.');
  tt.false((await oidc.tokenIntrospection(config, tampered)).active);
  await tt.throwsAsync(oidc.fetchUserInfo(config, tampered, oidc.skipSubjectCheck));
  // The jti alone (readable inside the JWT) is not a bearer token.
  tt.false((await oidc.tokenIntrospection(config, claims.jti)).active);
  const res = await fetch(`${tenant.issuer}/me`, { headers: { authorization: `Bearer ${claims.jti}` } });
  tt.is(res.status, 401);
});

test('an oversized body at the token endpoints is a 413 with an OAuth error', async (tt) => {
  const { tokens } = await signIn(t, tenant, client);
  const auth = basic(client.client_id, client.client_secret!);
  for (const path of ['/token', '/token/introspection', '/token/revocation']) {
    const res = await fetch(`${tenant.issuer}${path}`, {
      ...form({ token: tokens.access_token, padding: 'x'.repeat(60 * 1024) }),
      headers: { ...form({}).headers, authorization: auth },
    });
    tt.is(res.status, 413, path);
    tt.like(await res.json(), { error: 'invalid_request', error_description: 'request body too large' }, path);
  }
  // Just under the limit is read as usual.
  const res = await fetch(`${tenant.issuer}/token/introspection`, {
    ...form({ token: tokens.access_token, padding: 'x'.repeat(50 * 1024) }),
    headers: { ...form({}).headers, authorization: auth },
  });
  tt.is(res.status, 200);
  tt.true(((await res.json()) as { active: boolean }).active);
});

test('client credentials gives a JWT access token for the machine client', async (tt) => {
  const m = (await adminApi(t, tenant, 'POST', '/clients', { name: 'worker', grant_types: ['client_credentials'], scopes: ['admin'] })).body;
  const config = await discover(tenant, m);
  const tokens = await oidc.clientCredentialsGrant(config, { scope: 'admin' });
  const jwks = remoteJwks(`${tenant.issuer}/jwks`);
  const { payload } = await jwtVerify(tokens.access_token, jwks, { issuer: tenant.issuer, typ: 'at+jwt' });
  tt.is(payload.sub, m.client_id);
  tt.is(payload.scope, 'admin');
  tt.true((await oidc.tokenIntrospection(config, tokens.access_token)).active);
  // It carries the admin scope, so the Admin API takes it.
  const list = await adminApi(t, tenant, 'GET', '/users', undefined, tokens.access_token);
  tt.is(list.status, 200);
  // Revoked, it no longer does.
  await oidc.tokenRevocation(config, tokens.access_token);
  tt.is((await adminApi(t, tenant, 'GET', '/users', undefined, tokens.access_token)).status, 401);
});

test('tokens issued at once (their rows share statements) are each stored before they are handed out', async (tt) => {
  const m = (await adminApi(t, tenant, 'POST', '/clients', { name: 'burst', grant_types: ['client_credentials'], scopes: ['admin'] })).body;
  const config = await discover(tenant, m);
  const tokens = await Promise.all(Array.from({ length: 40 }, () => oidc.clientCredentialsGrant(config, { scope: 'admin' })));
  tt.is(new Set(tokens.map((x) => x.access_token)).size, 40);
  // Each one is live the moment its response arrives; revoking one leaves the others alone.
  const active = await Promise.all(tokens.map((x) => oidc.tokenIntrospection(config, x.access_token)));
  tt.true(active.every((a) => a.active === true));
  await oidc.tokenRevocation(config, tokens[7]!.access_token);
  tt.false((await oidc.tokenIntrospection(config, tokens[7]!.access_token)).active);
  tt.true((await oidc.tokenIntrospection(config, tokens[8]!.access_token)).active);
});

/** Sends the same token request `n` times at once; answers the statuses and bodies. */
async function atOnce(n: number, body: Record<string, string>) {
  return Promise.all(
    Array.from({ length: n }, async () => {
      const res = await fetch(`${tenant.issuer}/token`, {
        ...form(body),
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(client.client_id, client.client_secret!) },
      });
      return { status: res.status, body: (await res.json()) as Record<string, string> };
    }),
  );
}

test('an authorization code redeemed by concurrent requests works once; the rest are refused and the grant is revoked', async (tt) => {
  const { verifier, url } = await startAuthorization(tenant, client, { scope: 'openid offline_access' });
  const browser = new Browser(t.url);
  const page = await browser.follow(url);
  const back = await enterCredentials(browser, await page.res.text(), page.url, tenant.adminEmail, tenant.adminPassword);
  const code = new URL(back.url).searchParams.get('code')!;
  tt.truthy(code);
  const answers = await atOnce(6, { grant_type: 'authorization_code', code, code_verifier: verifier, redirect_uri: client.redirect_uris[0]! });
  const won = answers.filter((a) => a.status === 200);
  tt.is(won.length, 1, JSON.stringify(answers.map((a) => a.status)));
  tt.true(answers.filter((a) => a.status !== 200).every((a) => a.status === 400 && a.body.error === 'invalid_grant'));
  // A code used twice revokes what it gave (RFC 6749 §4.1.2): the winner's tokens are dead too.
  tt.is((await fetch(`${tenant.issuer}/me`, { headers: { authorization: `Bearer ${won[0]!.body.access_token}` } })).status, 401);
  const refreshed = await atOnce(1, { grant_type: 'refresh_token', refresh_token: won[0]!.body.refresh_token! });
  tt.is(refreshed[0]!.body.error, 'invalid_grant');
});

test('a refresh token presented by concurrent requests rotates once; reuse revokes the grant', async (tt) => {
  const { tokens } = await signIn(t, tenant, client);
  const answers = await atOnce(6, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token! });
  const won = answers.filter((a) => a.status === 200);
  tt.is(won.length, 1, JSON.stringify(answers.map((a) => a.status)));
  tt.true(answers.filter((a) => a.status !== 200).every((a) => a.status === 400 && a.body.error === 'invalid_grant'));
  const next = await atOnce(1, { grant_type: 'refresh_token', refresh_token: won[0]!.body.refresh_token! });
  tt.is(next[0]!.body.error, 'invalid_grant');
});

test('client_secret_post works; a wrong secret is refused', async (tt) => {
  const m = (
    await adminApi(t, tenant, 'POST', '/clients', {
      name: 'post',
      grant_types: ['client_credentials'],
      token_endpoint_auth_method: 'client_secret_post',
      scopes: ['openid'],
    })
  ).body;
  const ok = await fetch(`${tenant.issuer}/token`, form({ grant_type: 'client_credentials', client_id: m.client_id, client_secret: m.client_secret }));
  tt.is(ok.status, 200);
  const bad = await fetch(`${tenant.issuer}/token`, form({ grant_type: 'client_credentials', client_id: m.client_id, client_secret: `${m.client_secret}x` }));
  tt.is(bad.status, 401);
  tt.is((await bad.json()).error, 'invalid_client');
  const badBasic = await fetch(`${tenant.issuer}/token`, {
    ...form({ grant_type: 'client_credentials' }),
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(client.client_id, 'wrong') },
  });
  tt.is(badBasic.status, 401);
});

test('the stored client secret hash is not itself a working secret', async (tt) => {
  const row = await t.app.services.clients.get(tenant.id, client.client_id);
  const res = await fetch(`${tenant.issuer}/token`, {
    ...form({ grant_type: 'client_credentials' }),
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(client.client_id, row.client_secret_hash!) },
  });
  tt.is(res.status, 401);
});

test('PKCE is required, and redirect URIs must match exactly', async (tt) => {
  const base = `${tenant.issuer}/auth?client_id=${client.client_id}&response_type=code&scope=openid`;
  const noPkce = await fetch(`${base}&redirect_uri=${encodeURIComponent(client.redirect_uris[0]!)}`, { redirect: 'manual' });
  const loc = new URL(noPkce.headers.get('location')!);
  tt.is(loc.searchParams.get('error'), 'invalid_request');
  tt.regex(loc.searchParams.get('error_description')!, /PKCE/);

  const challenge = 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM';
  for (const uri of [`${client.redirect_uris[0]}/extra`, `${client.redirect_uris[0]}?x=1`, 'http://localhost:8080/CB', 'http://evil.example/cb']) {
    const res = await fetch(`${base}&code_challenge=${challenge}&code_challenge_method=S256&redirect_uri=${encodeURIComponent(uri)}`, { redirect: 'manual' });
    tt.is(res.status, 400, uri); // never redirected to an unregistered URI
    tt.notRegex(res.headers.get('location') ?? '', /evil/);
  }
});

test('a wrong password shows the same generic error for known and unknown emails', async (tt) => {
  const config = await discover(tenant, client);
  const attempt = async (email: string) => {
    const browser = new Browser(t.url);
    const url = await authorizationUrl(config, client);
    const page = await browser.follow(url);
    const res = await enterCredentials(browser, await page.res.text(), page.url, email, 'not the password');
    return { status: res.res.status, html: await res.res.text() };
  };
  const known = await attempt(tenant.adminEmail);
  const unknown = await attempt('nobody@nowhere.test');
  tt.is(known.status, 401);
  tt.is(unknown.status, 401);
  tt.regex(known.html, /Invalid email or password/);
  tt.regex(unknown.html, /Invalid email or password/);
});

test('the sign-in page escapes what it echoes back', async (tt) => {
  const config = await discover(tenant, client);
  const browser = new Browser(t.url);
  const url = await authorizationUrl(config, client, { login_hint: '"><script>alert(1)</script>' });
  const page = await browser.follow(url);
  const html = await page.res.text();
  tt.false(html.includes('<script>alert(1)</script>'));
  tt.true(html.includes('&lt;script&gt;'));
});

test('a cross-site form post to the sign-in page is refused', async (tt) => {
  const post = (headers: Record<string, string>) =>
    fetch(`${t.url}/t/${tenant.slug}/interaction/whatever/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
      body: 'email=a%40b.c&password=x',
    });
  tt.is((await post({ origin: 'http://evil.example' })).status, 403);
  tt.is((await post({ origin: 'null' })).status, 403, 'an opaque origin is not ours');
  tt.is((await post({ 'sec-fetch-site': 'cross-site', origin: t.url })).status, 403, 'Sec-Fetch-Site wins when present');
  tt.is((await post({ 'sec-fetch-site': 'same-site' })).status, 403);
  // Same-origin posts pass the check (and then fail for the unknown interaction, not with 403).
  tt.not((await post({ 'sec-fetch-site': 'same-origin', origin: t.url })).status, 403);
});

test('RP-initiated logout ends the session: the next authorization asks to sign in again', async (tt) => {
  const { tokens, config, browser } = await signIn(t, tenant, client);
  const endUrl = oidc.buildEndSessionUrl(config, { id_token_hint: tokens.id_token!, post_logout_redirect_uri: 'http://localhost:8080/bye' });
  const confirm = await browser.follow(endUrl.href);
  const html = await confirm.res.text();
  tt.regex(html, /Sign out/);
  const xsrf = /name="xsrf" value="([^"]+)"/.exec(html)![1]!;
  const action = /<form[^>]*action="([^"]+)"/.exec(html)![1]!;
  const done = await browser.submit(action, { xsrf, logout: 'yes' });
  tt.true(done.url.startsWith('http://localhost:8080/bye'));

  const again = await browser.follow(await authorizationUrl(config, client));
  tt.regex(await again.res.text(), /Sign in to/);
});

test('discovery is also served at the RFC 8414 path', async (tt) => {
  const res = await fetch(`${t.url}/.well-known/oauth-authorization-server/t/${tenant.slug}`);
  tt.is(res.status, 200);
  const meta = await res.json();
  tt.is(meta.issuer, tenant.issuer);
  tt.is(meta.token_endpoint, `${tenant.issuer}/token`);
  tt.deepEqual(meta.code_challenge_methods_supported, ['S256']);
});

test('an unknown tenant is a 404, and health endpoints answer', async (tt) => {
  const res = await fetch(`${t.url}/t/no-such-tenant/.well-known/openid-configuration`);
  tt.is(res.status, 404);
  tt.regex(res.headers.get('content-type')!, /problem\+json/);
  tt.is((await fetch(`${t.url}/healthz`)).status, 200);
  const ready = await fetch(`${t.url}/readyz`);
  tt.is(ready.status, 200);
  tt.is((await ready.json()).status, 'ready');
});

test('a disabled user can no longer sign in, and their tokens die', async (tt) => {
  const u = (await adminApi(t, tenant, 'POST', '/users', { email: 'temp@x.test', password: 'a long password 1', email_verified: true })).body;
  const { tokens, config } = await signIn(t, tenant, client, { email: 'temp@x.test', password: 'a long password 1' });
  tt.true((await oidc.tokenIntrospection(config, tokens.access_token)).active);
  tt.is((await adminApi(t, tenant, 'PATCH', `/users/${u.id}`, { disabled: true })).status, 200);
  tt.false((await oidc.tokenIntrospection(config, tokens.access_token)).active);
  tt.false((await oidc.tokenIntrospection(config, tokens.refresh_token!)).active);
  await tt.throwsAsync(signIn(t, tenant, client, { email: 'temp@x.test', password: 'a long password 1' }), { message: /did not reach/ });
});

test('a first-party client (no consent page) goes from the password straight to the redirect URI, with the scopes it asked for', async (tt) => {
  const { tokens, browser } = await signIn(t, tenant, client, { scope: 'openid profile email offline_access' });
  // One interaction (the sign-in page and its two posts); no second one for consent.
  const interactions = new Set(browser.visited.map((u) => /\/interaction\/([^/?]+)/.exec(u)?.[1]).filter(Boolean));
  tt.is(interactions.size, 1, browser.visited.join('\n'));
  tt.false(browser.visited.some((u) => u.includes('/confirm')));
  // The same grant the consent step used to record (offline_access is dropped without prompt=consent, as OIDC says).
  tt.deepEqual(String(tokens.scope).split(' ').sort(), ['email', 'openid', 'profile']);
  const claims = tokens.claims()!;
  tt.is(claims.email, tenant.adminEmail);
  tt.truthy(tokens.refresh_token);
});

test('a client that requires consent shows the consent page; allowing issues the code, still without the admin scope for a non-admin', async (tt) => {
  const thirdParty = (await adminApi(t, tenant, 'POST', '/clients', { ...webClient(), scopes: ['openid', 'email', 'admin'], require_consent: true })).body;
  tt.true(thirdParty.require_consent);
  await adminApi(t, tenant, 'POST', '/users', { email: 'asked@x.test', password: 'a long password 3', email_verified: true });
  const browser = new Browser(t.url);
  const { config, verifier, state, url } = await startAuthorization(tenant, thirdParty, { scope: 'openid email admin' });
  const first = await browser.follow(url);
  const asked = await enterCredentials(browser, await first.res.text(), first.url, 'asked@x.test', 'a long password 3');
  const html = await asked.res.text();
  tt.regex(html, /would like to/);
  tt.regex(html, /<li>email<\/li>/);
  const allowed = await browser.submit(new URL(/<form method="post" action="([^"]+)"/.exec(html)![1]!, asked.url).href, {});
  tt.true(allowed.url.startsWith(thirdParty.redirect_uris[0]!), allowed.url);
  const tokens = await oidc.authorizationCodeGrant(config, new URL(allowed.url), { pkceCodeVerifier: verifier, expectedState: state });
  tt.deepEqual(String(tokens.scope).split(' ').sort(), ['email', 'openid']);
  tt.is(tokens.claims()!.email, 'asked@x.test');
});

test('the admin scope is granted to tenant administrators only, whatever the client asks for', async (tt) => {
  const adminApp = (await adminApi(t, tenant, 'POST', '/clients', { ...webClient(), scopes: ['openid', 'admin'] })).body;
  await adminApi(t, tenant, 'POST', '/users', { email: 'plain@x.test', password: 'a long password 2', email_verified: true });
  const plain = await signIn(t, tenant, adminApp, { email: 'plain@x.test', password: 'a long password 2', scope: 'openid admin' });
  const plainClaims = JSON.parse(Buffer.from(plain.tokens.access_token.split('.')[1]!, 'base64url').toString());
  tt.false(String(plainClaims.scope).split(' ').includes('admin'));
  tt.is((await adminApi(t, tenant, 'GET', '/users', undefined, plain.tokens.access_token)).status, 403);

  const boss = await signIn(t, tenant, adminApp, { scope: 'openid admin' });
  const bossClaims = JSON.parse(Buffer.from(boss.tokens.access_token.split('.')[1]!, 'base64url').toString());
  tt.true(String(bossClaims.scope).split(' ').includes('admin'));
  tt.is((await adminApi(t, tenant, 'GET', '/users', undefined, boss.tokens.access_token)).status, 200);
});
