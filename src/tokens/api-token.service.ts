import { sql } from 'kysely';
import { NotFound, ValidationFailed } from '../base/errors.ts';
import { decodeCursor, page } from '../base/pagination.ts';
import type { Database } from '../db/database.ts';
import { inTenant } from '../db/tenant-scope.ts';
import { API_TOKENS_CLIENT } from '../oidc/client.service.ts';
import { mintAccessToken } from '../oidc/provider.ts';
import type { TenantRuntime } from '../oidc/tenant-runtime.ts';
import { revokeGrant } from '../oidc-store/oidc-payload.repo.ts';
import { type OrgTokens, statusRefusalText } from '../orgs/org-tokens.ts';

/**
 * Scoped API tokens an admin mints for a user (scripts, CLIs, integrations). Each is an access
 * token of a grant of its own: it verifies offline like any other, introspection and /api/v1/me
 * accept it, revoking it revokes the grant, and one made for an organization dies with the
 * membership (org-tokens.ts revokes grants working in an organization). Only the token's jti is
 * kept; the token itself is shown once.
 */
export class ApiTokenService {
  constructor(
    private readonly db: Database,
    private readonly orgTokens: OrgTokens,
  ) {}

  async mint(runtime: TenantRuntime, userId: string, input: { scopes: string[]; expires_in: number; org_id?: string | undefined }) {
    const tenantId = runtime.tenant.id;
    if (input.org_id) {
      const r = await this.orgTokens.claimsFor(tenantId, userId, input.org_id);
      if ('refused' in r) {
        // No policy is judged without a sign-in: only membership and the organization's status refuse here.
        if (r.refused === 'not_found_or_not_member' || r.refused === 'policy')
          throw ValidationFailed('The user is not a member of that organization (or it does not exist).', [{ field: 'org_id', message: 'not a member' }]);
        throw ValidationFailed(statusRefusalText(r.refused, input.org_id), [{ field: 'org_id', message: `organization ${r.refused}` }]);
      }
    }
    const { provider } = runtime;
    const grant = new provider.Grant({ accountId: userId, clientId: API_TOKENS_CLIENT });
    grant.addResourceScope(runtime.apiAudience, input.scopes.join(' '));
    // The grant lives exactly as long as the token (BaseModel.save takes the TTL; the typings omit it).
    const grantId = await (grant as unknown as { save(ttl: number): Promise<string> }).save(input.expires_in);
    if (input.org_id) await this.orgTokens.selectForGrant(tenantId, grantId, userId, input.org_id);
    const token = await mintAccessToken(runtime, {
      accountId: userId,
      clientId: API_TOKENS_CLIENT,
      grantId,
      scope: input.scopes.join(' '),
      gty: 'urn:tessera:api_token',
      expiresIn: input.expires_in,
    });
    const row = await inTenant(this.db, tenantId, (tx) =>
      tx
        .insertInto('api_tokens')
        .values({
          tenant_id: tenantId,
          user_id: userId,
          grant_id: grantId,
          jti: token.jti,
          scopes: input.scopes,
          org_id: input.org_id ?? null,
          expires_at: new Date(Date.now() + input.expires_in * 1000),
          last_used_at: null,
          revoked_at: null,
        })
        .returning(['id'])
        .executeTakeFirstOrThrow(),
    );
    return { id: row.id, access_token: token.value, token_type: 'Bearer', expires_in: token.expiresIn, scopes: input.scopes, org_id: input.org_id ?? null };
  }

  async list(tenantId: string, userId: string, q: { limit: number; cursor?: string | undefined }) {
    const after = decodeCursor(q.cursor);
    const rows = await inTenant(this.db, tenantId, (tx) => {
      let qb = tx.selectFrom('api_tokens').selectAll().where('tenant_id', '=', tenantId).where('user_id', '=', userId);
      if (after) qb = qb.where(sql<boolean>`(created_at, id) > (${after.createdAt}, ${after.id}::uuid)`);
      return qb
        .orderBy('created_at')
        .orderBy('id')
        .limit(q.limit + 1)
        .execute();
    });
    const p = page(rows, q.limit, (r) => ({ createdAt: r.created_at, id: r.id }));
    const now = Date.now();
    return {
      data: p.data.map((r) => ({
        id: r.id,
        scopes: r.scopes,
        org_id: r.org_id,
        status: r.revoked_at ? 'revoked' : r.expires_at.getTime() <= now ? 'expired' : 'active',
        created_at: r.created_at.toISOString(),
        expires_at: r.expires_at.toISOString(),
        last_used_at: r.last_used_at?.toISOString() ?? null,
      })),
      next_cursor: p.next_cursor,
    };
  }

  async revoke(tenantId: string, userId: string, tokenId: string) {
    await inTenant(this.db, tenantId, async (tx) => {
      const row = await tx
        .selectFrom('api_tokens')
        .select(['grant_id'])
        .where('tenant_id', '=', tenantId)
        .where('user_id', '=', userId)
        .where('id', '=', tokenId)
        .executeTakeFirst();
      if (!row) throw NotFound('No such API token for this user.');
      await revokeGrant(tx, tenantId, row.grant_id);
      await tx
        .updateTable('api_tokens')
        .set({ revoked_at: new Date() })
        .where('tenant_id', '=', tenantId)
        .where('id', '=', tokenId)
        .where('revoked_at', 'is', null)
        .execute();
    });
  }

  /** Records a use (called when /api/v1/me accepts the token). Cheap no-op for other tokens. */
  async touch(tenantId: string, jti: string) {
    await inTenant(this.db, tenantId, (tx) =>
      tx.updateTable('api_tokens').set({ last_used_at: new Date() }).where('tenant_id', '=', tenantId).where('jti', '=', jti).execute(),
    );
  }
}
