import { type Actor, isConfiguredActor } from '../base/actor.ts';
import { Conflict, Forbidden, isUniqueViolation, NotFound, ValidationFailed } from '../base/errors.ts';
import { decodeCursor, page } from '../base/pagination.ts';
import type { Database, TenantTx } from '../db/database.ts';
import { scopedStatement } from '../db/one-shot.ts';
import { inTenant } from '../db/tenant-scope.ts';
import * as orgRepo from './org.repo.ts';
import * as rules from './org-rules.ts';
import { revokeTeamScoped } from './org-tokens.ts';
import { slugify, uniqueSlug } from './slug.ts';
import type { TeamMemberRow, TeamRoleRow, TeamRow } from './team.repo.ts';
import * as repo from './team.repo.ts';
import { BUILTIN_TEAM_ROLES } from './team.table.ts';

// ── presenters: the Admin API's shapes ───────────────────────────────────────

export function presentTeam(t: TeamRow) {
  return {
    id: t.id,
    org_id: t.org_id,
    name: t.name,
    slug: t.slug,
    description: t.description,
    created_at: t.created_at.toISOString(),
    updated_at: t.updated_at.toISOString(),
  };
}

export function presentTeamMember(m: TeamMemberRow) {
  return { user_id: m.user_id, email: m.email, name: m.name, roles: m.roles, joined_at: m.joined_at.toISOString() };
}

export function presentTeamRole(r: TeamRoleRow) {
  return { id: r.id, name: r.name, description: r.description, permissions: r.permissions, builtin: false, created_at: r.created_at.toISOString() };
}

/** The built-in team roles as the list shows them: no id (they are not rows), no permissions. */
const BUILTIN_ROLE_ENTRIES = BUILTIN_TEAM_ROLES.map((name) => ({
  id: null,
  name,
  description: name === 'admin' ? "Manages the team's members" : null,
  permissions: [] as string[],
  builtin: true,
  created_at: null,
}));

export type TeamInput = { name: string; slug?: string | null | undefined; description?: string | null | undefined };

/**
 * What an actor may do with an organization's teams. Tenant administrators (API keys, machine
 * clients, tenant-admin users) and the organization's owners and admins manage everything; a
 * team's `admin` manages that team's members; other members only see. Anyone else: the
 * organization does not exist for them.
 */
interface TeamAccess {
  manageTeams: boolean;
  /** Teams whose members the actor may manage without managing teams (their team `admin` role). */
  teamAdminOf: ReadonlySet<string>;
}

const NO_TEAM = () => NotFound('No such team in this organization.');
const NO_TEAM_MEMBER = () => NotFound('No such member in this team.');
const NO_TEAM_ROLE = () => NotFound('No such team role in this organization.');

/**
 * Teams inside an organization: their members, each with team roles (built-in `admin` and
 * `member`, and the organization's custom team roles with permissions). The rules live here once,
 * for the Admin API and the portal: who may manage what, the team limit, that a team's members
 * are the organization's members, the permission ceiling, and the audit row of every change in
 * the organization's audit log. A person leaving the organization leaves its teams by the
 * foreign key from team_members to org_members (migration 0020), in the same statement.
 */
export class TeamService {
  constructor(private readonly db: Database) {}

  private tx<T>(tenantId: string, work: (tx: TenantTx) => Promise<T>) {
    return inTenant(this.db, tenantId, work);
  }

  private async access(tx: TenantTx, tenantId: string, orgId: string, actor: Actor): Promise<TeamAccess> {
    const all = { manageTeams: true, teamAdminOf: new Set<string>() };
    // What an IdP, a directory or a setup link does never reaches teams.
    if (isConfiguredActor(actor)) throw Forbidden('Teams are managed by people and the Admin API only.');
    if (actor.type !== 'user') return all;
    const user = await tx.selectFrom('users').select('tenant_admin').where('tenant_id', '=', tenantId).where('id', '=', actor.id).executeTakeFirst();
    if (user?.tenant_admin) return all;
    const member = await orgRepo.findMember(tx, tenantId, orgId, actor.id);
    if (!member) throw NotFound(`No organization ${orgId} in this tenant.`);
    const manageTeams = member.roles.includes('owner') || member.roles.includes('admin');
    return { manageTeams, teamAdminOf: new Set(manageTeams ? [] : await repo.teamsAdministeredBy(tx, tenantId, orgId, actor.id)) };
  }

  private async requireManageTeams(tx: TenantTx, tenantId: string, orgId: string, actor: Actor) {
    const a = await this.access(tx, tenantId, orgId, actor);
    if (!a.manageTeams) throw Forbidden("Only the organization's owners and admins manage its teams.");
  }

