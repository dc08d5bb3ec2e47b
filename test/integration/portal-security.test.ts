import test from 'ava';
import { adminApi, startTestApp, type TestApp, type TestTenant } from '../helpers/app.ts';
import { Browser, enterCredentials } from '../helpers/browser.ts';
import { type Placement, portalWorld } from '../helpers/portal-world.ts';
import { callbackLocation, hostileReturnTos } from '../helpers/return-to.ts';

/**
 * The portal's security over plain HTTP (the browser tests show the pages work; these show what
 * they refuse): sign-in through the tenant's OIDC, CSRF, organization and tenant isolation, the
 * owner/admin/member split, the code redemption's checks, and the session dying with its grant.
 */

let t: TestApp;
let tenant: TestTenant;
let other: TestTenant;
const PASSWORD = 'steady copper 81 lantern';
// `roamer` is signed in and out by the sessions test alone: revoking "every other session" of a
// user shared with concurrent tests would sign their browsers out mid-flow.
const people = { owner: 'owen@sec.test', admin: 'ada@sec.test', member: 'mo@sec.test', outsider: 'oscar@sec.test', roamer: 'rory@sec.test' };
let ids: Record<string, string>;
let acme: string;
let globex: string;
let otherTenantOrg: string;
const placements: Record<string, Placement> = {
  owner: { org: 'acme', role: 'owner' },
  admin: { org: 'acme', role: 'admin' },
  member: { org: 'acme', role: 'member' },
  roamer: { org: 'acme', role: 'member' },
  outsider: { org: 'globex', role: 'owner' },
};

test.before(async () => {
  t = await startTestApp();
  ({ tenant, other, ids, acme, globex, otherTenantOrg } = await portalWorld(t, people, placements, PASSWORD));
});
test.after.always(async () => t?.stop());

const portal = (path: string, tn = tenant) => `${t.url}/t/${tn.slug}/portal/${path}`;

/** Signs in to the portal through the tenant's sign-in pages; returns the browser and its CSRF token. */
async function signedIn(email: string, start = portal('organizations'), password = PASSWORD) {
  const browser = new Browser(t.url);
  const first = await browser.follow(start);
  const done = await enterCredentials(browser, await first.res.text(), first.url, email, password);
  const html = await done.res.text();
  const csrf = /name="_csrf" value="([^"]+)"/.exec(html)?.[1];
  if (!csrf) throw new Error(`not signed in: ${browser.visited.join('\n')}\n${/<main[^>]*>([\s\S]*?)<\/main>/.exec(html)?.[1]?.trim() ?? html.slice(0, 400)}`);
  return { browser, csrf, url: done.url, html };
}

async function members(orgId: string) {
  return (await adminApi(t, tenant, 'GET', `/organizations/${orgId}/members`)).body.data as Array<{ user_id: string; roles: string[] }>;
}

test('without a session every portal and account page sends the browser to sign in, and a form post changes nothing', async (tt) => {
  const browser = new Browser(t.url);
  const res = await browser.request(portal(`organizations/${acme}/members`));
  tt.is(res.status, 302);
  const to = new URL(res.headers.get('location')!, t.url);
  tt.is(to.pathname, `/t/${tenant.slug}/portal/login`);
  tt.is(to.searchParams.get('return_to'), `/t/${tenant.slug}/portal/organizations/${acme}/members`);
  const login = await browser.request(to.href);
  const auth = new URL(login.headers.get('location')!);
  tt.is(auth.pathname, `/t/${tenant.slug}/auth`);
  tt.is(auth.searchParams.get('client_id'), 'tessera:portal');
  tt.is(auth.searchParams.get('code_challenge_method'), 'S256');
  for (const path of ['account/organizations', 'account/profile', 'account/password', 'account/sessions']) {
    tt.is((await browser.request(`${t.url}/t/${tenant.slug}/${path}`)).status, 302, path);
  }
  const post = await browser.request(portal(`organizations/${acme}/invitations`), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: t.url },
    body: 'email=x%40y.test&role=owner',
  });
  tt.is(post.status, 302);
  tt.is((await adminApi(t, tenant, 'GET', `/organizations/${acme}/invitations`)).body.data.length, 0);
});

