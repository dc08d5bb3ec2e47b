import test from 'ava';
import { decodeJwt, type JWTPayload } from 'jose';
import * as oidc from 'openid-client';
import { inTenant } from '../../src/db/tenant-scope.ts';
import { adminApi, createTenant, startTestApp, type TestApp, type TestTenant, webClient } from '../helpers/app.ts';
import { Browser, enterCredentials } from '../helpers/browser.ts';
import { type RegisteredClient, signIn } from '../helpers/oidc.ts';
import { scimWorld } from '../helpers/scim.ts';

let t: TestApp;
let tenant: TestTenant;
let other: TestTenant;
let client: RegisteredClient;
let acme: { id: string };
let globex: { id: string };
let foreignOrg: string;
let alice: { id: string };
let bob: { id: string };
let outsider: { id: string };
let eng: { id: string; slug: string };
let ops: { id: string; slug: string };
let globexTeam: { id: string; slug: string };

const api = (method: string, path: string, body?: unknown) => adminApi(t, tenant, method, path, body);
const claimsOf = (jwt: string) => decodeJwt(jwt) as JWTPayload & Record<string, any>;
const user = (email: string) => api('POST', '/users', { email, password: 'correct horse battery staple', email_verified: true }).then((r) => r.body);
const aliceSignIn = (params: Record<string, string>) =>
  signIn(t, tenant, client, { email: 'alice@teams.test', password: 'correct horse battery staple', params });

test.before(async () => {
  t = await startTestApp();
  tenant = await createTenant(t);
  other = await createTenant(t);
  client = (await api('POST', '/clients', webClient())).body;
  acme = (await api('POST', '/organizations', { name: 'Acme', max_teams: 5 })).body;
  globex = (await api('POST', '/organizations', { name: 'Globex' })).body;
  foreignOrg = (await adminApi(t, other, 'POST', '/organizations', { name: 'Elsewhere' })).body.id;
  alice = await user('alice@teams.test');
  bob = await user('bob@teams.test');
  outsider = await user('outsider@teams.test');
  for (const u of [alice, bob]) await api('POST', `/organizations/${acme.id}/members`, { user_id: u.id, role: 'member' });
  await api('POST', `/organizations/${globex.id}/members`, { user_id: alice.id, role: 'member' });
  await api('POST', `/organizations/${acme.id}/team-roles`, { name: 'deployer', permissions: ['deploy:prod'] });
  eng = (await api('POST', `/organizations/${acme.id}/teams`, { name: 'Engineering', description: 'Builds it' })).body;
  ops = (await api('POST', `/organizations/${acme.id}/teams`, { name: 'Ops', slug: 'ops' })).body;
  globexTeam = (await api('POST', `/organizations/${globex.id}/teams`, { name: 'Engineering' })).body;
  await api('POST', `/organizations/${acme.id}/teams/${eng.id}/members`, { user_id: alice.id, roles: ['admin', 'deployer'] });
  await api('POST', `/organizations/${acme.id}/teams/${ops.id}/members`, { user_id: alice.id });
  await api('POST', `/organizations/${globex.id}/teams/${globexTeam.id}/members`, { user_id: alice.id });
});
test.after.always(async () => t?.stop());

test('teams: create (slug from the name), get, list paged, patch, audit', async (tt) => {
  tt.is(eng.slug, 'engineering');
  tt.is(globexTeam.slug, 'engineering', 'slugs are unique per organization only');
  const got = await api('GET', `/organizations/${acme.id}/teams/${eng.id}`);
  tt.is(got.status, 200);
  tt.like(got.body, { name: 'Engineering', slug: 'engineering', description: 'Builds it', org_id: acme.id });
  const second = (await api('POST', `/organizations/${acme.id}/teams`, { name: 'Engineering' })).body;
  tt.is(second.slug, 'engineering-2');
  const page1 = await api('GET', `/organizations/${acme.id}/teams?limit=1`);
  tt.is(page1.body.data.length, 1);
  tt.truthy(page1.body.next_cursor);
  const page2 = await api('GET', `/organizations/${acme.id}/teams?limit=200&cursor=${encodeURIComponent(page1.body.next_cursor)}`);
  tt.false(page2.body.data.some((x: any) => x.id === page1.body.data[0].id));
  const patched = await api('PATCH', `/organizations/${acme.id}/teams/${second.id}`, { name: 'Platform', slug: 'platform' });
  tt.like(patched.body, { name: 'Platform', slug: 'platform' });
  const dup = await api('PATCH', `/organizations/${acme.id}/teams/${second.id}`, { slug: 'ops' });
  tt.is(dup.status, 409);
  tt.regex(dup.body.detail, /slug/);
  tt.is((await api('DELETE', `/organizations/${acme.id}/teams/${second.id}`)).status, 204);
  const audit = (await api('GET', `/organizations/${acme.id}/audit-log?limit=200`)).body.data.map((e: any) => e.action);
  for (const action of ['team.created', 'team.updated', 'team.deleted', 'team.member.added', 'team_role.created']) tt.true(audit.includes(action), action);
});

