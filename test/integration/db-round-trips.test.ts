import test from 'ava';
import { sql } from 'kysely';
import * as oidc from 'openid-client';
import pg from 'pg';
import { scopedBatch, scopedStatement, slugScopedStatement } from '../../src/db/one-shot.ts';
import { inTenant } from '../../src/db/tenant-scope.ts';
import { findPayload, type PayloadWrite, payloadWriteBatch, upsertPayload } from '../../src/oidc-store/oidc-payload.repo.ts';
import { adminApi, createTenant, startTestApp, type TestApp, type TestTenant, webClient } from '../helpers/app.ts';
import { serverUrl } from '../helpers/database.ts';
import { signIn } from '../helpers/oidc.ts';

/**
 * The round-trip savers of db/lazy-begin.ts and db/one-shot.ts keep tenant isolation exactly:
 * row-level security binds a one-shot statement, its settings end with it, and inlined
 * parameters arrive byte for byte.
 */

let t: TestApp;
let a: TestTenant;
let b: TestTenant;

test.before(async () => {
  t = await startTestApp();
  a = await createTenant(t);
  b = await createTenant(t);
});
test.after.always(async () => t?.stop());

const db = () => t.app.connection.db;
/** Whether the one-shot path runs (PostgreSQL, unless `DATABASE_ONE_SHOT=false`); otherwise each statement is an `inTenant` transaction. */
const oneShot = () => t.app.connection.kind === 'postgres' && t.app.config.databaseOneShot;

test('a one-shot statement sees only its tenant, even without a tenant filter, and runs as the app role', async (tt) => {
  await scopedStatement(db(), a.id, (tx) => upsertPayload(tx, a.id, 'Session', 'shared-id', { owner: 'a' }, 60));
  await scopedStatement(db(), b.id, (tx) => upsertPayload(tx, b.id, 'Session', 'shared-id', { owner: 'b' }, 60));
  const seen = await scopedStatement(db(), a.id, (tx) =>
    tx.selectFrom('oidc_payloads').select(['tenant_id', 'payload']).where('id', '=', 'shared-id').execute(),
  );
  tt.deepEqual(
    seen.map((r) => r.tenant_id),
    [a.id],
  );
  const role = await scopedStatement(db(), a.id, (tx) =>
    sql<{ r: string; t: string }>`select current_user as r, current_setting('tessera.tenant_id') as t`.execute(tx),
  );
  tt.deepEqual(role.rows[0], { r: 'tessera_app', t: a.id });
  // Writing another tenant's row is refused by the policy's WITH CHECK.
  await tt.throwsAsync(scopedStatement(db(), a.id, (tx) => upsertPayload(tx, b.id, 'Session', 'sneaky', {}, 60)));
});

test('the settings of a one-shot statement end with it: the next use of the connection is the owner again', async (tt) => {
  for (let i = 0; i < 12; i++) await scopedStatement(db(), a.id, (tx) => sql`select 1`.execute(tx)); // cycle the pool
  const after = await sql<{ r: string; t: string | null }>`select current_user as r, current_setting('tessera.tenant_id', true) as t`.execute(db());
  tt.not(after.rows[0]!.r, 'tessera_app');
  tt.true(!after.rows[0]!.t);
});

test('concurrent one-shot reads of different tenants are each scoped to their own tenant, and on PostgreSQL share a round trip', async (tt) => {
  await scopedStatement(db(), a.id, (tx) => upsertPayload(tx, a.id, 'Session', 'grouped-read', { owner: 'a' }, 60));
  await scopedStatement(db(), b.id, (tx) => upsertPayload(tx, b.id, 'Session', 'grouped-read', { owner: 'b' }, 60));
  const tenants = Array.from({ length: 40 }, (_, i) => (i % 2 ? b : a));
  const reads = await Promise.all(
    tenants.map((tenant) =>
      scopedStatement(db(), tenant.id, async (tx) => {
        // No tenant filter: only the scope (RLS) can keep the other tenant's row out.
        const rows = await tx.selectFrom('oidc_payloads').select('payload').where('id', '=', 'grouped-read').execute();
        const where = await sql<{
          tenant: string;
          batch: string;
        }>`select current_setting('tessera.tenant_id') as tenant, pg_backend_pid() || '@' || now() as batch`.execute(tx);
        return { owners: rows.map((r) => (r.payload as { owner: string }).owner), ...where.rows[0]! };
      }),
    ),
  );
  reads.forEach((r, i) => {
    tt.deepEqual(r.owners, [tenants[i] === a ? 'a' : 'b']);
    tt.is(r.tenant, tenants[i]!.id);
  });
  // Grouping is the one-shot path's, on PostgreSQL: elsewhere each read is its own transaction,
  // and this check passed there only by chance — PGlite's now() has millisecond resolution, so on
  // a fast machine several transactions shared one (40 distinct here).
  if (!oneShot()) return;
  // Statements of one batch run in one implicit transaction: same backend, same now().
  const perBatch = new Map<string, Set<string>>();
  for (const r of reads) perBatch.set(r.batch, (perBatch.get(r.batch) ?? new Set()).add(r.tenant));
  tt.true(perBatch.size < reads.length, 'some reads went together');
  tt.true(
    [...perBatch.values()].some((ts) => ts.size === 2),
    'a batch held both tenants, each scoped apart',
  );
});

