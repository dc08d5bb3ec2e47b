import { sql } from 'kysely';
import type { Actor } from '../base/actor.ts';
import { Conflict, Forbidden, ValidationFailed } from '../base/errors.ts';
import type { Database, TenantTx } from '../db/database.ts';
import { inTenant } from '../db/tenant-scope.ts';
import type { MailOutbox } from '../mail/outbox.ts';
import { effectiveSettings, type StoredSettings } from '../tenants/settings.ts';
import { findUserById } from '../users/user.repo.ts';
import type { OrgRow } from './org.repo.ts';
import * as repo from './org.repo.ts';
import { isWorking, type OrgStatus } from './org.table.ts';
import { audit, isTenantAdmin, orgOrThrow } from './org-rules.ts';
import { revokeOrgScoped } from './org-tokens.ts';

/**
 * An organization's lifecycle, in one place: whether one a user creates waits for approval and
 * how many they may create; approval and rejection (tenant administrators only, the owners
 * mailed either way); which status changes an update may make; and the job that ends trials.
 *
 * Who may move an organization between states: only the tenant (admin API key, machine client
 * with the admin scope, tenant-admin user). An organization's owners and admins see its status
 * but can't change it by any path — otherwise approval would be theirs to grant themselves.
 */

/** The reasons this module writes; an administrator's own words are stored as they typed them. */
export const STATUS_REASONS = { awaitingApproval: 'awaiting_approval', approved: 'approved', trialEnded: 'trial_ended' } as const;

// ── creating ─────────────────────────────────────────────────────────────────

/**
 * Who may delete an organization in `status`. A rejected one counts toward its creator's
 * `max_organizations_per_user` so that a rejection can't be retried without end: were its owner
 * to delete it, they could create another at once. So only a tenant administrator removes a
 * rejected organization; every other status is its owners' (and the tenant's) to delete.
 */
export function refuseDeleting(org: { status: OrgStatus }, tenantAdmin: boolean): void {
  if (org.status === 'rejected' && !tenantAdmin) {
    throw Conflict('This organization was rejected, so it stays (and counts toward the organizations you may create) until a tenant administrator removes it.');
  }
}

/** `refuseDeleting` for `actor`, in the deleting transaction. */
export async function assertMayDelete(tx: TenantTx, tenantId: string, actor: Actor, org: { status: OrgStatus }): Promise<void> {
  refuseDeleting(org, org.status === 'rejected' && (await isTenantAdmin(tx, tenantId, actor)));
}

/**
 * How an organization `actor` creates starts, or a 409 when the creator is at the tenant's
 * `max_organizations_per_user`. Runs in the creating transaction: the creator's user row is
 * locked first, so two creations by one person at the same moment are counted one after the other.
 * Tenant administrators (and API keys, machine clients) are neither limited nor held for approval.
 */
export async function creationRule(tx: TenantTx, tenantId: string, actor: Actor): Promise<{ pending: boolean; createdBy: string | null }> {
  if (actor.type !== 'user') return { pending: false, createdBy: null };
  const user = await tx.selectFrom('users').select('tenant_admin').where('tenant_id', '=', tenantId).where('id', '=', actor.id).forUpdate().executeTakeFirst();
  if (user?.tenant_admin) return { pending: false, createdBy: actor.id };
  const tenant = await tx.selectFrom('tenants').select('settings').where('id', '=', tenantId).executeTakeFirstOrThrow();
  const settings = effectiveSettings(tenant.settings as StoredSettings);
  const max = settings.max_organizations_per_user;
  if (max !== null) {
    const { n } = await tx
      .selectFrom('organizations')
      .select(sql<string>`count(*)`.as('n'))
      .where('tenant_id', '=', tenantId)
      .where('created_by', '=', actor.id)
      .executeTakeFirstOrThrow();
    if (Number(n) >= max) {
      throw Conflict(
        `You have already created ${max === 1 ? 'an organization' : `${max} organizations`}, the most this service allows per person. Ask an administrator if you need another.`,
      );
    }
  }
  return { pending: settings.organization_approval === 'required', createdBy: actor.id };
}

// ── updating ─────────────────────────────────────────────────────────────────

interface LifecycleInput {
  status?: OrgStatus | undefined;
  status_reason?: string | null | undefined;
  trial_ends_at?: Date | null | undefined;
}

