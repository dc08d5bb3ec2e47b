import type { Generated, GeneratedAlways } from 'kysely';

export interface UserTable {
  tenant_id: string;
  id: Generated<string>;
  email: string;
  /** lower(email), kept by PostgreSQL; what lookups by email compare (see emailKey in user.repo.ts). */
  email_key: GeneratedAlways<string>;
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
