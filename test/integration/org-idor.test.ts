import test from 'ava';
import { adminApi, createTenant, startTestApp, type TestApp, type TestTenant } from '../helpers/app.ts';

/**
 * Two tenants with two organizations each, fully populated. Every organization endpoint is
 * called with ids that belong to another organization (same tenant) or another tenant: each
 * answers 404, and no answer carries the other side's data.
 */
interface World {
  tenant: TestTenant;
  orgs: Array<{ id: string; memberId: string; roleId: string; invitationId: string; secret: string }>;
}

let t: TestApp;
let A: World;
let B: World;

async function populate(tenant: TestTenant, label: string): Promise<World> {
  const orgs: World['orgs'] = [];
  for (const i of [1, 2]) {
    const secret = `secret-${label}${i}-${Math.random().toString(36).slice(2)}`;
    const o = (await adminApi(t, tenant, 'POST', '/organizations', { name: `${label}${i}`, description: secret })).body;
    const u = (await adminApi(t, tenant, 'POST', '/users', { email: `${label}${i}-${secret}@x.test`, name: secret })).body;
    await adminApi(t, tenant, 'POST', `/organizations/${o.id}/members`, { user_id: u.id, role: 'owner' });
    const role = (await adminApi(t, tenant, 'POST', `/organizations/${o.id}/roles`, { name: `r-${label}${i}`, description: secret })).body;
    const inv = (await adminApi(t, tenant, 'POST', `/organizations/${o.id}/invitations`, { email: `inv-${secret}@x.test` })).body;
    orgs.push({ id: o.id, memberId: u.id, roleId: role.id, invitationId: inv.id, secret });
  }
  return { tenant, orgs };
}

test.before(async () => {
  t = await startTestApp();
  A = await populate(await createTenant(t), 'a');
  B = await populate(await createTenant(t), 'b');
});
test.after.always(async () => t?.stop());

/** Every org-scoped endpoint, for `org` (the URL's) with another org's ids (`theirs`). */
function calls(org: string, theirs: World['orgs'][number]) {
  return [
    ['GET', `/organizations/${theirs.id}`],
    ['PUT', `/organizations/${theirs.id}`, { name: 'hijack' }],
    ['PATCH', `/organizations/${theirs.id}`, { name: 'hijack' }],
    ['DELETE', `/organizations/${theirs.id}`],
    ['GET', `/organizations/${theirs.id}/members`],
    ['POST', `/organizations/${theirs.id}/members`, { user_id: theirs.memberId }],
    ['GET', `/organizations/${theirs.id}/roles`],
    ['POST', `/organizations/${theirs.id}/roles`, { name: 'sneaky' }],
    ['GET', `/organizations/${theirs.id}/invitations`],
    ['POST', `/organizations/${theirs.id}/invitations`, { email: 'sneaky@x.test' }],
    ['GET', `/organizations/${theirs.id}/audit-log`],
    ['POST', `/organizations/${theirs.id}/transfer-ownership`, { user_id: theirs.memberId }],
    // Our organization's URL, their child ids.
    ['GET', `/organizations/${org}/members/${theirs.memberId}`],
    ['PATCH', `/organizations/${org}/members/${theirs.memberId}`, { role: 'admin' }],
    ['DELETE', `/organizations/${org}/members/${theirs.memberId}`],
    ['PATCH', `/organizations/${org}/roles/${theirs.roleId}`, { description: 'x' }],
    ['DELETE', `/organizations/${org}/roles/${theirs.roleId}?force=true`],
    ['POST', `/organizations/${org}/invitations/${theirs.invitationId}/resend`],
    ['DELETE', `/organizations/${org}/invitations/${theirs.invitationId}`],
  ] as Array<[string, string, unknown?]>;
}

async function expectNothing(tt: any, caller: TestTenant, org: string, theirs: World['orgs'][number], allowed: number[]) {
  for (const [method, path, body] of calls(org, theirs)) {
    const res = await adminApi(t, caller, method, path, body);
    tt.true(allowed.includes(res.status), `${method} ${path} → ${res.status} ${res.text.slice(0, 200)}`);
    tt.false(res.text.includes(theirs.secret), `${method} ${path} leaked data`);
  }
}

test("another organization's ids in the same tenant: 404, nothing leaked", async (tt) => {
  const [mine, theirs] = A.orgs as [World['orgs'][number], World['orgs'][number]];
  // Org-level calls on `theirs.id` are legitimate in the same tenant (it exists): only the
  // cross-wired child ids must fail. So check those here.
  for (const [method, path, body] of calls(mine.id, theirs).slice(12)) {
    const res = await adminApi(t, A.tenant, method, path, body);
    tt.is(res.status, 404, `${method} ${path} → ${res.status} ${res.text.slice(0, 200)}`);
    tt.false(res.text.includes(theirs.secret));
  }
  // And the other organization is untouched.
  const members = await adminApi(t, A.tenant, 'GET', `/organizations/${theirs.id}/members`);
  tt.deepEqual(
    members.body.data.map((m: { user_id: string; roles: string[] }) => [m.user_id, m.roles]),
    [[theirs.memberId, ['owner']]],
  );
  const roles = await adminApi(t, A.tenant, 'GET', `/organizations/${theirs.id}/roles`);
  tt.true(roles.body.data.some((r: { id: string }) => r.id === theirs.roleId));
  const invitations = await adminApi(t, A.tenant, 'GET', `/organizations/${theirs.id}/invitations`);
  tt.is(invitations.body.data[0].status, 'pending');
});

test("another tenant's organization ids: every endpoint 404, nothing leaked, nothing changed", async (tt) => {
  for (const theirs of B.orgs) {
    await expectNothing(tt, A.tenant, A.orgs[0]!.id, theirs, [404]);
  }
  for (const theirs of A.orgs) {
    await expectNothing(tt, B.tenant, B.orgs[0]!.id, theirs, [404]);
  }
  for (const world of [A, B]) {
    for (const o of world.orgs) {
      const got = await adminApi(t, world.tenant, 'GET', `/organizations/${o.id}`);
      tt.is(got.status, 200);
      tt.is(got.body.description, o.secret, 'unchanged');
      tt.is((await adminApi(t, world.tenant, 'GET', `/organizations/${o.id}/members`)).body.data.length, 1);
    }
  }
  const listA = await adminApi(t, A.tenant, 'GET', '/organizations?limit=200');
  tt.false(B.orgs.some((o) => listA.text.includes(o.id) || listA.text.includes(o.secret)));
});
