import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { loadConfig } from '../../src/config.ts';
import { type Connection, connect } from '../../src/db/connect.ts';
import { TenantService } from '../../src/tenants/tenant.service.ts';
import { send } from './http.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/**
 * The Node flags `npm start` runs Tessera with (package.json's start script, `node <flags>
 * bin/tessera.js start`): the benchmark measures the process production runs.
 */
export function startScriptFlags(root = ROOT): string[] {
  const start: unknown = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).scripts?.start;
  const words = typeof start === 'string' ? start.trim().split(/\s+/) : [];
  const entry = words.indexOf('bin/tessera.js');
  if (words[0] !== 'node' || entry < 0) throw new Error(`package.json's start script is not "node [flags] bin/tessera.js start": ${String(start)}`);
  return words.slice(1, entry);
}

/** Waits until `url` answers 200 (or the process dies, or `ms` pass). */
export async function waitFor(url: string, child: ChildProcess, ms = 60_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the server exited with ${child.exitCode} before it was ready`);
    try {
      if ((await send(url, { agent: false })).status === 200) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`${url} not ready within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export interface Tessera {
  url: string;
  pid: number;
  /** When the process was started (epoch ms): the zero of its `--trace-gc` timestamps, give or take its start-up. */
  spawnedAt: number;
  databaseUrl: string;
  encryptionKey: Buffer;
  /** The runner's own connection (as the database owner), for seeding in bulk. */
  connection: Connection;
  tenants: TenantService;
  stop(): Promise<void>;
}

/**
 * Tessera as its own process (`bin/tessera.js start`) on a fresh PostgreSQL database, with the
 * default configuration — logs at `info`, one line per request, as users run it — apart from what
 * a benchmark needs (its own port, database and key; no demo tenant): the load generator's CPU
 * never mixes with the server's.
 *
 * `stdout`: where Tessera's standard output goes — its logs, and `--trace-gc`'s lines; by default
 * /dev/null: Tessera formats and writes every line all the same, only the kernel's side of a
 * write is cheaper than to a file or a pipe.
 * `root`: the source tree to run (bench/ab.ts runs an earlier commit's from a git worktree).
 * `settings`: environment for Tessera's process on top of the bench's own (bench/ab.ts --b-env).
 */
export async function startTessera(
  serverUrl: string,
  nodeArgs: string[] = [],
  stdout: 'ignore' | number = 'ignore',
  root = ROOT,
  settings: Record<string, string> = {},
): Promise<Tessera> {
  const name = `tessera_bench_${process.pid}_${Date.now()}`;
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const databaseUrl = Object.assign(new URL(serverUrl), { pathname: `/${name}` }).href;
  const port = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), 'tessera-bench-'));
  const env = {
    PORT: String(port),
    HOST: '127.0.0.1',
    PUBLIC_URL: `http://127.0.0.1:${port}`,
    DATABASE_URL: databaseUrl,
    DATA_DIR: dataDir,
    ENCRYPTION_KEY: randomBytes(32).toString('hex'),
    SEED_DEMO: 'false',
    TENANT_CACHE_TTL_MS: '1000',
    NODE_ENV: 'production',
    // No balancer watches /readyz here: stop at once.
    SHUTDOWN_GRACE_MS: '0',
  };
  const spawnedAt = Date.now();
  const child = spawn(process.execPath, [...startScriptFlags(root), ...nodeArgs, join(root, 'bin/tessera.js'), 'start'], {
    env: { ...process.env, ...env, ...settings },
    stdio: ['ignore', stdout, 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => {
    stderr = (stderr + c.toString()).slice(-4000);
  });
  const url = env.PUBLIC_URL;
  try {
    await waitFor(`${url}/readyz`, child);
  } catch (err) {
    child.kill('SIGKILL');
    throw new Error(`${(err as Error).message}\n${stderr}`);
  }
  const config = loadConfig(env);
  const connection = await connect({ databaseUrl, dataDir, poolSize: 8 });
  return {
    url,
    pid: child.pid!,
    spawnedAt,
    databaseUrl,
    encryptionKey: config.encryptionKey,
    connection,
    tenants: new TenantService(connection.db, url, config.encryptionKey),
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
      await connection.close();
      const a = new pg.Client({ connectionString: serverUrl });
      await a.connect();
      await a.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await a.end();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** The Admin API of one tenant, JSON in and out; throws on anything but 2xx. */
export function adminClient(url: string, slug: string, apiKey: string) {
  return async <T = unknown>(method: string, path: string, body?: unknown): Promise<T> => {
    const r = await send(`${url}/t/${slug}/api/v1/admin${path}`, {
      method,
      headers: { authorization: `Bearer ${apiKey}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    if (r.status < 200 || r.status > 299) throw new Error(`${method} ${path}: HTTP ${r.status} ${r.body.slice(0, 300)}`);
    return (r.body ? JSON.parse(r.body) : undefined) as T;
  };
}
