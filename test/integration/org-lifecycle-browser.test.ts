import test, { type ExecutionContext } from 'ava';
import type { Browser, Page } from 'playwright-core';
import { adminApi, createTenant, startTestApp, type TestApp, type TestTenant } from '../helpers/app.ts';
import { seriousA11yViolations } from '../helpers/axe.ts';
import { launchChromium, screenshots } from '../helpers/chromium.ts';
import { SmtpSink } from '../helpers/smtp.ts';

/**
 * Approval in Chromium: a person creates an organization that waits, sees it marked; a tenant
 * administrator rejects one (a missing reason is named next to its field) and approves another
 * from the Approvals page. Every page is checked with axe-core at desktop and phone width.
 */

let smtp: SmtpSink;
let t: TestApp;
let tenant: TestTenant;
let chrome: Browser;
const OWNER = { email: 'paula.pending@lifecycle-browser.test', password: 'amber falcon 19 meadow' };

test.before(async () => {
  smtp = await SmtpSink.start();
  t = await startTestApp({ env: { SMTP_URL: smtp.url, MAIL_POLL_MS: '100' } });
  tenant = await createTenant(t);
  await adminApi(t, tenant, 'PATCH', '/settings', { users_can_create_organizations: true, organization_approval: 'required' });
  const r = await adminApi(t, tenant, 'POST', '/users', { ...OWNER, email_verified: true });
  if (r.status !== 201) throw new Error(r.text);
  chrome = await launchChromium();
});
test.after.always(async () => {
  await chrome?.close();
  await t?.stop();
  await smtp?.stop();
});

const portalUrl = (path = 'organizations') => `${t.url}/t/${tenant.slug}/portal/${path}`;

async function look(tt: ExecutionContext, page: Page, name: string) {
  tt.deepEqual(await seriousA11yViolations(page), [], `accessibility violations on ${name}`);
  await screenshots(page, name);
  await page.setViewportSize({ width: 390, height: 844 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  await page.setViewportSize({ width: 1280, height: 800 });
  tt.true(overflow <= 0, `${name}: horizontal overflow of ${overflow}px at phone width`);
}

async function signIn(page: Page, who: { email: string; password: string }) {
  await page.goto(portalUrl());
  await page.getByLabel('Email').fill(who.email);
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.getByLabel('Password').fill(who.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL((u) => u.pathname.includes('/portal/'));
}

test.serial('a created organization waits, marked; a tenant administrator rejects one with a reason and approves another', async (tt) => {
  const owner = await (await chrome.newContext({ bypassCSP: true })).newPage();
  await signIn(owner, OWNER);
  for (const name of ['Hopeful Co', 'Doubtful Co']) {
    await owner.goto(portalUrl('organizations/new'));
    await owner.getByLabel('Name', { exact: true }).fill(name);
    await owner.getByRole('button', { name: 'Create organization' }).click();
    await owner.waitForURL(/\/members\?done=created_pending/);
  }
  await tt.notThrowsAsync(owner.getByRole('status').filter({ hasText: 'waits for approval' }).first().waitFor());
  await look(tt, owner, 'lifecycle-pending-members');
  await owner.goto(portalUrl());
  tt.is(await owner.locator('.badge.pending').filter({ hasText: 'waiting for approval' }).count(), 2);
  await look(tt, owner, 'lifecycle-pending-list');

  const admin = await (await chrome.newContext({ bypassCSP: true })).newPage();
  await signIn(admin, { email: tenant.adminEmail, password: tenant.adminPassword });
  await admin.getByRole('link', { name: /Approvals \(2\)/ }).click();
  await admin.waitForURL(/\/portal\/approvals$/);
  await look(tt, admin, 'lifecycle-approvals');

  await admin.getByRole('button', { name: 'Reject Doubtful Co' }).click();
  await tt.notThrowsAsync(admin.locator('.field-error').filter({ hasText: 'Must not be empty' }).waitFor());
  await look(tt, admin, 'lifecycle-approvals-reject-error');
  tt.true(await admin.getByRole('radio', { name: /Required —/ }).isChecked(), 'the rules form still shows the rules');
  await admin.getByLabel('Reason for rejecting Doubtful Co (mailed to its owners)').fill('We only serve registered charities.');
  await admin.getByRole('button', { name: 'Reject Doubtful Co' }).click();
  await tt.notThrowsAsync(admin.getByRole('status').filter({ hasText: 'Organization rejected' }).waitFor());
  await admin.getByRole('button', { name: 'Approve Hopeful Co' }).click();
  await tt.notThrowsAsync(admin.getByRole('status').filter({ hasText: 'Organization approved' }).waitFor());
  await tt.notThrowsAsync(admin.getByText('No organization is waiting for approval.').waitFor());

  await smtp.waitFor(OWNER.email, /Hopeful Co is approved/);
  await smtp.waitFor(OWNER.email, /Doubtful Co was not approved/);
  await owner.goto(`${t.url}/t/${tenant.slug}/account/organizations`);
  await tt.notThrowsAsync(owner.getByText('We only serve registered charities.').waitFor());
  tt.is(await owner.locator('.badge.rejected').count(), 1);
  tt.is((await owner.locator('.badge.active').filter({ hasText: 'active' }).count()) >= 1, true);
  await look(tt, owner, 'lifecycle-account-organizations');
});
