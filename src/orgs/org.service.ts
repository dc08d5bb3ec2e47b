import type { OrgAuthPolicyInput } from '../auth-policy/policy.schemas.ts';
import type { Actor } from '../base/actor.ts';
import { auditPage } from '../base/audit-entries.ts';
import { Conflict, isUniqueViolation, NotFound, ValidationFailed } from '../base/errors.ts';
import { decodeCursor, page } from '../base/pagination.ts';
import type { Database, TenantTx } from '../db/database.ts';
import { scopedStatement } from '../db/one-shot.ts';
import { inTenant } from '../db/tenant-scope.ts';
import { findUserById } from '../users/user.repo.ts';
import * as membership from './membership.ts';
import { presentMember } from './membership.ts';
import type { OrgInput } from './org.schemas.ts';
import { nextAuthPolicy, presentAuthPolicy } from './org-auth-policy.ts';
import { assertMayDelete, creationRule, nextLifecycle, STATUS_REASONS, stopsWorking } from './org-lifecycle.ts';
import * as rules from './org-rules.ts';
import { revokeOrgScoped } from './org-tokens.ts';

export { presentMember };

import type { InvitationRow, OrgRow, RoleRow } from './org.repo.ts';
import * as repo from './org.repo.ts';
import { BUILTIN_ROLES } from './org.table.ts';
import { slugify, uniqueSlug } from './slug.ts';
import { countTeams } from './team.repo.ts';

export const DEFAULT_INVITATION_TTL_SECONDS = 7 * 24 * 3600;

export type { OrgInput } from './org.schemas.ts';

// ── presenters: the Admin API's shapes ───────────────────────────────────────

export function presentOrg(o: OrgRow) {
  return {
    id: o.id,
    name: o.name,
    slug: o.slug,
    domain: o.domain,
    description: o.description,
    website: o.website,
    industry: o.industry,
    logo_url: o.logo_url,
    status: o.status,
    status_reason: o.status_reason,
    status_changed_at: o.status_changed_at?.toISOString() ?? null,
    trial_ends_at: o.trial_ends_at?.toISOString() ?? null,
    created_by: o.created_by,
    metadata: o.metadata,
    max_members: o.max_members,
    max_teams: o.max_teams,
    sso_required: o.sso_required,
    created_at: o.created_at.toISOString(),
    updated_at: o.updated_at.toISOString(),
  };
}

export function presentRole(r: RoleRow) {
  return { id: r.id, name: r.name, description: r.description, permissions: r.permissions, builtin: r.builtin, created_at: r.created_at.toISOString() };
}

/** `expired` is not stored: a pending invitation past its expiry is expired. */
export function invitationStatus(i: InvitationRow): 'pending' | 'accepted' | 'revoked' | 'declined' | 'expired' {
  if (i.status === 'pending' && i.expires_at.getTime() <= Date.now()) return 'expired';
  return i.status;
}

export function presentInvitation(i: InvitationRow, roleName: string) {
  return {
    id: i.id,
    email: i.email,
    role: roleName,
    status: invitationStatus(i),
    expires_at: i.expires_at.toISOString(),
    created_at: i.created_at.toISOString(),
  };
}

/** Written only through org-lifecycle.ts `nextLifecycle`, which decides who may change them. */
const LIFECYCLE_FIELDS = new Set(['status', 'status_reason', 'trial_ends_at']);

const NO_MEMBER = () => NotFound('No such member in this organization.');

/**
 * Organizations, roles and members (invitations: invitation.service.ts; shared rules:
 * org-rules.ts). Every rule lives once, for the Admin API,
 * the portal and the account pages: the last owner stays, member limits hold, ids of another
 * organization or tenant are "not found", and every change is written to the audit log in the
 * same transaction as the change itself.
 */
export class OrgService {
  constructor(private readonly db: Database) {}

  private tx<T>(tenantId: string, work: (tx: TenantTx) => Promise<T>) {
    return inTenant(this.db, tenantId, work);
  }

  private orgOrThrow(tx: TenantTx, tenantId: string, orgId: string, lock = false) {
    return rules.orgOrThrow(tx, tenantId, orgId, lock);
  }

  private audit(
    tx: TenantTx,
    tenantId: string,
    orgId: string,
    actor: Actor,
    action: string,
    target: { type: string; id: string | null },
    before: unknown,
    after: unknown,
  ) {
    return rules.audit(tx, tenantId, orgId, actor, action, target, before, after);
  }

