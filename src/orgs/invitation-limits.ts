import { sql } from 'kysely';
import { AppError } from '../base/errors.ts';
import type { TenantTx } from '../db/database.ts';

/**
 * How many invitation mails may go out, so an invitation can't be used to mail-bomb an inbox and
 * an organization can't be used to spam from the tenant's domain. Counted over sliding windows in
 * `invitation_sends` (the database every instance shares), by the database's clock.
 */
export const INVITATION_SEND_LIMITS = {
  /** Mails of one invitation — the first one included — per 24 hours. */
  perInvitation: { sends: 5, windowSeconds: 24 * 3600, window: 'the last 24 hours' },
  /** Invitation mails of one organization — new invitations and resends — per hour. */
  perOrganization: { sends: 100, windowSeconds: 3600, window: 'the last hour' },
} as const;

/** Sends older than the longest window count against no limit (the maintenance job deletes them). */
export const INVITATION_SENDS_COUNTED_SECONDS = Math.max(...Object.values(INVITATION_SEND_LIMITS).map((l) => l.windowSeconds));

/**
 * Counts one mail of `invitationId` against both limits, or refuses it with a 429 that says when
 * it can be sent (`Retry-After` in seconds). Call it in the transaction that sends the mail, after
 * locking the invitation's row: a refusal rolls the whole send back.
 */
export async function takeInvitationSend(tx: TenantTx, tenantId: string, orgId: string, invitationId: string): Promise<void> {
  const { perInvitation, perOrganization } = INVITATION_SEND_LIMITS;
  // Concurrent sends of one organization are counted one at a time. The organization is locked
  // after the invitation, the order accepting an invitation takes them in.
  await tx.selectFrom('organizations').select('id').where('tenant_id', '=', tenantId).where('id', '=', orgId).forUpdate().execute();
  const invitationWait = await waitSeconds(tx, tenantId, 'invitation_id', invitationId, perInvitation);
  if (invitationWait !== undefined) {
    throw tooMany(
      invitationWait,
      `This invitation has been sent ${perInvitation.sends} times in ${perInvitation.window}: it can be sent again ${when(invitationWait)}.`,
    );
  }
  const orgWait = await waitSeconds(tx, tenantId, 'org_id', orgId, perOrganization);
  if (orgWait !== undefined) {
    throw tooMany(
      orgWait,
      `This organization has sent ${perOrganization.sends} invitation emails in ${perOrganization.window}: more can be sent ${when(orgWait)}.`,
    );
  }
  await tx.insertInto('invitation_sends').values({ tenant_id: tenantId, org_id: orgId, invitation_id: invitationId }).execute();
}

/**
 * Seconds until one more send fits in the window, or undefined when it fits now: with `sends`
 * mails in the window, the oldest of those that count must leave it first.
 */
async function waitSeconds(tx: TenantTx, tenantId: string, column: 'invitation_id' | 'org_id', id: string, limit: { sends: number; windowSeconds: number }) {
  const window = sql<Date>`make_interval(secs => ${limit.windowSeconds})`;
  const row = await tx
    .selectFrom('invitation_sends')
    .select(sql<number>`ceil(extract(epoch from (sent_at + ${window} - now())))::int`.as('wait'))
    .where('tenant_id', '=', tenantId)
    .where(column, '=', id)
    .where('sent_at', '>', sql<Date>`now() - ${window}`)
    .orderBy('sent_at', 'desc')
    .limit(1)
    .offset(limit.sends - 1)
    .executeTakeFirst();
  return row ? Math.max(1, row.wait) : undefined;
}

function tooMany(waitSeconds: number, detail: string) {
  return new AppError(429, 'too_many_requests', 'Too many requests', detail, undefined, { 'Retry-After': String(waitSeconds) });
}

/** "after 14:05 UTC (in 12 minutes)", for people; Retry-After carries the exact seconds. */
function when(waitSeconds: number): string {
  const at = new Date(Math.ceil((Date.now() + waitSeconds * 1000) / 60_000) * 60_000);
  const stamp = `${at.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
  const minutes = Math.ceil(waitSeconds / 60);
  const hours = Math.round(minutes / 60);
  const span = minutes < 60 ? `${minutes} minute${minutes === 1 ? '' : 's'}` : `${hours} hour${hours === 1 ? '' : 's'}`;
  return `after ${stamp} (in ${minutes < 60 ? '' : 'about '}${span})`;
}
