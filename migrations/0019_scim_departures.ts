// Frozen in time: never import from src/.
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  // People a directory deleted (SCIM DELETE): the directory forgets its user, but the organization
  // remembers that its directory removed the account, so an SSO sign-in through the organization's
  // connection does not bring them back — as for a user the directory deactivated. Gone when the
  // directory pushes the account again, or with the directory.
  await sql`
    CREATE TABLE scim_departures (
      tenant_id uuid NOT NULL,
      directory_id uuid NOT NULL,
      user_id uuid NOT NULL,
      departed_at timestamptz(3) NOT NULL DEFAULT now(),
      PRIMARY KEY (tenant_id, directory_id, user_id),
      FOREIGN KEY (tenant_id, directory_id) REFERENCES scim_directories (tenant_id, id) ON DELETE CASCADE,
      FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
    )`.execute(db);
  await sql`CREATE INDEX scim_departures_account ON scim_departures (tenant_id, user_id)`.execute(db);
  await sql`ALTER TABLE scim_departures ENABLE ROW LEVEL SECURITY`.execute(db);
  await sql`
    CREATE POLICY tenant_isolation ON scim_departures TO tessera_app
    USING (tenant_id = nullif(current_setting('tessera.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = nullif(current_setting('tessera.tenant_id', true), '')::uuid)`.execute(db);
  await sql`GRANT SELECT, INSERT, UPDATE, DELETE ON scim_departures TO tessera_app`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`DROP TABLE scim_departures`.execute(db);
}