  private conflictOnUnique(err: unknown): never {
    if (isUniqueViolation(err)) {
      const detail = String((err as { detail?: string; constraint?: string }).detail ?? (err as { constraint?: string }).constraint ?? '');
      if (/domain/.test(detail))
        throw Conflict('Another organization of this tenant already has this domain.', [{ field: 'domain', message: 'already in use' }]);
      if (/slug/.test(detail)) throw Conflict('Another organization of this tenant already has this slug.', [{ field: 'slug', message: 'already in use' }]);
      if (/name/.test(detail)) throw Conflict('This organization already has a role with that name.', [{ field: 'name', message: 'already in use' }]);
      throw Conflict('That would duplicate an existing entry.');
    }
    throw err;
  }

  // ── organizations ──────────────────────────────────────────────────────────

  /**
   * Creates an organization. One a user (not a tenant admin) creates counts against the tenant's
   * max_organizations_per_user and, when approval is required, starts `pending` whatever was
   * asked (org-lifecycle.ts); only the tenant sets a status, its reason or a trial on creation.
   */
  async create(tenantId: string, actor: Actor, input: OrgInput, now = new Date()): Promise<OrgRow> {
    try {
      return await this.tx(tenantId, async (tx) => {
        const rule = await creationRule(tx, tenantId, actor);
        const status = rule.pending ? 'pending' : (input.status ?? 'active');
        if (input.trial_ends_at && status !== 'trialing') {
          throw ValidationFailed('A trial end applies only to a trialing organization: set status to trialing too.', [
            { field: 'trial_ends_at', message: 'needs status trialing' },
          ]);
        }
        const slug = input.slug ?? (await uniqueSlug(slugify(input.name), (s) => repo.slugTaken(tx, tenantId, s)));
        const org = await repo.insertOrg(tx, {
          tenant_id: tenantId,
          name: input.name,
          slug,
          domain: input.domain ?? null,
          description: input.description ?? null,
          website: input.website ?? null,
          industry: input.industry ?? null,
          logo_url: input.logo_url ?? null,
          metadata: input.metadata ?? {},
          status,
          status_reason: rule.pending ? STATUS_REASONS.awaitingApproval : (input.status_reason ?? null),
          status_changed_at: now,
          trial_ends_at: rule.pending ? null : (input.trial_ends_at ?? null),
          created_by: rule.createdBy,
          ...(input.max_members ? { max_members: input.max_members } : {}),
          ...(input.max_teams !== undefined ? { max_teams: input.max_teams } : {}),
          ...(input.sso_required !== undefined ? { sso_required: input.sso_required } : {}),
        });
        const roles = await repo.insertRoles(
          tx,
          BUILTIN_ROLES.map((name) => ({ tenant_id: tenantId, org_id: org.id, name, description: null, builtin: true })),
        );
        await this.audit(tx, tenantId, org.id, actor, 'organization.created', { type: 'organization', id: org.id }, null, presentOrg(org));
        // The one who creates an organization is its first owner (who may create one is decided before).
        if (input.owner) await membership.addFoundingOwner({ tx, tenantId, orgId: org.id, actor }, org, input.owner, roles.find((r) => r.name === 'owner')!);
        return org;
      });
    } catch (err) {
      this.conflictOnUnique(err);
    }
  }

  /** An organization and `userId`'s roles in it (undefined: not a member), in one transaction. */
  async withMembership(tenantId: string, orgId: string, userId: string): Promise<{ org: OrgRow; roles: string[] | undefined }> {
    return this.tx(tenantId, async (tx) => {
      const org = await this.orgOrThrow(tx, tenantId, orgId);
      return { org, roles: (await repo.findMember(tx, tenantId, orgId, userId))?.roles };
    });
  }

  async get(tenantId: string, orgId: string): Promise<OrgRow> {
    return this.tx(tenantId, (tx) => this.orgOrThrow(tx, tenantId, orgId));
  }

  async list(tenantId: string, q: { q?: string | undefined; status?: string | undefined; limit: number; cursor?: string | undefined }) {
    const rows = await this.tx(tenantId, (tx) => repo.listOrgs(tx, tenantId, { q: q.q, status: q.status, limit: q.limit, after: decodeCursor(q.cursor) }));
    const p = page(rows, q.limit, (o) => ({ createdAt: o.created_at, id: o.id }));
    return { data: p.data.map(presentOrg), next_cursor: p.next_cursor };
  }

