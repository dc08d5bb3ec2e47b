import { sql, type Selectable, type Updateable } from 'kysely';
import type { TenantTx } from '../db/database.ts';
import type { Keyset } from '../http/pagination.ts';
import type { UserTable } from './user.table.ts';

export type UserRow = Selectable<UserTable>;

export interface NewUser {
  email: string;
  name?: string | null | undefined;
  given_name?: string | null | undefined;
  family_name?: string | null | undefined;
  password_hash?: string | null | undefined;
  email_verified?: boolean | undefined;
  tenant_admin?: boolean | undefined;
}

export async function insertUser(tx: TenantTx, tenantId: string, user: NewUser): Promise<UserRow> {
  return tx
    .insertInto('users')
    .values({
      tenant_id: tenantId,
      email: user.email,
      name: user.name ?? null,
      given_name: user.given_name ?? null,
      family_name: user.family_name ?? null,
      password_hash: user.password_hash ?? null,
      email_verified: user.email_verified ?? false,
      tenant_admin: user.tenant_admin ?? false,
      last_login_at: null,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
}

export async function findUserById(tx: TenantTx, tenantId: string, id: string): Promise<UserRow | undefined> {
  return tx.selectFrom('users').selectAll().where('tenant_id', '=', tenantId).where('id', '=', id).executeTakeFirst();
}

/**
 * What an email is compared as: PostgreSQL's lower(), the same function that fills the indexed
 * `email_key` columns of users and invitations. Compare the column itself, never `lower(email)`:
 * under row-level security that condition can't use an index (migrations/0008_email_keys.ts).
 */
export function emailKey(email: string) {
  return sql<string>`lower(${email})`;
}

export async function findUserByEmail(tx: TenantTx, tenantId: string, email: string): Promise<UserRow | undefined> {
  return tx
    .selectFrom('users')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('email_key', '=', emailKey(email))
    .executeTakeFirst();
}

export interface UserQuery {
  email?: string | undefined;
  q?: string | undefined;
  after?: Keyset | undefined;
  limit: number;
}

/** `limit + 1` rows so the caller can tell whether another page follows. */
export async function listUsers(tx: TenantTx, tenantId: string, query: UserQuery): Promise<UserRow[]> {
  let qb = tx.selectFrom('users').selectAll().where('tenant_id', '=', tenantId);
  if (query.email) qb = qb.where('email_key', '=', emailKey(query.email));
  if (query.q) {
    const pattern = `%${query.q.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
    qb = qb.where((eb) => eb.or([eb('email', 'ilike', pattern), eb('name', 'ilike', pattern)]));
  }
  if (query.after) {
    const { createdAt, id } = query.after;
    qb = qb.where(sql<boolean>`(created_at, id) > (${createdAt}, ${id}::uuid)`);
  }
  return qb.orderBy('created_at').orderBy('id').limit(query.limit + 1).execute();
}

export async function updateUser(tx: TenantTx, tenantId: string, id: string, patch: Updateable<UserTable>): Promise<UserRow | undefined> {
  return tx
    .updateTable('users')
    .set({ ...patch, updated_at: new Date() })
    .where('tenant_id', '=', tenantId)
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirst();
}

export async function deleteUser(tx: TenantTx, tenantId: string, id: string): Promise<boolean> {
  const r = await tx.deleteFrom('users').where('tenant_id', '=', tenantId).where('id', '=', id).executeTakeFirst();
  return r.numDeletedRows > 0n;
}
