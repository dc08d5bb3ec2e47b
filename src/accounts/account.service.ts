import { isUniqueViolation } from '../base/errors.ts';
import type { Render } from '../base/views.ts';
import { randomSecret, sha256Hex } from '../crypto/secrets.ts';
import type { Database } from '../db/database.ts';
import { inTenant } from '../db/tenant-scope.ts';
import { mailRenderer } from '../mail/compose.ts';
import type { MailOutbox } from '../mail/outbox.ts';
import { revokeEverythingOfAccount } from '../oidc-store/oidc-payload.repo.ts';
import type { BruteForceSettings } from '../tenants/settings.ts';
import type { TenantRow } from '../tenants/tenant.repo.ts';
import { type CredentialsChanged, nothingMore } from '../users/credentials-changed.ts';
import { passwordProblem } from '../users/password-policy.ts';
import { checkPassword, hashPassword } from '../users/passwords.ts';
import * as users from '../users/user.repo.ts';
import * as tokens from './account-token.repo.ts';
import type { BruteForce } from './brute-force.ts';

export const VERIFY_EMAIL_TTL_SECONDS = 24 * 3600;
export const RESET_PASSWORD_TTL_SECONDS = 30 * 60;

export type LinkOutcome = 'ok' | 'invalid';

export class PasswordRejected extends Error {
  override name = 'PasswordRejected';
}

/**
 * Everything a person does around their own account: register, verify their email, reset or
 * change their password. The rule against user enumeration lives here: every public entry
 * point does the same work and answers the same whether or not the email has an account —
 * what differs happens later, in the mail worker (see the composers).
 */
export class AccountService {
  constructor(
    private readonly db: Database,
    private readonly outbox: MailOutbox,
    private readonly bruteForce: BruteForce,
    private readonly publicUrl: string,
    renderHtml: Render,
    renderText: Render,
    private readonly credentialsChanged: CredentialsChanged = nothingMore,
  ) {
    const link = (tenant: TenantRow, path: string) => `${this.publicUrl}/t/${tenant.slug}/account/${path}`;
    const compose = mailRenderer(renderHtml, renderText);

    // These two are queued under the address as typed (any spelling of it): the link goes to
    // the account's stored address, never to the typed one.
    outbox.register('verify_email', async (tenant, email) => {
      const issued = await this.issueLink(tenant.id, email, 'verify_email', VERIFY_EMAIL_TTL_SECONDS, (u) => !u.email_verified && !u.disabled);
      if (!issued) return null;
      const { token, to } = issued;
      return {
        ...compose('verify_email', `Confirm your email for ${tenant.name}`, {
          tenantName: tenant.name,
          email: to,
          link: link(tenant, `verify-email/${token}`),
        }),
        to,
      };
    });
    outbox.register('reset_password', async (tenant, email) => {
      const issued = await this.issueLink(tenant.id, email, 'reset_password', RESET_PASSWORD_TTL_SECONDS, (u) => !u.disabled);
      if (!issued) return null;
      const { token, to } = issued;
      return {
        ...compose('reset_password', `Reset your ${tenant.name} password`, {
          tenantName: tenant.name,
          email: to,
          link: link(tenant, `reset-password/${token}`),
        }),
        to,
      };
    });
    outbox.register('account_exists', async (tenant, email) =>
      compose('account_exists', `You already have a ${tenant.name} account`, { tenantName: tenant.name, email, resetLink: link(tenant, 'forgot-password') }),
    );
  }

  /**
   * Self-registration. A new email gets an unverified account and a verification mail; an
   * email that already has an account gets a "you already have an account" mail instead. Both
   * hash the password and queue one mail, so neither the answer nor its timing differs.
   */
  async register(tenantId: string, input: { email: string; password: string; name: string }): Promise<void> {
    const problem = passwordProblem(input.password, { email: input.email });
    if (problem) throw new PasswordRejected(`The password ${problem}.`);
    const passwordHash = await hashPassword(input.password);
    try {
      await inTenant(this.db, tenantId, async (tx) => {
        const existing = await users.findUserByEmail(tx, tenantId, input.email);
        if (existing) {
          await this.outbox.enqueue(tx, tenantId, 'account_exists', existing.email);
          return;
        }
        const user = await users.insertUser(tx, tenantId, { email: input.email, name: input.name, password_hash: passwordHash, email_verified: false });
        await this.outbox.enqueue(tx, tenantId, 'verify_email', user.email);
      });
    } catch (err) {
      // Lost a race with a concurrent registration of the same email (perhaps spelt otherwise):
      // same answer as "exists", to the address of the account that won.
      if (!isUniqueViolation(err)) throw err;
      await inTenant(this.db, tenantId, async (tx) => {
        const existing = await users.findUserByEmail(tx, tenantId, input.email);
        if (existing) await this.outbox.enqueue(tx, tenantId, 'account_exists', existing.email);
      });
    }
  }

  /** "Forgot password": always one queued job; the worker decides whether there is anyone to mail. */
  async requestPasswordReset(tenantId: string, email: string): Promise<void> {
    await inTenant(this.db, tenantId, (tx) => this.outbox.enqueue(tx, tenantId, 'reset_password', email.trim()));
  }

  /** "Resend the verification email": likewise. */
  async requestVerification(tenantId: string, email: string): Promise<void> {
    await inTenant(this.db, tenantId, (tx) => this.outbox.enqueue(tx, tenantId, 'verify_email', email.trim()));
  }

