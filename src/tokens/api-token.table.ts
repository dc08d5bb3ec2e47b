import type { Generated } from 'kysely';

/** A scoped API token (api-token.service.ts): only its jti is kept, never the token itself. */
export interface ApiTokenTable {
  tenant_id: string;
  id: Generated<string>;
  user_id: string;
  grant_id: string;
  jti: string;
  scopes: string[];
  org_id: string | null;
  expires_at: Date;
  last_used_at: Date | null;
  revoked_at: Date | null;
  created_at: Generated<Date>;
}
