import { randomUUID } from 'node:crypto';
import type { Context, Next } from 'koa';
import { type Logger, withoutRedaction } from '../base/logger.ts';
import { withRequestReads } from '../base/request-reads.ts';

const SAFE_ID = /^[\w.-]{1,64}$/;

/**
 * Paths that carry a one-time secret: an invitation's, a password reset's, an email verification's
 * and an SSO account link's token (orgs/invitation.routes.ts, accounts/account.routes.ts,
 * sso/sso.routes.ts). The access line names the route, never the token.
 */
const SECRET_IN_PATH = /^(\/t\/[^/]+\/(?:invitations|account\/reset-password|account\/verify-email|sso\/link\/confirm))\/[^/]+/;

/** A request's path as the access line shows it: no query string (it may hold codes and state), no token. */
export function loggablePath(path: string): string {
  return path.replace(SECRET_IN_PATH, '$1/[redacted]');
}

/**
 * Gives every request an id (the caller's X-Request-Id when it is sane), a child logger that
 * carries it, and one access-log line.
 */
export function requestContext(log: Logger) {
  const access = withoutRedaction(log);
  return async (ctx: Context, next: Next) => {
    const incoming = ctx.get('x-request-id');
    const requestId = SAFE_ID.test(incoming) ? incoming : randomUUID();
    ctx.state.requestId = requestId;
    ctx.req.headers['x-request-id'] = requestId; // for mounted oidc-provider's own context
    ctx.set('X-Request-Id', requestId);
    // Made when something logs: pino serializes (and redacts) a child's bindings when it makes
    // it, which was ~1 % of a token request's allocations for a logger most requests never use.
    let child: Logger | undefined;
    Object.defineProperty(ctx.state, 'log', { get: () => (child ??= log.child({ requestId })), enumerable: true, configurable: true });
    // Read before the request is handled: a tenant's OIDC endpoints see the path without `/t/<slug>`.
    const path = ctx.path;
    const started = performance.now();
    try {
      await withRequestReads(next);
    } finally {
      const status = ctx.respond === false ? ctx.res.statusCode : ctx.status;
      // The request id is a field of the line rather than a child's binding: no child per request.
      if (status >= 500 || access.isLevelEnabled('info')) {
        const line = { requestId, method: ctx.method, path: loggablePath(path), status, ms: Math.round(performance.now() - started) };
        if (status >= 500) access.error(line, 'request');
        else access.info(line, 'request');
      }
    }
  };
}

/**
 * CSRF defence for form posts. Browsers say where a request comes from: Sec-Fetch-Site where they
 * support it (it must be same-origin, or none for a user-typed navigation), otherwise Origin
 * (it must be ours; `null` — an opaque origin — is refused). Non-browser clients send neither.
 */
export function sameOriginForms(publicUrl: string) {
  const origin = new URL(publicUrl).origin;
  return async (ctx: Context, next: Next) => {
    if (ctx.method === 'POST') {
      const o = ctx.get('origin');
      const site = ctx.get('sec-fetch-site');
      const refused = site ? site !== 'same-origin' && site !== 'none' : Boolean(o) && o !== origin;
      if (refused) {
        ctx.status = 403;
        ctx.type = 'text/plain';
        ctx.body = 'Cross-site form submission refused.';
        return;
      }
    }
    await next();
  };
}
