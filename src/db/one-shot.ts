import { AsyncLocalStorage } from 'node:async_hooks';
import {
  type CompiledQuery,
  type DatabaseConnection,
  type Dialect,
  type Driver,
  Kysely,
  type LogEvent,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
  type QueryResult,
} from 'kysely';
import type pg from 'pg';
// @ts-expect-error -- node-postgres ships no types for lib/utils; prepareValue is what it applies to every parameter.
import pgUtils from 'pg/lib/utils.js';
import { isUuid } from '../base/ids.ts';
import type { Database, DB, TenantTx } from './database.ts';
import { GroupCommit } from './group-commit.ts';
import { GENERIC_PLAN, markPrepared, type PreparedStatement, preparationsFor, preparedStatement } from './prepared.ts';
import { inTenant, inTenantOfSlug, scopeStatementFor, scopeStatementForSlug } from './tenant-scope.ts';

/**
 * One tenant-scoped statement in one round trip.
 *
 * `inTenant` costs three round trips (BEGIN with the scope, the statement, COMMIT), and on this
 * kind of machine every socket write is dear: `--cpu-prof` of the token endpoints showed a third
 * of the busy time in writes to PostgreSQL. A simple-protocol query holding several statements
 * runs them as one implicit transaction, so `select set_config(<tenant>, <role>, true); <statement>`
 * scopes the statement exactly as `inTenant` does — RLS binds it, the settings end with it — in a
 * single write. The statement's parameters are inlined as literals the way node-postgres would
 * send them (`prepareValue`) and quoted with its `escapeLiteral`; an untyped literal is inferred
 * by PostgreSQL exactly as an untyped parameter is. test/integration/one-shot-values.test.ts sends
 * random values both ways and compares what PostgreSQL reads.
 *
 * `scopedStatement` is for work that runs exactly one statement (the OIDC adapter's reads, the
 * single-statement lookups of sign-in and the Admin API); `scopedBatch` sends several compiled
 * statements the same way (the adapter's group-committed writes).
 *
 * Where the path is not registered — the embedded database, or PostgreSQL with
 * `DATABASE_ONE_SHOT=false` (connect.ts) — each of them is an ordinary `inTenant` transaction with
 * bound parameters: the same rows, in three round trips.
 */
/** The one-shot work running: its scope statement (tenant-scope.ts), and whether its statement is prepared (prepared.ts). */
interface OneShotRun {
  scope: string;
  prepare: boolean;
}
const scope = new AsyncLocalStorage<OneShotRun>();
const oneShots = new WeakMap<Database, Kysely<DB>>();
const pools = new WeakMap<Database, pg.Pool>();

/** How the connection times statements (connect.ts): kysely's `log` option, and a report for what bypasses kysely. */
interface Timings {
  kyselyLog: (event: LogEvent) => void;
  report: (seconds: number, failed: boolean) => void;
}
const batchTimings = new WeakMap<Database, Timings['report']>();

export function registerOneShot(db: Database, pool: pg.Pool, opts: { preparedStatements: boolean; timings?: Timings }) {
  oneShots.set(
    db,
    new Kysely<DB>({
      dialect: new OneShotDialect(pool, groupedReads(pool), opts.preparedStatements),
      ...(opts.timings ? { log: opts.timings.kyselyLog } : {}),
    }),
  );
  pools.set(db, pool);
  if (opts.timings) batchTimings.set(db, opts.timings.report);
}

/** A statement (parameters inlined, or an EXECUTE of `prepared`) and the scope statement it runs after. */
interface ScopedText {
  scope: string;
  statement: string;
  prepared?: PreparedStatement | undefined;
}

/**
 * Sends statements as one simple-protocol query, each after its own tenant scope, and answers
 * each statement's result (the scope statements' results are dropped). The connection's missing
 * `PREPARE`s go first, in the same query.
 */