test('a failing read fails only its own caller, not the reads it was batched with', async (tt) => {
  const good = Array.from({ length: 10 }, (_, i) => scopedStatement(db(), a.id, (tx) => sql<{ n: number }>`select ${i}::int as n`.execute(tx)));
  const bad = scopedStatement(db(), a.id, (tx) => sql`select 1/0`.execute(tx));
  const more = Array.from({ length: 10 }, (_, i) => scopedStatement(db(), b.id, (tx) => sql<{ n: number }>`select ${i + 10}::int as n`.execute(tx)));
  await tt.throwsAsync(bad, { message: /division by zero/ });
  tt.deepEqual(
    (await Promise.all([...good, ...more])).map((r) => r.rows[0]!.n),
    Array.from({ length: 20 }, (_, i) => i),
  );
});

test('inlined parameters arrive exactly: quotes, backslashes, $1 inside values, unicode, dates, null, JSON', async (tt) => {
  const tricky = { s: "it's a \\ back'slash \\' $1 $2 -- ; drop table users; '", u: 'ünïcødé 🙂', n: null, nested: { q: '"quoted"' } };
  await scopedStatement(db(), a.id, (tx) => upsertPayload(tx, a.id, 'Interaction', "id with ' quote", tricky, 60));
  const back = await scopedStatement(db(), a.id, (tx) => findPayload(tx, a.id, 'Interaction', { id: "id with ' quote" }));
  tt.deepEqual(back?.payload, tricky);
  tt.true(back!.expires_at instanceof Date);
  // The same row through the ordinary transaction path.
  const viaTx = await inTenant(db(), a.id, (tx) => findPayload(tx, a.id, 'Interaction', { id: "id with ' quote" }));
  tt.deepEqual(viaTx, back);
});

test('a transaction that fails in its first statement leaves the connection clean (lazy BEGIN)', async (tt) => {
  await tt.throwsAsync(inTenant(db(), a.id, async (tx) => sql`select 1/0`.execute(tx)));
  // Every pooled connection still works and is not stuck in an aborted transaction.
  const results = await Promise.all(Array.from({ length: 12 }, () => inTenant(db(), a.id, (tx) => sql<{ one: number }>`select 1 as one`.execute(tx))));
  tt.true(results.every((r) => r.rows[0]!.one === 1));
  // A transaction that only scopes itself (BEGIN merged into the scope statement) commits cleanly.
  tt.is(await inTenant(db(), a.id, async () => 'nothing ran'), 'nothing ran');
});