  /**
   * PUT replaces every field (those left out return to their defaults); PATCH changes only the
   * fields given. A slug may be changed but not emptied; `slug: null` on PUT regenerates it.
   */
  async update(tenantId: string, actor: Actor, orgId: string, input: Partial<OrgInput>, mode: 'put' | 'patch'): Promise<OrgRow> {
    try {
      return await this.tx(tenantId, async (tx) => {
        const before = await this.orgOrThrow(tx, tenantId, orgId, true);
        const next =
          mode === 'put'
            ? {
                name: input.name!,
                slug: input.slug ?? (await uniqueSlug(slugify(input.name!), (s) => repo.slugTaken(tx, tenantId, s, orgId))),
                domain: input.domain ?? null,
                description: input.description ?? null,
                website: input.website ?? null,
                industry: input.industry ?? null,
                logo_url: input.logo_url ?? null,
                metadata: input.metadata ?? {},
                max_members: input.max_members ?? 50,
                max_teams: input.max_teams ?? 100,
                sso_required: input.sso_required ?? false,
              }
            : Object.fromEntries(Object.entries(input).filter(([key, v]) => v !== undefined && !LIFECYCLE_FIELDS.has(key)));
        // Status, its reason and the trial: who may change them and to what (org-lifecycle.ts).
        Object.assign(next, await nextLifecycle(tx, tenantId, actor, before, input, mode, new Date()));
        if (next.max_members !== undefined) {
          const count = before.member_count;
          if ((next.max_members as number) < count) {
            throw ValidationFailed(`The organization already has ${count} members; max_members can't be lower.`, [
              { field: 'max_members', message: `must be at least ${count}` },
            ]);
          }
        }
        if (next.max_teams !== undefined) {
          const teams = await countTeams(tx, tenantId, orgId);
          if ((next.max_teams as number) < teams) {
            throw ValidationFailed(`The organization already has ${teams} teams; max_teams can't be lower.`, [
              { field: 'max_teams', message: `must be at least ${teams}` },
            ]);
          }
        }
        const after = await repo.updateOrg(tx, tenantId, orgId, next as Parameters<typeof repo.updateOrg>[3]);
        // An organization that stops working (suspended, back to pending) issues no org-scoped
        // tokens: end the sign-ins and API tokens working in it.
        if (stopsWorking(before, after)) await revokeOrgScoped(tx, tenantId, orgId);
        await this.audit(tx, tenantId, orgId, actor, 'organization.updated', { type: 'organization', id: orgId }, presentOrg(before), presentOrg(after));
        return after;
      });
    } catch (err) {
      this.conflictOnUnique(err);
    }
  }

  // ── authentication policy ──────────────────────────────────────────────────

  async getAuthPolicy(tenantId: string, orgId: string) {
    return presentAuthPolicy(await this.get(tenantId, orgId));
  }

  /** PUT (fields left out return to their defaults) or PATCH; audited as `organization.auth_policy.updated`. */
  async setAuthPolicy(tenantId: string, actor: Actor, orgId: string, input: OrgAuthPolicyInput, mode: 'put' | 'patch') {
    return this.tx(tenantId, async (tx) => {
      const before = await this.orgOrThrow(tx, tenantId, orgId, true);
      const next = nextAuthPolicy(before, input, mode, new Date());
      const after = await repo.updateOrgAuthPolicy(tx, tenantId, orgId, next);
      const shown = presentAuthPolicy(after);
      await this.audit(tx, tenantId, orgId, actor, 'organization.auth_policy.updated', { type: 'organization', id: orgId }, presentAuthPolicy(before), shown);
      return shown;
    });
  }

  /** Deletes the organization with its roles, members and invitations (foreign keys cascade). */
  async delete(tenantId: string, actor: Actor, orgId: string): Promise<void> {
    await this.tx(tenantId, async (tx) => {
      const before = await this.orgOrThrow(tx, tenantId, orgId, true);
      await assertMayDelete(tx, tenantId, actor, before);
      await revokeOrgScoped(tx, tenantId, orgId);
      await repo.deleteOrg(tx, tenantId, orgId);
      await this.audit(tx, tenantId, orgId, actor, 'organization.deleted', { type: 'organization', id: orgId }, presentOrg(before), null);
    });
  }

  // ── roles ──────────────────────────────────────────────────────────────────

  async listRoles(tenantId: string, orgId: string) {
    return this.tx(tenantId, async (tx) => {
      await this.orgOrThrow(tx, tenantId, orgId);
      return (await repo.listRoles(tx, tenantId, orgId)).map(presentRole);
    });
  }

