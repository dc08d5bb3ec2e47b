import test from 'ava';
import { CompiledQuery, sql } from 'kysely';
import type { TenantTx } from '../../src/db/database.ts';
import { findTokenWithRelated, tokenWithRelatedQuery } from '../../src/oidc/token-prefetch.ts';
import { memberRoleNames, pendingInvitationFor } from '../../src/orgs/org.repo.ts';
import { findUserByEmail } from '../../src/users/user.repo.ts';
import { adminApi, createTenant, startTestApp, type TestApp, type TestTenant } from '../helpers/app.ts';

/**
 * Plans that must stay bounded whatever PostgreSQL's statistics say. These assert what a plan
 * reads (rows, from EXPLAIN ANALYZE), not how long it takes.
 */

let t: TestApp;
let tenant: TestTenant;

test.before(async () => {
  t = await startTestApp();
  tenant = await createTenant(t);
});
test.after.always(async () => t?.stop());

/** Rows the plan's nodes looked at for `relation`: those it returned and those its filter threw away. */
function rowsExamined(plan: Record<string, unknown>, relation: string): number {
  const own =
    plan['Relation Name'] === relation ? (Number(plan['Actual Rows']) + Number(plan['Rows Removed by Filter'] ?? 0)) * Number(plan['Actual Loops']) : 0;
  const children = (plan.Plans as Record<string, unknown>[] | undefined) ?? [];
  return own + children.reduce((sum, child) => sum + rowsExamined(child, relation), 0);
}

test("a member's role names read only that organization's roles, even when the planner prefers a merge join", async (tt) => {
  const db = t.app.connection.db;
  const org = (await adminApi(t, tenant, 'POST', '/organizations', { name: 'Plans' })).body as { id: string };
  const user = (await adminApi(t, tenant, 'POST', '/users', { email: 'plans@plans.test' })).body as { id: string };
  tt.is((await adminApi(t, tenant, 'POST', `/organizations/${org.id}/members`, { user_id: user.id, role: 'admin' })).status, 201);
  // Many other organizations in the tenant, each with its built-in roles: ~1,600 roles.
  const others = await sql<{ id: string }>`
    INSERT INTO organizations (tenant_id, name, slug) SELECT ${tenant.id}::uuid, 'Other ' || g, 'other-' || g FROM generate_series(1, 400) g RETURNING id`.execute(
    db,
  );
  tt.is(others.rows.length, 400);
  await sql`
    INSERT INTO org_roles (tenant_id, org_id, name, builtin)
    SELECT ${tenant.id}::uuid, o.id, r, true FROM organizations o CROSS JOIN unnest(array['owner','admin','member','billing']) r
    WHERE o.tenant_id = ${tenant.id}::uuid AND o.slug LIKE 'other-%'`.execute(db);

  const query = sql<{ roles: string[] }>`select ${memberRoleNames(sql`${tenant.id}::uuid`, sql`${org.id}::uuid`, sql`${user.id}::uuid`)} as roles`.compile(db);
  tt.deepEqual((await db.executeQuery(query)).rows[0]!.roles, ['admin']);

  // Without nested loops the planner must join org_member_roles to org_roles by merging or hashing,
  // which is the plan it picked on its own with stale statistics (see memberRoleNames).
  const plan = await db.transaction().execute(async (tx) => {
    await sql`set local enable_nestloop = off`.execute(tx);
    const r = await tx.executeQuery(CompiledQuery.raw(`explain (analyze, format json) ${query.sql}`, [...query.parameters]));
    return (r.rows[0] as { 'QUERY PLAN': Array<{ Plan: Record<string, unknown> }> })['QUERY PLAN'][0]!.Plan;
  });
  const read = rowsExamined(plan, 'org_roles');
  tt.true(read <= 10, `org_roles rows read: ${read} (the tenant has ~1,600)`);
});

