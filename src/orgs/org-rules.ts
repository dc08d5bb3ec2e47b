import type { TenantTx } from '../db/database.ts';
import { Conflict, NotFound, ValidationFailed } from '../http/errors.ts';
import type { Actor } from './org.service.ts';
import * as repo from './org.repo.ts';
import type { OrgRow, RoleRow } from './org.repo.ts';

// Rules shared by the organization and invitation services; each lives here once.

export async function orgOrThrow(tx: TenantTx, tenantId: string, orgId: string, lock = false): Promise<OrgRow> {
  const org = await repo.findOrg(tx, tenantId, orgId, { lock });
  if (!org) throw NotFound(`No organization ${orgId} in this tenant.`);
  return org;
}

/** Every change is written to the audit log in the transaction that makes it. */
export function audit(tx: TenantTx, tenantId: string, orgId: string, actor: Actor, action: string, target: { type: string; id: string | null }, before: unknown, after: unknown) {
  return repo.insertAudit(tx, { tenant_id: tenantId, org_id: orgId, actor, action, target_type: target.type, target_id: target.id, before, after });
}

/** Role names → rows, or a 422 naming the unknown ones. */
export async function resolveRoles(tx: TenantTx, tenantId: string, orgId: string, names: string[], field: string): Promise<RoleRow[]> {
  const unique = [...new Set(names)];
  const rows = await repo.rolesByName(tx, tenantId, orgId, unique);
  const missing = unique.filter((n) => !rows.some((r) => r.name === n));
  if (missing.length) {
    throw ValidationFailed(`Unknown role${missing.length > 1 ? 's' : ''} for this organization: ${missing.join(', ')}.`, [{ field, message: `unknown role: ${missing.join(', ')}` }]);
  }
  return rows;
}

/**
 * The member limit. `org` must have been read with its row lock (findOrg … { lock: true }): the
 * lock serialises membership changes, and the count the database keeps on the row is then exact.
 */
export const isFull = (org: OrgRow) => org.member_count >= org.max_members;

/** Membership with the member limit enforced; the organization row must be locked by the caller. */
export async function join(tx: TenantTx, org: OrgRow, userId: string, roles: RoleRow[]) {
  if (isFull(org)) {
    throw Conflict(`The organization has reached its limit of ${org.max_members} members. Raise max_members to add more.`);
  }
  await repo.insertMember(tx, org.tenant_id, org.id, userId);
  await repo.setMemberRoles(tx, org.tenant_id, org.id, userId, roles.map((r) => r.id));
}
