// Frozen in time: never import from src/.
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  // The tenant's own audit log: changes a tenant administrator makes to a person (their second
  // factors, for a start) that belong to no organization. Like org_audit_log it outlives what it
  // describes: no foreign key to the user.
  await sql`
    CREATE TABLE tenant_audit_log (
      tenant_id uuid NOT NULL REFERENCES tenants ON DELETE CASCADE,
      id uuid NOT NULL DEFAULT gen_random_uuid(),
      actor jsonb NOT NULL,
      action text NOT NULL,
      target_type text NOT NULL,
      target_id text,
      before jsonb,
      after jsonb,
      created_at timestamptz(3) NOT NULL DEFAULT now(),
      PRIMARY KEY (tenant_id, id)
    )`.execute(db);
  await sql`CREATE INDEX tenant_audit_log_page ON tenant_audit_log (tenant_id, created_at, id)`.execute(db);

  // Which organization's SSO connection a sign-in came through, keyed by the grant and the
  // sign-in's auth_time (a later sign-in in the same grant is another row, or none when it did
  // not use SSO), so refresh, switch and authorization requests can judge sso_required.
  await sql`
    CREATE TABLE sso_sign_ins (
      tenant_id uuid NOT NULL REFERENCES tenants ON DELETE CASCADE,
      grant_id text NOT NULL,
      auth_time bigint NOT NULL,
      org_id uuid NOT NULL,
      connection_id uuid NOT NULL,
      created_at timestamptz(3) NOT NULL DEFAULT now(),
      PRIMARY KEY (tenant_id, grant_id, auth_time)
    )`.execute(db);
  await sql`CREATE INDEX sso_sign_ins_age ON sso_sign_ins (created_at)`.execute(db);

  for (const table of ['tenant_audit_log', 'sso_sign_ins']) {
    await sql`ALTER TABLE ${sql.table(table)} ENABLE ROW LEVEL SECURITY`.execute(db);
    await sql`
      CREATE POLICY tenant_isolation ON ${sql.table(table)} TO tessera_app
      USING (tenant_id = nullif(current_setting('tessera.tenant_id', true), '')::uuid)
      WITH CHECK (tenant_id = nullif(current_setting('tessera.tenant_id', true), '')::uuid)`.execute(db);
    await sql`GRANT SELECT, INSERT, UPDATE, DELETE ON ${sql.table(table)} TO tessera_app`.execute(db);
  }
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`DROP TABLE sso_sign_ins`.execute(db);
  await sql`DROP TABLE tenant_audit_log`.execute(db);
}
