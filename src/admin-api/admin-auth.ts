import type { Context, Next } from 'koa';
import { Forbidden, Unauthorized } from '../base/errors.ts';
import type { Database } from '../db/database.ts';
import { verifyAccessToken } from '../oidc/access-tokens.ts';
import type { TenantService } from '../tenants/tenant.service.ts';
import type { UserService } from '../users/user.service.ts';

const REFUSED = 'Send an admin API key of this tenant, or an access token of its issuer with the admin scope, as Authorization: Bearer <credential>.';

/**
 * The Admin API's guard: an admin API key of this tenant, or an access token of this tenant's
 * issuer carrying the `admin` scope — from a machine client, or from a user who is a tenant admin.
 */
export function requireAdmin(deps: { db: Database; tenants: TenantService; users: UserService }) {
  return async (ctx: Context, next: Next) => {
    const runtime = ctx.state.runtime;
    const tenantId = runtime.tenant.id;
    const match = /^Bearer\s+(\S+)$/i.exec(ctx.get('authorization'));
    if (!match) throw Unauthorized(REFUSED);
    const credential = match[1]!;

    if (credential.startsWith('tsk_')) {
      if (!(await deps.tenants.verifyApiKey(tenantId, credential))) throw Unauthorized(REFUSED);
      ctx.state.actor = { type: 'api_key' };
      return next();
    }

    const verified = await verifyAccessToken(deps.db, tenantId, { audience: runtime.apiAudience, verify: runtime.verifyAccessToken }, credential);
    if (!verified) throw Unauthorized(REFUSED);
    const { claims } = verified;
    if (!claims.scope?.split(' ').includes('admin')) throw Forbidden('This access token lacks the admin scope.');
    if (claims.sub && claims.sub !== claims.client_id) {
      const user = await deps.users.find(tenantId, claims.sub);
      if (!user || user.disabled || !user.tenant_admin) throw Forbidden('Only tenant administrators may use the Admin API.');
      ctx.state.actor = { type: 'user', id: user.id };
    } else {
      ctx.state.actor = { type: 'client', id: claims.client_id };
    }
    return next();
  };
}
