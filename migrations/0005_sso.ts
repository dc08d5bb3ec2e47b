// Frozen in time: never import from src/.
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  // Domains an organization claims; verified by a DNS TXT record (or an audited admin override).
  // A verified domain belongs to one organization of the tenant: it routes sign-ins and allows JIT.
  await sql`
    CREATE TABLE org_domains (
      tenant_id uuid NOT NULL,
      org_id uuid NOT NULL,
      domain text NOT NULL,
      verification_token text NOT NULL,
      verified boolean NOT NULL DEFAULT false,
      verified_at timestamptz,
      created_at timestamptz(3) NOT NULL DEFAULT now(),
      PRIMARY KEY (tenant_id, org_id, domain),
      FOREIGN KEY (tenant_id, org_id) REFERENCES organizations (tenant_id, id) ON DELETE CASCADE
    )`.execute(db);
  await sql`CREATE UNIQUE INDEX org_domains_verified ON org_domains (tenant_id, domain) WHERE verified`.execute(db);

  await sql`ALTER TABLE organizations ADD COLUMN sso_required boolean NOT NULL DEFAULT false`.execute(db);

  await sql`
    CREATE TABLE sso_connections (
      tenant_id uuid NOT NULL,
      org_id uuid NOT NULL,
      id uuid NOT NULL DEFAULT gen_random_uuid(),
      type text NOT NULL CHECK (type IN ('saml', 'oidc')),
      name text NOT NULL,
      enabled boolean NOT NULL DEFAULT true,
      auto_provision boolean NOT NULL DEFAULT true,
      default_role text NOT NULL DEFAULT 'member',
      attribute_mapping jsonb NOT NULL DEFAULT '{}',
      group_roles jsonb NOT NULL DEFAULT '{}',
      config jsonb NOT NULL,
      secret_encrypted text,
      last_error text,
      last_error_at timestamptz,
      created_at timestamptz(3) NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (tenant_id, id),
      UNIQUE (tenant_id, org_id, id),
      FOREIGN KEY (tenant_id, org_id) REFERENCES organizations (tenant_id, id) ON DELETE CASCADE
    )`.execute(db);

  // Who came through which connection: users are keyed by (connection, subject), never by email.
  await sql`
    CREATE TABLE sso_identities (
      tenant_id uuid NOT NULL,
      connection_id uuid NOT NULL,
      subject text NOT NULL,
      user_id uuid NOT NULL,
      created_at timestamptz(3) NOT NULL DEFAULT now(),
      last_login_at timestamptz,
      PRIMARY KEY (tenant_id, connection_id, subject),
      FOREIGN KEY (tenant_id, connection_id) REFERENCES sso_connections (tenant_id, id) ON DELETE CASCADE,
      FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
    )`.execute(db);
  await sql`CREATE INDEX sso_identities_user ON sso_identities (tenant_id, user_id)`.execute(db);

  // Requests we sent to an IdP (OIDC state/nonce/PKCE, SAML request ids): single use, short-lived.
  await sql`
    CREATE TABLE sso_requests (
      tenant_id uuid NOT NULL,
      id text NOT NULL,
      connection_id uuid NOT NULL,
      interaction_uid text NOT NULL,
      nonce text,
      code_verifier text,
      expires_at timestamptz NOT NULL,
      PRIMARY KEY (tenant_id, id),
      FOREIGN KEY (tenant_id, connection_id) REFERENCES sso_connections (tenant_id, id) ON DELETE CASCADE
    )`.execute(db);

  // SAML assertion ids already used, kept until the assertion would have expired anyway.
  await sql`
    CREATE TABLE saml_replay (
      tenant_id uuid NOT NULL,
      connection_id uuid NOT NULL,
      assertion_id text NOT NULL,
      expires_at timestamptz NOT NULL,
      PRIMARY KEY (tenant_id, connection_id, assertion_id),
      FOREIGN KEY (tenant_id, connection_id) REFERENCES sso_connections (tenant_id, id) ON DELETE CASCADE
    )`.execute(db);

  for (const table of ['org_domains', 'sso_connections', 'sso_identities', 'sso_requests', 'saml_replay']) {
    await sql`ALTER TABLE ${sql.table(table)} ENABLE ROW LEVEL SECURITY`.execute(db);
    await sql`
      CREATE POLICY tenant_isolation ON ${sql.table(table)} TO tessera_app
      USING (tenant_id = nullif(current_setting('tessera.tenant_id', true), '')::uuid)
      WITH CHECK (tenant_id = nullif(current_setting('tessera.tenant_id', true), '')::uuid)`.execute(db);
    await sql`GRANT SELECT, INSERT, UPDATE, DELETE ON ${sql.table(table)} TO tessera_app`.execute(db);
  }
}

export async function down(): Promise<void> {
  throw new Error('0005_sso cannot be rolled back; restore from a backup instead');
}
