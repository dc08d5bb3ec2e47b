import test, { type ExecutionContext } from 'ava';
import { sql } from 'kysely';
import type { BrowserContext, Browser as Chromium, Page } from 'playwright-core';
import { adminApi, startTestApp, type TestApp, type TestTenant } from '../helpers/app.ts';
import { seriousA11yViolations } from '../helpers/axe.ts';
import { Browser, enterCredentials } from '../helpers/browser.ts';
import { launchChromium, screenshots } from '../helpers/chromium.ts';
import { type Placement, portalWorld } from '../helpers/portal-world.ts';

/**
 * The portal's Directory sync tab in Debian's Chromium: an owner adds a SCIM directory and sees
 * its bearer token once, rotates and revokes it, changes its settings and group mapping; an admin
 * reads it and is refused every change; a member doesn't get it. Each page is checked with
 * axe-core and screenshotted for the guide (docs/guides/directory-sync.md).
 */

let t: TestApp;
let tenant: TestTenant;
let chrome: Chromium;
let acme: string;
let globex: string;
const PASSWORD = 'amber tortoise 19 quay';
const people = { owner: 'odette@dirs.test', admin: 'abel@dirs.test', member: 'mina@dirs.test' };
const placements: Record<string, Placement> = {
  owner: { org: 'acme', role: 'owner' },
  admin: { org: 'acme', role: 'admin' },
  member: { org: 'acme', role: 'member' },
};
/** The directory the owner adds in the first test; the later ones work on it. */
let directoryId: string;

test.before(async () => {
  t = await startTestApp();
  ({ tenant, acme, globex } = await portalWorld(t, people, placements, PASSWORD));
  chrome = await launchChromium();
});
test.after.always(async () => {
  await chrome?.close();
  await t?.stop();
});

const tab = (org = acme, rest = '') => `${t.url}/t/${tenant.slug}/portal/organizations/${org}/directories${rest}`;
const directoryApi = (id = directoryId) => adminApi(t, tenant, 'GET', `/organizations/${acme}/directories/${id}`);
const authenticates = async (token: string) => (await t.app.services.directories.authenticate(tenant.id, directoryId, token))?.id === directoryId;

async function newPage(): Promise<{ context: BrowserContext; page: Page }> {
  // bypassCSP only so axe-core can be injected; the CSP itself is tested over HTTP.
  const context = await chrome.newContext({ bypassCSP: true });
  return { context, page: await context.newPage() };
}

async function signIn(page: Page, email: string, start: string) {
  await page.goto(start);
  await page.getByLabel('Email').fill(email);
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL((u) => u.pathname.includes('/portal/'));
}

/** Asserts axe-core finds no serious violation, no horizontal overflow, and screenshots the page. */
async function look(tt: ExecutionContext, page: Page, name: string, forGuide = false) {
  tt.deepEqual(await seriousA11yViolations(page), [], `accessibility violations on ${name}`);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  tt.true(overflow <= 0, `${name}: horizontal overflow of ${overflow}px`);
  await screenshots(page, name, { forGuide });
}

async function confirm(page: Page, summary: string) {
  await page.getByText(summary, { exact: true }).click();
  await page.getByRole('button', { name: `Yes, ${summary.toLowerCase()}` }).click();
}

const fieldError = (page: Page, field: string) => page.locator(`#e-${field}`);
const shownToken = async (page: Page) => ((await page.locator('#bearer-token').count()) ? (await page.locator('#bearer-token').innerText()).trim() : undefined);

/** Signs in over plain HTTP and returns the browser and its CSRF token, for the posts a page would never offer. */
async function signedInOverHttp(email: string, start = tab(), password = PASSWORD) {
  const browser = new Browser(t.url);
  const first = await browser.follow(start);
  const done = await enterCredentials(browser, await first.res.text(), first.url, email, password);
  const html = await done.res.text();
  const csrf = /name="_csrf" value="([^"]+)"/.exec(html)?.[1];
  if (!csrf) throw new Error(`not signed in as ${email}`);
  return { browser, csrf, html };
}

