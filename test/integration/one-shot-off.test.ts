import test from 'ava';
import { sql } from 'kysely';
import * as oidc from 'openid-client';
import { scopedBatch, scopedStatement, slugScopedStatement } from '../../src/db/one-shot.ts';
import { findPayload, payloadWriteBatch, upsertPayload } from '../../src/oidc-store/oidc-payload.repo.ts';
import { adminApi, createTenant, startTestApp, type TestApp, type TestTenant, webClient } from '../helpers/app.ts';
import { serverUrl } from '../helpers/database.ts';
import { signIn } from '../helpers/oidc.ts';

/**
 * DATABASE_ONE_SHOT=false: tenant-scoped statements run as ordinary `inTenant` transactions with
 * bound parameters instead of one inlined round trip (db/one-shot.ts). Tenant isolation and the
 * OpenID flows are the same. PostgreSQL only: the embedded database never takes the one-shot
 * path, so the setting changes nothing there.
 */

const onPostgres = serverUrl() ? test : test.skip;

let off: TestApp;
let on: TestApp;
let a: TestTenant;
let b: TestTenant;

test.before(async () => {
  if (!serverUrl()) return;
  off = await startTestApp({ env: { DATABASE_ONE_SHOT: 'false' } });
  // The default, on the same database, to tell the two apart.
  on = await startTestApp({ databaseUrl: off.databaseUrl!, env: { DATABASE_ONE_SHOT: 'true' } });
  a = await createTenant(off);
  b = await createTenant(off);
});
test.after.always(async () => {
  await on?.stop();
  await off?.stop();
});

/** The statement text PostgreSQL was given for this very statement, and the scope it ran in. */
const seenByPostgres = (app: TestApp, marker: string) =>
  scopedStatement(app.app.connection.db, a.id, (tx) =>
    sql<{ query: string; role: string; tenant: string; marker: string }>`
      select current_query() as query, current_user as role, current_setting('tessera.tenant_id') as tenant, ${marker}::text as marker`.execute(tx),
  );

onPostgres('switched off, a scoped statement reaches PostgreSQL with its parameters bound, not inlined, and is scoped all the same', async (tt) => {
  tt.false(off.app.config.databaseOneShot);
  const marker = "marker-'quoted'";
  const bound = (await seenByPostgres(off, marker)).rows[0]!;
  tt.is(bound.marker, marker);
  tt.regex(bound.query, /\$1::text/);
  tt.false(bound.query.includes('marker-'), 'the value is not in the text');
  tt.false(bound.query.includes('set_config'), 'the scope went ahead in its own statement');
  tt.deepEqual([bound.role, bound.tenant], ['tessera_app', a.id]);
  // The default sends scope, statement and value as one text.
  const inlined = (await seenByPostgres(on, marker)).rows[0]!;
  tt.true(inlined.query.includes("'marker-''quoted'''"));
  tt.true(inlined.query.includes('set_config'));
  tt.deepEqual([inlined.role, inlined.tenant, inlined.marker], ['tessera_app', a.id, marker]);
});

