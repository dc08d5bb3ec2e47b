import type { ColumnType, Generated, JSONColumnType } from 'kysely';
import type { StoredOrgAuthPolicy } from './org-auth-policy.ts';

/** An organization's states, written once: the type, the API's enum and the portal's choices come from here. */
export const ORG_STATUSES = ['active', 'trialing', 'pending', 'suspended', 'rejected'] as const;
export type OrgStatus = (typeof ORG_STATUSES)[number];
/**
 * The states in which an organization works: org-scoped tokens are issued only for these
 * (org-tokens.ts). `pending` waits for a tenant administrator's approval, `rejected` was refused
 * it, `suspended` was stopped (by a tenant administrator, or when its trial ended).
 */
export const WORKING_STATUSES: readonly OrgStatus[] = ['active', 'trialing'];
export const isWorking = (status: OrgStatus | string) => (WORKING_STATUSES as readonly string[]).includes(status);
/** Every organization has these; they can't be deleted. */
export const BUILTIN_ROLES = ['owner', 'admin', 'member', 'billing'] as const;

export interface OrganizationTable {
  tenant_id: string;
  id: Generated<string>;
  name: string;
  slug: string;
  domain: string | null;
  description: string | null;
  website: string | null;
  industry: string | null;
  logo_url: string | null;
  status: Generated<OrgStatus>;
  metadata: JSONColumnType<Record<string, unknown>, string, string>;
  max_members: Generated<number>;
  /** How many teams the organization may have (team.service.ts). */
  max_teams: Generated<number>;
  /** Kept by the database (migration 0007 triggers); read it from a locked row to check the limit. */
  member_count: Generated<number>;
  /** Users of the organization's verified domains must sign in through its SSO connection. */
  sso_required: Generated<boolean>;
  /** The authentication policy's other fields (org-auth-policy.ts), only those off their defaults. */
  auth_policy: ColumnType<StoredOrgAuthPolicy, string | undefined, string>;
  /** Why the status is what it is (`trial_ended`, a rejection's reason, what an admin wrote), or null. */
  status_reason: string | null;
  status_changed_at: Date | null;
  /** When a `trialing` organization's trial ends: the trial job suspends it then (org-lifecycle.ts). */
  trial_ends_at: Date | null;
  /** The user who created it (null: an API key or machine client): what max_organizations_per_user counts. */
  created_by: string | null;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
}

export interface OrgRoleTable {
  tenant_id: string;
  org_id: string;
  id: Generated<string>;
  name: string;
  description: string | null;
  permissions: Generated<string[]>;
  builtin: Generated<boolean>;
  created_at: Generated<Date>;
}

export interface OrgMemberTable {
  tenant_id: string;
  org_id: string;
  user_id: string;
  joined_at: Generated<Date>;
}

export interface OrgMemberRoleTable {
  tenant_id: string;
  org_id: string;
  user_id: string;
  role_id: string;
}

export type InvitationStatus = 'pending' | 'accepted' | 'revoked' | 'declined';

export interface OrgInvitationTable {
  tenant_id: string;
  org_id: string;
  id: Generated<string>;
  email: string;
  /**
   * The canonical key of `email` (users/email-address.ts), written with it; what an account's key
   * must equal to accept. Null only for invitations older than the rule to addresses it refuses,
   * which no account can accept.
   */
  email_key: string | null;
  role_id: string;
  token_hash: string;
  status: Generated<InvitationStatus>;
  expires_at: Date;
  invited_by: JSONColumnType<Record<string, unknown>, string, string>;
  accepted_user_id: string | null;
  accepted_at: Date | null;
  created_at: Generated<Date>;
}

/** One invitation mail sent (created or resent): what the send limits count (invitation-limits.ts). */
export interface InvitationSendTable {
  tenant_id: string;
  org_id: string;
  invitation_id: string;
  sent_at: Generated<Date>;
}

export interface OrgAuditLogTable {
  tenant_id: string;
  org_id: string;
  id: Generated<string>;
  actor: JSONColumnType<Record<string, unknown>, string, string>;
  action: string;
  target_type: string;
  target_id: string | null;
  before: JSONColumnType<Record<string, unknown> | null, string | null, string | null>;
  after: JSONColumnType<Record<string, unknown> | null, string | null, string | null>;
  created_at: Generated<Date>;
}

export interface GrantOrganizationTable {
  tenant_id: string;
  grant_id: string;
  org_id: string;
  user_id: string;
  /** The team of `org_id` the sign-in works in, if any (team-scoped tokens). */
  team_id: Generated<string | null>;
  selected_at: Generated<Date>;
}
