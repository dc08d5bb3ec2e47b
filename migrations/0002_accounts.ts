// Frozen in time: never import from src/.
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  // Outgoing mail, sent by a worker with retries. Template parameters may hold one-time links, so
  // they are encrypted at rest and erased once the message is sent.
  await sql`
    CREATE TABLE mail_outbox (
      tenant_id uuid NOT NULL REFERENCES tenants ON DELETE CASCADE,
      id uuid NOT NULL DEFAULT gen_random_uuid(),
      kind text NOT NULL,
      recipient text NOT NULL,
      params_encrypted text,
      subject text,
      status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed', 'discarded')),
      attempts integer NOT NULL DEFAULT 0,
      next_attempt_at timestamptz NOT NULL DEFAULT now(),
      last_error text,
      created_at timestamptz(3) NOT NULL DEFAULT now(),
      sent_at timestamptz,
      PRIMARY KEY (tenant_id, id)
    )`.execute(db);
  await sql`CREATE INDEX mail_outbox_due ON mail_outbox (next_attempt_at) WHERE status = 'pending'`.execute(db);

  // One-time links (email verification, password reset): only a SHA-256 of the token is kept.
  await sql`
    CREATE TABLE account_tokens (
      tenant_id uuid NOT NULL,
      id uuid NOT NULL DEFAULT gen_random_uuid(),
      user_id uuid NOT NULL,
      purpose text NOT NULL CHECK (purpose IN ('verify_email', 'reset_password')),
      token_hash text NOT NULL UNIQUE,
      expires_at timestamptz NOT NULL,
      used_at timestamptz,
      created_at timestamptz(3) NOT NULL DEFAULT now(),
      PRIMARY KEY (tenant_id, id),
      FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
    )`.execute(db);
  await sql`CREATE INDEX account_tokens_user ON account_tokens (tenant_id, user_id, purpose)`.execute(db);

  // Brute-force bookkeeping: failure counts and locks per account (keyed by email) and per IP.
  await sql`
    CREATE TABLE auth_throttle (
      tenant_id uuid NOT NULL REFERENCES tenants ON DELETE CASCADE,
      key text NOT NULL,
      failures integer NOT NULL DEFAULT 0,
      last_failure_at timestamptz,
      locked_until timestamptz,
      PRIMARY KEY (tenant_id, key)
    )`.execute(db);

  for (const table of ['mail_outbox', 'account_tokens', 'auth_throttle']) {
    await sql`ALTER TABLE ${sql.table(table)} ENABLE ROW LEVEL SECURITY`.execute(db);
    await sql`
      CREATE POLICY tenant_isolation ON ${sql.table(table)} TO tessera_app
      USING (tenant_id = nullif(current_setting('tessera.tenant_id', true), '')::uuid)
      WITH CHECK (tenant_id = nullif(current_setting('tessera.tenant_id', true), '')::uuid)`.execute(db);
    await sql`GRANT SELECT, INSERT, UPDATE, DELETE ON ${sql.table(table)} TO tessera_app`.execute(db);
  }
}

export async function down(): Promise<void> {
  throw new Error('0002_accounts cannot be rolled back; restore from a backup instead');
}
