import test from 'ava';
import { adminApi, startTestApp, type TestApp, type TestTenant } from '../helpers/app.ts';
import { Browser, enterCredentials } from '../helpers/browser.ts';
import { type Placement, portalWorld } from '../helpers/portal-world.ts';

/**
 * The organization's sign-in policy in the portal, over HTTP form posts: owners (and tenant
 * admins) change it through the Admin API's own service and schema, audited the same; admins
 * read it; members don't see it; other organizations' people get 404; CSRF is checked.
 */

let t: TestApp;
let tenant: TestTenant;
const PASSWORD = 'steady copper 81 lantern';
const people = { owner: 'owen@policy.test', admin: 'ada@policy.test', member: 'mo@policy.test', outsider: 'oscar@policy.test' };
let ids: Record<string, string>;
let acme: string;
let globex: string;
let otherTenantOrg: string;
const placements: Record<string, Placement> = {
  owner: { org: 'acme', role: 'owner' },
  admin: { org: 'acme', role: 'admin' },
  member: { org: 'acme', role: 'member' },
  outsider: { org: 'globex', role: 'owner' },
};

test.before(async () => {
  t = await startTestApp();
  ({ tenant, ids, acme, globex, otherTenantOrg } = await portalWorld(t, people, placements, PASSWORD, { acme: 'Acme Policy', globex: 'Globex Policy' }));
});
test.after.always(async () => t?.stop());

const portal = (path: string, tn = tenant) => `${t.url}/t/${tn.slug}/portal/${path}`;

async function signedIn(email: string, password = PASSWORD, tn = tenant) {
  const browser = new Browser(t.url);
  const first = await browser.follow(portal('organizations', tn));
  const done = await enterCredentials(browser, await first.res.text(), first.url, email, password);
  const html = await done.res.text();
  const csrf = /name="_csrf" value="([^"]+)"/.exec(html)?.[1];
  if (!csrf) throw new Error(`not signed in: ${html.slice(0, 400)}`);
  return { browser, csrf };
}

const policyOf = async (orgId: string) => (await adminApi(t, tenant, 'GET', `/organizations/${orgId}/auth-policy`)).body;

function post(browser: Browser, url: string, fields: Record<string, string>) {
  return browser.request(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: t.url },
    body: new URLSearchParams(fields).toString(),
  });
}

const FULL = {
  mfa_required: 'on',
  mfa_grace_days: '7',
  method_password: 'on',
  method_sso: 'on',
  sso_required: 'on',
  max_session_age_seconds: '3600',
  upstream_mfa_satisfies: 'on',
};

test.serial('an owner sees the form and changes the whole policy; audited as the Admin API’s change, by the owner', async (tt) => {
  const { browser, csrf } = await signedIn(people.owner);
  const page = await browser.follow(portal(`organizations/${acme}/sign-in-policy`));
  tt.is(page.res.status, 200);
  const html = await page.res.text();
  tt.regex(html, /<form method="post" action="[^"]*\/sign-in-policy"/);
  tt.regex(html, /name="method_passkey" value="on" checked/, 'every method allowed by default');

  const saved = await post(browser, portal(`organizations/${acme}/sign-in-policy`), { _csrf: csrf, ...FULL });
  tt.is(saved.status, 303);
  tt.regex(saved.headers.get('location') ?? '', /sign-in-policy\?done=saved/);
  tt.like(await policyOf(acme), {
    mfa_required: true,
    mfa_grace_days: 7,
    allowed_methods: ['password', 'sso'],
    sso_required: true,
    max_session_age_seconds: 3600,
    upstream_mfa_satisfies: true,
  });
  const after = await (await browser.follow(new URL(saved.headers.get('location')!, t.url).href)).res.text();
  tt.regex(after, /Sign-in policy saved/);
  tt.regex(after, /The current grace period ends/);

  const log = (await adminApi(t, tenant, 'GET', `/organizations/${acme}/audit-log?limit=20`)).body.data as Array<Record<string, any>>;
  const entry = log.find((e) => e.action === 'organization.auth_policy.updated');
  tt.truthy(entry);
  tt.deepEqual(entry!.actor, { type: 'user', id: ids.owner });
  tt.like(entry!.after, { mfa_required: true, sso_required: true });

  // Unticking everything but one method and emptying the numbers: the form is the whole policy.
  const relaxed = await post(browser, portal(`organizations/${acme}/sign-in-policy`), {
    _csrf: csrf,
    method_password: 'on',
    method_passkey: 'on',
    method_sso: 'on',
  });
  tt.is(relaxed.status, 303);
  tt.like(await policyOf(acme), { mfa_required: false, mfa_grace_days: 0, sso_required: false, max_session_age_seconds: null, upstream_mfa_satisfies: false });
});

