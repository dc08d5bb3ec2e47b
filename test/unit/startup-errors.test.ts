import test from 'ava';
import { CliError, databaseLabel, explainDatabaseError, explainFileError, explainListenError, onDatabase, onListen } from '../../src/startup-errors.ts';

const URL_WITH_PASSWORD = 'postgres://tessera:s3cret-pw@db.internal:6543/idp';
const postgres = { databaseUrl: URL_WITH_PASSWORD, dataDir: '/srv/tessera' };
const embedded = { databaseUrl: undefined, dataDir: '/srv/tessera' };

/** An error as node's net and fs modules make them. */
function systemError(code: string, extra: Record<string, unknown> = {}): Error {
  return Object.assign(new Error(`${extra.syscall ?? 'connect'} ${code}`), { code, ...extra });
}

/** An error as node-postgres makes for what PostgreSQL answered. */
function databaseError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code, severity: 'FATAL' });
}

/** What db/migrate.ts throws: the migrator's error as the cause, no migration name before the first one ran. */
const migrationFailed = (cause: unknown, name = '') => new Error(`Migration ${name} failed: ${(cause as Error).message}`, { cause });

test('the database label keeps scheme, host, port and database, never the user or password', (t) => {
  t.is(databaseLabel(URL_WITH_PASSWORD), 'postgres://db.internal:6543/idp');
  t.is(databaseLabel('postgresql://u:p@localhost/x'), 'postgresql://localhost:5432/x');
  t.is(databaseLabel('not a url'), 'DATABASE_URL');
});

test('an unreachable database: one line naming the address, the code and DATABASE_URL, without the password', (t) => {
  for (const err of [
    migrationFailed(systemError('ECONNREFUSED')),
    new AggregateError([systemError('ECONNREFUSED'), systemError('ECONNREFUSED')], 'connect failed'),
    systemError('ETIMEDOUT'),
    new Error('Connection terminated unexpectedly'),
  ]) {
    const message = explainDatabaseError(err, postgres)!;
    t.regex(message, /^Cannot reach the database at postgres:\/\/db\.internal:6543\/idp \(/);
    t.regex(message, /Check DATABASE_URL\.$/);
    t.false(message.includes('s3cret-pw'));
    t.false(message.includes('\n'));
  }
  t.regex(explainDatabaseError(systemError('ENOTFOUND', { syscall: 'getaddrinfo' }), postgres)!, /\(ENOTFOUND\): its host name does not resolve/);
});

test('what PostgreSQL answers: a refused login, a missing database, a failed migration', (t) => {
  t.regex(
    explainDatabaseError(migrationFailed(databaseError('28P01', 'password authentication failed for user "tessera"')), postgres)!,
    /^The database at postgres:\/\/db\.internal:6543\/idp refused the login \(password authentication failed for user "tessera"\): check the user and password/,
  );
  t.regex(
    explainDatabaseError(databaseError('3D000', 'database "idp" does not exist'), postgres)!,
    /does not exist \(database "idp" does not exist\): create it/,
  );
  t.is(
    explainDatabaseError(migrationFailed(databaseError('42501', 'permission denied to create role'), '0001_foundation'), postgres),
    'The database at postgres://db.internal:6543/idp answered during migration 0001_foundation: permission denied to create role (SQLSTATE 42501).',
  );
});

test('a database migrated by a newer Tessera names the migration it does not know', (t) => {
  const message = explainDatabaseError(migrationFailed(new Error('corrupted migrations: previously executed migration 0099_future is missing')), embedded)!;
  t.regex(message, /^The embedded database in \/srv\/tessera was migrated by a newer version of Tessera: it has migration 0099_future/);
});

test('a file under DATA_DIR it may not write names the path and DATA_DIR', (t) => {
  const err = systemError('EACCES', { syscall: 'mkdir', path: '/srv/tessera/pgdata' });
  t.regex(explainDatabaseError(err, embedded)!, /^Cannot mkdir \/srv\/tessera\/pgdata \(EACCES\): Tessera keeps its files in DATA_DIR \(\/srv\/tessera\)/);
  t.regex(explainFileError(systemError('EROFS', { syscall: 'open', path: '/x/encryption.key' }))!, /^Cannot open \/x\/encryption\.key \(EROFS\): .*DATA_DIR/);
  t.is(explainFileError(new Error('no path')), undefined);
});

test('listening: a busy port, a privileged port, an address not of this machine, a host that does not resolve', (t) => {
  const where = { host: '0.0.0.0', port: 3000 };
  t.is(
    explainListenError(systemError('EADDRINUSE', { syscall: 'listen' }), where),
    'Port 3000 is in use on 0.0.0.0: another process listens there. Stop it, or set PORT to a free port.',
  );
  t.regex(
    explainListenError(systemError('EACCES', { syscall: 'listen' }), { host: '0.0.0.0', port: 80 })!,
    /port 80 needs privileges .* set PORT to 1024 or above/,
  );
  t.regex(explainListenError(systemError('EADDRNOTAVAIL'), { host: '192.0.2.1', port: 3000 })!, /^HOST=192\.0\.2\.1 is not an address of this machine/);
  t.regex(
    explainListenError(systemError('ENOTFOUND', { syscall: 'getaddrinfo' }), { host: 'nope.invalid', port: 3000 })!,
    /^HOST=nope\.invalid does not resolve/,
  );
});

test('errors no rule knows are left alone (they are bugs and keep their stack)', async (t) => {
  const bug = new TypeError('x is not a function');
  t.is(explainDatabaseError(bug, postgres), undefined);
  t.is(explainListenError(bug, { host: '0.0.0.0', port: 1 }), undefined);
  t.is(await t.throwsAsync(onDatabase(postgres, () => Promise.reject(bug))), bug);
  t.is(await t.throwsAsync(onListen({ host: 'h', port: 1 }, () => Promise.reject(bug))), bug);
  const known = await t.throwsAsync(
    onDatabase(postgres, () => Promise.reject(systemError('ECONNREFUSED'))),
    { instanceOf: CliError },
  );
  t.regex(known!.message, /^Cannot reach/);
  // An application error (which has a `code` too) is not taken for a database problem.
  t.is(explainDatabaseError(Object.assign(new Error('A tenant with slug "x" already exists.'), { code: 'conflict' }), postgres), undefined);
});
