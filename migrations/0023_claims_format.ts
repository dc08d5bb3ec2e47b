// Frozen in time: never import from src/.
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  // Per client: the shape of the membership list claim its tokens carry. Relying parties that
  // can't read an array of objects (mod_auth_openidc flattens claims into variables) pick a format
  // of strings; 'tessera' is the shape every client had before this column.
  await sql`
    ALTER TABLE clients ADD COLUMN claims_format text NOT NULL DEFAULT 'tessera'
      CHECK (claims_format IN ('tessera', 'flat', 'keycloak', 'auth0', 'logto'))`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`ALTER TABLE clients DROP COLUMN claims_format`.execute(db);
}
