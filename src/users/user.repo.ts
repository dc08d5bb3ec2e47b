import { type Selectable, sql, type Updateable } from 'kysely';
import type { Keyset } from '../base/pagination.ts';
import type { TenantTx } from '../db/database.ts';
import { canonicalEmail, emailKey } from './email-address.ts';
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

/** Throws EmailRefused for an address the email rule refuses (callers validate input first). */
export async function insertUser(tx: TenantTx, tenantId: string, user: NewUser): Promise<UserRow> {
  const { address, key } = canonicalEmail(user.email);
  return tx
    .insertInto('users')
    .values({
      tenant_id: tenantId,
      email: address,
      email_key: key,
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

/** The account of `email` in any spelling of it, compared by its key; none for an address the rule refuses. */
export async function findUserByEmail(tx: TenantTx, tenantId: string, email: string): Promise<UserRow | undefined> {
  const key = emailKey(email);
  if (key === undefined) return undefined;
  return tx.selectFrom('users').selectAll().where('tenant_id', '=', tenantId).where('email_key', '=', key).executeTakeFirst();
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
  if (query.email) {
    const key = emailKey(query.email);
    if (key === undefined) return [];
    qb = qb.where('email_key', '=', key);
  }
  if (query.q) {
    const pattern = `%${query.q.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
    qb = qb.where((eb) => eb.or([eb('email', 'ilike', pattern), eb('name', 'ilike', pattern)]));
  }
  if (query.after) {
    const { createdAt, id } = query.after;
    qb = qb.where(sql<boolean>`(created_at, id) > (${createdAt}, ${id}::uuid)`);
  }
  return qb
    .orderBy('created_at')
    .orderBy('id')
    .limit(query.limit + 1)
    .execute();
}

/** A new `email` brings its key along (EmailRefused for an address the rule refuses). */
export async function updateUser(tx: TenantTx, tenantId: string, id: string, patch: Omit<Updateable<UserTable>, 'email_key'>): Promise<UserRow | undefined> {
  const set: Updateable<UserTable> = { ...patch, updated_at: new Date() };
  if (patch.email !== undefined) {
    const { address, key } = canonicalEmail(patch.email);
    set.email = address;
    set.email_key = key;
  }
  return tx.updateTable('users').set(set).where('tenant_id', '=', tenantId).where('id', '=', id).returningAll().executeTakeFirst();
}

export async function deleteUser(tx: TenantTx, tenantId: string, id: string): Promise<boolean> {
  const r = await tx.deleteFrom('users').where('tenant_id', '=', tenantId).where('id', '=', id).executeTakeFirst();
  return r.numDeletedRows > 0n;
}
