import { sql } from 'kysely';
import type { Actor } from '../base/actor.ts';
import { Conflict, NotFound } from '../base/errors.ts';
import { decodeCursor, page } from '../base/pagination.ts';
import { randomSecret, sha256Hex } from '../crypto/secrets.ts';
import type { Database, TenantTx } from '../db/database.ts';
import { inTenant } from '../db/tenant-scope.ts';
import type { MailOutbox } from '../mail/outbox.ts';
import { findUserById } from '../users/user.repo.ts';
import { takeInvitationSend } from './invitation-limits.ts';
import * as membership from './membership.ts';
import type { InvitationRow, OrgRow } from './org.repo.ts';
import * as repo from './org.repo.ts';
import { DEFAULT_INVITATION_TTL_SECONDS, invitationStatus, presentInvitation, presentOrg } from './org.service.ts';
import { isWorking } from './org.table.ts';
import { audit, orgOrThrow, resolveRoles } from './org-rules.ts';

/**
 * Whether `user` is the account an invitation is for: the same email key, so any spelling of the
 * invited address. (A null key, left by an invitation older than the email rule to an address it
 * refuses, matches no one.)
 */
export function isInvitedAccount(inv: { email_key: string | null }, user: { email_key: string }): boolean {
  return inv.email_key !== null && inv.email_key === user.email_key;
}

/**
 * Invitations go out and are taken up only while the organization works (`isWorking`: active or
 * trialing). None leaves one that is waiting for approval or was rejected — nobody is asked to
 * join what may never work — nor a suspended one: it issues no tokens, and its invitations'
 * pages would otherwise still offer its SSO. Refused (409), not held: the owner invites (or
 * resends) once it works again; the approval mail says so.
 */
function assertMayInvite(org: OrgRow) {
  if (org.status === 'pending')
    throw Conflict(`${org.name} is waiting for approval by an administrator: invite people once it is approved (you will get an email).`);
  if (org.status === 'rejected') throw Conflict(`${org.name} was not approved, so it can't invite anyone.`);
  if (!isWorking(org.status)) throw Conflict(`${org.name} is ${org.status}, so it can't invite anyone until a tenant administrator reactivates it.`);
}

/** Why nobody can join `org` through an invitation now, or undefined when they can. */
export function joinRefusal(org: { name: string; status: string }): string | undefined {
  return isWorking(org.status)
    ? undefined
    : `${org.name} is not taking new members at the moment, so this invitation can't be accepted now. Ask whoever invited you.`;
}

/**
 * Invitations to an organization: by email, with a role and an expiry; the link's token is
 * mailed and only its SHA-256 kept; resend rotates it; accepted from the emailed page or from the
 * account API, declined from the account API. Membership rules (limit, roles) are the
 * organization's (org-rules.ts).
 */
export class InvitationService {
  constructor(
    private readonly db: Database,
    private readonly outbox: MailOutbox,
  ) {}

  private tx<T>(tenantId: string, work: (tx: TenantTx) => Promise<T>) {
    return inTenant(this.db, tenantId, work);
  }

  // (invitations)──────────────────────────────────────────────────────────

  async listInvitations(tenantId: string, orgId: string, q: { limit: number; cursor?: string | undefined }) {
    return this.tx(tenantId, async (tx) => {
      await orgOrThrow(tx, tenantId, orgId);
      const rows = await repo.listInvitations(tx, tenantId, orgId, { limit: q.limit, after: decodeCursor(q.cursor) });
      const roles = new Map((await repo.listRoles(tx, tenantId, orgId)).map((r) => [r.id, r.name]));
      const p = page(rows, q.limit, (i) => ({ createdAt: i.created_at, id: i.id }));
      return { data: p.data.map((i) => presentInvitation(i, roles.get(i.role_id) ?? '')), next_cursor: p.next_cursor };
    });
  }

  /** Invites by email; the link (its token hashed at rest) is mailed. One pending invitation per email. */
  async invite(tenantId: string, actor: Actor, orgId: string, input: { email: string; role: string; expires_in?: number | undefined }) {
    return this.tx(tenantId, async (tx) => {
      const org = await orgOrThrow(tx, tenantId, orgId, true);
      assertMayInvite(org);
      const [role] = await resolveRoles(tx, tenantId, orgId, [input.role], 'role');
      await membership.assertRolesMayChange({ tx, tenantId, orgId, actor }, [role!]);
      if (await repo.pendingInvitationFor(tx, tenantId, orgId, input.email)) {
        throw Conflict('This email already has a pending invitation to this organization: resend or revoke it.', [
          { field: 'email', message: 'already invited' },
        ]);
      }
      const token = randomSecret(32);
      const invitation = await repo.insertInvitation(tx, {
        tenant_id: tenantId,
        org_id: orgId,
        email: input.email,
        role_id: role!.id,
        token_hash: sha256Hex(token),
        expires_at: new Date(Date.now() + (input.expires_in ?? DEFAULT_INVITATION_TTL_SECONDS) * 1000),
        invited_by: actor,
      });
      await takeInvitationSend(tx, tenantId, orgId, invitation.id);
      await this.outbox.enqueue(tx, tenantId, 'org_invitation', input.email, {
        token,
        org_name: org.name,
        role: role!.name,
        expires_at: invitation.expires_at.toISOString(),
      });
      const shown = presentInvitation(invitation, role!.name);
      await audit(tx, tenantId, orgId, actor, 'invitation.created', { type: 'invitation', id: invitation.id }, null, shown);
      return shown;
    });
  }

