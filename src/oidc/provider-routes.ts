/**
 * The route template of a request a tenant's oidc-provider answers, from its path below
 * `/t/<slug>`: `/token` → `/t/:slug/token`, `/auth/<uid>` → `/t/:slug/auth/:uid`. These are
 * oidc-provider's default routes (provider.ts keeps them), with the path parameters its router
 * declares. Any other path is undefined — oidc-provider answers it 404 — so what a request may
 * be labelled with is this fixed set.
 */
const FIXED = new Map(
  [
    '/.well-known/openid-configuration',
    '/auth',
    '/token',
    '/token/introspection',
    '/token/revocation',
    '/me',
    '/jwks',
    '/session/end',
    '/session/end/confirm',
    '/session/end/success',
    '/request',
    '/reg',
    '/device',
    '/device/auth',
    '/backchannel',
    '/challenge',
    '/credential',
  ].map((path) => [path, `/t/:slug${path}`]),
);

const WITH_PARAMETER: Array<[RegExp, string]> = [
  [/^\/auth\/[^/]+$/, '/t/:slug/auth/:uid'],
  [/^\/device\/[^/]+$/, '/t/:slug/device/:uid'],
  [/^\/reg\/[^/]+$/, '/t/:slug/reg/:clientId'],
];

export function providerRouteTemplate(path: string): string | undefined {
  const fixed = FIXED.get(path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path);
  if (fixed) return fixed;
  for (const [pattern, template] of WITH_PARAMETER) if (pattern.test(path)) return template;
  return undefined;
}
