/**
 * Who may do what to one organization in the portal — the one place these rules live.
 *
 * - Tenant admins and the organization's owners: everything.
 * - Admins: run the organization (members, invitations, roles, settings, audit) but cannot
 *   make or unmake owners, transfer ownership or delete it — an admin must not be able to lock
 *   the owners out — nor change what the organization trusts (SSO connections, their
 *   certificates and role mappings, domains, the authentication policy): whoever configures an
 *   IdP decides who its users become, so that is the owners' (they see those tabs read-only).
 * - Every other member: sees the organization and its member list, and may leave.
 * - Anyone else: the organization does not exist for them (404, not 403: its existence is not
 *   theirs to learn).
 *
 * The Admin API has no such layers: it is the tenant's own, with an admin credential.
 */
export interface OrgAbilities {
  manage: boolean;
  ownerPowers: boolean;
  /** SSO connections, certificates, default and group-mapped roles, domains: owners and tenant admins. */
  configureSso: boolean;
  /**
   * The authentication policy (MFA, sign-in methods, SSO required, session age): what the
   * organization trusts, so owners and tenant admins; admins see it read-only.
   */
  configureAuthPolicy: boolean;
  /** Suspending an organization stops its sign-ins: the tenant's decision, not the customer's. */
  changeStatus: boolean;
  isMember: boolean;
}

export function abilitiesFor(tenantAdmin: boolean, myRoles: string[] | undefined): OrgAbilities | undefined {
  const isMember = myRoles !== undefined;
  if (!tenantAdmin && !isMember) return undefined;
  const owner = tenantAdmin || myRoles!.includes('owner');
  return {
    manage: owner || myRoles!.includes('admin'),
    ownerPowers: owner,
    configureSso: owner,
    configureAuthPolicy: owner,
    changeStatus: tenantAdmin,
    isMember,
  };
}
