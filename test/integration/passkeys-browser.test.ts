import { createServer, type Server } from 'node:http';
import test from 'ava';
import * as oidc from 'openid-client';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { adminApi, createTenant, freePort, startTestApp, type TestApp, type TestTenant, webClient } from '../helpers/app.ts';
import { seriousA11yViolations } from '../helpers/axe.ts';
import { launchChromium, screenshots } from '../helpers/chromium.ts';
import { type RegisteredClient, startAuthorization } from '../helpers/oidc.ts';
import { watchProblems } from '../helpers/page-problems.ts';
import { SmtpSink } from '../helpers/smtp.ts';

/**
 * Passkeys in Chromium, with its virtual authenticator (CDP WebAuthn domain): a platform
 * authenticator that keeps discoverable credentials and verifies the user. The pages run under
 * their real Content-Security-Policy, so the ceremony scripts must load as files.
 */

let t: TestApp;
let sink: SmtpSink;
let tenant: TestTenant;
let client: RegisteredClient;
let chrome: Browser;
/** The app's redirect URI: a real listener (a route in the browser missed redirects after a CDP session was opened). */
let app: Server;

test.before(async () => {
  const smtpPort = await freePort();
  sink = await SmtpSink.start(smtpPort);
  // http://localhost:<port>: the RP ID must be a domain, not an IP address.
  t = await startTestApp({ env: { SMTP_URL: `smtp://127.0.0.1:${smtpPort}`, MAIL_POLL_MS: '100' } });
  tenant = await createTenant(t);
  const appPort = await freePort();
  app = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>App</title><h1>App</h1>'));
  await new Promise<void>((resolve) => app.listen(appPort, '127.0.0.1', resolve));
  client = (await adminApi(t, tenant, 'POST', '/clients', webClient(`http://localhost:${appPort}/cb`))).body;
  chrome = await launchChromium();
});
test.after.always(async () => {
  await chrome?.close();
  await t?.stop();
  await sink?.stop();
  app?.close();
});

const PASSWORD = 'a passkey in chromium 4';

/**
 * A page with a virtual authenticator. `present(false)`: the person does not touch it, so a
 * request waits (the email-first page's autofill request would otherwise sign in at once).
 */
async function withAuthenticator(context: BrowserContext): Promise<{ page: Page; present: (yes: boolean) => Promise<void> }> {
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      transport: 'internal',
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });
  const present = async (enabled: boolean) => {
    await cdp.send('WebAuthn.setAutomaticPresenceSimulation', { authenticatorId, enabled });
  };
  return { page, present };
}

