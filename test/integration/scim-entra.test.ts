import test from 'ava';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { membersOf, scimWorld } from '../helpers/scim.ts';

// Microsoft Entra ID's provisioning, as "Develop a SCIM endpoint" documents its requests: look up
// by userName, create with the enterprise extension, PATCH with capitalised ops, value paths and
// "False" strings, look groups up without members, add and remove members with PATCH, probe a
// membership with `id eq … and members[value eq …]`, delete.

let t: TestApp;
test.before(async () => {
  t = await startTestApp();
});
test.after.always(async () => t?.stop());

const PATCH = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
const ENTERPRISE = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';
const q = (filter: string, extra = '') => `?filter=${encodeURIComponent(filter)}${extra}`;

const entraUser = (upn: string, mail: string, objectId: string) => ({
  schemas: ['urn:ietf:params:scim:schemas:core:2.0:User', ENTERPRISE],
  externalId: objectId,
  userName: upn,
  active: true,
  emails: [{ primary: true, type: 'work', value: mail }],
  meta: { resourceType: 'User' },
  name: { formatted: 'Ivy Chen', familyName: 'Chen', givenName: 'Ivy' },
  roles: [],
  [ENTERPRISE]: { department: 'Research', employeeNumber: '1001' },
});

test('users: Entra creates, updates with value paths, disables with "False", re-enables and deletes', async (tt) => {
  const w = await scimWorld(t, { provider: 'entra' });
  const none = await w.scim('GET', `/Users${q('userName eq "ivy@contoso.onmicrosoft.test"')}`);
  tt.is(none.body.totalResults, 0);

  const created = await w.scim('POST', '/Users', entraUser('ivy@contoso.onmicrosoft.test', 'ivy@example.com', 'a1b2c3'));
  tt.is(created.status, 201, JSON.stringify(created.body));
  const id = created.body.id;
  tt.deepEqual(created.body[ENTERPRISE], { department: 'Research', employeeNumber: '1001' }, 'the enterprise extension is kept and returned');
  tt.deepEqual(await membersOf(w), { 'ivy@example.com': ['member'] }, 'the primary email is the account, not the UPN');

  tt.is((await w.scim('GET', `/Users${q('externalId eq "a1b2c3"')}`)).body.Resources[0].id, id);
  tt.is((await w.scim('GET', `/Users${q('emails.value eq "IVY@example.com"')}`)).body.totalResults, 1);
  tt.is((await w.scim('GET', `/Users${q('emails[type eq "work" and value eq "x"]')}`)).status, 400, 'one comparison inside brackets');

  const updated = await w.scim('PATCH', `/Users/${id}`, {
    schemas: [PATCH],
    Operations: [
      { op: 'Replace', path: 'emails[type eq "work"].value', value: 'ivy.chen@example.com' },
      { op: 'Replace', path: 'name.familyName', value: 'Chen-Li' },
      { op: 'Add', path: `${ENTERPRISE}:department`, value: 'Platform' },
      { op: 'Replace', path: 'userName', value: 'ivy.chen@contoso.onmicrosoft.test' },
    ],
  });
  tt.is(updated.status, 200, JSON.stringify(updated.body));
  tt.is(updated.body.userName, 'ivy.chen@contoso.onmicrosoft.test');
  tt.is(updated.body.name.familyName, 'Chen-Li');
  tt.is(updated.body[ENTERPRISE].department, 'Platform');
  tt.deepEqual(await membersOf(w), { 'ivy.chen@example.com': ['member'] }, 'the account the directory made follows its email (on a verified domain)');

  // A no-path op carrying an object, with dotted keys, as Entra sends when several attributes change.
  const noPath = await w.scim('PATCH', `/Users/${id}`, {
    schemas: [PATCH],
    Operations: [{ op: 'replace', value: { 'name.givenName': 'Ivy Q', displayName: 'Ivy Q Chen-Li' } }],
  });
  tt.is(noPath.status, 200, JSON.stringify(noPath.body));
  tt.is(noPath.body.name.givenName, 'Ivy Q');

  const off = await w.scim('PATCH', `/Users/${id}`, { schemas: [PATCH], Operations: [{ op: 'Replace', path: 'active', value: 'False' }] });
  tt.false(off.body.active);
  tt.deepEqual(await membersOf(w), {});
  const account = (await w.api('GET', '/users?email=ivy.chen@example.com')).body.data[0];
  tt.true(account.disabled);
  const on = await w.scim('PATCH', `/Users/${id}`, { schemas: [PATCH], Operations: [{ op: 'Replace', path: 'active', value: 'True' }] });
  tt.true(on.body.active);
  tt.false((await w.api('GET', `/users/${account.id}`)).body.disabled);
  tt.deepEqual(await membersOf(w), { 'ivy.chen@example.com': ['member'] });

  tt.is((await w.scim('DELETE', `/Users/${id}`)).status, 204);
  tt.is((await w.scim('GET', `/Users/${id}`)).status, 404);
  tt.deepEqual(await membersOf(w), {});
  tt.true((await w.api('GET', `/users/${account.id}`)).body.disabled, 'deleted: the account it made, in no organization, is disabled');
});

