import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { type App, createApp } from '../../src/app.ts';
import { createLogger, type Logger } from '../../src/base/logger.ts';
import { loadConfig } from '../../src/config.ts';
import { type Connection, connect } from '../../src/db/connect.ts';
import { createTestDatabase, serverUrl } from './database.ts';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

export interface TestApp {
  app: App;
  url: string;
  databaseUrl: string | undefined;
  stop(): Promise<void>;
}

export interface TestAppOptions {
  /** Share a database with another instance (multi-instance tests). */
  databaseUrl?: string;
  /** Run on embedded PGlite instead of PostgreSQL. */
  embedded?: boolean;
  encryptionKey?: string;
  env?: Record<string, string>;
  log?: Logger;
  /** DNS TXT lookups (domain verification) answered from this map instead of the network. */
  txtRecords?: Map<string, string[][]>;
}

/**
 * The real app on a real port, on a fresh PostgreSQL database (or a given one, or embedded PGlite).
 * A free port can be taken by another process between `freePort()` and the listen (test files
 * run side by side): then it starts again on another port.
 */
export async function startTestApp(opts: TestAppOptions = {}): Promise<TestApp> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startTestAppOnce(opts);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt >= 3) throw err;
    }
  }
}

async function startTestAppOnce(opts: TestAppOptions): Promise<TestApp> {
  const port = await freePort();
  const embedded = opts.embedded || (!opts.databaseUrl && !serverUrl());
  const fresh = opts.databaseUrl || embedded ? undefined : await createTestDatabase();
  const databaseUrl = embedded ? undefined : (opts.databaseUrl ?? fresh!.url);
  const dataDir = mkdtempSync(join(tmpdir(), 'tessera-test-'));
  const config = loadConfig({
    PORT: String(port),
    HOST: '127.0.0.1',
    DATA_DIR: dataDir,
    ENCRYPTION_KEY: opts.encryptionKey ?? randomBytes(32).toString('hex'),
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    SEED_DEMO: 'false',
    TENANT_CACHE_TTL_MS: '0',
    // The suite's IdPs (upstream OIDC, SAML metadata) run on 127.0.0.1.
    OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true',
    ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}),
    // `DATABASE_ONE_SHOT=false npm test` runs the suite with tenant-scoped statements as ordinary transactions.
    ...(process.env.DATABASE_ONE_SHOT ? { DATABASE_ONE_SHOT: process.env.DATABASE_ONE_SHOT } : {}),
    ...opts.env,
  });
  let connection: Connection | undefined;
  if (databaseUrl)
    connection = await connect({
      databaseUrl,
      dataDir,
      poolSize: 5,
      preparedStatements: config.databasePreparedStatements,
      oneShot: config.databaseOneShot,
      connectTimeoutMs: config.databaseConnectTimeoutMs,
      statementTimeoutMs: config.databaseStatementTimeoutMs,
    });
  const txt = opts.txtRecords;
  let app: App;
  try {
    app = await createApp(config, {
      log: opts.log ?? createLogger(config.logLevel),
      ...(connection ? { connection } : {}),
      ...(txt ? { txtResolver: async (name: string) => txt.get(name) ?? [] } : {}),
    });
  } catch (err) {
    await connection?.close();
    await fresh?.drop();
    throw err;
  }
  try {
    await app.start();
  } catch (err) {
    await app.stop(0).catch(() => {});
    await fresh?.drop();
    throw err;
  }
  return {
    app,
    url: `http://localhost:${port}`,
    databaseUrl,
    async stop() {
      await app.stop(1000);
      await fresh?.drop();
    },
  };
}

export interface TestTenant {
  id: string;
  slug: string;
  issuer: string;
  adminKey: string;
  adminEmail: string;
  adminPassword: string;
}

let counter = 0;

export async function createTenant(t: TestApp, slug = `t${process.pid}-${++counter}`): Promise<TestTenant> {
  const adminEmail = `admin@${slug}.test`;
  const adminPassword = 'correct horse battery staple';
  const created = await t.app.services.tenants.create({ slug, name: `Tenant ${slug}`, adminEmail, adminPassword });
  return { id: created.tenant.id, slug, issuer: created.issuer, adminKey: created.admin_api_key, adminEmail, adminPassword };
}

/** A JSON call to the Admin API. */
export async function adminApi(t: TestApp, tenant: TestTenant, method: string, path: string, body?: unknown, key = tenant.adminKey) {
  const res = await fetch(`${t.url}/t/${tenant.slug}/api/v1/admin${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  let json: any;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.status, type: res.headers.get('content-type') ?? '', body: json, text, headers: res.headers };
}

export function webClient(redirectUri = 'http://localhost:8080/cb', extra: Record<string, unknown> = {}) {
  return {
    name: 'Test app',
    redirect_uris: [redirectUri],
    post_logout_redirect_uris: ['http://localhost:8080/bye'],
    ...extra,
  };
}

/** A logger whose JSON lines land in `lines`, for tests that read the logs. */
export function captureLogs(level = 'info'): { log: Logger; lines: () => Array<Record<string, any>> } {
  const raw: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      raw.push(...String(chunk).split('\n').filter(Boolean));
      cb();
    },
  });
  return { log: createLogger(level, sink), lines: () => raw.map((l) => JSON.parse(l)) };
}
