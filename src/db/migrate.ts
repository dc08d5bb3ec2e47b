import { readdir } from 'node:fs/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { sql } from 'kysely';
import { type Migration, type MigrationProvider, Migrator } from 'kysely/migration';
import type { Database } from './database.ts';

const MIGRATIONS_DIR = fileURLToPath(new URL('../../migrations/', import.meta.url));

/** Loads `migrations/NNNN_name.ts` in name order. */
class FolderMigrationProvider implements MigrationProvider {
  async getMigrations(): Promise<Record<string, Migration>> {
    const files = (await readdir(MIGRATIONS_DIR)).filter((f) => /^\d{4}_[\w-]+\.ts$/.test(f)).sort();
    const entries = await Promise.all(
      files.map(async (f) => [f.replace(/\.ts$/, ''), (await import(pathToFileURL(MIGRATIONS_DIR + f).href)) as Migration] as const),
    );
    return Object.fromEntries(entries);
  }
}

export interface MigrationReport {
  applied: string[];
}

/** Brings the schema up to date. Safe to run from several instances at once (Kysely takes a lock). */
export async function migrateToLatest(db: Database): Promise<MigrationReport> {
  const migrator = new Migrator({ db, provider: new FolderMigrationProvider() });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error');
    throw new Error(`Migration ${failed?.migrationName ?? ''} failed: ${(error as Error).message ?? error}`, { cause: error });
  }
  return { applied: (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName) };
}

/** True when every migration in the folder has been applied (used by /readyz). */
export async function isMigrated(db: Database): Promise<boolean> {
  const migrator = new Migrator({ db, provider: new FolderMigrationProvider() });
  const all = await migrator.getMigrations();
  return all.every((m) => m.executedAt !== undefined);
}

export async function ping(db: Database): Promise<void> {
  await sql`select 1`.execute(db);
}
