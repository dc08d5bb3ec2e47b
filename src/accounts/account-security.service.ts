import type { Render } from '../base/views.ts';
import type { Database } from '../db/database.ts';
import { inTenant } from '../db/tenant-scope.ts';
import type { FactorService, TotpEnrollment } from '../factors/factor.service.ts';
import type { FactorKind } from '../factors/factor.table.ts';
import { describeKind } from '../factors/tenant-factors.ts';
import { mailRenderer } from '../mail/compose.ts';
import type { MailOutbox } from '../mail/outbox.ts';
import type { BruteForceSettings } from '../tenants/settings.ts';
import { checkPassword } from '../users/passwords.ts';
import * as users from '../users/user.repo.ts';
import type { BruteForce } from './brute-force.ts';

export type Reauthentication = 'ok' | 'wrong_password' | 'wrong_code' | 'locked';

/**
 * A person managing their own second factors: adding or removing one asks for the current
 * password first (it counts toward the account's lock like a sign-in) and mails the person, so
 * a stolen session alone cannot quietly add an attacker's factor or remove theirs.
 */
export class AccountSecurity {
  constructor(
    private readonly db: Database,
    private readonly factors: FactorService,
    private readonly bruteForce: BruteForce,
    private readonly outbox: MailOutbox,
    renderHtml: Render,
    renderText: Render,
  ) {
    const compose = mailRenderer(renderHtml, renderText);
    outbox.register('factor_added', async (tenant, email, params) =>
      compose('factor_added', `A sign-in factor was added to your ${tenant.name} account`, { tenantName: tenant.name, email, factorKind: params.factorKind }),
    );
    outbox.register('factor_removed', async (tenant, email, params) =>
      compose('factor_removed', `A sign-in factor was removed from your ${tenant.name} account`, {
        tenantName: tenant.name,
        email,
        factorKind: params.factorKind,
      }),
    );
    outbox.register('recovery_codes_regenerated', async (tenant, email) =>
      compose('recovery_codes_regenerated', `Your ${tenant.name} recovery codes were replaced`, { tenantName: tenant.name, email }),
    );
  }

  /** The current password again, counted like a sign-in attempt. */
  async reauthenticate(tenantId: string, userId: string, password: string, attempt: { ip: string; bruteForce: BruteForceSettings }): Promise<Reauthentication> {
    const user = await inTenant(this.db, tenantId, (tx) => users.findUserById(tx, tenantId, userId));
    if (!user) return 'wrong_password';
    const verdict = await this.bruteForce.check(tenantId, attempt.bruteForce, user.email, attempt.ip);
    if (verdict.ipBlocked || verdict.accountLocked) return 'locked';
    const check = await checkPassword(user.password_hash, password);
    if (!check.ok) {
      await this.bruteForce.recordFailure(tenantId, attempt.bruteForce, user.email, attempt.ip, verdict);
      return 'wrong_password';
    }
    await this.bruteForce.recordSuccess(tenantId, user.email, verdict);
    return 'ok';
  }

  /**
   * A current code from the person's authenticator app instead of the password: counted like a
   * sign-in attempt too. Recovery codes do not do here (they are for a lost phone at sign-in).
   * `totpAllowed`: whether the tenant's settings let authenticator apps count (tenant-factors.ts).
   */
  async reauthenticateWithCode(
    tenantId: string,
    userId: string,
    code: string,
    attempt: { ip: string; bruteForce: BruteForceSettings; totpAllowed: boolean },
  ): Promise<Reauthentication> {
    const user = await inTenant(this.db, tenantId, (tx) => users.findUserById(tx, tenantId, userId));
    if (!user) return 'wrong_code';
    const verdict = await this.bruteForce.check(tenantId, attempt.bruteForce, user.email, attempt.ip);
    if (verdict.ipBlocked || verdict.accountLocked) return 'locked';
    const result = attempt.totpAllowed ? await this.factors.verifySecondFactor(tenantId, userId, code, { totp: true, recovery: false }) : { ok: false };
    if (!result.ok) {
      await this.bruteForce.recordFailure(tenantId, attempt.bruteForce, user.email, attempt.ip, verdict);
      return 'wrong_code';
    }
    await this.bruteForce.recordSuccess(tenantId, user.email, verdict);
    return 'ok';
  }

  /** Starts a TOTP enrollment; call only after `reauthenticate` said ok. */
  startTotp(tenantId: string, userId: string, issuer: string, email: string): Promise<TotpEnrollment> {
    return this.factors.startTotp(tenantId, userId, issuer, email);
  }

  /** Confirms an enrollment with its first code and mails the person. */
  async confirmTotp(tenantId: string, userId: string, email: string, factorId: string, code: string): Promise<boolean> {
    if (!(await this.factors.confirmTotp(tenantId, userId, factorId, code))) return false;
    await this.factorAdded(tenantId, email, 'totp');
    return true;
  }

  /** Mails the person that a factor was added: its kind in general words (never its label, never a secret). */
  async factorAdded(tenantId: string, email: string, kind: FactorKind) {
    await inTenant(this.db, tenantId, (tx) => this.outbox.enqueue(tx, tenantId, 'factor_added', email, { factorKind: describeKind(kind) }));
  }

  /** New recovery codes (after `reauthenticate`), returned once; the person is mailed that they changed, never the codes. */
  async regenerateRecoveryCodes(tenantId: string, userId: string, email: string): Promise<string[]> {
    const codes = await this.factors.regenerateRecoveryCodes(tenantId, userId);
    await inTenant(this.db, tenantId, (tx) => this.outbox.enqueue(tx, tenantId, 'recovery_codes_regenerated', email));
    return codes;
  }

  /** Removes a factor (after `reauthenticate`) and mails the person. */
  async remove(tenantId: string, userId: string, email: string, factorId: string) {
    const removed = await this.factors.remove(tenantId, userId, factorId);
    if (removed.confirmed)
      await inTenant(this.db, tenantId, (tx) => this.outbox.enqueue(tx, tenantId, 'factor_removed', email, { factorKind: describeKind(removed.kind) }));
    return removed;
  }
}