  async verifyEmail(tenantId: string, token: string): Promise<LinkOutcome> {
    return inTenant(this.db, tenantId, async (tx) => {
      const row = await tokens.findLiveToken(tx, tenantId, 'verify_email', sha256Hex(token));
      if (!row) return 'invalid';
      await tokens.useToken(tx, tenantId, row.id);
      await users.updateUser(tx, tenantId, row.user_id, { email_verified: true });
      return 'ok';
    });
  }

  /** Whether a reset link is still good (to show the form or the "expired" page). Does not use it. */
  async resetLinkIsLive(tenantId: string, token: string): Promise<boolean> {
    return inTenant(this.db, tenantId, async (tx) => (await tokens.findLiveToken(tx, tenantId, 'reset_password', sha256Hex(token))) !== undefined);
  }

  /**
   * Sets the new password, uses the link, and signs the user out everywhere (sessions, grants,
   * refresh and access tokens). Proving control of the mailbox also verifies the email and
   * lifts a brute-force lock.
   */
  async resetPassword(tenantId: string, token: string, newPassword: string): Promise<LinkOutcome> {
    const found = await inTenant(this.db, tenantId, async (tx) => {
      const row = await tokens.findLiveToken(tx, tenantId, 'reset_password', sha256Hex(token));
      return row ? users.findUserById(tx, tenantId, row.user_id) : undefined;
    });
    if (!found) return 'invalid';
    const problem = passwordProblem(newPassword, { email: found.email });
    if (problem) throw new PasswordRejected(`The password ${problem}.`);
    const passwordHash = await hashPassword(newPassword);
    const outcome = await inTenant(this.db, tenantId, async (tx): Promise<LinkOutcome> => {
      const row = await tokens.findLiveToken(tx, tenantId, 'reset_password', sha256Hex(token));
      if (!row) return 'invalid'; // used by a concurrent request in the meantime
      await tokens.useToken(tx, tenantId, row.id);
      await users.updateUser(tx, tenantId, row.user_id, { password_hash: passwordHash, email_verified: true });
      await revokeEverythingOfAccount(tx, tenantId, row.user_id);
      await this.credentialsChanged(tx, tenantId, row.user_id, 'the password was reset by the account holder');
      return 'ok';
    });
    if (outcome === 'ok') await this.bruteForce.unlock(tenantId, found.email);
    return outcome;
  }

  /**
   * Change of password by a signed-in user: the current password must be right. Every other
   * session, grant and token of the user is revoked; the grant the request came with survives.
   */
  /**
   * Change password, for the account page and `POST /api/v1/me/password` alike. A wrong current
   * password counts as a failed sign-in (brute-force rules, keyed by the account's email), so a
   * stolen session or token can't be used to guess it; while locked, even the right one is refused.
   * Every other session and token of the user is revoked; `keepGrantId`'s sign-in stays.
   */
  async changePassword(
    tenantId: string,
    userId: string,
    current: string,
    next: string,
    keepGrantId: string | undefined,
    attempt: { ip: string; bruteForce: BruteForceSettings },
  ): Promise<'changed' | 'wrong_password' | 'locked'> {
    const user = await inTenant(this.db, tenantId, (tx) => users.findUserById(tx, tenantId, userId));
    if (!user) return 'wrong_password';
    const verdict = await this.bruteForce.check(tenantId, attempt.bruteForce, user.email, attempt.ip);
    if (verdict.ipBlocked || verdict.accountLocked) return 'locked';
    const check = await checkPassword(user.password_hash, current);
    if (!check.ok) {
      await this.bruteForce.recordFailure(tenantId, attempt.bruteForce, user.email, attempt.ip, verdict);
      return 'wrong_password';
    }
    const problem = passwordProblem(next, { email: user.email });
    if (problem) throw new PasswordRejected(`The new password ${problem}.`);
    const passwordHash = await hashPassword(next);
    await inTenant(this.db, tenantId, async (tx) => {
      await users.updateUser(tx, tenantId, userId, { password_hash: passwordHash });
      await revokeEverythingOfAccount(tx, tenantId, userId, { exceptGrantId: keepGrantId });
      await this.credentialsChanged(tx, tenantId, userId, 'the password was changed by the account holder');
    });
    return 'changed';
  }

  /**
   * Makes a one-time link for `email` when it has an account that `eligible` accepts; `to` is
   * that account's stored address.
   */
  private async issueLink(
    tenantId: string,
    email: string,
    purpose: 'verify_email' | 'reset_password',
    ttlSeconds: number,
    eligible: (u: users.UserRow) => boolean,
  ): Promise<{ token: string; to: string } | null> {
    return inTenant(this.db, tenantId, async (tx) => {
      const user = await users.findUserByEmail(tx, tenantId, email);
      if (!user || !eligible(user)) return null;
      const token = randomSecret(32);
      // Only the newest reset link works; every verification link does until it expires
      // (someone who signs in early and is sent another must not find the first one dead).
      if (purpose === 'reset_password') await tokens.deleteUnusedTokens(tx, tenantId, user.id, purpose);
      await tokens.insertToken(tx, tenantId, user.id, purpose, sha256Hex(token), ttlSeconds);
      return { token, to: user.email };
    });
  }
}