test('after sign-in the browser returns where it was going; an outside return_to is ignored', async (tt) => {
  const back = await signedIn(people.member, portal(`organizations/${acme}/members`));
  tt.is(new URL(back.url).pathname, `/t/${tenant.slug}/portal/organizations/${acme}/members`);
  const evil = await signedIn(people.member, `${portal('login')}?return_to=${encodeURIComponent('https://evil.example/x')}`);
  tt.is(new URL(evil.url).pathname, `/t/${tenant.slug}/portal/organizations`);
  const sneaky = await signedIn(people.member, `${portal('login')}?return_to=${encodeURIComponent(`/t/${tenant.slug}/portal//evil.example`)}`);
  tt.is(new URL(sneaky.url).pathname, `/t/${tenant.slug}/portal/organizations`);
});

test('return_to is judged as the browser resolves it: dot segments, encoded dots, backslashes, other hosts and control characters go home', async (tt) => {
  const { browser } = await signedIn(people.member);
  const login = (returnTo: string) => `${portal('login')}?${new URLSearchParams({ return_to: returnTo })}`;
  const home = `/t/${tenant.slug}/portal/organizations`;
  for (const hostile of hostileReturnTos(tenant.slug, other.slug)) {
    const to = await callbackLocation(browser, t.url, login(hostile));
    tt.true(to === home || to === 'refused 400', `${JSON.stringify(hostile)} → ${to}`);
  }
  // The tenant's own pages are still honoured, query and all.
  const members = `/t/${tenant.slug}/portal/organizations/${acme}/members?page=2`;
  tt.is(await callbackLocation(browser, t.url, login(members)), members);
  tt.is(await callbackLocation(browser, t.url, login(`/t/${tenant.slug}/account/security`)), `/t/${tenant.slug}/account/security`);
});

test('CSRF: a form post without the session token, with a wrong one, or from another site is refused and changes nothing', async (tt) => {
  const { browser, csrf } = await signedIn(people.owner);
  const invite = (body: string, headers: Record<string, string> = {}) =>
    browser.request(portal(`organizations/${acme}/invitations`), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: t.url, ...headers },
      body,
    });
  tt.is((await invite('email=a%40csrf.test&role=member')).status, 403);
  tt.is((await invite(`email=a%40csrf.test&role=member&_csrf=${csrf}x`)).status, 403);
  tt.is((await invite(`email=a%40csrf.test&role=member&_csrf=${csrf}`, { 'sec-fetch-site': 'cross-site' })).status, 403);
  tt.is((await invite(`email=a%40csrf.test&role=member&_csrf=${csrf}`, { origin: 'https://evil.example' })).status, 403);
  tt.is((await adminApi(t, tenant, 'GET', `/organizations/${acme}/invitations`)).body.data.length, 0);
  const ok = await invite(`email=a%40csrf.test&role=member&_csrf=${csrf}`);
  tt.is(ok.status, 303);
  tt.is((await adminApi(t, tenant, 'GET', `/organizations/${acme}/invitations`)).body.data.length, 1);
});

