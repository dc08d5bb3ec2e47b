import type { Generated, JSONColumnType } from 'kysely';

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
  /** The shape of the membership list claim in this client's tokens (see oidc/claims-format.ts). */
  claims_format: Generated<'tessera' | 'flat' | 'keycloak' | 'auth0' | 'logto'>;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
}
