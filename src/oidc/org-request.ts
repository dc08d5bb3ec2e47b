import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * What a token request asked about organizations, carried from the token gateway (which reads
 * the `organization` parameter oidc-provider does not know at its token endpoint) to the
 * token-claims hook, within one request.
 */
export const orgRequest = new AsyncLocalStorage<{ orgId: string; teamId?: string | undefined; clientId?: string }>();

/**
 * How the sign-in a switch works for was made (`amr`, `acr`, `authTime`, read from the presented
 * access token), carried to the token-claims hook so the new access token says the same.
 */
export const carriedSignIn = new AsyncLocalStorage<{ amr?: string[] | undefined; acr?: string | undefined; authTime?: number | undefined }>();

const ORG_SCOPE = /^organization:(.+)$/;

/** `organization=<id or slug>`, or the scope `organization:<slug>`, of an authorization request. */
export function requestedOrganization(params: { organization?: unknown; scope?: unknown }): string | undefined {
  if (typeof params.organization === 'string' && params.organization) return params.organization;
  for (const s of String(params.scope ?? '').split(' ')) {
    const m = ORG_SCOPE.exec(s);
    if (m) return m[1];
  }
  return undefined;
}

/** `team=<id or slug>` of an authorization request: a team of the organization it works in. */
export function requestedTeam(params: { team?: unknown }): string | undefined {
  return typeof params.team === 'string' && params.team ? params.team : undefined;
}