test('groups: Entra creates, finds without members, adds and removes members, probes membership, renames, deletes', async (tt) => {
  const w = await scimWorld(t, { provider: 'entra', directory: { group_roles: { 'Tessera Admins': 'admin' } } });
  const a = (await w.scim('POST', '/Users', entraUser('jo@contoso.test', 'jo@example.com', 'o-jo'))).body.id;
  const b = (await w.scim('POST', '/Users', entraUser('kim@contoso.test', 'kim@example.com', 'o-kim'))).body.id;

  const created = await w.scim('POST', '/Groups', {
    schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group', 'http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/Group'],
    externalId: 'g-8aa1',
    displayName: 'Tessera Admins',
    meta: { resourceType: 'Group' },
  });
  tt.is(created.status, 201, JSON.stringify(created.body));
  const gid = created.body.id;
  const found = await w.scim('GET', `/Groups${q('displayName eq "tessera admins"', '&excludedAttributes=members')}`);
  tt.is(found.body.totalResults, 1);
  tt.false('members' in found.body.Resources[0], 'excludedAttributes=members');
  tt.is(found.body.Resources[0].id, gid);

  const add = await w.scim('PATCH', `/Groups/${gid}`, {
    schemas: [PATCH],
    Operations: [
      {
        op: 'Add',
        path: 'members',
        value: [
          { $ref: null, value: a },
          { $ref: null, value: b },
        ],
      },
    ],
  });
  tt.is(add.status, 200, JSON.stringify(add.body));
  tt.deepEqual(await membersOf(w), { 'jo@example.com': ['admin'], 'kim@example.com': ['admin'] });

  const probe = (user: string) => w.scim('GET', `/Groups${q(`id eq "${gid}" and members[value eq "${user}"]`, '&excludedAttributes=members')}`);
  tt.is((await probe(a)).body.totalResults, 1);

  const remove = await w.scim('PATCH', `/Groups/${gid}`, {
    schemas: [PATCH],
    Operations: [{ op: 'Remove', path: 'members', value: [{ $ref: null, value: b }] }],
  });
  tt.is(remove.status, 200, JSON.stringify(remove.body));
  tt.is((await probe(b)).body.totalResults, 0);
  tt.deepEqual(await membersOf(w), { 'jo@example.com': ['admin'], 'kim@example.com': ['member'] });

  const renamed = await w.scim('PATCH', `/Groups/${gid}`, { schemas: [PATCH], Operations: [{ op: 'Replace', path: 'displayName', value: 'Former Admins' }] });
  tt.is(renamed.body.displayName, 'Former Admins');
  tt.deepEqual(await membersOf(w), { 'jo@example.com': ['member'], 'kim@example.com': ['member'] }, 'renamed out of the mapping: the role goes');

  const page = await w.scim('GET', '/Groups?startIndex=1&count=1');
  tt.like(page.body, { totalResults: 1, startIndex: 1, itemsPerPage: 1 });
  tt.deepEqual(
    page.body.Resources[0].members.map((m: any) => m.value),
    [a],
  );
  tt.is((await w.scim('DELETE', `/Groups/${gid}`)).status, 204);
  tt.is((await w.scim('GET', '/Groups')).body.totalResults, 0);
});