test("a token's grant, session, account and organization are looked up by index under row-level security", async (tt) => {
  const db = t.app.connection.db;
  const org = (await adminApi(t, tenant, 'POST', '/organizations', { name: 'Token Plans' })).body as { id: string };
  const user = (await adminApi(t, tenant, 'POST', '/users', { email: 'token-plans@plans.test' })).body as { id: string };
  // A tenant after some traffic: 2,000 each of other grants, sessions, accounts and org selections.
  await sql`
    INSERT INTO oidc_payloads (tenant_id, model, id, payload, grant_id, uid, expires_at)
    SELECT ${tenant.id}::uuid, m, m || '-' || g, '{}'::jsonb, CASE WHEN m = 'Grant' THEN 'grant-' || g END, CASE WHEN m = 'Session' THEN 'uid-' || g END, now() + interval '1 hour'
    FROM generate_series(1, 2000) g CROSS JOIN unnest(array['Grant', 'Session']) m`.execute(db);
  await sql`INSERT INTO users (tenant_id, email, email_key) SELECT ${tenant.id}::uuid, 'other-' || g || '@plans.test', 'other-' || g || '@plans.test' FROM generate_series(1, 2000) g`.execute(
    db,
  );
  await sql`
    INSERT INTO grant_organizations (tenant_id, grant_id, org_id, user_id)
    SELECT ${tenant.id}::uuid, 'Grant-' || g, ${org.id}::uuid, ${user.id}::uuid FROM generate_series(1, 2000) g`.execute(db);
  await sql`
    INSERT INTO oidc_payloads (tenant_id, model, id, payload, expires_at)
    VALUES (${tenant.id}::uuid, 'AccessToken', 'the-token', ${JSON.stringify({ grantId: 'Grant-7', sessionUid: 'uid-7', accountId: user.id })}::jsonb, now() + interval '1 hour')`.execute(
    db,
  );
  await sql`ANALYZE oidc_payloads, users, grant_organizations`.execute(db);

  const query = tokenWithRelatedQuery(tenant.id, ['AccessToken', 'ClientCredentials'], 'the-token');
  // As the application runs it: the unprivileged role, the tenant in the scope (db/tenant-scope.ts).
  const { plan, found } = await db.transaction().execute(async (tx) => {
    await sql`select set_config('tessera.tenant_id', ${tenant.id}, true), set_config('role', 'tessera_app', true)`.execute(tx);
    const found = await findTokenWithRelated(tx, tenant.id, ['AccessToken', 'ClientCredentials'], 'the-token');
    const r = await tx.executeQuery(CompiledQuery.raw(`explain (analyze, format json) ${query.sql}`, [...query.parameters]));
    return { plan: (r.rows[0] as { 'QUERY PLAN': Array<{ Plan: Record<string, unknown> }> })['QUERY PLAN'][0]!.Plan, found };
  });
  tt.truthy(found?.grant, 'the grant by its id');
  tt.truthy(found?.session, 'the session by its uid');
  tt.is(found?.user?.id, user.id);
  tt.is(found?.grantOrg, org.id);
  for (const [relation, most] of [
    ['oidc_payloads', 6],
    ['users', 2],
    ['grant_organizations', 2],
  ] as const) {
    const examined = rowsExamined(plan, relation);
    tt.true(examined <= most, `${relation}: ${examined} rows examined (the tenant has ~2,000)`);
  }
});

