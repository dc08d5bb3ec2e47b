import test from 'ava';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { lastRequestOnceItIs, membersOf, scimWorld } from '../helpers/scim.ts';

// Okta's provisioning sequence, as its SCIM 2.0 protocol reference and test suite send it: look
// the user up by userName, create, read, replace (PUT), deactivate and reactivate with PATCH (and
// with PUT, as older Okta apps do), push a group, rename it, add and remove members, delete it.

let t: TestApp;
test.before(async () => {
  t = await startTestApp();
});
test.after.always(async () => {
  await t?.stop();
});

const PATCH = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
const USER = 'urn:ietf:params:scim:schemas:core:2.0:User';

const oktaUser = (userName: string, given: string, family: string, active = true) => ({
  schemas: [USER],
  userName,
  name: { givenName: given, familyName: family },
  emails: [{ primary: true, value: userName, type: 'work' }],
  displayName: `${given} ${family}`,
  locale: 'en-US',
  externalId: `00u${given.toLowerCase()}`,
  groups: [],
  password: 'Okta sends one when password sync is on',
  active,
});

test('users: lookup, create, read, replace, deactivate, reactivate — the account and its membership follow', async (tt) => {
  const w = await scimWorld(t, { provider: 'okta', directory: { default_role: 'member' } });

  const probe = await w.scim('GET', '/Users?count=1&startIndex=1');
  tt.is(probe.status, 200);
  tt.is(probe.type, 'application/scim+json; charset=utf-8');
  tt.is(probe.body.totalResults, 0);
  const lookup = await w.scim('GET', `/Users?filter=${encodeURIComponent('userName eq "ada@example.com"')}&startIndex=1&count=100`);
  tt.deepEqual([lookup.status, lookup.body.totalResults, lookup.body.Resources], [200, 0, []]);

  const created = await w.scim('POST', '/Users', oktaUser('ada@example.com', 'Ada', 'Lovelace'));
  tt.is(created.status, 201, JSON.stringify(created.body));
  const id = created.body.id;
  tt.is(created.headers.get('location'), `${w.base}/Users/${id}`);
  tt.is(created.headers.get('etag'), 'W/"1"');
  tt.like(created.body, { userName: 'ada@example.com', active: true, externalId: '00uada', locale: 'en-US', meta: { resourceType: 'User', version: 'W/"1"' } });
  tt.false('password' in created.body, 'the password is never stored nor returned');
  tt.deepEqual(await membersOf(w), { 'ada@example.com': ['member'] });
  const account = (await w.api('GET', `/users?email=ada@example.com`)).body.data[0];
  tt.like(account, { email: 'ada@example.com', name: 'Ada Lovelace', email_verified: true, disabled: false });

  const found = await w.scim('GET', `/Users?filter=${encodeURIComponent('userName eq "ADA@example.com"')}`);
  tt.is(found.body.totalResults, 1, 'userName compares without regard to case');
  tt.is((await w.scim('GET', `/Users/${id}`)).body.name.givenName, 'Ada');

  const replaced = await w.scim('PUT', `/Users/${id}`, { ...oktaUser('ada@example.com', 'Ada', 'King'), id });
  tt.is(replaced.status, 200);
  tt.is(replaced.body.name.familyName, 'King');
  tt.is(replaced.headers.get('etag'), 'W/"2"');
  tt.is((await w.api('GET', `/users/${account.id}`)).body.name, 'Ada King');

  const off = await w.scim('PATCH', `/Users/${id}`, { schemas: [PATCH], Operations: [{ op: 'replace', value: { active: false } }] });
  tt.is(off.status, 200);
  tt.false(off.body.active);
  tt.deepEqual(await membersOf(w), {}, 'deactivation ends the membership');
  tt.true((await w.api('GET', `/users/${account.id}`)).body.disabled, 'an account the directory made, now in no organization, is disabled');

  const on = await w.scim('PATCH', `/Users/${id}`, { schemas: [PATCH], Operations: [{ op: 'replace', value: { active: true } }] });
  tt.true(on.body.active);
  tt.deepEqual(await membersOf(w), { 'ada@example.com': ['member'] });
  tt.false((await w.api('GET', `/users/${account.id}`)).body.disabled, 'reactivation enables the account this directory disabled');

  // Older Okta apps deactivate with a PUT carrying active: false.
  const putOff = await w.scim('PUT', `/Users/${id}`, { ...oktaUser('ada@example.com', 'Ada', 'King', false), id });
  tt.false(putOff.body.active);
  tt.deepEqual(await membersOf(w), {});

  const audit = await w.api('GET', `/organizations/${w.orgId}/audit-log?limit=200`);
  tt.is(audit.status, 200);
  const actions = audit.body.data.filter((e: any) => e.actor?.type === 'scim_directory').map((e: any) => e.action);
  for (const a of ['scim.user_created', 'scim.user_updated', 'scim.user_deactivated', 'scim.user_reactivated', 'member.added', 'member.removed'])
    tt.true(actions.includes(a), `${a} is audited with the directory as the actor`);
  const last = await lastRequestOnceItIs(
    async () => (await w.api('GET', `/organizations/${w.orgId}/directories/${w.directoryId}`)).body,
    (l) => l.method === 'PUT',
  );
  tt.like(last, { method: 'PUT', path: `/Users/${id}`, status: 200 });
  tt.regex(String(last?.outcome), /deactivated ada@example.com/);
});

