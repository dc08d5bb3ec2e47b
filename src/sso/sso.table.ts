import type { Generated, JSONColumnType, Selectable } from 'kysely';

export interface OrgDomainTable {
  tenant_id: string;
  org_id: string;
  domain: string;
  verification_token: string;
  verified: Generated<boolean>;
  verified_at: Date | null;
  created_at: Generated<Date>;
}

export interface AttributeMapping {
  email?: string;
  name?: string;
  given_name?: string;
  family_name?: string;
  groups?: string;
}

export interface SsoConnectionTable {
  tenant_id: string;
  org_id: string;
  id: Generated<string>;
  type: 'saml' | 'oidc';
  name: string;
  enabled: Generated<boolean>;
  auto_provision: Generated<boolean>;
  default_role: Generated<string>;
  attribute_mapping: JSONColumnType<AttributeMapping, string, string>;
  group_roles: JSONColumnType<Record<string, string>, string, string>;
  /** Non-secret settings (issuer_url, client_id, scopes for OIDC; IdP metadata for SAML). */
  config: JSONColumnType<Record<string, unknown>, string, string>;
  /** OIDC client secret (or SAML SP private key), AES-GCM encrypted. */
  secret_encrypted: string | null;
  last_error: string | null;
  last_error_at: Date | null;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
}

/** A connection as read: what the sign-in flows, their requests and the services share. */
export type ConnectionRow = Selectable<SsoConnectionTable>;

export interface SsoIdentityTable {
  tenant_id: string;
  connection_id: string;
  subject: string;
  user_id: string;
  /** Why the link exists (see LinkReason in jit.ts); 'legacy' links are re-checked before use. */
  linked_by: string;
  /** A link the person proved was proven with the account's second factor too (see jit.ts). */
  proven_with_factor: Generated<boolean>;
  created_at: Generated<Date>;
  last_login_at: Date | null;
}

export interface SsoRequestTable {
  tenant_id: string;
  id: string;
  connection_id: string;
  /** The authorization request to resume; null for a sign-in started from an invitation link. */
  interaction_uid: string | null;
  /** The invitation whose link started this sign-in (its link proved the mailbox). */
  invitation_id: string | null;
  /** A test sign-in started from this setup link: shown on its page, it signs no one in. */
  setup_link_id: Generated<string | null>;
  nonce: string | null;
  code_verifier: string | null;
  expires_at: Date;
}

export interface SamlReplayTable {
  tenant_id: string;
  connection_id: string;
  assertion_id: string;
  expires_at: Date;
}

/** An SSO sign-in waiting for the person to prove that the existing account it named is theirs. */
export interface SsoPendingLinkTable {
  tenant_id: string;
  id: Generated<string>;
  connection_id: string;
  subject: string;
  user_id: string;
  profile: JSONColumnType<Record<string, unknown>, string, string>;
  interaction_uid: string | null;
  invitation_id: string | null;
  browser_hash: string;
  mail_token_hash: string | null;
  mails_sent: Generated<number>;
  last_mail_at: Date | null;
  expires_at: Date;
  created_at: Generated<Date>;
}

/** A sign-in (grant + auth_time) that came through an organization's SSO connection. */
export interface SsoSignInTable {
  tenant_id: string;
  grant_id: string;
  auth_time: string | number;
  org_id: string;
  connection_id: string;
  created_at: Generated<Date>;
}