  private async requireManageMembers(tx: TenantTx, tenantId: string, orgId: string, teamId: string, actor: Actor) {
    const a = await this.access(tx, tenantId, orgId, actor);
    if (!a.manageTeams && !a.teamAdminOf.has(teamId)) throw Forbidden("Only the organization's owners and admins, and the team's admins, manage its members.");
  }

  private async teamOrThrow(tx: TenantTx, tenantId: string, orgId: string, teamId: string) {
    const team = await repo.findTeam(tx, tenantId, orgId, teamId);
    if (!team) throw NO_TEAM();
    return team;
  }

  private conflictOnUnique(err: unknown): never {
    if (isUniqueViolation(err)) {
      const detail = String((err as { detail?: string; constraint?: string }).detail ?? (err as { constraint?: string }).constraint ?? '');
      if (/slug/.test(detail)) throw Conflict('Another team of this organization already has this slug.', [{ field: 'slug', message: 'already in use' }]);
      if (/name/.test(detail)) throw Conflict('This organization already has a team role with that name.', [{ field: 'name', message: 'already in use' }]);
      throw Conflict('That would duplicate an existing entry.');
    }
    throw err;
  }

  /**
   * Team role names → the custom roles among them, or a 422 naming the unknown ones. The
   * built-in names need no row.
   */
  private async resolveTeamRoles(tx: TenantTx, tenantId: string, orgId: string, names: readonly string[], field: string) {
    const unique = [...new Set(names)];
    const custom = unique.filter((n) => !(BUILTIN_TEAM_ROLES as readonly string[]).includes(n));
    const rows = await repo.teamRolesByName(tx, tenantId, orgId, custom);
    const missing = custom.filter((n) => !rows.some((r) => r.name === n));
    if (missing.length) {
      throw ValidationFailed(`Unknown team role${missing.length > 1 ? 's' : ''} for this organization: ${missing.join(', ')}.`, [
        { field, message: `unknown team role: ${missing.join(', ')}` },
      ]);
    }
    return { names: unique, rows };
  }

  /** The permission ceiling for the team roles of one team (org-rules.ts says who may). */
  private async assertTeamRolesWithinReach(
    tx: TenantTx,
    tenantId: string,
    orgId: string,
    teamId: string,
    actor: Actor,
    roles: readonly TeamRoleRow[],
    field: string,
    what: 'grant' | 'take away' | 'grant or take away',
  ) {
    await rules.assertTeamRolesWithinReach(tx, tenantId, orgId, actor, [{ teamId, roles }], field, what);
  }

  // ── teams ──────────────────────────────────────────────────────────────────

  async list(tenantId: string, actor: Actor, orgId: string, q: { limit: number; cursor?: string | undefined }) {
    return this.tx(tenantId, async (tx) => {
      await rules.orgOrThrow(tx, tenantId, orgId);
      await this.access(tx, tenantId, orgId, actor);
      const rows = await repo.listTeams(tx, tenantId, orgId, { limit: q.limit, after: decodeCursor(q.cursor) });
      const p = page(rows, q.limit, (t) => ({ createdAt: t.created_at, id: t.id }));
      return { data: p.data.map(presentTeam), next_cursor: p.next_cursor };
    });
  }

  async get(tenantId: string, actor: Actor, orgId: string, teamId: string) {
    return this.tx(tenantId, async (tx) => {
      await rules.orgOrThrow(tx, tenantId, orgId);
      await this.access(tx, tenantId, orgId, actor);
      return presentTeam(await this.teamOrThrow(tx, tenantId, orgId, teamId));
    });
  }

  /** 409 when the organization has its `max_teams`. */
  async create(tenantId: string, actor: Actor, orgId: string, input: TeamInput) {
    try {
      return await this.tx(tenantId, async (tx) => {
        // The organization's row lock serialises creations, so the count below is exact.
        const org = await rules.orgOrThrow(tx, tenantId, orgId, true);
        await this.requireManageTeams(tx, tenantId, orgId, actor);
        const count = await repo.countTeams(tx, tenantId, orgId);
        if (count >= org.max_teams) {
          throw Conflict(`The organization has reached its limit of ${org.max_teams} teams. Delete a team, or raise the organization's max_teams.`);
        }
        const slug = input.slug ?? (await uniqueSlug(slugify(input.name), (s) => repo.teamSlugTaken(tx, tenantId, orgId, s)));
        const team = await repo.insertTeam(tx, { tenant_id: tenantId, org_id: orgId, name: input.name, slug, description: input.description ?? null });
        await rules.audit(tx, tenantId, orgId, actor, 'team.created', { type: 'team', id: team.id }, null, presentTeam(team));
        return presentTeam(team);
      });
    } catch (err) {
      this.conflictOnUnique(err);
    }
  }

