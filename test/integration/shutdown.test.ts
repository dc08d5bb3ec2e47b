import { type ChildProcessByStdio, execFile, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { promisify } from 'node:util';
import test from 'ava';
import { adminApi, createTenant, freePort, startTestApp } from '../helpers/app.ts';
import { createTestDatabase, serverUrl } from '../helpers/database.ts';

/** The real CLI process on PostgreSQL (the CLI's tenant command and the server share the database). */
const onPostgres = serverUrl() ? test : test.skip;

const BIN = new URL('../../bin/tessera.js', import.meta.url).pathname;
const run = promisify(execFile);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Server = ChildProcessByStdio<null, Readable, Readable>;

async function startServer(
  env: Record<string, string>,
): Promise<{ server: Server; base: string; stdout: () => string; exited: Promise<{ code: number | null; at: number }> }> {
  const server = spawn(process.execPath, [BIN, 'start'], { env: { ...process.env, LOG_LEVEL: 'info', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  server.stdout.on('data', (c) => (out += c));
  server.stderr.on('data', (c) => (out += c));
  const exited = new Promise<{ code: number | null; at: number }>((resolve) => server.once('exit', (code) => resolve({ code, at: Date.now() })));
  const base = `http://127.0.0.1:${env.PORT}`;
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`${base}/readyz`)).ok) break;
    } catch {}
    if (i > 150) throw new Error(`the server did not become ready:\n${out}`);
    await sleep(200);
  }
  return { server, base, stdout: () => out, exited };
}

/** A tenant made with the CLI, and a machine client of it made through the Admin API. */
async function machineClient(base: string, env: Record<string, string>) {
  const created = await run(process.execPath, [BIN, 'tenant', 'create', '--slug', 'acme', '--name', 'Acme', '--json'], {
    env: { ...process.env, LOG_LEVEL: 'warn', ...env },
  });
  const { admin_api_key: key } = JSON.parse(created.stdout);
  const res = await fetch(`${base}/t/acme/api/v1/admin/clients`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'machine', grant_types: ['client_credentials'], scopes: ['admin'] }),
  });
  const client = await res.json();
  return `Basic ${Buffer.from(`${encodeURIComponent(client.client_id)}:${encodeURIComponent(client.client_secret)}`).toString('base64')}`;
}

onPostgres(
  'SIGTERM under load: /readyz turns 503 while traffic is still served, then the listener closes, and not one request fails; exit 0 within the grace and a bound',
  async (tt) => {
    const db = await createTestDatabase();
    const graceMs = 1500;
    const env = {
      DATABASE_URL: db.url,
      PORT: String(await freePort()),
      HOST: '127.0.0.1',
      DATA_DIR: mkdtempSync(join(tmpdir(), 'tessera-drain-')),
      SEED_DEMO: 'false',
      SHUTDOWN_GRACE_MS: String(graceMs),
    };
    const { server, base, stdout, exited } = await startServer(env);
    try {
      const basic = await machineClient(base, env);

      // The balancer: polls /readyz every 100 ms, and sends traffic only while the last poll said ready.
      const polls: Array<{ at: number; status: number | 'refused' }> = [];
      let ready = true;
      let balancing = true;
      const balancer = (async () => {
        while (balancing) {
          try {
            const res = await fetch(`${base}/readyz`);
            await res.arrayBuffer();
            polls.push({ at: Date.now(), status: res.status });
            ready = res.status === 200;
          } catch {
            polls.push({ at: Date.now(), status: 'refused' });
            ready = false;
          }
          await sleep(100);
        }
      })();

      // The traffic: discovery and client-credentials tokens, from four clients at once.
      const outcomes: Array<{ at: number; what: string; status: number | string }> = [];
      let sending = true;
      const worker = async () => {
        for (let i = 0; sending; i++) {
          if (!ready) {
            await sleep(20);
            continue;
          }
          const token = i % 2 === 0;
          try {
            const res = token
              ? await fetch(`${base}/t/acme/token`, {
                  method: 'POST',
                  headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' },
                  body: 'grant_type=client_credentials&scope=admin',
                })
              : await fetch(`${base}/t/acme/.well-known/openid-configuration`);
            const body = await res.text();
            outcomes.push({
              at: Date.now(),
              what: token ? 'token' : 'discovery',
              status: res.status === 200 && body.length > 0 ? 200 : `${res.status} ${body.slice(0, 200)}`,
            });
          } catch (err) {
            outcomes.push({ at: Date.now(), what: token ? 'token' : 'discovery', status: String((err as Error & { cause?: Error }).cause ?? err) });
          }
        }
      };
      const workers = [worker(), worker(), worker(), worker()];

      await sleep(1000);
      const servedBefore = outcomes.length;
      const signalledAt = Date.now();
      server.kill('SIGTERM');

      // While draining, a request sent anyway (a client that has not heard yet) is still served.
      await sleep(300);
      const late = await fetch(`${base}/t/acme/.well-known/openid-configuration`);
      tt.is(late.status, 200, 'a new request during the grace is served');
      tt.is(late.headers.get('connection'), 'close', 'and its connection is closed after the answer');

      const { code, at: exitedAt } = await exited;
      await sleep(400); // the balancer sees the port closed
      balancing = false;
      sending = false;
      await Promise.all([balancer, ...workers]);

      tt.is(code, 0, stdout());
      tt.true(servedBefore > 20, `traffic ran before the signal (${servedBefore} requests)`);
      const failed = outcomes.filter((o) => o.status !== 200);
      tt.deepEqual(failed, [], 'every request was answered 200');
      tt.true(
        outcomes.some((o) => o.at > signalledAt),
        'requests were still sent and served after the signal',
      );

      const firstDraining = polls.find((p) => p.status === 503 && p.at > signalledAt);
      const firstRefused = polls.find((p) => p.status === 'refused');
      tt.truthy(firstDraining, '/readyz answered 503');
      tt.truthy(firstRefused, 'the listener closed while the balancer polled');
      tt.true(firstDraining!.at < firstRefused!.at, '503 before the listener closed');
      tt.true(firstRefused!.at - signalledAt >= graceMs - 150, `the listener stayed open for the grace (${firstRefused!.at - signalledAt} ms)`);
      tt.true(
        polls.filter((p) => p.at >= firstDraining!.at && p.at < firstRefused!.at).every((p) => p.status === 503),
        'from the first 503 on, only 503 until the listener closed',
      );
      tt.true(firstDraining!.at - signalledAt < graceMs, `503 came ${firstDraining!.at - signalledAt} ms after the signal`);
      tt.true(exitedAt - signalledAt < graceMs + 5000, `exited ${exitedAt - signalledAt} ms after the signal`);

      // Each phase is in the log.
      const log = stdout();
      for (const phase of [
        'shutting down: draining first',
        'draining: /readyz answers 503',
        'closing the listener',
        'every request in flight finished',
        'database closed; stopped',
      ]) {
        tt.true(log.includes(phase), `logged: ${phase}`);
      }
    } finally {
      server.kill('SIGKILL');
      await exited;
      await db.drop();
    }
  },
);

