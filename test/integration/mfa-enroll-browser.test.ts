import test from 'ava';
import type { Browser, Page } from 'playwright-core';
import { base32Decode, hotp, totpStep } from '../../src/factors/totp.ts';
import { adminApi, createTenant, startTestApp, type TestApp, type TestTenant, webClient } from '../helpers/app.ts';
import { seriousA11yViolations } from '../helpers/axe.ts';
import { launchChromium, screenshots as saveScreenshots } from '../helpers/chromium.ts';
import { type RegisteredClient, startAuthorization } from '../helpers/oidc.ts';
import { watchProblems } from '../helpers/page-problems.ts';

/** Setting up an authenticator app within sign-in, in Chromium: the QR code under the pages' real CSP, labels, axe. */

let t: TestApp;
let tenant: TestTenant;
let client: RegisteredClient;
let chrome: Browser;
let people = 0;
const PASSWORD = 'scan me in a browser 42';

test.before(async () => {
  t = await startTestApp();
  tenant = await createTenant(t);
  client = (await adminApi(t, tenant, 'POST', '/clients', webClient())).body;
  await adminApi(t, tenant, 'PATCH', '/settings', { mfa: 'required' });
  chrome = await launchChromium();
});
test.after.always(async () => {
  await chrome?.close();
  await t?.stop();
});

async function toEnrollment(page: Page) {
  const email = `scan${++people}@browser.test`;
  await adminApi(t, tenant, 'POST', '/users', { email, password: PASSWORD, email_verified: true });
  await page.route(`${client.redirect_uris[0]}**`, (route) => route.fulfill({ status: 200, contentType: 'text/html', body: '<h1>App</h1>' }));
  await page.goto((await startAuthorization(tenant, client)).url);
  await page.getByLabel('Email').fill(email);
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Set up a second factor' }).waitFor();
}

const codeFor = (secret: string) => hotp(base32Decode(secret), totpStep(Date.now() / 1000));

test('in Chromium, under the real CSP: the QR code shows, the first code and the saved codes finish the sign-in', async (tt) => {
  const context = await chrome.newContext();
  const page = await context.newPage();
  const problems = watchProblems(page);
  await toEnrollment(page);
  const qr = page.getByRole('img', { name: /QR code to add .* to an authenticator app/ });
  await qr.waitFor();
  tt.true(await qr.evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth > 0), 'the image is drawn (the CSP allows it)');
  const secret = (await page.locator('.totp-secret').textContent())!.trim();
  await page.getByLabel('The 6-digit code the app shows now').fill(codeFor(secret));
  await page.getByRole('button', { name: 'Confirm' }).click();
  await page.getByRole('heading', { name: 'Your recovery codes' }).waitFor();
  const codes = (await page.locator('pre.recovery-codes').textContent())!.trim().split('\n');
  tt.is(codes.length, 10);
  await page.getByLabel('I have saved these recovery codes').check();
  await page.getByRole('button', { name: 'Continue' }).click();
  await tt.notThrowsAsync(page.getByRole('heading', { name: 'App' }).waitFor());
  // Only Tessera's pages are judged here (the app's redirect URI is answered by the test).
  tt.deepEqual(
    problems.filter((p) => !p.includes(client.redirect_uris[0]!)),
    [],
  );
  await context.close();
});

test('in Chromium: the enrollment and recovery-code pages have labels and no serious accessibility violation', async (tt) => {
  const context = await chrome.newContext({ bypassCSP: true }); // only so axe-core can be injected
  const page = await context.newPage();
  await toEnrollment(page);
  const check = async (name: string) => {
    const violations = await seriousA11yViolations(page);
    tt.deepEqual(violations, [], name);
    const unlabeled = await page.evaluate(() =>
      Array.from(document.querySelectorAll('input:not([type=hidden])'))
        .filter((i) => !(i as HTMLInputElement).labels?.length)
        .map((i) => (i as HTMLInputElement).name),
    );
    tt.deepEqual(unlabeled, [], name);
    await saveScreenshots(page, name, { forGuide: true });
  };
  await check('sign-in-enroll-app');
  const secret = (await page.locator('.totp-secret').textContent())!.trim();
  await page.getByLabel('The 6-digit code the app shows now').fill(codeFor(secret));
  await page.getByRole('button', { name: 'Confirm' }).click();
  await page.getByRole('heading', { name: 'Your recovery codes' }).waitFor();
  await check('sign-in-enroll-codes');
  await context.close();
});
