import { sql } from 'kysely';
import { ScimError as ScimPatchError, type ScimPatchOperation, scimPatch } from 'scim-patch';
import type { Actor } from '../base/actor.ts';
import { Conflict, isUniqueViolation, NotFound } from '../base/errors.ts';
import type { Database, TenantTx } from '../db/database.ts';
import { inTenant } from '../db/tenant-scope.ts';
import { revokeEverythingOfAccount } from '../oidc-store/oidc-payload.repo.ts';
import * as membership from '../orgs/membership.ts';
import { findMember, findOrg, insertAudit, type RoleRow, rolesByName } from '../orgs/org.repo.ts';
import { mappedRoles } from '../sso/group-roles.ts';
import { existingAccountVerdict } from '../sso/jit.ts';
import type { EmailAddress } from '../users/email-address.ts';
import { findUserByEmail, findUserById, insertUser, updateUser } from '../users/user.repo.ts';
import type { DirectoryRow } from './scim.table.ts';
import { type ResourceKind, readPatch } from './scim-attributes.ts';
import { MAX_PAGE_SIZE, SCHEMA } from './scim-discovery.ts';
import { InvalidValue, scimError, Uniqueness } from './scim-errors.ts';
import { type FilterAttributes, filterToSql, jsonbValues } from './scim-filter.ts';
import {
  etag,
  type GroupInput,
  presentGroup,
  presentUser,
  readGroup,
  readUser,
  type ScimGroupRow,
  type ScimUserRow,
  type UserInput,
  userNameKey,
} from './scim-resources.ts';

/**
 * What a SCIM directory may do to an organization, in one place. The directory speaks for the
 * organization's own people and for nothing else:
 *
 * - A user is a tenant account keyed by (directory, SCIM id). A new account is made only for an
 *   email on a verified domain of the organization; an existing account is linked only when an SSO
 *   sign-in through the organization's connection could take it (sso/jit.ts existingAccountVerdict:
 *   not a tenant administrator, not disabled, its email verified, the domain verified).
 * - An active user is a member with the roles its groups map to (else the directory's default
 *   role); a member's `owner` role is kept, and never granted (membership.ts refuses it to a
 *   directory). Deactivation or deletion ends the membership, and with it the sign-ins and tokens
 *   working in the organization; an account the directory made that is then in no organization is
 *   disabled and signed out everywhere, and enabled again only by this directory's reactivation.
 * - Every change is audited in the organization's log with the directory as the actor.
 */

/** A request as the SCIM routes hand it over. */
export interface ScimScope {
  tenantId: string;
  directory: DirectoryRow;
  /** The directory's SCIM base URL (meta.location). */
  base: string;
}

/** What applyUser compares of the account. */
interface AccountFields {
  email_key: string;
  name: string | null;
  given_name: string | null;
  family_name: string | null;
}

