import { atRequestEnd, heldByThisRequest } from '../base/request-end.ts';
import type { Database, TenantTx } from '../db/database.ts';
import { scopedStatement } from '../db/one-shot.ts';
import { inTenant } from '../db/tenant-scope.ts';
import type { BruteForceSettings } from '../tenants/settings.ts';
import { emailKey } from '../users/email-address.ts';

const MAIL_REQUESTS_PER_WINDOW = 20;
const MAIL_WINDOW_SECONDS = 900;

/**
 * An account's counter is keyed by its canonical email key, so every spelling of one address
 * counts against the same account. An address the email rule refuses has no account; its
 * attempts count under a key no account can have.
 */
export const accountKey = (email: string) => {
  const key = emailKey(email);
  return key === undefined ? `unusable-email:${email.trim()}` : `account:${key}`;
};
export const ipKey = (ip: string) => `ip:${ip}`;

export interface Verdict {
  /** This address failed too often: its attempts are refused without being counted against anyone. */
  ipBlocked: boolean;
  /** The account is temporarily locked: even the right password is refused. */
  accountLocked: boolean;
  /**
   * The account had failures on record when checked (or checking was off, so unknown). Without
   * any, a successful sign-in has nothing to forget and skips the delete — one statement fewer
   * per sign-in. A failure counted meanwhile by a concurrent attempt then stays counted, which
   * errs on the side of locking.
   */
  accountHasFailures: boolean;
  /** Ends this attempt's turn on the account (see BruteForce.check); recordFailure and recordSuccess call it. */
  endTurn?: () => void;
}

/** The longest an attempt waits for its account's turn: a stuck request does not stop the account's sign-ins. */
const TURN_WAIT_MS = 10_000;

/**
 * Keycloak-style brute-force protection, kept in the database so every instance sees it.
 * Accounts are keyed by email, not user id, so unknown and known emails do the same work.
 */
export class BruteForce {
  /** Per account on this instance: the end of the attempt whose turn it is (see `check`). */
  private readonly turns = new Map<string, Promise<void>>();

  constructor(private readonly db: Database) {}

  /**
   * Whether an attempt on this account from this address may be tried. Attempts on one account
   * take turns on this instance: each waits until the one before has recorded its outcome (or its
   * request ended), so attempts sent at once are judged one after another — otherwise all of them
   * would be checked before any failure was counted, and a burst of guesses would be tried in full
   * before the lock took effect. (Instances do not wait for one another: with N instances, at most
   * N attempts overlap.)
   */
  async check(tenantId: string, s: BruteForceSettings, email: string, ip: string): Promise<Verdict> {
    if (!s.enabled) return { ipBlocked: false, accountLocked: false, accountHasFailures: true };
    const endTurn = await this.takeTurn(`${tenantId}:${accountKey(email)}`);
    try {
      return { ...(await this.read(tenantId, s, email, ip)), endTurn };
    } catch (err) {
      endTurn();
      throw err;
    }
  }

  /** Waits for the account's turn; the returned function ends it (once; also when the request ends). */
  private async takeTurn(key: string): Promise<() => void> {
    const held = heldByThisRequest();
    if (held?.has(key)) return () => {};
    const before = this.turns.get(key);
    let finish!: () => void;
    const mine = new Promise<void>((resolve) => {
      finish = resolve;
    });
    const turn = (before ?? Promise.resolve()).then(() => mine);
    this.turns.set(key, turn);
    let ended = false;
    const endTurn = () => {
      if (ended) return;
      ended = true;
      held?.delete(key);
      finish();
      if (this.turns.get(key) === turn) this.turns.delete(key);
    };
    if (!atRequestEnd(endTurn)) setTimeout(endTurn, TURN_WAIT_MS).unref();
    held?.add(key);
    if (before) await Promise.race([before, new Promise((resolve) => setTimeout(resolve, TURN_WAIT_MS).unref())]);
    return endTurn;
  }

