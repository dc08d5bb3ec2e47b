import { sql } from 'kysely';
import type { Actor } from '../base/actor.ts';
import { auditPage } from '../base/audit-entries.ts';
import { decodeCursor, type Keyset } from '../base/pagination.ts';
import type { TenantTx } from '../db/database.ts';

/** One row of the tenant's audit log, written in the transaction of the change it records. */
export async function insertTenantAudit(
  tx: TenantTx,
  row: { tenant_id: string; actor: Actor; action: string; target_type: string; target_id: string | null; before?: unknown; after?: unknown },
) {
  await tx
    .insertInto('tenant_audit_log')
    .values({
      tenant_id: row.tenant_id,
      actor: JSON.stringify(row.actor),
      action: row.action,
      target_type: row.target_type,
      target_id: row.target_id,
      before: row.before === null || row.before === undefined ? null : JSON.stringify(row.before),
      after: row.after === null || row.after === undefined ? null : JSON.stringify(row.after),
    })
    .execute();
}

async function listTenantAudit(tx: TenantTx, tenantId: string, q: { after?: Keyset | undefined; limit: number }) {
  let qb = tx.selectFrom('tenant_audit_log').selectAll().where('tenant_id', '=', tenantId);
  if (q.after) qb = qb.where(sql<boolean>`(created_at, id) < (${q.after.createdAt}, ${q.after.id}::uuid)`);
  return qb
    .orderBy('created_at', 'desc')
    .orderBy('id', 'desc')
    .limit(q.limit + 1)
    .execute();
}

/** A page of the tenant's audit log, newest first, as the Admin API shows it. */
export async function tenantAuditPage(tx: TenantTx, tenantId: string, q: { limit: number; cursor?: string | undefined }) {
  const rows = await listTenantAudit(tx, tenantId, { limit: q.limit, after: decodeCursor(q.cursor) });
  return auditPage(rows, q.limit);
}
