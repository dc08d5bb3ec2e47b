import test from 'ava';
import { sql } from 'kysely';
import { adminApi, createTenant, startTestApp, type TestApp, type TestTenant } from '../helpers/app.ts';

let t: TestApp;
let tenant: TestTenant;
let orgId: string;
let userId: string;
let roleId: string;
let invitationId: string;

const forged = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

test.before(async () => {
  t = await startTestApp();
  tenant = await createTenant(t);
  orgId = (await adminApi(t, tenant, 'POST', '/organizations', { name: 'Target', slug: 'target', domain: 'target.example' })).body.id;
  userId = (await adminApi(t, tenant, 'POST', '/users', { email: 'm@x.test' })).body.id;
  await adminApi(t, tenant, 'POST', `/organizations/${orgId}/members`, { user_id: userId, role: 'owner' });
  roleId = (await adminApi(t, tenant, 'POST', `/organizations/${orgId}/roles`, { name: 'custom' })).body.id;
  invitationId = (await adminApi(t, tenant, 'POST', `/organizations/${orgId}/invitations`, { email: 'i@x.test' })).body.id;
});
test.after.always(async () => t?.stop());

type Case = [method: string, path: () => string, body: unknown, status: number, field?: string];
const later = (f: () => unknown) => f; // bodies that need ids made in before()

