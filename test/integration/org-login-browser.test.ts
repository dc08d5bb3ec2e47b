import test from 'ava';
import type { Browser as Chromium, Page } from 'playwright-core';
import { adminApi, createTenant, startTestApp, type TestApp, type TestTenant, webClient } from '../helpers/app.ts';
import { seriousA11yViolations } from '../helpers/axe.ts';
import { launchChromium, screenshots as saveScreenshots } from '../helpers/chromium.ts';
import { type RegisteredClient, startAuthorization } from '../helpers/oidc.ts';
import { watchProblems } from '../helpers/page-problems.ts';
import { TestSamlIdp } from '../helpers/saml-idp.ts';

/**
 * An organization's own sign-in page in Debian's Chromium: its logo and name, its SSO button
 * before the email field, accessible and screenshotted for the guide
 * (docs/guides/organization-sign-in-page.md); and a sign-out of the organization's sign-in that
 * ends back on that page.
 */

let t: TestApp;
let tenant: TestTenant;
let client: RegisteredClient;
let chrome: Chromium;
const idp = new TestSamlIdp();
const PASSWORD = 'northwind in a browser 4';
const LOGO = 'https://logo.example/northwind.svg';
const MEMBER = 'nora@people.example';
let org: { id: string; slug: string };

/** A logo as the organization's own server would answer it: an SVG, served to the browser only. */
const LOGO_SVG =
  '<svg xmlns="http://www.w3.org/2000/svg" width="84" height="40" viewBox="0 0 84 40"><rect width="40" height="40" rx="8" fill="#0b6e4f"/><path d="M10 30V10l20 20V10" stroke="#fff" stroke-width="4" fill="none"/><text x="48" y="27" font-family="sans-serif" font-size="16" font-weight="700" fill="#0b6e4f">NW</text></svg>';

test.before(async () => {
  t = await startTestApp();
  tenant = await createTenant(t);
  client = (await adminApi(t, tenant, 'POST', '/clients', webClient())).body;
  org = (await adminApi(t, tenant, 'POST', '/organizations', { name: 'Northwind', slug: 'northwind', logo_url: LOGO })).body;
  const conn = await adminApi(t, tenant, 'POST', `/organizations/${org.id}/sso-connections`, {
    type: 'saml',
    name: 'Northwind Okta',
    idp_entity_id: idp.entityId,
    idp_sso_url: idp.ssoUrl,
    idp_certificates: [idp.keys.cert],
  });
  if (conn.status !== 201) throw new Error(conn.text);
  const user = (await adminApi(t, tenant, 'POST', '/users', { email: MEMBER, password: PASSWORD, email_verified: true, name: 'Nora' })).body;
  await adminApi(t, tenant, 'POST', `/organizations/${org.id}/members`, { user_id: user.id, role: 'member' });
  chrome = await launchChromium();
});
test.after.always(async () => {
  await chrome?.close();
  await t?.stop();
});

async function screenshots(page: Page, name: string, opts: { forGuide?: boolean } = {}) {
  const violations = await seriousA11yViolations(page);
  if (violations.length) throw new Error(`accessibility violations on ${name}: ${JSON.stringify(violations, null, 2)}`);
  await saveScreenshots(page, name, opts);
}

async function newPage() {
  // bypassCSP only so axe-core can be injected; the CSP itself is tested over HTTP.
  const context = await chrome.newContext({ bypassCSP: true });
  await context.route(`${LOGO}**`, (route) => route.fulfill({ status: 200, contentType: 'image/svg+xml', body: LOGO_SVG }));
  await context.route(`${idp.ssoUrl}**`, (route) => route.fulfill({ status: 200, contentType: 'text/html', body: '<h1>Northwind Okta</h1>' }));
  await context.route(`${client.redirect_uris[0]}**`, (route) => route.fulfill({ status: 200, contentType: 'text/html', body: '<h1>App</h1>' }));
  const page = await context.newPage();
  // The IdP and the app are reached by redirects, which nothing answers here (Chromium reports
  // them as failed requests): what counts is what went wrong on Tessera's own pages and the logo.
  const problems = watchProblems(page);
  const ours = () => problems.filter((p) => !p.includes(idp.ssoUrl) && !p.includes(client.redirect_uris[0]!));
  return { context, page, problems: ours };
}

test('in Chromium: the organization’s page shows its logo and name, its SSO first, and the button reaches its IdP', async (tt) => {
  const { context, page, problems } = await newPage();
  const logoRequests: Array<string | undefined> = [];
  page.on('request', (r) => {
    if (r.url().startsWith(LOGO)) logoRequests.push(r.headers().referer);
  });
  await page.goto(`${t.url}/t/${tenant.slug}/o/northwind/login`);
  const logo = page.getByRole('img', { name: 'Northwind' });
  await logo.waitFor();
  tt.true(await logo.evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth > 0), 'the logo loaded');
  tt.deepEqual(logoRequests, [undefined], 'the logo is requested without a Referer');
  const sso = page.getByRole('button', { name: 'Continue with Northwind’s SSO' });
  const email = page.getByLabel('Email');
  const [ssoBox, emailBox] = [await sso.boundingBox(), await email.boundingBox()];
  tt.true(ssoBox!.y < emailBox!.y, 'the SSO button is above the email field');
  await screenshots(page, 'org-sign-in', { forGuide: true });
  await sso.click();
  await page.waitForURL(`${idp.ssoUrl}**`);
  tt.regex(new URL(page.url()).searchParams.get('SAMLRequest') ?? '', /./);
  tt.deepEqual(problems(), []);
  await context.close();
});

test('in Chromium: signing out of the app’s sign-in for the organization ends on the organization’s page', async (tt) => {
  const { context, page, problems } = await newPage();
  const visited: string[] = [];
  page.on('request', (r) => {
    if (r.isNavigationRequest()) visited.push(r.url());
  });
  const { url } = await startAuthorization(tenant, client, { organization: org.id, state: 'org-browser' });
  await page.goto(url);
  await page.getByLabel('Email').fill(MEMBER);
  await page.getByRole('button', { name: 'Continue', exact: true }).click();
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${client.redirect_uris[0]}**`);

  await page.goto(`${tenant.issuer}/session/end?client_id=${encodeURIComponent(client.client_id)}`);
  await page.getByRole('heading', { name: 'Sign out' }).waitFor();
  await page.getByRole('button', { name: 'Sign out', exact: true }).click();
  await page.getByRole('button', { name: 'Continue with Northwind’s SSO' }).waitFor();
  tt.true(visited.includes(`${t.url}/t/${tenant.slug}/o/northwind/login`), visited.join('\n'));
  tt.regex(page.url(), /\/interaction\//);
  await screenshots(page, 'org-signed-out');
  tt.deepEqual(problems(), []);
  await context.close();
});
