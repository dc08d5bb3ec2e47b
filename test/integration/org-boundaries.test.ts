import { randomUUID } from 'node:crypto';
import test from 'ava';
import type * as oidc from 'openid-client';
import { adminApi, createTenant, startTestApp, type TestApp, type TestTenant, webClient } from '../helpers/app.ts';
import { Browser, enterCredentials } from '../helpers/browser.ts';
import { type RegisteredClient, signIn } from '../helpers/oidc.ts';
import { SmtpSink } from '../helpers/smtp.ts';

/**
 * Where one organization's or team's boundary could be crossed by what its own people configure:
 * slugs shaped like ids, deleting a rejected organization to retry it, a suspended organization's
 * invitations, a team id naming its organization to an outsider, and the team-role ceiling.
 */

let smtp: SmtpSink;
let t: TestApp;
let tenant: TestTenant;
let client: RegisteredClient;
const PASSWORD = 'amber falcon 73 meadow';
const ids: Record<string, string> = {};
let acme: { id: string; slug: string };
let globex: { id: string; slug: string };
let ops: { id: string; slug: string };
let globexTeam: { id: string; slug: string };

const api = (method: string, path: string, body?: unknown) => adminApi(t, tenant, method, path, body);
const portal = (path: string) => `${t.url}/t/${tenant.slug}/portal/${path}`;
const email = (k: string) => `${k}@boundaries.test`;

test.before(async () => {
  smtp = await SmtpSink.start();
  t = await startTestApp({ env: { SMTP_URL: smtp.url, MAIL_POLL_MS: '100' } });
  tenant = await createTenant(t);
  client = (await api('POST', '/clients', webClient())).body;
  const set = await api('PATCH', '/settings', { users_can_create_organizations: true, organization_approval: 'required', max_organizations_per_user: 1 });
  if (set.status !== 200) throw new Error(set.text);
  for (const k of ['owen', 'ada', 'dee', 'tara', 'vic', 'gus', 'rita']) {
    ids[k] = (await api('POST', '/users', { email: email(k), password: PASSWORD, email_verified: true })).body.id;
  }
  acme = (await api('POST', '/organizations', { name: 'Acme' })).body;
  globex = (await api('POST', '/organizations', { name: 'Globex' })).body;
  const place = async (orgId: string, k: string, role: string) => {
    const r = await api('POST', `/organizations/${orgId}/members`, { user_id: ids[k], role });
    if (r.status !== 201) throw new Error(r.text);
  };
  await place(acme.id, 'owen', 'owner');
  await place(acme.id, 'ada', 'admin');
  for (const k of ['dee', 'tara', 'vic']) await place(acme.id, k, 'member');
  await place(globex.id, 'gus', 'owner');
  await api('POST', `/organizations/${acme.id}/team-roles`, { name: 'deployer', permissions: ['deploy:prod'] });
  ops = (await api('POST', `/organizations/${acme.id}/teams`, { name: 'Ops', slug: 'ops' })).body;
  globexTeam = (await api('POST', `/organizations/${globex.id}/teams`, { name: 'Platform' })).body;
  // Ada runs Acme but is only a plain deployer in Ops; Tara is Ops' admin and a deployer.
  await api('POST', `/organizations/${acme.id}/teams/${ops.id}/members`, { user_id: ids.ada, roles: ['member', 'deployer'] });
  await api('POST', `/organizations/${acme.id}/teams/${ops.id}/members`, { user_id: ids.tara, roles: ['admin', 'deployer'] });
  await api('POST', `/organizations/${acme.id}/teams/${ops.id}/members`, { user_id: ids.vic, roles: ['deployer'] });
});
test.after.always(async () => {
  await t?.stop();
  await smtp?.stop();
});

/** Signs in to the portal; returns a form poster carrying the page's CSRF token. */
async function signedIn(k: string) {
  const browser = new Browser(t.url);
  const first = await browser.follow(portal('organizations'));
  const done = await enterCredentials(browser, await first.res.text(), first.url, email(k), PASSWORD);
  const html = await done.res.text();
  const csrf = /name="_csrf" value="([^"]+)"/.exec(html)?.[1];
  if (!csrf) throw new Error(`not signed in: ${html.slice(0, 400)}`);
  const post = (path: string, fields: Record<string, string>) =>
    browser.request(portal(path), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: t.url },
      body: new URLSearchParams({ ...fields, _csrf: csrf }).toString(),
    });
  return { browser, post };
}

