import { type RawBuilder, type Selectable, sql, type Updateable } from 'kysely';
import type { Actor } from '../base/actor.ts';
import type { Keyset } from '../base/pagination.ts';
import type { TenantTx } from '../db/database.ts';
import { canonicalEmail, emailKey } from '../users/email-address.ts';
import type { InvitationStatus, OrganizationTable, OrgInvitationTable, OrgRoleTable } from './org.table.ts';
import type { StoredOrgAuthPolicy } from './org-auth-policy.ts';

export type OrgRow = Selectable<OrganizationTable>;
export type RoleRow = Selectable<OrgRoleTable>;
export type InvitationRow = Selectable<OrgInvitationTable>;

const likePattern = (q: string) => `%${q.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;

// ── organizations ────────────────────────────────────────────────────────────

export async function insertOrg(
  tx: TenantTx,
  row: Omit<
    OrgRow,
    'id' | 'created_at' | 'updated_at' | 'metadata' | 'status' | 'max_members' | 'max_teams' | 'member_count' | 'sso_required' | 'auth_policy'
  > & {
    metadata: Record<string, unknown>;
    status?: OrgRow['status'];
    max_members?: number;
    max_teams?: number;
    sso_required?: boolean;
  },
) {
  return tx
    .insertInto('organizations')
    .values({ ...row, metadata: JSON.stringify(row.metadata) })
    .returningAll()
    .executeTakeFirstOrThrow();
}

export async function updateOrgAuthPolicy(tx: TenantTx, tenantId: string, orgId: string, next: { auth_policy: StoredOrgAuthPolicy; sso_required: boolean }) {
  return tx
    .updateTable('organizations')
    .set({ auth_policy: JSON.stringify(next.auth_policy), sso_required: next.sso_required, updated_at: new Date() })
    .where('tenant_id', '=', tenantId)
    .where('id', '=', orgId)
    .returningAll()
    .executeTakeFirstOrThrow();
}

/** The organization, optionally locked: membership changes lock it so owner counts can't race. */
export async function findOrg(tx: TenantTx, tenantId: string, orgId: string, opts: { lock?: boolean } = {}) {
  let qb = tx.selectFrom('organizations').selectAll().where('tenant_id', '=', tenantId).where('id', '=', orgId);
  if (opts.lock) qb = qb.forUpdate();
  return qb.executeTakeFirst();
}

export async function slugTaken(tx: TenantTx, tenantId: string, slug: string, exceptOrgId?: string) {
  let qb = tx.selectFrom('organizations').select('id').where('tenant_id', '=', tenantId).where('slug', '=', slug);
  if (exceptOrgId) qb = qb.where('id', '!=', exceptOrgId);
  return (await qb.executeTakeFirst()) !== undefined;
}

export async function listOrgs(
  tx: TenantTx,
  tenantId: string,
  q: { q?: string | undefined; status?: string | undefined; after?: Keyset | undefined; limit: number },
) {
  let qb = tx.selectFrom('organizations').selectAll().where('tenant_id', '=', tenantId);
  if (q.q) qb = qb.where((eb) => eb.or([eb('name', 'ilike', likePattern(q.q!)), eb('slug', 'ilike', likePattern(q.q!))]));
  if (q.status) qb = qb.where('status', '=', q.status as OrgRow['status']);
  if (q.after) qb = qb.where(sql<boolean>`(created_at, id) > (${q.after.createdAt}, ${q.after.id}::uuid)`);
  return qb
    .orderBy('created_at')
    .orderBy('id')
    .limit(q.limit + 1)
    .execute();
}

export async function updateOrg(
  tx: TenantTx,
  tenantId: string,
  orgId: string,
  patch: Omit<Updateable<OrganizationTable>, 'metadata'> & { metadata?: Record<string, unknown> },
) {
  const { metadata, ...rest } = patch;
  return tx
    .updateTable('organizations')
    .set({ ...rest, ...(metadata ? { metadata: JSON.stringify(metadata) } : {}), updated_at: new Date() })
    .where('tenant_id', '=', tenantId)
    .where('id', '=', orgId)
    .returningAll()
    .executeTakeFirstOrThrow();
}

export async function deleteOrg(tx: TenantTx, tenantId: string, orgId: string) {
  await tx.deleteFrom('organizations').where('tenant_id', '=', tenantId).where('id', '=', orgId).execute();
}

// ── roles ────────────────────────────────────────────────────────────────────

export async function insertRoles(
  tx: TenantTx,
  rows: Array<{ tenant_id: string; org_id: string; name: string; description: string | null; permissions?: string[]; builtin?: boolean }>,
) {
  return tx.insertInto('org_roles').values(rows).returningAll().execute();
}

export async function listRoles(tx: TenantTx, tenantId: string, orgId: string) {
  return tx
    .selectFrom('org_roles')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('org_id', '=', orgId)
    .orderBy('builtin', 'desc')
    .orderBy('created_at')
    .orderBy('name')
    .execute();
}

export async function findRole(tx: TenantTx, tenantId: string, orgId: string, roleId: string) {
  return tx.selectFrom('org_roles').selectAll().where('tenant_id', '=', tenantId).where('org_id', '=', orgId).where('id', '=', roleId).executeTakeFirst();
}

export async function rolesByName(tx: TenantTx, tenantId: string, orgId: string, names: string[]) {
  if (names.length === 0) return [];
  return tx.selectFrom('org_roles').selectAll().where('tenant_id', '=', tenantId).where('org_id', '=', orgId).where('name', 'in', names).execute();
}

export async function updateRole(tx: TenantTx, tenantId: string, roleId: string, patch: { description?: string | null; permissions?: string[] }) {
  return tx.updateTable('org_roles').set(patch).where('tenant_id', '=', tenantId).where('id', '=', roleId).returningAll().executeTakeFirstOrThrow();
}

export async function roleUsage(tx: TenantTx, tenantId: string, roleId: string) {
  const members = await tx
    .selectFrom('org_member_roles')
    .select(sql<string>`count(*)`.as('n'))
    .where('tenant_id', '=', tenantId)
    .where('role_id', '=', roleId)
    .executeTakeFirstOrThrow();
  const invitations = await tx
    .selectFrom('org_invitations')
    .select(sql<string>`count(*)`.as('n'))
    .where('tenant_id', '=', tenantId)
    .where('role_id', '=', roleId)
    .where('status', '=', 'pending')
    .executeTakeFirstOrThrow();
  return { members: Number(members.n), invitations: Number(invitations.n) };
}

export async function deleteRole(tx: TenantTx, tenantId: string, roleId: string) {
  await tx.deleteFrom('org_roles').where('tenant_id', '=', tenantId).where('id', '=', roleId).execute();
}

// ── members ──────────────────────────────────────────────────────────────────

/**
 * SQL for the sorted role names of one member, given the SQL expressions naming the tenant, the
 * organization and the user (columns of the outer query, or values).
 *
 * Joins to org_roles name the organization too (`r.org_id = mr.org_id`), though the role id alone
 * would do: the foreign key makes it true anyway, and it bounds the plan. With statistics taken
 * while a tenant had few roles (a burst of new organizations since the last ANALYZE), PostgreSQL
 * chose a merge join over *all the tenant's roles* for every member row — a page of 50 members
 * took 120–200 ms instead of 2 (`npm run bench -- AdminOrgs`, auto_explain). With the organization
 * in the condition the worst plan reads that organization's few roles.
 */
export function memberRoleNames(tenant: RawBuilder<unknown>, org: RawBuilder<unknown>, user: RawBuilder<unknown>) {
  return sql<string[]>`coalesce((
    select array_agg(r.name order by r.name) from org_member_roles mr
    join org_roles r on r.tenant_id = mr.tenant_id and r.org_id = mr.org_id and r.id = mr.role_id
    where mr.tenant_id = ${tenant} and mr.org_id = ${org} and mr.user_id = ${user}), '{}')`;
}

export interface MemberRow {
  user_id: string;
  email: string;
  name: string | null;
  joined_at: Date;
  roles: string[];
}

const memberSelect = (tx: TenantTx, tenantId: string, orgId: string) =>
  tx
    .selectFrom('org_members as m')
    .innerJoin('users as u', (j) => j.onRef('u.tenant_id', '=', 'm.tenant_id').onRef('u.id', '=', 'm.user_id'))
    .select(['m.user_id', 'u.email', 'u.name', 'm.joined_at', memberRoleNames(sql.ref('m.tenant_id'), sql.ref('m.org_id'), sql.ref('m.user_id')).as('roles')])
    .where('m.tenant_id', '=', tenantId)
    .where('m.org_id', '=', orgId);

/** A row count written into a statement's text: only a small positive integer ever is. */
function literalRowCount(n: number) {
  if (!Number.isSafeInteger(n) || n < 1 || n > 1001) throw new Error(`not a page size: ${n}`);
  return sql.lit(n);
}

export async function listMembers(tx: TenantTx, tenantId: string, orgId: string, q: { after?: Keyset | undefined; limit: number }): Promise<MemberRow[]> {
  let qb = memberSelect(tx, tenantId, orgId);
  if (q.after) qb = qb.where(sql<boolean>`(m.joined_at, m.user_id) > (${q.after.createdAt}, ${q.after.id}::uuid)`);
  // A literal, not a parameter: the statement is prepared with a generic plan (db/prepared.ts).
  return qb
    .orderBy('m.joined_at')
    .orderBy('m.user_id')
    .limit(literalRowCount(q.limit + 1))
    .execute();
}

export async function findMember(tx: TenantTx, tenantId: string, orgId: string, userId: string): Promise<MemberRow | undefined> {
  return memberSelect(tx, tenantId, orgId).where('m.user_id', '=', userId).executeTakeFirst();
}

export async function insertMember(tx: TenantTx, tenantId: string, orgId: string, userId: string) {
  await tx.insertInto('org_members').values({ tenant_id: tenantId, org_id: orgId, user_id: userId }).execute();
}

export async function setMemberRoles(tx: TenantTx, tenantId: string, orgId: string, userId: string, roleIds: string[]) {
  await tx.deleteFrom('org_member_roles').where('tenant_id', '=', tenantId).where('org_id', '=', orgId).where('user_id', '=', userId).execute();
  if (roleIds.length) {
    await tx
      .insertInto('org_member_roles')
      .values(roleIds.map((role_id) => ({ tenant_id: tenantId, org_id: orgId, user_id: userId, role_id })))
      .execute();
  }
}

export async function deleteMember(tx: TenantTx, tenantId: string, orgId: string, userId: string) {
  await tx.deleteFrom('org_members').where('tenant_id', '=', tenantId).where('org_id', '=', orgId).where('user_id', '=', userId).execute();
}

/** Members holding the organization's `owner` role. */
export async function ownerIds(tx: TenantTx, tenantId: string, orgId: string): Promise<string[]> {
  const rows = await tx
    .selectFrom('org_member_roles as mr')
    .innerJoin('org_roles as r', (j) => j.onRef('r.tenant_id', '=', 'mr.tenant_id').onRef('r.org_id', '=', 'mr.org_id').onRef('r.id', '=', 'mr.role_id')) // see memberRoleNames
    .select('mr.user_id')
    .where('mr.tenant_id', '=', tenantId)
    .where('mr.org_id', '=', orgId)
    .where('r.name', '=', 'owner')
    .execute();
  return rows.map((r) => r.user_id);
}

// ── invitations ──────────────────────────────────────────────────────────────

/** Throws EmailRefused for an address the email rule refuses (callers validate input first). */
export async function insertInvitation(
  tx: TenantTx,
  row: Omit<InvitationRow, 'id' | 'email_key' | 'created_at' | 'status' | 'accepted_user_id' | 'accepted_at' | 'invited_by'> & { invited_by: Actor },
) {
  const { address, key } = canonicalEmail(row.email);
  return tx
    .insertInto('org_invitations')
    .values({ ...row, email: address, email_key: key, invited_by: JSON.stringify(row.invited_by), accepted_user_id: null, accepted_at: null })
    .returningAll()
    .executeTakeFirstOrThrow();
}

export async function findInvitation(tx: TenantTx, tenantId: string, orgId: string, id: string, opts: { lock?: boolean } = {}) {
  let qb = tx.selectFrom('org_invitations').selectAll().where('tenant_id', '=', tenantId).where('org_id', '=', orgId).where('id', '=', id);
  if (opts.lock) qb = qb.forUpdate();
  return qb.executeTakeFirst();
}

export async function findInvitationByToken(tx: TenantTx, tenantId: string, tokenHash: string, opts: { lock?: boolean } = {}) {
  let qb = tx.selectFrom('org_invitations').selectAll().where('tenant_id', '=', tenantId).where('token_hash', '=', tokenHash);
  if (opts.lock) qb = qb.forUpdate();
  return qb.executeTakeFirst();
}

export async function listInvitations(tx: TenantTx, tenantId: string, orgId: string, q: { after?: Keyset | undefined; limit: number }) {
  let qb = tx.selectFrom('org_invitations').selectAll().where('tenant_id', '=', tenantId).where('org_id', '=', orgId);
  if (q.after) qb = qb.where(sql<boolean>`(created_at, id) > (${q.after.createdAt}, ${q.after.id}::uuid)`);
  return qb
    .orderBy('created_at')
    .orderBy('id')
    .limit(q.limit + 1)
    .execute();
}

export async function updateInvitation(
  tx: TenantTx,
  tenantId: string,
  id: string,
  patch: { status?: InvitationStatus; token_hash?: string; expires_at?: Date; accepted_user_id?: string; accepted_at?: Date },
) {
  return tx.updateTable('org_invitations').set(patch).where('tenant_id', '=', tenantId).where('id', '=', id).returningAll().executeTakeFirstOrThrow();
}

/** The pending invitation to `email` in any spelling of it; none for an address the rule refuses. */
export async function pendingInvitationFor(tx: TenantTx, tenantId: string, orgId: string, email: string) {
  const key = emailKey(email);
  if (key === undefined) return undefined;
  return tx
    .selectFrom('org_invitations')
    .select('id')
    .where('tenant_id', '=', tenantId)
    .where('org_id', '=', orgId)
    .where('email_key', '=', key)
    .where('status', '=', 'pending')
    .where('expires_at', '>', sql<Date>`now()`)
    .executeTakeFirst();
}

// ── audit log ────────────────────────────────────────────────────────────────

export async function insertAudit(
  tx: TenantTx,
  row: { tenant_id: string; org_id: string; actor: Actor; action: string; target_type: string; target_id: string | null; before: unknown; after: unknown },
) {
  await tx
    .insertInto('org_audit_log')
    .values({
      ...row,
      actor: JSON.stringify(row.actor),
      before: row.before === null || row.before === undefined ? null : JSON.stringify(row.before),
      after: row.after === null || row.after === undefined ? null : JSON.stringify(row.after),
    })
    .execute();
}

export async function listAudit(tx: TenantTx, tenantId: string, orgId: string, q: { after?: Keyset | undefined; limit: number }) {
  let qb = tx.selectFrom('org_audit_log').selectAll().where('tenant_id', '=', tenantId).where('org_id', '=', orgId);
  if (q.after) qb = qb.where(sql<boolean>`(created_at, id) < (${q.after.createdAt}, ${q.after.id}::uuid)`);
  return qb
    .orderBy('created_at', 'desc')
    .orderBy('id', 'desc')
    .limit(q.limit + 1)
    .execute();
}
