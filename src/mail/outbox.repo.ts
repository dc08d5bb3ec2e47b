import { type Selectable, sql } from 'kysely';
import type { Keyset } from '../base/pagination.ts';
import type { Database, TenantTx } from '../db/database.ts';
import type { MailOutboxTable, MailStatus } from './mail.table.ts';

export type OutboxRow = Selectable<MailOutboxTable>;

export async function insertMail(tx: TenantTx, row: { tenant_id: string; kind: string; recipient: string; params_encrypted: string }) {
  return tx
    .insertInto('mail_outbox')
    .values({ ...row, subject: null, last_error: null, sent_at: null })
    .returning(['id'])
    .executeTakeFirstOrThrow();
}

/**
 * Claims up to `limit` due messages across tenants (the worker runs as the owner). Claiming
 * pushes `next_attempt_at` out by `leaseSeconds`, so another instance leaves them alone while
 * this one sends; if this process dies mid-send, the lease runs out and the message is retried.
 */
export async function claimDue(db: Database, limit: number, leaseSeconds: number): Promise<OutboxRow[]> {
  const r = await sql<OutboxRow>`
    UPDATE mail_outbox SET attempts = attempts + 1, next_attempt_at = now() + make_interval(secs => ${leaseSeconds})
    WHERE (tenant_id, id) IN (
      SELECT tenant_id, id FROM mail_outbox
      WHERE status = 'pending' AND next_attempt_at <= now()
      ORDER BY next_attempt_at
      LIMIT ${limit}
      FOR UPDATE SKIP LOCKED
    )
    RETURNING *`.execute(db);
  return r.rows;
}

/** Pending mail of every tenant (the worker's view, as the owner): counted on the partial index `mail_outbox_due`. */
export async function countPending(db: Database): Promise<number> {
  const r = await db.selectFrom('mail_outbox').select(sql<string>`count(*)`.as('n')).where('status', '=', 'pending').executeTakeFirstOrThrow();
  return Number(r.n);
}

/** `recipient`: where it went, which may be the account's stored address rather than the queued one. */
export async function markSent(db: Database, tenantId: string, id: string, subject: string, recipient: string) {
  await db
    .updateTable('mail_outbox')
    .set({ status: 'sent', sent_at: new Date(), subject, recipient, params_encrypted: null, last_error: null })
    .where('tenant_id', '=', tenantId)
    .where('id', '=', id)
    .execute();
}

export async function markDiscarded(db: Database, tenantId: string, id: string, reason: string) {
  await db
    .updateTable('mail_outbox')
    .set({ status: 'discarded', params_encrypted: null, last_error: reason })
    .where('tenant_id', '=', tenantId)
    .where('id', '=', id)
    .execute();
}

export async function markAttemptFailed(db: Database, tenantId: string, id: string, error: string, retryAt: Date | null) {
  await db
    .updateTable('mail_outbox')
    .set(retryAt ? { last_error: error, next_attempt_at: retryAt } : { last_error: error, status: 'failed', params_encrypted: null })
    .where('tenant_id', '=', tenantId)
    .where('id', '=', id)
    .execute();
}

export async function listMail(tx: TenantTx, tenantId: string, q: { status?: MailStatus | undefined; after?: Keyset | undefined; limit: number }) {
  let qb = tx
    .selectFrom('mail_outbox')
    .select(['id', 'kind', 'recipient', 'subject', 'status', 'attempts', 'last_error', 'next_attempt_at', 'created_at', 'sent_at'])
    .where('tenant_id', '=', tenantId);
  if (q.status) qb = qb.where('status', '=', q.status);
  if (q.after) qb = qb.where(sql<boolean>`(created_at, id) < (${q.after.createdAt}, ${q.after.id}::uuid)`);
  return qb
    .orderBy('created_at', 'desc')
    .orderBy('id', 'desc')
    .limit(q.limit + 1)
    .execute();
}
