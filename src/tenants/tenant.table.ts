import type { ColumnType, Generated, JSONColumnType } from 'kysely';

import type { StoredSettings } from './settings.ts';

export type TenantSettings = StoredSettings;

export interface TenantTable {
  id: Generated<string>;
  slug: string;
  name: string;
  settings: JSONColumnType<TenantSettings, TenantSettings | string, TenantSettings | string>;
  /** Bumped on every change that must rebuild the tenant's oidc-provider (keys, settings). */
  config_version: Generated<number>;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
}

export interface AdminApiKeyTable {
  tenant_id: string;
  id: Generated<string>;
  name: string;
  /** First characters of the key, shown in listings so a person can tell keys apart. */
  prefix: string;
  key_hash: string;
  created_at: Generated<Date>;
  last_used_at: ColumnType<Date | null, never, Date>;
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

/** Changes a tenant administrator made that belong to no organization (a person's factors). */
export interface TenantAuditLogTable {
  tenant_id: string;
  id: Generated<string>;
  actor: JSONColumnType<Record<string, unknown>, string, string>;
  action: string;
  target_type: string;
  target_id: string | null;
  before: JSONColumnType<Record<string, unknown> | null, string | null, string | null>;
  after: JSONColumnType<Record<string, unknown> | null, string | null, string | null>;
  created_at: Generated<Date>;
}
