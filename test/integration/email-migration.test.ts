import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { Kysely, PostgresDialect, sql } from 'kysely';
import { FileMigrationProvider, Migrator } from 'kysely/migration';
import pg from 'pg';
import { PGliteDialect } from '../../src/db/pglite-dialect.ts';
import { createTestDatabase, serverUrl } from '../helpers/database.ts';

// Migration 0009 gives the rows of an existing database the keys the application now computes,
// and refuses to go on (changing nothing) while two accounts would share a key or an account's
// address is one the rule refuses. The same on PostgreSQL and on embedded PGlite.

const migrationFolder = fileURLToPath(new URL('../../migrations/', import.meta.url));
const migratorFor = (db: Kysely<any>) => new Migrator({ db, provider: new FileMigrationProvider({ fs, path, migrationFolder }) });

async function keysOf(db: Kysely<any>, table: 'users' | 'org_invitations') {
  const r = await sql<{ email: string; email_key: string | null }>`select email, email_key from ${sql.table(table)} order by created_at, id`.execute(db);
  return r.rows.map((row) => [row.email, row.email_key]);
}

async function emailKeyIsGenerated(db: Kysely<any>) {
  const r = await sql<{
    generated: string;
  }>`select attgenerated as generated from pg_attribute where attrelid = 'users'::regclass and attname = 'email_key'`.execute(db);
  return r.rows[0]!.generated === 's';
}

async function scenario(tt: any, db: Kysely<any>) {
  const migrator = migratorFor(db);
  const before = await migrator.migrateTo('0008_email_keys');
  if (before.error) throw before.error;

  // A database of the previous version: keys were PostgreSQL's lower(email).
  const tenant = (await sql<{ id: string }>`insert into tenants (slug, name) values ('acme', 'Acme') returning id`.execute(db)).rows[0]!.id;
  const user = (email: string, createdAt: string) =>
    sql<{ id: string }>`insert into users (tenant_id, email, created_at) values (${tenant}, ${email}, ${createdAt}::timestamptz) returning id`
      .execute(db)
      .then((r) => r.rows[0]!.id);
  const kim = await user('Kim@Example.test', '2024-01-01T00:00:00Z');
  const dotless = await user('kım@example.test', '2024-02-01T00:00:00Z');
  const joiner = await user('k\u200Dim@example.test', '2024-03-01T00:00:00Z');
  await user('Emp@Bücher.test', '2024-04-01T00:00:00Z');
  await user('Ame\u0301lie@example.test', '2024-05-01T00:00:00Z');
  const org = (await sql<{ id: string }>`insert into organizations (tenant_id, name, slug) values (${tenant}, 'Org', 'org') returning id`.execute(db)).rows[0]!
    .id;
  const role = (await sql<{ id: string }>`insert into org_roles (tenant_id, org_id, name) values (${tenant}, ${org}, 'member') returning id`.execute(db))
    .rows[0]!.id;
  for (const [i, email] of ['Zed@Example.test', 'z\u200Ded@example.test'].entries()) {
    await sql`insert into org_invitations (tenant_id, org_id, email, role_id, token_hash, expires_at, invited_by, created_at)
      values (${tenant}, ${org}, ${email}, ${role}, ${`hash-${i}`}, now() + interval '1 day', '{}'::jsonb, now() + ${`${i} seconds`}::interval)`.execute(db);
  }

  // Two accounts of one address and one refused address: stop, name them, change nothing.
  const failed = await migrator.migrateToLatest();
  tt.truthy(failed.error);
  const message = (failed.error as Error).message;
  tt.regex(
    message,
    /Addresses the rule refuses:\n- tenant acme: "k\\u\{200D\}im@example\.test" \(user [0-9a-f-]+, created 2024-03-01T00:00:00\.000Z\) contains an invisible character \(U\+200D\)/,
  );
  tt.true(message.includes(joiner));
  tt.regex(
    message,
    /Addresses that are one account \(oldest first\):\n- tenant acme, "kim@example\.test": "Kim@Example\.test" \(user [0-9a-f-]+, created 2024-01-01T00:00:00\.000Z\); "kım@example\.test"/,
  );
  tt.true(message.indexOf(kim) < message.indexOf(dotless), 'the oldest account first');
  tt.regex(message, /keep the oldest of each group/);
  tt.true(await emailKeyIsGenerated(db), 'rolled back: keys are still lower(email)');
  tt.is((await migrator.getMigrations()).find((m) => m.name === '0009_canonical_email_keys')!.executedAt, undefined);

  // The administrators resolve them; the migration then goes through.
  await sql`delete from users where id in (${dotless}, ${joiner})`.execute(db);
  const done = await migrator.migrateToLatest();
  if (done.error) throw done.error;
  tt.false(await emailKeyIsGenerated(db));
  tt.deepEqual(await keysOf(db, 'users'), [
    ['Kim@Example.test', 'kim@example.test'],
    ['Emp@Bücher.test', 'emp@xn--bcher-kva.test'],
    ['Amélie@example.test', 'amélie@example.test'], // stored in NFC from now on
  ]);
  // An invitation to a refused address keeps no key: no account can accept it.
  tt.deepEqual(await keysOf(db, 'org_invitations'), [
    ['Zed@Example.test', 'zed@example.test'],
    ['z\u200Ded@example.test', null],
  ]);
  // Still one account per key, and every account has one.
  await tt.throwsAsync(sql`insert into users (tenant_id, email, email_key) values (${tenant}, 'KIM@example.test', 'kim@example.test')`.execute(db), {
    message: /users_email_key/,
  });
  await tt.throwsAsync(sql`insert into users (tenant_id, email) values (${tenant}, 'new@example.test')`.execute(db), { message: /email_key/ });

  // And back (undoing any later migration first): the keys are PostgreSQL's again.
  const down = await migrator.migrateTo('0008_email_keys');
  if (down.error) throw down.error;
  tt.true(await emailKeyIsGenerated(db));
  tt.deepEqual((await keysOf(db, 'users'))[1], ['Emp@Bücher.test', 'emp@bücher.test']);
}

test('PostgreSQL: existing rows get canonical keys; shared or refused addresses stop the migration, named', async (tt) => {
  if (!serverUrl()) return tt.pass('needs PostgreSQL (DATABASE_URL)');
  const fresh = await createTestDatabase();
  const pool = new pg.Pool({ connectionString: fresh.url, max: 2 });
  pool.on('error', () => {}); // an idle connection ended from outside is simply replaced
  const db = new Kysely<any>({ dialect: new PostgresDialect({ pool }) });
  try {
    await scenario(tt, db);
  } finally {
    await db.destroy();
    await fresh.drop();
  }
});

test('embedded PGlite: the same migration, the same outcome', async (tt) => {
  const { PGlite } = await import('@electric-sql/pglite');
  const db = new Kysely<any>({ dialect: new PGliteDialect(await PGlite.create()) });
  try {
    await scenario(tt, db);
  } finally {
    await db.destroy();
  }
});