async function signInWithPassword(page: Page, email: string) {
  await page.getByLabel('Email').fill(email);
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

async function redeemAt(page: Page, auth: { config: oidc.Configuration; verifier: string; state: string }) {
  await page.waitForURL(`${client.redirect_uris[0]}**`);
  const tokens = await oidc.authorizationCodeGrant(auth.config, new URL(page.url()), { pkceCodeVerifier: auth.verifier, expectedState: auth.state });
  return tokens.claims()!;
}

test('in Chromium: add a passkey, use it after the password and instead of it, then remove it', async (tt) => {
  const email = 'ada@passkeys-browser.test';
  const user = (await adminApi(t, tenant, 'POST', '/users', { email, password: PASSWORD, email_verified: true, name: 'Ada' })).body;
  const context = await chrome.newContext();
  const { page, present } = await withAuthenticator(context);
  const problems = watchProblems(page);

  // 1. Register on the Security page.
  await page.goto(`${t.url}/t/${tenant.slug}/account/security`);
  await signInWithPassword(page, email);
  await page.getByRole('heading', { name: 'Passkeys' }).waitFor();
  await page.locator('#passkey-name').fill('Laptop');
  await page.locator('#passkey-password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Add a passkey' }).click();
  const create = page.getByRole('button', { name: 'Create the passkey' });
  await create.waitFor();
  await screenshots(page, 'passkey-add', { forGuide: true });
  await create.click();
  await tt.notThrowsAsync(page.getByRole('status').filter({ hasText: 'Passkey added' }).waitFor());
  tt.regex(await page.locator('table').innerText(), /Laptop \(passkey\)/);
  await screenshots(page, 'security-with-passkey', { forGuide: true });
  await sink.waitFor(email, /sign-in factor was added/);

  // 2. Password, then the passkey as second factor, through a real RP (prompt=login: the
  // browser is signed in already, from the Security page).
  const second = await startAuthorization(tenant, client, { scope: 'openid email', prompt: 'login' });
  await present(false);
  await page.goto(second.url);
  await signInWithPassword(page, email);
  const usePasskey = page.getByRole('button', { name: 'Use a passkey' });
  await usePasskey.waitFor();
  await present(true);
  await screenshots(page, 'sign-in-passkey-second-factor', { forGuide: true });
  await usePasskey.click();
  const mfaClaims = await redeemAt(page, second);
  tt.is(mfaClaims.sub, user.id);
  tt.deepEqual(mfaClaims.amr, ['pwd', 'hwk', 'user', 'mfa']);
  tt.is(mfaClaims.acr, 'urn:tessera:acr:mfa');

  // 3. Passwordless from the email-first page, with the button.
  const alone = await startAuthorization(tenant, client, { scope: 'openid email', prompt: 'login' });
  await present(false);
  await page.goto(alone.url);
  const signInWithPasskey = page.getByRole('button', { name: 'Sign in with a passkey' });
  await signInWithPasskey.waitFor();
  tt.is(await page.getByLabel('Email').getAttribute('autocomplete'), 'username webauthn');
  await screenshots(page, 'sign-in-passkey', { forGuide: true });
  await present(true);
  await signInWithPasskey.click();
  const claims = await redeemAt(page, alone);
  tt.is(claims.sub, user.id);
  tt.deepEqual(claims.amr, ['hwk', 'user', 'mfa']);
  tt.is(claims.acr, 'urn:tessera:acr:mfa');

  // 3b. And through the email field's autofill (conditional UI): the page asks as it loads, and
  // the virtual authenticator (always "touched") answers without a click.
  const autofill = await startAuthorization(tenant, client, { scope: 'openid email', prompt: 'login' });
  await page.goto(autofill.url);
  const autofilled = await redeemAt(page, autofill);
  tt.deepEqual(autofilled.amr, ['hwk', 'user', 'mfa']);

  // 4. Remove it (the password again); the person is mailed.
  await page.goto(`${t.url}/t/${tenant.slug}/account/security`);
  const row = page.locator('tr', { hasText: 'Laptop' });
  await row.getByText('Remove', { exact: true }).click();
  await row.getByLabel('Current password').fill(PASSWORD);
  await row.getByRole('button', { name: 'Yes, remove' }).click();
  await tt.notThrowsAsync(page.getByRole('status').filter({ hasText: 'Factor removed' }).waitFor());
  const mail = await sink.waitFor(email, /sign-in factor was removed/);
  tt.regex(mail.text!, /A passkey was removed/);
  tt.deepEqual(await t.app.services.factors.list(tenant.id, user.id), []);

  tt.deepEqual(problems, [], 'no console error, no failed request');
  await context.close();
});

test('in Chromium: with no passkey for this site, the button says so on the page and the password still works', async (tt) => {
  const email = 'grace@passkeys-browser.test';
  await adminApi(t, tenant, 'POST', '/users', { email, password: PASSWORD, email_verified: true });
  const context = await chrome.newContext({ bypassCSP: true }); // only so axe-core can be injected
  const { page } = await withAuthenticator(context);
  const auth = await startAuthorization(tenant, client, { scope: 'openid email' });
  await page.goto(auth.url);
  const button = page.getByRole('button', { name: 'Sign in with a passkey' });
  await button.waitFor();
  tt.deepEqual(await seriousA11yViolations(page), [], 'the sign-in page with its passkey button');
  await button.click();
  // The virtual authenticator holds no credential for this site: the browser's request fails.
  await tt.notThrowsAsync(
    page.locator('[data-passkey-error]').filter({ hasText: 'The passkey request was cancelled or timed out' }).waitFor({ timeout: 20_000 }),
  );
  await signInWithPassword(page, email);
  const claims = await redeemAt(page, auth);
  tt.deepEqual(claims.amr, ['pwd']);
  await context.close();
});