const long = 'x'.repeat(3000);
const cases: Case[] = [
  // organizations
  ['POST', () => '/organizations', {}, 422, 'name'],
  ['POST', () => '/organizations', { name: 42 }, 422, 'name'],
  ['POST', () => '/organizations', { name: '   ' }, 422, 'name'],
  ['POST', () => '/organizations', { name: 'n'.repeat(201) }, 422, 'name'],
  ['POST', () => '/organizations', { name: 'x', slug: 'Bad Slug' }, 422, 'slug'],
  ['POST', () => '/organizations', { name: 'x', slug: '-x' }, 422, 'slug'],
  ['POST', () => '/organizations', { name: 'x', slug: 'target' }, 409, 'slug'],
  ['POST', () => '/organizations', { name: 'x', domain: 'not a domain' }, 422, 'domain'],
  ['POST', () => '/organizations', { name: 'x', domain: 'TARGET.example' }, 409, 'domain'],
  ['POST', () => '/organizations', { name: 'x', status: 'deleted' }, 422, 'status'],
  ['POST', () => '/organizations', { name: 'x', website: 'javascript:alert(1)' }, 422, 'website'],
  ['POST', () => '/organizations', { name: 'x', logo_url: 'ftp://x/y.png' }, 422, 'logo_url'],
  ['POST', () => '/organizations', { name: 'x', description: long }, 422, 'description'],
  ['POST', () => '/organizations', { name: 'x', metadata: [1, 2] }, 422, 'metadata'],
  ['POST', () => '/organizations', { name: 'x', metadata: { blob: 'y'.repeat(5000) } }, 422, 'metadata'],
  ['POST', () => '/organizations', { name: 'x', max_members: 0 }, 422, 'max_members'],
  ['POST', () => '/organizations', { name: 'x', max_members: 1.5 }, 422, 'max_members'],
  ['POST', () => '/organizations', { name: 'x', owner: 'me' }, 422, 'owner'],
  ['POST', () => '/organizations', '{"name": ', 400],
  ['POST', () => '/organizations', '"just a string"', 400],
  ['PUT', () => `/organizations/${orgId}`, { slug: 'no-name' }, 422, 'name'],
  ['PATCH', () => `/organizations/${orgId}`, {}, 422],
  ['PATCH', () => `/organizations/${orgId}`, { status: 1 }, 422, 'status'],
  ['PATCH', () => '/organizations/not-a-uuid', { name: 'x' }, 404],
  ['GET', () => '/organizations?limit=0', undefined, 422, 'limit'],
  ['GET', () => '/organizations?limit=201', undefined, 422, 'limit'],
  ['GET', () => '/organizations?cursor=bogus', undefined, 400],
  ['GET', () => '/organizations?status=gone', undefined, 422, 'status'],
  ['GET', () => '/organizations?sort=name', undefined, 422, 'sort'],
  // members
  ['POST', () => `/organizations/${orgId}/members`, {}, 422, 'user_id'],
  ['POST', () => `/organizations/${orgId}/members`, { user_id: 'abc' }, 422, 'user_id'],
  ['POST', () => `/organizations/${orgId}/members`, { user_id: '00000000-0000-4000-8000-000000000000' }, 422, 'user_id'],
  ['POST', () => `/organizations/${orgId}/members`, { user_id: '00000000-0000-4000-8000-000000000000', role: 'member', roles: ['admin'] }, 422, 'roles'],
  ['POST', () => `/organizations/${orgId}/members`, later(() => ({ user_id: userId })), 409],
  ['PATCH', () => `/organizations/${orgId}/members/${userId}`, { roles: ['owner', 'wizard'] }, 422, 'roles'],
  ['PATCH', () => `/organizations/${orgId}/members/${userId}`, { roles: [] }, 422, 'roles'],
  ['PATCH', () => `/organizations/${orgId}/members/${userId}`, { roles: 'owner' }, 422, 'roles'],
  ['PATCH', () => `/organizations/${orgId}/members/${userId}`, {}, 422, 'roles'],
  ['DELETE', () => `/organizations/${orgId}/members/${userId}`, undefined, 409],
  ['GET', () => `/organizations/${orgId}/members?cursor=%%%`, undefined, 400],
  // Well-formed but forged cursors: valid base64 JSON whose id or shape is not one we issue.
  ['GET', () => `/organizations/${orgId}/members?cursor=${forged(['2024-01-01T00:00:00.000Z', 'not-a-uuid'])}`, undefined, 400],
  ['GET', () => `/organizations/${orgId}/members?cursor=${forged({ a: 1 })}`, undefined, 400],
  ['GET', () => `/organizations?cursor=${forged(['2024-01-01T00:00:00.000Z', "x'; select 1"])}`, undefined, 400],
  ['POST', () => `/organizations/${orgId}/transfer-ownership`, {}, 422, 'user_id'],
  ['POST', () => `/organizations/${orgId}/transfer-ownership`, { user_id: 7 }, 422, 'user_id'],
  // roles
  ['POST', () => `/organizations/${orgId}/roles`, {}, 422, 'name'],
  ['POST', () => `/organizations/${orgId}/roles`, { name: 'Has Spaces' }, 422, 'name'],
  ['POST', () => `/organizations/${orgId}/roles`, { name: 'r'.repeat(65) }, 422, 'name'],
  ['POST', () => `/organizations/${orgId}/roles`, { name: 'custom' }, 409, 'name'],
  ['POST', () => `/organizations/${orgId}/roles`, { name: 'ok', permissions: ['bad permission'] }, 422, 'permissions.0'],
  ['POST', () => `/organizations/${orgId}/roles`, { name: 'ok', permissions: 'invoices:read' }, 422, 'permissions'],
  ['PATCH', () => `/organizations/${orgId}/roles/${roleId}`, {}, 422],
  ['PATCH', () => `/organizations/${orgId}/roles/${roleId}`, { name: 'rename' }, 422, 'name'],
  ['DELETE', () => `/organizations/${orgId}/roles/${roleId}?force=maybe`, undefined, 422, 'force'],
  ['DELETE', () => `/organizations/${orgId}/roles/nope`, undefined, 404],
  // invitations
  ['POST', () => `/organizations/${orgId}/invitations`, {}, 422, 'email'],
  ['POST', () => `/organizations/${orgId}/invitations`, { email: 'not-an-email' }, 422, 'email'],
  ['POST', () => `/organizations/${orgId}/invitations`, { email: 'a@b.test', role: 'ghost' }, 422, 'role'],
  ['POST', () => `/organizations/${orgId}/invitations`, { email: 'a@b.test', expires_in: 'soon' }, 422, 'expires_in'],
  ['POST', () => `/organizations/${orgId}/invitations`, { email: 'i@x.test' }, 409, 'email'],
  ['POST', () => `/organizations/${orgId}/invitations/${invitationId}/resend`, undefined, 200],
  ['POST', () => `/organizations/${orgId}/invitations/not-a-uuid/resend`, undefined, 404],
  ['DELETE', () => `/organizations/${orgId}/invitations/00000000-0000-4000-8000-000000000000`, undefined, 404],
  ['GET', () => `/organizations/${orgId}/invitations?limit=-1`, undefined, 422, 'limit'],
  ['GET', () => `/organizations/${orgId}/audit-log?limit=x`, undefined, 422, 'limit'],
];

