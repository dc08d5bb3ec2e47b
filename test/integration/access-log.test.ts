import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { adminApi, captureLogs, createTenant, freePort, startTestApp, webClient } from '../helpers/app.ts';
import { createTestDatabase, serverUrl } from '../helpers/database.ts';

const FIXTURE = new URL('../fixtures/log-then-end.ts', import.meta.url).pathname;
const BIN = new URL('../../bin/tessera.js', import.meta.url).pathname;

/** Runs the fixture with its stdout a pipe; resolves with its exit and the JSON lines it wrote. */
function logThenEnd(how: string, lines: number) {
  const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE, how, String(lines)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (c) => (out += c));
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => child.once('close', (code, signal) => resolve({ code, signal })));
  return {
    child,
    exited,
    lines: () =>
      out
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l)),
  };
}

async function waitFor(predicate: () => boolean, what: string, ms = 15_000) {
  for (const deadline = Date.now() + ms; !predicate(); ) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const sequence = (n: number) => Array.from({ length: n }, (_, i) => i);

const EXIT_CODES = { exit: 3, throw: 1, reject: 1, end: 0 };
for (const [how, exitCode] of Object.entries(EXIT_CODES)) {
  test(`every buffered line reaches stdout, whole and in order, when the process ends by ${how}`, async (tt) => {
    const run = logThenEnd(how, 500);
    const { code } = await run.exited;
    tt.is(code, exitCode);
    const lines = run.lines();
    tt.deepEqual(
      lines.map((l) => l.i),
      sequence(500),
    );
    tt.true(lines.every((l) => l.msg === 'line' && l.service === 'tessera'));
  });
}

test('logger.fatal writes what is buffered at once: nothing is lost even when no exit handler runs', async (tt) => {
  const run = logThenEnd('fatal', 10);
  tt.is((await run.exited).signal, 'SIGKILL');
  const lines = run.lines();
  tt.deepEqual(
    lines.filter((l) => l.msg === 'line').map((l) => l.i),
    sequence(10),
  );
  tt.is(lines.at(-1)?.msg, 'the last words');
});

test('a line in a quiet process reaches stdout within about a second, without waiting for 4 KB', async (tt) => {
  const run = logThenEnd('stay', 1);
  try {
    await waitFor(() => run.lines().length === 1, 'the one line');
    tt.is(run.lines()[0].i, 0);
  } finally {
    run.child.kill('SIGKILL');
  }
});

test('the access line: one per request, its request id, the path with its tenant and without a query or a one-time token', async (tt) => {
  const logs = captureLogs('info');
  const t = await startTestApp({ log: logs.log });
  try {
    const tenant = await createTenant(t);
    await adminApi(t, tenant, 'POST', '/clients', webClient());
    const ours = await fetch(`${t.url}/t/${tenant.slug}/.well-known/openid-configuration?x=secret-query`, { headers: { 'x-request-id': 'trace-42.a' } });
    tt.is(ours.headers.get('x-request-id'), 'trace-42.a');
    const forged = await fetch(`${t.url}/healthz`, { headers: { 'x-request-id': '<script>"' } });
    const forgedId = forged.headers.get('x-request-id')!;
    tt.regex(forgedId, /^[0-9a-f-]{36}$/, 'an id that is not plain text is replaced');

    const token = 'tok_Zq3xVb8mN2pL5wR7yT1uC4eH6jK9sD0fG';
    const secretPaths = [
      `/t/${tenant.slug}/invitations/${token}`,
      `/t/${tenant.slug}/account/reset-password/${token}`,
      `/t/${tenant.slug}/account/verify-email/${token}`,
      `/t/${tenant.slug}/sso/link/confirm/${token}`,
    ];
    for (const path of secretPaths) await fetch(`${t.url}${path}`);
    await fetch(`${t.url}/t/${tenant.slug}/account/reset-password/${token}`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: t.url },
      body: 'password=another+long+password',
    });

    const requests = logs.lines().filter((l) => l.msg === 'request');
    const discovery = requests.find((l) => l.requestId === 'trace-42.a');
    tt.like(discovery, { level: 30, method: 'GET', path: `/t/${tenant.slug}/.well-known/openid-configuration`, status: 200 });
    tt.is(typeof discovery?.ms, 'number');
    tt.like(
      requests.find((l) => l.requestId === forgedId),
      { path: '/healthz', status: 200 },
    );
    const all = JSON.stringify(logs.lines());
    tt.false(all.includes(token), 'no one-time token from a path');
    tt.false(all.includes('secret-query'), 'no query string');
    tt.false(all.includes('<script>'));
    tt.deepEqual(
      requests.filter((l) => l.path.includes('[redacted]')).map((l) => `${l.method} ${l.path}`),
      [
        `GET /t/${tenant.slug}/invitations/[redacted]`,
        `GET /t/${tenant.slug}/account/reset-password/[redacted]`,
        `GET /t/${tenant.slug}/account/verify-email/[redacted]`,
        `GET /t/${tenant.slug}/sso/link/confirm/[redacted]`,
        `POST /t/${tenant.slug}/account/reset-password/[redacted]`,
      ],
    );
  } finally {
    await t.stop();
  }
});

test('the server: its start line, its request lines and its last line before process.exit all reach stdout', async (tt) => {
  const db = serverUrl() ? await createTestDatabase() : undefined;
  const port = await freePort();
  const env = {
    PORT: String(port),
    DATA_DIR: mkdtempSync(join(tmpdir(), 'tessera-log-')),
    DATABASE_URL: db?.url ?? '',
    SEED_DEMO: 'false',
    LOG_LEVEL: 'info',
    SHUTDOWN_GRACE_MS: '0',
  };
  const server = spawn(process.execPath, [BIN, 'start'], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  server.stdout.on('data', (c) => (out += c));
  const exited = new Promise<number | null>((resolve) => server.once('close', resolve));
  try {
    await waitFor(() => out.includes('Tessera is running'), 'the server', 60_000);
    for (const id of ['req-1', 'req-2', 'req-3']) await fetch(`http://localhost:${port}/healthz`, { headers: { 'x-request-id': id } });
    server.kill('SIGTERM');
    tt.is(await exited, 0);
    const lines = out
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l));
    const messages = lines.map((l) => (l.msg === 'request' ? `request ${l.requestId}` : l.msg.startsWith('shutting down') ? 'shutting down' : l.msg));
    tt.true(messages.includes('tessera listening'));
    tt.deepEqual(
      messages.filter((m) => m.startsWith('request req-') || m === 'shutting down'),
      ['request req-1', 'request req-2', 'request req-3', 'shutting down'],
    );
  } finally {
    server.kill('SIGKILL');
    await db?.drop();
  }
});
