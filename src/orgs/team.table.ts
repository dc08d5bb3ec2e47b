import type { Generated } from 'kysely';

/** Every organization has these team roles; they carry no permissions and can't be deleted. */
export const BUILTIN_TEAM_ROLES = ['admin', 'member'] as const;

export interface TeamTable {
  tenant_id: string;
  org_id: string;
  id: Generated<string>;
  name: string;
  /** Unique in the organization. */
  slug: string;
  description: string | null;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
}

/** An organization's custom team role (the built-in ones are not rows). */
export interface TeamRoleTable {
  tenant_id: string;
  org_id: string;
  id: Generated<string>;
  name: string;
  description: string | null;
  permissions: Generated<string[]>;
  created_at: Generated<Date>;
}

/** A member of the organization in one of its teams, with one or more team role names. */
export interface TeamMemberTable {
  tenant_id: string;
  org_id: string;
  team_id: string;
  user_id: string;
  roles: string[];
  joined_at: Generated<Date>;
}