/** 32 hex digits with or without hyphens: what PostgreSQL's uuid type and UUID parsers read as an id. */
const ID_SHAPED = { test: (s: string) => /^[0-9a-f]{32}$/i.test(s.replaceAll('-', '')) };
const compact = (id: string) => id.replaceAll('-', '');

test('no organization slug is shaped like an id: create, PUT, PATCH and the portal refuse one (422); generated ones never are', async (tt) => {
  for (const slug of [globex.id, globex.id.toUpperCase(), '00000000-0000-0000-0000-000000000000', compact(globex.id)]) {
    const created = await api('POST', '/organizations', { name: 'Impostor', slug });
    tt.is(created.status, 422, slug);
    tt.is(created.body.errors[0].field, 'slug');
    tt.regex(created.body.detail, /slug/);
  }
  const patched = await api('PATCH', `/organizations/${acme.id}`, { slug: globex.id });
  tt.is(patched.status, 422);
  tt.regex(patched.body.errors[0].message, /must not look like an id/i);
  tt.is((await api('PUT', `/organizations/${acme.id}`, { name: 'Acme', slug: globex.id })).status, 422);
  tt.is((await api('PATCH', `/organizations/${acme.id}`, { slug: compact(globex.id) })).status, 422, 'the compact form too');

  // A name that is an id: its generated slug is not one, on create and on PUT's regeneration.
  const named = await api('POST', '/organizations', { name: globex.id });
  tt.is(named.status, 201);
  tt.false(ID_SHAPED.test(named.body.slug), named.body.slug);
  const renamed = await api('PUT', `/organizations/${named.body.id}`, { name: acme.id, slug: null });
  tt.is(renamed.status, 200);
  tt.false(ID_SHAPED.test(renamed.body.slug), renamed.body.slug);

  // The organization's admin in the portal's settings form.
  const ada = await signedIn('ada');
  const form = await ada.post(`organizations/${acme.id}/settings`, { name: 'Acme', slug: globex.id });
  tt.is(form.status, 422);
  tt.regex(await form.text(), /must not look like an id/i);
  const compactForm = await ada.post(`organizations/${acme.id}/settings`, { name: 'Acme', slug: compact(globex.id) });
  tt.is(compactForm.status, 422);
  tt.regex(await compactForm.text(), /must not look like an id/i);
  tt.is((await api('GET', `/organizations/${acme.id}`)).body.slug, acme.slug, 'the slug is unchanged');
});

test('no team slug is shaped like an id: the Admin API and the portal refuse one (422); generated ones never are', async (tt) => {
  const created = await api('POST', `/organizations/${acme.id}/teams`, { name: 'Impostor', slug: globexTeam.id });
  tt.is(created.status, 422);
  tt.is(created.body.errors[0].field, 'slug');
  const patched = await api('PATCH', `/organizations/${acme.id}/teams/${ops.id}`, { slug: ops.id });
  tt.is(patched.status, 422);
  tt.is((await api('PATCH', `/organizations/${acme.id}/teams/${ops.id}`, { slug: compact(globexTeam.id) })).status, 422, 'the compact form too');
  tt.regex(patched.body.errors[0].message, /must not look like an id/i);
  const named = await api('POST', `/organizations/${acme.id}/teams`, { name: globexTeam.id });
  tt.is(named.status, 201);
  tt.false(ID_SHAPED.test(named.body.slug), named.body.slug);

  const ada = await signedIn('ada');
  const create = await ada.post(`organizations/${acme.id}/teams`, { name: 'Impostor', slug: globexTeam.id, description: '' });
  tt.is(create.status, 422);
  tt.regex(await create.text(), /must not look like an id/i);
  const edit = await ada.post(`organizations/${acme.id}/teams/${ops.id}`, { name: 'Ops', slug: globexTeam.id, description: '' });
  tt.is(edit.status, 422);
  tt.regex(await edit.text(), /must not look like an id/i);
  tt.is((await api('GET', `/organizations/${acme.id}/teams/${ops.id}`)).body.slug, 'ops');
});

