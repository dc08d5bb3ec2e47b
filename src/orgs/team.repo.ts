import { type Selectable, sql } from 'kysely';
import type { Keyset } from '../base/pagination.ts';
import type { TenantTx } from '../db/database.ts';
import type { TeamRoleTable, TeamTable } from './team.table.ts';

export type TeamRow = Selectable<TeamTable>;
export type TeamRoleRow = Selectable<TeamRoleTable>;

// ── teams ────────────────────────────────────────────────────────────────────

export async function insertTeam(tx: TenantTx, row: { tenant_id: string; org_id: string; name: string; slug: string; description: string | null }) {
  return tx.insertInto('teams').values(row).returningAll().executeTakeFirstOrThrow();
}

export async function findTeam(tx: TenantTx, tenantId: string, orgId: string, teamId: string) {
  return tx.selectFrom('teams').selectAll().where('tenant_id', '=', tenantId).where('org_id', '=', orgId).where('id', '=', teamId).executeTakeFirst();
}

export async function teamSlugTaken(tx: TenantTx, tenantId: string, orgId: string, slug: string, exceptTeamId?: string) {
  let qb = tx.selectFrom('teams').select('id').where('tenant_id', '=', tenantId).where('org_id', '=', orgId).where('slug', '=', slug);
  if (exceptTeamId) qb = qb.where('id', '!=', exceptTeamId);
  return (await qb.executeTakeFirst()) !== undefined;
}

