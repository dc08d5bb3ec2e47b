import pg from 'pg';

/**
 * A pg.Client that gives up on its connection when a statement has had no answer for `limitMs`.
 *
 * PostgreSQL's `statement_timeout` ends a statement that runs too long (a lock held by a
 * forgotten transaction, an overloaded server), but only a server that still hears us can send
 * that answer. When the network drops packets instead of refusing them, the kernel keeps
 * retransmitting for many minutes, the statement never returns, and every request that queues
 * behind it — the same tenant's writes go through one batch at a time (group-commit.ts) — hangs
 * with it. So the client watches its own statements: past the limit it destroys the socket, the
 * statement fails with "Connection terminated" (an outage to database-unavailable.ts: a 503), and
 * the pool drops the connection when it is released.
 */
export function watchedClient(limitMs: number): typeof pg.Client {
  return class WatchedClient extends pg.Client {
    // biome-ignore lint/suspicious/noExplicitAny: pg's query() has a dozen overloads; this passes every one through.
    override query(...args: any[]): any {
      const timer = setTimeout(() => (this as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy(), limitMs);
      timer.unref();
      const done = () => clearTimeout(timer);
      const last = args.length - 1;
      const callback = args[last];
      if (typeof callback === 'function') {
        // pg-pool's pool.query() passes a callback.
        args[last] = (err: unknown, result: unknown) => {
          done();
          callback(err, result);
        };
        return super.query(...(args as Parameters<pg.Client['query']>));
      }
      const result: unknown = super.query(...(args as Parameters<pg.Client['query']>));
      if (result instanceof Promise) result.then(done, done);
      else done(); // a Submittable (a cursor): not watched
      return result;
    }
  };
}
