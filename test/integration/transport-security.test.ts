import { createHash, randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import test from 'ava';
import { adminApi, createTenant, startTestApp, type TestApp, type TestTenant, webClient } from '../helpers/app.ts';
import { Browser, enterCredentials } from '../helpers/browser.ts';

/**
 * Tessera behind a TLS-terminating proxy that speaks plain http to it, with TRUST_PROXY off:
 * PUBLIC_URL alone says users reach it over https. Every response then carries HSTS and every
 * cookie is Secure.
 */

const HSTS = 'max-age=31536000; includeSubDomains';

/**
 * A browser at the https public URL whose requests reach the app over plain http, as through
 * the proxy: its cookie jar sees https URLs (so Secure cookies are kept and sent), and it records
 * every Set-Cookie and every response's HSTS header.
 */
class BehindTlsProxy extends Browser {
  readonly setCookies: string[] = [];
  readonly responses: Array<{ url: string; hsts: string | null }> = [];
  constructor(
    private readonly publicOrigin: string,
    private readonly appOrigin: string,
  ) {
    super(publicOrigin);
  }

  override async request(url: string, init: RequestInit = {}): Promise<Response> {
    this.visited.push(url);
    const cookie = await this.jar.getCookieString(url);
    const res = await this.forward(url, init, cookie);
    this.responses.push({ url, hsts: res.headers.get('strict-transport-security') });
    for (const c of res.headers.getSetCookie()) {
      this.setCookies.push(c);
      await this.jar.setCookie(c, url);
    }
    return res;
  }

  /** What the proxy does: the same request over plain http to the app, with the Host it was asked for. */
  private forward(url: string, init: RequestInit, cookie: string): Promise<Response> {
    const target = new URL(url.replace(this.publicOrigin, this.appOrigin));
    const headers = { ...(init.headers as Record<string, string>), host: new URL(url).host, ...(cookie ? { cookie } : {}) };
    return new Promise((resolve, reject) => {
      const req = httpRequest(target, { method: init.method ?? 'GET', headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const h = new Headers();
          for (let i = 0; i < res.rawHeaders.length; i += 2) h.append(res.rawHeaders[i]!, res.rawHeaders[i + 1]!);
          const status = res.statusCode!;
          resolve(new Response(status === 204 || status === 304 ? null : Buffer.concat(chunks), { status, headers: h }));
        });
      });
      req.on('error', reject);
      req.end(init.body as string | undefined);
    });
  }
}

let t: TestApp;
let tenant: TestTenant;
let publicOrigin: string;

test.before(async () => {
  publicOrigin = 'https://id.tessera.test';
  t = await startTestApp({ env: { PUBLIC_URL: publicOrigin, TRUST_PROXY: 'false' } });
  tenant = await createTenant(t);
});
test.after.always(async () => t?.stop());

const cookieNames = (setCookies: string[]) => [...new Set(setCookies.map((c) => c.split('=')[0]!))].sort();

