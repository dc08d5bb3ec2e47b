/**
 * What stops a command before it can do its work — a database it can't reach, a port in use —
 * said to the operator in one line that names the cause and what to check, without a stack
 * trace. Errors no rule here recognises are left alone: those are bugs, and keep their stack.
 */

/** A problem already said for people: the command prints the message and exits with code 2. */
export class CliError extends Error {
  override name = 'CliError';
}

interface SystemError {
  code: string;
  syscall?: string;
  path?: string;
  message: string;
}

/** The error and what caused it, outermost first: `cause` chains and an AggregateError's errors. */
function causes(err: unknown): unknown[] {
  const seen: unknown[] = [];
  const queue = [err];
  while (queue.length && seen.length < 20) {
    const next = queue.shift();
    if (next === undefined || next === null || seen.includes(next)) continue;
    seen.push(next);
    if (next instanceof AggregateError) queue.push(...next.errors);
    if (next instanceof Error && next.cause !== undefined) queue.push(next.cause);
  }
  return seen;
}

const codeOf = (e: unknown): unknown => (e instanceof Error ? (e as { code?: unknown }).code : undefined);

const isSystemError = (e: unknown): e is SystemError => {
  const code = codeOf(e);
  return typeof code === 'string' && /^E[A-Z0-9_]+$/.test(code);
};

/** PostgreSQL's own errors carry a SQLSTATE and a severity (node-postgres's DatabaseError). */
const isDatabaseError = (e: unknown): e is Error & { code: string } =>
  typeof codeOf(e) === 'string' && typeof (e as { severity?: unknown }).severity === 'string';

/** `postgres://host:port/db`: enough to tell which database, never its user or password. */
export function databaseLabel(databaseUrl: string): string {
  try {
    const url = new URL(databaseUrl);
    return `${url.protocol}//${url.hostname || 'localhost'}:${url.port || '5432'}${url.pathname}`;
  } catch {
    return 'DATABASE_URL';
  }
}

const UNREACHABLE = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'EPIPE']);
const UNRESOLVED = new Set(['ENOTFOUND', 'EAI_AGAIN', 'EAI_FAIL', 'EAI_NONAME']);

export interface DatabaseSetting {
  databaseUrl: string | undefined;
  dataDir: string;
}

/** Connecting to, migrating or reading the database failed: why, in one line, or undefined. */
export function explainDatabaseError(err: unknown, where: DatabaseSetting): string | undefined {
  const all = causes(err);
  const file = explainFileError(err, where.dataDir);
  if (file) return file;
  const db = where.databaseUrl ? `the database at ${databaseLabel(where.databaseUrl)}` : `the embedded database in ${where.dataDir}`;

  const newer = all.map((e) => (e instanceof Error ? /previously executed migration (\S+) is missing/.exec(e.message) : null)).find(Boolean);
  if (newer) {
    return `${capitalize(db)} was migrated by a newer version of Tessera: it has migration ${newer[1]}, which this version does not know. Run that version or a newer one, or restore the backup taken before the upgrade.`;
  }
  const reordered = all.find((e) => e instanceof Error && /^corrupted migrations:/.test(e.message));
  if (reordered instanceof Error) return `The migrations recorded in ${db} do not match this version of Tessera's (${reordered.message}).`;

  const system = all.find(isSystemError);
  if (system && UNRESOLVED.has(system.code)) return `Cannot reach ${db} (${system.code}): its host name does not resolve. Check DATABASE_URL.`;
  if (system && UNREACHABLE.has(system.code)) return `Cannot reach ${db} (${system.code}): is PostgreSQL running there? Check DATABASE_URL.`;
  const terminated = all.find((e) => e instanceof Error && /^Connection terminated/.test(e.message));
  if (terminated instanceof Error) return `Cannot reach ${db} (${terminated.message.toLowerCase()}): is PostgreSQL running there? Check DATABASE_URL.`;

  const answered = all.find(isDatabaseError);
  if (answered) {
    const failedMigration = all.map((e) => (e instanceof Error ? /^Migration (\S+) failed/.exec(e.message) : null)).find(Boolean);
    const during = failedMigration ? ` during migration ${failedMigration[1]}` : '';
    if (answered.code === '28P01' || answered.code === '28000') {
      return `${capitalize(db)} refused the login (${answered.message}): check the user and password in DATABASE_URL.`;
    }
    if (answered.code === '3D000') return `${capitalize(db)} does not exist (${answered.message}): create it, or correct DATABASE_URL.`;
    return `${capitalize(db)} answered${during}: ${answered.message} (SQLSTATE ${answered.code}).`;
  }
  const ssl = all.find((e) => e instanceof Error && /\bSSL\b/i.test(e.message));
  if (ssl instanceof Error) return `Cannot connect to ${db}: ${ssl.message}. Check sslmode in DATABASE_URL.`;
  return undefined;
}

export interface ListenSetting {
  host: string;
  port: number;
}

/** The server could not listen: why, in one line, or undefined. */
export function explainListenError(err: unknown, where: ListenSetting): string | undefined {
  const system = causes(err).find(isSystemError);
  if (!system) return undefined;
  const { host, port } = where;
  switch (system.code) {
    case 'EADDRINUSE':
      return `Port ${port} is in use on ${host}: another process listens there. Stop it, or set PORT to a free port.`;
    case 'EACCES':
      return `Listening on port ${port} needs privileges this process lacks (EACCES): set PORT to 1024 or above, or run a proxy on port ${port}.`;
    case 'EADDRNOTAVAIL':
      return `HOST=${host} is not an address of this machine (EADDRNOTAVAIL): set HOST to one of its addresses, or 0.0.0.0 for all of them.`;
    default:
      if (UNRESOLVED.has(system.code))
        return `HOST=${host} does not resolve to an address (${system.code}): set HOST to an address of this machine, or 0.0.0.0.`;
      return `Cannot listen on ${host}:${port} (${system.code}): ${system.message}.`;
  }
}

/**
 * A file Tessera keeps under DATA_DIR (the embedded database, the generated encryption key)
 * could not be written or read. `dataDir` is unknown when the configuration itself failed.
 */
export function explainFileError(err: unknown, dataDir?: string): string | undefined {
  const file = causes(err).find((e): e is SystemError & { path: string } => isSystemError(e) && typeof e.path === 'string');
  if (!file) return undefined;
  const what = `Cannot ${file.syscall ?? 'use'} ${file.path} (${file.code})`;
  if (dataDir === undefined) return `${what}: check that this user may write there (DATA_DIR sets where Tessera keeps its files).`;
  return file.path.startsWith(dataDir)
    ? `${what}: Tessera keeps its files in DATA_DIR (${dataDir}); check that this user may write there, or set DATA_DIR.`
    : `${what}.`;
}

/** Runs a step that reads or writes the database; a failure of that kind becomes a CliError. */
export async function onDatabase<T>(where: DatabaseSetting, step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (err) {
    const message = explainDatabaseError(err, where);
    if (message) throw new CliError(message, { cause: err });
    throw err;
  }
}

/** Runs the step that binds the port; a failure to listen becomes a CliError. */
export async function onListen<T>(where: ListenSetting, step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (err) {
    const message = explainListenError(err, where);
    if (message) throw new CliError(message, { cause: err });
    throw err;
  }
}

const capitalize = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);
