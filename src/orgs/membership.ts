import { type Actor, isConfiguredActor } from '../base/actor.ts';
import { Conflict, Forbidden } from '../base/errors.ts';
import type { TenantTx } from '../db/database.ts';
import type { MemberRow, OrgRow, RoleRow } from './org.repo.ts';
import * as repo from './org.repo.ts';
import { assertRolesWithinReach, assertTeamRolesWithinReach, audit, isFull } from './org-rules.ts';
import { revokeOrgScoped } from './org-tokens.ts';
import { teamMembershipsOf, teamRolesByName } from './team.repo.ts';

/**
 * Every change of membership goes through here, whoever asks — the Admin API, the portal, the
 * account pages, invitations, SSO: the member limit, the last owner, who may give or take which
 * role (owners make owners; nobody hands out a permission they lack), and the audit row.
 *
 * `actor` is who the audit log names. `grantor` is whose rights the roles are checked against
 * when that is someone else: an invitation's roles were the inviter's to give, not the invitee's.
 * The caller holds the organization's row lock (findOrg … { lock: true }).
 */
export interface MembershipChange {
  tx: TenantTx;
  tenantId: string;
  orgId: string;
  actor: Actor;
  grantor?: Actor | undefined;
}

/** A member as the API, the portal and the audit log show them. */
export function presentMember(m: MemberRow) {
  return { user_id: m.user_id, email: m.email, name: m.name, roles: m.roles, joined_at: m.joined_at.toISOString() };
}

const LAST_OWNER = () => Conflict('This is the last owner of the organization: make another member owner first (transfer-ownership).');

/**
 * Owners and tenant administrators (API keys, machine clients, tenant-admin users) give and take
 * `owner`. What an SSO connection, a SCIM directory or a setup link does never grants it (they may
 * take it away: a person the directory removes loses every role, but for the last owner).
 */
async function assertMayChangeOwners(c: MembershipChange, granting: boolean) {
  const who = c.grantor ?? c.actor;
  if (isConfiguredActor(who)) {
    if (granting) throw Forbidden('The owner role is never granted automatically: make owners by transferring ownership.');
    return;
  }
  if (who.type !== 'user') return;
  const user = await c.tx.selectFrom('users').select('tenant_admin').where('tenant_id', '=', c.tenantId).where('id', '=', who.id).executeTakeFirst();
  if (user?.tenant_admin) return;
  const member = await repo.findMember(c.tx, c.tenantId, c.orgId, who.id);
  if (member?.roles.includes('owner')) return;
  throw Forbidden('Only owners can make, change or remove owners.');
}

/** Whether the grantor may give (or take away) `roles`: owner only by owners; within the permission ceiling. */
export async function assertRolesMayChange(c: MembershipChange, roles: readonly RoleRow[], granting = true) {
  if (roles.some((r) => r.name === 'owner')) await assertMayChangeOwners(c, granting);
  await assertRolesWithinReach(c.tx, c.tenantId, c.orgId, c.grantor ?? c.actor, roles, 'roles', granting ? 'grant' : 'take away');
}

/** The team roles a person holds in the organization's teams are the remover's to take away, team by team. */
async function assertTeamRolesMayBeTakenAway(c: MembershipChange, teams: ReadonlyArray<{ team_id: string; roles: string[] }>) {
  const rows = await teamRolesByName(c.tx, c.tenantId, c.orgId, [...new Set(teams.flatMap((t) => t.roles))]);
  const held = teams.map((t) => ({ teamId: t.team_id, roles: rows.filter((r) => t.roles.includes(r.name)) }));
  await assertTeamRolesWithinReach(c.tx, c.tenantId, c.orgId, c.grantor ?? c.actor, held, 'team_roles', 'take away');
}

/** An organization with owners never loses its last one. */
async function assertNotLastOwner(c: MembershipChange, userId: string) {
  const owners = await repo.ownerIds(c.tx, c.tenantId, c.orgId);
  if (owners.length === 1 && owners[0] === userId) throw LAST_OWNER();
}

