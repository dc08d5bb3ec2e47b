import test from 'ava';
import { adminApi, startTestApp, type TestApp, type TestTenant } from '../helpers/app.ts';
import { Browser, enterCredentials } from '../helpers/browser.ts';
import { type Placement, portalWorld } from '../helpers/portal-world.ts';

/**
 * The portal's Setup links tab over HTTP: owners make and revoke links (the URL shown once),
 * admins see the list and change nothing, members and outsiders do not see it.
 */

let t: TestApp;
let tenant: TestTenant;
let acme: string;
const PASSWORD = 'steady copper 81 lantern';
const people = { owner: 'owen@links.test', admin: 'ada@links.test', member: 'mo@links.test', outsider: 'oscar@links.test' };
const placements: Record<string, Placement> = {
  owner: { org: 'acme', role: 'owner' },
  admin: { org: 'acme', role: 'admin' },
  member: { org: 'acme', role: 'member' },
  outsider: { org: 'globex', role: 'owner' },
};

test.before(async () => {
  t = await startTestApp();
  ({ tenant, acme } = await portalWorld(t, people, placements, PASSWORD));
});
test.after.always(async () => t?.stop());

const tab = () => `${t.url}/t/${tenant.slug}/portal/organizations/${acme}/setup-links`;

/** Signs in to the portal through the tenant's sign-in pages, landing on the tab; returns the browser and its CSRF token. */
async function signedIn(email: string) {
  const browser = new Browser(t.url);
  const first = await browser.follow(tab());
  const done = await enterCredentials(browser, await first.res.text(), first.url, email, PASSWORD);
  const html = await done.res.text();
  const csrf = /name="_csrf" value="([^"]+)"/.exec(html)?.[1] ?? '';
  return { browser, csrf, status: done.res.status, html };
}

const post = (s: { browser: Browser; csrf: string }, path: string, fields: Record<string, string>) =>
  s.browser.follow(`${tab()}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: t.url },
    body: new URLSearchParams({ _csrf: s.csrf, ...fields }).toString(),
  });

const links = async () =>
  (await adminApi(t, tenant, 'GET', `/organizations/${acme}/setup-links`)).body.data as Array<{ id: string; status: string; features: string[] }>;

test.serial('an owner makes a link (its URL shown once) and revokes it; both audited as the owner', async (tt) => {
  const owner = await signedIn(people.owner);
  tt.is(owner.status, 200);
  tt.regex(owner.html, /Create setup link/);
  const bad = await post(owner, '', { days: '7' });
  tt.is(bad.res.status, 422);
  tt.regex(await bad.res.text(), /Choose at least one thing the link sets up/);
  const tooLong = await post(owner, '', { feature_sso: 'on', days: '90' });
  tt.is(tooLong.res.status, 422);
  tt.is((await links()).length, 0);

  const made = await post(owner, '', { feature_sso: 'on', feature_directory_sync: 'on', days: '3' });
  tt.is(made.res.status, 201);
  const html = await made.res.text();
  const url = /data-copy="setup link">([^<]+)</.exec(html)?.[1];
  tt.regex(url ?? '', new RegExp(`/t/${tenant.slug}/setup/stl_`));
  const [link] = await links();
  tt.deepEqual(link!.features, ['sso', 'directory_sync']);
  const again = await owner.browser.follow(tab());
  tt.false((await again.res.text()).includes(url!), 'the URL is shown once');

  const revoked = await post(owner, `/${link!.id}/revoke`, {});
  tt.regex(revoked.url, /\?done=revoked$/);
  tt.is((await links())[0]!.status, 'revoked');
  const audit = (await adminApi(t, tenant, 'GET', `/organizations/${acme}/audit-log`)).body.data as Array<{ action: string; actor: { type: string } }>;
  for (const action of ['setup_link.created', 'setup_link.revoked']) tt.is(audit.find((a) => a.action === action)?.actor.type, 'user', action);
});

test.serial('an admin sees the list but makes and revokes nothing; a member and an outsider do not see it', async (tt) => {
  const live = (await adminApi(t, tenant, 'POST', `/organizations/${acme}/setup-links`, { features: ['domains'] })).body;
  const admin = await signedIn(people.admin);
  tt.is(admin.status, 200);
  tt.regex(admin.html, /Only the organization's owners can make or revoke setup links/);
  tt.false(admin.html.includes('Create setup link'));
  tt.is((await post(admin, '', { feature_sso: 'on', days: '7' })).res.status, 403);
  tt.is((await post(admin, `/${live.id}/revoke`, {})).res.status, 403);
  tt.is((await links()).find((l) => l.id === live.id)!.status, 'active');
  tt.is((await links()).length, 2);

  const member = await signedIn(people.member);
  tt.is(member.status, 403);
  const outsider = await signedIn(people.outsider);
  tt.is(outsider.status, 404);
});

test.serial('a link made by an owner stops working once its maker is no longer an owner', async (tt) => {
  const owner = await signedIn(people.owner);
  const made = await post(owner, '', { feature_sso: 'on', days: '3' });
  const url = /data-copy="setup link">([^<]+)</.exec(await made.res.text())?.[1] ?? '';
  tt.is((await new Browser(t.url).follow(url)).res.status, 200, 'works while its maker is an owner');
  // Another owner takes over; the maker becomes a member.
  const members = (await adminApi(t, tenant, 'GET', `/organizations/${acme}/members`)).body.data as Array<{ user_id: string; email: string }>;
  const ownerId = members.find((m) => m.email === people.owner)!.user_id;
  const adminId = members.find((m) => m.email === people.admin)!.user_id;
  tt.is((await adminApi(t, tenant, 'PATCH', `/organizations/${acme}/members/${adminId}`, { roles: ['owner'] })).status, 200);
  tt.is((await adminApi(t, tenant, 'PATCH', `/organizations/${acme}/members/${ownerId}`, { roles: ['member'] })).status, 200);
  const after = await new Browser(t.url).follow(url);
  tt.is(after.res.status, 410);
  tt.regex(await after.res.text(), /The person who made it can no longer set up/);
  // Owner again: the link works again (it was never revoked).
  tt.is((await adminApi(t, tenant, 'PATCH', `/organizations/${acme}/members/${ownerId}`, { roles: ['owner'] })).status, 200);
  tt.is((await adminApi(t, tenant, 'PATCH', `/organizations/${acme}/members/${adminId}`, { roles: ['admin'] })).status, 200);
});