test("isolation: another organization's pages, another tenant's organization and malformed ids are all 404", async (tt) => {
  const { browser, csrf } = await signedIn(people.owner);
  for (const path of [
    `organizations/${globex}/members`,
    `organizations/${globex}/settings`,
    `organizations/${globex}/sso`,
    `organizations/${globex}/audit`,
    `organizations/${otherTenantOrg}/members`,
    'organizations/not-a-uuid/members',
  ]) {
    const res = await browser.request(portal(path));
    tt.is(res.status, 404, path);
    tt.notRegex(await res.text(), /Globex|Elsewhere/);
  }
  const post = await browser.request(portal(`organizations/${globex}/invitations`), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: t.url },
    body: `email=x%40y.test&role=member&_csrf=${csrf}`,
  });
  tt.is(post.status, 404);
  tt.is((await adminApi(t, tenant, 'GET', `/organizations/${globex}/invitations`)).body.data.length, 0);
  // The list shows only the viewer's organizations.
  const list = await (await browser.request(portal('organizations'))).text();
  tt.regex(list, /Acme/);
  tt.notRegex(list, /Globex/);
  // A portal cookie means nothing at another tenant (path-scoped, and signed with that tenant's key).
  const cookie = (await browser.jar.getCookies(portal('organizations'))).find((c) => c.key === 'tessera.portal')!;
  const elsewhere = await fetch(portal('organizations', other), { redirect: 'manual', headers: { cookie: `tessera.portal=${cookie.value}` } });
  tt.is(elsewhere.status, 302);
});

test('an admin runs the organization but cannot make, change or remove owners, transfer ownership or delete it', async (tt) => {
  const { browser, csrf } = await signedIn(people.admin);
  const post = (path: string, fields: Record<string, string>) =>
    browser.request(portal(`organizations/${acme}/${path}`), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: t.url },
      body: new URLSearchParams({ ...fields, _csrf: csrf }).toString(),
    });
  tt.is((await post(`members/${ids.member}/role`, { role: 'owner' })).status, 403);
  tt.is((await post(`members/${ids.owner}/role`, { role: 'member' })).status, 403);
  tt.is((await post(`members/${ids.owner}/remove`, {})).status, 403);
  tt.is((await post(`members/${ids.member}/transfer`, {})).status, 403);
  tt.is((await post('invitations', { email: 'boss@sec.test', role: 'owner' })).status, 403);
  tt.is((await post('delete', { confirm_slug: 'acme' })).status, 403);
  tt.is((await browser.request(portal(`organizations/${acme}/delete`))).status, 403);
  const after = await members(acme);
  tt.deepEqual(after.find((m) => m.user_id === ids.owner)?.roles, ['owner']);
  tt.deepEqual(after.find((m) => m.user_id === ids.member)?.roles, ['member']);
  // What an admin may do: change a member's role.
  tt.is((await post(`members/${ids.member}/role`, { role: 'billing' })).status, 303);
  tt.deepEqual((await members(acme)).find((m) => m.user_id === ids.member)?.roles, ['billing']);
  await post(`members/${ids.member}/role`, { role: 'member' });
});

test('a member sees the organization and its members but can manage nothing', async (tt) => {
  const { browser, csrf } = await signedIn(people.member);
  const page = await (await browser.request(portal(`organizations/${acme}/members`))).text();
  tt.regex(page, /owen@sec\.test/);
  tt.notRegex(page, /Change role|Invitations<\/a>/);
  for (const path of ['invitations', 'roles', 'sso', 'settings', 'audit'])
    tt.is((await browser.request(portal(`organizations/${acme}/${path}`))).status, 403, path);
  const res = await browser.request(portal(`organizations/${acme}/roles`), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: t.url },
    body: `name=sneaky&_csrf=${csrf}`,
  });
  tt.is(res.status, 403);
  tt.false((await adminApi(t, tenant, 'GET', `/organizations/${acme}/roles`)).body.data.some((r: { name: string }) => r.name === 'sneaky'));
});