async function sendScoped(pool: pg.Pool, statements: ScopedText[]): Promise<pg.QueryResult[]> {
  const connection = await pool.connect();
  const preparations = preparationsFor(connection, statements);
  try {
    const text = [...preparations, ...statements.map((s) => `${s.scope}; ${s.statement}`)].join('; ');
    const results = (await connection.query(text)) as unknown as pg.QueryResult[];
    markPrepared(connection, statements);
    connection.release();
    return statements.map((_, i) => results[preparations.length + 2 * i + 1]!);
  } catch (err) {
    // A PREPARE is not undone with its transaction: after a failure, which ones ran is unknown,
    // so such a connection is closed rather than reused.
    connection.release(preparations.length > 0 ? (err as Error) : undefined);
    throw err;
  }
}

/**
 * Concurrent one-shot reads share a round trip the way the adapter's writes do (group-commit.ts):
 * while a batch is in flight, later reads queue and go together as one simple-protocol query,
 * each statement preceded by its own scope (tenants may differ within a batch; every
 * `set_config(…, true)` replaces the last, and all of them end with the implicit transaction).
 * `--cpu-prof` of introspection and userinfo — one statement each — showed a quarter of the busy
 * time in the socket write that sends it. At rest a read goes at once.
 *
 * Only SELECTs are grouped: a write sent along would hold its row locks until the whole batch
 * commits and could order locks against another transaction. Two batches may be in flight, so one
 * slow read (a large page) does not hold up every other request's read; two would (four in
 * flight measured ~10 % fewer introspections per CPU second than two).
 */
function groupedReads(pool: pg.Pool) {
  return new GroupCommit<ScopedText, pg.QueryResult>((reads) => sendScoped(pool, reads), 64, 2);
}

/**
 * Runs `work` — one statement — scoped to `tenantId`: one round trip on PostgreSQL, `inTenant`
 * where the one-shot path is off. `prepare`: the statement is prepared once per connection and
 * runs with a generic plan (prepared.ts) — for a hot statement whose best plan does not depend on
 * its parameters; `inTenant` ignores it.
 */
export function scopedStatement<T>(db: Database, tenantId: string, work: (tx: TenantTx) => Promise<T>, opts?: { prepare?: boolean }): Promise<T> {
  const oneShot = oneShots.get(db);
  if (!oneShot) return inTenant(db, tenantId, work);
  if (!isUuid(tenantId)) throw new Error('scopedStatement: not a tenant id');
  return scope.run({ scope: scopeStatementFor(tenantId), prepare: opts?.prepare ?? false }, () => work(oneShot as unknown as TenantTx));
}

/**
 * As scopedStatement, for the tenant `slug` names — found by the scope statement in the same
 * round trip (scopeStatementForSlug), so the statement may read the tenant's row together with
 * its tenant-scoped rows. An unknown slug: RLS shows the statement no tenant-scoped row.
 */
export async function slugScopedStatement<T>(db: Database, slug: string, work: (tx: TenantTx) => Promise<T>): Promise<T> {
  const oneShot = oneShots.get(db);
  if (!oneShot) return inTenantOfSlug(db, slug, work);
  return scope.run({ scope: scopeStatementForSlug(slug), prepare: false }, () => work(oneShot as unknown as TenantTx));
}

/**
 * Several statements, scoped to `tenantId`, in one round trip and one implicit transaction (all
 * or nothing): `build` compiles them against a query builder (it must not execute anything).
 * Answers each statement's rows. Where the one-shot path is off they run in order inside
 * `inTenant`.
 */
export async function scopedBatch(db: Database, tenantId: string, build: (qb: Kysely<DB>) => CompiledQuery[]): Promise<unknown[][]> {
  if (!isUuid(tenantId)) throw new Error('scopedBatch: not a tenant id');
  const pool = pools.get(db);
  if (!pool) {
    return inTenant(db, tenantId, async (tx) => {
      const out: unknown[][] = [];
      for (const q of build(tx)) out.push((await tx.executeQuery(q)).rows as unknown[]);
      return out;
    });
  }
  const statements = build(db);
  if (statements.length === 0) return [];
  const text = `${scopeStatementFor(tenantId)}; ${statements.map((q) => inlineParameters(q.sql, q.parameters)).join('; ')}`;
  // The one query sent past kysely, so timed here: the batch is one round trip, and counts as one statement.
  const report = batchTimings.get(db);
  const started = performance.now();
  let failed = true;
  try {
    const results = (await pool.query(text)) as unknown as pg.QueryResult[];
    failed = false;
    return results.slice(1).map((r) => r.rows);
  } finally {
    report?.((performance.now() - started) / 1000, failed);
  }
}