test("a rejected organization's owner can't delete it (page, form: 409) nor so create another; a tenant administrator removes it", async (tt) => {
  const rita = await signedIn('rita');
  const made = await rita.post('organizations', { name: 'Retry Co' });
  tt.is(made.status, 303);
  const orgId = /organizations\/([0-9a-f-]{36})\//.exec(made.headers.get('location')!)![1]!;
  tt.is((await api('POST', `/organizations/${orgId}/reject`, { reason: 'We could not verify this company.' })).status, 200);

  const pageRes = await rita.browser.request(portal(`organizations/${orgId}/delete`));
  tt.is(pageRes.status, 409);
  tt.regex(await pageRes.text(), /tenant administrator removes it/);
  const slug = (await api('GET', `/organizations/${orgId}`)).body.slug;
  const posted = await rita.post(`organizations/${orgId}/delete`, { confirm_slug: slug });
  tt.is(posted.status, 409);
  tt.regex(await posted.text(), /tenant administrator removes it/);
  tt.is((await api('GET', `/organizations/${orgId}`)).body.status, 'rejected', 'still there');
  tt.false((await api('GET', `/organizations/${orgId}/audit-log?limit=50`)).body.data.some((e: { action: string }) => e.action === 'organization.deleted'));

  // It still counts: no second organization.
  const again = await rita.post('organizations', { name: 'Retry Co Again' });
  tt.is(again.status, 422);
  tt.regex(await again.text(), /You have already created an organization/);

  // The tenant removes it.
  tt.is((await api('DELETE', `/organizations/${orgId}`)).status, 204);
  tt.is((await api('GET', `/organizations/${orgId}`)).status, 404);
});

test('a suspended organization sends no invitation (create, resend: 409) and nobody joins through one (page and form: 409)', async (tt) => {
  const frozen = (await api('POST', '/organizations', { name: 'Frozen Co' })).body;
  const invitee = 'late@boundaries.test';
  const inv = await api('POST', `/organizations/${frozen.id}/invitations`, { email: invitee, role: 'member' });
  tt.is(inv.status, 201);
  const mail = await smtp.waitFor(invitee, /invited to join Frozen Co/);
  const link = /https?:\/\/[^\s"<>]+\/invitations\/[A-Za-z0-9_-]+/.exec(String(mail.text))![0];
  tt.is((await api('PATCH', `/organizations/${frozen.id}`, { status: 'suspended', status_reason: 'unpaid' })).status, 200);

  const again = await api('POST', `/organizations/${frozen.id}/invitations`, { email: 'other@boundaries.test', role: 'member' });
  tt.is(again.status, 409);
  tt.regex(again.body.detail, /suspended/);
  const resent = await api('POST', `/organizations/${frozen.id}/invitations/${inv.body.id}/resend`);
  tt.is(resent.status, 409);
  tt.regex(resent.body.detail, /suspended/);

  const browser = new Browser(t.url);
  const shown = await browser.request(link);
  tt.is(shown.status, 409);
  const html = await shown.text();
  tt.regex(html, /can&#39;t be accepted now|can't be accepted now/);
  tt.notRegex(html, /name="password"|single sign-on|SSO/, 'no form, no SSO');
  const joined = await browser.request(link, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: t.url },
    body: new URLSearchParams({ mode: 'register', name: 'Late Comer', password: 'a long enough password 2026' }).toString(),
  });
  tt.is(joined.status, 409);
  const members = (await api('GET', `/organizations/${frozen.id}/members`)).body.data as unknown[];
  tt.is(members.length, 0, 'nobody joined');
  tt.is((await api('GET', `/users?email=${encodeURIComponent(invitee)}`)).body.data?.length ?? 0, 0, 'no account was made');

  // Active again: the same link works.
  tt.is((await api('PATCH', `/organizations/${frozen.id}`, { status: 'active' })).status, 200);
  tt.is((await new Browser(t.url).request(link)).status, 200);
});

test("team=<id> of a team the person can't use is answered like an unknown team, never naming its organization", async (tt) => {
  const describe = async (team: string) => {
    const err = await tt.throwsAsync(signIn(t, tenant, client, { email: email('dee'), password: PASSWORD, params: { team }, pick: acme.id }));
    tt.is((err as oidc.AuthorizationResponseError).error, 'access_denied', team);
    return String((err as oidc.AuthorizationResponseError).error_description);
  };
  const unknown = randomUUID();
  const foreign = await describe(globexTeam.id);
  tt.false(foreign.includes(globex.id), foreign);
  tt.is(foreign.replace(globexTeam.id, '<team>'), (await describe(unknown)).replace(unknown, '<team>'), 'the same answer whatever the reason');
});

