import { isDatabaseUnavailable } from '../base/database-unavailable.ts';

/**
 * Group commit: callers hand in a write and wait until the statement that carries it has
 * committed. While a statement is in flight (or `maxInFlight` of them), later writes queue and go
 * together in the next, so under load many writes share one round trip, and at rest a write goes
 * at once — no timer, no added latency. `npm run bench -- ClientSecret` showed the per-token row
 * write costing half of the token endpoint's CPU when each went alone.
 *
 * If a batch fails, its writes are retried one by one, so one bad write fails only its own caller —
 * unless the database is unreachable (base/database-unavailable.ts): then every caller of the
 * batch fails at once, rather than each waiting for a connection of its own that won't come.
 */
export class GroupCommit<T, R = void> {
  private queue: { item: T; resolve: (r: R) => void; reject: (err: unknown) => void }[] = [];
  private inFlight = 0;

  /**
   * `writeBatch` answers one result per item, in order (what each write's caller is told).
   * `maxInFlight` batches may be outstanding at once; an item goes at once while fewer are.
   */
  constructor(
    private readonly writeBatch: (items: T[]) => Promise<R[]>,
    private readonly maxBatch = 200,
    private readonly maxInFlight = 1,
  ) {}

  add(item: T): Promise<R> {
    const answer = this.enqueue(item);
    this.kick();
    return answer;
  }

  /** Several items that must travel together: they are queued at once, so they share a batch. */
  addAll(items: T[]): Promise<R[]> {
    const answers = items.map((item) => this.enqueue(item));
    this.kick();
    return Promise.all(answers);
  }

  private enqueue(item: T): Promise<R> {
    return new Promise((resolve, reject) => this.queue.push({ item, resolve, reject }));
  }

  /** Starts a batch now if fewer than `maxInFlight` are outstanding. */
  private kick() {
    if (this.inFlight < this.maxInFlight) void this.drain();
  }

  private async drain() {
    this.inFlight++;
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0, this.maxBatch);
        try {
          const results = await this.writeBatch(batch.map((b) => b.item));
          for (const [i, b] of batch.entries()) b.resolve(results[i]!);
        } catch (err) {
          if (batch.length === 1 || isDatabaseUnavailable(err)) for (const b of batch) b.reject(err);
          else await Promise.all(batch.map((b) => this.writeBatch([b.item]).then((r) => b.resolve(r[0]!), b.reject)));
        }
      }
    } finally {
      this.inFlight--;
    }
  }
}
