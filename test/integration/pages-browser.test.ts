import test from 'ava';
import * as oidc from 'openid-client';
import type { Browser } from 'playwright-core';
import { base32Decode, hotp, totpStep } from '../../src/factors/totp.ts';
import { adminApi, createTenant, startTestApp, type TestApp, type TestTenant, webClient } from '../helpers/app.ts';
import { seriousA11yViolations } from '../helpers/axe.ts';
import { launchChromium, screenshots as saveScreenshots } from '../helpers/chromium.ts';
import { type RegisteredClient, startAuthorization } from '../helpers/oidc.ts';
import { watchProblems } from '../helpers/page-problems.ts';

let t: TestApp;
let tenant: TestTenant;
let client: RegisteredClient;
let chrome: Browser;

test.before(async () => {
  t = await startTestApp();
  tenant = await createTenant(t);
  client = (await adminApi(t, tenant, 'POST', '/clients', webClient())).body;
  await adminApi(t, tenant, 'PATCH', '/settings', { registration_enabled: true });
  chrome = await launchChromium();
});
test.after.always(async () => {
  await chrome?.close();
  await t?.stop();
});

/** A screenshot at both widths, after axe-core finds no serious or critical violation on the page. */
async function screenshots(page: import('playwright-core').Page, name: string, opts: { forGuide?: boolean } = {}) {
  const violations = await seriousA11yViolations(page);
  if (violations.length) throw new Error(`accessibility violations on ${name}: ${JSON.stringify(violations, null, 2)}`);
  await saveScreenshots(page, name, opts);
}

const authorizationUrl = () => startAuthorization(tenant, client, { state: 'browser-test' });