test('https PUBLIC_URL: a sign-in over the proxy sends HSTS on every response and only Secure cookies', async (tt) => {
  const client = (await adminApi(t, tenant, 'POST', '/clients', webClient('http://localhost:8080/cb'))).body;
  const verifier = randomBytes(32).toString('base64url');
  const auth = new URL(`${publicOrigin}/t/${tenant.slug}/auth`);
  auth.search = new URLSearchParams({
    client_id: client.client_id,
    redirect_uri: 'http://localhost:8080/cb',
    response_type: 'code',
    scope: 'openid email',
    state: 'st',
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256',
  }).toString();

  const browser = new BehindTlsProxy(publicOrigin, t.url);
  const page = await browser.follow(auth.href);
  const done = await enterCredentials(browser, await page.res.text(), page.url, tenant.adminEmail, tenant.adminPassword);
  const back = new URL(done.url);
  tt.is(back.origin + back.pathname, 'http://localhost:8080/cb', browser.visited.join('\n'));
  const code = back.searchParams.get('code')!;
  tt.truthy(code);

  // oidc-provider's interaction and session cookies, each Secure.
  tt.true(browser.setCookies.length >= 3, browser.setCookies.join('\n'));
  tt.true(
    cookieNames(browser.setCookies).some((n) => n.startsWith('_session')),
    cookieNames(browser.setCookies).join(' '),
  );
  tt.true(
    cookieNames(browser.setCookies).some((n) => n.startsWith('_interaction')),
    cookieNames(browser.setCookies).join(' '),
  );
  for (const c of browser.setCookies) tt.regex(c, /;\s*secure/i, c);
  for (const r of browser.responses) tt.is(r.hsts, HSTS, r.url);

  // The provider knows its public face is https: discovery names https endpoints, and the code works.
  const discovery = await browser.request(`${publicOrigin}/t/${tenant.slug}/.well-known/openid-configuration`);
  tt.is(discovery.headers.get('strict-transport-security'), HSTS);
  const meta = await discovery.json();
  tt.is(meta.issuer, `${publicOrigin}/t/${tenant.slug}`);
  tt.true(meta.token_endpoint.startsWith(`${publicOrigin}/`), meta.token_endpoint);
  const token = await browser.request(meta.token_endpoint, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${Buffer.from(`${client.client_id}:${client.client_secret}`).toString('base64')}`,
    },
    body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: 'http://localhost:8080/cb', code_verifier: verifier }).toString(),
  });
  tt.is(token.status, 200, await token.clone().text());
  tt.is(token.headers.get('strict-transport-security'), HSTS);
});

test('https PUBLIC_URL: the portal sign-in and its session and CSRF cookie are Secure; errors and health carry HSTS', async (tt) => {
  const browser = new BehindTlsProxy(publicOrigin, t.url);
  const start = await browser.follow(`${publicOrigin}/t/${tenant.slug}/portal/organizations`);
  const done = await enterCredentials(browser, await start.res.text(), start.url, tenant.adminEmail, tenant.adminPassword);
  tt.is(done.res.status, 200, browser.visited.join('\n'));
  tt.regex(await done.res.text(), /name="_csrf"/, 'signed in to the portal');

  const names = cookieNames(browser.setCookies);
  tt.true(names.includes('tessera.portal'), names.join(' '));
  tt.true(names.includes('tessera.portal.login'), names.join(' '));
  for (const c of browser.setCookies) tt.regex(c, /;\s*secure/i, c);
  for (const r of browser.responses) tt.is(r.hsts, HSTS, r.url);

  // Signing out clears the cookie with a Secure Set-Cookie too (a browser drops it otherwise).
  const before = browser.setCookies.length;
  await browser.follow(`${publicOrigin}/t/${tenant.slug}/portal/logout`);
  for (const c of browser.setCookies.slice(before)) tt.regex(c, /;\s*secure/i, c);

  for (const path of ['/healthz', '/nowhere', `/t/${tenant.slug}/api/v1/admin/users`, '/t/no-such-tenant/portal/organizations']) {
    tt.is((await fetch(`${t.url}${path}`)).headers.get('strict-transport-security'), HSTS, path);
  }
});

test('http PUBLIC_URL: no HSTS and no Secure cookies', async (tt) => {
  const plain = await startTestApp();
  tt.teardown(() => plain.stop());
  const other = await createTenant(plain);
  tt.is((await fetch(`${plain.url}/healthz`)).headers.get('strict-transport-security'), null);
  const browser = new BehindTlsProxy(plain.url, plain.url);
  const start = await browser.follow(`${plain.url}/t/${other.slug}/portal/organizations`);
  await enterCredentials(browser, await start.res.text(), start.url, other.adminEmail, other.adminPassword);
  tt.true(cookieNames(browser.setCookies).includes('tessera.portal'));
  for (const c of browser.setCookies) tt.notRegex(c, /;\s*secure/i, c);
  for (const r of browser.responses) tt.is(r.hsts, null, r.url);
});
