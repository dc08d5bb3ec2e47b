// Frozen in time: never import from src/.
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  // Whether a link the person proved (linked_by 'password' or 'email_link') was proven with the
  // account's second factor as well. One proven without it is re-proven once the account has a
  // usable factor. Links from before this column are false: nobody knows whether a code was
  // asked, so such a link to an account with a factor now is proven again once, then upgraded.
  // Links the organization made (verified domain, new account, invitation) ignore the column.
  await sql`ALTER TABLE sso_identities ADD COLUMN proven_with_factor boolean NOT NULL DEFAULT false`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`ALTER TABLE sso_identities DROP COLUMN proven_with_factor`.execute(db);
}
