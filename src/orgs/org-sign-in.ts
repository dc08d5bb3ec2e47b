import { isHttpsUrl } from '../base/validate.ts';
import { isWorking } from './org.table.ts';
import { orgAuthPolicy, type StoredOrgAuthPolicy } from './org-auth-policy.ts';

/**
 * Which organizations people sign in to: those that work (org.table.ts `isWorking`: active or
 * trialing) — the same rule that decides which issue org-scoped tokens. A suspended, pending or
 * rejected organization has no sign-in page and no branded sign-in.
 */
export function orgSignsIn(status: string): boolean {
  return isWorking(status);
}

/** What an organization's sign-in shows of it. */
export interface OrgBranding {
  id: string;
  slug: string;
  name: string;
  /** Only an https URL: a stored value of another scheme (from before the rule) is not shown. */
  logoUrl: string | undefined;
}

export function orgBranding(org: { id: string; slug: string; name: string; logo_url: string | null }): OrgBranding {
  return { id: org.id, slug: org.slug, name: org.name, logoUrl: isHttpsUrl(org.logo_url) ? org.logo_url : undefined };
}

/** The organization's own sign-in page, under its tenant's path. */
export const orgLoginPath = (tenantSlug: string, orgSlug: string) => `/t/${tenantSlug}/o/${encodeURIComponent(orgSlug)}/login`;

/**
 * Whether a sign-in for the organization has to go through its SSO, so the email step can be
 * skipped: its policy requires SSO (`sso_required`: people of its verified domains), or admits
 * no method but SSO (`allowed_methods: ["sso"]`: everyone).
 */
export function orgSignInIsSsoOnly(org: { sso_required: boolean; auth_policy: StoredOrgAuthPolicy }): boolean {
  const policy = orgAuthPolicy(org);
  return policy.sso_required || (policy.allowed_methods.length > 0 && policy.allowed_methods.every((m) => m === 'sso'));
}
