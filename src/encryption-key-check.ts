import { type Config, ConfigError } from './config.ts';
import type { Database } from './db/database.ts';
import { openSigningKeys } from './tenants/signing-keys.ts';

/**
 * Refuses to run with an encryption key that does not open what the database holds. A process
 * started with another key (a new ENCRYPTION_KEY, or a DATA_DIR without its generated key file)
 * would otherwise serve every request of every tenant as a 500 and seal new data that the other
 * instances can't open.
 *
 * Every tenant has a signing key sealed with the key, so opening the newest one tells: a database
 * without any is new, and the key it is first used with becomes its key. Read as the owner of the
 * tables (no tenant scope): this runs once at start, across tenants.
 */
export async function assertEncryptionKeyOpensDatabase(db: Database, config: Pick<Config, 'encryptionKey' | 'encryptionKeyFile'>): Promise<void> {
  const newest = await db
    .selectFrom('signing_keys')
    .select(['tenant_id', 'kid', 'private_jwk_encrypted'])
    .orderBy('created_at', 'desc')
    .limit(1)
    .executeTakeFirst();
  if (!newest) return;
  try {
    openSigningKeys(newest.tenant_id, [{ kid: newest.kid, sealed: newest.private_jwk_encrypted }], config.encryptionKey);
  } catch {
    throw new ConfigError(mismatchMessage(config.encryptionKeyFile));
  }
}

function mismatchMessage(keyFile: string | undefined): string {
  const which = keyFile ? `ENCRYPTION_KEY is not set, and the key generated in ${keyFile} (under DATA_DIR) is not the one` : 'ENCRYPTION_KEY is not the key';
  return `${which} this database's signing keys were encrypted with: start with the ENCRYPTION_KEY the database was set up with (the same on every instance).`;
}
