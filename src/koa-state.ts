import type { Actor } from './base/actor.ts';
import type { Logger } from './base/logger.ts';
import type { SignedInUser } from './me/user-auth.ts';
import type { TenantRuntime } from './oidc/tenant-runtime.ts';
import type { Viewer } from './portal/portal-session.ts';

/**
 * What Tessera's middleware leaves in `ctx.state`, typed once for every route and page. Each
 * entry is set by one middleware; only the routes behind that middleware read it.
 */
declare module 'koa' {
  interface DefaultState {
    /** Every request's id, the caller's X-Request-Id when it is sane (http/request-context.ts). */
    requestId: string;
    /** Every request's logger, carrying its id (http/request-context.ts). */
    log: Logger;
    /** Every `/t/<slug>/…` request: the tenant and its built OpenID Provider (app.ts). */
    runtime: TenantRuntime;
    /**
     * The route template of a request the tenant's oidc-provider answers (`/t/:slug/token`), for
     * the metrics; set by the tenant dispatch (app.ts). Tessera's own routes are named by @koa/router.
     */
    route?: string;
    /** Admin API: who is calling (admin-api/admin-auth.ts). */
    actor: Actor;
    /** `/api/v1/me`: the user the bearer token was issued to (me/user-auth.ts). */
    user: SignedInUser;
    /** Portal and account pages: the signed-in user (portal/portal-session.ts). */
    viewer: Viewer;
    /** Portal pages of an organization whose MFA grace period the viewer is in (portal/org-policy-gate.ts). */
    policyReminder?: 'mfa_grace';
  }
}
