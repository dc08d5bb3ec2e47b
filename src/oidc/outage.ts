import type { Context, Next } from 'koa';
import { isDatabaseUnavailable } from '../base/database-unavailable.ts';
import { RETRY_AFTER_SECONDS } from '../base/errors.ts';
import type { Logger } from '../base/logger.ts';

/**
 * While the database is unreachable, the OpenID Provider's endpoints answer 503 with Retry-After,
 * as Tessera's own routes do (base/errors.ts), instead of oidc-provider's `server_error` 500.
 *
 * oidc-provider catches what its endpoints throw, renders `server_error` (as JSON, the error page,
 * or a redirect to the app) and then emits its `server_error` event with the error. So this is
 * registered first with `provider.use`, around everything else: when the request met an
 * unreachable database — thrown past the provider (the token gateway's own reads), or reported by
 * that event (`serverError`) — its answer is replaced:
 *
 * - JSON clients get `{ "error": "temporarily_unavailable" }`, the OAuth error RFC 6749 names for
 *   exactly this (§4.1.2.1);
 * - browsers get the error page. The authorization endpoint shows it rather than redirect to the
 *   app with an error: reloading the page retries the same sign-in.
 */
export function databaseOutage(opts: { log: Logger; page: (ctx: Context) => string }) {
  const met = new WeakSet<object>();

  function note(ctx: Context, err: unknown, where: string) {
    met.add(ctx);
    opts.log.warn({ reason: (err as Error).message, requestId: ctx.get('x-request-id') || undefined, where }, 'database unavailable');
  }

  return {
    /** For the provider's `server_error` event: true (and noted) when the error is the database's absence. */
    serverError(ctx: Context, err: unknown): boolean {
      if (!isDatabaseUnavailable(err)) return false;
      note(ctx, err, 'oidc-provider');
      return true;
    },

    async middleware(ctx: Context, next: Next) {
      try {
        await next();
      } catch (err) {
        if (!isDatabaseUnavailable(err)) throw err;
        note(ctx, err, 'before oidc-provider');
      }
      if (!met.has(ctx)) return;
      ctx.status = 503;
      ctx.remove('Location');
      ctx.set('Retry-After', String(RETRY_AFTER_SECONDS));
      ctx.set('Cache-Control', 'no-store');
      if (ctx.accepts('json', 'html') === 'html') {
        ctx.type = 'html';
        ctx.body = opts.page(ctx);
      } else {
        ctx.type = 'application/json';
        ctx.body = { error: 'temporarily_unavailable', error_description: 'the service is temporarily unavailable; try again in a few seconds' };
      }
    },
  };
}
