/**
 * What one access-log line costs, formatted and written to stdout, one line per event-loop turn
 * (as requests come):
 *
 *   node --import tsx bench/diag/log-line.ts > /dev/null           # stdout /dev/null, as the benchmark runs
 *   node --import tsx bench/diag/log-line.ts | cat > /dev/null     # stdout a pipe, as in a container
 *
 * Prints, to stderr, CPU µs per line (user + system, every thread of the process: the thread
 * pool's writes count) over an empty event-loop turn, for the line as Tessera writes it
 * (src/http/request-context.ts) and as it wrote it before: a child logger per request, pino's
 * redaction over every field, pino's default stdout (an asynchronous write on the thread pool for
 * each line when none is under way). Each variant runs in a process of its own.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { createLogger, withoutRedaction } from '../../src/base/logger.ts';

const LINES = 100_000;
const line = (i: number) => ({ method: 'POST', path: '/t/bench/token', status: 200, ms: i % 7 });
const requestId = (i: number) => `3f1e2a4b-1c2d-4e5f-8a9b-${String(i).padStart(12, '0')}`;

const VARIANTS: Record<string, () => (i: number) => void> = {
  'empty turn': () => () => {},
  // The line before: pino's default destination, redaction, a child per request.
  before: () => {
    const log = pino(
      {
        level: 'info',
        base: { service: 'tessera' },
        redact: {
          paths: [
            'req.headers.authorization',
            'req.headers.cookie',
            'res.headers["set-cookie"]',
            '*.password',
            '*.client_secret',
            '*.admin_api_key',
            '*.token',
          ],
          censor: '[redacted]',
        },
      },
      pino.destination({ dest: 1, minLength: 0 }),
    );
    return (i) => log.child({ requestId: requestId(i) }).info(line(i), 'request');
  },
  now: () => {
    const log = withoutRedaction(createLogger('info'));
    return (i) => log.info({ requestId: requestId(i), ...line(i) }, 'request');
  },
};

async function measure(fn: (i: number) => void): Promise<number> {
  const turn = () => new Promise((resolve) => setImmediate(resolve));
  for (let i = 0; i < 10_000; i++) {
    fn(i);
    await turn();
  }
  const before = process.cpuUsage();
  for (let i = 0; i < LINES; i++) {
    fn(i);
    await turn();
  }
  await new Promise((resolve) => setTimeout(resolve, 100)); // writes under way finish in the count
  const used = process.cpuUsage(before);
  return (used.user + used.system) / LINES;
}

const variant = process.argv[2];
if (variant) {
  const us = await measure(VARIANTS[variant]!());
  process.stderr.write(`${JSON.stringify({ variant, us })}\n`);
} else {
  // The parent: each variant in a child process whose stdout is this one's.
  const results = new Map<string, number[]>();
  for (let round = 0; round < 3; round++) {
    for (const name of Object.keys(VARIANTS)) {
      const r = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), name], {
        stdio: ['ignore', 'inherit', 'pipe'],
        encoding: 'utf8',
      });
      const { us } = JSON.parse(r.stderr.trim().split('\n').at(-1)!);
      results.set(name, [...(results.get(name) ?? []), us]);
    }
  }
  const empty = Math.min(...results.get('empty turn')!);
  for (const [name, runs] of results) {
    if (name === 'empty turn') continue;
    const perLine = runs.map((us) => (us - empty).toFixed(1)).join(', ');
    process.stderr.write(`${name}: ${perLine} µs of CPU per line (3 runs; an empty turn ${empty.toFixed(1)} µs)\n`);
  }
}
