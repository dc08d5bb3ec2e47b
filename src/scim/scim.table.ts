import type { Generated, JSONColumnType, Selectable } from 'kysely';

/** The directories a customer may name; the provider picks the instructions shown, nothing else. */
export const DIRECTORY_PROVIDERS = ['okta', 'entra', 'google', 'jumpcloud', 'generic'] as const;
export type DirectoryProvider = (typeof DIRECTORY_PROVIDERS)[number];

/**
 * Which attribute of a directory's user an SSO sign-in's subject (SAML NameID, OIDC `sub`, or the
 * email) is matched against, so the sign-in lands in the account the directory created.
 */
export const SSO_MATCHES = ['user_name', 'external_id', 'email'] as const;
export type SsoMatch = (typeof SSO_MATCHES)[number];

/** The last request a directory made, as the portal and the Admin API show it. */
export interface LastScimRequest {
  at: string;
  method: string;
  path: string;
  status: number;
  /** What happened, or why it was refused, in words a person can act on. */
  outcome: string;
}

export interface ScimDirectoryTable {
  tenant_id: string;
  org_id: string;
  id: Generated<string>;
  name: string;
  provider: Generated<DirectoryProvider>;
  enabled: Generated<boolean>;
  default_role: Generated<string>;
  /** Group displayName → organization role (never `owner`). */
  group_roles: JSONColumnType<Record<string, string>, string | undefined, string>;
  sso_match: Generated<SsoMatch>;
  /** SHA-256 of the bearer token; null when it was revoked and not yet rotated. */
  token_hash: string | null;
  /** The token's last four characters, so an admin can tell which one a directory holds. */
  token_hint: string | null;
  token_created_at: Date | null;
  last_request: JSONColumnType<LastScimRequest | null, string | null, string | null>;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
}

export type DirectoryRow = Selectable<ScimDirectoryTable>;

export interface ScimUserTable {
  tenant_id: string;
  directory_id: string;
  /** The SCIM id the directory addresses the user by. */
  id: Generated<string>;
  user_id: string;
  user_name: string;
  /** userName compared without regard to case (RFC 7643: caseExact false). */
  user_name_key: string;
  external_id: string | null;
  active: Generated<boolean>;
  /** The SCIM attributes as last written (name, emails, displayName, …), returned as given. */
  resource: JSONColumnType<Record<string, unknown>, string | undefined, string>;
  /** The directory created the account (rather than linking one that existed). */
  created_account: Generated<boolean>;
  /**
   * The directory disabled the account (it created it, and deactivating it left the account in
   * no organization): reactivation enables it again, and only then.
   */
  disabled_account: Generated<boolean>;
  /** Bumped on every change: the resource's ETag. */
  version: Generated<number>;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
}

export interface ScimGroupTable {
  tenant_id: string;
  directory_id: string;
  id: Generated<string>;
  display_name: string;
  external_id: string | null;
  version: Generated<number>;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
}

export interface ScimGroupMemberTable {
  tenant_id: string;
  group_id: string;
  scim_user_id: string;
}

/** A person a directory deleted: the organization remembers it (see jit.ts, deactivatedByDirectory). */
export interface ScimDepartureTable {
  tenant_id: string;
  directory_id: string;
  user_id: string;
  departed_at: Generated<Date>;
}
