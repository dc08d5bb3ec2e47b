import { sql } from 'kysely';
import type { TenantTx } from '../db/database.ts';

/** What a person (or an admin) may see of a factor: never its secret. */
export const FACTOR_COLUMNS = ['id', 'kind', 'name', 'confirmed', 'created_at', 'last_used_at'] as const;

export async function listFactors(tx: TenantTx, tenantId: string, userId: string) {
  return tx.selectFrom('user_factors').select(FACTOR_COLUMNS).where('tenant_id', '=', tenantId).where('user_id', '=', userId).orderBy('created_at').execute();
}

export async function hasConfirmedFactor(tx: TenantTx, tenantId: string, userId: string): Promise<boolean> {
  const row = await tx
    .selectFrom('user_factors')
    .select('id')
    .where('tenant_id', '=', tenantId)
    .where('user_id', '=', userId)
    .where('confirmed', '=', true)
    .limit(1)
    .executeTakeFirst();
  return row !== undefined;
}

/** The kinds of the person's confirmed factors (each once). */
export async function confirmedKinds(tx: TenantTx, tenantId: string, userId: string) {
  const rows = await tx
    .selectFrom('user_factors')
    .select('kind')
    .distinct()
    .where('tenant_id', '=', tenantId)
    .where('user_id', '=', userId)
    .where('confirmed', '=', true)
    .execute();
  return rows.map((r) => r.kind);
}

/** Confirms an enrollment whose first code was already checked (it has an accepted step); false if there is none. */
export async function confirmCheckedTotp(tx: TenantTx, tenantId: string, userId: string, id: string): Promise<boolean> {
  const row = await tx
    .updateTable('user_factors')
    .set({ confirmed: true })
    .where('tenant_id', '=', tenantId)
    .where('user_id', '=', userId)
    .where('id', '=', id)
    .where('kind', '=', 'totp')
    .where('confirmed', '=', false)
    .where('last_totp_step', 'is not', null)
    .returning('id')
    .executeTakeFirst();
  return row !== undefined;
}

/** Enrollments never confirmed: a new one replaces them, so abandoned ones do not pile up. */
export async function deleteUnconfirmedTotp(tx: TenantTx, tenantId: string, userId: string) {
  await tx
    .deleteFrom('user_factors')
    .where('tenant_id', '=', tenantId)
    .where('user_id', '=', userId)
    .where('kind', '=', 'totp')
    .where('confirmed', '=', false)
    .execute();
}

/** The id is chosen by the caller: the sealed secret is bound to it (associated data). */
export async function insertTotpFactor(tx: TenantTx, tenantId: string, userId: string, id: string, name: string, sealedSecret: string) {
  await tx
    .insertInto('user_factors')
    .values({
      tenant_id: tenantId,
      id,
      user_id: userId,
      kind: 'totp',
      name,
      secret_encrypted: sealedSecret,
      last_totp_step: null,
      last_used_at: null,
      credential_id: null,
      public_key: null,
      sign_count: null,
      transports: null,
      aaguid: null,
      backed_up: null,
    })
    .execute();
}

/** A TOTP factor of this user, locked for the caller's transaction so its step advances once. */
export async function findTotpForUpdate(tx: TenantTx, tenantId: string, userId: string, id: string) {
  return tx
    .selectFrom('user_factors')
    .select(['id', 'confirmed', 'secret_encrypted', 'last_totp_step'])
    .where('tenant_id', '=', tenantId)
    .where('user_id', '=', userId)
    .where('id', '=', id)
    .where('kind', '=', 'totp')
    .forUpdate()
    .executeTakeFirst();
}

/** The user's confirmed TOTP factors, oldest first (what a sign-in code is checked against). */
export async function confirmedTotpFactors(tx: TenantTx, tenantId: string, userId: string) {
  return tx
    .selectFrom('user_factors')
    .select(['id', 'secret_encrypted', 'last_totp_step'])
    .where('tenant_id', '=', tenantId)
    .where('user_id', '=', userId)
    .where('kind', '=', 'totp')
    .where('confirmed', '=', true)
    .orderBy('created_at')
    .execute();
}

/**
 * Spends the time step a sign-in code matched, if no request spent it (or a later one) first:
 * one statement, atomic on its own — of two requests with the same code, the second finds the
 * step taken (PostgreSQL re-checks the condition on the row the first one updated).
 */
export async function spendTotpStep(tx: TenantTx, tenantId: string, id: string, step: number): Promise<boolean> {
  const row = await tx
    .updateTable('user_factors')
    .set({ last_totp_step: step, last_used_at: sql<Date>`now()` })
    .where('tenant_id', '=', tenantId)
    .where('id', '=', id)
    .where('confirmed', '=', true)
    .where((eb) => eb.or([eb('last_totp_step', 'is', null), eb('last_totp_step', '<', String(step))]))
    .returning('id')
    .executeTakeFirst();
  return row !== undefined;
}

/** Records the step a code matched; `confirm`: the code also confirms an enrollment. */
export async function acceptTotpStep(tx: TenantTx, tenantId: string, id: string, step: number, confirm = true) {
  await tx
    .updateTable('user_factors')
    .set({ last_totp_step: step, last_used_at: sql<Date>`now()`, ...(confirm ? { confirmed: true } : {}) })
    .where('tenant_id', '=', tenantId)
    .where('id', '=', id)
    .execute();
}

export async function deleteFactor(tx: TenantTx, tenantId: string, userId: string, id: string) {
  return tx
    .deleteFrom('user_factors')
    .where('tenant_id', '=', tenantId)
    .where('user_id', '=', userId)
    .where('id', '=', id)
    .returning(['id', 'kind', 'name', 'confirmed'])
    .executeTakeFirst();
}

export async function deleteAllFactors(tx: TenantTx, tenantId: string, userId: string) {
  return tx.deleteFrom('user_factors').where('tenant_id', '=', tenantId).where('user_id', '=', userId).returning(['id', 'kind', 'name', 'confirmed']).execute();
}

export async function replaceRecoveryCodes(tx: TenantTx, tenantId: string, userId: string, hashes: string[]) {
  await tx.deleteFrom('recovery_codes').where('tenant_id', '=', tenantId).where('user_id', '=', userId).execute();
  if (hashes.length === 0) return;
  await tx
    .insertInto('recovery_codes')
    .values(hashes.map((code_hash) => ({ tenant_id: tenantId, user_id: userId, code_hash, used_at: null })))
    .execute();
}

/** The unused codes, locked so that one code is spent by one sign-in only. */
export async function unusedRecoveryCodesForUpdate(tx: TenantTx, tenantId: string, userId: string) {
  return tx
    .selectFrom('recovery_codes')
    .select(['id', 'code_hash'])
    .where('tenant_id', '=', tenantId)
    .where('user_id', '=', userId)
    .where('used_at', 'is', null)
    .forUpdate()
    .execute();
}

export async function countUnusedRecoveryCodes(tx: TenantTx, tenantId: string, userId: string): Promise<number> {
  const row = await tx
    .selectFrom('recovery_codes')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .where('tenant_id', '=', tenantId)
    .where('user_id', '=', userId)
    .where('used_at', 'is', null)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

export async function useRecoveryCode(tx: TenantTx, tenantId: string, id: string) {
  await tx.updateTable('recovery_codes').set({ used_at: sql<Date>`now()` }).where('tenant_id', '=', tenantId).where('id', '=', id).execute();
}
