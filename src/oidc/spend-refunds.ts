import { isDatabaseUnavailable } from '../base/database-unavailable.ts';
import type { Logger } from '../base/logger.ts';
import type { Database } from '../db/database.ts';
import { scopedBatch } from '../db/one-shot.ts';
import { type Refund, refundStatements } from '../oidc-store/oidc-payload.repo.ts';

/**
 * Codes and refresh tokens spent by token requests that handed out no tokens, given back.
 *
 * A refresh spends the old refresh token in one statement and stores the new tokens in a later
 * one (held-saves.ts). If the database goes away between the two — or a read in between fails, or
 * the commit's answer is lost with the connection — the client is answered an error and still
 * holds only the old refresh token. Left spent, its next use would look like a replay: the grant
 * revoked, the user signed out. So the spending is undone (oidc-payload.repo.ts, refundStatements):
 * at once when the database answers, otherwise retried every `retryMs` until it does, and in any
 * case before this instance reads that token again — a client that retries on the same instance
 * always finds its token unspent. Nothing is weakened: the tokens made in its place were never
 * handed out, and are deleted with the refund.
 *
 * Kept in memory: an instance that stops with refunds pending, or a retry that reaches another
 * instance before the refund is applied, leaves the token spent (the pre-existing behaviour).
 */
export class SpendRefunds {
  private readonly pending = new Map<string, { tenantId: string; refund: Refund; attempt: Promise<void> | undefined }>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly db: Database,
    private readonly log: Logger,
    private readonly retryMs = 500,
    private readonly max = 10_000,
  ) {}

  /** How many are waiting for the database. */
  get size(): number {
    return this.pending.size;
  }

  add(tenantId: string, refund: Refund) {
    if (this.pending.size >= this.max) {
      this.log.error({ tenantId, model: refund.model }, 'too many spent tokens waiting to be given back: this one stays spent');
      return;
    }
    const key = keyOf(tenantId, refund.model, refund.id);
    this.pending.set(key, { tenantId, refund, attempt: undefined });
    this.log.warn({ tenantId, model: refund.model }, 'a token request handed out no tokens: giving back what it spent');
    this.apply(key).catch(() => this.retryLater());
  }

  /**
   * Before a code or refresh token is read: the refund pending for it, if any, is applied first.
   * Fails only while the database is unreachable (then the read would fail too).
   */
  settle(tenantId: string, model: string, id: string): Promise<void> | undefined {
    if (this.pending.size === 0) return undefined;
    const key = keyOf(tenantId, model, id);
    if (!this.pending.has(key)) return undefined;
    return this.apply(key).catch((err) => {
      if (isDatabaseUnavailable(err)) throw err;
    });
  }

  private apply(key: string): Promise<void> {
    const entry = this.pending.get(key);
    if (!entry) return Promise.resolve();
    entry.attempt ??= scopedBatch(this.db, entry.tenantId, () => refundStatements(entry.tenantId, entry.refund)).then(
      () => {
        if (this.pending.get(key) === entry) this.pending.delete(key);
      },
      (err: unknown) => {
        entry.attempt = undefined;
        if (!isDatabaseUnavailable(err) && this.pending.get(key) === entry) {
          this.pending.delete(key);
          this.log.error({ err, tenantId: entry.tenantId, model: entry.refund.model }, 'a spent token could not be given back');
        }
        throw err;
      },
    );
    return entry.attempt;
  }

  /** One refund tried first, the rest once it succeeds: while the database is away, one attempt per round. */
  private retryLater() {
    if (this.timer || this.pending.size === 0) return;
    this.timer = setTimeout(async () => {
      const [first, ...rest] = this.pending.keys();
      try {
        if (first) await this.apply(first);
        await Promise.allSettled(rest.map((key) => this.apply(key)));
      } catch {
        // still away
      }
      this.timer = undefined;
      this.retryLater();
    }, this.retryMs);
    this.timer.unref();
  }
}

function keyOf(tenantId: string, model: string, id: string): string {
  return `${tenantId}\0${model}\0${id}`;
}