/** A character of an unquoted identifier, which may hold a `$`: `a$1` is a name, not `a` and `$1`. */
const NAME_CHAR = String.raw`[\w$\u0080-\uffff]`;
const DOLLAR_TAG = String.raw`\$(?:[A-Za-z_\u0080-\uffff][\w\u0080-\uffff]*)?\$`;

/**
 * What PostgreSQL's lexer reads as one piece, so that a `$n` inside it is no parameter: each
 * alternative is kept as it is, except a `$n` placeholder (group 2) and an opening that never
 * closes (group 3). Strings follow standard_conforming_strings = on (the default since
 * PostgreSQL 9.1): a backslash escapes only in an E'' string. One regular expression and one pass:
 * the statement is built from slices, never a character at a time — char-wise `+=` made a cons
 * string per character and was 28 % of everything a refresh allocated (sampled with V8's heap
 * profiler, collected objects included). Numbered groups, not named ones: a named group's object
 * per match tripled the time of a pass.
 */
const PIECE_OR_PLACEHOLDER = new RegExp(
  [
    String.raw`(?<!${NAME_CHAR})[eE]'(?:[^'\\]|\\[\s\S]|'')*'`, // E'…', backslash escapes
    `'[^']*(?:''[^']*)*'`, // '…' (also B'', X'', N'', U&'')
    `"[^"]*(?:""[^"]*)*"`, // "identifier"
    String.raw`(?<!${NAME_CHAR})(${DOLLAR_TAG})[\s\S]*?\1`, // $$…$$, $tag$…$tag$ (group 1: the tag)
    String.raw`--[^\n\r]*`, // to the end of the line
    String.raw`/\*[\s\S]*?\*/`, // block comment (a nested one is refused below)
    String.raw`(?<!${NAME_CHAR})\$(\d+)`,
    String.raw`((?<!${NAME_CHAR})[eE]'|['"]|/\*|(?<!${NAME_CHAR})${DOLLAR_TAG})`,
  ].join('|'),
  'g',
);

/**
 * `$n` placeholders replaced by literals, wherever PostgreSQL would read them as parameters: not
 * inside strings, quoted identifiers, dollar quotes or comments — there a value's text could end
 * the piece and be read as SQL.
 */
export function inlineParameters(text: string, parameters: readonly unknown[]): string {
  return text.replace(PIECE_OR_PLACEHOLDER, (match: string, _tag: string | undefined, n: string | undefined, open: string | undefined) => {
    if (open !== undefined) throw new Error(`inlineParameters: ${open} never closes`);
    if (n === undefined) {
      // PostgreSQL nests block comments; this pattern does not, so it does not take one.
      if (match.startsWith('/*') && match.indexOf('/*', 2) >= 0) throw new Error('inlineParameters: a nested block comment');
      return match;
    }
    const i = Number(n);
    if (i < 1 || i > parameters.length) throw new Error(`inlineParameters: no parameter $${i}`);
    return literal(parameters[i - 1]);
  });
}

/**
 * A parameter as node-postgres would send it (`prepareValue`), as a quoted literal. Escaped as
 * node-postgres's `escapeLiteral` escapes (quotes doubled; with a backslash, an E'' string with
 * backslashes doubled, so the literal means the same whatever standard_conforming_strings says),
 * but with two replaces instead of a concatenation per character.
 */
