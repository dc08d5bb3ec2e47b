import { sql } from 'kysely';
import type { Database } from '../db/database.ts';
import { inTenant } from '../db/tenant-scope.ts';
import { revokeGrant } from '../oidc-store/oidc-payload.repo.ts';

export interface BrowserSession {
  id: string;
  signedInAt: Date | null;
  expiresAt: Date | null;
  /** Client ids of the apps signed in through this session, and their grants. */
  authorizations: Array<{ clientId: string; grantId: string | undefined }>;
}

interface SessionPayload {
  accountId?: string;
  loginTs?: number;
  authorizations?: Record<string, { grantId?: string }>;
}

/**
 * A user's browser sessions at the tenant (oidc-provider's Session rows) for the account
 * "Sessions" page: where they are signed in, and signing one of them out — the session and
 * every grant made through it, so the apps' refresh tokens stop working too.
 */
export class SessionService {
  constructor(private readonly db: Database) {}

  async list(tenantId: string, userId: string): Promise<BrowserSession[]> {
    const rows = await inTenant(this.db, tenantId, (tx) =>
      tx
        .selectFrom('oidc_payloads')
        .select(['id', 'payload', 'expires_at'])
        .where('tenant_id', '=', tenantId)
        .where('model', '=', 'Session')
        .where(sql<string>`payload->>'accountId'`, '=', userId)
        .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', sql<Date>`now()`)]))
        .execute(),
    );
    return rows
      .map((r) => {
        const p = r.payload as SessionPayload;
        return {
          id: r.id,
          signedInAt: p.loginTs ? new Date(p.loginTs * 1000) : null,
          expiresAt: r.expires_at,
          authorizations: Object.entries(p.authorizations ?? {}).map(([clientId, a]) => ({ clientId, grantId: a.grantId })),
        };
      })
      .sort((a, b) => (b.signedInAt?.getTime() ?? 0) - (a.signedInAt?.getTime() ?? 0));
  }

  /** Signs one of the user's sessions out (false: not theirs, or gone already). */
  async revoke(tenantId: string, userId: string, sessionId: string): Promise<boolean> {
    return inTenant(this.db, tenantId, async (tx) => {
      const row = await tx
        .selectFrom('oidc_payloads')
        .select('payload')
        .where('tenant_id', '=', tenantId)
        .where('model', '=', 'Session')
        .where('id', '=', sessionId)
        .where(sql<string>`payload->>'accountId'`, '=', userId)
        .forUpdate()
        .executeTakeFirst();
      if (!row) return false;
      for (const a of Object.values((row.payload as SessionPayload).authorizations ?? {})) if (a.grantId) await revokeGrant(tx, tenantId, a.grantId);
      await tx.deleteFrom('oidc_payloads').where('tenant_id', '=', tenantId).where('model', '=', 'Session').where('id', '=', sessionId).execute();
      return true;
    });
  }
}
