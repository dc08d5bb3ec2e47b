import test from 'ava';
import { base32Decode, hotp, totpStep } from '../../src/factors/totp.ts';
import { adminApi, createTenant, startTestApp, type TestApp, type TestTenant } from '../helpers/app.ts';
import { Browser, enterCredentials, formAction, unescapeHtml } from '../helpers/browser.ts';

/**
 * An organization's authentication policy binds Tessera's own portal and account pages too, by
 * the rule its tokens are held to: a sign-in that falls short gets 403 on every page and form of
 * the organization (read and write) and on the account page's switch, with the way to sign in as
 * required; the organization stays listed, marked; other organizations keep working in the same
 * session; people who may not see the organization still get 404.
 */

let t: TestApp;
let tenant: TestTenant;
const PASSWORD = 'seven quiet harbours 42';

test.before(async () => {
  t = await startTestApp();
  tenant = await createTenant(t);
});
test.after.always(async () => t?.stop());

const portal = (path: string) => `${t.url}/t/${tenant.slug}/portal/${path}`;
const account = (path: string) => `${t.url}/t/${tenant.slug}/account/${path}`;
const totp = (key: Buffer) => hotp(key, totpStep(Date.now() / 1000));

async function user(email: string): Promise<string> {
  const created = await adminApi(t, tenant, 'POST', '/users', { email, password: PASSWORD, email_verified: true });
  if (created.status !== 201) throw new Error(created.text);
  return created.body.id;
}

/** An organization with `policy` (PATCH of its auth-policy, when given) and its people placed. */
async function org(name: string, members: Record<string, string>, policy?: Record<string, unknown>): Promise<string> {
  const id = (await adminApi(t, tenant, 'POST', '/organizations', { name })).body.id as string;
  for (const [userId, role] of Object.entries(members)) {
    const added = await adminApi(t, tenant, 'POST', `/organizations/${id}/members`, { user_id: userId, role });
    if (added.status !== 201) throw new Error(added.text);
  }
  if (policy) {
    const set = await adminApi(t, tenant, 'PATCH', `/organizations/${id}/auth-policy`, policy);
    if (set.status !== 200) throw new Error(set.text);
  }
  return id;
}

/** A portal session signed in with the password only (amr ["pwd"]). */
async function passwordSession(email: string, password = PASSWORD) {
  const browser = new Browser(t.url);
  const first = await browser.follow(portal('organizations'));
  const done = await enterCredentials(browser, await first.res.text(), first.url, email, password);
  const html = await done.res.text();
  if (!/name="_csrf"/.test(html)) throw new Error(`not signed in: ${html.slice(0, 400)}`);
  return { browser, list: html };
}

/** The session's CSRF token, from a page it can open. */
async function csrfOf(browser: Browser) {
  const html = await (await browser.follow(account('profile'))).res.text();
  const csrf = /name="_csrf" value="([^"]+)"/.exec(html)?.[1];
  if (!csrf) throw new Error(`no form: ${html.slice(0, 400)}`);
  return csrf;
}

function post(browser: Browser, url: string, fields: Record<string, string>) {
  return browser.request(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: t.url },
    body: new URLSearchParams(fields).toString(),
  });
}

/** The "sign in again" link of a 403 policy page. */
function stepUpLink(html: string): URL {
  const href = /<a class="button" href="([^"]+)"/.exec(html)?.[1];
  if (!href) throw new Error(`no step-up link: ${html.slice(0, 600)}`);
  return new URL(unescapeHtml(href), t.url);
}

/** Adds an authenticator app for the user (as their security page does); returns its key. */
async function addAuthenticator(tenantId: string, userId: string, email: string) {
  const factors = t.app.services.factors;
  const enrollment = await factors.startTotp(tenantId, userId, 'Tessera', email);
  const key = base32Decode(enrollment.secret);
  if (!(await factors.confirmTotp(tenantId, userId, enrollment.factorId, hotp(key, totpStep(Date.now() / 1000) - 1)))) throw new Error('totp');
  return key;
}