function literal(value: unknown): string {
  const prepared = pgUtils.prepareValue(value) as string | Buffer | null;
  if (prepared === null || prepared === undefined) return 'NULL';
  // node-postgres sends a Buffer as binary; PostgreSQL reads bytes from it only as a bytea, so the
  // literal says bytea (hex input): where bytes don't belong, the statement fails rather than
  // storing hex digits as text.
  if (Buffer.isBuffer(prepared)) return ` E'\\\\x${prepared.toString('hex')}'::bytea`;
  const text = String(prepared);
  // PostgreSQL reads a query's text up to a NUL: one in a literal would fail the whole message,
  // with every statement grouped into it. Requests can't bring one (base/storable-text.ts).
  if (text.includes('\0')) throw new Error('inlineParameters: a parameter holds U+0000, which PostgreSQL cannot store');
  if (text.includes('\\')) return ` E'${text.replace(/['\\]/g, '$&$&')}'`;
  return `'${text.replace(/'/g, "''")}'`;
}

type ReadGroup = ReturnType<typeof groupedReads>;

class OneShotConnection implements DatabaseConnection {
  constructor(
    private readonly pool: pg.Pool,
    private readonly reads: ReadGroup,
    private readonly preparing: boolean,
  ) {}

  async executeQuery<R>(compiled: CompiledQuery): Promise<QueryResult<R>> {
    const run = scope.getStore();
    if (!run) throw new Error('a one-shot statement outside scopedStatement');
    const scoped =
      this.preparing && run.prepare
        ? executePrepared(run.scope, compiled)
        : { scope: run.scope, statement: inlineParameters(compiled.sql, compiled.parameters) };
    const r = isPlainSelect(compiled) ? await this.reads.add(scoped) : (await sendScoped(this.pool, [scoped]))[0]!;
    return {
      rows: r.rows as R[],
      ...(['INSERT', 'UPDATE', 'DELETE', 'MERGE'].includes(r.command) ? { numAffectedRows: BigInt(r.rowCount ?? 0) } : {}),
    };
  }

  // biome-ignore lint/correctness/useYield: Kysely's DatabaseConnection wants an async generator here; this one only refuses.
  async *streamQuery<R>(): AsyncIterableIterator<QueryResult<R>> {
    throw new Error('one-shot statements do not stream');
  }
}

/** A SELECT — built, or raw text that starts with one — that takes no row locks (see groupedReads). */
function isPlainSelect(compiled: CompiledQuery): boolean {
  const select = compiled.query.kind === 'SelectQueryNode' || (compiled.query.kind === 'RawNode' && /^\s*select\b/i.test(compiled.sql));
  return select && !/\bfor\s+(update|no key update|share|key share)\b/i.test(compiled.sql);
}

/** `EXECUTE` of the compiled statement's prepared form, its parameters as literals, with a generic plan. */
function executePrepared(scopeStatement: string, compiled: CompiledQuery): ScopedText {
  const prepared = preparedStatement(compiled.sql);
  const args = compiled.parameters.length ? `(${compiled.parameters.map(literal).join(', ')})` : '';
  return { scope: `${scopeStatement}, ${GENERIC_PLAN}`, statement: `EXECUTE ${prepared.name}${args}`, prepared };
}

class OneShotDriver implements Driver {
  private readonly connection: OneShotConnection;
  constructor(pool: pg.Pool, reads: ReadGroup, preparing: boolean) {
    this.connection = new OneShotConnection(pool, reads, preparing);
  }
  async init() {}
  async acquireConnection() {
    return this.connection;
  }
  async beginTransaction(): Promise<void> {
    throw new Error('one-shot statements are their own transaction');
  }
  async commitTransaction(): Promise<void> {}
  async rollbackTransaction(): Promise<void> {}
  async releaseConnection() {}
  async destroy() {}
}

class OneShotDialect implements Dialect {
  constructor(
    private readonly pool: pg.Pool,
    private readonly reads: ReadGroup,
    private readonly preparing: boolean,
  ) {}
  createAdapter() {
    return new PostgresAdapter();
  }
  createDriver() {
    return new OneShotDriver(this.pool, this.reads, this.preparing);
  }
  createQueryCompiler() {
    return new PostgresQueryCompiler();
  }
  createIntrospector(db: Kysely<unknown>) {
    return new PostgresIntrospector(db);
  }
}
