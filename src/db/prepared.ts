import { createHash } from 'node:crypto';

/**
 * Statements prepared once per connection (SQL `PREPARE`), for the few hot reads whose planning
 * is a large share of their cost, such as a page of 50 members out of 100,000
 * (docs/performance.md, "The member list, prepared"). They run through
 * the one-shot path (one-shot.ts) as `EXECUTE name(literals)` after the tenant scope, in the same
 * round trip; a connection that lacks one gets its `PREPARE` at the front of that same query.
 *
 * A prepared statement lives in its server session, so this needs each pooled connection to be
 * one session: off (`DATABASE_PREPARED_STATEMENTS=false`) behind a pooler in transaction mode.
 */
export interface PreparedStatement {
  /** Derived from the text, so one name always means one statement on every connection. */
  name: string;
  text: string;
}

const byText = new Map<string, PreparedStatement>();

/**
 * The prepared statement for a compiled text with `$n` placeholders (a handful of shapes in all).
 * Its LIMIT must be a literal: a generic plan takes `LIMIT $n` for a tenth of the rows, and for a
 * page of members planned a parallel scan of them all (docs/performance.md).
 */
export function preparedStatement(text: string): PreparedStatement {
  let p = byText.get(text);
  if (!p) {
    if (/\b(limit|offset|fetch first)\s+\$\d/i.test(text)) throw new Error('a prepared statement needs a literal LIMIT/OFFSET (prepared.ts)');
    p = { name: `tessera_${createHash('sha256').update(text).digest('hex').slice(0, 24)}`, text };
    byText.set(text, p);
  }
  return p;
}

/**
 * The statement's plan is made once and kept: PostgreSQL's default (`auto`) compares a generic
 * plan's estimated cost with custom ones and, for the member page, replans at every execution —
 * which is the cost being saved. Set for the statement's own transaction only.
 */
export const GENERIC_PLAN = `set_config('plan_cache_mode', 'force_generic_plan', true)`;

const preparedOn = new WeakMap<object, Set<string>>();

/** `PREPARE`s a connection needs before it can run `statements`, each once. */
export function preparationsFor(connection: object, statements: ReadonlyArray<{ prepared?: PreparedStatement | undefined }>): string[] {
  const known = preparedOn.get(connection);
  const needed = new Map<string, PreparedStatement>();
  for (const { prepared } of statements) if (prepared && !known?.has(prepared.name)) needed.set(prepared.name, prepared);
  return [...needed.values()].map((p) => `PREPARE ${p.name} AS ${p.text}`);
}

/** After a query that ran its preparations succeeded: the connection holds them from now on. */
export function markPrepared(connection: object, statements: ReadonlyArray<{ prepared?: PreparedStatement | undefined }>) {
  let known = preparedOn.get(connection);
  for (const { prepared } of statements) {
    if (!prepared) continue;
    if (!known) {
      known = new Set();
      preparedOn.set(connection, known);
    }
    known.add(prepared.name);
  }
}
