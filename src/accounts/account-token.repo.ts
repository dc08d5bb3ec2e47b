import { sql } from 'kysely';
import type { TenantTx } from '../db/database.ts';
import type { AccountTokenPurpose } from './account.table.ts';

/** Forgets the user's unused links of this purpose (a new reset link voids the older ones). */
export async function deleteUnusedTokens(tx: TenantTx, tenantId: string, userId: string, purpose: AccountTokenPurpose) {
  await tx
    .deleteFrom('account_tokens')
    .where('tenant_id', '=', tenantId)
    .where('user_id', '=', userId)
    .where('purpose', '=', purpose)
    .where('used_at', 'is', null)
    .execute();
}

export async function insertToken(tx: TenantTx, tenantId: string, userId: string, purpose: AccountTokenPurpose, tokenHash: string, ttlSeconds: number) {
  await tx
    .insertInto('account_tokens')
    .values({ tenant_id: tenantId, user_id: userId, purpose, token_hash: tokenHash, expires_at: new Date(Date.now() + ttlSeconds * 1000), used_at: null })
    .execute();
}

/** A live (unused, unexpired) token, locked for the caller's transaction so it is used once. */
export async function findLiveToken(tx: TenantTx, tenantId: string, purpose: AccountTokenPurpose, tokenHash: string) {
  return tx
    .selectFrom('account_tokens')
    .select(['id', 'user_id'])
    .where('tenant_id', '=', tenantId)
    .where('purpose', '=', purpose)
    .where('token_hash', '=', tokenHash)
    .where('used_at', 'is', null)
    .where('expires_at', '>', sql<Date>`now()`)
    .forUpdate()
    .executeTakeFirst();
}

export async function useToken(tx: TenantTx, tenantId: string, id: string) {
  await tx.updateTable('account_tokens').set({ used_at: new Date() }).where('tenant_id', '=', tenantId).where('id', '=', id).execute();
}
