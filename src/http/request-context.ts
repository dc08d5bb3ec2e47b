import { randomUUID } from 'node:crypto';
import type { Context, Next } from 'koa';
import { type Logger, withoutRedaction } from '../base/logger.ts';
import { withRequestEnd } from '../base/request-end.ts';
import { withRequestReads } from '../base/request-reads.ts';
import type { Metrics } from '../metrics/metrics.ts';

const SAFE_ID = /^[\w.-]{1,64}$/;

/**
 * Paths that carry a secret: an invitation's, a password reset's, an email verification's, an SSO
 * account link's token and a setup link's secret (orgs/invitation.routes.ts,
 * accounts/account.routes.ts, sso/sso.routes.ts, setup-links/setup-pages.ts). The access line
 * names the route, never the token.
 */
const SECRET_IN_PATH = /^(\/t\/[^/]+\/(?:invitations|account\/reset-password|account\/verify-email|sso\/link\/confirm|setup))\/[^/]+/;

/** A request's path as the access line shows it: no query string (it may hold codes and state), no token. */
export function loggablePath(path: string): string {
  return path.replace(SECRET_IN_PATH, '$1/[redacted]');
}

/**
 * Gives every request an id (the caller's X-Request-Id when it is sane), a child logger that
 * carries it, one access-log line, and its count and duration in the metrics (by route template).
 */
export function requestContext(log: Logger, metrics: Metrics) {
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
      await withRequestEnd(() => withRequestReads(next));
    } finally {
      const status = ctx.respond === false ? ctx.res.statusCode : ctx.status;
      const elapsed = performance.now() - started;
      metrics.request(ctx.method, routeTemplate(ctx), status, elapsed / 1000);
      // The request id is a field of the line rather than a child's binding: no child per request.
      // A 503 means the database is unreachable, and what met it has logged why: a warning, so an
      // outage does not flood the error level.
      if (status >= 500 || access.isLevelEnabled('info')) {
        const line = { requestId, method: ctx.method, path: loggablePath(path), status, ms: Math.round(elapsed) };
        if (status === 503) access.warn(line, 'request');
        else if (status >= 500) access.error(line, 'request');
        else access.info(line, 'request');
      }
    }
  };
}

/**
 * The route that answered, as a template (`/t/:slug/api/v1/admin/users/:userId`): what the
 * tenant dispatch named for oidc-provider's endpoints, else what @koa/router matched, else
 * `unmatched`. Never the request's own path: a label per path would let anyone add series.
 */
function routeTemplate(ctx: Context): string {
  if (ctx.state.route) return ctx.state.route;
  const matched = (ctx as { _matchedRoute?: unknown })._matchedRoute;
  return typeof matched === 'string' ? matched : 'unmatched';
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