test('bad input is a 4xx that names the problem', async (tt) => {
  for (const [body, field] of [
    [{}, 'name'],
    [{ name: 'x', slug: 'Bad Slug' }, 'slug'],
    [{ name: 'x', color: 'red' }, ''],
  ] as const) {
    const r = await api('POST', `/organizations/${acme.id}/teams`, body);
    tt.is(r.status, 422, JSON.stringify(body));
    tt.is(r.type, 'application/problem+json');
    if (field)
      tt.true(
        r.body.errors.some((e: any) => e.field === field),
        JSON.stringify(r.body),
      );
  }
  const unknownRole = await api('POST', `/organizations/${acme.id}/teams/${ops.id}/members`, { user_id: bob.id, roles: ['nope'] });
  tt.is(unknownRole.status, 422);
  tt.regex(unknownRole.body.detail, /Unknown team role/);
  tt.is((await api('GET', `/organizations/${acme.id}/teams/not-a-uuid`)).status, 404);
  const builtin = await api('POST', `/organizations/${acme.id}/team-roles`, { name: 'admin' });
  tt.is(builtin.status, 409);
});

test('the team limit: 409 past max_teams, and max_teams can not go below the teams there are', async (tt) => {
  const small = (await api('POST', '/organizations', { name: 'Small', max_teams: 1 })).body;
  tt.is(small.max_teams, 1);
  tt.is((await api('POST', `/organizations/${small.id}/teams`, { name: 'One' })).status, 201);
  const over = await api('POST', `/organizations/${small.id}/teams`, { name: 'Two' });
  tt.is(over.status, 409);
  tt.regex(over.body.detail, /limit of 1 teams.*max_teams/);
  const lower = await api('PATCH', `/organizations/${small.id}`, { max_teams: 0 });
  tt.is(lower.status, 422);
  tt.regex(lower.body.detail, /already has 1 teams/);
  tt.is((await api('GET', `/organizations/${globex.id}`)).body.max_teams, 100, 'the default');
});

test('only members of the organization join its teams; other organizations’ and tenants’ ids are 404', async (tt) => {
  const r = await api('POST', `/organizations/${acme.id}/teams/${ops.id}/members`, { user_id: outsider.id });
  tt.is(r.status, 422);
  tt.regex(r.body.detail, /Only members of the organization/);
  tt.is(r.body.errors[0].field, 'user_id');
  // Globex's team through Acme's URL, a foreign tenant's organization.
  tt.is((await api('GET', `/organizations/${acme.id}/teams/${globexTeam.id}`)).status, 404);
  tt.is((await api('GET', `/organizations/${acme.id}/teams/${globexTeam.id}/members`)).status, 404);
  tt.is((await api('POST', `/organizations/${acme.id}/teams/${globexTeam.id}/members`, { user_id: alice.id })).status, 404);
  tt.is((await api('DELETE', `/organizations/${acme.id}/teams/${globexTeam.id}`)).status, 404);
  tt.is((await api('GET', `/organizations/${foreignOrg}/teams`)).status, 404);
  const foreignTeam = (await adminApi(t, other, 'POST', `/organizations/${foreignOrg}/teams`, { name: 'Theirs' })).body;
  tt.is((await api('GET', `/organizations/${acme.id}/teams/${foreignTeam.id}`)).status, 404);
  const dup = await api('POST', `/organizations/${acme.id}/teams/${ops.id}/members`, { user_id: alice.id });
  tt.is(dup.status, 409);
});