const post = (b: { browser: Browser; csrf: string }, url: string, fields: Record<string, string> = {}, csrf = b.csrf) =>
  b.browser.request(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: t.url },
    body: new URLSearchParams({ ...fields, _csrf: csrf }).toString(),
  });

test.serial('an owner adds a directory and sees its bearer token once, then no more on reload', async (tt) => {
  const { context, page } = await newPage();
  await signIn(page, people.owner, tab());
  await tt.notThrowsAsync(page.getByText('No directory yet.').waitFor());
  tt.is(await page.getByRole('navigation', { name: 'Organization' }).getByRole('link', { name: 'Directory sync' }).getAttribute('aria-current'), 'page');

  // An empty name is named next to its field; what was chosen is kept.
  await page.getByLabel('Directory', { exact: true }).selectOption('entra');
  await page.getByRole('button', { name: 'Add directory' }).click();
  await tt.notThrowsAsync(fieldError(page, 'name').waitFor());
  tt.is(await page.getByLabel('Directory', { exact: true }).inputValue(), 'entra');
  tt.is((await adminApi(t, tenant, 'GET', `/organizations/${acme}/directories`)).body.data.length, 0);

  await page.getByLabel('Name').fill('Entra ID');
  await page.getByLabel('Role of the people it adds').selectOption('billing');
  await page.getByRole('button', { name: 'Add directory' }).click();
  await page.waitForURL(/\/directories\/[0-9a-f-]{36}\?done=created$/);
  directoryId = /\/directories\/([0-9a-f-]{36})/.exec(page.url())![1]!;
  await tt.notThrowsAsync(page.getByRole('heading', { name: "Copy the bearer token now: it won't be shown again" }).waitFor());
  const token = await shownToken(page);
  tt.regex(token ?? '', /^scim_[A-Za-z0-9_-]{43}$/);
  tt.true(await authenticates(token!));
  const stored = (await directoryApi()).body;
  tt.is(stored.provider, 'entra');
  tt.is(stored.default_role, 'billing');
  tt.is(stored.token.hint, token!.slice(-4));
  tt.is(await page.locator('.copy[data-copy="SCIM base URL"]').first().innerText(), stored.scim_base_url);
  // Only a fingerprint is stored: the token is in no column of the row.
  const row = await sql<Record<string, unknown>>`select * from scim_directories where id = ${directoryId}`.execute(t.app.connection.db);
  tt.false(JSON.stringify(row.rows[0]).includes(token!));
  await look(tt, page, 'portal-directory-token', true);

  await page.reload();
  tt.is(await shownToken(page), undefined);
  tt.regex(await page.locator('#token-state').innerText(), new RegExp(`ending in ${token!.slice(-4).replace(/[-_]/g, '\\$&')}`));
  tt.false((await page.content()).includes(token!));

  // What the SCIM service records of each request the directory makes, as the list shows it.
  await t.app.services.directories.recordRequest(tenant.id, directoryId, {
    at: new Date().toISOString(),
    method: 'POST',
    path: '/Users',
    status: 201,
    outcome: 'Created ada@acme.test',
  });
  await page.goto(tab());
  const listed = page.getByRole('row', { name: /Entra ID/ });
  tt.regex(await listed.innerText(), /POST \/Users → 201\s+Created ada@acme\.test/);
  tt.regex(await listed.innerText(), /Microsoft Entra ID/);
  tt.regex(await listed.innerText(), /made today/);
  await look(tt, page, 'portal-directories', true);
  await context.close();
});