export interface ListQuery {
  filter?: string | undefined;
  startIndex?: string | undefined;
  count?: string | undefined;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const directoryActor = (d: DirectoryRow): Actor => ({ type: 'scim_directory', id: d.id });

const USER_FILTERS: FilterAttributes = {
  id: { kind: 'id', column: sql.ref('id') },
  username: { kind: 'text', column: sql.ref('user_name_key'), caseExact: false, key: userNameKey },
  externalid: { kind: 'text', column: sql.ref('external_id'), caseExact: true },
  'emails.value': jsonbValues(sql`resource->'emails'`),
  displayname: { kind: 'text', column: sql`resource->>'displayName'`, caseExact: false },
  active: { kind: 'boolean', column: sql.ref('active') },
  'meta.lastmodified': { kind: 'time', column: sql.ref('updated_at') },
  'meta.created': { kind: 'time', column: sql.ref('created_at') },
};

const GROUP_FILTERS = (tenantId: string): FilterAttributes => ({
  id: { kind: 'id', column: sql.ref('id') },
  displayname: { kind: 'text', column: sql.ref('display_name'), caseExact: false },
  externalid: { kind: 'text', column: sql.ref('external_id'), caseExact: true },
  'members.value': {
    kind: 'values',
    ops: ['eq'],
    // Entra's membership probe: id eq "<group>" and members[value eq "<user>"].
    where: (_op, value) =>
      UUID.test(value ?? '')
        ? sql<boolean>`exists (select 1 from scim_group_members gm where gm.tenant_id = ${tenantId} and gm.group_id = scim_groups.id and gm.scim_user_id = ${value}::uuid)`
        : sql<boolean>`false`,
  },
  'meta.lastmodified': { kind: 'time', column: sql.ref('updated_at') },
  'meta.created': { kind: 'time', column: sql.ref('created_at') },
});

/** startIndex and count (RFC 7644 §3.4.2.4): 1-based, count bounded; bad numbers are refused. */
function page(q: ListQuery) {
  const int = (v: string | undefined, name: string, fallback: number) => {
    if (v === undefined || v === '') return fallback;
    if (!/^-?\d{1,9}$/.test(v)) throw InvalidValue(`"${name}" must be an integer.`);
    return Number(v);
  };
  const startIndex = Math.max(1, int(q.startIndex, 'startIndex', 1));
  const count = Math.min(MAX_PAGE_SIZE, Math.max(0, int(q.count, 'count', 100)));
  return { startIndex, count };
}

/** If-Match (RFC 7644 §3.14): `*` or one of the listed versions; else 412 and nothing changes. */
function assertMatches(ifMatch: string | undefined, version: number) {
  if (!ifMatch) return;
  const tags = ifMatch.split(',').map((t) => t.trim());
  if (tags.includes('*') || tags.includes(etag(version)) || tags.includes(`"${version}"`)) return;
  throw scimError(412, undefined, `The resource changed: its version is ${etag(version)}, not ${ifMatch.slice(0, 60)}. Read it again, then retry.`);
}

/**
 * PATCH (RFC 7644 §3.5.2): the operations are checked first (scim-attributes readPatch: served,
 * writable attributes only, no prototype keys), then applied by scim-patch to a copy; what it
 * refuses becomes a 400 naming the problem. Answers the result and the attributes written.
 */
function applyPatch<T extends Record<string, unknown>>(kind: ResourceKind, resource: T & { id: string }, body: unknown): { patched: T; touched: Set<string> } {
  const { operations, touched } = readPatch(kind, body, resource.id);
  const normalised = operations.flatMap((op) => removeByValue(resource, op)) as ScimPatchOperation[];
  try {
    const patched = scimPatch({ ...structuredClone(resource), meta: { created: new Date(0), lastModified: new Date(0) } } as never, normalised, {
      mutateDocument: false,
      treatMissingAsAdd: true,
    }) as T;
    return { patched, touched };
  } catch (err) {
    if (err instanceof ScimPatchError) {
      const scimType = (err.scimCode as 'invalidPath' | 'noTarget' | 'invalidValue' | undefined) ?? 'invalidValue';
      throw scimError(400, scimType, `The PATCH could not be applied: ${err.message}`.slice(0, 400));
    }
    throw InvalidValue(`The PATCH could not be applied: ${(err as Error).message}`.slice(0, 400));
  }
}

/**
 * Entra removes members as `{"op":"Remove","path":"members","value":[{"value":"<id>"}]}`:
 * one `members[value eq "<id>"]` removal per value that is there (removing an absent member
 * changes nothing, as Entra expects), since scim-patch compares whole objects.
 */
function removeByValue(resource: Record<string, unknown>, op: { op: string; path?: unknown; value?: unknown }) {
  if (op.op !== 'remove' || typeof op.path !== 'string' || !/^[a-z]+$/i.test(op.path) || !Array.isArray(op.value)) return [op];
  const key = Object.keys(resource).find((k) => k.toLowerCase() === (op.path as string).toLowerCase());
  const present = new Set((Array.isArray(key && resource[key]) ? (resource[key!] as Array<{ value?: unknown }>) : []).map((v) => v?.value));
  return op.value
    .map((v) => (typeof v === 'object' && v !== null ? (v as { value?: unknown }).value : undefined))
    .filter((v): v is string => typeof v === 'string' && present.has(v))
    .map((v) => ({ op: 'remove', path: `${key}[value eq ${JSON.stringify(v)}]` }));
}

export class ScimProvisioning {
  constructor(private readonly db: Database) {}

  private audit(tx: TenantTx, s: ScimScope, action: string, target: { type: string; id: string }, before: unknown, after: unknown) {
    return insertAudit(tx, {
      tenant_id: s.tenantId,
      org_id: s.directory.org_id,
      actor: directoryActor(s.directory),
      action,
      target_type: target.type,
      target_id: target.id,
      before,
      after,
    });
  }

  // ── Users ────────────────────────────────────────────────────────────────────

  private async userRow(tx: TenantTx, s: ScimScope, id: string, lock = false): Promise<ScimUserRow> {
    if (!UUID.test(id)) throw NotFound(`The directory has no user ${id.slice(0, 60)}.`);
    let qb = tx.selectFrom('scim_users').selectAll().where('tenant_id', '=', s.tenantId).where('directory_id', '=', s.directory.id).where('id', '=', id);
    if (lock) qb = qb.forUpdate();
    const row = await qb.executeTakeFirst();
    if (!row) throw NotFound(`The directory has no user ${id}.`);
    return row;
  }