test("team roles: a plain holder of a team role can't grant, change or take it away; the team's admin can", async (tt) => {
  const ada = await signedIn('ada');
  const add = await ada.post(`organizations/${acme.id}/teams/${ops.id}/members`, { user_id: ids.dee!, role: 'deployer' });
  tt.is(add.status, 422);
  tt.regex(await add.text(), /can&#39;t grant permissions|can't grant permissions/);
  const demote = await ada.post(`organizations/${acme.id}/teams/${ops.id}/members/${ids.vic}/role`, { role: 'member' });
  tt.is(demote.status, 422);
  const remove = await ada.post(`organizations/${acme.id}/teams/${ops.id}/members/${ids.vic}/remove`, {});
  tt.is(remove.status, 422);
  tt.regex(await remove.text(), /can&#39;t take away permissions|can't take away permissions/);
  const opsMembers = async () =>
    Object.fromEntries(
      ((await api('GET', `/organizations/${acme.id}/teams/${ops.id}/members`)).body.data as Array<{ user_id: string; roles: string[] }>).map((m) => [
        m.user_id,
        m.roles,
      ]),
    );
  tt.deepEqual((await opsMembers())[ids.vic!], ['deployer'], 'unchanged');
  tt.is((await opsMembers())[ids.dee!], undefined);

  // Tara, the team's admin holding deployer there, may pass it on.
  const tara = await signedIn('tara');
  tt.is((await tara.post(`organizations/${acme.id}/teams/${ops.id}/members`, { user_id: ids.dee!, role: 'deployer' })).status, 303);
  tt.deepEqual((await opsMembers())[ids.dee!], ['deployer']);
  tt.is((await tara.post(`organizations/${acme.id}/teams/${ops.id}/members/${ids.dee}/remove`, {})).status, 303);
});

/** Fresh people in Acme (so the tests above keep theirs), and a team holding `deployer`. */
type Crew = Record<'p1' | 'p2' | 'p3' | 'p4' | 'plain' | 'team', string>;
async function releaseCrew(tag: string): Promise<Crew> {
  const made: Record<string, string> = {};
  for (const k of ['p1', 'p2', 'p3', 'p4', 'plain']) {
    const id = (await api('POST', '/users', { email: email(`${tag}-${k}`), password: PASSWORD, email_verified: true })).body.id;
    const r = await api('POST', `/organizations/${acme.id}/members`, { user_id: id, role: 'member' });
    if (r.status !== 201) throw new Error(r.text);
    made[k] = id;
  }
  const team = (await api('POST', `/organizations/${acme.id}/teams`, { name: `Release ${tag}` })).body as { id: string };
  for (const k of ['p1', 'p2', 'p3', 'p4']) {
    const r = await api('POST', `/organizations/${acme.id}/teams/${team.id}/members`, { user_id: made[k], roles: ['deployer'] });
    if (r.status !== 201) throw new Error(r.text);
  }
  return { ...made, team: team.id } as Crew;
}

/** An organization admin who holds deploy:prod through an organization role (`shipper`). */
async function shipperAdmin(tag: string) {
  await api('POST', `/organizations/${acme.id}/roles`, { name: 'shipper', permissions: ['deploy:prod'] });
  const id = (await api('POST', '/users', { email: email(`${tag}-ivy`), password: PASSWORD, email_verified: true })).body.id;
  const r = await api('POST', `/organizations/${acme.id}/members`, { user_id: id, roles: ['admin', 'shipper'] });
  if (r.status !== 201) throw new Error(r.text);
  return `${tag}-ivy`;
}

const TAKE_AWAY_DEPLOY = /can(&#39;|')t take away permissions you do not hold yourself: deploy:prod/;

test("removing someone from the organization takes away their team roles: an admin lacking the permission can't; owners, tenant administrators and holders can", async (tt) => {
  const crew = await releaseCrew('rm');
  const acmeMember = async (id: string) => (await api('GET', `/organizations/${acme.id}/members/${id}`)).status;
  const inTeam = async (id: string) =>
    ((await api('GET', `/organizations/${acme.id}/teams/${crew.team}/members`)).body.data as Array<{ user_id: string }>).some((m) => m.user_id === id);

  // Ada, an admin of Acme without deploy:prod (a plain deployer in Ops does not count), is refused.
  const ada = await signedIn('ada');
  const refused = await ada.post(`organizations/${acme.id}/members/${crew.p1}/remove`, {});
  tt.is(refused.status, 409);
  const text = await refused.text();
  tt.regex(text, TAKE_AWAY_DEPLOY);
  tt.notRegex(text, /can(&#39;|')t grant/);
  tt.is(await acmeMember(crew.p1), 200, 'still a member');
  tt.true(await inTeam(crew.p1), 'still a deployer of the team');
  tt.false(
    ((await api('GET', `/organizations/${acme.id}/audit-log?limit=100`)).body.data as Array<{ action: string; target_id: string }>).some(
      (e) => e.action === 'member.removed' && e.target_id === crew.p1,
    ),
  );
  // Someone without team roles she may remove.
  tt.is((await ada.post(`organizations/${acme.id}/members/${crew.plain}/remove`, {})).status, 303);
  tt.is(await acmeMember(crew.plain), 404);

  // The owner, the tenant (Admin API), an admin holding deploy:prod, and the team's own admin may.
  const owen = await signedIn('owen');
  tt.is((await owen.post(`organizations/${acme.id}/members/${crew.p1}/remove`, {})).status, 303);
  tt.is(await acmeMember(crew.p1), 404);
  tt.false(await inTeam(crew.p1));
  tt.is((await api('DELETE', `/organizations/${acme.id}/members/${crew.p2}`)).status, 204);
  tt.false(await inTeam(crew.p2));
  const ivy = await signedIn(await shipperAdmin('rm'));
  tt.is((await ivy.post(`organizations/${acme.id}/members/${crew.p3}/remove`, {})).status, 303);
  tt.false(await inTeam(crew.p3));
  // Ada made the team's admin (and a deployer there) may take deployer away in that team.
  tt.is((await api('POST', `/organizations/${acme.id}/teams/${crew.team}/members`, { user_id: ids.ada, roles: ['admin', 'deployer'] })).status, 201);
  tt.is((await ada.post(`organizations/${acme.id}/members/${crew.p4}/remove`, {})).status, 303);
  tt.false(await inTeam(crew.p4));
});

test("a refused removal of an organization member says it can't take away (not grant) what the remover lacks", async (tt) => {
  await api('POST', `/organizations/${acme.id}/roles`, { name: 'signer', permissions: ['release:sign'] });
  const id = (await api('POST', '/users', { email: email('signer'), password: PASSWORD, email_verified: true })).body.id;
  tt.is((await api('POST', `/organizations/${acme.id}/members`, { user_id: id, roles: ['member', 'signer'] })).status, 201);
  const ada = await signedIn('ada');
  const refused = await ada.post(`organizations/${acme.id}/members/${id}/remove`, {});
  tt.is(refused.status, 409);
  const text = await refused.text();
  tt.regex(text, /can(&#39;|')t take away permissions you do not hold yourself: release:sign/);
  tt.notRegex(text, /can(&#39;|')t grant/);
  tt.is((await api('GET', `/organizations/${acme.id}/members/${id}`)).status, 200);
});

test("deleting a team takes away its members' team roles: an admin lacking the permission can't; owners, tenant administrators and holders can", async (tt) => {
  const teamOf = async (tag: string) => (await releaseCrew(tag)).team;
  const exists = async (teamId: string) => (await api('GET', `/organizations/${acme.id}/teams/${teamId}`)).status;
  const [a, b, c] = [await teamOf('del-a'), await teamOf('del-b'), await teamOf('del-c')];

  const ada = await signedIn('ada');
  const refused = await ada.post(`organizations/${acme.id}/teams/${a}/delete`, {});
  tt.is(refused.status, 409);
  tt.regex(await refused.text(), TAKE_AWAY_DEPLOY);
  tt.is(await exists(a), 200, 'the team and its deployers stay');
  tt.is(((await api('GET', `/organizations/${acme.id}/teams/${a}/members`)).body.data as unknown[]).length, 4);
  // A team whose members hold no role carrying a permission she lacks goes.
  const plainTeam = (await api('POST', `/organizations/${acme.id}/teams`, { name: 'Plain' })).body.id as string;
  tt.is((await api('POST', `/organizations/${acme.id}/teams/${plainTeam}/members`, { user_id: ids.dee, roles: ['member'] })).status, 201);
  tt.is((await ada.post(`organizations/${acme.id}/teams/${plainTeam}/delete`, {})).status, 303);
  tt.is(await exists(plainTeam), 404);

  const owen = await signedIn('owen');
  tt.is((await owen.post(`organizations/${acme.id}/teams/${a}/delete`, {})).status, 303);
  tt.is(await exists(a), 404);
  tt.is((await api('DELETE', `/organizations/${acme.id}/teams/${b}`)).status, 204);
  tt.is(await exists(b), 404);
  const ivy = await signedIn(await shipperAdmin('del'));
  tt.is((await ivy.post(`organizations/${acme.id}/teams/${c}/delete`, {})).status, 303);
  tt.is(await exists(c), 404);
});
