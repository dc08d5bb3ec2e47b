import { type Selectable, sql } from 'kysely';
import type { Database, TenantTx } from '../db/database.ts';
import { publishedKeysOf, type SealedSigningKey } from './signing-keys.ts';
import type { TenantSettings, TenantTable } from './tenant.table.ts';

export type TenantRow = Selectable<TenantTable>;

// The tenants table is the root of tenancy: it is read by slug before any tenant is known,
// so these queries run outside inTenant().

export async function findTenantBySlug(db: Database, slug: string): Promise<TenantRow | undefined> {
  return db.selectFrom('tenants').selectAll().where('slug', '=', slug).executeTakeFirst();
}

/**
 * A tenant's row with its published signing keys, still sealed: everything its runtime is built
 * from, in one statement. Run it with slugScopedStatement so that RLS binds the keys' read.
 */
export async function findTenantWithKeys(tx: TenantTx, slug: string): Promise<{ row: TenantRow; keys: SealedSigningKey[] } | undefined> {
  const found = await tx
    .selectFrom('tenants as t')
    .selectAll('t')
    .select((eb) => publishedKeysOf(eb.ref('t.id')).as('signing_keys'))
    .where('t.slug', '=', slug)
    .executeTakeFirst();
  if (!found) return undefined;
  const { signing_keys: keys, ...row } = found;
  return { row, keys };
}

export async function insertTenant(db: Database | TenantTx, t: { slug: string; name: string; settings: TenantSettings }): Promise<TenantRow> {
  return db
    .insertInto('tenants')
    .values({ slug: t.slug, name: t.name, settings: JSON.stringify(t.settings) })
    .returningAll()
    .executeTakeFirstOrThrow();
}

export async function countTenants(db: Database | TenantTx): Promise<number> {
  const r = await db.selectFrom('tenants').select(sql<string>`count(*)`.as('n')).executeTakeFirstOrThrow();
  return Number(r.n);
}

/** Name and/or settings; bumps the config version (every instance rebuilds the tenant's runtime). */
export async function updateTenant(db: Database, tenantId: string, patch: { name?: string | undefined; settings: TenantSettings }): Promise<TenantRow> {
  return db
    .updateTable('tenants')
    .set({
      ...(patch.name ? { name: patch.name } : {}),
      settings: JSON.stringify(patch.settings),
      config_version: sql`config_version + 1`,
      updated_at: new Date(),
    })
    .where('id', '=', tenantId)
    .returningAll()
    .executeTakeFirstOrThrow();
}

/** Makes every instance rebuild the tenant's provider on its next request (keys or settings changed). */
export async function bumpConfigVersion(db: Database | TenantTx, tenantId: string): Promise<void> {
  await db.updateTable('tenants').set({ config_version: sql`config_version + 1`, updated_at: new Date() }).where('id', '=', tenantId).execute();
}

export async function insertApiKey(tx: TenantTx, k: { tenant_id: string; name: string; prefix: string; key_hash: string }) {
  return tx.insertInto('admin_api_keys').values(k).returning(['id']).executeTakeFirstOrThrow();
}

/** Every admin API key of the tenant stops working (the caller issues a new one in the same transaction). */
export async function deleteApiKeys(tx: TenantTx, tenantId: string): Promise<void> {
  await tx.deleteFrom('admin_api_keys').where('tenant_id', '=', tenantId).execute();
}

/** An arbitrary constant that names the lock below; nothing else takes an advisory lock with this key. */
const FIRST_TENANT_LOCK = 7_465_737_301;

/**
 * Until the end of the transaction, no other transaction passes this point: "is the database
 * empty? then create the first tenant" happens once, however many instances start at once.
 */
export async function lockFirstTenant(tx: TenantTx): Promise<void> {
  await sql`select pg_advisory_xact_lock(${FIRST_TENANT_LOCK}::bigint)`.execute(tx);
}

export async function findApiKeyByHash(tx: TenantTx, tenantId: string, keyHash: string) {
  return tx
    .selectFrom('admin_api_keys')
    .select(['id', 'key_hash', 'last_used_at'])
    .where('tenant_id', '=', tenantId)
    .where('key_hash', '=', keyHash)
    .executeTakeFirst();
}

export async function touchApiKey(tx: TenantTx, tenantId: string, id: string) {
  await tx.updateTable('admin_api_keys').set({ last_used_at: new Date() }).where('tenant_id', '=', tenantId).where('id', '=', id).execute();
}