  /** The user, locked, with what applyUser compares of its account: one statement on the hot PATCH path. */
  private async userForUpdate(tx: TenantTx, s: ScimScope, id: string) {
    if (!UUID.test(id)) throw NotFound(`The directory has no user ${id.slice(0, 60)}.`);
    const found = await tx
      .selectFrom('scim_users as su')
      .innerJoin('users as u', (j) => j.onRef('u.tenant_id', '=', 'su.tenant_id').onRef('u.id', '=', 'su.user_id'))
      .selectAll('su')
      .select(['u.email_key as account_email_key', 'u.name as account_name', 'u.given_name as account_given_name', 'u.family_name as account_family_name'])
      .where('su.tenant_id', '=', s.tenantId)
      .where('su.directory_id', '=', s.directory.id)
      .where('su.id', '=', id)
      .forUpdate()
      .executeTakeFirst();
    if (!found) throw NotFound(`The directory has no user ${id}.`);
    const { account_email_key, account_name, account_given_name, account_family_name, ...row } = found;
    return {
      row: row as ScimUserRow,
      account: { email_key: account_email_key, name: account_name, given_name: account_given_name, family_name: account_family_name },
    };
  }

  async getUser(s: ScimScope, id: string) {
    const row = await inTenant(this.db, s.tenantId, (tx) => this.userRow(tx, s, id));
    return { resource: presentUser(row, s.base), version: row.version };
  }

  async listUsers(s: ScimScope, q: ListQuery) {
    const where = q.filter ? filterToSql(q.filter, USER_FILTERS) : sql<boolean>`true`;
    const { startIndex, count } = page(q);
    return inTenant(this.db, s.tenantId, async (tx) => {
      const scoped = () => tx.selectFrom('scim_users').where('tenant_id', '=', s.tenantId).where('directory_id', '=', s.directory.id).where(where);
      const total = await scoped()
        .select((eb) => eb.fn.countAll<string>().as('n'))
        .executeTakeFirstOrThrow();
      const rows = count
        ? await scoped()
            .selectAll()
            .orderBy('created_at')
            .orderBy('id')
            .offset(startIndex - 1)
            .limit(count)
            .execute()
        : [];
      return listResponse(
        rows.map((r) => presentUser(r, s.base)),
        Number(total.n),
        startIndex,
      );
    });
  }

