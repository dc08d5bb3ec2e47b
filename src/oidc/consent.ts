import type Provider from 'oidc-provider';
import type { KoaContextWithOIDC } from 'oidc-provider';

type Grant = InstanceType<Provider['Grant']>;

/** What a consent decision covers: the consent prompt's details, or the same worked out for a first-party client. */
export interface MissingConsent {
  missingOIDCScope?: string[] | undefined;
  missingOIDCClaims?: string[] | undefined;
  missingResourceScopes?: Record<string, string[]> | undefined;
}

/**
 * Records a consent decision in the grant: everything asked for is granted, except the `admin`
 * scope, which only tenant administrators get whatever the client asks. Refused scopes are
 * recorded as rejected, so the provider treats them as decided rather than still missing. The one
 * rule for the consent page and for first-party clients that skip it.
 */
export function recordConsent(grant: Grant, missing: MissingConsent, user: { tenant_admin: boolean } | undefined): void {
  const allowed = (scopes: string[]) => scopes.filter((s) => s !== 'admin' || user?.tenant_admin === true);
  const refused = (scopes: string[]) => scopes.filter((s) => !allowed([s]).length);
  if (missing.missingOIDCScope) {
    grant.addOIDCScope(allowed(missing.missingOIDCScope).join(' '));
    grant.rejectOIDCScope(refused(missing.missingOIDCScope).join(' '));
  }
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  for (const [resource, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
    grant.addResourceScope(resource, allowed(scopes).join(' '));
    grant.rejectResourceScope(resource, refused(scopes).join(' '));
  }
}

/** Claims every ID token carries; oidc-provider's consent prompt never asks for them. */
const ALWAYS_GRANTED_CLAIMS = new Set(['sub', 'sid', 'auth_time', 'acr', 'amr', 'iss']);

/**
 * What oidc-provider's consent prompt would find missing from `grant` for this authorization
 * request (its op_scopes_missing, op_claims_missing and rs_scopes_missing checks, computed the
 * same way), or undefined when nothing is.
 */
export function missingConsent(ctx: KoaContextWithOIDC, grant: Grant): MissingConsent | undefined {
  const { oidc } = ctx;
  const encounteredScopes = new Set(grant.getOIDCScopeEncountered().split(' '));
  const missingOIDCScope = [...oidc.requestParamOIDCScopes].filter((s) => !encounteredScopes.has(s));

  const encounteredClaims = new Set(grant.getOIDCClaimsEncountered());
  const missingOIDCClaims = [...oidc.requestParamClaims].filter((c) => !encounteredClaims.has(c) && !ALWAYS_GRANTED_CLAIMS.has(c));

  const missingResourceScopes: Record<string, string[]> = {};
  for (const [indicator, resourceServer] of Object.entries(oidc.resourceServers ?? {})) {
    const encountered = new Set(grant.getResourceScopeEncountered(indicator).split(' '));
    const missing = [...oidc.requestParamScopes].filter((s) => resourceServer.scopes.has(s) && !encountered.has(s));
    if (missing.length) missingResourceScopes[indicator] = missing;
  }

  if (!missingOIDCScope.length && !missingOIDCClaims.length && !Object.keys(missingResourceScopes).length) return undefined;
  return {
    ...(missingOIDCScope.length ? { missingOIDCScope } : {}),
    ...(missingOIDCClaims.length ? { missingOIDCClaims } : {}),
    ...(Object.keys(missingResourceScopes).length ? { missingResourceScopes } : {}),
  };
}
