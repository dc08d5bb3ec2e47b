import type { Database } from '../db/database.ts';
import { inTenant } from '../db/tenant-scope.ts';
import type { DomainService } from '../sso/domain.service.ts';
import { mappedRoles } from '../sso/group-roles.ts';
import { directoryAccount, existingAccountVerdict } from '../sso/jit.ts';
import type { ConnectionRow } from '../sso/sso.table.ts';
import type { UpstreamProfile } from '../sso/upstream.ts';
import { findUserByEmail, findUserById } from '../users/user.repo.ts';

/**
 * What a real sign-in with this IdP answer would do, in words, for a setup link's test sign-in —
 * read only: the same questions jit.ts asks (a link for this subject, an account with this email,
 * the email's domain, automatic provisioning), answered without writing anything. It says only
 * whether an account exists, never whose: the person testing sees their own answer.
 */
export async function previewSignIn(db: Database, domains: DomainService, conn: ConnectionRow, profile: UpstreamProfile): Promise<string> {
  const tenantId = conn.tenant_id;
  const emailDomainVerified = await domains.isVerifiedFor(tenantId, conn.org_id, profile.email);
  // As jit.ts's ensureMembership: the roles the groups map to, else the connection's default.
  const mapped = mappedRoles(conn.group_roles, profile.groups);
  const unique = mapped.length ? mapped : [conn.default_role];
  const asRoles = `with the role${unique.length > 1 ? 's' : ''} ${unique.join(', ')}`;
  return inTenant(db, tenantId, async (tx) => {
    const identity = await tx
      .selectFrom('sso_identities')
      .select('user_id')
      .where('tenant_id', '=', tenantId)
      .where('connection_id', '=', conn.id)
      .where('subject', '=', profile.subject)
      .executeTakeFirst();
    if (identity) {
      const user = await findUserById(tx, tenantId, identity.user_id);
      return user && !user.disabled && !user.tenant_admin
        ? `This person already signed in through this connection: a real sign-in opens their account and keeps them a member ${asRoles}.`
        : 'This person is linked to an account that cannot sign in through an organization connection: a real sign-in would be refused.';
    }
    const provisioned = await directoryAccount(tx, conn, profile);
    if (provisioned)
      return `The organization's directory holds this person: a real sign-in opens the account the directory made or linked, and keeps them a member ${asRoles}.`;
    const existing = await findUserByEmail(tx, tenantId, profile.email);
    if (existing) {
      const verdict = existingAccountVerdict(existing, emailDomainVerified);
      if (verdict.ok)
        return `An account with this email exists on a verified domain: a real sign-in links it to this connection and makes it a member ${asRoles}.`;
      if (verdict.refuse) return 'An account with this email exists but may not sign in through an organization connection: a real sign-in would be refused.';
      return 'An account with this email exists: at a real sign-in the person first proves it is theirs (its password or a link mailed to it), then it is linked.';
    }
    if (!emailDomainVerified)
      return `${profile.email.split('@')[1]} is not a verified domain of the organization: a real sign-in would create no account (verify the domain, or invite the person).`;
    if (!conn.auto_provision) return 'Automatic provisioning is off for this connection: a real sign-in would create no account.';
    return `A real sign-in creates an account for ${profile.email} and makes it a member ${asRoles}.`;
  });
}
