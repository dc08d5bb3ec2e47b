import test from 'ava';
import { adminApi, createTenant, startTestApp, type TestApp, type TestTenant } from '../helpers/app.ts';

let t: TestApp;
let tenant: TestTenant;

test.before(async () => {
  t = await startTestApp();
  tenant = await createTenant(t);
});
test.after.always(async () => t?.stop());

const api = (method: string, path: string, body?: unknown) => adminApi(t, tenant, method, path, body);
let userCounter = 0;
async function user(email = `u${++userCounter}-${Date.now()}@x.test`) {
  return (await api('POST', '/users', { email, name: email.split('@')[0] })).body as { id: string; email: string };
}
async function org(body: Record<string, unknown> = {}) {
  const r = await api('POST', '/organizations', { name: `Org ${++userCounter}`, ...body });
  if (r.status !== 201) throw new Error(r.text);
  return r.body as { id: string; slug: string; name: string };
}

test('organizations: create with a generated slug, get, list with search and cursor, PUT, PATCH, delete', async (tt) => {
  const a = await api('POST', '/organizations', { name: 'Acme Café, Inc.', domain: 'Acme-Cafe.example', metadata: { plan: 'pro', seats: 10 } });
  tt.is(a.status, 201);
  tt.is(a.body.slug, 'acme-cafe-inc');
  tt.is(a.body.domain, 'acme-cafe.example');
  tt.is(a.body.status, 'active');
  tt.deepEqual(a.body.metadata, { plan: 'pro', seats: 10 });
  tt.is(a.body.max_members, 50);
  for (const k of ['id', 'name', 'slug', 'domain', 'description', 'website', 'industry', 'status', 'created_at', 'updated_at', 'logo_url'])
    tt.true(k in a.body, k);
  const b = await api('POST', '/organizations', { name: 'Acme Café Inc' });
  tt.is(b.body.slug, 'acme-cafe-inc-2', 'a taken slug gets a suffix');
  tt.is((await api('GET', `/organizations/${a.body.id}`)).body.name, 'Acme Café, Inc.');

  const found = await api('GET', '/organizations?q=cafe');
  tt.deepEqual(found.body.data.map((o: { id: string }) => o.id).sort(), [a.body.id, b.body.id].sort());
  tt.is((await api('GET', '/organizations?q=acme-cafe-inc-2')).body.data.length, 1);
  for (let i = 0; i < 4; i++) await org();
  const seen: string[] = [];
  let cursor: string | null = null;
  do {
    const p: any = await api('GET', `/organizations?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
    seen.push(...p.body.data.map((o: { id: string }) => o.id));
    cursor = p.body.next_cursor;
  } while (cursor);
  tt.is(new Set(seen).size, seen.length);
  tt.true(seen.length >= 6);

  const patched = await api('PATCH', `/organizations/${a.body.id}`, { status: 'trialing', industry: 'Coffee' });
  tt.is(patched.body.status, 'trialing');
  tt.is(patched.body.domain, 'acme-cafe.example', 'PATCH keeps what it was not given');
  const put = await api('PUT', `/organizations/${a.body.id}`, { name: 'Acme Coffee', slug: 'acme-coffee' });
  tt.is(put.status, 200);
  tt.is(put.body.slug, 'acme-coffee');
  tt.is(put.body.domain, null, 'PUT resets what it was not given');
  tt.is(put.body.status, 'active');
  tt.deepEqual(put.body.metadata, {});

  tt.is((await api('DELETE', `/organizations/${a.body.id}`)).status, 204);
  tt.is((await api('GET', `/organizations/${a.body.id}`)).status, 404);
  tt.is((await api('DELETE', `/organizations/${a.body.id}`)).status, 404);
});

test('organizations: duplicate slug or domain is a 409 naming the field', async (tt) => {
  const a = await org({ slug: 'dupe-slug', domain: 'dupe.example' });
  const s = await api('POST', '/organizations', { name: 'x', slug: 'dupe-slug' });
  tt.is(s.status, 409);
  tt.is(s.body.errors[0].field, 'slug');
  const d = await api('POST', '/organizations', { name: 'x', domain: 'DUPE.example' });
  tt.is(d.status, 409);
  tt.is(d.body.errors[0].field, 'domain');
  const other = await org();
  tt.is((await api('PATCH', `/organizations/${other.id}`, { slug: 'dupe-slug' })).status, 409);
  tt.is((await api('PATCH', `/organizations/${a.id}`, { slug: 'dupe-slug' })).status, 200, 'keeping its own slug is fine');
});

test('roles: four built-ins, custom roles with permissions, no duplicates, built-ins stay, in-use needs force', async (tt) => {
  const o = await org();
  const roles = await api('GET', `/organizations/${o.id}/roles`);
  tt.deepEqual(roles.body.data.map((r: { name: string }) => r.name).sort(), ['admin', 'billing', 'member', 'owner']);
  tt.true(roles.body.data.every((r: { builtin: boolean }) => r.builtin));
  const custom = await api('POST', `/organizations/${o.id}/roles`, {
    name: 'accountant',
    description: 'Books',
    permissions: ['invoices:read', 'invoices:read', 'reports:*'],
  });
  tt.is(custom.status, 201);
  tt.deepEqual(custom.body.permissions, ['invoices:read', 'reports:*']);
  tt.is((await api('POST', `/organizations/${o.id}/roles`, { name: 'accountant' })).status, 409);
  tt.is((await api('POST', `/organizations/${o.id}/roles`, { name: 'owner' })).status, 409);
  const patched = await api('PATCH', `/organizations/${o.id}/roles/${custom.body.id}`, { permissions: ['invoices:write'] });
  tt.deepEqual(patched.body.permissions, ['invoices:write']);
  const ownerRole = roles.body.data.find((r: { name: string }) => r.name === 'owner');
  const builtinDelete = await api('DELETE', `/organizations/${o.id}/roles/${ownerRole.id}`);
  tt.is(builtinDelete.status, 409);
  tt.regex(builtinDelete.body.detail, /built-in/);

  const u = await user();
  await api('POST', `/organizations/${o.id}/members`, { user_id: u.id, roles: ['member', 'accountant'] });
  const inUse = await api('DELETE', `/organizations/${o.id}/roles/${custom.body.id}`);
  tt.is(inUse.status, 409);
  tt.regex(inUse.body.detail, /force=true/);
  tt.is((await api('DELETE', `/organizations/${o.id}/roles/${custom.body.id}?force=true`)).status, 204);
  tt.deepEqual((await api('GET', `/organizations/${o.id}/members/${u.id}`)).body.roles, ['member']);
  tt.is((await api('DELETE', `/organizations/${o.id}/roles/${custom.body.id}`)).status, 404);
});

test('members: add with roles, change, remove (the account stays); the last owner is protected', async (tt) => {
  const o = await org();
  const [alice, bob, carol] = [await user(), await user(), await user()];
  const added = await api('POST', `/organizations/${o.id}/members`, { user_id: alice.id, role: 'owner' });
  tt.is(added.status, 201);
  tt.deepEqual(added.body.roles, ['owner']);
  tt.is(added.body.email, alice.email);
  tt.truthy(added.body.joined_at);
  tt.deepEqual((await api('POST', `/organizations/${o.id}/members`, { user_id: bob.id })).body.roles, ['member'], 'member by default');
  tt.deepEqual((await api('POST', `/organizations/${o.id}/members`, { user_id: carol.id, roles: ['billing', 'admin'] })).body.roles, ['admin', 'billing']);
  tt.is((await api('POST', `/organizations/${o.id}/members`, { user_id: bob.id })).status, 409);

  // The last owner can't be removed or demoted…
  const remove = await api('DELETE', `/organizations/${o.id}/members/${alice.id}`);
  tt.is(remove.status, 409);
  tt.regex(remove.body.detail, /last owner/);
  tt.is((await api('PATCH', `/organizations/${o.id}/members/${alice.id}`, { roles: ['admin'] })).status, 409);
  // …but once there is a second owner, either may go.
  tt.deepEqual((await api('PATCH', `/organizations/${o.id}/members/${bob.id}`, { roles: ['owner', 'member'] })).body.roles, ['member', 'owner']);
  tt.deepEqual((await api('PATCH', `/organizations/${o.id}/members/${alice.id}`, { role: 'admin' })).body.roles, ['admin']);
  tt.is((await api('DELETE', `/organizations/${o.id}/members/${bob.id}`)).status, 409, 'bob is now the last owner');

  tt.is((await api('DELETE', `/organizations/${o.id}/members/${carol.id}`)).status, 204);
  tt.is((await api('GET', `/organizations/${o.id}/members/${carol.id}`)).status, 404);
  tt.is((await api('GET', `/users/${carol.id}`)).status, 200, 'removing a member never touches the account');
  const list = await api('GET', `/organizations/${o.id}/members`);
  tt.deepEqual(list.body.data.map((m: { user_id: string }) => m.user_id).sort(), [alice.id, bob.id].sort());
});

test('transfer-ownership: with an API key every previous owner becomes admin', async (tt) => {
  const o = await org();
  const [owner, next] = [await user(), await user()];
  await api('POST', `/organizations/${o.id}/members`, { user_id: owner.id, role: 'owner' });
  await api('POST', `/organizations/${o.id}/members`, { user_id: next.id, roles: ['member', 'billing'] });
  const r = await api('POST', `/organizations/${o.id}/transfer-ownership`, { user_id: next.id });
  tt.is(r.status, 200);
  tt.deepEqual(r.body.roles, ['billing', 'member', 'owner']);
  tt.deepEqual((await api('GET', `/organizations/${o.id}/members/${owner.id}`)).body.roles, ['admin']);
  const outsider = await user();
  const notMember = await api('POST', `/organizations/${o.id}/transfer-ownership`, { user_id: outsider.id });
  tt.is(notMember.status, 422);
  tt.is(notMember.body.errors[0].field, 'user_id');
});

test('member limit: refused with a clear 409; max_members cannot go below the member count', async (tt) => {
  const o = await org({ max_members: 2 });
  await api('POST', `/organizations/${o.id}/members`, { user_id: (await user()).id });
  await api('POST', `/organizations/${o.id}/members`, { user_id: (await user()).id });
  const full = await api('POST', `/organizations/${o.id}/members`, { user_id: (await user()).id });
  tt.is(full.status, 409);
  tt.regex(full.body.detail, /limit of 2 members/);
  const lower = await api('PATCH', `/organizations/${o.id}`, { max_members: 1 });
  tt.is(lower.status, 422);
  tt.is(lower.body.errors[0].field, 'max_members');
  tt.is((await api('PATCH', `/organizations/${o.id}`, { max_members: 3 })).status, 200);
  tt.is((await api('POST', `/organizations/${o.id}/members`, { user_id: (await user()).id })).status, 201);
});

test('the member count the database keeps is exact through adds, removals, concurrent adds, bulk SQL and user deletion', async (tt) => {
  const { db } = t.app.connection;
  const o = await org({ max_members: 30 });
  const kept = async () => (await db.selectFrom('organizations').select('member_count').where('id', '=', o.id).executeTakeFirstOrThrow()).member_count;
  const real = async () =>
    Number(
      (
        await db
          .selectFrom('org_members')
          .select((eb) => eb.fn.countAll().as('n'))
          .where('org_id', '=', o.id)
          .executeTakeFirstOrThrow()
      ).n,
    );
  const users = await Promise.all(Array.from({ length: 12 }, () => user()));
  // Ten at once: the row lock serialises them, none is lost.
  const added = await Promise.all(users.slice(0, 10).map((u) => api('POST', `/organizations/${o.id}/members`, { user_id: u.id })));
  tt.true(added.every((r) => r.status === 201));
  tt.is(await kept(), 10);
  tt.is((await api('DELETE', `/organizations/${o.id}/members/${users[0]!.id}`)).status, 204);
  tt.is(await kept(), 9);
  // Deleting a user ends their memberships by cascade; the count follows.
  tt.is((await api('DELETE', `/users/${users[1]!.id}`)).status, 204);
  tt.is(await kept(), 8);
  // Bulk SQL (as the bench seeds) is counted once per statement.
  await db
    .insertInto('org_members')
    .values(users.slice(10).map((u) => ({ tenant_id: tenant.id, org_id: o.id, user_id: u.id })))
    .execute();
  tt.is(await kept(), 10);
  tt.is(await kept(), await real());
  // The limit reads the kept count: lower the limit to it, and the next add is refused.
  tt.is((await api('PATCH', `/organizations/${o.id}`, { max_members: 10 })).status, 200);
  tt.is((await api('POST', `/organizations/${o.id}/members`, { user_id: users[0]!.id })).status, 409);
  // A membership cannot be moved to another organization behind the count's back.
  const other = await org();
  await tt.throwsAsync(db.updateTable('org_members').set({ org_id: other.id }).where('org_id', '=', o.id).where('user_id', '=', users[2]!.id).execute());
});

test('deleting an organization removes its members, roles and invitations but not the users', async (tt) => {
  const o = await org();
  const u = await user();
  await api('POST', `/organizations/${o.id}/members`, { user_id: u.id, role: 'owner' });
  await api('POST', `/organizations/${o.id}/invitations`, { email: 'later@x.test' });
  tt.is((await api('DELETE', `/organizations/${o.id}`)).status, 204);
  const { db } = t.app.connection;
  const { sql } = await import('kysely');
  for (const table of ['org_members', 'org_roles', 'org_invitations', 'org_member_roles']) {
    const n = await sql<{ n: string }>`select count(*) as n from ${sql.table(table)} where org_id = ${o.id}`.execute(db);
    tt.is(Number(n.rows[0]!.n), 0, table);
  }
  tt.is((await api('GET', `/users/${u.id}`)).status, 200);
  const audit = await sql<{ action: string }>`select action from org_audit_log where org_id = ${o.id} order by created_at`.execute(db);
  tt.is(audit.rows.at(-1)!.action, 'organization.deleted', 'the audit trail survives the organization');
});

test('audit log: who, what, when, before and after, newest first, paged', async (tt) => {
  const o = await org({ name: 'Audited' });
  const u = await user();
  await api('PATCH', `/organizations/${o.id}`, { description: 'v2' });
  await api('POST', `/organizations/${o.id}/members`, { user_id: u.id });
  await api('PATCH', `/organizations/${o.id}/members/${u.id}`, { role: 'admin' });
  await api('POST', `/organizations/${o.id}/roles`, { name: 'viewer' });
  await api('POST', `/organizations/${o.id}/invitations`, { email: 'aud@x.test' });
  const all: any[] = [];
  let cursor: string | null = null;
  do {
    const p: any = await api('GET', `/organizations/${o.id}/audit-log?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
    tt.is(p.status, 200);
    all.push(...p.body.data);
    cursor = p.body.next_cursor;
  } while (cursor);
  tt.deepEqual(
    all.map((e) => e.action),
    ['invitation.created', 'role.created', 'member.roles_changed', 'member.added', 'organization.updated', 'organization.created'],
  );
  const update = all.find((e) => e.action === 'organization.updated');
  tt.is(update.before.description, null);
  tt.is(update.after.description, 'v2');
  tt.deepEqual(update.actor, { type: 'api_key' });
  tt.truthy(update.created_at);
  const change = all.find((e) => e.action === 'member.roles_changed');
  tt.deepEqual(change.before.roles, ['member']);
  tt.deepEqual(change.after.roles, ['admin']);
  tt.deepEqual(change.target, { type: 'member', id: u.id });
});
