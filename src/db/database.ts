import type { Kysely, Transaction } from 'kysely';
import type { AccountTokenTable, AuthThrottleTable } from '../accounts/account.table.ts';
import type { PasskeyChallengeTable, RecoveryCodeTable, UserFactorTable } from '../factors/factor.table.ts';
import type { MailOutboxTable } from '../mail/mail.table.ts';
import type { ClientTable } from '../oidc/client.table.ts';
import type { OidcPayloadTable } from '../oidc-store/oidc-payload.table.ts';
import type {
  GrantOrganizationTable,
  InvitationSendTable,
  OrgAuditLogTable,
  OrganizationTable,
  OrgInvitationTable,
  OrgMemberRoleTable,
  OrgMemberTable,
  OrgRoleTable,
} from '../orgs/org.table.ts';
import type { TeamMemberTable, TeamRoleTable, TeamTable } from '../orgs/team.table.ts';
import type { ScimDepartureTable, ScimDirectoryTable, ScimGroupMemberTable, ScimGroupTable, ScimUserTable } from '../scim/scim.table.ts';
import type { SetupLinkTable } from '../setup-links/setup-link.table.ts';
import type {
  OrgDomainTable,
  SamlReplayTable,
  SsoConnectionTable,
  SsoIdentityTable,
  SsoPendingLinkTable,
  SsoRequestTable,
  SsoSignInTable,
} from '../sso/sso.table.ts';
import type { AdminApiKeyTable, SigningKeyTable, TenantAuditLogTable, TenantTable } from '../tenants/tenant.table.ts';
import type { ApiTokenTable } from '../tokens/api-token.table.ts';
import type { UserTable } from '../users/user.table.ts';

export interface DB {
  tenants: TenantTable;
  admin_api_keys: AdminApiKeyTable;
  signing_keys: SigningKeyTable;
  oidc_payloads: OidcPayloadTable;
  clients: ClientTable;
  users: UserTable;
  mail_outbox: MailOutboxTable;
  account_tokens: AccountTokenTable;
  auth_throttle: AuthThrottleTable;
  organizations: OrganizationTable;
  org_roles: OrgRoleTable;
  org_members: OrgMemberTable;
  org_member_roles: OrgMemberRoleTable;
  org_invitations: OrgInvitationTable;
  invitation_sends: InvitationSendTable;
  org_audit_log: OrgAuditLogTable;
  grant_organizations: GrantOrganizationTable;
  api_tokens: ApiTokenTable;
  org_domains: OrgDomainTable;
  sso_connections: SsoConnectionTable;
  sso_identities: SsoIdentityTable;
  sso_requests: SsoRequestTable;
  sso_pending_links: SsoPendingLinkTable;
  saml_replay: SamlReplayTable;
  user_factors: UserFactorTable;
  recovery_codes: RecoveryCodeTable;
  tenant_audit_log: TenantAuditLogTable;
  sso_sign_ins: SsoSignInTable;
  passkey_challenges: PasskeyChallengeTable;
  scim_directories: ScimDirectoryTable;
  scim_users: ScimUserTable;
  scim_groups: ScimGroupTable;
  scim_group_members: ScimGroupMemberTable;
  scim_departures: ScimDepartureTable;
  setup_links: SetupLinkTable;
  teams: TeamTable;
  team_roles: TeamRoleTable;
  team_members: TeamMemberTable;
}

export type Database = Kysely<DB>;
/** A transaction bound to one tenant: row-level security applies (see tenant-scope.ts). */
export type TenantTx = Transaction<DB>;