test('MFA required: a password-only admin gets 403 on every page and form of the organization, changes nothing, then signs in with a code and works; another organization works throughout', async (tt) => {
  const email = 'ada@strict.test';
  const ada = await user(email);
  const strict = await org('Strict Co', { [ada]: 'admin' }, { mfa_required: true });
  const open = await org('Open Co', { [ada]: 'admin' });
  const { browser, list } = await passwordSession(email);
  const csrf = await csrfOf(browser);

  // Listed, marked, with the way to step up.
  tt.regex(list, /Strict Co<\/a>\s*<br><span class="badge step-up">needs a stronger sign-in<\/span>/);
  tt.notRegex(list, /Open Co<\/a>\s*<br><span class="badge step-up">/);

  for (const tab of ['members', 'invitations', 'roles', 'settings', 'sso', 'directories', 'sign-in-policy', 'audit']) {
    const page = await browser.follow(portal(`organizations/${strict}/${tab}`));
    tt.is(page.res.status, 403, tab);
    const html = await page.res.text();
    tt.regex(html, /second factor/, tab);
    tt.regex(html, /missing: <code>mfa<\/code>/, tab);
    const link = stepUpLink(html);
    tt.is(link.pathname, `/t/${tenant.slug}/portal/login`);
    tt.is(link.searchParams.get('step'), 'mfa');
    tt.is(link.searchParams.get('return_to'), `/t/${tenant.slug}/portal/organizations/${strict}/${tab}`);
  }

  const invite = await post(browser, portal(`organizations/${strict}/invitations`), { _csrf: csrf, email: 'new@strict.test', role: 'member' });
  tt.is(invite.status, 403);
  tt.is((await adminApi(t, tenant, 'GET', `/organizations/${strict}/invitations`)).body.data.length, 0, 'no invitation was created');
  const rename = await post(browser, portal(`organizations/${strict}/settings`), { _csrf: csrf, name: 'Renamed by pwd' });
  tt.is(rename.status, 403);
  tt.is((await adminApi(t, tenant, 'GET', `/organizations/${strict}`)).body.name, 'Strict Co');

  // The same session works in the organization without a policy.
  tt.is((await browser.follow(portal(`organizations/${open}/members`))).res.status, 200);
  const openInvite = await post(browser, portal(`organizations/${open}/invitations`), { _csrf: csrf, email: 'new@open.test', role: 'member' });
  tt.is(openInvite.status, 303);
  tt.is((await adminApi(t, tenant, 'GET', `/organizations/${open}/invitations`)).body.data.length, 1);

  // Step up: the link asks the sign-in for a second factor, then comes back to the page.
  const key = await addAuthenticator(tenant.id, ada, email);
  const forbidden = await browser.follow(portal(`organizations/${strict}/invitations`));
  const start = await browser.follow(stepUpLink(await forbidden.res.text()).href);
  tt.regex(start.url, /\/interaction\/[^/]+$/, 'the sign-in page, although a session exists');
  const codeStep = await enterCredentials(browser, await start.res.text(), start.url, email, PASSWORD);
  tt.regex(codeStep.url, /\/mfa$/);
  const back = await browser.submit(new URL(formAction(await codeStep.res.text()), codeStep.url).href, { method: 'totp', code: totp(key) });
  tt.is(back.url, portal(`organizations/${strict}/invitations`));
  tt.is(back.res.status, 200);

  const csrf2 = await csrfOf(browser);
  for (const tab of ['members', 'settings', 'audit']) tt.is((await browser.follow(portal(`organizations/${strict}/${tab}`))).res.status, 200, tab);
  tt.is((await post(browser, portal(`organizations/${strict}/invitations`), { _csrf: csrf2, email: 'new@strict.test', role: 'member' })).status, 303);
  tt.is((await adminApi(t, tenant, 'GET', `/organizations/${strict}/invitations`)).body.data.length, 1);
  tt.notRegex(await (await browser.follow(portal('organizations'))).res.text(), /needs a stronger sign-in/);
});

test('MFA required: an owner signed in with a password only cannot turn the requirement off', async (tt) => {
  const email = 'owen@strict.test';
  const owen = await user(email);
  const strict = await org('Owned Strict', { [owen]: 'owner' }, { mfa_required: true });
  const { browser } = await passwordSession(email);
  const csrf = await csrfOf(browser);
  const off = await post(browser, portal(`organizations/${strict}/sign-in-policy`), {
    _csrf: csrf,
    method_password: 'on',
    method_passkey: 'on',
    method_sso: 'on',
  });
  tt.is(off.status, 403);
  tt.regex(await off.text(), /missing: <code>mfa<\/code>/);
  tt.like((await adminApi(t, tenant, 'GET', `/organizations/${strict}/auth-policy`)).body, { mfa_required: true });
  const del = await post(browser, portal(`organizations/${strict}/delete`), { _csrf: csrf, confirm_slug: 'owned-strict' });
  tt.is(del.status, 403);
  tt.is((await adminApi(t, tenant, 'GET', `/organizations/${strict}`)).status, 200);
});

