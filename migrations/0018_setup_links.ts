// Frozen in time: never import from src/.
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  // Links an organization's owner gives the customer's IT admin to set up SSO, directory sync and
  // domains without a tenant account. The secret in the link is kept only as its SHA-256; the
  // first browser to open it is bound to it (the SHA-256 of a random value in that browser's cookie).
  await sql`
    CREATE TABLE setup_links (
      tenant_id uuid NOT NULL,
      org_id uuid NOT NULL,
      id uuid NOT NULL DEFAULT gen_random_uuid(),
      token_hash text NOT NULL,
      features text[] NOT NULL CHECK (cardinality(features) > 0 AND features <@ ARRAY['sso', 'directory_sync', 'domains']::text[]),
      expires_at timestamptz(3) NOT NULL,
      created_by jsonb NOT NULL,
      revoked_at timestamptz(3),
      browser_hash text,
      opened_at timestamptz(3),
      last_used_at timestamptz(3),
      -- The SSO connection the link sets up: chosen (or made up front, so the IdP can be given its
      -- URLs before the connection exists) at the link's SSO step.
      connection_id uuid,
      last_test jsonb,
      created_at timestamptz(3) NOT NULL DEFAULT now(),
      PRIMARY KEY (tenant_id, id),
      UNIQUE (tenant_id, token_hash),
      FOREIGN KEY (tenant_id, org_id) REFERENCES organizations (tenant_id, id) ON DELETE CASCADE
    )`.execute(db);
  await sql`CREATE INDEX setup_links_org ON setup_links (tenant_id, org_id, created_at)`.execute(db);

  // A test sign-in started from a setup link: its answer is shown on the setup page, and makes
  // no account, link, membership or session.
  await sql`ALTER TABLE sso_requests ADD COLUMN setup_link_id uuid`.execute(db);
  await sql`
    ALTER TABLE sso_requests ADD FOREIGN KEY (tenant_id, setup_link_id) REFERENCES setup_links (tenant_id, id) ON DELETE CASCADE`.execute(db);

  await sql`ALTER TABLE setup_links ENABLE ROW LEVEL SECURITY`.execute(db);
  await sql`
    CREATE POLICY tenant_isolation ON setup_links TO tessera_app
    USING (tenant_id = nullif(current_setting('tessera.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = nullif(current_setting('tessera.tenant_id', true), '')::uuid)`.execute(db);
  await sql`GRANT SELECT, INSERT, UPDATE, DELETE ON setup_links TO tessera_app`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`ALTER TABLE sso_requests DROP COLUMN setup_link_id`.execute(db);
  await sql`DROP TABLE setup_links`.execute(db);
}
