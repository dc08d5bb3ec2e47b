import pino, { type DestinationStream, type Logger } from 'pino';

export type { Logger };

/** Lines for a pipe or a file wait in memory until they add up to this, or for `FLUSH_EVERY_MS`. */
const BUFFER_BYTES = 4096;
const FLUSH_EVERY_MS = 1000;

/**
 * Structured JSON logs. Anything that could carry a secret is redacted at the source.
 *
 * Without a `destination` they go to standard output ({@link standardOutput}); a destination a
 * caller passes (tests capture lines with one) is written to at each line, as pino does.
 */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'tessera' },
      serializers: { err: loggedError },
      redact: {
        paths: ['req.headers.authorization', 'req.headers.cookie', 'res.headers["set-cookie"]', '*.password', '*.client_secret', '*.admin_api_key', '*.token'],
        censor: '[redacted]',
      },
    },
    destination ?? standardOutput(),
  );
}

/**
 * The fields of an error that explain it: PostgreSQL's (code, constraint, table …; not `detail`,
 * which quotes the row's values — an email, say), Node's system errors' (syscall, address …) and
 * an HTTP status. An error carries more than that —
 * node-postgres hangs the whole client on a lost connection's error (its connection parameters
 * and cancel key), a fetch error its request — and the default serializer writes every one.
 */
const ERROR_FIELDS = [
  'code',
  'hint',
  'severity',
  'routine',
  'constraint',
  'table',
  'column',
  'schema',
  'errno',
  'syscall',
  'address',
  'port',
  'status',
  'statusCode',
];

/** An error as a log line shows it: its type, message, stack, the fields above, and its causes. */
export function loggedError(err: unknown, depth = 0): unknown {
  if (!(err instanceof Error)) return err;
  const shown: Record<string, unknown> = { type: err.name, message: err.message, stack: err.stack };
  for (const field of ERROR_FIELDS) {
    const value = (err as unknown as Record<string, unknown>)[field];
    if (value !== undefined && (typeof value !== 'object' || value === null)) shown[field] = value;
  }
  if (depth < 3) {
    if (err.cause !== undefined) shown.cause = loggedError(err.cause, depth + 1);
    if (err instanceof AggregateError) shown.errors = err.errors.slice(0, 5).map((e) => loggedError(e, depth + 1));
  }
  return shown;
}

/**
 * A logger for lines whose fields are fixed and carry no secret — the access line: request id,
 * method, path without its query, status, duration. pino's redaction runs its wildcard paths
 * (`*.password`) over every field of every line, cloning and serializing each one apart: it was
 * over half of what an access line cost, and it never matched any of these fields.
 */
export function withoutRedaction(log: Logger): Logger {
  return log.child({}, { redact: [] });
}

let stdout: ReturnType<typeof pino.destination> | undefined;

/**
 * Standard output, one for the process. A terminal gets every line at once. A pipe or a file
 * gets them in writes of 4 KB, or whatever a second gathered: one write per ~30 lines instead of
 * one per line. The writes are synchronous, so no write is ever on its way when the process ends:
 * pino's asynchronous destination hands each write to libuv's thread pool (a thread wake-up per
 * write, and at `process.exit` the write in flight may never happen). What is buffered is written
 * out on `exit` — after `process.exit`, the end of the event loop, an uncaught exception or an
 * unhandled rejection — and by `logger.fatal`. Only a kill (SIGKILL, V8 out of memory) loses the
 * last second.
 */
function standardOutput() {
  if (stdout) return stdout;
  const terminal = process.stdout.isTTY === true;
  const destination = pino.destination({ dest: 1, sync: true, ...(terminal ? {} : { minLength: BUFFER_BYTES, periodicFlush: FLUSH_EVERY_MS }) });
  process.on('exit', () => {
    try {
      destination.flushSync();
    } catch {
      // stdout is gone (EPIPE): there is nobody left to tell.
    }
  });
  stdout = destination;
  return destination;
}
