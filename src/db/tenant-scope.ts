import { sql } from 'kysely';
import { isUuid } from '../base/ids.ts';
import type { Database, TenantTx } from './database.ts';
import { SCOPE_MARK } from './lazy-begin.ts';

/** The non-superuser role that application queries run as, so row-level security binds them. */
export const APP_ROLE = 'tessera_app';

/**
 * The statement that scopes a transaction to a tenant: its id in a transaction-local setting read
 * by every RLS policy, and the role dropped to APP_ROLE. Inlined, not parameters, so it can share
 * a round trip with BEGIN (lazy-begin.ts) or with the statement it scopes (one-shot.ts) — safe only
 * for a UUID, which callers check.
 */
// Each scope statement is one `select` of settings: one-shot.ts may append another setting to it.
export const scopeStatementFor = (tenantId: string) => `select set_config('tessera.tenant_id', '${tenantId}', true), set_config('role', '${APP_ROLE}', true)`;

/**
 * Runs `work` in a transaction that can only see `tenantId`'s rows: the tenant id goes into a
 * transaction-local setting read by every RLS policy, and the role drops to APP_ROLE (superusers
 * and table owners are not bound by RLS). Repos still filter by tenant_id themselves; this is the
 * backstop for the query that forgets.
 */
export async function inTenant<T>(db: Database | TenantTx, tenantId: string, work: (tx: TenantTx) => Promise<T>): Promise<T> {
  // The scope statement inlines the id (see scopeStatementFor): it must be a UUID.
  if (!isUuid(tenantId)) throw new Error(`inTenant: not a tenant id: ${JSON.stringify(tenantId).slice(0, 60)}`);
  return inScope(db, scopeStatementFor(tenantId), work);
}

/** What scopeStatementForSlug may inline: every tenant slug is lowercase letters, digits and hyphens. */
export function isInlineSafeSlug(slug: string) {
  return /^[a-z0-9-]{1,63}$/.test(slug);
}

/**
 * The tenant a slug names, found by the scope statement itself: its own row and its tenant-scoped
 * rows read in one round trip before its id is known (a cold tenant's runtime, oidc/tenant-runtime.ts).
 * A slug no tenant has scopes to none — every RLS policy then matches nothing. Inlined as
 * scopeStatementFor is, so only for a slug of lowercase letters, digits and hyphens.
 */
export function scopeStatementForSlug(slug: string) {
  if (!isInlineSafeSlug(slug)) throw new Error(`not a tenant slug: ${JSON.stringify(slug).slice(0, 60)}`);
  return `select set_config('tessera.tenant_id', coalesce((select id::text from tenants where slug = '${slug}'), ''), true), set_config('role', '${APP_ROLE}', true)`;
}

/** As inTenant, for the tenant `slug` names (scopeStatementForSlug). */
export async function inTenantOfSlug<T>(db: Database | TenantTx, slug: string, work: (tx: TenantTx) => Promise<T>): Promise<T> {
  return inScope(db, scopeStatementForSlug(slug), work);
}

async function inScope<T>(db: Database | TenantTx, scopeStatement: string, work: (tx: TenantTx) => Promise<T>): Promise<T> {
  const enter = async (tx: TenantTx) => {
    await sql.raw(`${SCOPE_MARK} ${scopeStatement}`).execute(tx);
    return work(tx);
  };
  // Inside an owner transaction (tenant creation, key rotation): the role drops for the rest of it,
  // so do the owner-only statements first.
  if (db.isTransaction) return enter(db as TenantTx);
  return db.transaction().execute(enter);
}
