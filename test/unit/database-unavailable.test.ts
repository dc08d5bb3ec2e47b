import test from 'ava';
import { isDatabaseUnavailable } from '../../src/base/database-unavailable.ts';

const withCode = (code: string, message = 'x') => Object.assign(new Error(message), { code });

test('a connection refused, reset or timed out, and node-postgres lost-connection errors, are the database being unavailable', (t) => {
  for (const code of ['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN']) {
    t.true(isDatabaseUnavailable(withCode(code)), code);
  }
  for (const message of [
    'Connection terminated unexpectedly',
    'Connection terminated due to connection timeout',
    'Connection terminated',
    'timeout exceeded when trying to connect',
    'Client has encountered a connection error and is not queryable',
    'Cannot use a pool after calling end on the pool',
  ]) {
    t.true(isDatabaseUnavailable(new Error(message)), message);
  }
  // Node's connect to a host with several addresses (::1 and 127.0.0.1) fails as an AggregateError.
  t.true(isDatabaseUnavailable(Object.assign(new AggregateError([withCode('ECONNREFUSED'), withCode('ECONNREFUSED')]), { code: 'ECONNREFUSED' })));
  t.true(isDatabaseUnavailable(new AggregateError([new Error('unrelated'), withCode('ECONNREFUSED')])));
});

test('PostgreSQL shutting down, starting up, out of connections, a statement past DATABASE_STATEMENT_TIMEOUT_MS, or any connection exception (class 08) is unavailable', (t) => {
  for (const code of ['57P01', '57P02', '57P03', '53300', '57014', '08000', '08003', '08006', '08001', '08004', '08P01']) {
    t.true(isDatabaseUnavailable(withCode(code)), code);
  }
});

test('anything else is not: constraint violations, syntax errors, bugs, outbound fetch failures, non-errors', (t) => {
  for (const code of ['23505', '23503', '42601', '40001', '22P02', 'ERR_INVALID_ARG_TYPE', '0800', '080000']) {
    t.false(isDatabaseUnavailable(withCode(code)), code);
  }
  t.false(isDatabaseUnavailable(new Error('Connection to the IdP terminated unexpectedly')));
  t.false(isDatabaseUnavailable(new TypeError("Cannot read properties of undefined (reading 'id')")));
  // A failed outbound fetch keeps its socket error in `cause`: that is no database outage.
  t.false(isDatabaseUnavailable(new TypeError('fetch failed', { cause: withCode('ECONNREFUSED') })));
  for (const value of [undefined, null, 'ECONNREFUSED', 503, { code: 57 }]) t.false(isDatabaseUnavailable(value));
  // Nested without end: answered, not a stack overflow.
  const deep: { errors: unknown[] } = { errors: [] };
  deep.errors.push(deep);
  t.false(isDatabaseUnavailable(deep));
});
