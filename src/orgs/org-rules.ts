import type { Actor } from '../base/actor.ts';
import { NotFound, ValidationFailed } from '../base/errors.ts';
import type { TenantTx } from '../db/database.ts';
import type { OrgRow, RoleRow } from './org.repo.ts';
import * as repo from './org.repo.ts';
import type { TeamRoleRow } from './team.repo.ts';
import * as teamRepo from './team.repo.ts';

// Rules shared by the organization and invitation services; each lives here once.

export async function orgOrThrow(tx: TenantTx, tenantId: string, orgId: string, lock = false): Promise<OrgRow> {
  const org = await repo.findOrg(tx, tenantId, orgId, { lock });
  if (!org) throw NotFound(`No organization ${orgId} in this tenant.`);
  return org;
}

/**
 * Whether `actor` acts for the tenant itself: an admin API key, a machine client with the admin
 * scope, or a user who is a tenant administrator. Not an organization's SSO connection, SCIM
 * directory or setup link: those act on what an owner configured.
 */
export async function isTenantAdmin(tx: TenantTx, tenantId: string, actor: Actor): Promise<boolean> {
  if (actor.type === 'api_key' || actor.type === 'client') return true;
  if (actor.type !== 'user') return false;
  const user = await tx.selectFrom('users').select('tenant_admin').where('tenant_id', '=', tenantId).where('id', '=', actor.id).executeTakeFirst();
  return user?.tenant_admin === true;
}

/** Every change is written to the audit log in the transaction that makes it. */
export function audit(
  tx: TenantTx,
  tenantId: string,
  orgId: string,
  actor: Actor,
  action: string,
  target: { type: string; id: string | null },
  before: unknown,
  after: unknown,
) {
  return repo.insertAudit(tx, { tenant_id: tenantId, org_id: orgId, actor, action, target_type: target.type, target_id: target.id, before, after });
}

/** Role names → rows, or a 422 naming the unknown ones. */
export async function resolveRoles(tx: TenantTx, tenantId: string, orgId: string, names: string[], field: string): Promise<RoleRow[]> {
  const unique = [...new Set(names)];
  const rows = await repo.rolesByName(tx, tenantId, orgId, unique);
  const missing = unique.filter((n) => !rows.some((r) => r.name === n));
  if (missing.length) {
    throw ValidationFailed(`Unknown role${missing.length > 1 ? 's' : ''} for this organization: ${missing.join(', ')}.`, [
      { field, message: `unknown role: ${missing.join(', ')}` },
    ]);
  }
  return rows;
}

/**
 * Everything `actor` may hand out in the organization: `all` for tenant administrators (API keys,
 * machine clients, tenant-admin users) and the organization's owners; otherwise the permissions
 * of the roles the actor holds there.
 */
async function permissionsHeld(tx: TenantTx, tenantId: string, orgId: string, actor: Actor): Promise<'all' | Set<string>> {
  if (actor.type !== 'user') return 'all';
  if (await isTenantAdmin(tx, tenantId, actor)) return 'all';
  const member = await repo.findMember(tx, tenantId, orgId, actor.id);
  if (member?.roles.includes('owner')) return 'all';
  const roles = await repo.rolesByName(tx, tenantId, orgId, member?.roles ?? []);
  return new Set(roles.flatMap((r) => r.permissions));
}

/**
 * The permission ceiling: nobody hands out a permission they do not hold themselves — not by
 * granting a role that carries it, nor by writing it into a role (owners and tenant
 * administrators hold every permission). 422 naming `field`.
 */
export async function assertPermissionsHeld(
  tx: TenantTx,
  tenantId: string,
  orgId: string,
  actor: Actor,
  permissions: readonly string[],
  field: string,
  what = 'grant',
) {
  if (!permissions.length) return;
  const held = await permissionsHeld(tx, tenantId, orgId, actor);
  if (held === 'all') return;
  const missing = [...new Set(permissions.filter((p) => !held.has(p)))];
  if (missing.length) {
    throw ValidationFailed(`You can't ${what} permissions you do not hold yourself: ${missing.join(', ')}.`, [
      { field, message: `permissions you lack: ${missing.join(', ')}` },
    ]);
  }
}

/** Roles `actor` may give (or take away): each within the permission ceiling. */
export async function assertRolesWithinReach(
  tx: TenantTx,
  tenantId: string,
  orgId: string,
  actor: Actor,
  roles: readonly RoleRow[],
  field: string,
  what: 'grant' | 'take away' = 'grant',
) {
  await assertPermissionsHeld(
    tx,
    tenantId,
    orgId,
    actor,
    roles.flatMap((r) => r.permissions),
    field,
    what,
  );
}

/**
 * The permission ceiling for team roles, team by team: nobody hands out (or takes away) a team
 * role carrying a permission they do not hold — in the organization, or, for a team's own
 * `admin`, through their roles in that team. A plain holder of a team role (an organization
 * admin who is a `deployer` of the team, say) does not pass it on: a team role's permissions
 * count only where the team's admins decide, in that team. Every path that gives or takes a
 * team role comes here: a team's members (team.service.ts), deleting a team, and removing
 * someone from the organization, whose team memberships end with it (membership.ts).
 */
export async function assertTeamRolesWithinReach(
  tx: TenantTx,
  tenantId: string,
  orgId: string,
  actor: Actor,
  held: ReadonlyArray<{ teamId: string; roles: readonly TeamRoleRow[] }>,
  field: string,
  what: 'grant' | 'take away' | 'grant or take away',
) {
  const permissions: string[] = [];
  for (const { teamId, roles } of held) {
    let mine = roles.flatMap((r) => r.permissions);
    if (mine.length && actor.type === 'user') {
      const own = await teamRepo.findTeamMember(tx, tenantId, teamId, actor.id);
      if (own?.roles.includes('admin')) {
        const there = new Set((await teamRepo.teamRolesByName(tx, tenantId, orgId, own.roles)).flatMap((r) => r.permissions));
        mine = mine.filter((p) => !there.has(p));
      }
    }
    permissions.push(...mine);
  }
  await assertPermissionsHeld(tx, tenantId, orgId, actor, permissions, field, what);
}

/**
 * What configuration may grant automatically (an SSO connection's default role and group
 * mapping; later SCIM groups): never `owner`, and nothing beyond the permission ceiling.
 */
export async function assertGrantable(tx: TenantTx, tenantId: string, orgId: string, actor: Actor, grants: Array<{ field: string; role: string }>) {
  if (!grants.length) return;
  const owner = grants.find((g) => g.role === 'owner');
  if (owner)
    throw ValidationFailed('The owner role is never granted automatically: make owners by transferring ownership.', [
      { field: owner.field, message: 'owner cannot be granted this way' },
    ]);
  const roles = await resolveRoles(
    tx,
    tenantId,
    orgId,
    grants.map((g) => g.role),
    grants[0]!.field,
  );
  for (const g of grants)
    await assertRolesWithinReach(
      tx,
      tenantId,
      orgId,
      actor,
      roles.filter((r) => r.name === g.role),
      g.field,
    );
}

/**
 * The member limit. `org` must have been read with its row lock (findOrg … { lock: true }): the
 * lock serialises membership changes, and the count the database keeps on the row is then exact.
 */
export const isFull = (org: OrgRow) => org.member_count >= org.max_members;
