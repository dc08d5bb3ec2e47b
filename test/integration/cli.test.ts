import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import test, { type ExecutionContext } from 'ava';
import * as oidc from 'openid-client';
import pLimit from 'p-limit';
import pg from 'pg';
import { environmentVariables } from '../../src/config.ts';
import { connect } from '../../src/db/connect.ts';
import { migrateToLatest } from '../../src/db/migrate.ts';
import { TenantService } from '../../src/tenants/tenant.service.ts';
import { adminApi, freePort, type TestApp, type TestTenant, webClient } from '../helpers/app.ts';
import { createTestDatabase, serverUrl } from '../helpers/database.ts';
import { type RegisteredClient, signIn } from '../helpers/oidc.ts';

/** Needs a PostgreSQL server (several processes on one database); CI always has one. */
const onPostgres = serverUrl() ? test : test.skip;

const run = promisify(execFile);
const BIN = new URL('../../bin/tessera.js', import.meta.url).pathname;

// Each command is a Node.js process loading the sources: two at a time keep a loaded 2-core machine responsive.
const slots = pLimit(2);

function tessera(args: string[], env: Record<string, string>) {
  return slots(() => runTessera(args, env));
}

async function runTessera(args: string[], env: Record<string, string>) {
  try {
    const r = await run(process.execPath, [BIN, ...args], { env: { ...process.env, LOG_LEVEL: 'warn', ...env }, timeout: 90_000 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

onPostgres('tenant create --json prints the contract object; the key works; keys rotate publishes a second key', async (tt) => {
  const db = await createTestDatabase();
  const port = await freePort();
  const env = {
    DATABASE_URL: db.url,
    PORT: String(port),
    DATA_DIR: mkdtempSync(join(tmpdir(), 'tessera-cli-')),
    SEED_DEMO: 'false',
    TENANT_CACHE_TTL_MS: '0',
    SHUTDOWN_GRACE_MS: '0',
  };
  const server = spawn(process.execPath, [BIN, 'start'], { env: { ...process.env, ...env, LOG_LEVEL: 'info' }, stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    const migrated = await tessera(['migrate'], env);
    tt.is(migrated.code, 0, migrated.stderr);
    const created = await tessera(
      ['tenant', 'create', '--slug', 'acme', '--name', 'Acme', '--admin-email', 'root@acme.test', '--admin-password', 'a long password!', '--json'],
      env,
    );
    tt.is(created.code, 0, created.stderr);
    const out = JSON.parse(created.stdout);
    tt.deepEqual(Object.keys(out).sort(), ['admin_api_key', 'issuer', 'tenant']);
    tt.deepEqual(Object.keys(out.tenant).sort(), ['id', 'name', 'slug']);
    tt.is(out.issuer, `http://localhost:${port}/t/acme`);
    tt.regex(out.admin_api_key, /^tsk_/);

    await waitForHealthy(`http://localhost:${port}`);
    const users = await fetch(`http://localhost:${port}/t/acme/api/v1/admin/users`, { headers: { authorization: `Bearer ${out.admin_api_key}` } });
    tt.is(users.status, 200);
    const body = await users.json();
    tt.is(body.data[0].email, 'root@acme.test');
    tt.true(body.data[0].tenant_admin);

    const dup = await tessera(['tenant', 'create', '--slug', 'acme', '--name', 'Again'], env);
    tt.is(dup.code, 2);
    tt.regex(dup.stderr, /already exists/);
    const bad = await tessera(['tenant', 'create', '--slug', 'Bad Slug!', '--name', 'x'], env);
    tt.is(bad.code, 2);
    tt.regex(bad.stderr, /slug/);

    const jwksBefore = await (await fetch(`http://localhost:${port}/t/acme/jwks`)).json();
    const rotated = await tessera(['keys', 'rotate', '--tenant', 'acme', '--alg', 'RS256'], env);
    tt.is(rotated.code, 0, rotated.stderr);
    const jwksAfter = await (await fetch(`http://localhost:${port}/t/acme/jwks`)).json();
    tt.is(jwksAfter.keys.length, jwksBefore.keys.length + 1);
    tt.is(jwksAfter.keys[0].kty, 'RSA');
    tt.true(
      jwksAfter.keys.some((k: { kid: string }) => k.kid === jwksBefore.keys[0].kid),
      'the old key is still published',
    );
    tt.false(JSON.stringify(jwksAfter).includes('"d"'), 'no private members in the JWKS');
    const unknown = await tessera(['keys', 'rotate', '--tenant', 'nope'], env);
    tt.is(unknown.code, 2);
  } finally {
    server.kill('SIGTERM');
    await new Promise((r) => server.once('exit', r));
    await db.drop();
  }
});

test('on the embedded database the CLI refuses, with a clear message, while a server holds DATA_DIR; the server stops gracefully', async (tt) => {
  const port = await freePort();
  const env = { PORT: String(port), DATA_DIR: mkdtempSync(join(tmpdir(), 'tessera-embedded-')), SHUTDOWN_GRACE_MS: '0' };
  const server = spawn(process.execPath, [BIN, 'start'], { env: { ...process.env, ...env, DATABASE_URL: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  server.stdout.on('data', (c) => (stdout += c));
  server.stderr.on('data', (c) => (stderr += c));
  try {
    await waitForHealthy(`http://localhost:${port}`);
    // The demo tenant is made once the server listens: its banner follows readiness.
    for (let i = 0; i < 600 && !/npx tessera sample-app/.test(stdout); i++) await new Promise((r) => setTimeout(r, 100));
    // First start on an empty database printed the demo tenant's key, admin credentials and sign-in URL.
    tt.regex(stdout, /Admin API key\s+tsk_/);
    tt.regex(stdout, /Admin user\s+admin@demo\.local\s+\/\s+\S+/);
    tt.regex(stdout, new RegExp(`http://localhost:${port}/t/demo`));
    const demoKey = /Admin API key\s+(tsk_\S+)/.exec(stdout)![1]!;
    const r = await fetch(`http://localhost:${port}/t/demo/api/v1/admin/clients`, { headers: { authorization: `Bearer ${demoKey}` } });
    tt.is(r.status, 200);

    const refused = await tessera(['tenant', 'create', '--slug', 'other', '--name', 'Other'], { ...env, DATABASE_URL: '' });
    tt.is(refused.code, 2);
    tt.regex(refused.stderr, /in use by another Tessera process/);
  } finally {
    server.kill('SIGTERM');
    const [code, signal] = await new Promise<[number | null, string | null]>((r) => server.once('exit', (c, s) => r([c, s])));
    tt.is(code, 0, `exit ${code}, signal ${signal}; stderr: ${stderr.slice(-2000)}`);
  }
  // With the server gone, the CLI works on the same DATA_DIR.
  const created = await tessera(['tenant', 'create', '--slug', 'other', '--name', 'Other', '--json'], { ...env, DATABASE_URL: '' });
  tt.is(created.code, 0, created.stderr);
  tt.is(JSON.parse(created.stdout).tenant.slug, 'other');
});

/** Up to two minutes: an embedded database runs every migration in WebAssembly first, slowly on a busy machine. */
async function waitForHealthy(base: string) {
  for (let i = 0; i < 600; i++) {
    try {
      if ((await fetch(`${base}/readyz`)).ok) return;
    } catch {}
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`server at ${base} did not become ready`);
}

const tempDir = () => mkdtempSync(join(tmpdir(), 'tessera-cli-'));

/** A start-up error as the operator should see it: exit code 2, one line (or a short paragraph), no stack frames. */
function saidInOneLine(tt: ExecutionContext, r: { code: number; stderr: string }, pattern: RegExp) {
  tt.is(r.code, 2, r.stderr);
  tt.regex(r.stderr, pattern);
  tt.notRegex(r.stderr, /^\s+at /m, 'no stack frames');
  tt.true(r.stderr.trim().split('\n').length <= 3, r.stderr);
}

/** `tessera start` as a child process whose output the test reads. */
function startServer(env: Record<string, string>): { child: ChildProcess; output: () => string; exited: Promise<number | null> } {
  const child = spawn(process.execPath, [BIN, 'start'], { env: { ...process.env, LOG_LEVEL: 'warn', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (c) => (out += c));
  child.stderr!.on('data', (c) => (out += c));
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  return { child, output: () => out, exited };
}

async function stop(server: { child: ChildProcess; exited: Promise<number | null> }) {
  if (server.child.exitCode === null) server.child.kill('SIGTERM');
  await server.exited;
}

async function waitForOutput(server: { output: () => string }, pattern: RegExp) {
  for (let i = 0; i < 1200 && !pattern.test(server.output()); i++) await new Promise((r) => setTimeout(r, 100));
  if (!pattern.test(server.output())) throw new Error(`no ${pattern} in:\n${server.output()}`);
}

/** What each command's --help must list. */
const COMMAND_OPTIONS: Record<string, string[]> = {
  start: [],
  migrate: [],
  'tenant create': ['--slug S', '--name N', '--admin-email E', '--admin-password P', '--alg ES256|RS256', '--json'],
  'tenant rotate-admin-key': ['--slug S', '--json'],
  'tenant reset-admin-password': ['--slug S', '--email E', '--password P', '--json'],
  'keys rotate': ['--tenant S', '--alg ES256|RS256'],
  'sample-app': ['--issuer URL', '--client-id ID', '--client-secret SECRET', '--port PORT'],
  help: [],
};

test('every command answers --help with its options, without a database or a valid environment', async (tt) => {
  // None of these may be read for --help.
  const broken = { PORT: 'eighty', DATABASE_URL: 'postgres://u:pw@127.0.0.1:1/x', TESSERA_ARGON2_BUILD: 'nonsense', DATA_DIR: tempDir() };
  const names = Object.keys(COMMAND_OPTIONS);
  const answers = await Promise.all(names.map((name) => tessera([...name.split(' '), '--help'], broken)));
  names.forEach((name, i) => {
    const r = answers[i]!;
    tt.is(r.code, 0, `${name}: ${r.stderr}`);
    tt.true(r.stdout.startsWith(`Usage: tessera ${name}`), r.stdout);
    for (const option of COMMAND_OPTIONS[name]!) tt.true(r.stdout.includes(option), `${name} --help lists ${option}`);
    tt.true(r.stdout.includes('-h, --help'));
  });
  const [general, help, helpOf, group, startHelp] = await Promise.all([
    tessera(['--help'], broken),
    tessera(['help'], broken),
    tessera(['help', 'tenant', 'reset-admin-password'], broken),
    tessera(['tenant', '--help'], broken),
    Promise.resolve(answers[names.indexOf('start')]!),
  ]);
  for (const r of [general, help, helpOf, group]) tt.is(r.code, 0, r.stderr);
  tt.is(help.stdout, general.stdout);
  tt.is(helpOf.stdout, answers[names.indexOf('tenant reset-admin-password')]!.stdout);
  tt.regex(group.stdout, /tessera tenant create[\s\S]*tessera tenant rotate-admin-key[\s\S]*tessera tenant reset-admin-password/);
  for (const name of names) tt.true(general.stdout.includes(`  ${name} `), `the general help names ${name}`);
  for (const v of environmentVariables()) {
    tt.regex(general.stdout, new RegExp(`^  ${v.name} .*\\[default: `, 'm'), `the general help lists ${v.name}`);
    tt.regex(startHelp.stdout, new RegExp(`^  ${v.name} .*\\[default: `, 'm'), `start --help lists ${v.name}`);
  }
});

test('unknown commands and bad options are refused in a line or two, exit code 2', async (tt) => {
  const env = { DATA_DIR: tempDir(), DATABASE_URL: '' };
  const nobodyListens = await freePort();
  const [unknown, group, option, missing, alg, sample] = await Promise.all([
    tessera(['frobnicate'], env),
    tessera(['tenant'], env),
    tessera(['tenant', 'rotate-admin-key', '--slug', 'a', '--bogus'], env),
    tessera(['tenant', 'reset-admin-password', '--slug', 'a'], env),
    tessera(['keys', 'rotate', '--tenant', 'a', '--alg', 'HS256'], env),
    tessera(['sample-app', '--issuer', `http://127.0.0.1:${nobodyListens}/t/demo`, '--client-id', 'x', '--port', '0'], env),
  ]);
  saidInOneLine(tt, sample, /^sample-app: fetch failed \(connect ECONNREFUSED/);
  saidInOneLine(tt, unknown, /^Unknown command: tessera frobnicate\. `tessera --help` lists the commands\./);
  tt.is(group.code, 2);
  tt.regex(group.stderr, /tessera tenant needs a command/);
  saidInOneLine(tt, option, /Unknown option '--bogus'[\s\S]*Usage: tessera tenant rotate-admin-key --slug S \[--json\]/);
  saidInOneLine(tt, missing, /^tessera tenant reset-admin-password needs --email\./);
  saidInOneLine(tt, alg, /^--alg must be ES256 or RS256\./);
});

const systemNode = (() => {
  try {
    return execFileSync('/usr/bin/node', ['--version'], { encoding: 'utf8' }).trim();
  } catch {
    return undefined;
  }
})();
const [systemMajor, systemMinor] = (systemNode ?? 'v0.0').slice(1).split('.').map(Number) as [number, number];
const systemNodeTooOld = systemNode !== undefined && (systemMajor < 22 || (systemMajor === 22 && systemMinor < 12));

// Needs an old Node.js at /usr/bin/node (Debian's is v20); the version check itself is unit-tested.
(systemNodeTooOld ? test : test.skip)('a Node.js older than 22.12 refuses to run, naming both versions and how to get a newer one', async (tt) => {
  const r = await run('/usr/bin/node', [BIN, '--help']).then(
    () => ({ code: 0, stderr: '' }),
    (e: { code: number; stderr: string }) => e,
  );
  saidInOneLine(
    tt,
    r,
    new RegExp(`^Tessera needs Node\\.js 22\\.12\\.0 or newer; this is Node\\.js ${systemNode!.replace(/\./g, '\\.')} \\(/usr/bin/node\\)\\..*nodejs\\.org`),
  );
});

test('an unreachable database: every command says so in one line, naming the address and never the password', async (tt) => {
  const env = { DATABASE_URL: 'postgres://tessera:pw-never-printed@127.0.0.1:1/tessera', PORT: '0', DATA_DIR: tempDir() };
  const commands = [
    ['start'],
    ['migrate'],
    ['tenant', 'create', '--slug', 'acme', '--name', 'Acme'],
    ['tenant', 'rotate-admin-key', '--slug', 'acme'],
    ['tenant', 'reset-admin-password', '--slug', 'acme', '--email', 'root@acme.test'],
    ['keys', 'rotate', '--tenant', 'acme'],
  ];
  const answers = await Promise.all(commands.map((c) => tessera(c, env)));
  answers.forEach((r, i) => {
    saidInOneLine(
      tt,
      r,
      /^Cannot reach the database at postgres:\/\/127\.0\.0\.1:1\/tessera \(ECONNREFUSED\): is PostgreSQL running there\? Check DATABASE_URL\.\n$/,
    );
    tt.false(`${r.stdout}${r.stderr}`.includes('pw-never-printed'), commands[i]!.join(' '));
  });
});

/** Holds a port as another program would. */
async function occupyPort(): Promise<{ port: number; server: Server }> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '0.0.0.0', resolve));
  return { port: (server.address() as { port: number }).port, server };
}

/** A fresh PostgreSQL database when the suite has a server (quicker to start on), else the embedded one. */
async function freshDatabase(): Promise<{ env: Record<string, string>; tenantSlugs(): Promise<string[] | undefined>; drop(): Promise<void> }> {
  if (!serverUrl()) return { env: { DATABASE_URL: '' }, tenantSlugs: async () => undefined, drop: async () => {} };
  const db = await createTestDatabase();
  return {
    env: { DATABASE_URL: db.url },
    async tenantSlugs() {
      const client = new pg.Client({ connectionString: db.url });
      await client.connect();
      try {
        return (await client.query('SELECT slug FROM tenants')).rows.map((r) => r.slug);
      } finally {
        await client.end();
      }
    },
    drop: () => db.drop(),
  };
}

test('a busy port stops start in one line before the demo tenant exists; a later start on a free port creates and prints it', async (tt) => {
  const db = await freshDatabase();
  const env = { ...db.env, DATA_DIR: tempDir() };
  const busy = await occupyPort();
  try {
    const refused = await tessera(['start'], { ...env, PORT: String(busy.port) });
    saidInOneLine(
      tt,
      refused,
      new RegExp(`^Port ${busy.port} is in use on 0\\.0\\.0\\.0: another process listens there\\. Stop it, or set PORT to a free port\\.`),
    );
    tt.notRegex(refused.stdout, /Admin API key|demo/, 'no secrets were made, none printed');
  } finally {
    busy.server.close();
  }
  const server = startServer({ ...env, PORT: String(await freePort()) });
  try {
    tt.deepEqual(await db.tenantSlugs(), serverUrl() ? [] : undefined, 'migrated, and no tenant');
    // The database was left without tenants: this start seeds it, and prints the secrets.
    await waitForOutput(server, /npx tessera sample-app/);
    tt.regex(server.output(), /A demo tenant was created/);
    const port = /Issuer\s+http:\/\/localhost:(\d+)\/t\/demo/.exec(server.output())![1];
    const key = /Admin API key\s+(tsk_\S+)/.exec(server.output())![1]!;
    tt.is((await fetch(`http://localhost:${port}/t/demo/api/v1/admin/clients`, { headers: { authorization: `Bearer ${key}` } })).status, 200);
  } finally {
    await stop(server);
    await db.drop();
  }
});

test('a HOST that is not an address of this machine, or does not resolve, stops start in one line', async (tt) => {
  const db = await freshDatabase();
  try {
    const env = { ...db.env, PORT: '0' };
    const [notMine, unresolved] = await Promise.all([
      tessera(['start'], { ...env, HOST: '192.0.2.1', DATA_DIR: tempDir() }),
      tessera(['start'], { ...env, HOST: 'no-such-host.invalid', DATA_DIR: tempDir() }),
    ]);
    saidInOneLine(tt, notMine, /^HOST=192\.0\.2\.1 is not an address of this machine \(EADDRNOTAVAIL\)/);
    saidInOneLine(tt, unresolved, /^HOST=no-such-host\.invalid does not resolve to an address \(E[A-Z_]+\)/);
  } finally {
    await db.drop();
  }
});

test('a TESSERA_ARGON2_BUILD that names no build stops every command in one paragraph naming the variable', async (tt) => {
  const env = { TESSERA_ARGON2_BUILD: 'x86-64-v9', DATA_DIR: tempDir(), DATABASE_URL: '' };
  const [started, migrated] = await Promise.all([tessera(['start'], { ...env, PORT: '0' }), tessera(['migrate'], env)]);
  for (const r of [started, migrated]) saidInOneLine(tt, r, /^Invalid environment:\n {2}TESSERA_ARGON2_BUILD: .*"auto"\|"portable"/);
});

onPostgres('a database migrated by a newer Tessera: start and migrate name the unknown migration in one line', async (tt) => {
  const db = await createTestDatabase();
  try {
    const env = { DATABASE_URL: db.url, PORT: '0', DATA_DIR: tempDir() };
    tt.is((await tessera(['migrate'], env)).code, 0);
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    await client.query(`INSERT INTO kysely_migration (name, timestamp) VALUES ('9999_from_the_future', now()::text)`);
    await client.end();
    const [started, migrated] = await Promise.all([tessera(['start'], env), tessera(['migrate'], env)]);
    for (const r of [started, migrated]) saidInOneLine(tt, r, /was migrated by a newer version of Tessera: it has migration 9999_from_the_future/);
  } finally {
    await db.drop();
  }
});

onPostgres('tenant rotate-admin-key: a new key works, the old one is refused at once', async (tt) => {
  const db = await createTestDatabase();
  const port = await freePort();
  const env = { DATABASE_URL: db.url, PORT: String(port), DATA_DIR: tempDir(), SEED_DEMO: 'false', TENANT_CACHE_TTL_MS: '0' };
  const server = startServer(env);
  try {
    const created = await tessera(['tenant', 'create', '--slug', 'acme', '--name', 'Acme', '--json'], env);
    tt.is(created.code, 0, created.stderr);
    const first = JSON.parse(created.stdout).admin_api_key as string;
    await waitForHealthy(`http://localhost:${port}`);
    const t = { url: `http://localhost:${port}` } as TestApp;
    const tenant = { slug: 'acme' } as TestTenant;
    tt.is((await adminApi(t, tenant, 'GET', '/users', undefined, first)).status, 200, 'the server has verified (and cached) the first key');

    const rotated = await tessera(['tenant', 'rotate-admin-key', '--slug', 'acme', '--json'], { ...env, LOG_LEVEL: 'info' });
    tt.is(rotated.code, 0, rotated.stderr);
    const out = JSON.parse(rotated.stdout);
    tt.deepEqual(Object.keys(out).sort(), ['admin_api_key', 'tenant']);
    tt.is(out.tenant.slug, 'acme');
    const second = out.admin_api_key as string;
    tt.regex(second, /^tsk_/);
    tt.not(second, first);
    tt.is((await adminApi(t, tenant, 'GET', '/users', undefined, first)).status, 401);
    tt.is((await adminApi(t, tenant, 'GET', '/users', undefined, second)).status, 200);
    // Logged (on stderr, so --json keeps stdout to itself), without the key.
    const logged = rotated.stderr
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l));
    tt.true(logged.some((l) => l.action === 'admin_api_key_rotated' && l.tenant === 'acme'));
    tt.false(rotated.stderr.includes(second));

    const again = await tessera(['tenant', 'rotate-admin-key', '--slug', 'acme'], env);
    tt.is(again.code, 0, again.stderr);
    const third = /Admin API key\s+(tsk_\S+)\s+\(shown once/.exec(again.stdout)![1]!;
    tt.is((await adminApi(t, tenant, 'GET', '/users', undefined, second)).status, 401);
    tt.is((await adminApi(t, tenant, 'GET', '/users', undefined, third)).status, 200);

    const [unknown, missing] = await Promise.all([
      tessera(['tenant', 'rotate-admin-key', '--slug', 'nope'], env),
      tessera(['tenant', 'rotate-admin-key'], env),
    ]);
    saidInOneLine(tt, unknown, /^There is no tenant "nope"\.\n$/);
    saidInOneLine(tt, missing, /^tessera tenant rotate-admin-key needs --slug\./);
    tt.is((await adminApi(t, tenant, 'GET', '/users', undefined, third)).status, 200, 'the refusals changed nothing');
  } finally {
    await stop(server);
    await db.drop();
  }
});

onPostgres('tenant reset-admin-password: signs the admin out, lifts the lock, the new password signs in; refuses a non-admin', async (tt) => {
  const db = await createTestDatabase();
  const port = await freePort();
  const base = `http://localhost:${port}`;
  const env = { DATABASE_URL: db.url, PORT: String(port), DATA_DIR: tempDir(), SEED_DEMO: 'false', TENANT_CACHE_TTL_MS: '0' };
  const server = startServer(env);
  try {
    const original = 'the original passphrase';
    const created = await tessera(
      ['tenant', 'create', '--slug', 'acme', '--name', 'Acme', '--admin-email', 'root@acme.test', '--admin-password', original, '--json'],
      env,
    );
    tt.is(created.code, 0, created.stderr);
    const out = JSON.parse(created.stdout);
    await waitForHealthy(base);
    const t = { url: base } as TestApp;
    const tenant: TestTenant = {
      id: out.tenant.id,
      slug: 'acme',
      issuer: out.issuer,
      adminKey: out.admin_api_key,
      adminEmail: 'root@acme.test',
      adminPassword: original,
    };
    const client: RegisteredClient = (await adminApi(t, tenant, 'POST', '/clients', webClient())).body;
    const memberPassword = 'a member passphrase';
    tt.is((await adminApi(t, tenant, 'POST', '/users', { email: 'member@acme.test', password: memberPassword, email_verified: true })).status, 201);
    // Every second failure locks the account for ten minutes.
    const settings = await adminApi(t, tenant, 'PATCH', '/settings', {
      brute_force: { max_login_failures: 2, wait_increment_seconds: 600, max_wait_seconds: 600 },
    });
    tt.is(settings.status, 200, settings.text);

    const before = await signIn(t, tenant, client);
    tt.truthy(before.tokens.refresh_token);
    for (let i = 0; i < 2; i++) await tt.throwsAsync(signIn(t, tenant, client, { password: 'a wrong passphrase' }));
    await tt.throwsAsync(signIn(t, tenant, client), undefined, 'locked: even the right password is refused');

    const reset = await tessera(['tenant', 'reset-admin-password', '--slug', 'acme', '--email', 'ROOT@acme.test', '--json'], { ...env, LOG_LEVEL: 'info' });
    tt.is(reset.code, 0, reset.stderr);
    const result = JSON.parse(reset.stdout);
    tt.deepEqual(Object.keys(result).sort(), ['password', 'tenant', 'user']);
    tt.is(result.user.email, 'root@acme.test');
    tt.true(result.password.length >= 20, 'a generated password is long');
    const logged = reset.stderr
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l));
    tt.true(logged.some((l) => l.action === 'admin_password_reset' && l.userId === result.user.id && l.generated === true));
    tt.false(reset.stderr.includes(result.password), 'the log does not carry the password');

    await tt.throwsAsync(oidc.refreshTokenGrant(before.config, before.tokens.refresh_token!), undefined, 'signed out everywhere');
    const after = await signIn(t, tenant, client, { password: result.password });
    tt.is(after.tokens.claims()!.email, 'root@acme.test', 'the lock was lifted and the new password signs in');
    await tt.throwsAsync(signIn(t, tenant, client, { password: original }), undefined, 'the old password no longer works');

    const chosen = 'a passphrase of my own';
    const set = await tessera(['tenant', 'reset-admin-password', '--slug', 'acme', '--email', 'root@acme.test', '--password', chosen], env);
    tt.is(set.code, 0, set.stderr);
    tt.regex(set.stdout, /Password of root@acme\.test at acme changed/);
    tt.false(set.stdout.includes(chosen), 'a password the operator chose is not printed back');
    tt.is((await signIn(t, tenant, client, { password: chosen })).tokens.claims()!.email, 'root@acme.test');

    const [member, unknownUser, unknownTenant, weak] = await Promise.all([
      tessera(['tenant', 'reset-admin-password', '--slug', 'acme', '--email', 'member@acme.test', '--password', 'taken over passphrase'], env),
      tessera(['tenant', 'reset-admin-password', '--slug', 'acme', '--email', 'ghost@acme.test'], env),
      tessera(['tenant', 'reset-admin-password', '--slug', 'nope', '--email', 'root@acme.test'], env),
      tessera(['tenant', 'reset-admin-password', '--slug', 'acme', '--email', 'root@acme.test', '--password', 'root@acme.test'], env),
    ]);
    saidInOneLine(tt, member, /^member@acme\.test is not a tenant administrator of "acme"/);
    saidInOneLine(tt, unknownUser, /^There is no user "ghost@acme\.test" in tenant "acme"\./);
    saidInOneLine(tt, unknownTenant, /^There is no tenant "nope"\./);
    saidInOneLine(tt, weak, /^The password must not be your email address\./);
    const memberTenant = { ...tenant, adminEmail: 'member@acme.test', adminPassword: memberPassword };
    tt.is((await signIn(t, memberTenant, client)).tokens.claims()!.email, 'member@acme.test', "the refused reset left the member's password alone");
    tt.is((await signIn(t, tenant, client, { password: chosen })).tokens.claims()!.email, 'root@acme.test', 'and the refused weak password too');
  } finally {
    await stop(server);
    await db.drop();
  }
});

onPostgres(
  'two instances starting together on an empty database: one creates and prints the demo tenant, the other starts and says how to get new secrets',
  async (tt) => {
    const db = await createTestDatabase();
    const encryptionKey = randomBytes(32).toString('hex');
    const ports = [await freePort(), await freePort()];
    const servers = ports.map((port) => startServer({ DATABASE_URL: db.url, PORT: String(port), ENCRYPTION_KEY: encryptionKey, DATA_DIR: tempDir() }));
    try {
      await Promise.all(servers.map((s) => waitForOutput(s, /Tessera is running/)));
      const outputs = servers.map((s) => s.output());
      const seeders = outputs.filter((o) => /A demo tenant was created/.test(o));
      tt.is(seeders.length, 1, outputs.join('\n----\n'));
      const other = outputs.find((o) => !/A demo tenant was created/.test(o))!;
      tt.regex(
        other,
        /Another instance, starting at the same time on this database, created the demo tenant|The demo tenant's secrets were printed when it was created/,
      );
      tt.regex(other, /npx tessera tenant rotate-admin-key --slug demo/);
      tt.regex(other, /npx tessera tenant reset-admin-password --slug demo --email admin@demo\.local/);
      tt.notRegex(other, /already exists|tsk_/);
      tt.deepEqual(
        servers.map((s) => s.child.exitCode),
        [null, null],
        'both keep running',
      );

      const key = /Admin API key\s+(tsk_\S+)/.exec(seeders[0]!)![1]!;
      for (const port of ports) {
        const clients = await fetch(`http://localhost:${port}/t/demo/api/v1/admin/clients`, { headers: { authorization: `Bearer ${key}` } });
        tt.is(clients.status, 200);
        tt.is((await clients.json()).data.length, 1, 'one sample-app client');
      }
      const client = new pg.Client({ connectionString: db.url });
      await client.connect();
      tt.deepEqual((await client.query('SELECT slug FROM tenants')).rows, [{ slug: 'demo' }]);
      await client.end();
    } finally {
      await Promise.all(servers.map(stop));
      await db.drop();
    }
  },
);

onPostgres('createIfNone: of several concurrent first tenants on an empty database exactly one is created', async (tt) => {
  const db = await createTestDatabase();
  const connections = await Promise.all([1, 2, 3, 4].map(() => connect({ databaseUrl: db.url, dataDir: tempDir(), poolSize: 2 })));
  try {
    await migrateToLatest(connections[0]!.db);
    const key = randomBytes(32);
    // Different slugs, so the unique index can't be what stops the others: the lock is.
    const results = await Promise.all(
      connections.map((c, i) => new TenantService(c.db, 'http://localhost:3000', key).createIfNone({ slug: `first-${i}`, name: 'First' })),
    );
    tt.is(results.filter(Boolean).length, 1);
    const tenants = new TenantService(connections[0]!.db, 'http://localhost:3000', key);
    tt.false(await tenants.isEmpty());
    tt.is(await tenants.createIfNone({ slug: 'later', name: 'Later' }), undefined, 'a database with a tenant gets none');
    tt.is(await tenants.findBySlug('later'), undefined);
  } finally {
    await Promise.all(connections.map((c) => c.close()));
    await db.drop();
  }
});