/** A new member with `roles`; 409 when the organization is full. */
export async function addMember(c: MembershipChange, org: OrgRow, userId: string, roles: readonly RoleRow[]): Promise<MemberRow> {
  await assertRolesMayChange(c, roles);
  if (isFull(org)) throw Conflict(`The organization has reached its limit of ${org.max_members} members. Raise max_members to add more.`);
  await repo.insertMember(c.tx, c.tenantId, c.orgId, userId);
  await repo.setMemberRoles(
    c.tx,
    c.tenantId,
    c.orgId,
    userId,
    roles.map((r) => r.id),
  );
  const after = (await repo.findMember(c.tx, c.tenantId, c.orgId, userId))!;
  await audit(c.tx, c.tenantId, c.orgId, c.actor, 'member.added', { type: 'member', id: userId }, null, presentMember(after));
  return after;
}

/** The first owner of an organization just created: the one rule that needs no grantor. */
export async function addFoundingOwner(c: MembershipChange, org: OrgRow, userId: string, owner: RoleRow): Promise<MemberRow> {
  if (org.member_count !== 0 || owner.name !== 'owner') throw Conflict('Only a new organization gets a founding owner.');
  await repo.insertMember(c.tx, c.tenantId, c.orgId, userId);
  await repo.setMemberRoles(c.tx, c.tenantId, c.orgId, userId, [owner.id]);
  const after = (await repo.findMember(c.tx, c.tenantId, c.orgId, userId))!;
  await audit(c.tx, c.tenantId, c.orgId, c.actor, 'member.added', { type: 'member', id: userId }, null, presentMember(after));
  return after;
}

/**
 * Replaces a member's roles. Roles given and roles taken away alike must be the grantor's to
 * give; `owner` changes hands only by an owner (or a tenant administrator); the last owner stays.
 * Nothing changes (and nothing is audited) when the roles are the same.
 */
export async function setRoles(c: MembershipChange, before: MemberRow, roles: readonly RoleRow[], action = 'member.roles_changed'): Promise<MemberRow> {
  const next = new Set(roles.map((r) => r.name));
  const added = roles.filter((r) => !before.roles.includes(r.name));
  const removed = await repo.rolesByName(
    c.tx,
    c.tenantId,
    c.orgId,
    before.roles.filter((n) => !next.has(n)),
  );
  if (!added.length && !removed.length) return before;
  await assertRolesMayChange(c, added);
  await assertRolesMayChange(c, removed, false);
  if (removed.some((r) => r.name === 'owner')) await assertNotLastOwner(c, before.user_id);
  await repo.setMemberRoles(
    c.tx,
    c.tenantId,
    c.orgId,
    before.user_id,
    roles.map((r) => r.id),
  );
  const after = (await repo.findMember(c.tx, c.tenantId, c.orgId, before.user_id))!;
  await audit(c.tx, c.tenantId, c.orgId, c.actor, action, { type: 'member', id: before.user_id }, presentMember(before), presentMember(after));
  return after;
}

/**
 * Ends a membership (the account stays), the person's memberships of the organization's teams,
 * and the org-scoped (and team-scoped) tokens working in it. Leaving is
 * always allowed but for the last owner; removing someone else takes the rights to take away
 * each of their roles — their organization roles and the team roles they hold in its teams,
 * which end with the membership. A configured actor (an SCIM directory deactivating someone, an
 * SSO connection) takes both away as it takes organization roles: what an owner configured it to do.
 */
export async function removeMember(c: MembershipChange, before: MemberRow): Promise<void> {
  const leaving = c.actor.type === 'user' && c.actor.id === before.user_id;
  // The team memberships end with this one (the foreign key from team_members, migration 0020);
  // the audit row says which they were.
  const teams = await teamMembershipsOf(c.tx, c.tenantId, c.orgId, before.user_id);
  if (!leaving) {
    await assertRolesMayChange(c, await repo.rolesByName(c.tx, c.tenantId, c.orgId, before.roles), false);
    await assertTeamRolesMayBeTakenAway(c, teams);
  }
  if (before.roles.includes('owner')) await assertNotLastOwner(c, before.user_id);
  await repo.deleteMember(c.tx, c.tenantId, c.orgId, before.user_id);
  await revokeOrgScoped(c.tx, c.tenantId, c.orgId, [before.user_id]);
  await audit(
    c.tx,
    c.tenantId,
    c.orgId,
    c.actor,
    leaving ? 'member.left' : 'member.removed',
    { type: 'member', id: before.user_id },
    teams.length ? { ...presentMember(before), teams } : presentMember(before),
    null,
  );
}
