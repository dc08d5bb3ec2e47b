// Frozen in time: never import from src/.
import { type Kysely, sql } from 'kysely';

const TABLES = ['teams', 'team_roles', 'team_members'];

export async function up(db: Kysely<any>): Promise<void> {
  // How many teams an organization may have (0: none).
  await sql`ALTER TABLE organizations ADD COLUMN max_teams integer NOT NULL DEFAULT 100 CHECK (max_teams >= 0 AND max_teams <= 10000)`.execute(db);

  // Teams inside an organization: their own members and roles, under the organization's.
  await sql`
    CREATE TABLE teams (
      tenant_id uuid NOT NULL REFERENCES tenants ON DELETE CASCADE,
      org_id uuid NOT NULL,
      id uuid NOT NULL DEFAULT gen_random_uuid(),
      name text NOT NULL,
      slug text NOT NULL,
      description text,
      created_at timestamptz(3) NOT NULL DEFAULT now(),
      updated_at timestamptz(3) NOT NULL DEFAULT now(),
      PRIMARY KEY (tenant_id, id),
      UNIQUE (tenant_id, org_id, slug),
      UNIQUE (tenant_id, org_id, id),
      FOREIGN KEY (tenant_id, org_id) REFERENCES organizations (tenant_id, id) ON DELETE CASCADE
    )`.execute(db);
  await sql`CREATE INDEX teams_page ON teams (tenant_id, org_id, created_at, id)`.execute(db);

  // An organization's custom team roles; the built-in `admin` and `member` are not rows.
  await sql`
    CREATE TABLE team_roles (
      tenant_id uuid NOT NULL REFERENCES tenants ON DELETE CASCADE,
      org_id uuid NOT NULL,
      id uuid NOT NULL DEFAULT gen_random_uuid(),
      name text NOT NULL CHECK (name NOT IN ('admin', 'member')),
      description text,
      permissions text[] NOT NULL DEFAULT '{}',
      created_at timestamptz(3) NOT NULL DEFAULT now(),
      PRIMARY KEY (tenant_id, id),
      UNIQUE (tenant_id, org_id, name),
      FOREIGN KEY (tenant_id, org_id) REFERENCES organizations (tenant_id, id) ON DELETE CASCADE
    )`.execute(db);

  // A team's member is a member of its organization: the foreign key to org_members ends the team
  // membership in the statement that ends the organization's, whichever path removes them.
  // Roles are names (built-in or the organization's team_roles), at least one.
  await sql`
    CREATE TABLE team_members (
      tenant_id uuid NOT NULL REFERENCES tenants ON DELETE CASCADE,
      org_id uuid NOT NULL,
      team_id uuid NOT NULL,
      user_id uuid NOT NULL,
      roles text[] NOT NULL CHECK (cardinality(roles) > 0),
      joined_at timestamptz(3) NOT NULL DEFAULT now(),
      PRIMARY KEY (tenant_id, team_id, user_id),
      FOREIGN KEY (tenant_id, org_id, team_id) REFERENCES teams (tenant_id, org_id, id) ON DELETE CASCADE,
      FOREIGN KEY (tenant_id, org_id, user_id) REFERENCES org_members (tenant_id, org_id, user_id) ON DELETE CASCADE
    )`.execute(db);
  await sql`CREATE INDEX team_members_page ON team_members (tenant_id, team_id, joined_at, user_id)`.execute(db);
  await sql`CREATE INDEX team_members_person ON team_members (tenant_id, org_id, user_id)`.execute(db);

  // The team a sign-in works in, beside its organization (null: the organization only).
  await sql`ALTER TABLE grant_organizations ADD COLUMN team_id uuid`.execute(db);

  for (const table of TABLES) {
    await sql`ALTER TABLE ${sql.table(table)} ENABLE ROW LEVEL SECURITY`.execute(db);
    await sql`ALTER TABLE ${sql.table(table)} FORCE ROW LEVEL SECURITY`.execute(db);
    await sql`
      CREATE POLICY tenant_isolation ON ${sql.table(table)} TO tessera_app
      USING (tenant_id = nullif(current_setting('tessera.tenant_id', true), '')::uuid)
      WITH CHECK (tenant_id = nullif(current_setting('tessera.tenant_id', true), '')::uuid)`.execute(db);
    await sql`GRANT SELECT, INSERT, UPDATE, DELETE ON ${sql.table(table)} TO tessera_app`.execute(db);
  }
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`ALTER TABLE grant_organizations DROP COLUMN team_id`.execute(db);
  for (const table of [...TABLES].reverse()) await sql`DROP TABLE ${sql.table(table)}`.execute(db);
  await sql`ALTER TABLE organizations DROP COLUMN max_teams`.execute(db);
}