  async createRole(
    tenantId: string,
    actor: Actor,
    orgId: string,
    input: { name: string; description?: string | undefined; permissions?: string[] | undefined },
  ) {
    try {
      return await this.tx(tenantId, async (tx) => {
        await this.orgOrThrow(tx, tenantId, orgId);
        await rules.assertPermissionsHeld(tx, tenantId, orgId, actor, input.permissions ?? [], 'permissions', 'write');
        const [role] = await repo.insertRoles(tx, [
          { tenant_id: tenantId, org_id: orgId, name: input.name, description: input.description ?? null, permissions: [...new Set(input.permissions ?? [])] },
        ]);
        await this.audit(tx, tenantId, orgId, actor, 'role.created', { type: 'role', id: role!.id }, null, presentRole(role!));
        return presentRole(role!);
      });
    } catch (err) {
      this.conflictOnUnique(err);
    }
  }

  async updateRole(
    tenantId: string,
    actor: Actor,
    orgId: string,
    roleId: string,
    input: { description?: string | null | undefined; permissions?: string[] | undefined },
  ) {
    return this.tx(tenantId, async (tx) => {
      await this.orgOrThrow(tx, tenantId, orgId);
      const before = await repo.findRole(tx, tenantId, orgId, roleId);
      if (!before) throw NotFound('No such role in this organization.');
      // A role above the actor stays as it is; a new permission set stays within the ceiling.
      if (input.permissions)
        await rules.assertPermissionsHeld(tx, tenantId, orgId, actor, [...before.permissions, ...input.permissions], 'permissions', 'change');
      const after = await repo.updateRole(tx, tenantId, roleId, {
        ...(input.description !== undefined ? { description: input.description } : {}),
        ...(input.permissions ? { permissions: [...new Set(input.permissions)] } : {}),
      });
      await this.audit(tx, tenantId, orgId, actor, 'role.updated', { type: 'role', id: roleId }, presentRole(before), presentRole(after));
      return presentRole(after);
    });
  }

  /** Built-in roles stay. A role in use goes only with `force`, taking its members' grants and pending invitations with it. */
  async deleteRole(tenantId: string, actor: Actor, orgId: string, roleId: string, force: boolean) {
    await this.tx(tenantId, async (tx) => {
      await this.orgOrThrow(tx, tenantId, orgId, true);
      const role = await repo.findRole(tx, tenantId, orgId, roleId);
      if (!role) throw NotFound('No such role in this organization.');
      if (role.builtin) throw Conflict(`"${role.name}" is a built-in role and can't be deleted.`);
      await rules.assertRolesWithinReach(tx, tenantId, orgId, actor, [role], 'role');
      const usage = await repo.roleUsage(tx, tenantId, roleId);
      if (!force && (usage.members > 0 || usage.invitations > 0)) {
        throw Conflict(
          `The role "${role.name}" is held by ${usage.members} member(s) and ${usage.invitations} pending invitation(s). Delete with ?force=true to remove it from them.`,
        );
      }
      // Tokens carry org_roles: those of members who held the role are revoked with it.
      const holders = await tx.selectFrom('org_member_roles').select('user_id').where('tenant_id', '=', tenantId).where('role_id', '=', roleId).execute();
      await revokeOrgScoped(
        tx,
        tenantId,
        orgId,
        holders.map((h) => h.user_id),
      );
      await repo.deleteRole(tx, tenantId, roleId);
      await this.audit(tx, tenantId, orgId, actor, 'role.deleted', { type: 'role', id: roleId }, { ...presentRole(role), usage }, null);
    });
  }

  private resolveRoles(tx: TenantTx, tenantId: string, orgId: string, names: string[], field: string) {
    return rules.resolveRoles(tx, tenantId, orgId, names, field);
  }

  // ── members ────────────────────────────────────────────────────────────────

  async listMembers(tenantId: string, orgId: string, q: { limit: number; cursor?: string | undefined }) {
    const after = decodeCursor(q.cursor);
    // One statement, one round trip (db/one-shot.ts): a member row proves its organization
    // exists in this tenant (foreign key, RLS), so only an empty page asks whether it does.
    // Prepared: its planning cost PostgreSQL more than half as much as running it (db/prepared.ts).
    const rows = await scopedStatement(this.db, tenantId, (tx) => repo.listMembers(tx, tenantId, orgId, { limit: q.limit, after }), { prepare: true });
    if (rows.length === 0) await scopedStatement(this.db, tenantId, (tx) => this.orgOrThrow(tx, tenantId, orgId));
    const p = page(rows, q.limit, (m) => ({ createdAt: m.joined_at, id: m.user_id }));
    return { data: p.data.map(presentMember), next_cursor: p.next_cursor };
  }