  private async read(tenantId: string, s: BruteForceSettings, email: string, ip: string): Promise<Omit<Verdict, 'endTurn'>> {
    const rows = await scopedStatement(this.db, tenantId, (tx) =>
      tx
        .selectFrom('auth_throttle')
        .selectAll()
        .where('tenant_id', '=', tenantId)
        .where('key', 'in', [accountKey(email), ipKey(ip)])
        .execute(),
    );
    const now = Date.now();
    const ip_ = rows.find((r) => r.key === ipKey(ip));
    const account = rows.find((r) => r.key === accountKey(email));
    const ipWindowOpen = ip_?.last_failure_at && now - ip_.last_failure_at.getTime() < s.ip_window_seconds * 1000;
    return {
      ipBlocked: Boolean(ipWindowOpen && ip_!.failures >= s.ip_max_failures),
      accountLocked: Boolean(account?.locked_until && account.locked_until.getTime() > now),
      accountHasFailures: account !== undefined,
    };
  }

  /**
   * Counts a failed sign-in against the address and (unless the address is blocked or the
   * account already locked) the account, locking it per the settings.
   */
  async recordFailure(tenantId: string, s: BruteForceSettings, email: string, ip: string, verdict: Verdict): Promise<void> {
    if (!s.enabled) return;
    try {
      await this.countFailure(tenantId, s, email, ip, verdict);
    } finally {
      verdict.endTurn?.();
    }
  }

  private async countFailure(tenantId: string, s: BruteForceSettings, email: string, ip: string, verdict: Verdict): Promise<void> {
    await inTenant(this.db, tenantId, async (tx) => {
      await this.bump(tx, tenantId, ipKey(ip), s.ip_window_seconds, () => null);
      if (verdict.ipBlocked || verdict.accountLocked) return;
      await this.bump(tx, tenantId, accountKey(email), s.failure_reset_seconds, (failures, sinceLastMs) => {
        let lockSeconds = 0;
        if (sinceLastMs !== null && sinceLastMs < s.quick_login_check_ms) lockSeconds = s.min_quick_login_wait_seconds;
        if (failures % s.max_login_failures === 0) {
          lockSeconds = Math.max(lockSeconds, Math.min(s.wait_increment_seconds * (failures / s.max_login_failures), s.max_wait_seconds));
        }
        return lockSeconds > 0 ? new Date(Date.now() + lockSeconds * 1000) : null;
      });
    });
  }

  /** A successful sign-in forgets the account's failures (the address keeps its count). */
  async recordSuccess(tenantId: string, email: string, verdict: Verdict): Promise<void> {
    try {
      if (verdict.accountHasFailures) await this.unlock(tenantId, email);
    } finally {
      verdict.endTurn?.();
    }
  }

  /**
   * Forms that send mail (reset, resend) are limited to MAIL_REQUESTS_PER_WINDOW per address per
   * quarter hour, counted in the same table.
   */
  async allowMailRequest(tenantId: string, ip: string): Promise<boolean> {
    return inTenant(this.db, tenantId, async (tx) => {
      await this.bump(tx, tenantId, `mail-ip:${ip}`, MAIL_WINDOW_SECONDS, () => null);
      const row = await tx
        .selectFrom('auth_throttle')
        .select('failures')
        .where('tenant_id', '=', tenantId)
        .where('key', '=', `mail-ip:${ip}`)
        .executeTakeFirstOrThrow();
      return row.failures <= MAIL_REQUESTS_PER_WINDOW;
    });
  }

  async unlock(tenantId: string, email: string): Promise<void> {
    await scopedStatement(this.db, tenantId, (tx) =>
      tx.deleteFrom('auth_throttle').where('tenant_id', '=', tenantId).where('key', '=', accountKey(email)).execute(),
    );
  }

  private async bump(
    tx: TenantTx,
    tenantId: string,
    key: string,
    resetAfterSeconds: number,
    lockFor: (failures: number, sinceLastMs: number | null) => Date | null,
  ) {
    const now = new Date();
    const row = await tx.selectFrom('auth_throttle').selectAll().where('tenant_id', '=', tenantId).where('key', '=', key).forUpdate().executeTakeFirst();
    const sinceLast = row?.last_failure_at ? now.getTime() - row.last_failure_at.getTime() : null;
    const fresh = sinceLast === null || sinceLast >= resetAfterSeconds * 1000;
    const failures = fresh ? 1 : row!.failures + 1;
    const locked_until = lockFor(failures, fresh ? null : sinceLast) ?? (fresh ? null : row!.locked_until);
    await tx
      .insertInto('auth_throttle')
      .values({ tenant_id: tenantId, key, failures, last_failure_at: now, locked_until })
      .onConflict((oc) => oc.columns(['tenant_id', 'key']).doUpdateSet({ failures, last_failure_at: now, locked_until }))
      .execute();
  }
}
