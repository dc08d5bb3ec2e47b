import test, { type ExecutionContext } from 'ava';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import * as samlify from 'samlify';
import { adminApi, createTenant, startTestApp, type TestApp, type TestTenant } from '../helpers/app.ts';
import { seriousA11yViolations } from '../helpers/axe.ts';
import { launchChromium, screenshots } from '../helpers/chromium.ts';
import { TestSamlIdp } from '../helpers/saml-idp.ts';

/**
 * A setup link in Debian's Chromium, as the customer's IT admin uses it: a domain verified by its
 * DNS record, a SAML connection made from the IdP's metadata, a test sign-in through a real
 * (samlify) IdP that ends on the link's own page, directory sync; then the same link in another
 * browser, an expired and a revoked link, and the owner's Setup links tab. Every page is checked
 * with axe-core; the screenshots are the guides' (npm run docs:screenshots).
 */

let t: TestApp;
let tenant: TestTenant;
let chrome: Browser;
let org: string;
const txt = new Map<string, string[][]>();
const idp = new TestSamlIdp();
const OWNER = { email: 'olivia.owner@acme.test', password: 'violet kangaroo 42 lamp' };

test.before(async () => {
  t = await startTestApp({ txtRecords: txt });
  tenant = await createTenant(t);
  org = (await adminApi(t, tenant, 'POST', '/organizations', { name: 'Acme Corp', slug: 'acme' })).body.id;
  const owner = await adminApi(t, tenant, 'POST', '/users', { email: OWNER.email, password: OWNER.password, name: 'Olivia Owner', email_verified: true });
  await adminApi(t, tenant, 'POST', `/organizations/${org}/members`, { user_id: owner.body.id, role: 'owner' });
  chrome = await launchChromium();
});
test.after.always(async () => {
  await chrome?.close();
  await t?.stop();
});

async function newPage(): Promise<{ context: BrowserContext; page: Page }> {
  // bypassCSP only so axe-core can be injected; the CSP itself is tested over HTTP.
  const context = await chrome.newContext({ bypassCSP: true });
  return { context, page: await context.newPage() };
}

/**
 * The IdP's sign-in page, answered in the browser: it reads our AuthnRequest and shows a button
 * that posts its signed answer to our ACS, as an IdP's page does once the person signed in.
 */
async function serveIdp(context: BrowserContext, who: { email: string; name: string; groups: string[] }) {
  await context.route('https://idp.test/**', async (route) => {
    const url = route.request().url();
    // The organization's one connection (the link made it).
    const [conn] = (await adminApi(t, tenant, 'GET', `/organizations/${org}/sso-connections`)).body.data;
    const sp = samlify.ServiceProvider({ metadata: await (await fetch(conn.sp_metadata_url)).text() });
    const answer = await idp.response(sp, conn.acs_url, conn.sp_entity_id, {
      inResponseTo: await idp.requestIdOf(sp, url),
      nameId: who.email,
      attributes: { email: who.email, name: who.name, groups: who.groups },
    });
    await route.fulfill({
      status: 200,
      contentType: 'text/html',
      body: `<!doctype html><html lang="en"><head><title>Test IdP</title></head><body><main><h1>Test IdP</h1><p>Signed in as ${who.email}.</p>
        <form method="post" action="${conn.acs_url}"><input type="hidden" name="SAMLResponse" value="${answer}"><button type="submit">Continue to the application</button></form></main></body></html>`,
    });
  });
}

/** Screenshots the page and asserts axe-core finds no serious or critical violation on it. */
async function look(tt: ExecutionContext, page: Page, name: string) {
  tt.deepEqual(await seriousA11yViolations(page), [], `accessibility violations on ${name}`);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  tt.true(overflow <= 0, `${name}: horizontal overflow of ${overflow}px`);
  await screenshots(page, name, { forGuide: true });
}

async function makeLink(features: string[]) {
  const r = await adminApi(t, tenant, 'POST', `/organizations/${org}/setup-links`, { features });
  if (r.status !== 201) throw new Error(r.text);
  return r.body as { id: string; url: string };
}

