import type { Actor } from '../base/actor.ts';
import { NotFound } from '../base/errors.ts';
import type { Render } from '../base/views.ts';
import type { Database, TenantTx } from '../db/database.ts';
import { inTenant } from '../db/tenant-scope.ts';
import * as factorRepo from '../factors/factor.repo.ts';
import { removeAllFactorsIn, removeFactorIn } from '../factors/factor.service.ts';
import { mailRenderer } from '../mail/compose.ts';
import type { MailOutbox } from '../mail/outbox.ts';
import { revokeEverythingOfAccount } from '../oidc-store/oidc-payload.repo.ts';
import { insertTenantAudit } from '../tenants/tenant-audit.repo.ts';
import { type CredentialsChanged, nothingMore } from '../users/credentials-changed.ts';
import * as users from '../users/user.repo.ts';

/**
 * A tenant administrator looking after a person's second factors (Admin API): list them (never a
 * secret, key or credential id), remove one, or reset them all. Each change is written to the
 * tenant's audit log and mailed to the person in the same transaction.
 *
 * A reset also signs the person out everywhere (sessions, grants, tokens) and removes the SSO
 * links proven by the password, as a password change does: an administrator resets factors when
 * a device was lost or stolen, and a session or link made with that device must not outlive it. Removing one factor leaves sessions alone: it is routine
 * (an old phone), and the person keeps their other factors.
 */
export class FactorAdministration {
  constructor(
    private readonly db: Database,
    private readonly outbox: MailOutbox,
    renderHtml: Render,
    renderText: Render,
    private readonly credentialsChanged: CredentialsChanged = nothingMore,
  ) {
    const compose = mailRenderer(renderHtml, renderText);
    outbox.register('factor_removed_by_admin', async (tenant, email, params) =>
      compose('factor_removed_by_admin', `A sign-in factor was removed from your ${tenant.name} account`, {
        tenantName: tenant.name,
        email,
        factorName: params.factorName,
      }),
    );
    outbox.register('factors_reset', async (tenant, email) =>
      compose('factors_reset', `Your ${tenant.name} sign-in factors were reset by an administrator`, { tenantName: tenant.name, email }),
    );
  }

  async list(tenantId: string, userId: string) {
    return inTenant(this.db, tenantId, async (tx) => {
      await this.userOrThrow(tx, tenantId, userId);
      const factors = await factorRepo.listFactors(tx, tenantId, userId);
      const remaining = await factorRepo.countUnusedRecoveryCodes(tx, tenantId, userId);
      return {
        data: factors.map((f) => ({
          id: f.id,
          kind: f.kind,
          name: f.name,
          confirmed: f.confirmed,
          created_at: f.created_at.toISOString(),
          last_used_at: f.last_used_at?.toISOString() ?? null,
        })),
        recovery_codes_remaining: remaining,
        next_cursor: null,
      };
    });
  }

  async remove(tenantId: string, actor: Actor, userId: string, factorId: string): Promise<void> {
    await inTenant(this.db, tenantId, async (tx) => {
      const user = await this.userOrThrow(tx, tenantId, userId);
      const removed = await removeFactorIn(tx, tenantId, userId, factorId);
      await insertTenantAudit(tx, {
        tenant_id: tenantId,
        actor,
        action: 'user.factor.removed',
        target_type: 'user',
        target_id: userId,
        before: { factor: removed },
      });
      // An enrollment never confirmed protected nothing: no need to alarm the person.
      if (removed.confirmed) await this.outbox.enqueue(tx, tenantId, 'factor_removed_by_admin', user.email, { factorName: removed.name });
    });
  }

  /** Every factor and recovery code gone, and the person signed out everywhere. */
  async reset(tenantId: string, actor: Actor, userId: string): Promise<{ factors_removed: number }> {
    return inTenant(this.db, tenantId, async (tx) => {
      const user = await this.userOrThrow(tx, tenantId, userId);
      const codes = await factorRepo.countUnusedRecoveryCodes(tx, tenantId, userId);
      const removed = await removeAllFactorsIn(tx, tenantId, userId);
      await revokeEverythingOfAccount(tx, tenantId, userId);
      await this.credentialsChanged(tx, tenantId, userId, "an administrator reset the account's second factors");
      await insertTenantAudit(tx, {
        tenant_id: tenantId,
        actor,
        action: 'user.factors.reset',
        target_type: 'user',
        target_id: userId,
        before: { factors: removed, recovery_codes_remaining: codes },
        after: { factors: [], recovery_codes_remaining: 0, signed_out: true },
      });
      await this.outbox.enqueue(tx, tenantId, 'factors_reset', user.email);
      return { factors_removed: removed.length };
    });
  }

  private async userOrThrow(tx: TenantTx, tenantId: string, userId: string) {
    const user = await users.findUserById(tx, tenantId, userId);
    if (!user) throw NotFound('No such user.');
    return user;
  }
}