test('a batch of adapter writes (group commit) is scoped like one statement, all or nothing, and spends a token once', async (tt) => {
  const find = (tenantId: string, model: string, id: string) => scopedStatement(db(), tenantId, (tx) => findPayload(tx, tenantId, model, { id }));
  await scopedStatement(db(), a.id, (tx) => upsertPayload(tx, a.id, 'RefreshToken', 'rt-1', { n: 1 }, 60));
  await scopedStatement(db(), a.id, (tx) => upsertPayload(tx, a.id, 'Interaction', 'gone', {}, 60));
  await scopedStatement(db(), b.id, (tx) => upsertPayload(tx, b.id, 'RefreshToken', 'rt-1', { owner: 'b' }, 60));
  await scopedStatement(db(), b.id, (tx) => upsertPayload(tx, b.id, 'Interaction', 'gone', { owner: 'b' }, 60));
  const writes: PayloadWrite[] = [
    { op: 'upsert', model: 'RefreshToken', id: 'rt-2', payload: { n: 2 }, expiresInSeconds: 60 },
    { op: 'upsert', model: 'RefreshToken', id: 'rt-2', payload: { n: 3 }, expiresInSeconds: 60 }, // the last save of a row counts
    { op: 'consume', model: 'RefreshToken', id: 'rt-1' },
    { op: 'consume', model: 'RefreshToken', id: 'rt-1' }, // the same token spent twice in one batch: one wins
    { op: 'consume', model: 'RefreshToken', id: 'no-such-token' },
    { op: 'destroy', model: 'Interaction', id: 'gone' },
  ];
  const batch = payloadWriteBatch(a.id, writes);
  tt.deepEqual(batch.outcomes(await scopedBatch(db(), a.id, () => batch.statements)), [true, true, true, false, false, true]);
  // Spent already: a later consume loses.
  const again = payloadWriteBatch(a.id, [{ op: 'consume', model: 'RefreshToken', id: 'rt-1' }]);
  tt.deepEqual(again.outcomes(await scopedBatch(db(), a.id, () => again.statements)), [false]);
  tt.true((await find(a.id, 'RefreshToken', 'rt-1'))?.consumed_at instanceof Date);
  tt.deepEqual((await find(a.id, 'RefreshToken', 'rt-2'))?.payload, { n: 3 });
  tt.is(await find(a.id, 'Interaction', 'gone'), undefined);
  // The other tenant's rows with the same ids are untouched.
  tt.deepEqual((await find(b.id, 'RefreshToken', 'rt-1'))?.payload, { owner: 'b' });
  tt.deepEqual((await find(b.id, 'Interaction', 'gone'))?.payload, { owner: 'b' });
  // All or nothing: a batch whose last statement fails leaves no trace of its first.
  await tt.throwsAsync(
    scopedBatch(db(), a.id, (qb) => [
      ...payloadWriteBatch(a.id, [{ op: 'upsert', model: 'RefreshToken', id: 'rt-3', payload: {}, expiresInSeconds: 60 }]).statements,
      sql`select 1/0`.compile(qb),
    ]),
  );
  tt.is(await find(a.id, 'RefreshToken', 'rt-3'), undefined);
  // A batch naming another tenant's rows cannot write them (RLS WITH CHECK).
  await tt.throwsAsync(
    scopedBatch(db(), a.id, () => payloadWriteBatch(b.id, [{ op: 'upsert', model: 'Session', id: 'sneaky', payload: {}, expiresInSeconds: 60 }]).statements),
  );
  // …nor spend them: the other tenant's token with the same id stays unspent.
  const foreign = payloadWriteBatch(a.id, [{ op: 'consume', model: 'Interaction', id: 'gone' }]);
  tt.deepEqual(foreign.outcomes(await scopedBatch(db(), a.id, () => foreign.statements)), [false]);
  tt.is((await find(b.id, 'Interaction', 'gone'))?.consumed_at, null);
});

// PostgreSQL only: the embedded database has no server connections to lose. Serial: AVA runs serial
// tests before the concurrent ones, so ending every connection interrupts no other test.
(serverUrl() ? test.serial : test.skip)(
  'a pooled connection that dies while idle (PostgreSQL restarted, an admin ended it) is replaced, not fatal',
  async (tt) => {
    // Fill the pool with idle connections, then end every one of them from the server side.
    await Promise.all(Array.from({ length: 5 }, () => scopedStatement(db(), a.id, (tx) => sql`select pg_sleep(0.05)`.execute(tx))));
    const admin = new pg.Client({ connectionString: t.databaseUrl });
    await admin.connect();
    const ended = await admin.query(`select pg_terminate_backend(pid) from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()`);
    await admin.end();
    tt.true(ended.rowCount! >= 1);
    await new Promise((r) => setTimeout(r, 300));
    // Still serving (an unhandled pool 'error' would have ended this process), on new connections.
    const res = await fetch(`${t.url}/t/${a.slug}/.well-known/openid-configuration`);
    tt.is(res.status, 200);
    const one = await scopedStatement(db(), a.id, (tx) => sql<{ one: number }>`select 1 as one`.execute(tx));
    tt.is(one.rows[0]!.one, 1);
  },
);

/**
 * The token endpoint holds its saves until its response (oidc/held-saves.ts). A statement-level
 * trigger records, per INSERT statement into oidc_payloads, which models it stored for the tenant.
 */