test.serial('the owner rotates the token (shown once, the old one stops working) and revokes it', async (tt) => {
  const { context, page } = await newPage();
  await signIn(page, people.owner, tab(acme, `/${directoryId}`));
  const before = (await directoryApi()).body.token;
  await new Promise((r) => setTimeout(r, 5));
  await confirm(page, 'Make a new token');
  await page.waitForURL(/\?done=rotated$/);
  const token = await shownToken(page);
  tt.truthy(token);
  const after = (await directoryApi()).body.token;
  tt.not(after.created_at, before.created_at);
  tt.is(after.hint, token!.slice(-4));
  tt.true(await authenticates(token!));
  await page.reload();
  tt.is(await shownToken(page), undefined);

  await confirm(page, 'Revoke the token');
  await page.waitForURL(/\?done=revoked$/);
  await tt.notThrowsAsync(page.getByRole('status').filter({ hasText: 'Token revoked' }).waitFor());
  tt.false(await authenticates(token!));
  tt.is((await directoryApi()).body.token, null);
  // A new token brings it back.
  await confirm(page, 'Make a new token');
  await page.waitForURL(/\?done=rotated$/);
  tt.true(await authenticates((await shownToken(page))!));
  await context.close();
});

test.serial('the owner edits settings and the group mapping; owner and half-filled rows are refused next to their field', async (tt) => {
  const { db } = t.app.connection;
  // The groups a directory has pushed (the SCIM service writes these rows).
  for (const name of ['Engineering', 'Sales'])
    await sql`insert into scim_groups (tenant_id, directory_id, display_name) values (${tenant.id}, ${directoryId}, ${name})`.execute(db);
  const engineering = (await sql<{ id: string }>`select id from scim_groups where directory_id = ${directoryId} and display_name = 'Engineering'`.execute(db))
    .rows[0]!.id;

  const { context, page } = await newPage();
  await signIn(page, people.owner, tab(acme, `/${directoryId}`));

  // Settings: a cleared name is refused next to it; then SSO matching by email, disabled.
  await page.getByLabel('Name').fill('');
  await page.getByRole('button', { name: 'Save directory' }).click();
  await tt.notThrowsAsync(fieldError(page, 'name').waitFor());
  await page.getByLabel('Name').fill('Entra ID (production)');
  await page.getByLabel('Match SSO sign-ins by').selectOption('email');
  await page.getByRole('checkbox', { name: /Enabled/ }).uncheck();
  await page.getByRole('button', { name: 'Save directory' }).click();
  await page.waitForURL(/\?done=saved$/);
  let d = (await directoryApi()).body;
  tt.is(d.name, 'Entra ID (production)');
  tt.is(d.sso_match, 'email');
  tt.false(d.enabled);

  // The mapping: the pushed groups are listed with a role select that never offers owner.
  const options = await page.getByLabel('Role for Engineering').locator('option').allInnerTexts();
  tt.false(options.includes('owner'));
  tt.true(options.includes('admin'));
  await page.getByLabel('Role for Engineering').selectOption('admin');
  await page.getByLabel('Group not pushed yet, row 1').fill('Contractors');
  await page.getByLabel('Role for the group of row 1').selectOption('member');
  await page.getByLabel('Group not pushed yet, row 2').fill('Interns');
  await page.getByRole('button', { name: 'Save group mapping' }).click();
  // A group without a role: said next to its role, the rest kept as typed.
  await tt.notThrowsAsync(fieldError(page, 'extra_role_1').waitFor());
  tt.is(await page.getByLabel('Group not pushed yet, row 1').inputValue(), 'Contractors');
  tt.is(await page.getByLabel('Role for Engineering').inputValue(), 'admin');
  tt.deepEqual((await directoryApi()).body.group_roles, {});
  await page.getByLabel('Group not pushed yet, row 2').fill('');
  await page.getByRole('button', { name: 'Save group mapping' }).click();
  await page.waitForURL(/\/directories\/[0-9a-f-]{36}\?done=mapping_saved$/);
  await tt.notThrowsAsync(page.getByRole('status').filter({ hasText: 'Group mapping saved.' }).waitFor());
  tt.deepEqual((await directoryApi()).body.group_roles, { Engineering: 'admin', Contractors: 'member' });
  await look(tt, page, 'portal-directory-settings', true);

  // A tampered form asking for owner: refused next to the group's role, nothing changed.
  await page.evaluate((id) => {
    const select = document.querySelector<HTMLSelectElement>(`#f-role_${id}`)!;
    select.add(new Option('owner', 'owner'));
    select.value = 'owner';
  }, engineering);
  await page.getByRole('button', { name: 'Save group mapping' }).click();
  await tt.notThrowsAsync(fieldError(page, `role_${engineering}`).waitFor());
  tt.regex(await fieldError(page, `role_${engineering}`).innerText(), /never grants owner/);
  d = (await directoryApi()).body;
  tt.deepEqual(d.group_roles, { Engineering: 'admin', Contractors: 'member' });
  // A role the organization doesn't have: named on its row too.
  await page.evaluate(() => {
    const select = document.querySelector<HTMLSelectElement>('#f-extra_role_0')!;
    select.add(new Option('superuser', 'superuser'));
    select.value = 'superuser';
  });
  await page.getByRole('button', { name: 'Save group mapping' }).click();
  await tt.notThrowsAsync(fieldError(page, 'extra_role_0').waitFor());
  tt.regex(await fieldError(page, 'extra_role_0').innerText(), /superuser is not a role of this organization/);
  tt.deepEqual((await directoryApi()).body.group_roles, { Engineering: 'admin', Contractors: 'member' });

  // Unmapping a group: "No role from this group".
  await page.goto(tab(acme, `/${directoryId}`));
  await page.getByLabel('Role for Engineering').selectOption('');
  await page.getByRole('button', { name: 'Save group mapping' }).click();
  await page.waitForURL(/\?done=mapping_saved/);
  tt.deepEqual((await directoryApi()).body.group_roles, { Contractors: 'member' });
  await context.close();
});

