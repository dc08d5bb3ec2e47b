import { sql } from 'kysely';
import type { TenantTx } from '../db/database.ts';

/** The person's passkeys as a ceremony needs them (excludeCredentials / allowCredentials). */
export async function passkeysOf(tx: TenantTx, tenantId: string, userId: string) {
  return tx
    .selectFrom('user_factors')
    .select(['id', 'credential_id', 'transports'])
    .where('tenant_id', '=', tenantId)
    .where('user_id', '=', userId)
    .where('kind', '=', 'passkey')
    .orderBy('created_at')
    .execute();
}

/** Whose passkey a credential id is, in this tenant. */
export async function passkeyOwner(tx: TenantTx, tenantId: string, credentialId: string) {
  const row = await tx
    .selectFrom('user_factors')
    .select('user_id')
    .where('tenant_id', '=', tenantId)
    .where('kind', '=', 'passkey')
    .where('credential_id', '=', credentialId)
    .executeTakeFirst();
  return row?.user_id;
}

/** One passkey of this tenant by its credential id, locked so its sign count moves once per use. */
export async function passkeyByCredentialForUpdate(tx: TenantTx, tenantId: string, credentialId: string) {
  return tx
    .selectFrom('user_factors')
    .select(['id', 'user_id', 'name', 'credential_id', 'public_key', 'sign_count', 'transports', 'backed_up'])
    .where('tenant_id', '=', tenantId)
    .where('kind', '=', 'passkey')
    .where('credential_id', '=', credentialId)
    .forUpdate()
    .executeTakeFirst();
}

/** Stores a registered passkey; undefined when its credential id is already stored in this tenant. */
export async function insertPasskey(
  tx: TenantTx,
  tenantId: string,
  userId: string,
  p: { name: string; credentialId: string; publicKey: Buffer; signCount: number; transports: string[]; aaguid: string; backedUp: boolean },
) {
  return (
    tx
      .insertInto('user_factors')
      .values({
        tenant_id: tenantId,
        user_id: userId,
        kind: 'passkey',
        name: p.name,
        // A passkey is proven by the registration ceremony itself: there is no first code to wait for.
        confirmed: true,
        secret_encrypted: null,
        last_totp_step: null,
        last_used_at: null,
        credential_id: p.credentialId,
        public_key: p.publicKey,
        sign_count: p.signCount,
        transports: p.transports,
        aaguid: p.aaguid,
        backed_up: p.backedUp,
      })
      // A credential id already stored in this tenant (the same authenticator again, or a forged
      // answer naming someone's): nothing is inserted, and the transaction stays usable.
      .onConflict((oc) => oc.columns(['tenant_id', 'credential_id']).where('credential_id', 'is not', null).doNothing())
      .returning(['id', 'name'])
      .executeTakeFirst()
  );
}

export async function recordPasskeyUse(tx: TenantTx, tenantId: string, id: string, signCount: number, backedUp: boolean) {
  await tx
    .updateTable('user_factors')
    .set({ sign_count: signCount, backed_up: backedUp, last_used_at: sql<Date>`now()` })
    .where('tenant_id', '=', tenantId)
    .where('id', '=', id)
    .execute();
}

export async function renameFactor(tx: TenantTx, tenantId: string, userId: string, id: string, name: string) {
  return tx
    .updateTable('user_factors')
    .set({ name })
    .where('tenant_id', '=', tenantId)
    .where('user_id', '=', userId)
    .where('id', '=', id)
    .returning(['id', 'name'])
    .executeTakeFirst();
}

/** A new registration challenge; the person's expired ones go at the same time, so none pile up. */
export async function storeRegistrationChallenge(tx: TenantTx, tenantId: string, userId: string, challenge: string, expiresAt: Date) {
  await tx
    .deleteFrom('passkey_challenges')
    .where('tenant_id', '=', tenantId)
    .where('user_id', '=', userId)
    .where('expires_at', '<=', sql<Date>`now()`)
    .execute();
  await tx.insertInto('passkey_challenges').values({ tenant_id: tenantId, user_id: userId, challenge, expires_at: expiresAt }).execute();
}

/** Spends a challenge of this person: true once, when it exists and has not expired. */
export async function spendRegistrationChallenge(tx: TenantTx, tenantId: string, userId: string, challenge: string): Promise<boolean> {
  const row = await tx
    .deleteFrom('passkey_challenges')
    .where('tenant_id', '=', tenantId)
    .where('user_id', '=', userId)
    .where('challenge', '=', challenge)
    .returning('expires_at')
    .executeTakeFirst();
  return row !== undefined && row.expires_at.getTime() > Date.now();
}
