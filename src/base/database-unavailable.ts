/**
 * The one rule for "the database can't be reached right now": the error boundary answers such an
 * error with 503 and Retry-After (errors.ts), the OpenID Provider's endpoints likewise
 * (oidc/outage.ts), group commit fails a whole batch at once instead of retrying its writes one
 * by one, and the tenant cache keeps serving what it last read. Anything else — a constraint, a
 * bug — stays what it is.
 *
 * It knows PostgreSQL and node-postgres, not any domain, so it sits in base/ beside
 * `isUniqueViolation`.
 */

/** Socket errors of a connection that could not be opened or was lost. */
const SOCKET_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'EADDRNOTAVAIL',
  'EAI_AGAIN',
  'ENOTFOUND',
]);

/**
 * SQLSTATEs the server answers while it can't serve: class 08 (connection exception) is matched
 * by its prefix; 57P01 admin_shutdown (a fast shutdown or pg_terminate_backend), 57P02
 * crash_shutdown, 57P03 cannot_connect_now (starting up, shutting down, in recovery), 53300
 * too_many_connections, 57014 query_canceled (DATABASE_STATEMENT_TIMEOUT_MS passed: a lock held
 * elsewhere, an overloaded server; Tessera cancels nothing else).
 */
const SQLSTATES = new Set(['57P01', '57P02', '57P03', '53300', '57014']);

/**
 * node-postgres reports a lost or unopenable connection as a plain Error with only a message:
 * the connection ended under a query, the pool's wait for a connection passed
 * `connectionTimeoutMillis`, a client's connect timed out, a query went to a dead client, or the
 * pool is closing (the app is stopping).
 */
const DRIVER_MESSAGES = [
  /^Connection terminated\b/,
  /^timeout exceeded when trying to connect$/,
  /^timeout expired$/,
  /^Client has encountered a connection error and is not queryable$/,
  /^Client was closed and is not queryable$/,
  /^Cannot use a pool after calling end on the pool$/,
];

export function isDatabaseUnavailable(err: unknown): boolean {
  return unavailable(err, 0);
}

function unavailable(err: unknown, depth: number): boolean {
  if (depth > 2 || typeof err !== 'object' || err === null) return false;
  const e = err as { code?: unknown; message?: unknown; errors?: unknown };
  if (typeof e.code === 'string') {
    if (SOCKET_CODES.has(e.code) || SQLSTATES.has(e.code) || /^08[0-9A-Z]{3}$/.test(e.code)) return true;
  }
  if (typeof e.message === 'string' && DRIVER_MESSAGES.some((m) => m.test(e.message as string))) return true;
  // Node reports a failed connect to a host with several addresses as an AggregateError. An
  // error's `cause` is not followed: a failed outbound fetch (an IdP's metadata) carries a socket
  // error there, and that is no database outage. Whoever wraps a database error unwraps it.
  return Array.isArray(e.errors) && e.errors.some((inner) => unavailable(inner, depth + 1));
}
