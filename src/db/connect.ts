import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Kysely, type LogEvent } from 'kysely';
import pg from 'pg';
import type { DB } from './database.ts';
import { LazyBeginPostgresDialect } from './lazy-begin.ts';
import { registerOneShot } from './one-shot.ts';
import { PGliteDialect } from './pglite-dialect.ts';
import { watchedClient } from './statement-watchdog.ts';

export interface Connection {
  db: Kysely<DB>;
  kind: 'postgres' | 'embedded';
  close(): Promise<void>;
  /**
   * Told each statement's duration (in seconds) and whether it failed — kysely's and the one-shot
   * path's alike (statements sent together in one round trip count once). One listener; a second
   * call replaces the first.
   */
  onStatement(listener: StatementListener): void;
  /** The pool's connections now; undefined on the embedded database, which has none. */
  poolStats(): PoolStats | undefined;
}

/** How long past `statement_timeout` a statement may stay unanswered before its connection is given up. */
const WATCHDOG_MARGIN_MS = 2000;

export type StatementListener = (seconds: number, failed: boolean) => void;

export interface PoolStats {
  total: number;
  idle: number;
  /** Queries waiting for a connection. */
  waiting: number;
}

/**
 * Where a connection reports its statements' durations. Kysely's `log` option times each query it
 * runs (two clock reads and a call, cheap enough to leave on); the listener is set once the app
 * that counts them exists, which may be after the connection is opened (tests share one).
 */
class StatementTimings {
  private listener: StatementListener | undefined;
  set(listener: StatementListener) {
    this.listener = listener;
  }
  readonly kyselyLog = (event: LogEvent) => this.listener?.(event.queryDurationMillis / 1000, event.level === 'error');
  readonly report: StatementListener = (seconds, failed) => this.listener?.(seconds, failed);
}

export class DataDirBusyError extends Error {
  override name = 'DataDirBusyError';
}

/** PostgreSQL when a URL is given; otherwise embedded PGlite persisted under `dataDir/pgdata`. */
export async function connect(opts: {
  databaseUrl?: string | undefined;
  dataDir: string;
  poolSize?: number;
  /** Statements marked `prepare` are prepared once per connection (one-shot.ts); default on. */
  preparedStatements?: boolean;
  /**
   * Tenant-scoped statements go in one round trip with their scope, parameters inlined
   * (one-shot.ts); default on. Off, they run as `inTenant` transactions with bound parameters.
   */
  oneShot?: boolean;
  /**
   * How long to wait for a connection (opening one, or a free one from a full pool) before the
   * query fails; default 3 s. Without a bound, requests hang for as long as the database is away.
   */
  connectTimeoutMs?: number;
  /**
   * PostgreSQL's `statement_timeout` for every statement of this connection, and the time after
   * which a statement that had no answer at all gives its connection up (statement-watchdog.ts).
   * Unset or 0: no bound — for migrations, which may run long and wait for another instance's.
   */
  statementTimeoutMs?: number;
  /** Told when an idle pooled connection dies (PostgreSQL restarted, an admin ended it). */
  onIdleConnectionLost?: (err: Error) => void;
}): Promise<Connection> {
  if (opts.databaseUrl) {
    const statementTimeout = opts.statementTimeoutMs || undefined;
    const pool = new pg.Pool({
      connectionString: opts.databaseUrl,
      max: opts.poolSize ?? 10,
      connectionTimeoutMillis: opts.connectTimeoutMs ?? 3000,
      ...(statementTimeout
        ? {
            statement_timeout: statementTimeout,
            // The server's own answer comes first; this is for when none can come.
            Client: watchedClient(statementTimeout + WATCHDOG_MARGIN_MS),
          }
        : {}),
    });
    // Without a listener, node-postgres re-emits an idle connection's error on the pool, and an
    // unhandled 'error' event ends the process: a PostgreSQL restart would take Tessera down.
    // The pool drops the dead connection and opens a new one when next needed.
    const lost = opts.onIdleConnectionLost ?? ((err: Error) => process.emitWarning(`database connection lost while idle: ${err.message}`));
    pool.on('error', lost);
    // A connection lost while checked out but between statements (a transaction waiting on the
    // app) emits 'error' on its client, where the pool listens only while it is idle: unheard,
    // that too would end the process. Its next statement fails instead ("not queryable"), which
    // the request answers with 503, and the pool drops it when it is released.
    pool.on('connect', (client) => client.on('error', () => {}));
    const timings = new StatementTimings();
    const db = new Kysely<DB>({ dialect: new LazyBeginPostgresDialect({ pool }), log: timings.kyselyLog });
    if (opts.oneShot ?? true) registerOneShot(db, pool, { preparedStatements: opts.preparedStatements ?? true, timings });
    return {
      db,
      kind: 'postgres',
      close: () => db.destroy(),
      onStatement: (listener) => timings.set(listener),
      poolStats: () => ({ total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount }),
    };
  }
  const unlock = lockDataDir(opts.dataDir);
  try {
    const { PGlite } = await import('@electric-sql/pglite');
    const pglite = await PGlite.create(join(opts.dataDir, 'pgdata'));
    const timings = new StatementTimings();
    const db = new Kysely<DB>({ dialect: new PGliteDialect(pglite), log: timings.kyselyLog });
    return {
      db,
      kind: 'embedded',
      onStatement: (listener) => timings.set(listener),
      poolStats: () => undefined,
      close: async () => {
        await db.destroy();
        unlock();
      },
    };
  } catch (err) {
    unlock();
    throw err;
  }
}

/**
 * PGlite is one process's database: a second process opening the same files corrupts them.
 * A pid file says who holds DATA_DIR; a stale one (its process gone) is taken over.
 */
function lockDataDir(dataDir: string): () => void {
  mkdirSync(dataDir, { recursive: true });
  const file = join(dataDir, 'tessera.pid');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(file, String(process.pid), { flag: 'wx' });
      return () => rmSync(file, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = Number(readFileSync(file, 'utf8').trim());
      if (holder && holder !== process.pid && isAlive(holder)) {
        throw new DataDirBusyError(
          `The embedded database in ${dataDir} is in use by another Tessera process (pid ${holder}). ` +
            'Stop that server first, or set DATABASE_URL to use PostgreSQL, which many processes can share.',
        );
      }
      rmSync(file, { force: true });
    }
  }
  throw new DataDirBusyError(`Could not lock ${dataDir}`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
