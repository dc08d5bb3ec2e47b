// Frozen in time: never import from src/.
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  // Why each (connection, subject) → account link exists. Links made before this rule was written
  // are 'legacy': they are honoured only while the account would be linked today, otherwise the
  // person proves the account is theirs once and the link is upgraded.
  await sql`ALTER TABLE sso_identities ADD COLUMN linked_by text NOT NULL DEFAULT 'legacy'`.execute(db);
  await sql`ALTER TABLE sso_identities ALTER COLUMN linked_by DROP DEFAULT`.execute(db);

  // A sign-in started from an invitation link carries the invitation (the link proves the mailbox);
  // such a request resumes no authorization request.
  await sql`ALTER TABLE sso_requests ALTER COLUMN interaction_uid DROP NOT NULL`.execute(db);
  await sql`ALTER TABLE sso_requests ADD COLUMN invitation_id uuid`.execute(db);

  // An SSO sign-in that named an existing account which must first be proven the person's own
  // (its password, or a one-time link mailed to its stored address). Nothing is linked, no session
  // exists until then. The browser that came back from the IdP holds a secret whose hash is here.
  await sql`
    CREATE TABLE sso_pending_links (
      tenant_id uuid NOT NULL,
      id uuid NOT NULL DEFAULT gen_random_uuid(),
      connection_id uuid NOT NULL,
      subject text NOT NULL,
      user_id uuid NOT NULL,
      profile jsonb NOT NULL,
      interaction_uid text,
      invitation_id uuid,
      browser_hash text NOT NULL,
      mail_token_hash text,
      mails_sent integer NOT NULL DEFAULT 0,
      last_mail_at timestamptz,
      expires_at timestamptz NOT NULL,
      created_at timestamptz(3) NOT NULL DEFAULT now(),
      PRIMARY KEY (tenant_id, id),
      FOREIGN KEY (tenant_id, connection_id) REFERENCES sso_connections (tenant_id, id) ON DELETE CASCADE,
      FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
    )`.execute(db);
  await sql`CREATE UNIQUE INDEX sso_pending_links_mail_token ON sso_pending_links (tenant_id, mail_token_hash) WHERE mail_token_hash IS NOT NULL`.execute(db);
  await sql`ALTER TABLE sso_pending_links ENABLE ROW LEVEL SECURITY`.execute(db);
  await sql`
    CREATE POLICY tenant_isolation ON sso_pending_links TO tessera_app
    USING (tenant_id = nullif(current_setting('tessera.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = nullif(current_setting('tessera.tenant_id', true), '')::uuid)`.execute(db);
  await sql`GRANT SELECT, INSERT, UPDATE, DELETE ON sso_pending_links TO tessera_app`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`DROP TABLE sso_pending_links`.execute(db);
  await sql`DELETE FROM sso_requests WHERE interaction_uid IS NULL`.execute(db);
  await sql`ALTER TABLE sso_requests DROP COLUMN invitation_id`.execute(db);
  await sql`ALTER TABLE sso_requests ALTER COLUMN interaction_uid SET NOT NULL`.execute(db);
  await sql`ALTER TABLE sso_identities DROP COLUMN linked_by`.execute(db);
}