/**
 * The lifecycle fields an update (PATCH, or PUT with `mode: 'put'`) writes, or why it may not:
 * 403 for anyone but the tenant changing them; 409 for leaving `pending` or `rejected`, or
 * entering `rejected`, other than by approve/reject (which mail the owners); 422 for a trial end
 * on an organization that is not trialing. A change of status records when and why.
 */
export async function nextLifecycle(
  tx: TenantTx,
  tenantId: string,
  actor: Actor,
  before: OrgRow,
  input: LifecycleInput,
  mode: 'put' | 'patch',
  now: Date,
): Promise<Partial<Pick<OrgRow, 'status' | 'status_reason' | 'status_changed_at' | 'trial_ends_at'>>> {
  const status = input.status ?? (mode === 'put' ? 'active' : before.status);
  const statusChanges = status !== before.status;
  const touches = statusChanges || input.status_reason !== undefined || input.trial_ends_at !== undefined;
  if (!touches) return {};
  if (!(await isTenantAdmin(tx, tenantId, actor))) {
    throw Forbidden("Only a tenant administrator changes an organization's status, its reason or its trial.");
  }
  if (statusChanges && (before.status === 'pending' || before.status === 'rejected')) {
    throw Conflict(
      `The organization is ${before.status}: approve it (POST /organizations/${before.id}/approve)${before.status === 'pending' ? ' or reject it (…/reject)' : ''} to change its status.`,
      [{ field: 'status', message: `${before.status}: use approve${before.status === 'pending' ? ' or reject' : ''}` }],
    );
  }
  if (statusChanges && status === 'rejected') {
    throw Conflict(`Reject an organization with POST /organizations/${before.id}/reject and a reason, so its owners are told why.`, [
      { field: 'status', message: 'use reject' },
    ]);
  }
  const trialEndsAt = input.trial_ends_at !== undefined ? input.trial_ends_at : mode === 'put' ? null : before.trial_ends_at;
  if (input.trial_ends_at && status !== 'trialing') {
    throw ValidationFailed('A trial end applies only to a trialing organization: set status to trialing too.', [
      { field: 'trial_ends_at', message: 'needs status trialing' },
    ]);
  }
  return {
    ...(statusChanges ? { status, status_changed_at: now } : {}),
    // A new status without a reason has none; the same status keeps its reason unless given one.
    ...(input.status_reason !== undefined ? { status_reason: input.status_reason } : statusChanges || mode === 'put' ? { status_reason: null } : {}),
    // A trial that ended earlier is not restarted by entering trialing again without a new end.
    ...(input.trial_ends_at !== undefined || mode === 'put'
      ? { trial_ends_at: trialEndsAt }
      : statusChanges && status === 'trialing' && before.trial_ends_at && before.trial_ends_at <= now
        ? { trial_ends_at: null }
        : {}),
  };
}

/** Whether an update stops the organization working: its org-scoped sign-ins and API tokens end with it. */
export const stopsWorking = (before: OrgRow, after: OrgRow) => isWorking(before.status) && !isWorking(after.status);

/** Who the trial job is in the audit log. */
const TRIAL_JOB: Actor = { type: 'system', id: 'trial_expiry' };

// ── approving and rejecting ──────────────────────────────────────────────────

type Present = (o: OrgRow) => Record<string, unknown>;

/**
 * Approval and rejection by a tenant administrator (Admin API, portal), and the trial job.
 * `present` is the Admin API's shape of an organization, for the audit rows.
 */
export class OrgLifecycle {
  constructor(
    private readonly db: Database,
    private readonly outbox: MailOutbox,
    private readonly present: Present,
  ) {}

  /**
   * A pending (or earlier rejected) organization starts working: `active`, or `trialing` until
   * `trial_ends_at`. Audited as `organization.approved`; every owner is mailed.
   */
  async approve(
    tenantId: string,
    actor: Actor,
    orgId: string,
    input: { trial_ends_at?: Date | undefined; status_reason?: string | undefined } = {},
    now = new Date(),
  ): Promise<OrgRow> {
    return inTenant(this.db, tenantId, async (tx) => {
      await this.assertTenantAdmin(tx, tenantId, actor, 'approve');
      const before = await orgOrThrow(tx, tenantId, orgId, true);
      if (before.status !== 'pending' && before.status !== 'rejected') {
        throw Conflict(`The organization is ${before.status}; only a pending or rejected organization can be approved.`);
      }
      const after = await repo.updateOrg(tx, tenantId, orgId, {
        status: input.trial_ends_at ? 'trialing' : 'active',
        status_reason: input.status_reason ?? STATUS_REASONS.approved,
        status_changed_at: now,
        trial_ends_at: input.trial_ends_at ?? null,
      });
      await audit(tx, tenantId, orgId, actor, 'organization.approved', { type: 'organization', id: orgId }, this.present(before), this.present(after));
      await this.mailOwners(tx, tenantId, after, 'org_approved', {});
      return after;
    });
  }