test.serial('bad values are shown on the form with a 422, and change nothing', async (tt) => {
  await adminApi(t, tenant, 'PUT', `/organizations/${acme}/auth-policy`, { mfa_required: true, mfa_grace_days: 3 });
  const before = await policyOf(acme);
  const { browser, csrf } = await signedIn(people.owner);
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ mfa_grace_days: '400', method_password: 'on' }, /at most 365 days/],
    [{ mfa_grace_days: 'soon', method_password: 'on' }, /id="e-mfa_grace_days"/],
    [{ mfa_grace_days: '1.5', method_password: 'on' }, /id="e-mfa_grace_days"/],
    [{ max_session_age_seconds: '5', method_password: 'on' }, /at least 60 seconds/],
    [{ max_session_age_seconds: '-1', method_password: 'on' }, /id="e-max_session_age_seconds"/],
    [{}, /allow at least one sign-in method/i],
  ];
  for (const [fields, message] of cases) {
    const r = await post(browser, portal(`organizations/${acme}/sign-in-policy`), { _csrf: csrf, ...fields });
    tt.is(r.status, 422, JSON.stringify(fields));
    const html = await r.text();
    tt.regex(html, message, JSON.stringify(fields));
    tt.regex(html, /The policy was not saved/);
  }
  tt.deepEqual(await policyOf(acme), before);
});

test.serial('an admin reads the policy but has no form and cannot post; a member does not see it', async (tt) => {
  const before = await policyOf(acme);
  const admin = await signedIn(people.admin);
  const page = await admin.browser.follow(portal(`organizations/${acme}/sign-in-policy`));
  tt.is(page.res.status, 200);
  const html = await page.res.text();
  tt.notRegex(html, /<form method="post" action="[^"]*\/sign-in-policy"/);
  tt.regex(html, /Only the organization's owners can change the sign-in policy/);
  const refused = await post(admin.browser, portal(`organizations/${acme}/sign-in-policy`), { _csrf: admin.csrf, method_password: 'on' });
  tt.is(refused.status, 403);

  const member = await signedIn(people.member);
  tt.is((await member.browser.request(portal(`organizations/${acme}/sign-in-policy`))).status, 403);
  tt.is((await post(member.browser, portal(`organizations/${acme}/sign-in-policy`), { _csrf: member.csrf, method_password: 'on' })).status, 403);
  tt.notRegex(await (await member.browser.follow(portal(`organizations/${acme}/members`))).res.text(), /sign-in-policy/, 'no tab for members');
  tt.deepEqual(await policyOf(acme), before);
});

test.serial('another organization’s owner and another tenant’s organization: 404, nothing changes', async (tt) => {
  const before = await policyOf(acme);
  const outsider = await signedIn(people.outsider);
  tt.is((await outsider.browser.request(portal(`organizations/${acme}/sign-in-policy`))).status, 404);
  tt.is((await post(outsider.browser, portal(`organizations/${acme}/sign-in-policy`), { _csrf: outsider.csrf, method_password: 'on' })).status, 404);
  const owner = await signedIn(people.owner);
  tt.is((await owner.browser.request(portal(`organizations/${otherTenantOrg}/sign-in-policy`))).status, 404);
  tt.is((await post(owner.browser, portal(`organizations/${otherTenantOrg}/sign-in-policy`), { _csrf: owner.csrf, method_password: 'on' })).status, 404);
  tt.deepEqual(await policyOf(acme), before);
});

test.serial('CSRF: without the token, with a wrong one, or from another site the post is refused', async (tt) => {
  const before = await policyOf(acme);
  const { browser, csrf } = await signedIn(people.owner);
  const url = portal(`organizations/${acme}/sign-in-policy`);
  tt.is((await post(browser, url, FULL)).status, 403);
  tt.is((await post(browser, url, { ...FULL, _csrf: `${csrf}x` })).status, 403);
  const crossSite = await browser.request(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'https://evil.example' },
    body: new URLSearchParams({ ...FULL, _csrf: csrf }).toString(),
  });
  tt.is(crossSite.status, 403);
  tt.deepEqual(await policyOf(acme), before);
});

