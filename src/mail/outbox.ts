import type { Logger } from '../base/logger.ts';
import { decodeCursor, page } from '../base/pagination.ts';
import { decrypt, encrypt } from '../crypto/secrets.ts';
import type { Database, TenantTx } from '../db/database.ts';
import { inTenant } from '../db/tenant-scope.ts';
import type { Metrics } from '../metrics/metrics.ts';
import { effectiveSettings } from '../tenants/settings.ts';
import type { TenantRow } from '../tenants/tenant.repo.ts';
import type { MailStatus } from './mail.table.ts';
import * as repo from './outbox.repo.ts';
import type { MailTransport } from './transport.ts';

export interface ComposedMail {
  subject: string;
  text: string;
  html: string;
  /**
   * Where to send it, when not to the queued recipient: a request queued under the address as
   * someone typed it goes to the stored address of the account it names.
   */
  to?: string | undefined;
}

/**
 * Turns a queued message into mail at send time, or returns null to discard it (say, a reset
 * requested for an address with no account: the request path queued it all the same, so that
 * its timing says nothing about whether the account exists).
 */
export type Composer = (tenant: TenantRow, recipient: string, params: Record<string, unknown>) => Promise<ComposedMail | null>;

export interface OutboxOptions {
  from: string;
  pollMs: number;
  retryBaseMs: number;
  maxAttempts: number;
  encryptionKey: Buffer;
}

const LEASE_SECONDS = 120;
const QUEUE_COUNT_TIMEOUT_MS = 1000;
const BATCH = 20;

/**
 * The mail queue. Messages are rows (so nothing is lost on restart and any instance may send
 * them); a worker on every instance claims due rows, sends, and retries failures with
 * exponential backoff until `maxAttempts`, after which the message is `failed` and visible to
 * the tenant's admins. Sending never happens on a request's path.
 */
export class MailOutbox {
  private readonly composers = new Map<string, Composer>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private rerun = false;
  private stopped = false;
  private counting: Promise<number | undefined> | undefined;

  constructor(
    private readonly db: Database,
    private readonly transport: MailTransport,
    private readonly opts: OutboxOptions,
    private readonly log: Logger,
    private readonly metrics: Metrics,
  ) {}

  register(kind: string, composer: Composer) {
    this.composers.set(kind, composer);
  }

  /** Queues a message inside the caller's tenant transaction; the worker is woken at once. */
  async enqueue(tx: TenantTx, tenantId: string, kind: string, recipient: string, params: Record<string, unknown> = {}) {
    if (!this.composers.has(kind)) throw new Error(`no composer for mail kind ${kind}`);
    const { id } = await repo.insertMail(tx, {
      tenant_id: tenantId,
      kind,
      recipient,
      params_encrypted: encrypt(this.opts.encryptionKey, JSON.stringify(params), `mail:${tenantId}:${kind}:${recipient}`),
    });
    setImmediate(() => this.kick());
    return id;
  }

  async list(tenantId: string, q: { status?: MailStatus | undefined; limit: number; cursor?: string | undefined }) {
    const rows = await inTenant(this.db, tenantId, (tx) => repo.listMail(tx, tenantId, { status: q.status, limit: q.limit, after: decodeCursor(q.cursor) }));
    const p = page(rows, q.limit, (r) => ({ createdAt: r.created_at, id: r.id }));
    return {
      data: p.data.map((r) => ({
        id: r.id,
        kind: r.kind,
        to: r.recipient,
        subject: r.subject,
        status: r.status,
        attempts: r.attempts,
        last_error: r.last_error,
        next_attempt_at: r.status === 'pending' ? r.next_attempt_at.toISOString() : null,
        created_at: r.created_at.toISOString(),
        sent_at: r.sent_at?.toISOString() ?? null,
      })),
      next_cursor: p.next_cursor,
    };
  }

  start() {
    this.stopped = false;
    this.timer = setInterval(() => this.kick(), this.opts.pollMs);
    this.timer.unref();
    this.kick();
  }

  async stop() {
    this.stopped = true;
    clearInterval(this.timer);
    await this.running;
    this.transport.close();
  }

  /**
   * Mail waiting to be sent, every tenant's, as the metrics scrape reads it: one count over the
   * partial index of pending mail. At most one count runs at a time, and a count that takes over a
   * second answers undefined (the gauge keeps its last value), so a slow database does not pile
   * up scrapes' queries.
   */
  queueDepth(): Promise<number | undefined> {
    this.counting ??= repo
      .countPending(this.db)
      .catch((err) => {
        this.log.warn({ err }, 'could not count the mail queue');
        return undefined;
      })
      .finally(() => {
        this.counting = undefined;
      });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), QUEUE_COUNT_TIMEOUT_MS);
    });
    return Promise.race([this.counting, late]).finally(() => clearTimeout(timer));
  }

  /** Runs one pass now, or right after the current one. */
  kick() {
    if (this.stopped) return;
    if (this.running) {
      this.rerun = true;
      return;
    }
    this.running = this.drain()
      .catch((err) => this.log.warn({ err }, 'mail worker pass failed'))
      .finally(() => {
        this.running = undefined;
        if (this.rerun) {
          this.rerun = false;
          this.kick();
        }
      });
  }

  /** Sends everything due, batch by batch. Exposed for tests and for `stop()` to await. */
  async drain(): Promise<void> {
    for (;;) {
      if (this.stopped) return;
      const batch = await repo.claimDue(this.db, BATCH, LEASE_SECONDS);
      if (batch.length === 0) return;
      await Promise.all(batch.map((row) => this.deliver(row)));
    }
  }

  private async deliver(row: repo.OutboxRow) {
    const log = this.log.child({ mailId: row.id, tenantId: row.tenant_id, kind: row.kind });
    try {
      const tenant = await this.db.selectFrom('tenants').selectAll().where('id', '=', row.tenant_id).executeTakeFirst();
      const composer = this.composers.get(row.kind);
      if (!tenant || !composer || !row.params_encrypted) {
        await repo.markDiscarded(this.db, row.tenant_id, row.id, !composer ? `unknown kind ${row.kind}` : 'nothing to send');
        return;
      }
      const params = JSON.parse(decrypt(this.opts.encryptionKey, row.params_encrypted, `mail:${row.tenant_id}:${row.kind}:${row.recipient}`));
      const mail = await composer(tenant, row.recipient, params);
      if (!mail) {
        await repo.markDiscarded(this.db, row.tenant_id, row.id, 'not applicable');
        return;
      }
      const fromName = effectiveSettings(tenant.settings).mail_from_name ?? tenant.name;
      const { to = row.recipient, ...content } = mail;
      await this.transport.send({ from: { name: fromName, address: this.opts.from }, to, ...content });
      this.metrics.mailDelivered();
      await repo.markSent(this.db, row.tenant_id, row.id, mail.subject, to);
      log.info({ attempts: row.attempts }, 'mail sent');
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      const retry = row.attempts < this.opts.maxAttempts;
      const delay = Math.min(this.opts.retryBaseMs * 2 ** (row.attempts - 1), 3_600_000);
      this.metrics.mailFailed(!retry);
      await repo
        .markAttemptFailed(this.db, row.tenant_id, row.id, message.slice(0, 500), retry ? new Date(Date.now() + delay) : null)
        .catch((e) => log.error({ err: e }, 'could not record a mail failure'));
      if (retry) log.warn({ attempts: row.attempts, retryInMs: delay, error: message }, 'mail not sent; will retry');
      else log.error({ attempts: row.attempts, error: message }, 'mail failed for good');
    }
  }
}