test('team members and team roles: list, change roles, role deletion needs force and leaves member', async (tt) => {
  const members = (await api('GET', `/organizations/${acme.id}/teams/${eng.id}/members`)).body.data;
  tt.like(
    members.find((m: any) => m.user_id === alice.id),
    { email: 'alice@teams.test', roles: ['admin', 'deployer'] },
  );
  const roles = (await api('GET', `/organizations/${acme.id}/team-roles`)).body.data;
  tt.deepEqual(
    roles.map((r: any) => [r.name, r.builtin]),
    [
      ['admin', true],
      ['member', true],
      ['deployer', false],
    ],
  );
  const team = (await api('POST', `/organizations/${acme.id}/teams`, { name: 'Roles' })).body;
  const temp = (await api('POST', `/organizations/${acme.id}/team-roles`, { name: 'temp', permissions: ['x:y'] })).body;
  await api('POST', `/organizations/${acme.id}/teams/${team.id}/members`, { user_id: bob.id, roles: ['temp'] });
  tt.like((await api('PATCH', `/organizations/${acme.id}/team-roles/${temp.id}`, { description: 'Temporary' })).body, { description: 'Temporary' });
  const inUse = await api('DELETE', `/organizations/${acme.id}/team-roles/${temp.id}`);
  tt.is(inUse.status, 409);
  tt.regex(inUse.body.detail, /force=true/);
  tt.is((await api('DELETE', `/organizations/${acme.id}/team-roles/${temp.id}?force=true`)).status, 204);
  const bobThere = (await api('GET', `/organizations/${acme.id}/teams/${team.id}/members`)).body.data[0];
  tt.deepEqual(bobThere.roles, ['member'], 'left with no role, keeps member');
  const changed = await api('PATCH', `/organizations/${acme.id}/teams/${team.id}/members/${bob.id}`, { roles: ['admin'] });
  tt.deepEqual(changed.body.roles, ['admin']);
  tt.is((await api('DELETE', `/organizations/${acme.id}/teams/${team.id}/members/${bob.id}`)).status, 204);
  tt.is((await api('PATCH', `/organizations/${acme.id}/teams/${team.id}/members/${bob.id}`, { roles: ['admin'] })).status, 404);
  await api('DELETE', `/organizations/${acme.id}/teams/${team.id}`);
});

test('who may do what: org admins manage teams within their permissions; team admins their team; members nothing', async (tt) => {
  const teams = t.app.services.teams;
  const org = (await api('POST', '/organizations', { name: 'Rules' })).body;
  const [admin, lead, member] = [await user('admin@rules.test'), await user('lead@rules.test'), await user('member@rules.test')];
  await api('POST', `/organizations/${org.id}/roles`, { name: 'billing-reader', permissions: ['billing:read'] });
  await api('POST', `/organizations/${org.id}/members`, { user_id: admin.id, roles: ['admin', 'billing-reader'] });
  await api('POST', `/organizations/${org.id}/members`, { user_id: lead.id, role: 'member' });
  await api('POST', `/organizations/${org.id}/members`, { user_id: member.id, role: 'member' });
  await api('POST', `/organizations/${org.id}/team-roles`, { name: 'deployer', permissions: ['deploy:prod'] });
  await api('POST', `/organizations/${org.id}/team-roles`, { name: 'reader', permissions: ['billing:read'] });
  const as = (u: { id: string }) => ({ type: 'user' as const, id: u.id });
  const status = (p: Promise<unknown>) =>
    p.then(
      () => 200,
      (e: { status?: number }) => e.status,
    );

  // An org admin manages teams, grants what they hold, never what they lack.
  const team = await teams.create(tenant.id, as(admin), org.id, { name: 'Squad' });
  tt.is(await status(teams.addMember(tenant.id, as(admin), org.id, team.id, lead.id, ['admin', 'reader'])), 200);
  tt.is(await status(teams.addMember(tenant.id, as(admin), org.id, team.id, member.id, ['deployer'])), 422, 'a permission the admin lacks');
  tt.is(await status(teams.createRole(tenant.id, as(admin), org.id, { name: 'root', permissions: ['deploy:prod'] })), 422);
  tt.is(
    await status(
      teams.updateRole(tenant.id, as(admin), org.id, (await teams.listRoles(tenant.id, as(admin), org.id)).find((r) => r.name === 'reader')!.id!, {
        permissions: ['billing:read', 'deploy:prod'],
      }),
    ),
    422,
  );

  // A team admin manages that team's members (within the ceiling), not the team, not other teams.
  tt.is(await status(teams.addMember(tenant.id, as(lead), org.id, team.id, member.id, ['member'])), 200);
  tt.is(await status(teams.changeMemberRoles(tenant.id, as(lead), org.id, team.id, member.id, ['deployer'])), 422);
  tt.is(await status(teams.update(tenant.id, as(lead), org.id, team.id, { name: 'Mine now' })), 403);
  tt.is(await status(teams.create(tenant.id, as(lead), org.id, { name: 'Another' })), 403);
  const otherTeam = await teams.create(tenant.id, as(admin), org.id, { name: 'Other' });
  tt.is(await status(teams.addMember(tenant.id, as(lead), org.id, otherTeam.id, member.id, ['member'])), 403);

  // A member: sees, changes nothing; may leave.
  tt.is(await status(teams.list(tenant.id, as(member), org.id, { limit: 10 })), 200);
  tt.is(await status(teams.addMember(tenant.id, as(member), org.id, otherTeam.id, member.id, ['admin'])), 403);
  tt.is(await status(teams.changeMemberRoles(tenant.id, as(member), org.id, team.id, member.id, ['admin'])), 403);
  tt.is(await status(teams.removeMember(tenant.id, as(member), org.id, team.id, lead.id)), 403);
  tt.is(await status(teams.removeMember(tenant.id, as(member), org.id, team.id, member.id)), 200, 'leaving');

  // Not a member of the organization: it does not exist for them.
  tt.is(await status(teams.list(tenant.id, as(outsider), org.id, { limit: 10 })), 404);
  tt.is(await status(teams.addMember(tenant.id, as(outsider), org.id, team.id, outsider.id, ['admin'])), 404);
});

