import type { Context, Next } from 'koa';
import { Unauthorized } from '../base/errors.ts';
import type { Database } from '../db/database.ts';
import { verifyAccessToken } from '../oidc/access-tokens.ts';
import { API_TOKENS_CLIENT } from '../oidc/client.service.ts';
import type { ApiTokenService } from '../tokens/api-token.service.ts';
import type { UserService } from '../users/user.service.ts';

export interface SignedInUser {
  userId: string;
  clientId: string;
  grantId: string | undefined;
  scopes: Set<string>;
  /** How the sign-in was made, from the token's `amr`, `acr` and `auth_time` (absent on older tokens). */
  signIn: { amr: string[]; acr: string | undefined; authTime: number | undefined };
}

/** Guard of /api/v1/me: a live access token of this tenant, issued to a user (not a machine) who is not disabled. */
export function requireUser(deps: { db: Database; users: UserService; apiTokens: ApiTokenService }) {
  return async (ctx: Context, next: Next) => {
    const runtime = ctx.state.runtime;
    const match = /^Bearer\s+(\S+)$/i.exec(ctx.get('authorization'));
    const refused = 'Send an access token of this tenant, issued to a signed-in user, as Authorization: Bearer <token>.';
    if (!match) throw Unauthorized(refused);
    const verified = await verifyAccessToken(deps.db, runtime.tenant.id, { audience: runtime.apiAudience, verify: runtime.verifyAccessToken }, match[1]!);
    const sub = verified?.claims.sub;
    if (!verified || !sub || sub === verified.claims.client_id) throw Unauthorized(refused);
    const user = await deps.users.find(runtime.tenant.id, sub);
    if (!user || user.disabled) throw Unauthorized(refused);
    if (verified.claims.client_id === API_TOKENS_CLIENT) await deps.apiTokens.touch(runtime.tenant.id, verified.claims.jti);
    ctx.state.user = {
      userId: user.id,
      clientId: verified.claims.client_id,
      grantId: verified.grantId,
      scopes: new Set(verified.claims.scope?.split(' ') ?? []),
      signIn: signInOf(verified.claims),
    } satisfies SignedInUser;
    return next();
  };
}

function signInOf(claims: Record<string, unknown>): SignedInUser['signIn'] {
  return {
    amr: Array.isArray(claims.amr) ? claims.amr.filter((v): v is string => typeof v === 'string') : [],
    acr: typeof claims.acr === 'string' ? claims.acr : undefined,
    authTime: typeof claims.auth_time === 'number' ? claims.auth_time : undefined,
  };
}
