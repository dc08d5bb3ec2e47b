import test, { type ExecutionContext } from 'ava';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { adminApi, createTenant, startTestApp, type TestApp, type TestTenant } from '../helpers/app.ts';
import { seriousA11yViolations } from '../helpers/axe.ts';
import { launchChromium, screenshots } from '../helpers/chromium.ts';
import { TestSamlIdp } from '../helpers/saml-idp.ts';
import { linkIn, SmtpSink } from '../helpers/smtp.ts';

/**
 * The portal and account pages in Debian's Chromium: an owner's day (create an organization,
 * invite, change a role, set up SAML from metadata XML) and a member's (accept from the email,
 * see no invitations tab, leave). Every page visited is checked with axe-core and saved as a
 * screenshot at desktop and phone width (test-results/screenshots/).
 */

let smtp: SmtpSink;
let t: TestApp;
let tenant: TestTenant;
let chrome: Browser;
const OWNER = { email: 'olivia.owner@acme.test', password: 'violet kangaroo 42 lamp' };
const INVITEE = { email: 'ivy.invitee@acme.test', name: 'Ivy Invitee', password: 'purple walrus 7 harbour' };

test.before(async () => {
  smtp = await SmtpSink.start();
  t = await startTestApp({ env: { SMTP_URL: smtp.url, MAIL_POLL_MS: '100' } });
  tenant = await createTenant(t);
  await adminApi(t, tenant, 'PATCH', '/settings', { users_can_create_organizations: true, logo_url: 'https://logo.example/acme.svg' });
  const r = await adminApi(t, tenant, 'POST', '/users', { email: OWNER.email, password: OWNER.password, name: 'Olivia Owner', email_verified: true });
  if (r.status !== 201) throw new Error(r.text);
  chrome = await launchChromium();
});
test.after.always(async () => {
  await chrome?.close();
  await t?.stop();
  await smtp?.stop();
});

const portalUrl = (path = 'organizations') => `${t.url}/t/${tenant.slug}/portal/${path}`;

async function newPage(): Promise<{ context: BrowserContext; page: Page }> {
  // bypassCSP only so axe-core can be injected; the CSP itself is tested over HTTP.
  const context = await chrome.newContext({ bypassCSP: true });
  // The tenant logo's host does not exist here: answer it in the browser.
  await context.route('https://logo.example/**', (route) =>
    route.fulfill({
      status: 200,
      contentType: 'image/svg+xml',
      body: '<svg xmlns="http://www.w3.org/2000/svg" width="28" height="28"><rect width="28" height="28" fill="#3451b2"/></svg>',
    }),
  );
  return { context, page: await context.newPage() };
}

/** Screenshots the page and asserts axe-core finds no serious or critical violation on it. */
async function look(tt: ExecutionContext, page: Page, name: string, opts: { forGuide?: boolean } = {}) {
  const violations = await seriousA11yViolations(page);
  tt.deepEqual(violations, [], `accessibility violations on ${name}`);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  await screenshots(page, name, opts);
  tt.true(overflow <= 0, `${name}: horizontal overflow of ${overflow}px at desktop width`);
  await page.setViewportSize({ width: 390, height: 844 });
  const phoneOverflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  await page.setViewportSize({ width: 1280, height: 800 });
  tt.true(phoneOverflow <= 0, `${name}: horizontal overflow of ${phoneOverflow}px at phone width`);
}

