// Frozen in time: never import from src/.
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  // An organization's SCIM 2.0 directories: the customer's own directory (Okta, Entra ID, …)
  // pushing who is in the organization. The bearer token is kept only as its SHA-256.
  await sql`
    CREATE TABLE scim_directories (
      tenant_id uuid NOT NULL,
      org_id uuid NOT NULL,
      id uuid NOT NULL DEFAULT gen_random_uuid(),
      name text NOT NULL,
      provider text NOT NULL DEFAULT 'generic' CHECK (provider IN ('okta', 'entra', 'google', 'jumpcloud', 'generic')),
      enabled boolean NOT NULL DEFAULT true,
      default_role text NOT NULL DEFAULT 'member',
      group_roles jsonb NOT NULL DEFAULT '{}',
      sso_match text NOT NULL DEFAULT 'user_name' CHECK (sso_match IN ('user_name', 'external_id', 'email')),
      token_hash text,
      token_hint text,
      token_created_at timestamptz(3),
      last_request jsonb,
      created_at timestamptz(3) NOT NULL DEFAULT now(),
      updated_at timestamptz(3) NOT NULL DEFAULT now(),
      PRIMARY KEY (tenant_id, id),
      UNIQUE (tenant_id, org_id, id),
      FOREIGN KEY (tenant_id, org_id) REFERENCES organizations (tenant_id, id) ON DELETE CASCADE
    )`.execute(db);

  // A directory's user: one tenant account, keyed by (directory, SCIM id); userName is unique in
  // the directory without regard to case (RFC 7643 caseExact false).
  await sql`
    CREATE TABLE scim_users (
      tenant_id uuid NOT NULL,
      directory_id uuid NOT NULL,
      id uuid NOT NULL DEFAULT gen_random_uuid(),
      user_id uuid NOT NULL,
      user_name text NOT NULL,
      user_name_key text NOT NULL,
      external_id text,
      active boolean NOT NULL DEFAULT true,
      resource jsonb NOT NULL DEFAULT '{}',
      created_account boolean NOT NULL DEFAULT false,
      disabled_account boolean NOT NULL DEFAULT false,
      version integer NOT NULL DEFAULT 1,
      created_at timestamptz(3) NOT NULL DEFAULT now(),
      updated_at timestamptz(3) NOT NULL DEFAULT now(),
      PRIMARY KEY (tenant_id, id),
      UNIQUE (tenant_id, directory_id, user_name_key),
      UNIQUE (tenant_id, directory_id, user_id),
      FOREIGN KEY (tenant_id, directory_id) REFERENCES scim_directories (tenant_id, id) ON DELETE CASCADE,
      FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
    )`.execute(db);
  await sql`CREATE INDEX scim_users_external_id ON scim_users (tenant_id, directory_id, external_id)`.execute(db);
  await sql`CREATE INDEX scim_users_page ON scim_users (tenant_id, directory_id, created_at, id)`.execute(db);
  await sql`CREATE INDEX scim_users_account ON scim_users (tenant_id, user_id)`.execute(db);

  await sql`
    CREATE TABLE scim_groups (
      tenant_id uuid NOT NULL,
      directory_id uuid NOT NULL,
      id uuid NOT NULL DEFAULT gen_random_uuid(),
      display_name text NOT NULL,
      external_id text,
      version integer NOT NULL DEFAULT 1,
      created_at timestamptz(3) NOT NULL DEFAULT now(),
      updated_at timestamptz(3) NOT NULL DEFAULT now(),
      PRIMARY KEY (tenant_id, id),
      FOREIGN KEY (tenant_id, directory_id) REFERENCES scim_directories (tenant_id, id) ON DELETE CASCADE
    )`.execute(db);
  await sql`CREATE UNIQUE INDEX scim_groups_display_name ON scim_groups (tenant_id, directory_id, lower(display_name))`.execute(db);
  await sql`CREATE INDEX scim_groups_page ON scim_groups (tenant_id, directory_id, created_at, id)`.execute(db);

  await sql`
    CREATE TABLE scim_group_members (
      tenant_id uuid NOT NULL,
      group_id uuid NOT NULL,
      scim_user_id uuid NOT NULL,
      PRIMARY KEY (tenant_id, group_id, scim_user_id),
      FOREIGN KEY (tenant_id, group_id) REFERENCES scim_groups (tenant_id, id) ON DELETE CASCADE,
      FOREIGN KEY (tenant_id, scim_user_id) REFERENCES scim_users (tenant_id, id) ON DELETE CASCADE
    )`.execute(db);
  await sql`CREATE INDEX scim_group_members_user ON scim_group_members (tenant_id, scim_user_id)`.execute(db);

  for (const table of ['scim_directories', 'scim_users', 'scim_groups', 'scim_group_members']) {
    await sql`ALTER TABLE ${sql.table(table)} ENABLE ROW LEVEL SECURITY`.execute(db);
    await sql`
      CREATE POLICY tenant_isolation ON ${sql.table(table)} TO tessera_app
      USING (tenant_id = nullif(current_setting('tessera.tenant_id', true), '')::uuid)
      WITH CHECK (tenant_id = nullif(current_setting('tessera.tenant_id', true), '')::uuid)`.execute(db);
    await sql`GRANT SELECT, INSERT, UPDATE, DELETE ON ${sql.table(table)} TO tessera_app`.execute(db);
  }
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const table of ['scim_group_members', 'scim_groups', 'scim_users', 'scim_directories']) await sql`DROP TABLE ${sql.table(table)}`.execute(db);
}
