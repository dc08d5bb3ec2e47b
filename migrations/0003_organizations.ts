// Frozen in time: never import from src/.
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    CREATE TABLE organizations (
      tenant_id uuid NOT NULL REFERENCES tenants ON DELETE CASCADE,
      id uuid NOT NULL DEFAULT gen_random_uuid(),
      name text NOT NULL,
      slug text NOT NULL,
      domain text,
      description text,
      website text,
      industry text,
      logo_url text,
      status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'trialing', 'pending', 'suspended')),
      metadata jsonb NOT NULL DEFAULT '{}',
      max_members integer NOT NULL DEFAULT 50 CHECK (max_members > 0),
      created_at timestamptz(3) NOT NULL DEFAULT now(),
      updated_at timestamptz(3) NOT NULL DEFAULT now(),
      PRIMARY KEY (tenant_id, id),
      UNIQUE (tenant_id, slug)
    )`.execute(db);
  await sql`CREATE UNIQUE INDEX organizations_domain ON organizations (tenant_id, lower(domain)) WHERE domain IS NOT NULL`.execute(db);
  await sql`CREATE INDEX organizations_created ON organizations (tenant_id, created_at, id)`.execute(db);

  await sql`
    CREATE TABLE org_roles (
      tenant_id uuid NOT NULL,
      org_id uuid NOT NULL,
      id uuid NOT NULL DEFAULT gen_random_uuid(),
      name text NOT NULL,
      description text,
      permissions text[] NOT NULL DEFAULT '{}',
      builtin boolean NOT NULL DEFAULT false,
      created_at timestamptz(3) NOT NULL DEFAULT now(),
      PRIMARY KEY (tenant_id, id),
      UNIQUE (tenant_id, org_id, name),
      UNIQUE (tenant_id, org_id, id),
      FOREIGN KEY (tenant_id, org_id) REFERENCES organizations (tenant_id, id) ON DELETE CASCADE
    )`.execute(db);

  await sql`
    CREATE TABLE org_members (
      tenant_id uuid NOT NULL,
      org_id uuid NOT NULL,
      user_id uuid NOT NULL,
      joined_at timestamptz(3) NOT NULL DEFAULT now(),
      PRIMARY KEY (tenant_id, org_id, user_id),
      FOREIGN KEY (tenant_id, org_id) REFERENCES organizations (tenant_id, id) ON DELETE CASCADE,
      FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
    )`.execute(db);
  await sql`CREATE INDEX org_members_page ON org_members (tenant_id, org_id, joined_at, user_id)`.execute(db);
  await sql`CREATE INDEX org_members_user ON org_members (tenant_id, user_id)`.execute(db);

  await sql`
    CREATE TABLE org_member_roles (
      tenant_id uuid NOT NULL,
      org_id uuid NOT NULL,
      user_id uuid NOT NULL,
      role_id uuid NOT NULL,
      PRIMARY KEY (tenant_id, org_id, user_id, role_id),
      FOREIGN KEY (tenant_id, org_id, user_id) REFERENCES org_members (tenant_id, org_id, user_id) ON DELETE CASCADE,
      FOREIGN KEY (tenant_id, org_id, role_id) REFERENCES org_roles (tenant_id, org_id, id) ON DELETE CASCADE
    )`.execute(db);
  await sql`CREATE INDEX org_member_roles_role ON org_member_roles (tenant_id, role_id)`.execute(db);

  await sql`
    CREATE TABLE org_invitations (
      tenant_id uuid NOT NULL,
      org_id uuid NOT NULL,
      id uuid NOT NULL DEFAULT gen_random_uuid(),
      email text NOT NULL,
      role_id uuid NOT NULL,
      token_hash text NOT NULL UNIQUE,
      status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'accepted', 'revoked', 'declined')),
      expires_at timestamptz NOT NULL,
      invited_by jsonb NOT NULL,
      accepted_user_id uuid,
      accepted_at timestamptz,
      created_at timestamptz(3) NOT NULL DEFAULT now(),
      PRIMARY KEY (tenant_id, id),
      FOREIGN KEY (tenant_id, org_id) REFERENCES organizations (tenant_id, id) ON DELETE CASCADE,
      FOREIGN KEY (tenant_id, org_id, role_id) REFERENCES org_roles (tenant_id, org_id, id) ON DELETE CASCADE
    )`.execute(db);
  await sql`CREATE INDEX org_invitations_page ON org_invitations (tenant_id, org_id, created_at, id)`.execute(db);

  // The audit log outlives what it describes: no foreign key to the organization.
  await sql`
    CREATE TABLE org_audit_log (
      tenant_id uuid NOT NULL REFERENCES tenants ON DELETE CASCADE,
      org_id uuid NOT NULL,
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
  await sql`CREATE INDEX org_audit_log_page ON org_audit_log (tenant_id, org_id, created_at, id)`.execute(db);

  for (const table of ['organizations', 'org_roles', 'org_members', 'org_member_roles', 'org_invitations', 'org_audit_log']) {
    await sql`ALTER TABLE ${sql.table(table)} ENABLE ROW LEVEL SECURITY`.execute(db);
    await sql`
      CREATE POLICY tenant_isolation ON ${sql.table(table)} TO tessera_app
      USING (tenant_id = nullif(current_setting('tessera.tenant_id', true), '')::uuid)
      WITH CHECK (tenant_id = nullif(current_setting('tessera.tenant_id', true), '')::uuid)`.execute(db);
    await sql`GRANT SELECT, INSERT, UPDATE, DELETE ON ${sql.table(table)} TO tessera_app`.execute(db);
  }
}

export async function down(): Promise<void> {
  throw new Error('0003_organizations cannot be rolled back; restore from a backup instead');
}