test("an org-scoped machine token's organization and client grant are looked up by index under row-level security", async (tt) => {
  const db = t.app.connection.db;
  const org = (await adminApi(t, tenant, 'POST', '/organizations', { name: 'Machine Plans' })).body as { id: string };
  const client = (
    await adminApi(t, tenant, 'POST', '/clients', {
      name: 'machine-plans',
      grant_types: ['client_credentials'],
      scopes: ['openid'],
      organization_ids: [org.id],
    })
  ).body as { client_id: string };
  // A tenant with 1,000 other organizations and clients.
  await sql`INSERT INTO organizations (tenant_id, name, slug) SELECT ${tenant.id}::uuid, 'Machine ' || g, 'machine-' || g FROM generate_series(1, 1000) g`.execute(
    db,
  );
  await sql`INSERT INTO clients (tenant_id, client_id, name, metadata) SELECT ${tenant.id}::uuid, 'plans-client-' || g, 'c', '{}'::jsonb FROM generate_series(1, 1000) g`.execute(
    db,
  );
  await sql`
    INSERT INTO oidc_payloads (tenant_id, model, id, payload, expires_at)
    VALUES (${tenant.id}::uuid, 'ClientCredentials', 'the-machine-token', ${JSON.stringify({ clientId: client.client_id, extra: { org_id: org.id } })}::jsonb, now() + interval '1 hour')`.execute(
    db,
  );
  await sql`ANALYZE organizations, clients, oidc_payloads`.execute(db);

  const query = tokenWithRelatedQuery(tenant.id, ['AccessToken', 'ClientCredentials'], 'the-machine-token');
  const { plan, found } = await db.transaction().execute(async (tx) => {
    await sql`select set_config('tessera.tenant_id', ${tenant.id}, true), set_config('role', 'tessera_app', true)`.execute(tx);
    const found = await findTokenWithRelated(tx, tenant.id, ['AccessToken', 'ClientCredentials'], 'the-machine-token');
    const r = await tx.executeQuery(CompiledQuery.raw(`explain (analyze, format json) ${query.sql}`, [...query.parameters]));
    return { plan: (r.rows[0] as { 'QUERY PLAN': Array<{ Plan: Record<string, unknown> }> })['QUERY PLAN'][0]!.Plan, found };
  });
  tt.deepEqual(found?.machineOrg, { status: 'active', granted: true });
  for (const relation of ['organizations', 'clients']) {
    const examined = rowsExamined(plan, relation);
    tt.true(examined <= 2, `${relation}: ${examined} rows examined (the tenant has ~1,000)`);
  }
});

/** Runs `work` as the application does (unprivileged role, tenant scope) and returns the rows it read per table. */
async function rowsReadDoing(work: (tx: TenantTx) => Promise<unknown>) {
  return t.app.connection.db.transaction().execute(async (tx) => {
    await sql`select set_config('tessera.tenant_id', ${tenant.id}, true), set_config('role', 'tessera_app', true)`.execute(tx);
    await work(tx as unknown as TenantTx);
    await sql`reset role`.execute(tx);
    const r = await sql<{ relname: string; read: string }>`
      select relname, (coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0))::text as read from pg_stat_xact_user_tables`.execute(tx);
    return Object.fromEntries(r.rows.map((row) => [row.relname, Number(row.read)]));
  });
}

test('an account and its invitations are found by email through the index, whatever the case, under row-level security', async (tt) => {
  const db = t.app.connection.db;
  const org = (await adminApi(t, tenant, 'POST', '/organizations', { name: 'Email Plans' })).body as { id: string };
  // Rows in bulk carry the key the application would write (users/email-address.ts).
  await sql`INSERT INTO users (tenant_id, email, email_key) SELECT ${tenant.id}::uuid, 'Mixed' || g || '@Email.Test', 'mixed' || g || '@email.test' FROM generate_series(1, 2000) g`.execute(
    db,
  );
  const role = await sql<{
    id: string;
  }>`SELECT id FROM org_roles WHERE tenant_id = ${tenant.id}::uuid AND org_id = ${org.id}::uuid AND name = 'member'`.execute(db);
  await sql`
    INSERT INTO org_invitations (tenant_id, org_id, email, email_key, role_id, token_hash, expires_at, invited_by)
    SELECT ${tenant.id}::uuid, ${org.id}::uuid, 'Mixed' || g || '@Email.Test', 'mixed' || g || '@email.test', ${role.rows[0]!.id}::uuid, md5(g::text), now() + interval '1 day', '{}'::jsonb
    FROM generate_series(1, 2000) g`.execute(db);
  await sql`ANALYZE users, org_invitations`.execute(db);

  let found: { email: string } | undefined;
  let invitation: { id: string } | undefined;
  const read = await rowsReadDoing(async (tx) => {
    found = await findUserByEmail(tx, tenant.id, 'mixed77@email.TEST');
    invitation = await pendingInvitationFor(tx, tenant.id, org.id, 'MIXED77@email.test');
  });
  tt.is(found?.email, 'Mixed77@Email.Test');
  tt.truthy(invitation);
  tt.true(read.users! <= 2, `users rows read: ${read.users} (the tenant has ~2,000)`);
  tt.true(read.org_invitations! <= 2, `org_invitations rows read: ${read.org_invitations} (~2,000 pending)`);
});
