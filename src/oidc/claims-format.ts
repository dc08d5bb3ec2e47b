/**
 * The shape of the membership list claim, per client (`claims_format`). Relying parties read
 * organizations differently: a JavaScript app reads Tessera's array of objects, Apache's
 * mod_auth_openidc flattens claims into environment variables and can only pass on strings and
 * arrays of strings, and apps written for another provider expect that provider's claims.
 *
 * Only the list of every organization the person is in (scope `organizations`) changes shape. The
 * org-scoped claims (`org_id`, `org_slug`, `org_roles`, `org_permissions`, …) are the same in
 * every format; `auth0` adds `org_name` beside `org_id`, as Auth0 does. Pure functions, no I/O.
 */
import type { MembershipClaim } from '../orgs/org-tokens.ts';

export const CLAIMS_FORMATS = ['tessera', 'flat', 'keycloak', 'auth0', 'logto'] as const;
export type ClaimsFormat = (typeof CLAIMS_FORMATS)[number];

type Membership = Pick<MembershipClaim, 'id' | 'slug' | 'name' | 'roles'>;

interface Format {
  /** The claims this format's membership list is made of (each under the `organizations` scope). */
  readonly claims: readonly string[];
  list(memberships: readonly Membership[]): Record<string, unknown>;
}

const FORMATS: Record<ClaimsFormat, Format> = {
  // Tessera's own: every organization with its id, slug, name and the person's roles in it.
  tessera: {
    claims: ['organizations'],
    list: (ms) => ({ organizations: ms.map(({ id, slug, name, roles }) => ({ id, slug, name, roles })) }),
  },
  // Strings and arrays of strings only, so that every organization and the person's roles in it
  // survive flattening. A slug never holds a colon, so "<slug>:<role>" splits at the first one
  // (role names may hold colons, never commas: the usual flattening delimiter stays unambiguous).
  flat: {
    claims: ['org_ids', 'org_slugs', 'org_roles_by_org'],
    list: (ms) => ({
      org_ids: ms.map((m) => m.id),
      org_slugs: ms.map((m) => m.slug),
      org_roles_by_org: ms.flatMap((m) => m.roles.map((role) => `${m.slug}:${role}`)),
    }),
  },
  // Keycloak 26's built-in "Organization Membership" mapper as it is created for the `organization`
  // scope (JSON type String, multivalued): a list of organization aliases — Tessera's slugs. Like
  // Keycloak, no claim at all for a person in no organization.
  keycloak: {
    claims: ['organization'],
    list: (ms) => (ms.length ? { organization: ms.map((m) => m.slug) } : {}),
  },
  // Auth0 has no membership list: its tokens name only the organization they are for (org_id,
  // org_name — the slug: see orgScopedExtras), and carry no organization claim otherwise.
  auth0: {
    claims: [],
    list: () => ({}),
  },
  // Logto: `organizations` (ids) and `organization_roles` ("<org id>:<role name>").
  logto: {
    claims: ['organizations', 'organization_roles'],
    list: (ms) => ({
      organizations: ms.map((m) => m.id),
      organization_roles: ms.flatMap((m) => m.roles.map((role) => `${m.id}:${role}`)),
    }),
  },
};

/** The membership list claims of `format`, from every organization the person is in. */
export function membershipClaims(format: ClaimsFormat, memberships: readonly Membership[]): Record<string, unknown> {
  return FORMATS[format].list(memberships);
}

/**
 * Past the tenant's cap the list is not put in tokens: each of the format's claims becomes an
 * OpenID Connect distributed claim pointing at userinfo, where the whole list is served.
 */
export function distributedMembershipClaims(format: ClaimsFormat, userinfoEndpoint: string): Record<string, unknown> {
  const names = FORMATS[format].claims;
  if (!names.length) return {};
  return {
    _claim_names: Object.fromEntries(names.map((name) => [name, 'tessera_userinfo'])),
    _claim_sources: { tessera_userinfo: { endpoint: userinfoEndpoint } },
  };
}

/**
 * Every claim any format may put under the `organizations` scope. oidc-provider leaves out of ID
 * tokens and userinfo any claim no granted scope names, so each must be listed there.
 */
export const MEMBERSHIP_CLAIMS: readonly string[] = [...new Set(CLAIMS_FORMATS.flatMap((f) => FORMATS[f].claims))];

/** Claims a format adds to an org-scoped token, beside the org claims every format carries. */
export const ORG_SCOPED_EXTRA_CLAIMS = ['org_name'] as const;

/**
 * What `format` adds to an org-scoped token's claims; nothing for a token without an organization.
 * auth0: `org_name` beside `org_id`, as Auth0 puts it. In Auth0 that is the organization's *name*
 * identifier — unique, lowercase, what "Use Organization Names in Authentication API" lets an app
 * match on — not its display name, which is neither unique nor stable (an org admin renames it).
 * Tessera's counterpart is the slug (unique in the tenant, lowercase), already in the org claims.
 */
export function orgScopedExtras(format: ClaimsFormat, orgClaims: { org_id?: unknown; org_slug?: unknown }): Record<string, unknown> {
  if (format !== 'auth0' || typeof orgClaims.org_id !== 'string' || typeof orgClaims.org_slug !== 'string') return {};
  return { org_name: orgClaims.org_slug };
}
