import type { Database } from '../db/database.ts';
import { inTenant } from '../db/tenant-scope.ts';
import { findMember, insertMember, pendingInvitationFor, rolesByName, setMemberRoles, findOrg } from '../orgs/org.repo.ts';
import { isFull } from '../orgs/org-rules.ts';
import { findUserByEmail, insertUser, updateUser } from '../users/user.repo.ts';
import type { ConnectionRow } from './connection.service.ts';

export interface UpstreamProfile {
  subject: string;
  email: string;
  name?: string | undefined;
  given_name?: string | undefined;
  family_name?: string | undefined;
  groups?: string[] | undefined;
}

export class SsoRefused extends Error {
  override name = 'SsoRefused';
}

/**
 * Just-in-time provisioning. Accounts are keyed by (connection, subject): the first sign-in
 * through a connection creates the user — or, without auto-provisioning, admits an existing
 * member or invited email of the organization — and a later sign-in finds them by that key and
 * refreshes their profile and (when groups are mapped) their roles. An existing account is never
 * taken over because an IdP asserts its email: only an account the organization already vouched
 * for (a member, or an invitation to that email) is linked.
 */
export async function provision(db: Database, conn: ConnectionRow, profile: UpstreamProfile, opts: { emailDomainVerified: boolean }): Promise<{ userId: string; created: boolean }> {
  const tenantId = conn.tenant_id;
  return inTenant(db, tenantId, async (tx) => {
    const identity = await tx
      .selectFrom('sso_identities')
      .select('user_id')
      .where('tenant_id', '=', tenantId)
      .where('connection_id', '=', conn.id)
      .where('subject', '=', profile.subject)
      .executeTakeFirst();
    let userId = identity?.user_id;
    let created = false;
    if (!userId) {
      const existing = await findUserByEmail(tx, tenantId, profile.email);
      if (existing) {
        const vouched = (await findMember(tx, tenantId, conn.org_id, existing.id)) || (await pendingInvitationFor(tx, tenantId, conn.org_id, existing.email));
        if (!vouched) throw new SsoRefused(`an account with the email ${profile.email} already exists and is not a member of this organization; it is not linked by email alone`);
        userId = existing.id;
      } else {
        const invited = await pendingInvitationFor(tx, tenantId, conn.org_id, profile.email);
        if (!conn.auto_provision && !invited) throw new SsoRefused(`${profile.email} is not a member of the organization and automatic provisioning is off`);
        if (conn.auto_provision && !invited && !opts.emailDomainVerified) {
          throw new SsoRefused(`the domain of ${profile.email} is not a verified domain of the organization; accounts are created only for verified domains`);
        }
        const user = await insertUser(tx, tenantId, {
          email: profile.email,
          name: profile.name ?? null,
          given_name: profile.given_name ?? null,
          family_name: profile.family_name ?? null,
          email_verified: true,
          password_hash: null,
        });
        userId = user.id;
        created = true;
      }
      await tx.insertInto('sso_identities').values({ tenant_id: tenantId, connection_id: conn.id, subject: profile.subject, user_id: userId, last_login_at: new Date() }).execute();
    } else {
      await tx.updateTable('sso_identities').set({ last_login_at: new Date() }).where('tenant_id', '=', tenantId).where('connection_id', '=', conn.id).where('subject', '=', profile.subject).execute();
      await updateUser(tx, tenantId, userId, {
        ...(profile.name ? { name: profile.name } : {}),
        ...(profile.given_name ? { given_name: profile.given_name } : {}),
        ...(profile.family_name ? { family_name: profile.family_name } : {}),
      });
    }

    // Membership: the mapped roles (from groups), else the connection's default role.
    const groupRoles = conn.group_roles as Record<string, string>;
    const mapped = [...new Set((profile.groups ?? []).flatMap((g) => (groupRoles[g] ? [groupRoles[g]] : [])))];
    const member = await findMember(tx, tenantId, conn.org_id, userId);
    if (!member) {
      const org = (await findOrg(tx, tenantId, conn.org_id, { lock: true }))!;
      if (isFull(org)) throw new SsoRefused(`the organization has reached its limit of ${org.max_members} members`);
      await insertMember(tx, tenantId, conn.org_id, userId);
      const roles = await rolesByName(tx, tenantId, conn.org_id, mapped.length ? mapped : [conn.default_role]);
      await setMemberRoles(tx, tenantId, conn.org_id, userId, roles.map((r) => r.id));
    } else if (mapped.length && Object.keys(groupRoles).length) {
      // Roles that groups map to follow the IdP; `owner` is never taken away this way.
      const keep = member.roles.filter((r) => r === 'owner');
      const roles = await rolesByName(tx, tenantId, conn.org_id, [...new Set([...mapped, ...keep])]);
      await setMemberRoles(tx, tenantId, conn.org_id, userId, roles.map((r) => r.id));
    }
    return { userId, created };
  });
}
