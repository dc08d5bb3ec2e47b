// Frozen in time: never import from src/.
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  // A person's second factors and passkeys. TOTP keeps its secret sealed with ENCRYPTION_KEY and
  // the last time step it accepted (a code is good once); a passkey keeps its public key, the
  // authenticator's signature counter and what it said about itself.
  await sql`
    CREATE TABLE user_factors (
      tenant_id uuid NOT NULL,
      id uuid NOT NULL DEFAULT gen_random_uuid(),
      user_id uuid NOT NULL,
      kind text NOT NULL CHECK (kind IN ('totp', 'passkey')),
      name text NOT NULL,
      confirmed boolean NOT NULL DEFAULT false,
      secret_encrypted text,
      last_totp_step bigint,
      credential_id text,
      public_key bytea,
      sign_count bigint,
      transports text[],
      aaguid text,
      backed_up boolean,
      created_at timestamptz(3) NOT NULL DEFAULT now(),
      last_used_at timestamptz(3),
      PRIMARY KEY (tenant_id, id),
      FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE,
      CHECK (kind <> 'totp' OR secret_encrypted IS NOT NULL),
      CHECK (kind <> 'passkey' OR (credential_id IS NOT NULL AND public_key IS NOT NULL))
    )`.execute(db);
  await sql`CREATE INDEX user_factors_user ON user_factors (tenant_id, user_id)`.execute(db);
  await sql`CREATE UNIQUE INDEX user_factors_credential ON user_factors (tenant_id, credential_id) WHERE credential_id IS NOT NULL`.execute(db);

  // Recovery codes: only a hash of each; a set is replaced whole.
  await sql`
    CREATE TABLE recovery_codes (
      tenant_id uuid NOT NULL,
      id uuid NOT NULL DEFAULT gen_random_uuid(),
      user_id uuid NOT NULL,
      code_hash text NOT NULL,
      used_at timestamptz(3),
      created_at timestamptz(3) NOT NULL DEFAULT now(),
      PRIMARY KEY (tenant_id, id),
      FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
    )`.execute(db);
  await sql`CREATE INDEX recovery_codes_user ON recovery_codes (tenant_id, user_id)`.execute(db);

  for (const table of ['user_factors', 'recovery_codes']) {
    await sql`ALTER TABLE ${sql.table(table)} ENABLE ROW LEVEL SECURITY`.execute(db);
    await sql`
      CREATE POLICY tenant_isolation ON ${sql.table(table)} TO tessera_app
      USING (tenant_id = nullif(current_setting('tessera.tenant_id', true), '')::uuid)
      WITH CHECK (tenant_id = nullif(current_setting('tessera.tenant_id', true), '')::uuid)`.execute(db);
    await sql`GRANT SELECT, INSERT, UPDATE, DELETE ON ${sql.table(table)} TO tessera_app`.execute(db);
  }
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`DROP TABLE recovery_codes`.execute(db);
  await sql`DROP TABLE user_factors`.execute(db);
}