async function recordInsertStatements(tenantId: string) {
  await sql`create table if not exists test_insert_statements (id serial primary key, tenant_id uuid, models text[])`.execute(db());
  await sql
    .raw(`
    create or replace function test_record_insert_statement() returns trigger language plpgsql security definer as $$
    begin
      insert into test_insert_statements (tenant_id, models)
        select tenant_id, array_agg(model order by model) from new_rows group by tenant_id;
      return null;
    end $$`)
    .execute(db());
  await sql`drop trigger if exists test_record_inserts on oidc_payloads`.execute(db());
  await sql`create trigger test_record_inserts after insert on oidc_payloads referencing new table as new_rows for each statement execute function test_record_insert_statement()`.execute(
    db(),
  );
  return async () => {
    const r = await sql<{ models: string[] }>`select models from test_insert_statements where tenant_id = ${tenantId} order by id`.execute(db());
    return r.rows.map((x) => x.models);
  };
}

test.serial('a refresh stores its new refresh token and access token together, in one statement, before it answers', async (tt) => {
  const c = await createTenant(t);
  const client = (await adminApi(t, c, 'POST', '/clients', webClient())).body;
  const { tokens, config } = await signIn(t, c, client);
  const statements = await recordInsertStatements(c.id);
  const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
  tt.deepEqual(await statements(), [['AccessToken', 'RefreshToken']]);
  // Both were stored when the answer came: each works at once.
  tt.is((await fetch(`${c.issuer}/me`, { headers: { authorization: `Bearer ${refreshed.access_token}` } })).status, 200);
  tt.truthy((await oidc.refreshTokenGrant(config, refreshed.refresh_token!)).access_token);
  await sql`drop trigger test_record_inserts on oidc_payloads`.execute(db());
});

