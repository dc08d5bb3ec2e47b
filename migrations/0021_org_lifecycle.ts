// Frozen in time: never import from src/.
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  // An organization's lifecycle: a tenant administrator may approve or reject what users create
  // (`rejected` is kept, so its owner sees why), trials end on a date, and every change of status
  // says why and when.
  await sql`ALTER TABLE organizations DROP CONSTRAINT organizations_status_check`.execute(db);
  await sql`
    ALTER TABLE organizations ADD CONSTRAINT organizations_status_check
    CHECK (status IN ('active', 'trialing', 'pending', 'suspended', 'rejected'))`.execute(db);
  await sql`ALTER TABLE organizations ADD COLUMN status_reason text`.execute(db);
  await sql`ALTER TABLE organizations ADD COLUMN status_changed_at timestamptz(3)`.execute(db);
  await sql`ALTER TABLE organizations ADD COLUMN trial_ends_at timestamptz(3)`.execute(db);
  // The user who created the organization (null: an admin API key, a machine client, or created
  // before this column). No foreign key: it is a record of who did it, and a deleted user's
  // organizations simply stop counting against a limit nobody can reach any more.
  await sql`ALTER TABLE organizations ADD COLUMN created_by uuid`.execute(db);
  await sql`UPDATE organizations SET status_changed_at = created_at`.execute(db);
  // The per-user creation limit counts by this.
  await sql`CREATE INDEX organizations_created_by ON organizations (tenant_id, created_by) WHERE created_by IS NOT NULL`.execute(db);
  // The trial job reads every tenant's due trials.
  await sql`CREATE INDEX organizations_trial_ends ON organizations (trial_ends_at) WHERE status = 'trialing' AND trial_ends_at IS NOT NULL`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`UPDATE organizations SET status = 'suspended' WHERE status = 'rejected'`.execute(db);
  await sql`ALTER TABLE organizations DROP CONSTRAINT organizations_status_check`.execute(db);
  await sql`
    ALTER TABLE organizations ADD CONSTRAINT organizations_status_check
    CHECK (status IN ('active', 'trialing', 'pending', 'suspended'))`.execute(db);
  await sql`DROP INDEX organizations_trial_ends`.execute(db);
  await sql`DROP INDEX organizations_created_by`.execute(db);
  await sql`ALTER TABLE organizations DROP COLUMN created_by, DROP COLUMN trial_ends_at, DROP COLUMN status_changed_at, DROP COLUMN status_reason`.execute(db);
}
