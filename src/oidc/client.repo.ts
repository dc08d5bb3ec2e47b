import { type Selectable, sql } from 'kysely';
import type { Keyset } from '../base/pagination.ts';
import type { TenantTx } from '../db/database.ts';
import type { ClientTable } from './client.table.ts';

export type ClientRow = Selectable<ClientTable>;

export async function insertClient(
  tx: TenantTx,
  row: Omit<ClientRow, 'created_at' | 'updated_at' | 'metadata'> & { metadata: Record<string, unknown> },
): Promise<ClientRow> {
  return tx
    .insertInto('clients')
    .values({ ...row, metadata: JSON.stringify(row.metadata) })
    .returningAll()
    .executeTakeFirstOrThrow();
}

export async function findClient(tx: TenantTx, tenantId: string, clientId: string): Promise<ClientRow | undefined> {
  return tx.selectFrom('clients').selectAll().where('tenant_id', '=', tenantId).where('client_id', '=', clientId).executeTakeFirst();
}

export async function listClients(tx: TenantTx, tenantId: string, q: { after?: Keyset | undefined; limit: number }): Promise<ClientRow[]> {
  let qb = tx.selectFrom('clients').selectAll().where('tenant_id', '=', tenantId);
  if (q.after) qb = qb.where(sql<boolean>`(created_at, client_id) > (${q.after.createdAt}, ${q.after.id})`);
  return qb
    .orderBy('created_at')
    .orderBy('client_id')
    .limit(q.limit + 1)
    .execute();
}

export async function updateClient(
  tx: TenantTx,
  tenantId: string,
  clientId: string,
  patch: {
    name?: string;
    metadata?: Record<string, unknown>;
    require_consent?: boolean;
    client_secret_hash?: string | null;
    organization_usage?: ClientRow['organization_usage'];
    organization_ids?: string[];
    claims_format?: ClientRow['claims_format'];
  },
): Promise<ClientRow | undefined> {
  const { metadata, ...rest } = patch;
  return tx
    .updateTable('clients')
    .set({ ...rest, ...(metadata ? { metadata: JSON.stringify(metadata) } : {}), updated_at: new Date() })
    .where('tenant_id', '=', tenantId)
    .where('client_id', '=', clientId)
    .returningAll()
    .executeTakeFirst();
}

export async function deleteClient(tx: TenantTx, tenantId: string, clientId: string): Promise<boolean> {
  const r = await tx.deleteFrom('clients').where('tenant_id', '=', tenantId).where('client_id', '=', clientId).executeTakeFirst();
  return r.numDeletedRows > 0n;
}
