import type { JWTPayload } from 'jose';
import { sql } from 'kysely';
import { isUuid } from '../base/ids.ts';
import type { Database, TenantTx } from '../db/database.ts';
import { inTenant } from '../db/tenant-scope.ts';
import { findPayload } from '../oidc-store/oidc-payload.repo.ts';
import { machineOrgStillWorks, machineTokenOrg } from '../orgs/org-tokens.ts';
import type { AccessTokenVerifier } from './jwt-verifier.ts';

export interface AccessTokenClaims extends JWTPayload {
  jti: string;
  client_id: string;
  scope?: string;
}

export interface VerifiedAccessToken {
  claims: AccessTokenClaims;
  /** The grant (sign-in) it was issued under; absent for client-credentials tokens. */
  grantId: string | undefined;
}

/**
 * Verifies an access token for Tessera's own APIs: signature against the tenant's keys, issuer,
 * audience, type and expiry — and that it has not been revoked (its stored row and, for user
 * tokens, its grant still exist; an org-scoped machine token's organization still works and is
 * still granted to the client). Offline verification by apps skips only the last step.
 */
export async function verifyAccessToken(
  db: Database,
  tenantId: string,
  expected: { audience: string; verify: AccessTokenVerifier },
  token: string,
): Promise<VerifiedAccessToken | undefined> {
  const payload = expected.verify(token, expected.audience);
  if (!payload || typeof payload.jti !== 'string' || typeof payload.client_id !== 'string') return undefined;
  const jti = payload.jti;
  return inTenant(db, tenantId, async (tx) => {
    let row = await findPayload(tx, tenantId, 'AccessToken', { id: jti });
    if (!row) {
      row = await findPayload(tx, tenantId, 'ClientCredentials', { id: jti });
      if (row && !(await machineTokenStillWorks(tx, tenantId, row.payload))) return undefined;
    }
    if (!row) return undefined;
    const grantId = typeof row.payload.grantId === 'string' ? row.payload.grantId : undefined;
    if (grantId && !(await findPayload(tx, tenantId, 'Grant', { id: grantId }))) return undefined;
    return { claims: payload as AccessTokenClaims, grantId };
  });
}

/**
 * A client-credentials token's organization, when it has one, judged as at introspection
 * (OrgTokens' machineOrgStillWorks; token-prefetch.ts reads the same there): one more statement,
 * for org-scoped machine tokens only.
 */
async function machineTokenStillWorks(tx: TenantTx, tenantId: string, payload: Record<string, unknown>): Promise<boolean> {
  const orgId = machineTokenOrg(payload);
  if (orgId === undefined) return true;
  if (!isUuid(orgId) || typeof payload.clientId !== 'string') return false;
  const now = await tx
    .selectFrom('organizations as o')
    .select([
      'o.status',
      sql<boolean>`coalesce((select o.id = any(c.organization_ids) from clients c
        where c.tenant_id = o.tenant_id and c.client_id = ${payload.clientId}), false)`.as('granted'),
    ])
    .where('o.tenant_id', '=', tenantId)
    .where('o.id', '=', orgId)
    .executeTakeFirst();
  return machineOrgStillWorks(now);
}