export async function countTeams(tx: TenantTx, tenantId: string, orgId: string): Promise<number> {
  const row = await tx
    .selectFrom('teams')
    .select(sql<string>`count(*)`.as('n'))
    .where('tenant_id', '=', tenantId)
    .where('org_id', '=', orgId)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

export async function listTeams(tx: TenantTx, tenantId: string, orgId: string, q: { after?: Keyset | undefined; limit: number }) {
  let qb = tx.selectFrom('teams').selectAll().where('tenant_id', '=', tenantId).where('org_id', '=', orgId);
  if (q.after) qb = qb.where(sql<boolean>`(created_at, id) > (${q.after.createdAt}, ${q.after.id}::uuid)`);
  return qb
    .orderBy('created_at')
    .orderBy('id')
    .limit(q.limit + 1)
    .execute();
}

export async function updateTeam(tx: TenantTx, tenantId: string, teamId: string, patch: { name?: string; slug?: string; description?: string | null }) {
  return tx
    .updateTable('teams')
    .set({ ...patch, updated_at: new Date() })
    .where('tenant_id', '=', tenantId)
    .where('id', '=', teamId)
    .returningAll()
    .executeTakeFirstOrThrow();
}

export async function deleteTeam(tx: TenantTx, tenantId: string, teamId: string) {
  await tx.deleteFrom('teams').where('tenant_id', '=', tenantId).where('id', '=', teamId).execute();
}

// ── team members ─────────────────────────────────────────────────────────────

export interface TeamMemberRow {
  user_id: string;
  email: string;
  name: string | null;
  roles: string[];
  joined_at: Date;
}

const teamMemberSelect = (tx: TenantTx, tenantId: string, teamId: string) =>
  tx
    .selectFrom('team_members as tm')
    .innerJoin('users as u', (j) => j.onRef('u.tenant_id', '=', 'tm.tenant_id').onRef('u.id', '=', 'tm.user_id'))
    .select(['tm.user_id', 'u.email', 'u.name', 'tm.roles', 'tm.joined_at'])
    .where('tm.tenant_id', '=', tenantId)
    .where('tm.team_id', '=', teamId);

/**
 * A page of a team's members. `orgId` is part of the condition: a row then proves the team is
 * the organization's, so a non-empty page needs no other statement (team.service.ts).
 */
export async function listTeamMembers(
  tx: TenantTx,
  tenantId: string,
  orgId: string,
  teamId: string,
  q: { after?: Keyset | undefined; limit: number },
): Promise<TeamMemberRow[]> {
  let qb = teamMemberSelect(tx, tenantId, teamId).where('tm.org_id', '=', orgId);
  if (q.after) qb = qb.where(sql<boolean>`(tm.joined_at, tm.user_id) > (${q.after.createdAt}, ${q.after.id}::uuid)`);
  return (
    qb
      .orderBy('tm.joined_at')
      .orderBy('tm.user_id')
      // A literal, not a parameter: the statement is prepared with a generic plan (db/prepared.ts).
      .limit(sql.lit(pageRows(q.limit)))
      .execute()
  );
}

export async function findTeamMember(tx: TenantTx, tenantId: string, teamId: string, userId: string): Promise<TeamMemberRow | undefined> {
  return teamMemberSelect(tx, tenantId, teamId).where('tm.user_id', '=', userId).executeTakeFirst();
}

export async function insertTeamMember(tx: TenantTx, row: { tenant_id: string; org_id: string; team_id: string; user_id: string; roles: string[] }) {
  await tx.insertInto('team_members').values(row).execute();
}

export async function setTeamMemberRoles(tx: TenantTx, tenantId: string, teamId: string, userId: string, roles: string[]) {
  await tx.updateTable('team_members').set({ roles }).where('tenant_id', '=', tenantId).where('team_id', '=', teamId).where('user_id', '=', userId).execute();
}

export async function deleteTeamMember(tx: TenantTx, tenantId: string, teamId: string, userId: string) {
  await tx.deleteFrom('team_members').where('tenant_id', '=', tenantId).where('team_id', '=', teamId).where('user_id', '=', userId).execute();
}

/** The teams of `orgIds` (all the person's organizations when absent) a person is in, with their roles there. */
export async function teamsOfPerson(tx: TenantTx, tenantId: string, userId: string) {
  return tx
    .selectFrom('team_members as tm')
    .innerJoin('teams as t', (j) => j.onRef('t.tenant_id', '=', 'tm.tenant_id').onRef('t.id', '=', 'tm.team_id'))
    .select(['t.org_id', 't.id', 't.slug', 't.name', 'tm.roles'])
    .where('tm.tenant_id', '=', tenantId)
    .where('tm.user_id', '=', userId)
    .orderBy('t.name')
    .orderBy('t.id')
    .execute();
}

/** The ids of the teams of `orgId` in which `userId` holds the team role `admin`. */
export async function teamsAdministeredBy(tx: TenantTx, tenantId: string, orgId: string, userId: string): Promise<string[]> {
  const rows = await tx
    .selectFrom('team_members')
    .select('team_id')
    .where('tenant_id', '=', tenantId)
    .where('org_id', '=', orgId)
    .where('user_id', '=', userId)
    .where(sql<boolean>`'admin' = any(roles)`)
    .execute();
  return rows.map((r) => r.team_id);
}

// ── team roles ───────────────────────────────────────────────────────────────

export async function listTeamRoles(tx: TenantTx, tenantId: string, orgId: string) {
  return tx.selectFrom('team_roles').selectAll().where('tenant_id', '=', tenantId).where('org_id', '=', orgId).orderBy('created_at').orderBy('name').execute();
}

export async function findTeamRole(tx: TenantTx, tenantId: string, orgId: string, roleId: string) {
  return tx.selectFrom('team_roles').selectAll().where('tenant_id', '=', tenantId).where('org_id', '=', orgId).where('id', '=', roleId).executeTakeFirst();
}

export async function teamRolesByName(tx: TenantTx, tenantId: string, orgId: string, names: readonly string[]) {
  if (names.length === 0) return [];
  return tx
    .selectFrom('team_roles')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('org_id', '=', orgId)
    .where('name', 'in', [...names])
    .execute();
}

export async function insertTeamRole(
  tx: TenantTx,
  row: { tenant_id: string; org_id: string; name: string; description: string | null; permissions: string[] },
) {
  return tx.insertInto('team_roles').values(row).returningAll().executeTakeFirstOrThrow();
}

export async function updateTeamRole(tx: TenantTx, tenantId: string, roleId: string, patch: { description?: string | null; permissions?: string[] }) {
  return tx.updateTable('team_roles').set(patch).where('tenant_id', '=', tenantId).where('id', '=', roleId).returningAll().executeTakeFirstOrThrow();
}

/** The team role names held in team `teamId`, each once. */
export async function teamRoleNamesHeldIn(tx: TenantTx, tenantId: string, teamId: string): Promise<string[]> {
  const rows = await tx
    .selectFrom('team_members')
    .select(sql<string>`unnest(roles)`.as('name'))
    .distinct()
    .where('tenant_id', '=', tenantId)
    .where('team_id', '=', teamId)
    .execute();
  return rows.map((r) => r.name);
}

/** Who in the organization's teams holds the role `name`: (team, user) pairs. */
export async function teamRoleHolders(tx: TenantTx, tenantId: string, orgId: string, name: string) {
  return tx
    .selectFrom('team_members')
    .select(['team_id', 'user_id', 'roles'])
    .where('tenant_id', '=', tenantId)
    .where('org_id', '=', orgId)
    .where(sql<boolean>`${name} = any(roles)`)
    .execute();
}

/** Takes the role `name` from everyone in the organization's teams; someone left with none keeps `member`. */
export async function removeTeamRoleFromMembers(tx: TenantTx, tenantId: string, orgId: string, name: string) {
  await sql`
    update team_members set roles = case when cardinality(array_remove(roles, ${name})) = 0 then array['member'] else array_remove(roles, ${name}) end
    where tenant_id = ${tenantId} and org_id = ${orgId} and ${name} = any(roles)`.execute(tx);
}

export async function deleteTeamRole(tx: TenantTx, tenantId: string, roleId: string) {
  await tx.deleteFrom('team_roles').where('tenant_id', '=', tenantId).where('id', '=', roleId).execute();
}

/** A page size plus one, written into the statement's text: only a small positive integer ever is. */
function pageRows(limit: number) {
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > 1000) throw new Error(`not a page size: ${limit}`);
  return limit + 1;
}

/** The teams of `orgId` a person is in, with their roles: what leaving the organization ends. */
export async function teamMembershipsOf(tx: TenantTx, tenantId: string, orgId: string, userId: string) {
  return tx
    .selectFrom('team_members')
    .select(['team_id', 'roles'])
    .where('tenant_id', '=', tenantId)
    .where('org_id', '=', orgId)
    .where('user_id', '=', userId)
    .orderBy('team_id')
    .execute();
}
