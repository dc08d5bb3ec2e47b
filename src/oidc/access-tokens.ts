import type { JWTPayload } from 'jose';
import type { Database } from '../db/database.ts';
import { inTenant } from '../db/tenant-scope.ts';
import { findPayload } from '../oidc-store/oidc-payload.repo.ts';
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
 * tokens, its grant still exist). Offline verification by apps skips only the last step.
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
    const row = (await findPayload(tx, tenantId, 'AccessToken', { id: jti })) ?? (await findPayload(tx, tenantId, 'ClientCredentials', { id: jti }));
    if (!row) return undefined;
    const grantId = typeof row.payload.grantId === 'string' ? row.payload.grantId : undefined;
    if (grantId && !(await findPayload(tx, tenantId, 'Grant', { id: grantId }))) return undefined;
    return { claims: payload as AccessTokenClaims, grantId };
  });
}
