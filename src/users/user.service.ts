import { Conflict, isUniqueViolation, NotFound } from '../base/errors.ts';
import { decodeCursor, page } from '../base/pagination.ts';
import { forget, readOnce } from '../base/request-reads.ts';
import type { Database } from '../db/database.ts';
import { scopedStatement } from '../db/one-shot.ts';
import { inTenant } from '../db/tenant-scope.ts';
import { revokeEverythingOfAccount } from '../oidc-store/oidc-payload.repo.ts';
import { type CredentialsChanged, nothingMore } from './credentials-changed.ts';
import { checkPassword, hashPassword } from './passwords.ts';
import type { UserRow } from './user.repo.ts';
import * as repo from './user.repo.ts';
import type { CreateUserInput, UpdateUserInput } from './user.schemas.ts';

/** The public shape of a user (never the password hash). */
export function presentUser(u: UserRow) {
  return {
    id: u.id,
    email: u.email,
    email_verified: u.email_verified,
    name: u.name,
    given_name: u.given_name,
    family_name: u.family_name,
    disabled: u.disabled,
    tenant_admin: u.tenant_admin,
    created_at: u.created_at.toISOString(),
    updated_at: u.updated_at.toISOString(),
    last_login_at: u.last_login_at?.toISOString() ?? null,
  };
}

export type { CreateUserInput, UpdateUserInput } from './user.schemas.ts';

const DUPLICATE_EMAIL = () => Conflict('A user with this email already exists in this tenant.', [{ field: 'email', message: 'already in use' }]);

/** The request-reads key of a user row (see base/request-reads.ts). */
export const userKey = (tenantId: string, id: string) => `user:${tenantId}:${id}`;

export class UserService {
  constructor(
    private readonly db: Database,
    private readonly credentialsChanged: CredentialsChanged = nothingMore,
  ) {}

  async create(tenantId: string, input: CreateUserInput): Promise<UserRow> {
    const password_hash = input.password ? await hashPassword(input.password) : null;
    try {
      return await inTenant(this.db, tenantId, (tx) => repo.insertUser(tx, tenantId, { ...input, password_hash }));
    } catch (err) {
      if (isUniqueViolation(err)) throw DUPLICATE_EMAIL();
      throw err;
    }
  }

  async get(tenantId: string, id: string): Promise<UserRow> {
    const user = await inTenant(this.db, tenantId, (tx) => repo.findUserById(tx, tenantId, id));
    if (!user) throw NotFound(`No user ${id} in this tenant.`);
    return user;
  }

  /** For oidc-provider's findAccount: undefined rather than an error. */
  async find(tenantId: string, id: string): Promise<UserRow | undefined> {
    // Read once per request (oidc-provider asks for the account several times; token lookups bring it along).
    return readOnce(userKey(tenantId, id), () => scopedStatement(this.db, tenantId, (tx) => repo.findUserById(tx, tenantId, id)));
  }

  async list(tenantId: string, q: { email?: string | undefined; q?: string | undefined; limit: number; cursor?: string | undefined }) {
    const rows = await inTenant(this.db, tenantId, (tx) =>
      repo.listUsers(tx, tenantId, { email: q.email, q: q.q, limit: q.limit, after: decodeCursor(q.cursor) }),
    );
    const p = page(rows, q.limit, (u) => ({ createdAt: u.created_at, id: u.id }));
    return { data: p.data.map(presentUser), next_cursor: p.next_cursor };
  }

  /**
   * Disabling a user (or changing their password) signs them out everywhere: sessions, grants
   * and tokens are revoked in the same transaction. A new password also removes the SSO links
   * proven by the old one.
   */
  async update(tenantId: string, id: string, input: UpdateUserInput): Promise<UserRow> {
    const { password, ...rest } = input;
    const password_hash = password ? await hashPassword(password) : undefined;
    forget(userKey(tenantId, id));
    try {
      return await inTenant(this.db, tenantId, async (tx) => {
        const user = await repo.updateUser(tx, tenantId, id, { ...rest, ...(password_hash ? { password_hash } : {}) });
        if (!user) throw NotFound(`No user ${id} in this tenant.`);
        if (input.disabled === true || password_hash) await revokeEverythingOfAccount(tx, tenantId, id);
        if (password_hash) await this.credentialsChanged(tx, tenantId, id, 'the password was changed by an administrator');
        return user;
      });
    } catch (err) {
      if (isUniqueViolation(err)) throw DUPLICATE_EMAIL();
      throw err;
    }
  }

  async delete(tenantId: string, id: string): Promise<void> {
    forget(userKey(tenantId, id));
    await inTenant(this.db, tenantId, async (tx) => {
      await revokeEverythingOfAccount(tx, tenantId, id);
      if (!(await repo.deleteUser(tx, tenantId, id))) throw NotFound(`No user ${id} in this tenant.`);
    });
  }

  /**
   * Email + password sign-in. Unknown email, wrong password and disabled account all answer
   * `undefined` after the same argon2 work, so neither the answer nor its timing tells them apart.
   */
  async authenticate(tenantId: string, email: string, password: string): Promise<UserRow | undefined> {
    return this.checkSignIn(tenantId, await this.findForSignIn(tenantId, email), password);
  }

  /** The account an email signs in to, if any (one statement; its own round trip or a share of one). */
  findForSignIn(tenantId: string, email: string): Promise<UserRow | undefined> {
    return scopedStatement(this.db, tenantId, (tx) => repo.findUserByEmail(tx, tenantId, email));
  }

  /**
   * The password check of a sign-in, for an account read with findForSignIn (undefined: no such
   * account, which still costs a hash). Records the sign-in (and a rehash) on success.
   */
  async checkSignIn(tenantId: string, user: UserRow | undefined, password: string): Promise<UserRow | undefined> {
    const check = await checkPassword(user?.password_hash, password);
    if (!user || !check.ok || user.disabled) return undefined;
    forget(userKey(tenantId, user.id));
    return scopedStatement(this.db, tenantId, (tx) =>
      repo.updateUser(tx, tenantId, user.id, { last_login_at: new Date(), ...(check.rehashed ? { password_hash: check.rehashed } : {}) }),
    );
  }
}
