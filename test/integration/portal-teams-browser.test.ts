import test, { type ExecutionContext } from 'ava';
import type { BrowserContext, Browser as Chromium, Page } from 'playwright-core';
import { adminApi, startTestApp, type TestApp, type TestTenant } from '../helpers/app.ts';
import { seriousA11yViolations } from '../helpers/axe.ts';
import { Browser, enterCredentials } from '../helpers/browser.ts';
import { launchChromium, screenshots } from '../helpers/chromium.ts';
import { type Placement, portalWorld } from '../helpers/portal-world.ts';

/**
 * The portal's Teams tab in Debian's Chromium: an admin creates a team, adds members with team
 * roles, edits and deletes it; a team admin manages their team's members; a member sees the teams
 * and changes nothing; forms without the CSRF token and another organization's ids are refused.
 * Each page is checked with axe-core and screenshotted for the guide (docs/guides/teams.md).
 */

let t: TestApp;
let tenant: TestTenant;
let chrome: Chromium;
let acme: string;
let globex: string;
let ids: Record<string, string>;
const PASSWORD = 'amber tortoise 19 quay';
const people = { admin: 'ada@teams.test', lead: 'lena@teams.test', member: 'mo@teams.test' };
const placements: Record<string, Placement> = {
  admin: { org: 'acme', role: 'admin' },
  lead: { org: 'acme', role: 'member' },
  member: { org: 'acme', role: 'member' },
};
let teamId: string;

test.before(async () => {
  t = await startTestApp();
  ({ tenant, acme, globex, ids } = await portalWorld(t, people, placements, PASSWORD));
  chrome = await launchChromium();
});
test.after.always(async () => {
  await chrome?.close();
  await t?.stop();
});

const tab = (org = acme, rest = '') => `${t.url}/t/${tenant.slug}/portal/organizations/${org}/teams${rest}`;
const api = (method: string, path: string, body?: unknown) => adminApi(t, tenant, method, path, body);

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

async function look(tt: ExecutionContext, page: Page, name: string, forGuide = false) {
  tt.deepEqual(await seriousA11yViolations(page), [], `accessibility violations on ${name}`);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  tt.true(overflow <= 0, `${name}: horizontal overflow of ${overflow}px`);
  await screenshots(page, name, { forGuide });
}

async function signedInOverHttp(email: string, start = tab()) {
  const browser = new Browser(t.url);
  const first = await browser.follow(start);
  const done = await enterCredentials(browser, await first.res.text(), first.url, email, PASSWORD);
  const html = await done.res.text();
  const csrf = /name="_csrf" value="([^"]+)"/.exec(html)?.[1];
  if (!csrf) throw new Error(`not signed in as ${email}`);
  return { browser, csrf };
}

const post = (b: { browser: Browser; csrf: string }, url: string, fields: Record<string, string> = {}, csrf = b.csrf) =>
  b.browser.request(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: t.url },
    body: new URLSearchParams({ ...fields, _csrf: csrf }).toString(),
  });

test.serial('an admin creates a team, adds members with team roles, adds a team role', async (tt) => {
  const { context, page } = await newPage();
  await signIn(page, people.admin, tab());
  await tt.notThrowsAsync(page.getByText('No team yet.').waitFor());
  tt.is(await page.getByRole('navigation', { name: 'Organization' }).getByRole('link', { name: 'Teams' }).getAttribute('aria-current'), 'page');

  // An empty name is named next to its field.
  await page.getByRole('button', { name: 'Create team' }).click();
  await tt.notThrowsAsync(page.locator('#e-name').waitFor());

  await page.getByRole('link', { name: 'Team roles' }).click();
  await page.getByLabel('Role name').fill('deployer');
  // An admin writes no permission they lack into a team role.
  await page.getByLabel('Permissions').fill('deploy:prod');
  await page.getByRole('button', { name: 'Add team role' }).click();
  await tt.notThrowsAsync(
    page
      .getByText(/permissions you do not hold yourself: deploy:prod/)
      .first()
      .waitFor(),
  );
  await page.getByLabel('Permissions').fill('');
  await page.getByRole('button', { name: 'Add team role' }).click();
  await page.waitForURL(/done=role_created/);
  await look(tt, page, 'portal-team-roles');
  await page.goto(tab());

  await page.getByLabel('Name', { exact: true }).fill('Platform Engineering');
  await page.getByLabel('Description').fill('Runs the platform');
  await page.getByRole('button', { name: 'Create team' }).click();
  await page.waitForURL(/done=created/);
  await page.getByRole('link', { name: 'Platform Engineering' }).click();
  teamId = /\/teams\/([0-9a-f-]{36})/.exec(page.url())![1]!;
  tt.like((await api('GET', `/organizations/${acme}/teams/${teamId}`)).body, { slug: 'platform-engineering', description: 'Runs the platform' });

  for (const [who, role] of [
    [people.lead, 'admin'],
    [people.member, 'deployer'],
  ] as const) {
    await page.getByLabel('Member', { exact: true }).selectOption({ label: who });
    await page.getByLabel('Team role', { exact: true }).selectOption(role);
    await page.getByRole('button', { name: 'Add to team' }).click();
    await page.waitForURL(/done=added/);
  }
  const members = (await api('GET', `/organizations/${acme}/teams/${teamId}/members`)).body.data;
  tt.deepEqual(members.map((m: any) => [m.email, m.roles]).sort(), [
    [people.lead, ['admin']],
    [people.member, ['deployer']],
  ]);
  await look(tt, page, 'portal-team', true);
  await page.goto(tab());
  await look(tt, page, 'portal-teams', true);
  await context.close();
});

