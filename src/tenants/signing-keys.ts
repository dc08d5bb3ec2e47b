import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';
import { type Expression, sql } from 'kysely';
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

/** A published key as stored: its private half still encrypted. */
export interface SealedSigningKey {
  kid: string;
  sealed: string;
}

/**
 * The keys to load into a tenant's provider, as one JSON array that a statement reads together with
 * the tenant's row (tenant.repo.ts): the active one first (it signs), then the retired ones still
 * published. Ordered inside the aggregate, where PostgreSQL guarantees the order.
 */
export function publishedKeysOf(tenantId: Expression<string>) {
  return sql<SealedSigningKey[]>`coalesce((
    select json_agg(json_build_object('kid', k.kid, 'sealed', k.private_jwk_encrypted) order by k.retired_at is null desc, k.created_at desc)
    from signing_keys k
    where k.tenant_id = ${tenantId}
      and (k.retired_at is null or k.retired_at > now() - make_interval(secs => ${RETIRED_KEY_GRACE_SECONDS}))), '[]')`;
}

/** Decrypts a tenant's published keys (publishedKeysOf); a key sealed for another tenant or kid fails. */
export function openSigningKeys(tenantId: string, keys: SealedSigningKey[], encryptionKey: Buffer): PrivateSigningKey[] {
  return keys.map((k) => JSON.parse(decrypt(encryptionKey, k.sealed, aadFor(tenantId, k.kid))) as PrivateSigningKey);
}
