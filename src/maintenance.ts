import { sql } from 'kysely';
import type { Database } from './db/database.ts';
import type { Logger } from './logger.ts';

const EVERY_MS = 10 * 60 * 1000;
const BATCH = 5000;

/**
 * Deletes expired oidc-provider rows (sessions, codes, tokens) across tenants, in batches so a
 * large backlog never holds long locks. Runs on every instance; concurrent runs are harmless.
 */
export async function deleteExpiredPayloads(db: Database): Promise<number> {
  let total = 0;
  for (;;) {
    const r = await sql`
      DELETE FROM oidc_payloads WHERE ctid IN (
        SELECT ctid FROM oidc_payloads WHERE expires_at < now() LIMIT ${BATCH}
      )`.execute(db);
    const n = Number(r.numAffectedRows ?? 0n);
    total += n;
    if (n < BATCH) return total;
  }
}

export function startMaintenance(db: Database, log: Logger) {
  const run = () =>
    deleteExpiredPayloads(db)
      .then((n) => n && log.info({ deleted: n }, 'expired oidc rows removed'))
      .catch((err) => log.warn({ err }, 'expired-row cleanup failed'));
  const timer = setInterval(run, EVERY_MS);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
