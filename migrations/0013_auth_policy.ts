// Frozen in time: never import from src/.
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  // An organization's authentication policy beside its row (one read with the organization).
  // Only what differs from the defaults is stored; sso_required keeps its own column (migration
  // 0005), which the policy reads and writes. mfa_required_since starts the grace period.
  await sql`ALTER TABLE organizations ADD COLUMN auth_policy jsonb NOT NULL DEFAULT '{}'::jsonb`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`ALTER TABLE organizations DROP COLUMN auth_policy`.execute(db);
}
