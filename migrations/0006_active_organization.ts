// Frozen in time: never import from src/.
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  // The organization a user last chose to work in (account page or switch API): preselected when
  // an app needs an organization and does not name one. Cleared when the organization goes;
  // SET NULL names the column so tenant_id, part of the same foreign key, is left alone.
  await sql`ALTER TABLE users ADD COLUMN active_org_id uuid`.execute(db);
  await sql`
    ALTER TABLE users ADD CONSTRAINT users_active_org_fk
      FOREIGN KEY (tenant_id, active_org_id) REFERENCES organizations (tenant_id, id) ON DELETE SET NULL (active_org_id)`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`ALTER TABLE users DROP COLUMN active_org_id`.execute(db);
}