async function signIn(page: Page, who: { email: string; password: string }, start = portalUrl()) {
  await page.goto(start);
  await page.getByLabel('Email').fill(who.email);
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.getByLabel('Password').fill(who.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL((u) => u.pathname.includes('/portal/') || u.pathname.includes('/account/'));
}

/** Clicks a disclosure's summary, then its confirm button (the no-JS confirmation pattern). */
async function confirm(scope: Page | ReturnType<Page['locator']>, summary: string) {
  await scope.getByText(summary, { exact: true }).click();
  await scope.getByRole('button', { name: `Yes, ${summary.toLowerCase()}` }).click();
}

const fieldError = (page: Page, field: string) => page.locator(`#e-${field}`);

test.serial('an owner creates an organization; bad input is named next to its field and what was typed is kept', async (tt) => {
  const { context, page } = await newPage();
  await page.goto(portalUrl());
  // Not signed in: the portal sends the browser through the tenant's own sign-in, with its logo.
  await tt.notThrowsAsync(page.getByRole('heading', { name: /Sign in to Tessera portal/ }).waitFor());
  tt.is(await page.locator('.brand-line img').getAttribute('src'), 'https://logo.example/acme.svg');
  await signIn(page, OWNER);
  tt.regex(page.url(), /\/portal\/organizations$/);
  await tt.notThrowsAsync(page.getByText('You are not a member of any organization yet').waitFor());
  await look(tt, page, 'portal-organizations-empty');

  await page.getByRole('link', { name: 'New organization' }).click();
  await page.getByLabel('Slug').fill('Not a slug!');
  await page.getByRole('button', { name: 'Create organization' }).click();
  await tt.notThrowsAsync(fieldError(page, 'name').waitFor());
  tt.regex(await fieldError(page, 'name').innerText(), /must not be empty/i);
  tt.regex(await fieldError(page, 'slug').innerText(), /lowercase letters/);
  tt.is(await page.getByLabel('Slug').inputValue(), 'Not a slug!');
  tt.is(await page.getByLabel('Name', { exact: true }).getAttribute('aria-invalid'), 'true');
  await look(tt, page, 'portal-org-new-errors');

  // The slug suggestion follows the name while the slug is untouched (progressive enhancement).
  await page.getByLabel('Slug').fill('');
  await page.getByLabel('Name', { exact: true }).fill('Acme Corp');
  await tt.notThrowsAsync(page.getByText('Suggested: acme-corp').waitFor());
  await page.getByLabel('Slug').fill('acme');
  await page.getByLabel('Domain').fill('acme.test');
  await page.getByRole('button', { name: 'Create organization' }).click();
  await page.waitForURL(/\/members\?done=created/);
  await tt.notThrowsAsync(page.getByRole('status').filter({ hasText: 'You are its owner' }).waitFor());
  tt.truthy(
    await page
      .getByRole('row', { name: /olivia\.owner@acme\.test/ })
      .locator('.badge.owner')
      .count(),
  );
  await look(tt, page, 'portal-org-members');

  // A second organization with the same slug: the message is next to the slug, the name is kept.
  await page.goto(portalUrl('organizations/new'));
  await page.getByLabel('Name', { exact: true }).fill('Acme Two');
  await page.getByLabel('Slug').fill('acme');
  await page.getByRole('button', { name: 'Create organization' }).click();
  await tt.notThrowsAsync(fieldError(page, 'slug').waitFor());
  tt.regex(await fieldError(page, 'slug').innerText(), /already in use/);
  tt.is(await page.getByLabel('Name', { exact: true }).inputValue(), 'Acme Two');
  await page.getByLabel('Slug').fill('beta');
  await page.getByLabel('Name', { exact: true }).fill('Beta Labs');
  await page.getByRole('button', { name: 'Create organization' }).click();
  await page.waitForURL(/\/members\?done=created/);

  await page.goto(portalUrl());
  await tt.notThrowsAsync(page.getByRole('link', { name: 'Acme Corp' }).waitFor());
  await look(tt, page, 'portal-organizations');
  await page.getByLabel('Search organizations').fill('beta');
  await page.getByRole('button', { name: 'Search' }).click();
  tt.is(await page.getByRole('link', { name: 'Acme Corp' }).count(), 0);
  tt.is(await page.getByRole('link', { name: 'Beta Labs' }).count(), 1);
  await context.close();
});

test.serial('the owner invites a person, who accepts from the email; the owner changes their role', async (tt) => {
  const owner = await newPage();
  await signIn(owner.page, OWNER);
  await owner.page.getByRole('link', { name: 'Acme Corp' }).click();
  await owner.page.getByRole('navigation', { name: 'Organization' }).getByRole('link', { name: 'Invitations' }).click();
  await owner.page.getByLabel('Email').fill('not-an-email');
  await owner.page.getByRole('button', { name: 'Send invitation' }).click();
  await tt.notThrowsAsync(fieldError(owner.page, 'email').waitFor());
  tt.regex(await fieldError(owner.page, 'email').innerText(), /valid email/);
  tt.is(await owner.page.getByLabel('Email').inputValue(), 'not-an-email');
  await look(tt, owner.page, 'portal-org-invitations-error');
  await owner.page.getByLabel('Email').fill(INVITEE.email);
  await owner.page.getByRole('button', { name: 'Send invitation' }).click();
  await tt.notThrowsAsync(owner.page.getByRole('status').filter({ hasText: 'Invitation sent' }).waitFor());
  await tt.notThrowsAsync(owner.page.getByRole('cell', { name: INVITEE.email }).waitFor());
  await look(tt, owner.page, 'portal-org-invitations');

  // The invitee: the link in the mail, an account made on the spot.
  const mail = await smtp.waitFor(INVITEE.email, /Acme Corp/);
  const invitee = await newPage();
  await invitee.page.goto(linkIn(mail, '/invitations/'));
  await invitee.page.getByLabel('Name').fill(INVITEE.name);
  await invitee.page.getByLabel('Password').fill(INVITEE.password);
  await invitee.page.getByRole('button', { name: 'Create account and join' }).click();
  await tt.notThrowsAsync(
    invitee.page
      .getByText(/Acme Corp/)
      .first()
      .waitFor(),
  );

  // The owner changes the new member's role from the dropdown.
  await owner.page.getByRole('navigation', { name: 'Organization' }).getByRole('link', { name: 'Members' }).click();
  const row = owner.page.getByRole('row', { name: new RegExp(INVITEE.email.replace('.', '\\.')) });
  await tt.notThrowsAsync(row.waitFor());
  await row.getByLabel(`Role of ${INVITEE.email}`).selectOption('billing');
  await row.getByRole('button', { name: 'Change role' }).click();
  await tt.notThrowsAsync(owner.page.getByRole('status').filter({ hasText: 'Role changed' }).waitFor());
  tt.is(
    await owner.page
      .getByRole('row', { name: new RegExp(INVITEE.email.replace('.', '\\.')) })
      .locator('.badge')
      .innerText(),
    'billing',
  );
  const members = await adminApi(t, tenant, 'GET', `/organizations/${await orgId('acme')}/members`);
  tt.deepEqual(members.body.data.find((m: { email: string }) => m.email === INVITEE.email).roles, ['billing']);
  await owner.context.close();
  await invitee.context.close();
});

async function orgId(slug: string): Promise<string> {
  const r = await adminApi(t, tenant, 'GET', `/organizations?q=${slug}`);
  return r.body.data.find((o: { slug: string }) => o.slug === slug).id;
}

test.serial('a member sees the member list but no invitations tab, then leaves; the last owner may not', async (tt) => {
  const member = await newPage();
  await signIn(member.page, INVITEE);
  await member.page.getByRole('link', { name: 'Acme Corp' }).click();
  const tabs = member.page.getByRole('navigation', { name: 'Organization' });
  await tt.notThrowsAsync(tabs.getByRole('link', { name: 'Members' }).waitFor());
  tt.is(await tabs.getByRole('link', { name: 'Invitations' }).count(), 0);
  tt.is(await member.page.getByRole('button', { name: 'Change role' }).count(), 0);
  await look(tt, member.page, 'portal-org-members-as-member');
  // Typing the URL does not help.
  const direct = await member.page.goto(`${member.page.url().replace(/\/members.*$/, '')}/invitations`);
  tt.is(direct?.status(), 403);

  await member.page.goBack();
  await confirm(member.page, 'Leave organization');
  await member.page.waitForURL(/\/portal\/organizations\?done=left/);
  await tt.notThrowsAsync(member.page.getByRole('status').filter({ hasText: 'You left the organization' }).waitFor());
  tt.is(await member.page.getByRole('link', { name: 'Acme Corp' }).count(), 0);
  await member.context.close();

  const owner = await newPage();
  await signIn(owner.page, OWNER);
  await owner.page.getByRole('link', { name: 'Acme Corp' }).click();
  await confirm(owner.page, 'Leave organization');
  await tt.notThrowsAsync(owner.page.getByRole('alert').filter({ hasText: 'You are the last owner' }).waitFor());
  await look(tt, owner.page, 'portal-org-last-owner-refused');
  const members = await adminApi(t, tenant, 'GET', `/organizations/${await orgId('acme')}/members`);
  tt.true(members.body.data.some((m: { email: string }) => m.email === OWNER.email));
  await owner.context.close();
});

test.serial('the owner creates a SAML connection from metadata XML, sees what to give the IdP, verifies a domain and tests the connection', async (tt) => {
  const idp = new TestSamlIdp();
  const { context, page } = await newPage();
  await signIn(page, OWNER);
  await page.getByRole('link', { name: 'Acme Corp' }).click();
  await page.getByRole('navigation', { name: 'Organization' }).getByRole('link', { name: 'SSO' }).click();
  await look(tt, page, 'portal-org-sso-empty');
  await page.getByRole('link', { name: 'Add SAML connection' }).click();
  // Nothing given: the form says what is missing, at the field.
  await page.getByRole('button', { name: 'Create connection' }).click();
  await tt.notThrowsAsync(fieldError(page, 'name').waitFor());
  await page.getByLabel('Name', { exact: true }).fill('Okta');
  await page.getByLabel('IdP metadata XML').fill(idp.idp.getMetadata());
  await page.getByRole('button', { name: 'Create connection' }).click();
  await page.waitForURL(/\/sso\/[0-9a-f-]{36}\?done=created/);
  const connectionId = /\/sso\/([0-9a-f-]{36})/.exec(page.url())![1]!;
  const acs = `${t.url}/t/${tenant.slug}/sso/saml/${connectionId}/acs`;
  await tt.notThrowsAsync(page.getByText(acs, { exact: true }).waitFor());
  await tt.notThrowsAsync(page.getByText(`${t.url}/t/${tenant.slug}/sso/saml/${connectionId}/metadata`, { exact: true }).first().waitFor());
  await page.getByText('Test connection', { exact: true }).click();
  await tt.notThrowsAsync(page.getByRole('status').filter({ hasText: 'Sign-ins go to https://idp.test/sso' }).waitFor());
  await look(tt, page, 'portal-org-sso-connection');

  const stored = await adminApi(t, tenant, 'GET', `/organizations/${await orgId('acme')}/sso-connections/${connectionId}`);
  tt.is(stored.body.idp_entity_id, idp.entityId);
  tt.is(stored.body.acs_url, acs);

  await page.getByRole('link', { name: 'SSO', exact: true }).first().click();
  await page.getByLabel('Add a domain').fill('not a domain');
  await page.getByRole('button', { name: 'Add domain' }).click();
  await tt.notThrowsAsync(fieldError(page, 'domain').waitFor());
  tt.is(await page.getByLabel('Add a domain').inputValue(), 'not a domain');
  await page.getByLabel('Add a domain').fill('acme.test');
  await page.getByRole('button', { name: 'Add domain' }).click();
  await tt.notThrowsAsync(page.getByText(/tessera-verification=/).waitFor());
  await page.getByRole('button', { name: 'Verify' }).click();
  // No TXT record published here: the page says what to publish and stays unverified.
  await tt.notThrowsAsync(page.getByRole('alert').filter({ hasText: 'No TXT record' }).waitFor());
  await look(tt, page, 'portal-org-sso');
  await context.close();
});

test.serial('the account pages: my organizations with my role, switch, profile, password and sessions', async (tt) => {
  const { context, page } = await newPage();
  await signIn(page, OWNER, `${t.url}/t/${tenant.slug}/account/organizations`);
  tt.regex(page.url(), /\/account\/organizations$/);
  const acme = page.getByRole('row', { name: /Acme Corp/ });
  tt.is(await acme.locator('.badge.owner').count(), 1);
  await look(tt, page, 'account-organizations');
  await page.getByRole('button', { name: 'Switch to Beta Labs' }).click();
  await tt.notThrowsAsync(page.getByRole('status').filter({ hasText: 'Active organization switched' }).waitFor());
  tt.is(
    await page
      .getByRole('row', { name: /Beta Labs/ })
      .locator('.badge.current')
      .count(),
    1,
  );
  const user = (await adminApi(t, tenant, 'GET', `/users?email=${encodeURIComponent(OWNER.email)}`)).body.data[0];
  const stored = await t.app.services.users.find(tenant.id, user.id);
  tt.is(stored?.active_org_id, await orgId('beta'));

  await page.getByRole('link', { name: 'Profile' }).click();
  await page.getByLabel('Display name').fill('x'.repeat(201));
  await page.getByRole('button', { name: 'Save profile' }).click();
  await tt.notThrowsAsync(fieldError(page, 'name').waitFor());
  await page.getByLabel('Display name').fill('Olivia O.');
  await page.getByRole('button', { name: 'Save profile' }).click();
  await tt.notThrowsAsync(page.getByRole('status').filter({ hasText: 'Profile saved' }).waitFor());
  tt.is(await page.getByLabel('Display name').inputValue(), 'Olivia O.');
  await look(tt, page, 'account-profile');

  await page.getByRole('link', { name: 'Password' }).click();
  await page.getByLabel('Current password').fill('wrong password');
  await page.getByLabel('New password', { exact: true }).fill('a much better pass 99');
  await page.getByLabel('New password again').fill('a much better pass 99');
  await page.getByRole('button', { name: 'Change password' }).click();
  await tt.notThrowsAsync(fieldError(page, 'current_password').waitFor());
  await look(tt, page, 'account-password-error');

  await page.getByRole('link', { name: 'Sessions' }).click();
  await tt.notThrowsAsync(page.getByText('this browser').waitFor());
  await look(tt, page, 'account-sessions');

  // Signing out ends the portal session: the next visit asks to sign in again.
  await page.getByRole('button', { name: 'Sign out' }).first().click();
  await page
    .getByRole('button', { name: /sign out|yes/i })
    .first()
    .click();
  await page.goto(portalUrl());
  await tt.notThrowsAsync(page.getByRole('heading', { name: /Sign in to Tessera portal/ }).waitFor());
  await context.close();
});

test.serial('without JavaScript: an organization is created, a role added and deleted, and the confirmation disclosures still work', async (tt) => {
  const context = await chrome.newContext({ javaScriptEnabled: false });
  const page = await context.newPage();
  await signIn(page, OWNER);
  await page.getByRole('link', { name: 'New organization' }).click();
  await page.getByLabel('Name', { exact: true }).fill('No Script Co');
  await page.getByRole('button', { name: 'Create organization' }).click();
  await page.waitForURL(/\/members\?done=created/);
  await page.getByRole('navigation', { name: 'Organization' }).getByRole('link', { name: 'Roles' }).click();
  await page.getByLabel('Name', { exact: true }).fill('support');
  await page.getByLabel('Permissions').fill('tickets:read tickets:write');
  await page.getByRole('button', { name: 'Add role' }).click();
  await tt.notThrowsAsync(page.getByRole('status').filter({ hasText: 'Role added' }).waitFor());
  const row = page.getByRole('row', { name: /support/ });
  tt.regex(await row.innerText(), /tickets:write/);
  await confirm(row, 'Delete');
  await tt.notThrowsAsync(page.getByRole('status').filter({ hasText: 'Role deleted' }).waitFor());
  tt.is(await page.getByRole('row', { name: /support/ }).count(), 0);
  await context.close();
});

test.serial('settings: rename, slug change with its warning, logo checked at the field, delete only with the slug typed out', async (tt) => {
  const { context, page } = await newPage();
  await signIn(page, OWNER);
  await page.getByRole('link', { name: 'New organization' }).click();
  await page.getByLabel('Name', { exact: true }).fill('Gamma');
  await page.getByRole('button', { name: 'Create organization' }).click();
  await page.waitForURL(/\/members\?done=created/);
  await page.getByRole('navigation', { name: 'Organization' }).getByRole('link', { name: 'Settings' }).click();
  tt.regex(await page.locator('#h-slug').innerText(), /breaks links and apps that use the old one/);
  tt.is(await page.getByLabel('Status').count(), 0, 'only tenant admins change the status');
  await page.getByLabel('Name', { exact: true }).fill('Gamma Inc');
  await page.getByLabel('Slug', { exact: true }).fill('gamma-inc');
  await page.getByLabel('Logo URL').fill('javascript:alert(1)');
  await page.getByRole('button', { name: 'Save settings' }).click();
  await tt.notThrowsAsync(fieldError(page, 'logo_url').waitFor());
  tt.regex(await fieldError(page, 'logo_url').innerText(), /https URL/);
  tt.is(await page.getByLabel('Name', { exact: true }).inputValue(), 'Gamma Inc');
  await look(tt, page, 'portal-org-settings-error');
  await page.getByLabel('Logo URL').fill('https://logo.example/gamma.svg');
  await page.getByRole('button', { name: 'Save settings' }).click();
  await tt.notThrowsAsync(page.getByRole('status').filter({ hasText: 'Settings saved' }).waitFor());
  tt.is(await page.getByRole('heading', { level: 1 }).innerText(), 'Gamma Inc');
  const saved = (await adminApi(t, tenant, 'GET', `/organizations/${await orgId('gamma-inc')}`)).body;
  tt.like(saved, { name: 'Gamma Inc', slug: 'gamma-inc', logo_url: 'https://logo.example/gamma.svg' });
  await look(tt, page, 'portal-org-settings');

  await page.getByRole('link', { name: 'Delete organization…' }).click();
  await page.getByLabel(/Type the slug/).fill('gamma');
  await page.getByRole('button', { name: 'Delete organization' }).click();
  await tt.notThrowsAsync(fieldError(page, 'confirm_slug').waitFor());
  await look(tt, page, 'portal-org-delete');
  await page.getByLabel(/Type the slug/).fill('gamma-inc');
  await page.getByRole('button', { name: 'Delete organization' }).click();
  await tt.notThrowsAsync(page.getByRole('status').filter({ hasText: 'Organization deleted' }).waitFor());
  tt.is((await adminApi(t, tenant, 'GET', `/organizations/${saved.id}`)).status, 404);
  await context.close();
});

test.serial('a tenant admin finds a user and adds them; the owner transfers ownership and becomes an admin', async (tt) => {
  const gus = (await adminApi(t, tenant, 'POST', '/users', { email: 'gus.grant@acme.test', name: 'Gus Grant', email_verified: true })).body;
  const owner = await newPage();
  await signIn(owner.page, OWNER);
  await owner.page.getByRole('link', { name: 'New organization' }).click();
  await owner.page.getByLabel('Name', { exact: true }).fill('Delta');
  await owner.page.getByRole('button', { name: 'Create organization' }).click();
  await owner.page.waitForURL(/\/members\?done=created/);
  const membersUrl = owner.page.url().replace(/\?.*$/, '');

  const admin = await newPage();
  await signIn(admin.page, { email: tenant.adminEmail, password: tenant.adminPassword });
  await tt.notThrowsAsync(admin.page.getByRole('link', { name: 'Delta' }).waitFor());
  await admin.page.goto(membersUrl);
  await admin.page.getByText('Add a member').click();
  await admin.page.getByLabel('Find a user by name or email').fill('gus');
  await admin.page.getByRole('button', { name: 'Search' }).click();
  const found = admin.page.getByRole('row', { name: /gus\.grant@acme\.test/ });
  await found.getByRole('button', { name: 'Add' }).click();
  await tt.notThrowsAsync(admin.page.getByRole('status').filter({ hasText: 'Member added' }).waitFor());
  await look(tt, admin.page, 'portal-org-members-as-tenant-admin');
  await admin.context.close();

  await owner.page.goto(membersUrl);
  const row = owner.page.getByRole('row', { name: /gus\.grant@acme\.test/ });
  await confirm(row, 'Transfer ownership');
  await tt.notThrowsAsync(owner.page.getByRole('status').filter({ hasText: 'Ownership transferred' }).waitFor());
  const members = (await adminApi(t, tenant, 'GET', `/organizations/${await orgId('delta')}/members`)).body.data as Array<{
    user_id: string;
    email: string;
    roles: string[];
  }>;
  tt.true(members.find((m) => m.user_id === gus.id)!.roles.includes('owner'));
  tt.deepEqual(members.find((m) => m.email === OWNER.email)!.roles, ['admin']);
  // Now an admin: no owner powers on the page.
  await owner.page.getByRole('navigation', { name: 'Organization' }).getByRole('link', { name: 'Settings' }).click();
  tt.is(await owner.page.getByRole('link', { name: 'Delete organization…' }).count(), 0);
  await owner.context.close();
});

test.serial('sign-in rules: a tenant admin finds them from the organization list and saves them; an empty choice of factors is named', async (tt) => {
  const { context, page } = await newPage();
  await signIn(page, { email: tenant.adminEmail, password: tenant.adminPassword });
  await page.getByRole('link', { name: 'Sign-in rules' }).click();
  await page.getByRole('heading', { name: 'Sign-in rules' }).waitFor();
  await look(tt, page, 'portal-tenant-rules', { forGuide: true });
  await page.getByLabel('Authenticator apps (TOTP)').uncheck();
  await page.getByLabel('Passkeys').uncheck();
  await page.getByRole('button', { name: 'Save sign-in rules' }).click();
  await tt.notThrowsAsync(
    page
      .getByText(/allow at least one factor/i)
      .first()
      .waitFor(),
  );
  await look(tt, page, 'portal-tenant-rules-error');
  await page.getByLabel('Passkeys').check();
  await page.getByLabel('Authenticator apps (TOTP)').check();
  await page.getByRole('button', { name: 'Save sign-in rules' }).click();
  await tt.notThrowsAsync(page.getByRole('status').filter({ hasText: 'Sign-in rules saved' }).waitFor());
  await context.close();
});

test.serial('sign-in policy: an owner requires MFA and SSO from the tab; a bad value is named at its field', async (tt) => {
  const { context, page } = await newPage();
  await signIn(page, OWNER);
  await page.getByRole('link', { name: 'New organization' }).click();
  await page.getByLabel('Name', { exact: true }).fill('Policy Works');
  await page.getByRole('button', { name: 'Create organization' }).click();
  await page.waitForURL(/\/members\?done=created/);
  await page.getByRole('navigation', { name: 'Organization' }).getByRole('link', { name: 'Sign-in policy' }).click();
  await look(tt, page, 'portal-org-policy', { forGuide: true });
  await page.getByLabel(/Require a second factor/).check();
  await page.getByLabel('Grace period in days').fill('400');
  await page.getByLabel('Passkey', { exact: true }).uncheck();
  await page.getByLabel(/Require single sign-on/).check();
  await page.getByRole('button', { name: 'Save sign-in policy' }).click();
  await tt.notThrowsAsync(fieldError(page, 'mfa_grace_days').waitFor());
  tt.regex(await fieldError(page, 'mfa_grace_days').innerText(), /at most 365 days/);
  tt.false(await page.getByLabel('Passkey', { exact: true }).isChecked(), 'what was ticked is kept');
  await look(tt, page, 'portal-org-policy-error');
  await page.getByLabel('Grace period in days').fill('14');
  await page.getByLabel(/Longest time since sign-in/).fill('28800');
  await page.getByRole('button', { name: 'Save sign-in policy' }).click();
  await tt.notThrowsAsync(page.getByRole('status').filter({ hasText: 'Sign-in policy saved' }).waitFor());
  const saved = (await adminApi(t, tenant, 'GET', `/organizations/${await orgId('policy-works')}/auth-policy`)).body;
  tt.like(saved, { mfa_required: true, mfa_grace_days: 14, allowed_methods: ['password', 'sso'], sso_required: true, max_session_age_seconds: 28800 });
  await context.close();
});

test.serial('an organization requiring MFA: a password-only sign-in sees it marked, gets the step-up page, and a grace period shows a reminder', async (tt) => {
  const who = { email: 'pat.password@acme.test', password: 'amber lighthouse 19 quill' };
  const pat = (await adminApi(t, tenant, 'POST', '/users', { ...who, email_verified: true })).body;
  const strict = (await adminApi(t, tenant, 'POST', '/organizations', { name: 'Strict Browser' })).body.id as string;
  const grace = (await adminApi(t, tenant, 'POST', '/organizations', { name: 'Grace Browser' })).body.id as string;
  for (const org of [strict, grace]) await adminApi(t, tenant, 'POST', `/organizations/${org}/members`, { user_id: pat.id, role: 'admin' });
  await adminApi(t, tenant, 'PATCH', `/organizations/${strict}/auth-policy`, { mfa_required: true });
  await adminApi(t, tenant, 'PATCH', `/organizations/${grace}/auth-policy`, { mfa_required: true, mfa_grace_days: 14 });

  const { context, page } = await newPage();
  await signIn(page, who);
  const strictRow = page.getByRole('row', { name: /Strict Browser/ });
  await tt.notThrowsAsync(strictRow.getByText('needs a stronger sign-in').waitFor());
  tt.is(
    await page
      .getByRole('row', { name: /Grace Browser/ })
      .getByText('needs a stronger sign-in')
      .count(),
    0,
  );
  await look(tt, page, 'portal-organizations-step-up');

  await strictRow.getByRole('link', { name: 'Strict Browser', exact: true }).click();
  await tt.notThrowsAsync(page.getByRole('heading', { name: 'A stronger sign-in is needed' }).waitFor());
  await look(tt, page, 'portal-policy-not-met', { forGuide: true });
  await page.getByRole('link', { name: 'Sign in with a second factor' }).click();
  // A session exists, but acr_values asks for a second factor: the sign-in page again.
  await tt.notThrowsAsync(page.getByLabel('Email').waitFor());

  await page.goto(portalUrl(`organizations/${grace}/members`));
  await tt.notThrowsAsync(page.getByRole('status').filter({ hasText: 'Grace Browser now requires a second factor' }).waitFor());
  await look(tt, page, 'portal-org-mfa-grace');
  await context.close();
});