  async createUser(s: ScimScope, body: unknown) {
    const input = readUser(body);
    return this.write(s, async (tx) => {
      await this.assertUserNameFree(tx, s, input.userNameKey);
      const email = requireEmail(input);
      // The domain first: off the organization's verified domains the answer is one and the same
      // whether or not the tenant has an account with the address, so it tells nothing about accounts.
      if (!(await this.domainVerified(tx, s, email))) throw unverifiedDomain(email);
      const existing = await findUserByEmail(tx, s.tenantId, email.address);
      let userId: string;
      let created = false;
      if (existing) {
        const verdict = existingAccountVerdict(existing, true);
        if (!verdict.ok)
          throw Conflict(
            `${email.address} already has an account the directory can't take over: ${verdict.reason}. A directory links only accounts its organization's SSO could sign in to.`,
          );
        const linked = await tx
          .selectFrom('scim_users')
          .select('id')
          .where('tenant_id', '=', s.tenantId)
          .where('directory_id', '=', s.directory.id)
          .where('user_id', '=', existing.id)
          .executeTakeFirst();
        if (linked) throw Uniqueness(`${email.address} is already the directory's user ${linked.id}.`);
        userId = existing.id;
        // The names the directory sent, as an SSO sign-in refreshes them; what it did not send stays.
        const names = Object.fromEntries(Object.entries(accountName(input)).filter(([, v]) => v !== null));
        if (Object.keys(names).length) await updateUser(tx, s.tenantId, userId, names);
      } else {
        const user = await insertUser(tx, s.tenantId, { email: email.address, ...accountName(input), email_verified: true, password_hash: null });
        userId = user.id;
        created = true;
        // Created inactive: the account exists, disabled, until the directory activates it.
        if (!input.active) await updateUser(tx, s.tenantId, userId, { disabled: true });
      }
      // Pushed again: the directory holds the person once more.
      await tx
        .deleteFrom('scim_departures')
        .where('tenant_id', '=', s.tenantId)
        .where('directory_id', '=', s.directory.id)
        .where('user_id', '=', userId)
        .execute();
      const row = await tx
        .insertInto('scim_users')
        .values({
          tenant_id: s.tenantId,
          directory_id: s.directory.id,
          user_id: userId,
          user_name: input.userName,
          user_name_key: input.userNameKey,
          external_id: input.externalId,
          active: input.active,
          resource: JSON.stringify(input.resource),
          created_account: created,
          disabled_account: created && !input.active,
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      if (row.active) await syncMembership(tx, s, [row]);
      await this.audit(tx, s, 'scim.user_created', { type: 'scim_user', id: row.id }, null, auditUser(row, email.address, created));
      return {
        resource: presentUser(row, s.base),
        version: row.version,
        outcome: `created ${row.user_name}${created ? ' (new account)' : ' (linked to its account)'}`,
      };
    });
  }

  async replaceUser(s: ScimScope, id: string, body: unknown, ifMatch: string | undefined) {
    const input = readUser(body);
    return this.write(s, async (tx) => {
      const { row, account } = await this.userForUpdate(tx, s, id);
      assertMatches(ifMatch, row.version);
      return this.applyUser(tx, s, row, account, input);
    });
  }

  async patchUser(s: ScimScope, id: string, body: unknown, ifMatch: string | undefined) {
    return this.write(s, async (tx) => {
      const { row, account } = await this.userForUpdate(tx, s, id);
      assertMatches(ifMatch, row.version);
      const current = {
        ...row.resource,
        id: row.id,
        userName: row.user_name,
        ...(row.external_id !== null ? { externalId: row.external_id } : {}),
        active: row.active,
      };
      const { patched, touched } = applyPatch('User', current, body);
      const { meta: _meta, id: _id, ...rest } = patched as Record<string, unknown>;
      // Checked where the PATCH wrote ("True"/"False" read as booleans); what was stored before stays readable.
      return this.applyUser(tx, s, row, account, readUser(rest, touched));
    });
  }

  async deleteUser(s: ScimScope, id: string, ifMatch: string | undefined) {
    return this.write(s, async (tx) => {
      const row = await this.userRow(tx, s, id, true);
      assertMatches(ifMatch, row.version);
      const disabled = row.active ? await this.endMembership(tx, s, row) : false;
      await tx.deleteFrom('scim_users').where('tenant_id', '=', s.tenantId).where('id', '=', row.id).execute();
      // The directory forgets its user; the organization remembers that its directory removed them.
      await tx
        .insertInto('scim_departures')
        .values({ tenant_id: s.tenantId, directory_id: s.directory.id, user_id: row.user_id })
        .onConflict((oc) => oc.columns(['tenant_id', 'directory_id', 'user_id']).doUpdateSet({ departed_at: new Date() }))
        .execute();
      await this.audit(tx, s, 'scim.user_deleted', { type: 'scim_user', id: row.id }, auditUser(row), { account_disabled: disabled || row.disabled_account });
      return { outcome: `deleted ${row.user_name}${disabled ? '; its account is disabled' : ''}` };
    });
  }

  /** PUT and PATCH alike: the user as it should be now. */
  private async applyUser(tx: TenantTx, s: ScimScope, row: ScimUserRow, user: AccountFields, input: UserInput) {
    if (input.userNameKey !== row.user_name_key) await this.assertUserNameFree(tx, s, input.userNameKey);
    const email = requireEmail(input);
    const accountPatch: Parameters<typeof updateUser>[3] = {};
    if (email.key !== user.email_key) {
      // The account's address follows the directory only when the directory made the account:
      // an account it linked belongs to the person, whose address it is not the directory's to move.
      if (row.created_account) {
        if (!(await this.domainVerified(tx, s, email))) throw unverifiedDomain(email);
        const other = await findUserByEmail(tx, s.tenantId, email.address);
        if (other && other.id !== row.user_id) throw Uniqueness(`${email.address} is the email of another account.`);
        accountPatch.email = email.address;
        accountPatch.email_verified = true;
      }
    }
    const names = accountName(input);
    if (names.name !== user.name && input.name) accountPatch.name = names.name;
    if (names.given_name !== user.given_name && input.givenName) accountPatch.given_name = names.given_name;
    if (names.family_name !== user.family_name && input.familyName) accountPatch.family_name = names.family_name;
    if (Object.keys(accountPatch).length) await updateUser(tx, s.tenantId, row.user_id, accountPatch);

    const after = await tx
      .updateTable('scim_users')
      .set({
        user_name: input.userName,
        user_name_key: input.userNameKey,
        external_id: input.externalId,
        active: input.active,
        resource: JSON.stringify(input.resource),
        version: sql`version + 1`,
        updated_at: new Date(),
      })
      .where('tenant_id', '=', s.tenantId)
      .where('id', '=', row.id)
      .returningAll()
      .executeTakeFirstOrThrow();

    let action = 'scim.user_updated';
    let outcome = `updated ${after.user_name}`;
    if (row.active && !after.active) {
      const disabled = await this.endMembership(tx, s, after);
      action = 'scim.user_deactivated';
      outcome = `deactivated ${after.user_name}: removed from the organization${disabled ? ', account disabled' : ''}`;
    } else if (!row.active && after.active) {
      await this.reactivate(tx, s, after);
      action = 'scim.user_reactivated';
      outcome = `reactivated ${after.user_name}`;
    }
    await this.audit(tx, s, action, { type: 'scim_user', id: after.id }, auditUser(row), auditUser(after, accountPatch.email));
    return { resource: presentUser(after, s.base), version: after.version, outcome };
  }

  private async assertUserNameFree(tx: TenantTx, s: ScimScope, key: string) {
    const taken = await tx
      .selectFrom('scim_users')
      .select('id')
      .where('tenant_id', '=', s.tenantId)
      .where('directory_id', '=', s.directory.id)
      .where('user_name_key', '=', key)
      .executeTakeFirst();
    if (taken) throw Uniqueness(`The directory already has a user with this userName (id ${taken.id}).`);
  }

  private async domainVerified(tx: TenantTx, s: ScimScope, email: EmailAddress) {
    const row = await tx
      .selectFrom('org_domains')
      .select('domain')
      .where('tenant_id', '=', s.tenantId)
      .where('org_id', '=', s.directory.org_id)
      .where('domain', '=', email.domain)
      .where('verified', '=', true)
      .executeTakeFirst();
    return row !== undefined;
  }

  /**
   * Deactivation and deletion: the membership ends (with the sign-ins and tokens working in the
   * organization: membership.removeMember); an account the directory made that is now in no
   * organization at all is disabled and signed out everywhere. The last owner is never removed.
   * Answers whether the account was disabled.
   */
  private async endMembership(tx: TenantTx, s: ScimScope, row: ScimUserRow): Promise<boolean> {
    const orgId = s.directory.org_id;
    await findOrg(tx, s.tenantId, orgId, { lock: true });
    const member = await findMember(tx, s.tenantId, orgId, row.user_id);
    if (member) {
      try {
        await membership.removeMember({ tx, tenantId: s.tenantId, orgId, actor: directoryActor(s.directory) }, member);
      } catch (err) {
        if ((err as { status?: number }).status === 409)
          throw Conflict(`${row.user_name} is the last owner of the organization and stays a member: make another member owner first.`);
        throw err;
      }
    }
    if (!row.created_account) return false;
    const elsewhere = await tx
      .selectFrom('org_members')
      .select('org_id')
      .where('tenant_id', '=', s.tenantId)
      .where('user_id', '=', row.user_id)
      .executeTakeFirst();
    if (elsewhere) return false;
    await updateUser(tx, s.tenantId, row.user_id, { disabled: true });
    await revokeEverythingOfAccount(tx, s.tenantId, row.user_id);
    await tx.updateTable('scim_users').set({ disabled_account: true }).where('tenant_id', '=', s.tenantId).where('id', '=', row.id).execute();
    return true;
  }

  /** Reactivation: the account comes back only if this directory disabled it; then the membership. */
  private async reactivate(tx: TenantTx, s: ScimScope, row: ScimUserRow) {
    if (row.disabled_account) {
      await updateUser(tx, s.tenantId, row.user_id, { disabled: false });
      await tx.updateTable('scim_users').set({ disabled_account: false }).where('tenant_id', '=', s.tenantId).where('id', '=', row.id).execute();
    }
    const user = (await findUserById(tx, s.tenantId, row.user_id))!;
    if (user.disabled || user.tenant_admin)
      throw Conflict(
        `${row.user_name}'s account ${user.disabled ? 'was disabled by an administrator' : 'is a tenant administrator'}: the directory can't bring it back into the organization.`,
      );
    await syncMembership(tx, s, [row]);
  }

  // ── Groups ───────────────────────────────────────────────────────────────────

  private async groupRow(tx: TenantTx, s: ScimScope, id: string, lock = false): Promise<ScimGroupRow> {
    if (!UUID.test(id)) throw NotFound(`The directory has no group ${id.slice(0, 60)}.`);
    let qb = tx.selectFrom('scim_groups').selectAll().where('tenant_id', '=', s.tenantId).where('directory_id', '=', s.directory.id).where('id', '=', id);
    if (lock) qb = qb.forUpdate();
    const row = await qb.executeTakeFirst();
    if (!row) throw NotFound(`The directory has no group ${id}.`);
    return row;
  }

  private members(tx: TenantTx, tenantId: string, groupIds: string[]) {
    if (!groupIds.length) return Promise.resolve([]);
    return tx
      .selectFrom('scim_group_members as m')
      .innerJoin('scim_users as u', (j) => j.onRef('u.tenant_id', '=', 'm.tenant_id').onRef('u.id', '=', 'm.scim_user_id'))
      .select(['m.group_id', 'u.id', 'u.user_name'])
      .where('m.tenant_id', '=', tenantId)
      .where('m.group_id', 'in', groupIds)
      .orderBy('u.user_name')
      .execute();
  }

  async getGroup(s: ScimScope, id: string, withMembers: boolean) {
    return inTenant(this.db, s.tenantId, async (tx) => {
      const row = await this.groupRow(tx, s, id);
      const members = withMembers ? await this.members(tx, s.tenantId, [row.id]) : undefined;
      return { resource: presentGroup(row, s.base, members), version: row.version };
    });
  }

  async listGroups(s: ScimScope, q: ListQuery, withMembers: boolean) {
    const where = q.filter ? filterToSql(q.filter, GROUP_FILTERS(s.tenantId)) : sql<boolean>`true`;
    const { startIndex, count } = page(q);
    return inTenant(this.db, s.tenantId, async (tx) => {
      const scoped = () => tx.selectFrom('scim_groups').where('tenant_id', '=', s.tenantId).where('directory_id', '=', s.directory.id).where(where);
      const total = await scoped()
        .select((eb) => eb.fn.countAll<string>().as('n'))
        .executeTakeFirstOrThrow();
      const rows = count
        ? await scoped()
            .selectAll()
            .orderBy('created_at')
            .orderBy('id')
            .offset(startIndex - 1)
            .limit(count)
            .execute()
        : [];
      const members = withMembers
        ? await this.members(
            tx,
            s.tenantId,
            rows.map((r) => r.id),
          )
        : undefined;
      return listResponse(
        rows.map((r) =>
          presentGroup(
            r,
            s.base,
            members?.filter((m) => m.group_id === r.id),
          ),
        ),
        Number(total.n),
        startIndex,
      );
    });
  }

  async createGroup(s: ScimScope, body: unknown) {
    const input = readGroup(body);
    return this.write(s, async (tx) => {
      await this.assertGroupNameFree(tx, s, input.displayName);
      const users = await this.directoryUsers(tx, s, input.members);
      const row = await tx
        .insertInto('scim_groups')
        .values({ tenant_id: s.tenantId, directory_id: s.directory.id, display_name: input.displayName, external_id: input.externalId })
        .returningAll()
        .executeTakeFirstOrThrow();
      if (users.length)
        await tx
          .insertInto('scim_group_members')
          .values(users.map((u) => ({ tenant_id: s.tenantId, group_id: row.id, scim_user_id: u.id })))
          .execute();
      await syncMembership(tx, s, users, false);
      await this.audit(tx, s, 'scim.group_created', { type: 'scim_group', id: row.id }, null, auditGroup(row, users));
      return {
        resource: presentGroup(row, s.base, users),
        version: row.version,
        outcome: `created group ${row.display_name} with ${users.length} member${users.length === 1 ? '' : 's'}`,
      };
    });
  }

  async replaceGroup(s: ScimScope, id: string, body: unknown, ifMatch: string | undefined) {
    const input = readGroup(body);
    return this.write(s, async (tx) => {
      const row = await this.groupRow(tx, s, id, true);
      assertMatches(ifMatch, row.version);
      return this.applyGroup(tx, s, row, input);
    });
  }

  async patchGroup(s: ScimScope, id: string, body: unknown, ifMatch: string | undefined) {
    return this.write(s, async (tx) => {
      const row = await this.groupRow(tx, s, id, true);
      assertMatches(ifMatch, row.version);
      const members = await this.members(tx, s.tenantId, [row.id]);
      const current = {
        schemas: [SCHEMA.group],
        id: row.id,
        displayName: row.display_name,
        ...(row.external_id !== null ? { externalId: row.external_id } : {}),
        members: members.map((m) => ({ value: m.id })),
      };
      const { patched } = applyPatch('Group', current, body);
      return this.applyGroup(tx, s, row, readGroup(patched), members);
    });
  }

  async deleteGroup(s: ScimScope, id: string, ifMatch: string | undefined) {
    return this.write(s, async (tx) => {
      const row = await this.groupRow(tx, s, id, true);
      assertMatches(ifMatch, row.version);
      const members = await this.members(tx, s.tenantId, [row.id]);
      await tx.deleteFrom('scim_groups').where('tenant_id', '=', s.tenantId).where('id', '=', row.id).execute();
      await this.resync(
        tx,
        s,
        members.map((m) => m.id),
      );
      await this.audit(tx, s, 'scim.group_deleted', { type: 'scim_group', id: row.id }, auditGroup(row, members), null);
      return { outcome: `deleted group ${row.display_name}` };
    });
  }

  private async applyGroup(tx: TenantTx, s: ScimScope, row: ScimGroupRow, input: GroupInput, current?: Array<{ id: string; user_name: string }>) {
    if (input.displayName.toLowerCase() !== row.display_name.toLowerCase()) await this.assertGroupNameFree(tx, s, input.displayName);
    const before = current ?? (await this.members(tx, s.tenantId, [row.id]));
    const wanted = await this.directoryUsers(tx, s, input.members);
    const had = new Set(before.map((m) => m.id));
    const want = new Set(wanted.map((u) => u.id));
    const added = wanted.filter((u) => !had.has(u.id)).map((u) => u.id);
    const removed = before.filter((m) => !want.has(m.id)).map((m) => m.id);
    if (removed.length)
      await tx
        .deleteFrom('scim_group_members')
        .where('tenant_id', '=', s.tenantId)
        .where('group_id', '=', row.id)
        .where('scim_user_id', 'in', removed)
        .execute();
    if (added.length)
      await tx
        .insertInto('scim_group_members')
        .values(added.map((scim_user_id) => ({ tenant_id: s.tenantId, group_id: row.id, scim_user_id })))
        .execute();
    const after = await tx
      .updateTable('scim_groups')
      .set({ display_name: input.displayName, external_id: input.externalId, version: sql`version + 1`, updated_at: new Date() })
      .where('tenant_id', '=', s.tenantId)
      .where('id', '=', row.id)
      .returningAll()
      .executeTakeFirstOrThrow();
    // A rename can change what every member's roles map to; otherwise only the members who came or went.
    const renamed = after.display_name !== row.display_name;
    await this.resync(tx, s, renamed ? [...new Set([...had, ...want])] : [...added, ...removed]);
    await this.audit(tx, s, 'scim.group_updated', { type: 'scim_group', id: row.id }, auditGroup(row, before), {
      ...auditGroup(after, wanted),
      added,
      removed,
    });
    const parts = [
      renamed ? `renamed to ${after.display_name}` : '',
      added.length ? `${added.length} added` : '',
      removed.length ? `${removed.length} removed` : '',
    ].filter(Boolean);
    return {
      resource: presentGroup(after, s.base, wanted),
      version: after.version,
      outcome: `updated group ${after.display_name}${parts.length ? `: ${parts.join(', ')}` : ''}`,
    };
  }

  private async resync(tx: TenantTx, s: ScimScope, scimUserIds: string[]) {
    if (!scimUserIds.length) return;
    const rows = await tx.selectFrom('scim_users').selectAll().where('tenant_id', '=', s.tenantId).where('id', 'in', scimUserIds).execute();
    await syncMembership(tx, s, rows, false);
  }

  private async assertGroupNameFree(tx: TenantTx, s: ScimScope, displayName: string) {
    const taken = await tx
      .selectFrom('scim_groups')
      .select('id')
      .where('tenant_id', '=', s.tenantId)
      .where('directory_id', '=', s.directory.id)
      .where(sql<string>`lower(display_name)`, '=', sql<string>`lower(${displayName})`)
      .executeTakeFirst();
    if (taken) throw Uniqueness(`The directory already has a group named ${displayName} (id ${taken.id}).`);
  }

  /** The directory's users named as members; an id it does not hold is refused, by name. */
  private async directoryUsers(tx: TenantTx, s: ScimScope, ids: string[]): Promise<ScimUserRow[]> {
    if (!ids.length) return [];
    const bad = ids.find((id) => !UUID.test(id));
    if (bad !== undefined) throw InvalidValue(`The directory has no user ${bad.slice(0, 60)} to make a member.`);
    const rows = await tx
      .selectFrom('scim_users')
      .selectAll()
      .where('tenant_id', '=', s.tenantId)
      .where('directory_id', '=', s.directory.id)
      .where('id', 'in', ids)
      .execute();
    const missing = ids.find((id) => !rows.some((r) => r.id === id.toLowerCase()));
    if (missing !== undefined) throw InvalidValue(`The directory has no user ${missing} to make a member.`);
    return rows;
  }

  /** A write in one transaction; a lost race on a unique key is the same 409 as the check before it. */
  private async write<T>(s: ScimScope, work: (tx: TenantTx) => Promise<T>): Promise<T> {
    try {
      return await inTenant(this.db, s.tenantId, work);
    } catch (err) {
      if (isUniqueViolation(err)) throw Uniqueness('A user or group with this name was just created in the directory.');
      throw err;
    }
  }
}

/**
 * Active users' memberships follow the directory: a user who is no member joins; a member's
 * roles become the roles their groups map to (else the default role), an `owner` role kept.
 * `join: false` only corrects the roles of those who are members (group changes do not bring
 * back someone an administrator removed).
 */
async function syncMembership(tx: TenantTx, s: ScimScope, rows: ScimUserRow[], join = true) {
  const active = rows.filter((r) => r.active);
  if (!active.length) return;
  const d = s.directory;
  const org = (await findOrg(tx, s.tenantId, d.org_id, { lock: true }))!;
  const groups = await tx
    .selectFrom('scim_group_members as m')
    .innerJoin('scim_groups as g', (j) => j.onRef('g.tenant_id', '=', 'm.tenant_id').onRef('g.id', '=', 'm.group_id'))
    .select(['m.scim_user_id', 'g.display_name'])
    .where('m.tenant_id', '=', s.tenantId)
    .where(
      'm.scim_user_id',
      'in',
      active.map((r) => r.id),
    )
    .execute();
  const change = { tx, tenantId: s.tenantId, orgId: d.org_id, actor: directoryActor(d) };
  // A group's members share their roles: each set of role names is read once.
  const resolved = new Map<string, RoleRow[]>();
  const rolesFor = async (names: string[]) => {
    const key = [...names].sort().join('\n');
    let roles = resolved.get(key);
    if (!roles) {
      roles = await rolesByName(tx, s.tenantId, d.org_id, names);
      // A mapped or default role deleted since: the member keeps a place, as `member`.
      if (!roles.length) roles = await rolesByName(tx, s.tenantId, d.org_id, ['member']);
      resolved.set(key, roles);
    }
    return roles;
  };
  for (const row of active) {
    const names = groups.filter((g) => g.scim_user_id === row.id).map((g) => g.display_name);
    const mapped = mappedRoles(d.group_roles, names);
    const roles = await rolesFor(mapped.length ? mapped : [d.default_role].filter((r) => r !== 'owner'));
    const member = await findMember(tx, s.tenantId, d.org_id, row.user_id);
    if (!member) {
      if (join) await membership.addMember(change, org, row.user_id, roles);
      if (join) org.member_count += 1;
      continue;
    }
    const keep = member.roles.includes('owner') ? await rolesFor(['owner']) : [];
    await membership.setRoles(change, member, [...roles, ...keep.filter((k) => !roles.some((r) => r.id === k.id))]);
  }
}

/**
 * After an administrator changed a directory's group mapping or default role: every active
 * user's roles follow the new configuration, in the transaction that changed it.
 */
export async function recomputeDirectoryRoles(tx: TenantTx, directory: DirectoryRow) {
  const rows = await tx
    .selectFrom('scim_users')
    .selectAll()
    .where('tenant_id', '=', directory.tenant_id)
    .where('directory_id', '=', directory.id)
    .where('active', '=', true)
    .execute();
  await syncMembership(tx, { tenantId: directory.tenant_id, directory, base: '' }, rows, false);
}

function requireEmail(input: UserInput): EmailAddress {
  if (!input.email) throw InvalidValue(input.emailProblem ?? 'The user has no email.');
  return input.email;
}

function unverifiedDomain(email: EmailAddress) {
  return InvalidValue(
    `${email.address}: ${email.domain} is not a verified domain of the organization. An organization owner verifies it first (its domains in the portal or the Admin API), then the directory retries.`,
  );
}

function accountName(input: UserInput) {
  return { name: input.name, given_name: input.givenName, family_name: input.familyName };
}

function auditUser(row: ScimUserRow, email?: string, createdAccount?: boolean) {
  return {
    user_id: row.user_id,
    user_name: row.user_name,
    external_id: row.external_id,
    active: row.active,
    ...(email ? { email } : {}),
    ...(createdAccount !== undefined ? { created_account: createdAccount } : {}),
  };
}

function auditGroup(row: ScimGroupRow, members: Array<{ id: string }>) {
  return { display_name: row.display_name, external_id: row.external_id, members: members.length };
}

function listResponse(resources: Array<Record<string, unknown>>, total: number, startIndex: number) {
  return { schemas: [SCHEMA.listResponse], totalResults: total, startIndex, itemsPerPage: resources.length, Resources: resources };
}