test('every organization endpoint answers bad input with a 4xx problem naming the field, never a 500', async (tt) => {
  for (const [method, path, rawBody, status, field] of cases) {
    const body = typeof rawBody === 'function' ? rawBody() : rawBody;
    const res = await adminApi(t, tenant, method, path(), body);
    const label = `${method} ${path()} ${typeof body === 'string' ? body : JSON.stringify(body)?.slice(0, 60)}`;
    tt.is(res.status, status, `${label} → ${res.status} ${res.text.slice(0, 300)}`);
    if (status >= 400) {
      tt.regex(res.type, /application\/problem\+json/, label);
      tt.truthy(res.body?.detail, label);
    }
    if (field)
      tt.true(
        res.body.errors?.some((e: { field: string }) => e.field === field || e.field.split(',').includes(field)),
        `${label}: ${JSON.stringify(res.body.errors)}`,
      );
  }
  // Nothing was half-done by the refused requests.
  tt.is((await adminApi(t, tenant, 'GET', '/organizations')).body.data.length, 1);
  tt.is((await adminApi(t, tenant, 'GET', `/organizations/${orgId}/members`)).body.data.length, 1);
});

test('a non-JSON body is refused with 415', async (tt) => {
  const res = await fetch(`${t.url}/t/${tenant.slug}/api/v1/admin/organizations`, {
    method: 'POST',
    headers: { authorization: `Bearer ${tenant.adminKey}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: 'name=x',
  });
  tt.is(res.status, 415);
  tt.regex(res.headers.get('content-type')!, /problem\+json/);
});

test('10,000 members, paged 200 at a time: each exactly once', async (tt) => {
  const { db } = t.app.connection;
  const tenant = await createTenant(t); // its own, so the other test's counts stay exact
  const big = (await adminApi(t, tenant, 'POST', '/organizations', { name: 'Huge', max_members: 20_000 })).body;
  // Users and memberships in bulk (the API adds one at a time; this test is about reading).
  await sql`
    insert into users (tenant_id, id, email, email_key, name)
    select ${tenant.id}::uuid, gen_random_uuid(), 'bulk' || g || '@x.test', 'bulk' || g || '@x.test', 'Bulk ' || g from generate_series(1, 10000) g`.execute(
    db,
  );
  await sql`
    insert into org_members (tenant_id, org_id, user_id, joined_at)
    select tenant_id, ${big.id}::uuid, id, now() - (random() * interval '1 day')
    from users where tenant_id = ${tenant.id} and email like 'bulk%'`.execute(db);
  await sql`
    insert into org_member_roles (tenant_id, org_id, user_id, role_id)
    select m.tenant_id, m.org_id, m.user_id, r.id from org_members m
    join org_roles r on r.tenant_id = m.tenant_id and r.org_id = m.org_id and r.name = 'member'
    where m.org_id = ${big.id}`.execute(db);

  const seen = new Set<string>();
  let cursor: string | null = null;
  let pages = 0;
  do {
    const res: any = await adminApi(t, tenant, 'GET', `/organizations/${big.id}/members?limit=200${cursor ? `&cursor=${cursor}` : ''}`);
    tt.is(res.status, 200);
    for (const m of res.body.data) {
      tt.false(seen.has(m.user_id), `member ${m.user_id} seen twice`);
      seen.add(m.user_id);
    }
    tt.deepEqual(res.body.data[0]?.roles, ['member']);
    cursor = res.body.next_cursor;
    pages++;
  } while (cursor);
  tt.is(seen.size, 10_000);
  tt.is(pages, 50);
});
