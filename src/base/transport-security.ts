import type Koa from 'koa';
import type { Context, Next } from 'koa';

/** One year, subdomains included: what a site that is only ever reached over TLS sends. */
const HSTS = 'max-age=31536000; includeSubDomains';

/** Users reach Tessera over TLS: PUBLIC_URL is https. */
export function publicUrlIsHttps(publicUrl: string): boolean {
  return new URL(publicUrl).protocol === 'https:';
}

/**
 * With an https PUBLIC_URL, every request of `app` counts as https, whatever the socket or
 * X-Forwarded-Proto say (TRUST_PROXY may be off behind a TLS-terminating proxy). Koa then marks
 * every cookie `Secure` (the cookies module's default follows `ctx.secure`, and it refuses a
 * `secure: true` cookie on a request it takes for plain http), and oidc-provider builds its
 * endpoint URLs with https. Applied to Tessera's own Koa app and to each tenant's provider,
 * which is a Koa app of its own.
 */
export function treatRequestsAsHttps(app: Koa, publicUrl: string): void {
  if (!publicUrlIsHttps(publicUrl)) return;
  Object.defineProperty(app.request, 'protocol', { get: () => 'https', configurable: true, enumerable: true });
}

/**
 * Strict-Transport-Security on every response when PUBLIC_URL is https (browsers ignore it
 * over plain http, so it costs nothing when the proxy in front speaks http to us). Set before
 * the rest runs, so error pages and the responses oidc-provider writes itself carry it too.
 */
export function strictTransportSecurity(publicUrl: string) {
  const https = publicUrlIsHttps(publicUrl);
  return async (ctx: Context, next: Next) => {
    if (https) ctx.set('Strict-Transport-Security', HSTS);
    await next();
  };
}