  async update(tenantId: string, actor: Actor, orgId: string, teamId: string, input: Partial<TeamInput>) {
    try {
      return await this.tx(tenantId, async (tx) => {
        await rules.orgOrThrow(tx, tenantId, orgId);
        await this.requireManageTeams(tx, tenantId, orgId, actor);
        const before = await this.teamOrThrow(tx, tenantId, orgId, teamId);
        const after = await repo.updateTeam(tx, tenantId, teamId, {
          ...(input.name !== undefined ? { name: input.name } : {}),
          ...(input.slug ? { slug: input.slug } : {}),
          ...(input.description !== undefined ? { description: input.description } : {}),
        });
        await rules.audit(tx, tenantId, orgId, actor, 'team.updated', { type: 'team', id: teamId }, presentTeam(before), presentTeam(after));
        return presentTeam(after);
      });
    } catch (err) {
      this.conflictOnUnique(err);
    }
  }

  /**
   * Deletes the team with its memberships; the sign-ins working in it lose it (revoked). The
   * memberships take their team roles with them, so deleting takes the rights to take away each
   * team role held in the team (as removing its holders one by one would).
   */
  async delete(tenantId: string, actor: Actor, orgId: string, teamId: string) {
    await this.tx(tenantId, async (tx) => {
      await rules.orgOrThrow(tx, tenantId, orgId);
      await this.requireManageTeams(tx, tenantId, orgId, actor);
      const before = await this.teamOrThrow(tx, tenantId, orgId, teamId);
      const held = await repo.teamRoleNamesHeldIn(tx, tenantId, teamId);
      await this.assertTeamRolesWithinReach(tx, tenantId, orgId, teamId, actor, await repo.teamRolesByName(tx, tenantId, orgId, held), 'team', 'take away');
      await revokeTeamScoped(tx, tenantId, teamId);
      await repo.deleteTeam(tx, tenantId, teamId);
      await rules.audit(tx, tenantId, orgId, actor, 'team.deleted', { type: 'team', id: teamId }, presentTeam(before), null);
    });
  }

  // ── members ────────────────────────────────────────────────────────────────

  async listMembers(tenantId: string, actor: Actor, orgId: string, teamId: string, q: { limit: number; cursor?: string | undefined }) {
    const after = decodeCursor(q.cursor);
    let rows: TeamMemberRow[];
    if (actor.type === 'user') {
      rows = await this.tx(tenantId, async (tx) => {
        await rules.orgOrThrow(tx, tenantId, orgId);
        await this.access(tx, tenantId, orgId, actor);
        await this.teamOrThrow(tx, tenantId, orgId, teamId);
        return repo.listTeamMembers(tx, tenantId, orgId, teamId, { limit: q.limit, after });
      });
    } else {
      // A tenant administrator's read: one prepared statement in one round trip (as the
      // organization's member list, db/one-shot.ts); only an empty page asks whether the team is there.
      rows = await scopedStatement(this.db, tenantId, (tx) => repo.listTeamMembers(tx, tenantId, orgId, teamId, { limit: q.limit, after }), { prepare: true });
      if (rows.length === 0) await this.tx(tenantId, (tx) => this.teamOrThrow(tx, tenantId, orgId, teamId));
    }
    const p = page(rows, q.limit, (m) => ({ createdAt: m.joined_at, id: m.user_id }));
    return { data: p.data.map(presentTeamMember), next_cursor: p.next_cursor };
  }