  /**
   * A pending organization is refused: it stays, `rejected` with the reason, so its owners see
   * why (in the portal, on their account page and in the mail); it issues nothing. A tenant
   * administrator may approve it later, or delete it.
   */
  async reject(tenantId: string, actor: Actor, orgId: string, reason: string, now = new Date()): Promise<OrgRow> {
    return inTenant(this.db, tenantId, async (tx) => {
      await this.assertTenantAdmin(tx, tenantId, actor, 'reject');
      const before = await orgOrThrow(tx, tenantId, orgId, true);
      if (before.status !== 'pending') throw Conflict(`The organization is ${before.status}; only a pending organization can be rejected.`);
      const after = await repo.updateOrg(tx, tenantId, orgId, { status: 'rejected', status_reason: reason, status_changed_at: now });
      await revokeOrgScoped(tx, tenantId, orgId);
      await audit(tx, tenantId, orgId, actor, 'organization.rejected', { type: 'organization', id: orgId }, this.present(before), this.present(after));
      await this.mailOwners(tx, tenantId, after, 'org_rejected', { reason });
      return after;
    });
  }

  /**
   * Suspends the trialing organizations whose trial ended by `now`, with reason `trial_ended`,
   * ending their org-scoped sign-ins and API tokens. Runs on every instance: each organization is
   * changed in its own transaction that locks its row with SKIP LOCKED and re-checks status and
   * trial end in the statement, so two instances running at the same moment change (and audit)
   * each organization once. Returns how many this call changed.
   */
  async expireTrials(now = new Date(), batch = 500): Promise<number> {
    // Across tenants, as the connection's own role (the maintenance jobs' pattern); each change
    // then runs scoped to its tenant.
    const due = await this.db
      .selectFrom('organizations')
      .select(['tenant_id', 'id'])
      .where('status', '=', 'trialing')
      .where('trial_ends_at', '<=', now)
      .orderBy('trial_ends_at')
      .limit(batch)
      .execute();
    let changed = 0;
    for (const { tenant_id: tenantId, id: orgId } of due) {
      const done = await inTenant(this.db, tenantId, async (tx) => {
        const before = await tx
          .selectFrom('organizations')
          .selectAll()
          .where('tenant_id', '=', tenantId)
          .where('id', '=', orgId)
          .where('status', '=', 'trialing')
          .where('trial_ends_at', '<=', now)
          .forUpdate()
          .skipLocked()
          .executeTakeFirst();
        if (!before) return false; // another instance has it, or it changed since
        const after = await tx
          .updateTable('organizations')
          .set({ status: 'suspended', status_reason: STATUS_REASONS.trialEnded, status_changed_at: now, updated_at: now })
          .where('tenant_id', '=', tenantId)
          .where('id', '=', orgId)
          .where('status', '=', 'trialing')
          .where('trial_ends_at', '<=', now)
          .returningAll()
          .executeTakeFirst();
        if (!after) return false;
        await revokeOrgScoped(tx, tenantId, orgId);
        await audit(tx, tenantId, orgId, TRIAL_JOB, 'organization.trial_ended', { type: 'organization', id: orgId }, this.present(before), this.present(after));
        return true;
      });
      if (done) changed++;
    }
    return changed;
  }

  private async assertTenantAdmin(tx: TenantTx, tenantId: string, actor: Actor, what: string) {
    if (!(await isTenantAdmin(tx, tenantId, actor))) throw Forbidden(`Only a tenant administrator may ${what} an organization.`);
  }

  /** Queued in the transaction of the change: the mail goes if and only if the change is made. */
  private async mailOwners(tx: TenantTx, tenantId: string, org: OrgRow, kind: 'org_approved' | 'org_rejected', extra: Record<string, unknown>) {
    for (const id of await repo.ownerIds(tx, tenantId, org.id)) {
      const owner = await findUserById(tx, tenantId, id);
      if (!owner || owner.disabled) continue;
      await this.outbox.enqueue(tx, tenantId, kind, owner.email, { org_name: org.name, org_id: org.id, ...extra });
    }
  }
}