onPostgres('a second signal during the grace ends it at once', async (tt) => {
  const db = await createTestDatabase();
  const env = {
    DATABASE_URL: db.url,
    PORT: String(await freePort()),
    HOST: '127.0.0.1',
    DATA_DIR: mkdtempSync(join(tmpdir(), 'tessera-drain-')),
    SEED_DEMO: 'false',
    SHUTDOWN_GRACE_MS: '600000',
  };
  const { server, base, stdout, exited } = await startServer(env);
  try {
    server.kill('SIGTERM');
    for (let i = 0; (await fetch(`${base}/readyz`)).status !== 503; i++) {
      if (i > 50) throw new Error('never draining');
      await sleep(50);
    }
    tt.is((await fetch(`${base}/healthz`)).status, 200, 'still alive while draining');
    const again = Date.now();
    server.kill('SIGINT');
    const { code, at } = await exited;
    tt.is(code, 0, stdout());
    tt.true(at - again < 5000, `stopped ${at - again} ms after the second signal`);
    tt.true(stdout().includes('second signal: ending the grace now'));
  } finally {
    server.kill('SIGKILL');
    await exited;
    await db.drop();
  }
});

test('drain(): /readyz answers 503 draining, while /healthz and every other request are served, each closing its connection', async (tt) => {
  const t = await startTestApp();
  try {
    const tenant = await createTenant(t);
    tt.is((await fetch(`${t.url}/readyz`)).status, 200);
    t.app.drain();
    const readyz = await fetch(`${t.url}/readyz`);
    tt.is(readyz.status, 503);
    tt.deepEqual(await readyz.json(), { status: 'draining' });
    tt.is((await fetch(`${t.url}/healthz`)).status, 200);
    const users = await adminApi(t, tenant, 'GET', '/users');
    tt.is(users.status, 200);
    tt.is(users.headers.get('connection'), 'close');
    const discovery = await fetch(`${tenant.issuer}/.well-known/openid-configuration`);
    tt.is(discovery.status, 200);
    tt.is(discovery.headers.get('connection'), 'close');
  } finally {
    await t.stop();
  }
});

test('a request in flight when the listener closes still completes; new connections are refused; stop() resolves after it', async (tt) => {
  const t = await startTestApp();
  const tenant = await createTenant(t);
  const port = Number(new URL(t.url).port);
  const body = JSON.stringify({ name: 'Created while stopping' });
  const half = Math.floor(body.length / 2);
  // The request's headers and half its body now; the rest once the listener is closed.
  const req = request({
    host: '127.0.0.1',
    port,
    method: 'POST',
    path: `/t/${tenant.slug}/api/v1/admin/organizations`,
    headers: { authorization: `Bearer ${tenant.adminKey}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
  });
  const answered = new Promise<{ status: number; body: string }>((resolve, reject) => {
    req.on('response', (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode!, body: text }));
    });
    req.on('error', reject);
  });
  req.write(body.slice(0, half));
  await sleep(200);

  let stopped = false;
  const stopping = t.app.stop(10_000).then(() => {
    stopped = true;
  });
  // The listener is closed once a new connection is refused.
  for (let i = 0; ; i++) {
    const refused = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(false);
      });
      socket.once('error', () => resolve(true));
    });
    if (refused) break;
    if (i > 100) throw new Error('the listener never closed');
    await sleep(20);
  }
  tt.false(stopped, 'stop() waits for the request in flight');
  req.end(body.slice(half));
  const res = await answered;
  tt.is(res.status, 201, res.body);
  tt.is(JSON.parse(res.body).name, 'Created while stopping');
  await stopping;
  tt.true(stopped);
  await t.stop(); // a second stop is harmless; it also drops the test database
});