test('tenant admins see every organization, and may suspend one; org admins may not change status', async (tt) => {
  const { browser, csrf } = await signedIn(tenant.adminEmail, portal('organizations'), tenant.adminPassword);
  const list = await (await browser.request(portal('organizations'))).text();
  tt.regex(list, /Acme/);
  tt.regex(list, /Globex/);
  const res = await browser.request(portal(`organizations/${globex}/settings`), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: t.url },
    body: new URLSearchParams({ name: 'Globex', slug: 'globex', status: 'suspended', _csrf: csrf }).toString(),
  });
  tt.is(res.status, 303);
  tt.is((await adminApi(t, tenant, 'GET', `/organizations/${globex}`)).body.status, 'suspended');
  await adminApi(t, tenant, 'PATCH', `/organizations/${globex}`, { status: 'active' });

  const admin = await signedIn(people.admin);
  const form = await (await admin.browser.request(portal(`organizations/${acme}/settings`))).text();
  tt.notRegex(form, /name="status"/);
  await admin.browser.request(portal(`organizations/${acme}/settings`), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: t.url },
    body: new URLSearchParams({ name: 'Acme', slug: 'acme', status: 'suspended', _csrf: admin.csrf }).toString(),
  });
  tt.is((await adminApi(t, tenant, 'GET', `/organizations/${acme}`)).body.status, 'active');
});

test('the code redemption: a replayed code, a wrong state or a missing login cookie are refused', async (tt) => {
  const browser = new Browser(t.url);
  const first = await browser.follow(portal('organizations'));
  const loginCookie = (await browser.jar.getCookies(portal('callback'))).find((c) => c.key === 'tessera.portal.login')!;
  const done = await enterCredentials(browser, await first.res.text(), first.url, people.member, PASSWORD);
  tt.is(new URL(done.url).pathname, `/t/${tenant.slug}/portal/organizations`);
  const callback = browser.visited.find((u) => u.includes('/portal/callback?'))!;
  tt.truthy(callback);
  const withLoginCookie = async () => {
    const b = new Browser(t.url);
    await b.jar.setCookie(loginCookie.clone()!, portal('callback'));
    return b;
  };
  // The same code again, with the login cookie it was issued for: spent.
  const replay = await (await withLoginCookie()).request(callback);
  tt.is(replay.status, 400);
  tt.regex(await replay.text(), /could not be completed/);
  tt.falsy(replay.headers.getSetCookie().find((c) => c.startsWith('tessera.portal=') && !c.startsWith('tessera.portal=;')));
  // …and a replayed code ends the session it started (it may have been stolen).
  tt.is((await browser.request(portal('organizations'))).status, 302);
  // Another state than the one this browser was sent with.
  const wrongState = new URL(callback);
  wrongState.searchParams.set('state', 'not-the-state');
  tt.is((await (await withLoginCookie()).request(wrongState.href)).status, 400);
  // No login cookie at all (a link opened in another browser).
  tt.is((await new Browser(t.url).request(callback)).status, 400);
});

test('the portal session ends with its grant: disabling the user or a password reset signs the browser out', async (tt) => {
  const { browser } = await signedIn(people.outsider);
  tt.is((await browser.request(portal('organizations'))).status, 200);
  await adminApi(t, tenant, 'PATCH', `/users/${ids.outsider}`, { disabled: true });
  tt.is((await browser.request(portal('organizations'))).status, 302);
  await adminApi(t, tenant, 'PATCH', `/users/${ids.outsider}`, { disabled: false });
  const again = await signedIn(people.outsider);
  await adminApi(t, tenant, 'PATCH', `/users/${ids.outsider}`, { password: 'another fine password 12' });
  tt.is((await again.browser.request(portal('organizations'))).status, 302);
  await adminApi(t, tenant, 'PATCH', `/users/${ids.outsider}`, { password: PASSWORD });
});

test('signing out of another session from the sessions page ends that browser, not this one', async (tt) => {
  const one = await signedIn(people.roamer);
  const two = await signedIn(people.roamer);
  const page = await (await two.browser.request(`${t.url}/t/${tenant.slug}/account/sessions`)).text();
  const revoke = [...page.matchAll(/action="([^"]+\/sessions\/[^"]+\/revoke)"/g)].map((m) => m[1]!);
  tt.true(revoke.length >= 1);
  for (const action of revoke) {
    await two.browser.request(`${t.url}${action}`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: t.url },
      body: `_csrf=${two.csrf}`,
    });
  }
  tt.is((await one.browser.request(portal('organizations'))).status, 302);
  tt.is((await two.browser.request(portal('organizations'))).status, 200);
});