test('groups: push, rename, add and remove members, delete — roles follow the group mapping, owner never granted', async (tt) => {
  const w = await scimWorld(t, { provider: 'okta', directory: { default_role: 'member', group_roles: { Admins: 'admin', Finance: 'billing' } } });
  const ada = (await w.scim('POST', '/Users', oktaUser('ada@example.com', 'Ada', 'Lovelace'))).body.id;
  const bob = (await w.scim('POST', '/Users', oktaUser('bob@example.com', 'Bob', 'Builder'))).body.id;
  tt.deepEqual(await membersOf(w), { 'ada@example.com': ['member'], 'bob@example.com': ['member'] });

  const pushed = await w.scim('POST', '/Groups', { schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'], displayName: 'Engineering', members: [] });
  tt.is(pushed.status, 201, JSON.stringify(pushed.body));
  const gid = pushed.body.id;
  tt.deepEqual(pushed.body.members, []);

  const add = await w.scim('PATCH', `/Groups/${gid}`, {
    schemas: [PATCH],
    Operations: [
      {
        op: 'add',
        path: 'members',
        value: [
          { value: ada, display: 'ada@example.com' },
          { value: bob, display: 'bob@example.com' },
        ],
      },
    ],
  });
  tt.is(add.status, 200, JSON.stringify(add.body));
  tt.is(add.body.members.length, 2);
  tt.deepEqual(await membersOf(w), { 'ada@example.com': ['member'], 'bob@example.com': ['member'] }, 'an unmapped group changes nothing');

  const renamed = await w.scim('PATCH', `/Groups/${gid}`, { schemas: [PATCH], Operations: [{ op: 'replace', value: { id: gid, displayName: 'Admins' } }] });
  tt.is(renamed.body.displayName, 'Admins');
  tt.deepEqual(await membersOf(w), { 'ada@example.com': ['admin'], 'bob@example.com': ['admin'] }, 'a rename into a mapped name changes every member');

  const removed = await w.scim('PATCH', `/Groups/${gid}`, { schemas: [PATCH], Operations: [{ op: 'remove', path: `members[value eq "${bob}"]` }] });
  tt.is(removed.status, 200, JSON.stringify(removed.body));
  tt.deepEqual(
    removed.body.members.map((m: any) => m.value),
    [ada],
  );
  tt.deepEqual(await membersOf(w), { 'ada@example.com': ['admin'], 'bob@example.com': ['member'] });

  const finance = await w.scim('POST', '/Groups', { displayName: 'Finance', members: [{ value: ada }] });
  tt.deepEqual(
    finance.body.members.map((m: any) => m.value),
    [ada],
  );
  tt.deepEqual((await membersOf(w))['ada@example.com'], ['admin', 'billing'], 'roles of every mapped group');

  // Okta's group push replaces the whole group with PUT.
  const put = await w.scim('PUT', `/Groups/${gid}`, { displayName: 'Admins', members: [{ value: bob }] });
  tt.deepEqual(
    put.body.members.map((m: any) => m.value),
    [bob],
  );
  tt.deepEqual(await membersOf(w), { 'ada@example.com': ['billing'], 'bob@example.com': ['admin'] });

  tt.is((await w.scim('DELETE', `/Groups/${gid}`)).status, 204);
  tt.is((await w.scim('GET', `/Groups/${gid}`)).status, 404);
  tt.deepEqual(await membersOf(w), { 'ada@example.com': ['billing'], 'bob@example.com': ['member'] }, 'a deleted group takes its roles along');

  // An administrator changes the mapping: roles follow at once.
  const changed = await w.api('PATCH', `/organizations/${w.orgId}/directories/${w.directoryId}`, { group_roles: { Finance: 'admin' } });
  tt.is(changed.status, 200);
  tt.deepEqual(await membersOf(w), { 'ada@example.com': ['admin'], 'bob@example.com': ['member'] });
  const owner = await w.api('PATCH', `/organizations/${w.orgId}/directories/${w.directoryId}`, { group_roles: { Finance: 'owner' } });
  tt.is(owner.status, 422, 'a group never maps to owner');
});