  /** A new token and a new mail; the old link stops working. Expiry restarts. Sends are limited (invitation-limits.ts). */
  async resendInvitation(tenantId: string, actor: Actor, orgId: string, invitationId: string, expiresIn?: number) {
    return this.tx(tenantId, async (tx) => {
      const org = await orgOrThrow(tx, tenantId, orgId);
      assertMayInvite(org);
      const before = await repo.findInvitation(tx, tenantId, orgId, invitationId, { lock: true });
      if (!before) throw NotFound('No such invitation in this organization.');
      if (before.status !== 'pending') throw Conflict(`This invitation is ${before.status}; create a new one instead.`);
      await takeInvitationSend(tx, tenantId, orgId, invitationId);
      const role = (await repo.findRole(tx, tenantId, orgId, before.role_id))!;
      const token = randomSecret(32);
      const after = await repo.updateInvitation(tx, tenantId, invitationId, {
        token_hash: sha256Hex(token),
        expires_at: new Date(Date.now() + (expiresIn ?? DEFAULT_INVITATION_TTL_SECONDS) * 1000),
      });
      await this.outbox.enqueue(tx, tenantId, 'org_invitation', after.email, {
        token,
        org_name: org.name,
        role: role.name,
        expires_at: after.expires_at.toISOString(),
      });
      await audit(
        tx,
        tenantId,
        orgId,
        actor,
        'invitation.resent',
        { type: 'invitation', id: invitationId },
        presentInvitation(before, role.name),
        presentInvitation(after, role.name),
      );
      return presentInvitation(after, role.name);
    });
  }

  async revokeInvitation(tenantId: string, actor: Actor, orgId: string, invitationId: string) {
    await this.tx(tenantId, async (tx) => {
      await orgOrThrow(tx, tenantId, orgId);
      const before = await repo.findInvitation(tx, tenantId, orgId, invitationId, { lock: true });
      if (!before) throw NotFound('No such invitation in this organization.');
      if (before.status === 'accepted') throw Conflict('This invitation was already accepted; remove the member instead.');
      const role = (await repo.findRole(tx, tenantId, orgId, before.role_id))!;
      const after = await repo.updateInvitation(tx, tenantId, invitationId, { status: 'revoked' });
      await audit(
        tx,
        tenantId,
        orgId,
        actor,
        'invitation.revoked',
        { type: 'invitation', id: invitationId },
        presentInvitation(before, role.name),
        presentInvitation(after, role.name),
      );
    });
  }

  /** What an invitation link shows, without using it. */
  async inspectInvitation(tenantId: string, token: string) {
    return this.tx(tenantId, async (tx) => {
      const inv = await repo.findInvitationByToken(tx, tenantId, sha256Hex(token));
      if (!inv) return undefined;
      const org = (await repo.findOrg(tx, tenantId, inv.org_id))!;
      const role = (await repo.findRole(tx, tenantId, inv.org_id, inv.role_id))!;
      return { invitation: inv, status: invitationStatus(inv), org, role };
    });
  }

  /**
   * Uses an invitation for `userId`, whose email must be the invited one: membership with the
   * invited role (or the role added, for someone already a member), invitation accepted. Runs in
   * the caller's transaction so that registering and joining succeed or fail together.
   */
  async acceptInvitation(tx: TenantTx, tenantId: string, token: string, userId: string): Promise<{ org: OrgRow }> {
    const inv = await repo.findInvitationByToken(tx, tenantId, sha256Hex(token), { lock: true });
    return this.accept(tx, tenantId, inv, userId);
  }

  /**
   * Uses the invitation whose link started an SSO sign-in (the link proved the mailbox), for the
   * account that sign-in created; the caller's transaction, so that the account, its link and the
   * membership are made together or not at all. Only an invitation of `orgId` qualifies.
   */
  async acceptForSso(tx: TenantTx, tenantId: string, orgId: string, invitationId: string, userId: string): Promise<{ org: OrgRow }> {
    const inv = await tx
      .selectFrom('org_invitations')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .where('org_id', '=', orgId)
      .where('id', '=', invitationId)
      .forUpdate()
      .executeTakeFirst();
    return this.accept(tx, tenantId, inv, userId);
  }