test.serial('a team admin manages the team’s members, not the team; a member sees and changes nothing', async (tt) => {
  const { context, page } = await newPage();
  await signIn(page, people.lead, tab(acme, `/${teamId}`));
  tt.is(await page.getByRole('button', { name: 'Save team' }).count(), 0, 'no edit form for a team admin');
  await page.getByLabel(`Team role of ${people.member}`).selectOption('member');
  await page.getByRole('button', { name: 'Change team role' }).nth(1).click();
  await page.waitForURL(/done=role_changed/);
  const roles = (await api('GET', `/organizations/${acme}/teams/${teamId}/members`)).body.data.find((m: any) => m.email === people.member).roles;
  tt.deepEqual(roles, ['member']);
  await look(tt, page, 'portal-team-lead');
  const lead = await signedInOverHttp(people.lead);
  tt.is((await post(lead, tab(acme, `/${teamId}`), { name: 'Taken over', slug: 'taken' })).status, 403, 'a team admin does not edit the team');
  tt.is((await post(lead, tab(acme, `/${teamId}/delete`))).status, 403);
  await context.close();

  const member = await signedInOverHttp(people.member);
  const page2 = await member.browser.follow(tab(acme, `/${teamId}`));
  const html = await page2.res.text();
  tt.regex(html, /Platform Engineering/);
  tt.notRegex(html, /Add to team|Save team/);
  tt.is((await post(member, tab(acme, `/${teamId}/members`), { user_id: ids.admin!, role: 'admin' })).status, 403);
  tt.is((await post(member, tab(acme, `/${teamId}/members/${ids.lead}/role`), { role: 'member' })).status, 403);
  tt.is((await post(member, tab(), { name: 'Mine' })).status, 403);
});

test.serial('CSRF and isolation: a form without its token, and another organization’s ids, do nothing', async (tt) => {
  const admin = await signedInOverHttp(people.admin);
  const before = (await api('GET', `/organizations/${acme}/teams`)).body.data.length;
  const forged = await post(admin, tab(), { name: 'Forged' }, 'not-the-token');
  tt.true(forged.status >= 400 && forged.status < 500);
  tt.is((await api('GET', `/organizations/${acme}/teams`)).body.data.length, before);
  // Globex: the admin is not a member there — the organization and its teams do not exist for them.
  const theirs = (await api('POST', `/organizations/${globex}/teams`, { name: 'Theirs' })).body;
  tt.is((await admin.browser.follow(tab(globex))).res.status, 404);
  tt.is((await post(admin, tab(globex, `/${theirs.id}/delete`))).status, 404);
  // Globex's team through Acme's URL.
  tt.is((await admin.browser.follow(tab(acme, `/${theirs.id}`))).res.status, 404);
  tt.is((await post(admin, tab(acme, `/${theirs.id}/delete`))).status, 404);
  tt.is((await api('GET', `/organizations/${globex}/teams/${theirs.id}`)).status, 200, 'still there');
});

test.serial('an admin edits and deletes the team', async (tt) => {
  const { context, page } = await newPage();
  await signIn(page, people.admin, tab(acme, `/${teamId}`));
  await page.getByLabel('Name', { exact: true }).fill('Platform');
  await page.getByLabel('Slug').fill('platform');
  await page.getByRole('button', { name: 'Save team' }).click();
  await page.waitForURL(/done=saved/);
  tt.like((await api('GET', `/organizations/${acme}/teams/${teamId}`)).body, { name: 'Platform', slug: 'platform' });
  await page.getByText('Delete team', { exact: true }).last().click();
  await page.getByRole('button', { name: 'Yes, delete team' }).click();
  await page.waitForURL(/done=deleted/);
  tt.is((await api('GET', `/organizations/${acme}/teams/${teamId}`)).status, 404);
  await context.close();
});
