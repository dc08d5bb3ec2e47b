import { Writable } from 'node:stream';
import test from 'ava';
import { createLogger } from '../../src/base/logger.ts';

function capture() {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk, _encoding, done) {
      lines.push(String(chunk));
      done();
    },
  });
  return { log: createLogger('info', destination as never), lines };
}

test("a logged error shows its type, message, stack, code and cause, and nothing else a library hung on it (a driver's client, its cancel key)", (t) => {
  const { log, lines } = capture();
  const lost = Object.assign(new Error('Connection terminated unexpectedly'), {
    code: 'ECONNRESET',
    client: { processID: 4242, secretKey: 987654321, connectionParameters: { user: 'tessera', database: 'tessera' } },
    cause: Object.assign(new Error('read ECONNRESET'), { syscall: 'read', errno: -104, socket: { remoteAddress: '10.0.0.5' } }),
  });
  log.warn({ err: lost }, 'a database connection was lost while idle');
  const line = JSON.parse(lines[0]!);
  t.like(line.err, {
    type: 'Error',
    message: 'Connection terminated unexpectedly',
    code: 'ECONNRESET',
    cause: { message: 'read ECONNRESET', syscall: 'read', errno: -104 },
  });
  t.regex(line.err.stack, /Connection terminated unexpectedly/);
  for (const hidden of ['secretKey', '987654321', 'processID', 'connectionParameters', 'remoteAddress']) t.false(lines[0]!.includes(hidden), hidden);
});

test("a PostgreSQL error keeps the fields that explain it, not the row's values", (t) => {
  const { log, lines } = capture();
  const violation = Object.assign(new Error('duplicate key value violates unique constraint "users_email_key"'), {
    code: '23505',
    detail: 'Key (email_key)=(a@b.c) already exists.',
    constraint: 'users_email_key',
    table: 'users',
  });
  log.error({ err: violation }, 'unhandled error');
  t.like(JSON.parse(lines[0]!).err, { code: '23505', constraint: 'users_email_key', table: 'users' });
  t.false(lines[0]!.includes('a@b.c'));
});
