// Frozen in time: never import from src/.
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  // Every invitation mail sent (a new invitation or a resend), so sends can be limited per
  // invitation and per organization over a sliding window — in the database, which every
  // instance shares. Rows older than the longest window are deleted by the maintenance job.
  await sql`
    CREATE TABLE invitation_sends (
      tenant_id uuid NOT NULL,
      org_id uuid NOT NULL,
      invitation_id uuid NOT NULL,
      sent_at timestamptz NOT NULL DEFAULT now(),
      FOREIGN KEY (tenant_id, invitation_id) REFERENCES org_invitations (tenant_id, id) ON DELETE CASCADE
    )`.execute(db);
  await sql`CREATE INDEX invitation_sends_by_invitation ON invitation_sends (tenant_id, invitation_id, sent_at)`.execute(db);
  await sql`CREATE INDEX invitation_sends_by_org ON invitation_sends (tenant_id, org_id, sent_at)`.execute(db);
  await sql`CREATE INDEX invitation_sends_age ON invitation_sends (sent_at)`.execute(db);
  await sql`ALTER TABLE invitation_sends ENABLE ROW LEVEL SECURITY`.execute(db);
  await sql`
    CREATE POLICY tenant_isolation ON invitation_sends TO tessera_app
    USING (tenant_id = nullif(current_setting('tessera.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = nullif(current_setting('tessera.tenant_id', true), '')::uuid)`.execute(db);
  await sql`GRANT SELECT, INSERT, UPDATE, DELETE ON invitation_sends TO tessera_app`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`DROP TABLE invitation_sends`.execute(db);
}
