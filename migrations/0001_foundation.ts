// Frozen in time: never import from src/. Later changes go in new migrations.
// Timestamps that page lists (created_at, joined_at) are timestamptz(3): millisecond precision,
// the same as a JavaScript Date, so a keyset cursor names its row exactly.
import { type Kysely, sql } from 'kysely';

const TENANT_TABLES = ['admin_api_keys', 'signing_keys', 'oidc_payloads', 'clients', 'users'];

export async function up(db: Kysely<any>): Promise<void> {
  // The role application queries run as (SET LOCAL ROLE per transaction), so that row-level
  // security binds them even when the connecting user is a superuser. Roles are cluster-wide:
  // another database on the same server may have created it already.
  await sql`
    DO $$
    BEGIN
      IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'tessera_app') THEN
        CREATE ROLE tessera_app NOLOGIN NOSUPERUSER NOBYPASSRLS;
      END IF;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
    END $$`.execute(db);
  await sql`
    DO $$
    BEGIN
      EXECUTE format('GRANT tessera_app TO %I', current_user);
    EXCEPTION WHEN OTHERS THEN NULL; -- already a member, or a superuser (who needs no grant)
    END $$`.execute(db);
  await sql`GRANT USAGE ON SCHEMA public TO tessera_app`.execute(db);

  await sql`
    CREATE TABLE tenants (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      slug text NOT NULL UNIQUE,
      name text NOT NULL,
      settings jsonb NOT NULL DEFAULT '{}',
      config_version integer NOT NULL DEFAULT 1,
      created_at timestamptz(3) NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now()
    )`.execute(db);

  await sql`
    CREATE TABLE admin_api_keys (
      tenant_id uuid NOT NULL REFERENCES tenants ON DELETE CASCADE,
      id uuid NOT NULL DEFAULT gen_random_uuid(),
      name text NOT NULL,
      prefix text NOT NULL,
      key_hash text NOT NULL,
      created_at timestamptz(3) NOT NULL DEFAULT now(),
      last_used_at timestamptz,
      PRIMARY KEY (tenant_id, id),
      UNIQUE (tenant_id, key_hash)
    )`.execute(db);

  await sql`
    CREATE TABLE signing_keys (
      tenant_id uuid NOT NULL REFERENCES tenants ON DELETE CASCADE,
      kid text NOT NULL,
      alg text NOT NULL,
      public_jwk jsonb NOT NULL,
      private_jwk_encrypted text NOT NULL,
      created_at timestamptz(3) NOT NULL DEFAULT now(),
      retired_at timestamptz,
      PRIMARY KEY (tenant_id, kid)
    )`.execute(db);

  await sql`
    CREATE TABLE oidc_payloads (
      tenant_id uuid NOT NULL REFERENCES tenants ON DELETE CASCADE,
      model text NOT NULL,
      id text NOT NULL,
      payload jsonb NOT NULL,
      grant_id text,
      user_code text,
      uid text,
      expires_at timestamptz,
      consumed_at timestamptz,
      PRIMARY KEY (tenant_id, model, id)
    )`.execute(db);
  await sql`CREATE INDEX oidc_payloads_grant ON oidc_payloads (tenant_id, grant_id) WHERE grant_id IS NOT NULL`.execute(db);
  await sql`CREATE INDEX oidc_payloads_uid ON oidc_payloads (tenant_id, model, uid) WHERE uid IS NOT NULL`.execute(db);
  await sql`CREATE INDEX oidc_payloads_user_code ON oidc_payloads (tenant_id, model, user_code) WHERE user_code IS NOT NULL`.execute(db);
  await sql`CREATE INDEX oidc_payloads_expires ON oidc_payloads (expires_at)`.execute(db);

  await sql`
    CREATE TABLE clients (
      tenant_id uuid NOT NULL REFERENCES tenants ON DELETE CASCADE,
      client_id text NOT NULL,
      client_secret_hash text,
      name text NOT NULL,
      metadata jsonb NOT NULL,
      require_consent boolean NOT NULL DEFAULT false,
      created_at timestamptz(3) NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (tenant_id, client_id)
    )`.execute(db);

  await sql`
    CREATE TABLE users (
      tenant_id uuid NOT NULL REFERENCES tenants ON DELETE CASCADE,
      id uuid NOT NULL DEFAULT gen_random_uuid(),
      email text NOT NULL,
      email_verified boolean NOT NULL DEFAULT false,
      name text,
      given_name text,
      family_name text,
      password_hash text,
      disabled boolean NOT NULL DEFAULT false,
      tenant_admin boolean NOT NULL DEFAULT false,
      created_at timestamptz(3) NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      last_login_at timestamptz,
      PRIMARY KEY (tenant_id, id)
    )`.execute(db);
  await sql`CREATE UNIQUE INDEX users_email ON users (tenant_id, lower(email))`.execute(db);

  for (const table of TENANT_TABLES) {
    await sql`ALTER TABLE ${sql.table(table)} ENABLE ROW LEVEL SECURITY`.execute(db);
    await sql`
      CREATE POLICY tenant_isolation ON ${sql.table(table)} TO tessera_app
      USING (tenant_id = nullif(current_setting('tessera.tenant_id', true), '')::uuid)
      WITH CHECK (tenant_id = nullif(current_setting('tessera.tenant_id', true), '')::uuid)`.execute(db);
    await sql`GRANT SELECT, INSERT, UPDATE, DELETE ON ${sql.table(table)} TO tessera_app`.execute(db);
  }
  // The tenant row itself is read by slug before any tenant is known; the app role may read it.
  await sql`GRANT SELECT ON tenants TO tessera_app`.execute(db);
}

export async function down(): Promise<void> {
  throw new Error('0001_foundation cannot be rolled back; restore from a backup instead');
}