test('pages carry a CSP that allows no inline script; the stylesheet is one cacheable file', async (tt) => {
  const { browser } = await signedIn(people.member);
  const res = await browser.request(portal('organizations'));
  const csp = res.headers.get('content-security-policy') ?? '';
  tt.regex(csp, /default-src 'self'/);
  tt.notRegex(csp, /unsafe-inline/);
  tt.regex(csp, /frame-ancestors 'none'/);
  const html = await res.text();
  tt.notRegex(html, /<script>|<style>/);
  tt.regex(html, /<link rel="stylesheet" href="\/assets\/tessera\.css">/);
  const css = await fetch(`${t.url}/assets/tessera.css`);
  tt.is(css.status, 200);
  tt.regex(css.headers.get('content-type') ?? '', /text\/css/);
  tt.regex(css.headers.get('cache-control') ?? '', /max-age/);
  tt.is((await fetch(`${t.url}/assets/..%2Fpackage.json`)).status, 404);
});

test('an OIDC connection is added and edited from the SSO tab: blank secret keeps the old one, a failed test is kept as the last error', async (tt) => {
  const { browser, csrf } = await signedIn(people.owner);
  const post = (path: string, fields: Record<string, string>) =>
    browser.request(portal(`organizations/${acme}/${path}`), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: t.url },
      body: new URLSearchParams({ ...fields, _csrf: csrf }).toString(),
    });
  const bad = await post('sso', {
    type: 'oidc',
    name: 'Entra',
    issuer_url: 'not a url',
    client_id: 'c1',
    client_secret: 's1',
    default_role: 'member',
    enabled: 'on',
  });
  tt.is(bad.status, 422);
  const badHtml = await bad.text();
  tt.regex(badHtml, /id="e-issuer_url">[^<]*http/);
  tt.regex(badHtml, /value="Entra"/);
  tt.notRegex(badHtml, /value="s1"/, 'a secret is never echoed back');
  const created = await post('sso', {
    type: 'oidc',
    name: 'Entra',
    issuer_url: 'https://login.entra.invalid/tenant/v2.0',
    client_id: 'c1',
    client_secret: 's1',
    default_role: 'member',
    enabled: 'on',
    auto_provision: 'on',
  });
  tt.is(created.status, 303);
  const page = new URL(created.headers.get('location')!, t.url);
  const id = /\/sso\/([0-9a-f-]{36})/.exec(page.pathname)![1]!;
  const shown = await (await browser.request(page.href)).text();
  tt.regex(shown, new RegExp(`/t/${tenant.slug}/sso/oidc/${id}/callback`));
  const row = () => t.app.services.connections.get(tenant.id, acme, id);
  const secretBefore = t.app.services.connections.clientSecret(await row());
  tt.is(secretBefore, 's1');
  const edited = await post(`sso/${id}`, {
    name: 'Entra ID',
    issuer_url: 'https://login.entra.invalid/tenant/v2.0',
    client_id: 'c1',
    client_secret: '',
    default_role: 'member',
  });
  tt.is(edited.status, 303);
  const after = await row();
  tt.is(after.name, 'Entra ID');
  tt.false(after.enabled, 'an unticked box is a no');
  tt.is(t.app.services.connections.clientSecret(after), 's1');
  const tested = await post(`sso/${id}/test`, {});
  tt.is(tested.status, 422);
  tt.regex(await tested.text(), /Test failed/);
  tt.regex((await row()).last_error ?? '', /Test failed/);
  const deleted = await post(`sso/${id}/delete`, {});
  tt.is(deleted.status, 303);
  await tt.throwsAsync(row());
});
