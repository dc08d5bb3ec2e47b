// Frozen in time: never import from src/.
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  // Accounts and invitations are looked up by email regardless of case. Under row-level security
  // PostgreSQL uses an index only for conditions whose functions are all leakproof, and lower()
  // is not: `lower(email) = $1` read every account of the tenant on every sign-in, invitation and
  // SSO login (30–90 ms in a tenant of 100,000 accounts; `npm run bench`, auto_explain). The
  // lower-cased email is now a column PostgreSQL keeps, compared as it is.
  await sql`ALTER TABLE users ADD COLUMN email_key text GENERATED ALWAYS AS (lower(email)) STORED`.execute(db);
  await sql`CREATE UNIQUE INDEX users_email_key ON users (tenant_id, email_key)`.execute(db);
  await sql`DROP INDEX users_email`.execute(db);
  await sql`ALTER TABLE org_invitations ADD COLUMN email_key text GENERATED ALWAYS AS (lower(email)) STORED`.execute(db);
  await sql`CREATE INDEX org_invitations_email_key ON org_invitations (tenant_id, email_key)`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`DROP INDEX org_invitations_email_key`.execute(db);
  await sql`ALTER TABLE org_invitations DROP COLUMN email_key`.execute(db);
  await sql`CREATE UNIQUE INDEX users_email ON users (tenant_id, lower(email))`.execute(db);
  await sql`DROP INDEX users_email_key`.execute(db);
  await sql`ALTER TABLE users DROP COLUMN email_key`.execute(db);
}
