// Frozen in time: never import from src/.
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  // The challenge of a passkey registration, bound to the person who asked for it: spent by the
  // first answer (deleted), void after its expiry. Sign-in challenges live on the interaction.
  await sql`
    CREATE TABLE passkey_challenges (
      tenant_id uuid NOT NULL,
      challenge text NOT NULL,
      user_id uuid NOT NULL,
      expires_at timestamptz(3) NOT NULL,
      PRIMARY KEY (tenant_id, challenge),
      FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
    )`.execute(db);
  await sql`CREATE INDEX passkey_challenges_user ON passkey_challenges (tenant_id, user_id)`.execute(db);
  await sql`ALTER TABLE passkey_challenges ENABLE ROW LEVEL SECURITY`.execute(db);
  await sql`
    CREATE POLICY tenant_isolation ON passkey_challenges TO tessera_app
    USING (tenant_id = nullif(current_setting('tessera.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = nullif(current_setting('tessera.tenant_id', true), '')::uuid)`.execute(db);
  await sql`GRANT SELECT, INSERT, UPDATE, DELETE ON passkey_challenges TO tessera_app`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`DROP TABLE passkey_challenges`.execute(db);
}
