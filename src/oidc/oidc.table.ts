import type { ColumnType, Generated, JSONColumnType } from 'kysely';

/** One row per oidc-provider model instance (sessions, grants, codes, refresh tokens, …). */
export interface OidcPayloadTable {
  tenant_id: string;
  model: string;
  id: string;
  payload: JSONColumnType<Record<string, unknown>, string, string>;
  grant_id: string | null;
  user_code: string | null;
  uid: string | null;
  expires_at: Date | null;
  consumed_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
}

export interface SigningKeyTable {
  tenant_id: string;
  kid: string;
  alg: string;
  public_jwk: JSONColumnType<Record<string, unknown>, string, string>;
  /** The private JWK, AES-256-GCM encrypted with the configured encryption key. */
  private_jwk_encrypted: string;
  created_at: Generated<Date>;
  /** Set when a newer key takes over signing; the public key stays published until tokens signed with it expire. */
  retired_at: Date | null;
}

export interface ClientTable {
  tenant_id: string;
  client_id: string;
  /** SHA-256 (hex) of the client secret; null for public clients. */
  client_secret_hash: string | null;
  name: string;
  /** oidc-provider client metadata (redirect_uris, grant_types, …) minus the secret. */
  metadata: JSONColumnType<Record<string, unknown>, string, string>;
  require_consent: Generated<boolean>;
  /** May the client ask for an organization: deny, allow (default) or require (then the user picks one). */
  organization_usage: Generated<'deny' | 'allow' | 'require'>;
  /** Organizations a machine client may act for (client credentials with organization=<id>). */
  organization_ids: Generated<string[]>;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
}