test.serial('an admin sees the tab read-only and every change is refused (403)', async (tt) => {
  const { context, page } = await newPage();
  await signIn(page, people.admin, tab());
  await tt.notThrowsAsync(page.getByRole('link', { name: 'Entra ID (production)' }).waitFor());
  tt.is(await page.getByRole('button', { name: 'Add directory' }).count(), 0);
  await page.getByRole('link', { name: 'Entra ID (production)' }).click();
  tt.true(await page.getByLabel('Name').isDisabled());
  tt.true(await page.getByLabel('Group not pushed yet, row 1').isDisabled());
  tt.is(await page.getByText('Make a new token', { exact: true }).count(), 0);
  tt.is(await page.getByText('Delete directory', { exact: true }).count(), 0);
  await look(tt, page, 'portal-directory-read-only');
  await context.close();

  const before = (await directoryApi()).body;
  const admin = await signedInOverHttp(people.admin);
  const base = tab(acme, `/${directoryId}`);
  for (const [url, fields] of [
    [tab(), { name: 'Sneaky', default_role: 'admin' }],
    [base, { name: 'Renamed', default_role: 'admin', enabled: 'on' }],
    [`${base}/groups`, { extra_group_0: 'Everyone', extra_role_0: 'admin' }],
    [`${base}/token/rotate`, {}],
    [`${base}/token/revoke`, {}],
    [`${base}/delete`, {}],
  ] as const) {
    tt.is((await post(admin, url, fields)).status, 403, url);
  }
  const after = (await directoryApi()).body;
  tt.deepEqual({ ...after, updated_at: null }, { ...before, updated_at: null });
  tt.is((await adminApi(t, tenant, 'GET', `/organizations/${acme}/directories`)).body.data.length, 1);
});

test.serial('a member gets nothing: no tab, 403 on the pages and the forms', async (tt) => {
  const member = await signedInOverHttp(people.member, `${t.url}/t/${tenant.slug}/portal/organizations/${acme}/members`);
  tt.false(member.html.includes('Directory sync'));
  tt.is((await member.browser.request(tab())).status, 403);
  tt.is((await member.browser.request(tab(acme, `/${directoryId}`))).status, 403);
  tt.is((await post(member, tab(), { name: 'Mine' })).status, 403);
  tt.is((await post(member, tab(acme, `/${directoryId}/token/rotate`))).status, 403);
  tt.is((await adminApi(t, tenant, 'GET', `/organizations/${acme}/directories`)).body.data.length, 1);
});