  async getMember(tenantId: string, orgId: string, userId: string) {
    return this.tx(tenantId, async (tx) => {
      await this.orgOrThrow(tx, tenantId, orgId);
      const m = await repo.findMember(tx, tenantId, orgId, userId);
      if (!m) throw NO_MEMBER();
      return presentMember(m);
    });
  }

  /** Adds a user of the tenant (409 if already a member, 409 when the organization is full). */
  async addMember(tenantId: string, actor: Actor, orgId: string, userId: string, roleNames: string[]) {
    return this.tx(tenantId, async (tx) => {
      const org = await this.orgOrThrow(tx, tenantId, orgId, true);
      const user = await findUserById(tx, tenantId, userId);
      if (!user) throw ValidationFailed('No user with that id in this tenant.', [{ field: 'user_id', message: 'unknown user' }]);
      if (await repo.findMember(tx, tenantId, orgId, userId)) throw Conflict('That user is already a member; change their roles with PATCH instead.');
      const roles = await this.resolveRoles(tx, tenantId, orgId, roleNames, 'roles');
      return presentMember(await membership.addMember({ tx, tenantId, orgId, actor }, org, userId, roles));
    });
  }

  async changeMemberRoles(tenantId: string, actor: Actor, orgId: string, userId: string, roleNames: string[]) {
    return this.tx(tenantId, async (tx) => {
      await this.orgOrThrow(tx, tenantId, orgId, true);
      const before = await repo.findMember(tx, tenantId, orgId, userId);
      if (!before) throw NO_MEMBER();
      const roles = await this.resolveRoles(tx, tenantId, orgId, roleNames, 'roles');
      return presentMember(await membership.setRoles({ tx, tenantId, orgId, actor }, before, roles));
    });
  }

  /** Removes the membership only; the user's tenant account is untouched. Also how a member leaves. */
  async removeMember(tenantId: string, actor: Actor, orgId: string, userId: string) {
    await this.tx(tenantId, async (tx) => {
      await this.orgOrThrow(tx, tenantId, orgId, true);
      const before = await repo.findMember(tx, tenantId, orgId, userId);
      if (!before) throw NO_MEMBER();
      await membership.removeMember({ tx, tenantId, orgId, actor }, before);
    });
  }

  /**
   * Makes `userId` (a member) an owner. The caller, when a user who owns the organization,
   * becomes admin; with an API key or machine token, every previous owner becomes admin.
   */
  async transferOwnership(tenantId: string, actor: Actor, orgId: string, userId: string) {
    return this.tx(tenantId, async (tx) => {
      await this.orgOrThrow(tx, tenantId, orgId, true);
      const target = await repo.findMember(tx, tenantId, orgId, userId);
      if (!target) throw ValidationFailed('The new owner must already be a member of the organization.', [{ field: 'user_id', message: 'not a member' }]);
      const builtins = await this.resolveRoles(tx, tenantId, orgId, ['owner', 'admin'], 'roles');
      const owner = builtins.find((r) => r.name === 'owner')!;
      const admin = builtins.find((r) => r.name === 'admin')!;
      const owners = await repo.ownerIds(tx, tenantId, orgId);
      const demote = actor.type === 'user' ? owners.filter((id) => id === actor.id && id !== userId) : owners.filter((id) => id !== userId);
      const change = { tx, tenantId, orgId, actor };
      const targetRoles = await repo.rolesByName(tx, tenantId, orgId, target.roles);
      const after = await membership.setRoles(change, target, [...targetRoles.filter((r) => r.name !== 'owner'), owner], 'ownership.transferred');
      for (const id of demote) {
        const current = (await repo.findMember(tx, tenantId, orgId, id))!;
        const keep = (await repo.rolesByName(tx, tenantId, orgId, current.roles)).filter((r) => r.name !== 'owner' && r.name !== 'admin');
        await membership.setRoles(change, current, [...keep, admin], 'ownership.transferred');
      }
      return presentMember(after);
    });
  }

  // ── audit log ──────────────────────────────────────────────────────────────

  /** Newest first. Readable while the organization exists. */
  async auditLog(tenantId: string, orgId: string, q: { limit: number; cursor?: string | undefined }) {
    return this.tx(tenantId, async (tx) => {
      await this.orgOrThrow(tx, tenantId, orgId);
      const rows = await repo.listAudit(tx, tenantId, orgId, { limit: q.limit, after: decodeCursor(q.cursor) });
      return auditPage(rows, q.limit);
    });
  }
}
