import { randomBytes } from 'node:crypto';
import pg from 'pg';

/**
 * With DATABASE_URL (or TEST_DATABASE_URL) set, integration tests run against that PostgreSQL
 * server, each test file in a database of its own, dropped at the end (CI uses
 * postgres://postgres@127.0.0.1:5432/postgres). Without it they run on embedded PGlite.
 */
export function serverUrl(): string | undefined {
  return process.env.TEST_DATABASE_URL || process.env.DATABASE_URL || undefined;
}

export function requireServerUrl(): string {
  const url = serverUrl();
  if (!url) throw new Error('This test needs PostgreSQL: set DATABASE_URL, e.g. postgres://postgres@127.0.0.1:5432/postgres');
  return url;
}

export async function createTestDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const base = new URL(requireServerUrl());
  const name = `tessera_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: base.href });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(base.href);
  url.pathname = `/${name}`;
  return {
    url: url.href,
    async drop() {
      const c = new pg.Client({ connectionString: base.href });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}