test('cascade: leaving the organization leaves its teams; deleting the organization deletes them', async (tt) => {
  const org = (await api('POST', '/organizations', { name: 'Cascade' })).body;
  const u = await user('cascade@teams.test');
  await api('POST', `/organizations/${org.id}/members`, { user_id: u.id });
  const team = (await api('POST', `/organizations/${org.id}/teams`, { name: 'A' })).body;
  await api('POST', `/organizations/${org.id}/teams/${team.id}/members`, { user_id: u.id });
  tt.is((await api('GET', `/organizations/${org.id}/teams/${team.id}/members`)).body.data.length, 1);
  // Leaving through the account's own API (the same membership.ts path as the portal, SCIM, SSO).
  const s = await signIn(t, tenant, client, { email: 'cascade@teams.test', password: 'correct horse battery staple', params: { organization: org.id } });
  const left = await fetch(`${t.url}/t/${tenant.slug}/api/v1/me/organizations/${org.id}`, {
    method: 'DELETE',
    headers: { authorization: `Bearer ${s.tokens.access_token}` },
  });
  tt.is(left.status, 204);
  tt.deepEqual((await api('GET', `/organizations/${org.id}/teams/${team.id}/members`)).body.data, []);
  const leftEntry = (await api('GET', `/organizations/${org.id}/audit-log?limit=200`)).body.data.find((e: any) => e.action === 'member.left');
  tt.deepEqual(leftEntry.before.teams, [{ team_id: team.id, roles: ['member'] }], 'the audit row says which teams were left');
  // Back in the organization, not back in the team.
  await api('POST', `/organizations/${org.id}/members`, { user_id: u.id });
  tt.deepEqual((await api('GET', `/organizations/${org.id}/teams/${team.id}/members`)).body.data, []);
  await api('POST', `/organizations/${org.id}/teams/${team.id}/members`, { user_id: u.id });
  await api('DELETE', `/organizations/${org.id}/members/${u.id}`);
  tt.deepEqual((await api('GET', `/organizations/${org.id}/teams/${team.id}/members`)).body.data, []);
  tt.is((await api('DELETE', `/organizations/${org.id}`)).status, 204);
  const left2 = await t.app.services.teams.teamsOf(tenant.id, u.id);
  tt.false(left2.has(org.id));
});