  /** The signed-in user's pending invitations (to their email), across organizations. */
  async invitationsFor(tenantId: string, userId: string) {
    return this.tx(tenantId, async (tx) => {
      const user = await findUserById(tx, tenantId, userId);
      if (!user) return [];
      const rows = await tx
        .selectFrom('org_invitations as i')
        .innerJoin('organizations as o', (j) => j.onRef('o.tenant_id', '=', 'i.tenant_id').onRef('o.id', '=', 'i.org_id'))
        .innerJoin('org_roles as r', (j) => j.onRef('r.tenant_id', '=', 'i.tenant_id').onRef('r.org_id', '=', 'i.org_id').onRef('r.id', '=', 'i.role_id')) // see memberRoleNames
        .select(['i.id', 'i.expires_at', 'i.created_at', 'o.id as org_id', 'o.name as org_name', 'o.slug as org_slug', 'r.name as role'])
        .where('i.tenant_id', '=', tenantId)
        .where('i.email_key', '=', user.email_key)
        .where('i.status', '=', 'pending')
        .where('i.expires_at', '>', sql<Date>`now()`)
        .orderBy('i.created_at')
        .execute();
      return rows.map((r) => ({
        id: r.id,
        organization: { id: r.org_id, name: r.org_name, slug: r.org_slug },
        role: r.role,
        expires_at: r.expires_at.toISOString(),
        created_at: r.created_at.toISOString(),
      }));
    });
  }

  /** Accept from the account page (the user is signed in; the invitation must be to their email). */
  async acceptInvitationById(tenantId: string, userId: string, invitationId: string) {
    return this.tx(tenantId, async (tx) => {
      const inv = await tx
        .selectFrom('org_invitations')
        .selectAll()
        .where('tenant_id', '=', tenantId)
        .where('id', '=', invitationId)
        .forUpdate()
        .executeTakeFirst();
      await this.ownInvitation(tx, tenantId, userId, inv);
      const { org } = await this.accept(tx, tenantId, inv, userId);
      return presentOrg(org);
    });
  }

  async declineInvitation(tenantId: string, userId: string, invitationId: string) {
    await this.tx(tenantId, async (tx) => {
      const inv = await tx
        .selectFrom('org_invitations')
        .selectAll()
        .where('tenant_id', '=', tenantId)
        .where('id', '=', invitationId)
        .forUpdate()
        .executeTakeFirst();
      await this.ownInvitation(tx, tenantId, userId, inv);
      if (invitationStatus(inv!) !== 'pending') throw Conflict('This invitation can no longer be declined.');
      const role = (await repo.findRole(tx, tenantId, inv!.org_id, inv!.role_id))!;
      const after = await repo.updateInvitation(tx, tenantId, inv!.id, { status: 'declined' });
      await audit(
        tx,
        tenantId,
        inv!.org_id,
        { type: 'user', id: userId },
        'invitation.declined',
        { type: 'invitation', id: inv!.id },
        presentInvitation(inv!, role.name),
        presentInvitation(after, role.name),
      );
    });
  }

  /** Someone else's invitation is "not found", never a hint that it exists. */
  private async ownInvitation(tx: TenantTx, tenantId: string, userId: string, inv: InvitationRow | undefined) {
    const user = await findUserById(tx, tenantId, userId);
    if (!inv || !user || !isInvitedAccount(inv, user)) throw NotFound('No such invitation for you.');
  }

  private async accept(tx: TenantTx, tenantId: string, inv: InvitationRow | undefined, userId: string): Promise<{ org: OrgRow }> {
    if (!inv || invitationStatus(inv) !== 'pending') throw Conflict('This invitation can no longer be used.');
    const user = await findUserById(tx, tenantId, userId);
    if (!user || !isInvitedAccount(inv, user)) throw Conflict('This invitation is for another email address.');
    const org = (await repo.findOrg(tx, tenantId, inv.org_id, { lock: true }))!;
    const refused = joinRefusal(org);
    if (refused) throw Conflict(refused);
    const role = (await repo.findRole(tx, tenantId, inv.org_id, inv.role_id))!;
    const actor: Actor = { type: 'user', id: userId };
    // The roles were the inviter's to give (checked again now: an inviter who lost the right can't).
    const change = { tx, tenantId, orgId: org.id, actor, grantor: inv.invited_by as Actor };
    const existing = await repo.findMember(tx, tenantId, org.id, userId);
    if (existing) await membership.setRoles(change, existing, [...(await repo.rolesByName(tx, tenantId, org.id, existing.roles)), role]);
    else await membership.addMember(change, org, userId, [role]);
    const after = await repo.updateInvitation(tx, tenantId, inv.id, { status: 'accepted', accepted_user_id: userId, accepted_at: new Date() });
    await audit(
      tx,
      tenantId,
      org.id,
      actor,
      'invitation.accepted',
      { type: 'invitation', id: inv.id },
      presentInvitation(inv, role.name),
      presentInvitation(after, role.name),
    );
    return { org };
  }
}