test('in Chromium: email first, then password, then back at the app with a code that redeems', async (tt) => {
  const context = await chrome.newContext({ bypassCSP: true }); // only so axe-core can be injected
  const page = await context.newPage();
  // The app's redirect URI: nothing listens there, so answer it in the browser.
  await page.route(`${client.redirect_uris[0]}**`, (route) => route.fulfill({ status: 200, contentType: 'text/html', body: '<h1>App</h1>' }));
  const { url, config, verifier } = await authorizationUrl();
  await page.goto(url);
  await tt.notThrowsAsync(page.getByRole('heading', { name: /Sign in to Test app/ }).waitFor());
  await screenshots(page, 'sign-in-email');
  await page.getByLabel('Email').fill(tenant.adminEmail);
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.getByLabel('Password').waitFor();
  await screenshots(page, 'sign-in-password');
  await page.getByLabel('Password').fill('not the password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await tt.notThrowsAsync(page.getByRole('alert').filter({ hasText: 'Invalid email or password' }).waitFor());
  await screenshots(page, 'sign-in-error');
  await page.getByLabel('Password').fill(tenant.adminPassword);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${client.redirect_uris[0]}**`);
  const tokens = await oidc.authorizationCodeGrant(config, new URL(page.url()), { pkceCodeVerifier: verifier, expectedState: 'browser-test' });
  tt.is(tokens.claims()!.email, tenant.adminEmail);
  await context.close();
});

test('in Chromium: a person with an authenticator app enters its code after the password, or chooses a recovery code', async (tt) => {
  const email = 'two-steps@browser.test';
  const password = 'two steps in a browser 7';
  const user = (await adminApi(t, tenant, 'POST', '/users', { email, password, email_verified: true })).body;
  const enrollment = await t.app.services.factors.startTotp(tenant.id, user.id, 'Tessera', email);
  const key = base32Decode(enrollment.secret);
  const step = () => totpStep(Date.now() / 1000);
  tt.true(await t.app.services.factors.confirmTotp(tenant.id, user.id, enrollment.factorId, hotp(key, step() - 1)));
  const context = await chrome.newContext({ bypassCSP: true });
  const page = await context.newPage();
  await page.route(`${client.redirect_uris[0]}**`, (route) => route.fulfill({ status: 200, contentType: 'text/html', body: '<h1>App</h1>' }));
  await page.goto((await authorizationUrl()).url);
  await page.getByLabel('Email').fill(email);
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByLabel('Code from your authenticator app').waitFor();
  await screenshots(page, 'sign-in-code', { forGuide: true });
  await page.getByRole('link', { name: 'Use a recovery code instead' }).click();
  await page.getByLabel('Recovery code').waitFor();
  await screenshots(page, 'sign-in-recovery-code', { forGuide: true });
  await page.getByRole('link', { name: 'Use your authenticator app instead' }).click();
  await page.getByLabel('Code from your authenticator app').fill(hotp(key, step()));
  await page.getByRole('button', { name: 'Continue' }).click();
  await tt.notThrowsAsync(page.getByRole('heading', { name: 'App' }).waitFor());
  await context.close();
});

test('in Chromium: the registration page keeps what was typed and names the problem', async (tt) => {
  const context = await chrome.newContext({ bypassCSP: true }); // only so axe-core can be injected
  const page = await context.newPage();
  await page.goto((await authorizationUrl()).url);
  await page.getByRole('link', { name: 'Create an account' }).click();
  await page.getByLabel('Name').fill('Ada Browser');
  await page.getByLabel('Email').fill('ada.browser@x.test');
  await page.getByLabel('Password').fill('password1');
  await page.getByRole('button', { name: 'Create account' }).click();
  await tt.notThrowsAsync(page.getByRole('alert').filter({ hasText: 'most common passwords' }).waitFor());
  tt.is(await page.getByLabel('Name').inputValue(), 'Ada Browser');
  tt.is(await page.getByLabel('Email').inputValue(), 'ada.browser@x.test');
  await screenshots(page, 'register-error');
  await context.close();
});

test('in Chromium: every form field of the sign-in pages has a label, and the pages fit a phone', async (tt) => {
  const context = await chrome.newContext({ viewport: { width: 390, height: 844 } });
  const page = await context.newPage();
  await page.goto((await authorizationUrl()).url);
  const unlabeled = await page.evaluate(() =>
    Array.from(document.querySelectorAll('input:not([type=hidden])'))
      .filter((i) => !(i as HTMLInputElement).labels?.length)
      .map((i) => (i as HTMLInputElement).name),
  );
  tt.deepEqual(unlabeled, []);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  tt.true(overflow <= 0, `horizontal overflow of ${overflow}px at phone width`);
  await context.close();
});

test('in Chromium: the sign-in page loads its icon and stylesheet with no console error and no failed request', async (tt) => {
  const context = await chrome.newContext();
  const page = await context.newPage();
  const problems = watchProblems(page);
  const requested: string[] = [];
  page.on('requestfinished', (r) => requested.push(new URL(r.url()).pathname));
  await page.goto((await authorizationUrl()).url);
  await page.getByRole('heading', { name: /Sign in to Test app/ }).waitFor();
  await page.waitForLoadState('networkidle');
  tt.deepEqual(problems, []);
  tt.true(requested.includes('/assets/tessera.css'), requested.join(' '));
  tt.is(await page.locator('link[rel=icon]').getAttribute('href'), '/assets/favicon.svg');
  const icon = await page.request.get(`${t.url}/assets/favicon.svg`);
  tt.is(icon.status(), 200);
  tt.is(icon.headers()['content-type'], 'image/svg+xml');
  tt.regex(await icon.text(), /^<svg /);
  await context.close();
});

test('/favicon.ico answers with an icon browsers may cache; other names under /assets stay 404', async (tt) => {
  const ico = await fetch(`${t.url}/favicon.ico`);
  tt.is(ico.status, 200);
  tt.is(ico.headers.get('content-type'), 'image/x-icon');
  tt.regex(ico.headers.get('cache-control') ?? '', /public, max-age=\d+/);
  const bytes = Buffer.from(await ico.arrayBuffer());
  tt.deepEqual([...bytes.subarray(0, 4)], [0, 0, 1, 0], 'an ICO header');
  tt.is((await fetch(`${t.url}/assets/favicon.ico`)).status, 200);
  tt.is((await fetch(`${t.url}/assets/favicon.png`)).status, 404);
  tt.is((await fetch(`${t.url}/assets/..%2Fviews%2Flayout.njk`)).status, 404);
});
