import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import { createTenant, freePort, startTestApp } from '../helpers/app.ts';
import { createTestDatabase, serverUrl } from '../helpers/database.ts';

/** Two processes on one database: needs a PostgreSQL server (CI always has one). */
const onPostgres = serverUrl() ? test : test.skip;

const run = promisify(execFile);
const BIN = new URL('../../bin/tessera.js', import.meta.url).pathname;
const newKey = () => randomBytes(32).toString('hex');

async function tessera(args: string[], env: Record<string, string>) {
  try {
    const r = await run(process.execPath, [BIN, ...args], { env: { ...process.env, LOG_LEVEL: 'warn', SEED_DEMO: 'false', ...env }, timeout: 60_000 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** `tessera start` until it exits (it should: the key is wrong), with what it printed. */
async function startUntilExit(env: Record<string, string>) {
  const server = spawn(process.execPath, [BIN, 'start'], {
    env: { ...process.env, LOG_LEVEL: 'warn', SEED_DEMO: 'false', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  server.stdout.on('data', (c) => (stdout += c));
  server.stderr.on('data', (c) => (stderr += c));
  const timer = setTimeout(() => server.kill('SIGKILL'), 60_000);
  const code = await new Promise<number | null>((resolve) => server.once('exit', resolve));
  clearTimeout(timer);
  return { code, stdout, stderr };
}

onPostgres('createApp refuses a database whose keys were sealed with another ENCRYPTION_KEY, naming the variable', async (tt) => {
  const db = await createTestDatabase();
  try {
    const key = newKey();
    const first = await startTestApp({ databaseUrl: db.url, encryptionKey: key });
    await createTenant(first);
    await first.stop();

    const err = await tt.throwsAsync(startTestApp({ databaseUrl: db.url, encryptionKey: newKey() }));
    tt.is(err?.name, 'ConfigError');
    tt.regex(err!.message, /^ENCRYPTION_KEY is not the key this database's signing keys were encrypted with/);
    tt.false(err!.message.includes('\n'), 'one line');

    // The right key still starts, and serves the tenant.
    const again = await startTestApp({ databaseUrl: db.url, encryptionKey: key });
    try {
      const tenant = await createTenant(again);
      tt.is((await fetch(`${again.url}/t/${tenant.slug}/.well-known/openid-configuration`)).status, 200);
    } finally {
      await again.stop();
    }
  } finally {
    await db.drop();
  }
});

onPostgres('the CLI and `tessera start` refuse another key with one line and no stack trace; a generated key is named by its file', async (tt) => {
  const db = await createTestDatabase();
  try {
    const port = String(await freePort());
    const key = newKey();
    const env = { DATABASE_URL: db.url, PORT: port, DATA_DIR: mkdtempSync(join(tmpdir(), 'tessera-key-')) };
    const created = await tessera(['tenant', 'create', '--slug', 'acme', '--name', 'Acme'], { ...env, ENCRYPTION_KEY: key });
    tt.is(created.code, 0, created.stderr);

    const wrong = { ...env, ENCRYPTION_KEY: newKey() };
    for (const refused of [
      await tessera(['tenant', 'create', '--slug', 'other', '--name', 'Other'], wrong),
      await tessera(['keys', 'rotate', '--tenant', 'acme'], wrong),
      await startUntilExit(wrong),
    ]) {
      tt.is(refused.code, 2);
      tt.is(refused.stderr.trim().split('\n').length, 1, refused.stderr);
      tt.regex(refused.stderr, /^ENCRYPTION_KEY is not the key this database's signing keys were encrypted with/);
      tt.notRegex(refused.stderr, /\n\s+at /);
    }
    // Nothing was sealed with the wrong key: the refused tenant does not exist.
    tt.is((await tessera(['tenant', 'create', '--slug', 'other', '--name', 'Other'], { ...env, ENCRYPTION_KEY: key })).code, 0);

    // Without ENCRYPTION_KEY, the key generated into a fresh DATA_DIR is not the database's either.
    const dataDir = mkdtempSync(join(tmpdir(), 'tessera-key-'));
    const generated = await startUntilExit({ DATABASE_URL: db.url, PORT: port, DATA_DIR: dataDir, ENCRYPTION_KEY: '' });
    tt.is(generated.code, 2);
    tt.regex(generated.stderr, /ENCRYPTION_KEY is not set, and the key generated in \S+encryption\.key \(under DATA_DIR\) is not the one/);
    tt.true(generated.stderr.includes(join(dataDir, 'encryption.key')));

    // Migrations touch no sealed data: `migrate` runs whatever the key.
    tt.is((await tessera(['migrate'], wrong)).code, 0);
  } finally {
    await db.drop();
  }
});