test.serial('a token request whose tokens cannot be stored answers server_error and hands out no token', async (tt) => {
  const c = await createTenant(t);
  const client = (await adminApi(t, c, 'POST', '/clients', webClient())).body;
  const { tokens, config } = await signIn(t, c, client);
  await sql
    .raw(`
    create or replace function test_refuse_access_tokens() returns trigger language plpgsql as $$
    begin
      if new.model = 'AccessToken' and new.tenant_id = '${c.id}' then raise exception 'refused by the test'; end if;
      return new;
    end $$`)
    .execute(db());
  await sql`create trigger test_refuse before insert on oidc_payloads for each row execute function test_refuse_access_tokens()`.execute(db());
  try {
    const res = await fetch(`${c.issuer}/token`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(`${client.client_id}:${client.client_secret}`).toString('base64')}`,
      },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token! }).toString(),
    });
    tt.is(res.status, 500);
    tt.is(res.headers.get('cache-control'), 'no-store');
    const body = (await res.json()) as Record<string, unknown>;
    tt.is(body.error, 'server_error');
    tt.is(body.access_token, undefined);
    tt.is(body.refresh_token, undefined);
    tt.is(body.id_token, undefined);
  } finally {
    await sql`drop trigger test_refuse on oidc_payloads`.execute(db());
  }
  // The refresh token that request spent was given back: the client goes on with it.
  const again = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
  tt.truthy(again.access_token);
});

test('a statement scoped by slug sees only the tenant the slug names, as the app role; an unknown slug sees no tenant-scoped row', async (tt) => {
  const keysOf = (slug: string) => slugScopedStatement(db(), slug, (tx) => tx.selectFrom('signing_keys').select('tenant_id').execute());
  // Concurrent, so on PostgreSQL they may share a round trip with each other and with an id-scoped read.
  const [ofA, ofB, ofNone, byId] = await Promise.all([
    keysOf(a.slug),
    keysOf(b.slug),
    keysOf('no-such-tenant'),
    scopedStatement(db(), b.id, (tx) => tx.selectFrom('signing_keys').select('tenant_id').execute()),
  ]);
  tt.true(ofA.length > 0);
  tt.deepEqual(new Set(ofA.map((r) => r.tenant_id)), new Set([a.id]));
  tt.deepEqual(new Set(ofB.map((r) => r.tenant_id)), new Set([b.id]));
  tt.deepEqual(ofNone, [], 'no tenant: RLS shows nothing');
  tt.deepEqual(new Set(byId.map((r) => r.tenant_id)), new Set([b.id]));
  const role = await slugScopedStatement(db(), a.slug, (tx) =>
    sql<{ r: string; t: string }>`select current_user as r, current_setting('tessera.tenant_id') as t`.execute(tx),
  );
  tt.deepEqual(role.rows[0], { r: 'tessera_app', t: a.id });
  // The slug is inlined into the scope statement: anything but a slug's characters is refused.
  for (const bad of ["x' or true --", 'A-Upper', '', 'x'.repeat(64)]) {
    await tt.throwsAsync(
      slugScopedStatement(db(), bad, (tx) => sql`select 1`.execute(tx)),
      { message: /not a tenant slug/ },
    );
  }
});

test('a prepared one-shot statement: same rows as inlined, scoped at each execution (not when planned), a generic plan, and a failed execution leaves the pool usable', async (tt) => {
  const keysSeen = (tenantId: string, prepare: boolean) =>
    scopedStatement(db(), tenantId, (tx) => tx.selectFrom('signing_keys').select(['tenant_id', 'kid']).where('kid', '<>', '').orderBy('kid').execute(), {
      prepare,
    });
  // Interleaved and concurrent: a plan made under one tenant's scope must not answer for another.
  const rounds = await Promise.all(Array.from({ length: 12 }, (_, i) => keysSeen(i % 2 ? a.id : b.id, true)));
  for (const [i, rows] of rounds.entries()) tt.deepEqual(new Set(rows.map((r) => r.tenant_id)), new Set([i % 2 ? a.id : b.id]));
  tt.deepEqual(await keysSeen(a.id, true), await keysSeen(a.id, false));

  if (oneShot()) {
    const plans = await Promise.all(
      Array.from({ length: 10 }, () =>
        scopedStatement(db(), a.id, (tx) =>
          sql<{
            statement: string;
            generic_plans: string;
            custom_plans: string;
          }>`select statement, generic_plans, custom_plans from pg_prepared_statements`.execute(tx),
        ),
      ),
    );
    const ours = plans.flatMap((p) => p.rows).filter((r) => r.statement.includes('"signing_keys"'));
    tt.true(ours.length > 0, 'prepared on the connections that ran it');
    tt.true(
      ours.every((r) => Number(r.custom_plans) === 0),
      'never replanned per execution',
    );
    tt.true(ours.some((r) => Number(r.generic_plans) > 0));
  }

  const divide = (by: number) => scopedStatement(db(), a.id, (tx) => sql<{ n: number }>`select (10 / ${by}::int) as n`.execute(tx), { prepare: true });
  for (let i = 0; i < 3; i++) await tt.throwsAsync(divide(0), { message: /division by zero/ });
  const after = await Promise.all(Array.from({ length: 12 }, () => divide(2)));
  tt.true(after.every((r) => r.rows[0]!.n === 5));
});

const onPostgres = serverUrl() ? test : test.skip;

onPostgres('the members page is a prepared statement; with DATABASE_PREPARED_STATEMENTS=false nothing is prepared and the page is the same', async (tt) => {
  const off = await startTestApp({ env: { DATABASE_PREPARED_STATEMENTS: 'false' } });
  tt.teardown(() => off.stop());
  const pages: unknown[] = [];
  const preparedOf = async (app: TestApp) => {
    const seen = await Promise.all(
      Array.from({ length: 10 }, () =>
        scopedStatement(app.app.connection.db, a.id, (tx) => sql<{ statement: string }>`select statement from pg_prepared_statements`.execute(tx)),
      ),
    );
    return seen.flatMap((s) => s.rows).filter((r) => r.statement.includes('"org_members"'));
  };
  for (const app of [t, off]) {
    const tenant = app === t ? a : await createTenant(off);
    const org = (await adminApi(app, tenant, 'POST', '/organizations', { name: 'Prepared' })).body;
    const user = (await adminApi(app, tenant, 'POST', '/users', { email: 'prepared@example.test' })).body;
    tt.is((await adminApi(app, tenant, 'POST', `/organizations/${org.id}/members`, { user_id: user.id, role: 'admin' })).status, 201);
    for (let i = 0; i < 8; i++) {
      const r = await adminApi(app, tenant, 'GET', `/organizations/${org.id}/members?limit=50`);
      tt.is(r.status, 200);
      if (i === 0) pages.push(r.body.data.map((m: { email: string; roles: string[] }) => [m.email, m.roles]));
    }
    if (app === t) tt.is((await preparedOf(t)).length > 0, oneShot(), 'prepared by default, on the one-shot path');
    else tt.deepEqual(await preparedOf(off), [], 'not prepared when switched off');
  }
  tt.deepEqual(pages[0], pages[1]);
  tt.deepEqual(pages[0], [['prepared@example.test', ['admin']]]);
});
