import type { ColumnType, JSONColumnType } from 'kysely';

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