test.serial('a tenant admin who is not a member changes it too', async (tt) => {
  const { browser, csrf } = await signedIn(tenant.adminEmail, tenant.adminPassword);
  const r = await post(browser, portal(`organizations/${globex}/sign-in-policy`), { _csrf: csrf, method_passkey: 'on', method_sso: 'on' });
  tt.is(r.status, 303);
  tt.deepEqual((await policyOf(globex)).allowed_methods, ['passkey', 'sso']);
});

// ── the tenant's own rule (Sign-in rules), tenant administrators only ─────────

test.serial('sign-in rules: a tenant admin sets MFA and the allowed factors; bad values are 422 and change nothing; audited', async (tt) => {
  const { browser, csrf } = await signedIn(tenant.adminEmail, tenant.adminPassword);
  const page = await (await browser.request(portal('sign-in-rules'))).text();
  tt.regex(page, /value="optional" checked/);
  tt.regex(page, /name="factor_passkey" value="on" checked/);
  const saved = await post(browser, portal('sign-in-rules'), { _csrf: csrf, mfa: 'required', factor_totp: 'on' });
  tt.is(saved.status, 303);
  const settings = (await adminApi(t, tenant, 'GET', '/settings')).body;
  tt.is(settings.mfa, 'required');
  tt.deepEqual(settings.mfa_factors, ['totp']);
  const log = (await adminApi(t, tenant, 'GET', '/audit-log')).body.data as Array<Record<string, any>>;
  const entry = log.find((e) => e.action === 'tenant.auth_policy.updated');
  tt.like(entry, { actor: { type: 'user' }, before: { mfa: 'optional' }, after: { mfa: 'required', mfa_factors: ['totp'] } });

  for (const [fields, field] of [
    [{ mfa: 'optional' }, 'allow at least one factor'],
    [{ mfa: 'sometimes', factor_totp: 'on' }, 'Invalid option'],
  ] as const) {
    const refused = await post(browser, portal('sign-in-rules'), { _csrf: csrf, ...fields });
    tt.is(refused.status, 422);
    tt.regex(await refused.text(), new RegExp(field, 'i'));
  }
  tt.is((await post(browser, portal('sign-in-rules'), { mfa: 'off', factor_totp: 'on' })).status, 403, 'no CSRF token');
  tt.is((await adminApi(t, tenant, 'GET', '/settings')).body.mfa, 'required', 'nothing changed');

  // The Admin API's change is audited the same, with its own actor.
  tt.is((await adminApi(t, tenant, 'PATCH', '/settings', { mfa: 'optional', mfa_factors: ['totp', 'passkey'] })).status, 200);
  const byApi = (await adminApi(t, tenant, 'GET', '/audit-log')).body.data[0];
  tt.like(byApi, { action: 'tenant.auth_policy.updated', actor: { type: 'api_key' }, after: { mfa: 'optional' } });
});

test('sign-in rules: not a page for anyone but tenant admins', async (tt) => {
  for (const who of [people.owner, people.member]) {
    const { browser, csrf } = await signedIn(who);
    tt.is((await browser.request(portal('sign-in-rules'))).status, 404, who);
    tt.is((await post(browser, portal('sign-in-rules'), { _csrf: csrf, mfa: 'off', factor_totp: 'on' })).status, 404, who);
  }
  tt.not((await adminApi(t, tenant, 'GET', '/settings')).body.mfa, 'off');
});
