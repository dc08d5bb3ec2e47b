import { execFile, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import { freePort } from '../helpers/app.ts';
import { createTestDatabase, serverUrl } from '../helpers/database.ts';

/** Needs a PostgreSQL server (several processes on one database); CI always has one. */
const onPostgres = serverUrl() ? test : test.skip;

const run = promisify(execFile);
const BIN = new URL('../../bin/tessera.js', import.meta.url).pathname;

async function tessera(args: string[], env: Record<string, string>) {
  try {
    const r = await run(process.execPath, [BIN, ...args], { env: { ...process.env, LOG_LEVEL: 'warn', ...env }, timeout: 60_000 });
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
  server.stdout.on('data', (c) => (stdout += c));
  try {
    await waitForHealthy(`http://localhost:${port}`);
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
    const code = await new Promise((r) => server.once('exit', r));
    tt.is(code, 0);
  }
  // With the server gone, the CLI works on the same DATA_DIR.
  const created = await tessera(['tenant', 'create', '--slug', 'other', '--name', 'Other', '--json'], { ...env, DATABASE_URL: '' });
  tt.is(created.code, 0, created.stderr);
  tt.is(JSON.parse(created.stdout).tenant.slug, 'other');
});

async function waitForHealthy(base: string) {
  for (let i = 0; i < 150; i++) {
    try {
      if ((await fetch(`${base}/readyz`)).ok) return;
    } catch {}
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`server at ${base} did not become ready`);
}