test('org-scoped tokens carry org_teams; team=<id or slug> gives a team-scoped token', async (tt) => {
  const scoped = await aliceSignIn({ organization: acme.id });
  const at = claimsOf(scoped.tokens.access_token);
  tt.deepEqual(
    at.org_teams.map((x: any) => [x.slug, x.roles]),
    [
      ['engineering', ['admin', 'deployer']],
      ['ops', ['member']],
    ],
  );
  tt.is(at.team_id, undefined);
  for (const params of [{ organization: acme.id, team: eng.id }, { organization: 'acme', team: 'engineering' }, { team: eng.id }] as Array<
    Record<string, string>
  >) {
    const { tokens } = await aliceSignIn(params);
    for (const claims of [tokens.claims()!, claimsOf(tokens.access_token)]) {
      tt.is(claims.org_id, acme.id, JSON.stringify(params));
      tt.is(claims.team_id, eng.id);
      tt.is(claims.team_slug, 'engineering');
      tt.deepEqual(claims.team_roles, ['admin', 'deployer']);
      tt.deepEqual(claims.team_permissions, ['deploy:prod']);
    }
  }
});

test('team= is refused like organization= for a non-member, and for another organization’s team', async (tt) => {
  const bobSignIn = (params: Record<string, string>) =>
    signIn(t, tenant, client, { email: 'bob@teams.test', password: 'correct horse battery staple', params });
  for (const params of [
    { organization: acme.id, team: eng.id }, // bob is in Acme but not in Engineering
    { organization: acme.id, team: globexTeam.id }, // a team of another organization
    { organization: acme.id, team: 'no-such-team' },
  ]) {
    const err = await tt.throwsAsync(bobSignIn(params));
    tt.is((err as oidc.AuthorizationResponseError).error, 'access_denied', JSON.stringify(params));
    tt.regex(String((err as oidc.AuthorizationResponseError).error_description), /not a member/);
  }
  const err = await tt.throwsAsync(aliceSignIn({ organization: acme.id, team: globexTeam.id }));
  tt.is((err as oidc.AuthorizationResponseError).error, 'access_denied');
});

