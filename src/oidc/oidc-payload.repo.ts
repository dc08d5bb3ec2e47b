import { sql } from 'kysely';
import type { TenantTx } from '../db/database.ts';

/**
 * SQL for oidc-provider's stored models. The adapter (adapter.ts) is the provider-facing side;
 * these functions are also what revocation outside the OIDC endpoints uses.
 */
export interface StoredPayload {
  payload: Record<string, unknown>;
  expires_at: Date | null;
  consumed_at: Date | null;
}

export async function upsertPayload(
  tx: TenantTx,
  tenantId: string,
  model: string,
  id: string,
  payload: Record<string, unknown>,
  expiresInSeconds: number | undefined,
): Promise<void> {
  const str = (k: string) => (typeof payload[k] === 'string' ? (payload[k] as string) : null);
  const row = {
    payload: JSON.stringify(payload),
    grant_id: str('grantId'),
    user_code: str('userCode'),
    uid: str('uid'),
    expires_at: expiresInSeconds ? new Date(Date.now() + expiresInSeconds * 1000) : null,
  };
  await tx
    .insertInto('oidc_payloads')
    .values({ tenant_id: tenantId, model, id, ...row })
    .onConflict((oc) => oc.columns(['tenant_id', 'model', 'id']).doUpdateSet(row))
    .execute();
}

export async function findPayload(tx: TenantTx, tenantId: string, model: string, where: { id: string } | { uid: string } | { userCode: string }): Promise<StoredPayload | undefined> {
  let qb = tx
    .selectFrom('oidc_payloads')
    .select(['payload', 'expires_at', 'consumed_at'])
    .where('tenant_id', '=', tenantId)
    .where('model', '=', model)
    .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', sql<Date>`now()`)]));
  if ('id' in where) qb = qb.where('id', '=', where.id);
  else if ('uid' in where) qb = qb.where('uid', '=', where.uid);
  else qb = qb.where('user_code', '=', where.userCode);
  return qb.executeTakeFirst();
}

export async function consumePayload(tx: TenantTx, tenantId: string, model: string, id: string): Promise<void> {
  await tx
    .updateTable('oidc_payloads')
    .set({ consumed_at: new Date() })
    .where('tenant_id', '=', tenantId)
    .where('model', '=', model)
    .where('id', '=', id)
    .execute();
}

export async function destroyPayload(tx: TenantTx, tenantId: string, model: string, id: string): Promise<void> {
  await tx.deleteFrom('oidc_payloads').where('tenant_id', '=', tenantId).where('model', '=', model).where('id', '=', id).execute();
}

/** One model's rows issued under a grant (oidc-provider revokes model by model). */
export async function revokeModelByGrant(tx: TenantTx, tenantId: string, model: string, grantId: string): Promise<void> {
  await tx.deleteFrom('oidc_payloads').where('tenant_id', '=', tenantId).where('model', '=', model).where('grant_id', '=', grantId).execute();
}

/** Everything issued under one grant: codes, access and refresh tokens, the grant itself. */
export async function revokeGrant(tx: TenantTx, tenantId: string, grantId: string): Promise<void> {
  await tx
    .deleteFrom('oidc_payloads')
    .where('tenant_id', '=', tenantId)
    .where((eb) => eb.or([eb('grant_id', '=', grantId), eb.and([eb('model', '=', 'Grant'), eb('id', '=', grantId)])]))
    .execute();
}

/**
 * Signs a user out everywhere: their sessions, grants and every token issued to them — but for
 * `exceptGrantId`, the grant a password change was made with: it, its tokens and the session
 * it belongs to survive (refresh tokens without offline_access die with their session).
 */
export async function revokeEverythingOfAccount(tx: TenantTx, tenantId: string, accountId: string, opts: { exceptGrantId?: string | undefined } = {}): Promise<void> {
  let qb = tx.deleteFrom('oidc_payloads').where('tenant_id', '=', tenantId).where(sql<string>`payload->>'accountId'`, '=', accountId);
  const keep = opts.exceptGrantId;
  if (keep) {
    qb = qb.where(sql<boolean>`
      coalesce(grant_id, '') <> ${keep}
      and not (model = 'Grant' and id = ${keep})
      and not (model = 'Session' and jsonb_path_exists(payload, '$.authorizations.*.grantId ? (@ == $g)', jsonb_build_object('g', ${keep}::text)))`);
  }
  await qb.execute();
}

/** Tokens issued to a client (client credentials included), for when the client is deleted. */
export async function revokeEverythingOfClient(tx: TenantTx, tenantId: string, clientId: string): Promise<void> {
  await tx
    .deleteFrom('oidc_payloads')
    .where('tenant_id', '=', tenantId)
    .where(sql<string>`payload->>'clientId'`, '=', clientId)
    .execute();
}
