import type { Generated } from 'kysely';

export interface UserTable {
  tenant_id: string;
  id: Generated<string>;
  email: string;
  /** The canonical key of `email` (users/email-address.ts), written with it; what lookups by email compare. */
  email_key: string;
  email_verified: Generated<boolean>;
  name: string | null;
  given_name: string | null;
  family_name: string | null;
  password_hash: string | null;
  disabled: Generated<boolean>;
  /** May administer the whole tenant in the portal. */
  tenant_admin: Generated<boolean>;
  /** The organization the user last chose to work in; preselected when an app asks for one. */
  active_org_id: string | null;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
  last_login_at: Date | null;
}