test.serial(
  "forms need the CSRF token and the same origin; a new token's cookie opens once, for its viewer only; another organization's directory is not found",
  async (tt) => {
    const owner = await signedInOverHttp(people.owner);
    const rotate = tab(acme, `/${directoryId}/token/rotate`);
    const hint = (await directoryApi()).body.token.hint;
    tt.is((await post(owner, rotate, {}, `${owner.csrf}x`)).status, 403);
    const crossSite = await owner.browser.request(rotate, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'https://evil.example' },
      body: new URLSearchParams({ _csrf: owner.csrf }).toString(),
    });
    tt.is(crossSite.status, 403);
    tt.is((await directoryApi()).body.token.hint, hint);

    // The new token crosses to its page in a cookie: encrypted, scoped to that page, HttpOnly,
    // SameSite=Strict, taken once, and opening for no one else (here a tenant administrator).
    const rotated = await post(owner, rotate);
    tt.is(rotated.status, 303);
    const setCookie = rotated.headers.getSetCookie().find((c) => c.startsWith('tessera_shown_once='))!;
    tt.regex(setCookie, new RegExp(`path=/t/${tenant.slug}/portal/organizations/${acme}/directories/${directoryId};`, 'i'));
    tt.regex(setCookie, /httponly/i);
    tt.regex(setCookie, /samesite=strict/i);
    const sealed = /^tessera_shown_once=([^;]+)/.exec(setCookie)![1]!;
    const tokenOf = (html: string) => /id="bearer-token">([^<]+)</.exec(html)?.[1];
    const pageUrl = tab(acme, `/${directoryId}`);
    const tenantAdmin = await signedInOverHttp(tenant.adminEmail, tab(), tenant.adminPassword);
    await tenantAdmin.browser.jar.setCookie(
      `tessera_shown_once=${sealed}; Path=/t/${tenant.slug}/portal/organizations/${acme}/directories/${directoryId}`,
      pageUrl,
    );
    tt.is(tokenOf(await (await tenantAdmin.browser.request(pageUrl)).text()), undefined);
    const token = tokenOf(await (await owner.browser.request(pageUrl)).text());
    tt.truthy(token);
    tt.false(sealed.includes(token!));
    // (The directory was disabled above, so the token opens nothing yet: its hint tells it is the one.)
    tt.is((await directoryApi()).body.token.hint, token!.slice(-4));
    tt.is(tokenOf(await (await owner.browser.request(pageUrl)).text()), undefined);

    // Globex's directory through Acme's pages (the owner is not in Globex): 404, as a made-up id.
    const theirs = (await adminApi(t, tenant, 'POST', `/organizations/${globex}/directories`, { name: 'Globex Okta' })).body;
    tt.is((await owner.browser.request(tab(acme, `/${theirs.id}`))).status, 404);
    tt.is((await post(owner, tab(acme, `/${theirs.id}/token/rotate`))).status, 404);
    tt.is((await post(owner, tab(acme, `/${theirs.id}/delete`))).status, 404);
    tt.is((await owner.browser.request(tab(acme, '/not-a-uuid'))).status, 404);
    tt.is((await owner.browser.request(tab(globex))).status, 404);
    tt.is((await adminApi(t, tenant, 'GET', `/organizations/${globex}/directories/${theirs.id}`)).body.token.hint, theirs.token.hint);

    // Deleting: the accounts and memberships it made stay (said on the page), the directory goes.
    const res = await post(owner, tab(acme, `/${directoryId}/delete`));
    tt.is(res.status, 303);
    tt.regex(res.headers.get('location') ?? '', /\/directories\?done=deleted$/);
    tt.is((await directoryApi()).status, 404);
    const page = await owner.browser.request(tab(acme, '?done=deleted'));
    tt.regex(await page.text(), /The accounts and memberships it made stay/);
  },
);