  /** A member of the organization into the team (422 for anyone else; 409 when already in it). */
  async addMember(tenantId: string, actor: Actor, orgId: string, teamId: string, userId: string, roleNames: readonly string[] = ['member']) {
    return this.tx(tenantId, async (tx) => {
      // Under the organization's lock: a membership being ended meanwhile can't race the insert.
      await rules.orgOrThrow(tx, tenantId, orgId, true);
      await this.requireManageMembers(tx, tenantId, orgId, teamId, actor);
      await this.teamOrThrow(tx, tenantId, orgId, teamId);
      if (!(await orgRepo.findMember(tx, tenantId, orgId, userId))) {
        throw ValidationFailed('Only members of the organization can join its teams: add them to the organization first.', [
          { field: 'user_id', message: 'not a member of the organization' },
        ]);
      }
      if (await repo.findTeamMember(tx, tenantId, teamId, userId)) throw Conflict('That person is already in the team; change their roles with PATCH instead.');
      const roles = await this.resolveTeamRoles(tx, tenantId, orgId, roleNames, 'roles');
      await this.assertTeamRolesWithinReach(tx, tenantId, orgId, teamId, actor, roles.rows, 'roles', 'grant');
      await repo.insertTeamMember(tx, { tenant_id: tenantId, org_id: orgId, team_id: teamId, user_id: userId, roles: roles.names });
      const after = (await repo.findTeamMember(tx, tenantId, teamId, userId))!;
      await rules.audit(tx, tenantId, orgId, actor, 'team.member.added', { type: 'team_member', id: `${teamId}:${userId}` }, null, {
        team_id: teamId,
        ...presentTeamMember(after),
      });
      return presentTeamMember(after);
    });
  }

  /** Replaces a team member's roles; given and taken alike within the permission ceiling. */
  async changeMemberRoles(tenantId: string, actor: Actor, orgId: string, teamId: string, userId: string, roleNames: readonly string[]) {
    return this.tx(tenantId, async (tx) => {
      await rules.orgOrThrow(tx, tenantId, orgId);
      await this.requireManageMembers(tx, tenantId, orgId, teamId, actor);
      await this.teamOrThrow(tx, tenantId, orgId, teamId);
      const before = await repo.findTeamMember(tx, tenantId, teamId, userId);
      if (!before) throw NO_TEAM_MEMBER();
      const next = await this.resolveTeamRoles(tx, tenantId, orgId, roleNames, 'roles');
      const changed = [...next.names.filter((n) => !before.roles.includes(n)), ...before.roles.filter((n) => !next.names.includes(n))];
      if (!changed.length) return presentTeamMember(before);
      await this.assertTeamRolesWithinReach(
        tx,
        tenantId,
        orgId,
        teamId,
        actor,
        await repo.teamRolesByName(tx, tenantId, orgId, changed),
        'roles',
        'grant or take away',
      );
      await repo.setTeamMemberRoles(tx, tenantId, teamId, userId, next.names);
      const after = (await repo.findTeamMember(tx, tenantId, teamId, userId))!;
      await rules.audit(
        tx,
        tenantId,
        orgId,
        actor,
        'team.member.roles_changed',
        { type: 'team_member', id: `${teamId}:${userId}` },
        { team_id: teamId, ...presentTeamMember(before) },
        { team_id: teamId, ...presentTeamMember(after) },
      );
      return presentTeamMember(after);
    });
  }

  /**
   * Takes someone out of the team (they stay in the organization). Leaving is always allowed;
   * removing someone else takes the rights to take away each of their roles. Their sign-ins
   * working in the team are revoked.
   */
  async removeMember(tenantId: string, actor: Actor, orgId: string, teamId: string, userId: string) {
    await this.tx(tenantId, async (tx) => {
      await rules.orgOrThrow(tx, tenantId, orgId);
      const leaving = actor.type === 'user' && actor.id === userId;
      if (!leaving) await this.requireManageMembers(tx, tenantId, orgId, teamId, actor);
      await this.teamOrThrow(tx, tenantId, orgId, teamId);
      const before = await repo.findTeamMember(tx, tenantId, teamId, userId);
      if (!before) throw NO_TEAM_MEMBER();
      if (!leaving)
        await this.assertTeamRolesWithinReach(
          tx,
          tenantId,
          orgId,
          teamId,
          actor,
          await repo.teamRolesByName(tx, tenantId, orgId, before.roles),
          'roles',
          'take away',
        );
      await repo.deleteTeamMember(tx, tenantId, teamId, userId);
      await revokeTeamScoped(tx, tenantId, teamId, [userId]);
      await rules.audit(
        tx,
        tenantId,
        orgId,
        actor,
        leaving ? 'team.member.left' : 'team.member.removed',
        { type: 'team_member', id: `${teamId}:${userId}` },
        { team_id: teamId, ...presentTeamMember(before) },
        null,
      );
    });
  }

  /** The person's teams in each of their organizations, keyed by organization id. */
  async teamsOf(tenantId: string, userId: string): Promise<Map<string, Array<{ id: string; slug: string; name: string; roles: string[] }>>> {
    const rows = await this.tx(tenantId, (tx) => repo.teamsOfPerson(tx, tenantId, userId));
    const byOrg = new Map<string, Array<{ id: string; slug: string; name: string; roles: string[] }>>();
    for (const r of rows) {
      const list = byOrg.get(r.org_id) ?? [];
      list.push({ id: r.id, slug: r.slug, name: r.name, roles: r.roles });
      byOrg.set(r.org_id, list);
    }
    return byOrg;
  }