test('refresh_token grant with team=, switch API with { team }; leaving the team revokes the team-scoped sign-in', async (tt) => {
  const s = await aliceSignIn({ organization: acme.id });
  const toTeam = await oidc.refreshTokenGrant(s.config, s.tokens.refresh_token!, { team: 'ops' });
  tt.is(claimsOf(toTeam.access_token).team_slug, 'ops');
  const kept = await oidc.refreshTokenGrant(s.config, toTeam.refresh_token!);
  tt.is(claimsOf(kept.access_token).team_id, ops.id, 'a refresh keeps the team');
  for (const team of [globexTeam.id, 'nope', '']) {
    const err = await tt.throwsAsync(oidc.refreshTokenGrant(s.config, kept.refresh_token!, { team }));
    tt.is((err as oidc.ResponseBodyError).error, 'invalid_target', team);
  }
  const withOrg = await oidc.refreshTokenGrant(s.config, kept.refresh_token!, { organization: globex.id, team: globexTeam.id });
  tt.like(claimsOf(withOrg.access_token), { org_id: globex.id, team_id: globexTeam.id });
  const orgOnly = await oidc.refreshTokenGrant(s.config, withOrg.refresh_token!, { organization: acme.id });
  tt.is(claimsOf(orgOnly.access_token).team_id, undefined, 'organization= alone works in no team');

  // The switch API.
  const sw = (orgId: string, body?: unknown) =>
    fetch(`${t.url}/t/${tenant.slug}/api/v1/me/organizations/${orgId}/switch`, {
      method: 'POST',
      headers: { authorization: `Bearer ${orgOnly.access_token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
  const switched = await sw(acme.id, { team: 'engineering' });
  tt.is(switched.status, 200);
  const answer = await switched.json();
  tt.like(claimsOf(answer.new_token), { org_id: acme.id, team_id: eng.id, team_slug: 'engineering' });
  tt.is(answer.team_id, eng.id);
  tt.is((await sw(acme.id, { team: globexTeam.id })).status, 404);
  tt.is((await sw(acme.id, { team: 42 })).status, 422);
  tt.is((await sw(acme.id)).status, 200, 'no body: the organization only');
  // The list of my organizations says my teams.
  const mine = await (await fetch(`${t.url}/t/${tenant.slug}/api/v1/me/organizations`, { headers: { authorization: `Bearer ${answer.new_token}` } })).json();
  tt.deepEqual(
    mine.data.find((o: any) => o.id === acme.id).teams.map((x: any) => x.slug),
    ['engineering', 'ops'],
  );

  // Leaving the team: the team-scoped sign-in is revoked; its next refresh fails.
  const lead = await aliceSignIn({ organization: acme.id, team: 'ops' });
  await api('DELETE', `/organizations/${acme.id}/teams/${ops.id}/members/${alice.id}`);
  const err = await tt.throwsAsync(oidc.refreshTokenGrant(lead.config, lead.tokens.refresh_token!));
  tt.is((err as oidc.ResponseBodyError).error, 'invalid_grant');
  tt.false((await oidc.tokenIntrospection(lead.config, lead.tokens.access_token)).active);
  await api('POST', `/organizations/${acme.id}/teams/${ops.id}/members`, { user_id: alice.id });
});

test('the account page lists, per organization, the person’s teams and team roles', async (tt) => {
  const browser = new Browser(t.url);
  const start = `${t.url}/t/${tenant.slug}/account/organizations`;
  const first = await browser.follow(start);
  const done = await enterCredentials(browser, await first.res.text(), first.url, 'alice@teams.test', 'correct horse battery staple');
  const html = await done.res.text();
  tt.regex(html, /Your teams/);
  tt.regex(
    html,
    new RegExp(
      `/portal/organizations/${acme.id}/teams/${eng.id}">Engineering</a> <span class="badge admin">admin</span><span class="badge deployer">deployer</span>`,
    ),
  );
  tt.regex(html, new RegExp(`/portal/organizations/${globex.id}/teams/${globexTeam.id}">Engineering</a>`));
});

test('cascade: a person the organization’s SCIM directory deactivates leaves its teams', async (tt) => {
  const w = await scimWorld(t, { tenant });
  const created = await w.scim('POST', '/Users', {
    schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
    userName: 'grace@example.com',
    emails: [{ primary: true, value: 'grace@example.com' }],
    active: true,
  });
  tt.is(created.status, 201);
  const userId = (await api('GET', '/users?email=grace@example.com')).body.data[0].id;
  const team = (await api('POST', `/organizations/${w.orgId}/teams`, { name: 'Directory people' })).body;
  tt.is((await api('POST', `/organizations/${w.orgId}/teams/${team.id}/members`, { user_id: userId })).status, 201);
  const off = await w.scim('PATCH', `/Users/${created.body.id}`, {
    schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
    Operations: [{ op: 'replace', value: { active: false } }],
  });
  tt.is(off.status, 200);
  tt.deepEqual((await api('GET', `/organizations/${w.orgId}/teams/${team.id}/members`)).body.data, []);
  const audit = (await api('GET', `/organizations/${w.orgId}/audit-log?limit=200`)).body.data.map((e: any) => e.action);
  tt.true(audit.includes('member.removed'));
});

test('row-level security binds the team tables: a query forgetting its tenant filter sees only its tenant', async (tt) => {
  const { db } = t.app.connection;
  const theirs = (await adminApi(t, other, 'POST', `/organizations/${foreignOrg}/teams`, { name: 'RLS' })).body;
  tt.truthy(theirs.id);
  // Deliberately no WHERE tenant_id: only RLS stands between the tenants' rows.
  for (const table of ['teams', 'team_members', 'team_roles'] as const) {
    const seen = await inTenant(db, other.id, (tx) => tx.selectFrom(table).select('tenant_id').execute());
    tt.true(
      seen.every((r) => r.tenant_id === other.id),
      table,
    );
  }
  const mine = await inTenant(db, tenant.id, (tx) => tx.selectFrom('teams').select(['tenant_id', 'id']).execute());
  tt.true(mine.length > 0);
  tt.false(mine.some((r) => r.id === theirs.id));
  await tt.throwsAsync(
    inTenant(db, tenant.id, (tx) =>
      tx.insertInto('teams').values({ tenant_id: other.id, org_id: foreignOrg, name: 'Sneaky', slug: 'sneaky', description: null }).execute(),
    ),
    { message: /row-level security/ },
  );
});

test('a client that does not use organizations refuses team= like organization=', async (tt) => {
  const deny = (await api('POST', '/clients', { ...webClient('http://localhost:8080/deny-teams'), organization_usage: 'deny' })).body;
  const err = await tt.throwsAsync(signIn(t, tenant, deny, { email: 'alice@teams.test', password: 'correct horse battery staple', params: { team: eng.id } }));
  tt.is((err as oidc.AuthorizationResponseError).error, 'invalid_request');
});
