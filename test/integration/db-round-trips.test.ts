import test from 'ava';
import { sql } from 'kysely';
import { inlineParameters, scopedStatement } from '../../src/db/one-shot.ts';
import { inTenant } from '../../src/db/tenant-scope.ts';
import { findPayload, upsertPayload } from '../../src/oidc/oidc-payload.repo.ts';
import { createTenant, startTestApp, type TestApp, type TestTenant } from '../helpers/app.ts';

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

test('a one-shot statement sees only its tenant, even without a tenant filter, and runs as the app role', async (tt) => {
  await scopedStatement(db(), a.id, (tx) => upsertPayload(tx, a.id, 'Session', 'shared-id', { owner: 'a' }, 60));
  await scopedStatement(db(), b.id, (tx) => upsertPayload(tx, b.id, 'Session', 'shared-id', { owner: 'b' }, 60));
  const seen = await scopedStatement(db(), a.id, (tx) => tx.selectFrom('oidc_payloads').select(['tenant_id', 'payload']).where('id', '=', 'shared-id').execute());
  tt.deepEqual(seen.map((r) => r.tenant_id), [a.id]);
  const role = await scopedStatement(db(), a.id, (tx) => sql<{ r: string; t: string }>`select current_user as r, current_setting('tessera.tenant_id') as t`.execute(tx));
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

test('inlineParameters leaves quoted text alone and refuses what it cannot express', (tt) => {
  tt.is(inlineParameters(`select '$1', "$1", $1, $2`, ['x', null]), `select '$1', "$1", 'x', NULL`);
  tt.is(inlineParameters(`select 'it''s $1', $1`, ["o'k"]), `select 'it''s $1', 'o''k'`);
  tt.throws(() => inlineParameters('select $3', ['a']));
  tt.throws(() => inlineParameters('select $1', [Buffer.from('x')]));
  tt.throws(() => inlineParameters(`select 'unterminated $1`, ['a']));
});

test('a transaction that fails in its first statement leaves the connection clean (lazy BEGIN)', async (tt) => {
  await tt.throwsAsync(inTenant(db(), a.id, async (tx) => sql`select 1/0`.execute(tx)));
  // Every pooled connection still works and is not stuck in an aborted transaction.
  const results = await Promise.all(Array.from({ length: 12 }, () => inTenant(db(), a.id, (tx) => sql<{ one: number }>`select 1 as one`.execute(tx))));
  tt.true(results.every((r) => r.rows[0]!.one === 1));
  // A transaction that only scopes itself (BEGIN merged into the scope statement) commits cleanly.
  tt.is(await inTenant(db(), a.id, async () => 'nothing ran'), 'nothing ran');
});
