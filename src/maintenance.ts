import { sql } from 'kysely';
import type { Logger } from './base/logger.ts';
import type { Database } from './db/database.ts';
import { INVITATION_SENDS_COUNTED_SECONDS } from './orgs/invitation-limits.ts';

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

/** One-time links and SSO sign-ins a day past expiry, brute-force rows quiet for a week, expired passkey challenges. */
export async function deleteStaleAccountRows(db: Database): Promise<number> {
  const results = await Promise.all([
    sql`DELETE FROM account_tokens WHERE expires_at < now() - interval '1 day'`.execute(db),
    sql`DELETE FROM auth_throttle WHERE last_failure_at < now() - interval '7 days' AND (locked_until IS NULL OR locked_until < now())`.execute(db),
    sql`DELETE FROM sso_requests WHERE expires_at < now() - interval '1 day'`.execute(db),
    sql`DELETE FROM sso_pending_links WHERE expires_at < now() - interval '1 day'`.execute(db),
    // Which SSO a sign-in came through matters while its grant lives (org-tokens.ts).
    sql`DELETE FROM sso_sign_ins s WHERE created_at < now() - interval '1 day'
        AND NOT EXISTS (SELECT 1 FROM oidc_payloads p WHERE p.tenant_id = s.tenant_id AND p.model = 'Grant' AND p.id = s.grant_id)`.execute(db),
    sql`DELETE FROM passkey_challenges WHERE expires_at < now()`.execute(db),
  ]);
  return results.reduce((n, r) => n + Number(r.numAffectedRows ?? 0n), 0);
}

/** Invitation sends that no limit counts any more (invitation-limits.ts). */
export async function deleteOldInvitationSends(db: Database): Promise<number> {
  const r = await sql`DELETE FROM invitation_sends WHERE sent_at < now() - make_interval(secs => ${INVITATION_SENDS_COUNTED_SECONDS})`.execute(db);
  return Number(r.numAffectedRows ?? 0n);
}

/** Hourly: IdP metadata configured by URL is fetched again (certificate rollovers). */
const METADATA_EVERY_MS = 60 * 60 * 1000;

export function startMaintenance(
  db: Database,
  log: Logger,
  jobs: {
    refreshSamlMetadata?: () => Promise<{ refreshed: number; failed: number }>;
    /** Suspends organizations whose trial ended (orgs/org-lifecycle.ts), every `everyMs` (ORG_TRIAL_CHECK_MS). */
    expireTrials?: { run: () => Promise<number>; everyMs: number };
  } = {},
) {
  const refresh = () =>
    jobs
      .refreshSamlMetadata?.()
      .then((r) => (r.refreshed || r.failed) && log.info(r, 'saml metadata refreshed'))
      .catch((err) => log.warn({ err }, 'saml metadata refresh failed'));
  const metadataTimer = setInterval(refresh, METADATA_EVERY_MS);
  metadataTimer.unref();
  const run = () =>
    Promise.all([deleteExpiredPayloads(db), deleteStaleAccountRows(db), deleteOldInvitationSends(db)])
      .then(([n, m, k]) => n + m + k)
      .then((n) => n && log.info({ deleted: n }, 'expired rows removed'))
      .catch((err) => log.warn({ err }, 'expired-row cleanup failed'));
  const timer = setInterval(run, EVERY_MS);
  timer.unref();
  // Every instance runs it; each organization is changed once however many do (expireTrials).
  const trials = jobs.expireTrials;
  const trialTimer = trials
    ? setInterval(
        () =>
          trials
            .run()
            .then((n) => n && log.info({ suspended: n }, 'organization trials ended'))
            .catch((err) => log.warn({ err }, 'organization trial job failed')),
        trials.everyMs,
      )
    : undefined;
  trialTimer?.unref();
  return {
    stop: () => {
      clearInterval(timer);
      clearInterval(metadataTimer);
      clearInterval(trialTimer);
    },
  };
}
