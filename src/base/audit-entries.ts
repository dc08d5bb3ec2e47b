import { page } from './pagination.ts';

/** An audit row as the tenant's and the organizations' audit tables both store it. */
export interface AuditRow {
  id: string;
  actor: unknown;
  action: string;
  target_type: string;
  target_id: string | null;
  before: unknown;
  after: unknown;
  created_at: Date;
}

/**
 * A page of audit rows (read with one extra row, newest first) as the Admin API shows every audit
 * log: `{ data: [{ id, actor, action, target: { type, id }, before, after, created_at }], next_cursor }`.
 */
export function auditPage(rows: AuditRow[], limit: number) {
  const p = page(rows, limit, (r) => ({ createdAt: r.created_at, id: r.id }));
  return {
    data: p.data.map((r) => ({
      id: r.id,
      actor: r.actor,
      action: r.action,
      target: { type: r.target_type, id: r.target_id },
      before: r.before,
      after: r.after,
      created_at: r.created_at.toISOString(),
    })),
    next_cursor: p.next_cursor,
  };
}
