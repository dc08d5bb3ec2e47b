import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';
import { sql } from 'kysely';
import { decrypt, encrypt } from '../crypto/secrets.ts';
import type { TenantTx } from '../db/database.ts';

export type SigningAlg = 'ES256' | 'RS256';

/**
 * How long a retired key stays in the JWKS: longer than any token it signed can live
 * (ID tokens 1 h, access tokens 15 min), with room for clock skew and cached JWKS.
 */
export const RETIRED_KEY_GRACE_SECONDS = 24 * 3600;

export interface PrivateSigningKey extends JWK {
  kid: string;
  alg: SigningAlg;
  use: 'sig';
}

function aadFor(tenantId: string, kid: string) {
  return `signing_keys:${tenantId}:${kid}`;
}

/** Creates a signing key for the tenant; the private half is encrypted before it touches the database. */
export async function createSigningKey(tx: TenantTx, tenantId: string, alg: SigningAlg, encryptionKey: Buffer): Promise<string> {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true, ...(alg === 'RS256' ? { modulusLength: 2048 } : {}) });
  const publicJwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(publicJwk);
  const privateJwk = { ...(await exportJWK(privateKey)), kid, alg, use: 'sig' };
  await tx
    .insertInto('signing_keys')
    .values({
      tenant_id: tenantId,
      kid,
      alg,
      public_jwk: JSON.stringify({ ...publicJwk, kid, alg, use: 'sig' }),
      private_jwk_encrypted: encrypt(encryptionKey, JSON.stringify(privateJwk), aadFor(tenantId, kid)),
      retired_at: null,
    })
    .execute();
  return kid;
}

/**
 * Rotation: a new key signs from now on; the previous ones are retired but stay published until
 * every token they signed has expired.
 */
export async function rotateSigningKey(tx: TenantTx, tenantId: string, alg: SigningAlg, encryptionKey: Buffer): Promise<string> {
  await tx.updateTable('signing_keys').set({ retired_at: new Date() }).where('tenant_id', '=', tenantId).where('retired_at', 'is', null).execute();
  return createSigningKey(tx, tenantId, alg, encryptionKey);
}

/** The keys to load into the tenant's provider: the active one first (it signs), then the still-published retired ones. */
export async function loadSigningKeys(tx: TenantTx, tenantId: string, encryptionKey: Buffer): Promise<PrivateSigningKey[]> {
  const rows = await tx
    .selectFrom('signing_keys')
    .select(['kid', 'private_jwk_encrypted', 'retired_at'])
    .where('tenant_id', '=', tenantId)
    .where((eb) =>
      eb.or([eb('retired_at', 'is', null), eb('retired_at', '>', sql<Date>`now() - make_interval(secs => ${RETIRED_KEY_GRACE_SECONDS})`)]),
    )
    .orderBy(sql`retired_at is null`, 'desc')
    .orderBy('created_at', 'desc')
    .execute();
  return rows.map((r) => JSON.parse(decrypt(encryptionKey, r.private_jwk_encrypted, aadFor(tenantId, r.kid))) as PrivateSigningKey);
}