onPostgres(
  'switched off, a scoped read sees only its own tenant, a slug-scoped one only the tenant the slug names, and a batch writes only its own',
  async (tt) => {
    const db = off.app.connection.db;
    await scopedStatement(db, a.id, (tx) => upsertPayload(tx, a.id, 'Session', 'same-id', { owner: 'a' }, 60));
    await scopedStatement(db, b.id, (tx) => upsertPayload(tx, b.id, 'Session', 'same-id', { owner: 'b' }, 60));
    // No tenant filter: only row-level security can keep the other tenant's row out.
    const seen = await Promise.all(
      [a, b, a, b].map((tenant) =>
        scopedStatement(db, tenant.id, (tx) => tx.selectFrom('oidc_payloads').select(['tenant_id', 'payload']).where('id', '=', 'same-id').execute()),
      ),
    );
    tt.deepEqual(
      seen.map((rows) => rows.map((r) => (r.payload as { owner: string }).owner)),
      [['a'], ['b'], ['a'], ['b']],
    );
    const keys = await slugScopedStatement(db, b.slug, (tx) => tx.selectFrom('signing_keys').select('tenant_id').execute());
    tt.true(keys.length > 0);
    tt.deepEqual(new Set(keys.map((k) => k.tenant_id)), new Set([b.id]));
    tt.deepEqual(await slugScopedStatement(db, 'no-such-tenant', (tx) => tx.selectFrom('signing_keys').select('tenant_id').execute()), []);
    // A batch is one transaction: spends once, and cannot write another tenant's rows.
    const batch = payloadWriteBatch(a.id, [
      { op: 'upsert', model: 'RefreshToken', id: 'rt', payload: { n: 1 }, expiresInSeconds: 60 },
      { op: 'consume', model: 'RefreshToken', id: 'rt' },
      { op: 'consume', model: 'RefreshToken', id: 'rt' },
    ]);
    tt.deepEqual(batch.outcomes(await scopedBatch(db, a.id, () => batch.statements)), [true, true, false]);
    await tt.throwsAsync(
      scopedBatch(db, a.id, () => payloadWriteBatch(b.id, [{ op: 'upsert', model: 'Session', id: 'sneaky', payload: {}, expiresInSeconds: 60 }]).statements),
    );
    tt.is(await scopedStatement(db, b.id, (tx) => findPayload(tx, b.id, 'Session', { id: 'sneaky' })), undefined);
    // …and all or nothing: the first write of a failing batch is undone.
    await tt.throwsAsync(
      scopedBatch(db, a.id, (qb) => [
        ...payloadWriteBatch(a.id, [{ op: 'upsert', model: 'Session', id: 'undone', payload: {}, expiresInSeconds: 60 }]).statements,
        sql`select 1/0`.compile(qb),
      ]),
      { message: /division by zero/ },
    );
    tt.is(await scopedStatement(db, a.id, (tx) => findPayload(tx, a.id, 'Session', { id: 'undone' })), undefined);
  },
);

onPostgres('switched off, sign-in, refresh with rotation and reuse detection, userinfo, introspection and the member list work', async (tt) => {
  const client = (await adminApi(off, a, 'POST', '/clients', webClient())).body;
  const { tokens, config } = await signIn(off, a, client);
  tt.truthy(tokens.id_token);
  const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
  tt.truthy(refreshed.access_token);
  const me = await fetch(`${a.issuer}/me`, { headers: { authorization: `Bearer ${refreshed.access_token}` } });
  tt.is(me.status, 200);
  tt.is(((await me.json()) as { email: string }).email, a.adminEmail);
  const introspected = await oidc.tokenIntrospection(config, refreshed.access_token);
  tt.true(introspected.active);
  // The spent refresh token again: refused, and the whole sign-in is revoked with it.
  const reused = await tt.throwsAsync<oidc.ResponseBodyError>(oidc.refreshTokenGrant(config, tokens.refresh_token!));
  tt.is(reused?.error, 'invalid_grant');
  const revoked = await tt.throwsAsync<oidc.ResponseBodyError>(oidc.refreshTokenGrant(config, refreshed.refresh_token!));
  tt.is(revoked?.error, 'invalid_grant');
  tt.false((await oidc.tokenIntrospection(config, refreshed.access_token)).active);
  // Another tenant's issuer does not know this tenant's token.
  const other = await fetch(`${b.issuer}/me`, { headers: { authorization: `Bearer ${refreshed.access_token}` } });
  tt.is(other.status, 401);
  // The member list (a prepared statement when the one-shot path is on) reads the same page.
  const org = (await adminApi(off, a, 'POST', '/organizations', { name: 'Off' })).body;
  const user = (await adminApi(off, a, 'POST', '/users', { email: 'member@off.test' })).body;
  tt.is((await adminApi(off, a, 'POST', `/organizations/${org.id}/members`, { user_id: user.id, role: 'admin' })).status, 201);
  const page = await adminApi(off, a, 'GET', `/organizations/${org.id}/members?limit=50`);
  tt.is(page.status, 200);
  tt.deepEqual(
    page.body.data.map((m: { email: string; roles: string[] }) => [m.email, m.roles]),
    [['member@off.test', ['admin']]],
  );
});