  // ── team roles ─────────────────────────────────────────────────────────────

  async listRoles(tenantId: string, actor: Actor, orgId: string) {
    return this.tx(tenantId, async (tx) => {
      await rules.orgOrThrow(tx, tenantId, orgId);
      await this.access(tx, tenantId, orgId, actor);
      return [...BUILTIN_ROLE_ENTRIES, ...(await repo.listTeamRoles(tx, tenantId, orgId)).map(presentTeamRole)];
    });
  }

  async createRole(
    tenantId: string,
    actor: Actor,
    orgId: string,
    input: { name: string; description?: string | undefined; permissions?: string[] | undefined },
  ) {
    if ((BUILTIN_TEAM_ROLES as readonly string[]).includes(input.name)) {
      throw Conflict(`"${input.name}" is a built-in team role.`, [{ field: 'name', message: 'already in use' }]);
    }
    try {
      return await this.tx(tenantId, async (tx) => {
        await rules.orgOrThrow(tx, tenantId, orgId);
        await this.requireManageTeams(tx, tenantId, orgId, actor);
        const permissions = [...new Set(input.permissions ?? [])];
        await rules.assertPermissionsHeld(tx, tenantId, orgId, actor, permissions, 'permissions', 'write');
        const role = await repo.insertTeamRole(tx, {
          tenant_id: tenantId,
          org_id: orgId,
          name: input.name,
          description: input.description ?? null,
          permissions,
        });
        await rules.audit(tx, tenantId, orgId, actor, 'team_role.created', { type: 'team_role', id: role.id }, null, presentTeamRole(role));
        return presentTeamRole(role);
      });
    } catch (err) {
      this.conflictOnUnique(err);
    }
  }

  async updateRole(
    tenantId: string,
    actor: Actor,
    orgId: string,
    roleId: string,
    input: { description?: string | null | undefined; permissions?: string[] | undefined },
  ) {
    return this.tx(tenantId, async (tx) => {
      await rules.orgOrThrow(tx, tenantId, orgId);
      await this.requireManageTeams(tx, tenantId, orgId, actor);
      const before = await repo.findTeamRole(tx, tenantId, orgId, roleId);
      if (!before) throw NO_TEAM_ROLE();
      // A role above the actor stays as it is; a new permission set stays within the ceiling.
      if (input.permissions)
        await rules.assertPermissionsHeld(tx, tenantId, orgId, actor, [...before.permissions, ...input.permissions], 'permissions', 'change');
      const after = await repo.updateTeamRole(tx, tenantId, roleId, {
        ...(input.description !== undefined ? { description: input.description } : {}),
        ...(input.permissions ? { permissions: [...new Set(input.permissions)] } : {}),
      });
      await rules.audit(tx, tenantId, orgId, actor, 'team_role.updated', { type: 'team_role', id: roleId }, presentTeamRole(before), presentTeamRole(after));
      return presentTeamRole(after);
    });
  }

  /** A role in use goes only with `force`, taken from its holders (one left with none keeps `member`). */
  async deleteRole(tenantId: string, actor: Actor, orgId: string, roleId: string, force: boolean) {
    await this.tx(tenantId, async (tx) => {
      await rules.orgOrThrow(tx, tenantId, orgId, true);
      await this.requireManageTeams(tx, tenantId, orgId, actor);
      const role = await repo.findTeamRole(tx, tenantId, orgId, roleId);
      if (!role) throw NO_TEAM_ROLE();
      await rules.assertPermissionsHeld(tx, tenantId, orgId, actor, role.permissions, 'role', 'take away');
      const holders = await repo.teamRoleHolders(tx, tenantId, orgId, role.name);
      if (!force && holders.length > 0) {
        throw Conflict(`The team role "${role.name}" is held in ${holders.length} team membership(s). Delete with ?force=true to remove it from them.`);
      }
      await repo.removeTeamRoleFromMembers(tx, tenantId, orgId, role.name);
      await repo.deleteTeamRole(tx, tenantId, roleId);
      await rules.audit(
        tx,
        tenantId,
        orgId,
        actor,
        'team_role.deleted',
        { type: 'team_role', id: roleId },
        { ...presentTeamRole(role), holders: holders.length },
        null,
      );
    });
  }
}