test.serial(
  'an IT admin sets up SAML through a link: domain verified, connection from metadata, a test sign-in through the IdP, directory sync',
  async (tt) => {
    const link = await makeLink(['domains', 'sso', 'directory_sync']);
    const { context, page } = await newPage();
    await serveIdp(context, { email: 'tess@acme.example', name: 'Tess Tester', groups: ['engineering'] });

    await page.goto(link.url);
    await tt.notThrowsAsync(page.getByRole('heading', { name: 'Set up Acme Corp' }).waitFor());
    await look(tt, page, 'setup-link-overview');

    await page
      .getByRole('navigation', { name: 'Setup steps' })
      .getByRole('link', { name: /Domains/ })
      .click();
    await page.getByLabel('Add a domain').fill('acme.example');
    await page.getByRole('button', { name: 'Add domain' }).click();
    await tt.notThrowsAsync(page.getByRole('status').filter({ hasText: 'acme.example added' }).waitFor());
    const name = await page.locator('[data-copy="record name"]').first().innerText();
    const value = await page.locator('[data-copy="record value"]').first().innerText();
    tt.is(name, '_tessera-verification.acme.example');
    await look(tt, page, 'setup-link-domains');
    // Published: the same Verify now finds it.
    txt.set(name, [[value]]);
    await page.getByRole('button', { name: 'Verify' }).click();
    await tt.notThrowsAsync(page.getByRole('status').filter({ hasText: 'acme.example is verified' }).waitFor());

    await page
      .getByRole('navigation', { name: 'Setup steps' })
      .getByRole('link', { name: /Single sign-on/ })
      .click();
    await look(tt, page, 'setup-link-sso-providers');
    await page.getByRole('link', { name: /Okta/ }).click();
    const acs = await page.locator('[data-copy="acs url"]').innerText();
    tt.regex(acs, new RegExp(`^${t.url}/t/${tenant.slug}/sso/saml/[0-9a-f-]{36}/acs$`));
    await look(tt, page, 'setup-link-sso-okta');
    await page.getByLabel('IdP metadata XML').fill(idp.idp.getMetadata());
    await page.getByRole('button', { name: 'Save connection' }).click();
    await tt.notThrowsAsync(page.getByRole('status').filter({ hasText: 'Saved' }).waitFor());
    const conns = (await adminApi(t, tenant, 'GET', `/organizations/${org}/sso-connections`)).body.data;
    tt.is(conns.length, 1);
    tt.is(conns[0].acs_url, acs, 'the connection has the URLs the IdP was given before it existed');

    await page.getByRole('link', { name: 'Next: test sign-in' }).click();
    await page.getByRole('button', { name: 'Test sign-in' }).click();
    await page.waitForURL('https://idp.test/**');
    await page.getByRole('button', { name: 'Continue to the application' }).click();
    await page.waitForURL(`${link.url}/test`);
    await tt.notThrowsAsync(page.getByRole('status').filter({ hasText: 'The test sign-in worked' }).waitFor());
    tt.regex(await page.locator('dl').innerText(), /tess@acme\.example[\s\S]*Tess Tester[\s\S]*engineering/);
    tt.regex(await page.getByRole('status').innerText(), /creates an account for tess@acme\.example and makes it a member with the role member/);
    await look(tt, page, 'setup-link-test-result');
    tt.is((await adminApi(t, tenant, 'GET', '/users?email=tess%40acme.example')).body.data.length, 0, 'the test made no account');

    await page
      .getByRole('navigation', { name: 'Setup steps' })
      .getByRole('link', { name: /Directory sync/ })
      .click();
    await page.getByRole('link', { name: 'Okta' }).click();
    await page.getByRole('button', { name: 'Create the directory' }).click();
    await tt.notThrowsAsync(page.getByText('Copy this token now').waitFor());
    tt.regex(await page.locator('[data-copy="token"]').innerText(), /^scim_/);
    await look(tt, page, 'setup-link-directory-token');
    tt.is((await adminApi(t, tenant, 'GET', `/organizations/${org}/directories`)).body.data.length, 1);

    // The same link in another browser: refused, clearly.
    const { context: elsewhere, page: other } = await newPage();
    const res = await other.goto(link.url);
    tt.is(res?.status(), 409);
    await tt.notThrowsAsync(other.getByRole('heading', { name: 'This link was opened in another browser' }).waitFor());
    await look(tt, other, 'setup-link-other-browser');
    await elsewhere.close();
    await context.close();
  },
);

test.serial('an expired and a revoked link show a clear page', async (tt) => {
  const expired = await makeLink(['sso']);
  await t.app.connection.db
    .updateTable('setup_links')
    .set({ expires_at: new Date(Date.now() - 1000) })
    .where('id', '=', expired.id)
    .execute();
  const revoked = await makeLink(['sso']);
  await adminApi(t, tenant, 'DELETE', `/organizations/${org}/setup-links/${revoked.id}`);
  const { context, page } = await newPage();
  tt.is((await page.goto(expired.url))?.status(), 410);
  await tt.notThrowsAsync(page.getByRole('heading', { name: 'This setup link has expired' }).waitFor());
  await look(tt, page, 'setup-link-expired');
  tt.is((await page.goto(revoked.url))?.status(), 410);
  await tt.notThrowsAsync(page.getByRole('heading', { name: 'This setup link was revoked' }).waitFor());
  await context.close();
});

test.serial('the owner makes a link on the Setup links tab, sees its URL once, and revokes it', async (tt) => {
  const { context, page } = await newPage();
  await page.goto(`${t.url}/t/${tenant.slug}/portal/organizations/${org}/setup-links`);
  await page.getByLabel('Email').fill(OWNER.email);
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.getByLabel('Password').fill(OWNER.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(/\/setup-links$/);
  // Nothing chosen: said, nothing made.
  await page.getByLabel(/Domains/).uncheck();
  await page.getByLabel(/Single sign-on/).uncheck();
  await page.getByRole('button', { name: 'Create setup link' }).click();
  await tt.notThrowsAsync(page.getByRole('alert').filter({ hasText: 'Choose at least one thing' }).waitFor());
  await page.getByLabel(/Single sign-on/).check();
  await page.getByLabel(/Directory sync/).check();
  await page.getByLabel('Works for').selectOption('14');
  await page.getByRole('button', { name: 'Create setup link' }).click();
  const url = await page.locator('[data-copy="setup link"]').innerText();
  tt.regex(url, new RegExp(`^${t.url}/t/${tenant.slug}/setup/stl_`));
  await look(tt, page, 'portal-org-setup-links');
  await page.goto(`${t.url}/t/${tenant.slug}/portal/organizations/${org}/setup-links`);
  tt.is(await page.locator('[data-copy="setup link"]').count(), 0, 'shown once');
  const before = (await adminApi(t, tenant, 'GET', `/organizations/${org}/setup-links`)).body.data.filter(
    (l: { status: string }) => l.status === 'active',
  ).length;
  await page.getByText('Revoke', { exact: true }).first().click();
  await page.getByRole('button', { name: 'Yes, revoke' }).first().click();
  await tt.notThrowsAsync(page.getByRole('status').filter({ hasText: 'Setup link revoked' }).waitFor());
  const after = (await adminApi(t, tenant, 'GET', `/organizations/${org}/setup-links`)).body.data.filter(
    (l: { status: string }) => l.status === 'active',
  ).length;
  tt.is(after, before - 1);
  await context.close();
});
