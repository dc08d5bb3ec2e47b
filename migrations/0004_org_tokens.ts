// Frozen in time: never import from src/.
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  // The organization a sign-in (an oidc-provider grant) is working in. Access tokens of the grant
  // carry it as org_id; switching changes this row; losing the membership revokes the grant.
  await sql`
    CREATE TABLE grant_organizations (
      tenant_id uuid NOT NULL,
      grant_id text NOT NULL,
      org_id uuid NOT NULL,
      user_id uuid NOT NULL,
      selected_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (tenant_id, grant_id),
      FOREIGN KEY (tenant_id, org_id) REFERENCES organizations (tenant_id, id) ON DELETE CASCADE
    )`.execute(db);
  await sql`CREATE INDEX grant_organizations_org ON grant_organizations (tenant_id, org_id, user_id)`.execute(db);

  // Scoped API tokens minted by admins for a user: each is an access token of its own grant.
  await sql`
    CREATE TABLE api_tokens (
      tenant_id uuid NOT NULL,
      id uuid NOT NULL DEFAULT gen_random_uuid(),
      user_id uuid NOT NULL,
      grant_id text NOT NULL,
      jti text NOT NULL,
      scopes text[] NOT NULL,
      org_id uuid,
      expires_at timestamptz NOT NULL,
      last_used_at timestamptz,
      revoked_at timestamptz,
      created_at timestamptz(3) NOT NULL DEFAULT now(),
      PRIMARY KEY (tenant_id, id),
      UNIQUE (tenant_id, jti),
      FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
    )`.execute(db);
  await sql`CREATE INDEX api_tokens_user ON api_tokens (tenant_id, user_id, created_at, id)`.execute(db);

  // Per client: may it ask for organizations (Auth0's organization_usage), and which
  // organizations a machine client may act for with client credentials.
  await sql`ALTER TABLE clients ADD COLUMN organization_usage text NOT NULL DEFAULT 'allow' CHECK (organization_usage IN ('deny', 'allow', 'require'))`.execute(
    db,
  );
  await sql`ALTER TABLE clients ADD COLUMN organization_ids uuid[] NOT NULL DEFAULT '{}'`.execute(db);

  for (const table of ['grant_organizations', 'api_tokens']) {
    await sql`ALTER TABLE ${sql.table(table)} ENABLE ROW LEVEL SECURITY`.execute(db);
    await sql`
      CREATE POLICY tenant_isolation ON ${sql.table(table)} TO tessera_app
      USING (tenant_id = nullif(current_setting('tessera.tenant_id', true), '')::uuid)
      WITH CHECK (tenant_id = nullif(current_setting('tessera.tenant_id', true), '')::uuid)`.execute(db);
    await sql`GRANT SELECT, INSERT, UPDATE, DELETE ON ${sql.table(table)} TO tessera_app`.execute(db);
  }
}

export async function down(): Promise<void> {
  throw new Error('0004_org_tokens cannot be rolled back; restore from a backup instead');
}