test('MFA required with a grace period: the pages and forms work, with a reminder', async (tt) => {
  const email = 'grace@strict.test';
  const grace = await user(email);
  const org1 = await org('Grace Co', { [grace]: 'admin' }, { mfa_required: true, mfa_grace_days: 7 });
  const { browser, list } = await passwordSession(email);
  tt.notRegex(list, /needs a stronger sign-in/);
  const page = await browser.follow(portal(`organizations/${org1}/members`));
  tt.is(page.res.status, 200);
  tt.regex(await page.res.text(), /Grace Co now requires a second factor\. Its grace period still lets you in/);
  const csrf = await csrfOf(browser);
  const { slug } = (await adminApi(t, tenant, 'GET', `/organizations/${org1}`)).body;
  tt.is((await post(browser, portal(`organizations/${org1}/settings`), { _csrf: csrf, name: 'Grace Co Renamed', slug })).status, 303);
  tt.is((await adminApi(t, tenant, 'GET', `/organizations/${org1}`)).body.name, 'Grace Co Renamed');
});

test('a tenant administrator acting in an organization through the portal is held to its policy; someone not in it still gets 404', async (tt) => {
  const outsiderEmail = 'oscar@elsewhere.test';
  const oscar = await user(outsiderEmail);
  const strict = await org('Admins Strict', {}, { mfa_required: true });
  await org('Oscar Co', { [oscar]: 'owner' });

  const admin = await passwordSession(tenant.adminEmail, tenant.adminPassword);
  tt.regex(admin.list, /Admins Strict<\/a>\s*<br><span class="badge step-up">needs a stronger sign-in<\/span>/);
  const page = await admin.browser.follow(portal(`organizations/${strict}/settings`));
  tt.is(page.res.status, 403);
  tt.is(stepUpLink(await page.res.text()).searchParams.get('step'), 'mfa');
  const csrf = await csrfOf(admin.browser);
  tt.is(
    (await post(admin.browser, portal(`organizations/${strict}/settings`), { _csrf: csrf, name: 'Renamed by tenant admin', status: 'suspended' })).status,
    403,
  );
  tt.is((await adminApi(t, tenant, 'GET', `/organizations/${strict}`)).body.name, 'Admins Strict');

  // Not a member: the organization does not exist for them, policy or not.
  const outsider = await passwordSession(outsiderEmail);
  tt.is((await outsider.browser.follow(portal(`organizations/${strict}/members`))).res.status, 404);
  tt.notRegex(outsider.list, /Admins Strict/);
});

test('max session age: a sign-in older than the policy allows gets 403 until it signs in again (prompt=login)', async (tt) => {
  tt.timeout(120_000);
  const email = 'fresh@strict.test';
  const fresh = await user(email);
  const aged = await org('Fresh Co', { [fresh]: 'admin' }, { max_session_age_seconds: 60 });
  const signedInAt = Date.now();
  const { browser } = await passwordSession(email);
  tt.is((await browser.follow(portal(`organizations/${aged}/members`))).res.status, 200, 'a recent sign-in is fresh enough');

  await new Promise((r) => setTimeout(r, Math.max(0, signedInAt + 62_000 - Date.now())));
  const stale = await browser.follow(portal(`organizations/${aged}/members`));
  tt.is(stale.res.status, 403);
  const html = await stale.res.text();
  tt.regex(html, /missing: <code>fresh_sign_in<\/code>/);
  const link = stepUpLink(html);
  tt.is(link.searchParams.get('step'), 'login');

  const again = await browser.follow(link.href);
  tt.regex(again.url, /\/interaction\/[^/]+$/, 'prompt=login: the sign-in page although the session exists');
  const back = await enterCredentials(browser, await again.res.text(), again.url, email, PASSWORD);
  tt.is(back.url, portal(`organizations/${aged}/members`));
  tt.is(back.res.status, 200);
});

test('the account page switch is refused likewise, and allowed into an organization without a policy', async (tt) => {
  const email = 'sw@strict.test';
  const sw = await user(email);
  const strict = await org('Switch Strict', { [sw]: 'member' }, { mfa_required: true });
  const open = await org('Switch Open', { [sw]: 'member' });
  const { browser } = await passwordSession(email);
  const csrf = await csrfOf(browser);
  const mine = await (await browser.follow(account('organizations'))).res.text();
  tt.regex(mine, /Switch Strict<\/a>\s*<br><span class="badge step-up">needs a stronger sign-in<\/span>/);
  tt.notRegex(mine, /Switch Open<\/a>\s*<br><span class="badge step-up">/);

  const refused = await post(browser, account(`organizations/${strict}/switch`), { _csrf: csrf });
  tt.is(refused.status, 403);
  const html = await refused.text();
  tt.regex(html, /missing: <code>mfa<\/code>/);
  tt.is(stepUpLink(html).searchParams.get('step'), 'mfa');
  tt.not((await t.app.services.users.find(tenant.id, sw))?.active_org_id, strict, 'the switch did not happen');

  const switched = await post(browser, account(`organizations/${open}/switch`), { _csrf: csrf });
  tt.is(switched.status, 303);
  tt.regex(switched.headers.get('location') ?? '', /done=switched/);
  tt.is((await t.app.services.users.find(tenant.id, sw))?.active_org_id, open);
});
