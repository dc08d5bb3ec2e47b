import Router from '@koa/router';
import type { Context } from 'koa';
import { CreateInvitation, CreateRole } from '../admin-api/schemas.ts';
import { Forbidden, NotFound } from '../base/errors.ts';
import { isUuid } from '../base/ids.ts';
import type { Render } from '../base/views.ts';
import type { InvitationService } from '../orgs/invitation.service.ts';
import type { OrgService } from '../orgs/org.service.ts';
import type { UserService } from '../users/user.service.ts';
import { type FormErrors, FormRejected, noticeFor, parseForm, portalPage } from './forms.ts';
import { type OrgPageContext, orgChange, orgPageContext, requireAbility } from './org-context.ts';

const NOTICES = {
  created: 'Organization created. You are its owner.',
  created_admin: 'Organization created.',
  created_pending: 'Organization created. You are its owner. It waits for approval by an administrator; you will get an email when it is approved.',
  added: 'Member added.',
  role_changed: 'Role changed.',
  removed: 'Member removed.',
  transferred: 'Ownership transferred. You are now an admin.',
  invited: 'Invitation sent.',
  resent: 'Invitation sent again, with a new link and expiry.',
  revoked: 'Invitation revoked.',
  role_created: 'Role added.',
  role_deleted: 'Role deleted.',
};
const REFUSALS: Record<string, string> = {
  last_owner: 'You are the last owner: make another member owner first (Transfer ownership), then leave.',
  leave: 'You could not leave this organization.',
};

const actorOf = (org: OrgPageContext) => ({ type: 'user' as const, id: org.viewer.user.id });

/** Members, invitations and roles of one organization. */
export function peoplePages(deps: { orgs: OrgService; invitations: InvitationService; users: UserService; render: Render }) {
  const router = new Router();
  const page = portalPage(deps.render);

  async function membersPage(ctx: Context, org: OrgPageContext, extra: { values?: Record<string, string>; errors?: FormErrors } = {}, status = 200) {
    const cursor = typeof ctx.query.cursor === 'string' ? ctx.query.cursor.slice(0, 500) : undefined;
    const [members, roles] = await Promise.all([
      deps.orgs.listMembers(org.tenantId, org.org.id, { limit: 50, cursor }),
      deps.orgs.listRoles(org.tenantId, org.org.id),
    ]);
    // Finding people across the tenant is for tenant admins: an organization's admin must not
    // learn who else has an account here (their customers' neighbours). They invite by email.
    const find = org.viewer.user.tenant_admin && typeof ctx.query.find === 'string' ? ctx.query.find.trim().slice(0, 200) : '';
    const found = find ? (await deps.users.list(org.tenantId, { q: find, limit: 10 })).data : [];
    const refusal = typeof ctx.query.refused === 'string' ? REFUSALS[ctx.query.refused] : undefined;
    page(
      ctx,
      'portal/org-members.njk',
      {
        title: `Members · ${org.org.name}`,
        section: 'portal',
        tab: 'members',
        org,
        members: members.data,
        nextUrl: members.next_cursor ? `${org.url}/members?cursor=${encodeURIComponent(members.next_cursor)}` : undefined,
        roleOptions: roles.filter((r) => org.can.ownerPowers || r.name !== 'owner').map((r) => ({ value: r.name, label: r.name })),
        canSearchUsers: org.viewer.user.tenant_admin,
        find,
        found: found.map((u) => ({ ...u, member: members.data.some((m) => m.user_id === u.id) })),
        notice: noticeFor(ctx, NOTICES),
        formError: extra.errors?._form ?? refusal,
        values: extra.values ?? {},
        errors: extra.errors ?? {},
      },
      status,
    );
  }

  router.get('/organizations/:orgId/members', async (ctx) => membersPage(ctx, await orgPageContext(ctx, deps.orgs)));

  const members = { back: 'members', show: membersPage } as const;

  /** Add an existing user (tenant admins: found by the search on the members page). */
  router.post(
    '/organizations/:orgId/members',
    orgChange(deps.orgs, { ...members, ability: 'manage', what: 'add members', fields: ['user_id', 'role'] }, async (_ctx, org, values) => {
      if (!org.viewer.user.tenant_admin) throw Forbidden('Invite people by email instead.');
      if (!isUuid(values.user_id!)) throw new FormRejected({ _form: 'Choose a user from the search results.' });
      await deps.orgs.addMember(org.tenantId, actorOf(org), org.org.id, values.user_id!, [values.role || 'member']);
      return 'added';
    }),
  );

  /** Change a member's role: the dropdown replaces their roles with the one chosen. */
  router.post(
    '/organizations/:orgId/members/:userId/role',
    orgChange(deps.orgs, { ...members, ability: 'manage', what: 'change roles', fields: ['role'] }, async (ctx, org, values) => {
      const userId = memberIdOf(ctx);
      await deps.orgs.changeMemberRoles(org.tenantId, actorOf(org), org.org.id, userId, [values.role!]);
      return 'role_changed';
    }),
  );

  router.post(
    '/organizations/:orgId/members/:userId/remove',
    orgChange(deps.orgs, { ...members, ability: 'manage', what: 'remove members', refusedStatus: 409 }, async (ctx, org) => {
      const userId = memberIdOf(ctx);
      await deps.orgs.removeMember(org.tenantId, actorOf(org), org.org.id, userId);
      return 'removed';
    }),
  );

  router.post(
    '/organizations/:orgId/members/:userId/transfer',
    orgChange(deps.orgs, { ...members, ability: 'ownerPowers', what: 'transfer ownership' }, async (ctx, org) => {
      await deps.orgs.transferOwnership(org.tenantId, actorOf(org), org.org.id, memberIdOf(ctx));
      return 'transferred';
    }),
  );

  // ── invitations ────────────────────────────────────────────────────────────

  async function invitationsPage(ctx: Context, org: OrgPageContext, extra: { values?: Record<string, string>; errors?: FormErrors } = {}, status = 200) {
    const cursor = typeof ctx.query.cursor === 'string' ? ctx.query.cursor.slice(0, 500) : undefined;
    const [invitations, roles] = await Promise.all([
      deps.invitations.listInvitations(org.tenantId, org.org.id, { limit: 50, cursor }),
      deps.orgs.listRoles(org.tenantId, org.org.id),
    ]);
    page(
      ctx,
      'portal/org-invitations.njk',
      {
        title: `Invitations · ${org.org.name}`,
        section: 'portal',
        tab: 'invitations',
        org,
        invitations: invitations.data.filter((i) => i.status === 'pending' || i.status === 'expired'),
        nextUrl: invitations.next_cursor ? `${org.url}/invitations?cursor=${encodeURIComponent(invitations.next_cursor)}` : undefined,
        roleOptions: roles.filter((r) => org.can.ownerPowers || r.name !== 'owner').map((r) => ({ value: r.name, label: r.name })),
        notice: noticeFor(ctx, NOTICES),
        formError: extra.errors?._form,
        values: { role: 'member', ...extra.values },
        errors: extra.errors ?? {},
      },
      status,
    );
  }

  router.get('/organizations/:orgId/invitations', async (ctx) => {
    const org = await orgPageContext(ctx, deps.orgs);
    requireAbility(org, 'manage', 'see invitations');
    await invitationsPage(ctx, org);
  });

  const invitationsTab = { back: 'invitations', show: invitationsPage, ability: 'manage' } as const;

  router.post(
    '/organizations/:orgId/invitations',
    orgChange(deps.orgs, { ...invitationsTab, what: 'invite people', fields: ['email', 'role'] }, async (_ctx, org, values) => {
      const input = parseForm(CreateInvitation, { email: values.email, role: values.role || 'member' });
      await deps.invitations.invite(org.tenantId, actorOf(org), org.org.id, input);
      return 'invited';
    }),
  );

  router.post(
    '/organizations/:orgId/invitations/:invitationId/resend',
    orgChange(deps.orgs, { ...invitationsTab, what: 'resend invitations', refusedStatus: 409 }, async (ctx, org) => {
      await deps.invitations.resendInvitation(org.tenantId, actorOf(org), org.org.id, invitationIdOf(ctx));
      return 'resent';
    }),
  );

  router.post(
    '/organizations/:orgId/invitations/:invitationId/revoke',
    orgChange(deps.orgs, { ...invitationsTab, what: 'revoke invitations', refusedStatus: 409 }, async (ctx, org) => {
      await deps.invitations.revokeInvitation(org.tenantId, actorOf(org), org.org.id, invitationIdOf(ctx));
      return 'revoked';
    }),
  );

  // ── roles ──────────────────────────────────────────────────────────────────

  async function rolesPage(ctx: Context, org: OrgPageContext, extra: { values?: Record<string, string>; errors?: FormErrors } = {}, status = 200) {
    page(
      ctx,
      'portal/org-roles.njk',
      {
        title: `Roles · ${org.org.name}`,
        section: 'portal',
        tab: 'roles',
        org,
        roles: await deps.orgs.listRoles(org.tenantId, org.org.id),
        notice: noticeFor(ctx, NOTICES),
        formError: extra.errors?._form,
        values: extra.values ?? {},
        errors: extra.errors ?? {},
      },
      status,
    );
  }

  router.get('/organizations/:orgId/roles', async (ctx) => {
    const org = await orgPageContext(ctx, deps.orgs);
    requireAbility(org, 'manage', 'manage roles');
    await rolesPage(ctx, org);
  });

  const rolesTab = { back: 'roles', show: rolesPage, ability: 'manage', what: 'manage roles' } as const;

  router.post(
    '/organizations/:orgId/roles',
    orgChange(deps.orgs, { ...rolesTab, fields: ['name', 'description', 'permissions'] }, async (_ctx, org, values) => {
      const permissions = values.permissions!.split(/[\s,]+/).filter(Boolean);
      const input = parseForm(CreateRole, {
        name: values.name,
        ...(values.description ? { description: values.description } : {}),
        ...(permissions.length ? { permissions } : {}),
      });
      await deps.orgs.createRole(org.tenantId, actorOf(org), org.org.id, input);
      return 'role_created';
    }),
  );

  /** Deleting a role in use takes it from its members too (the form says so before). */
  router.post(
    '/organizations/:orgId/roles/:roleId/delete',
    orgChange(deps.orgs, { ...rolesTab, refusedStatus: 409 }, async (ctx, org) => {
      const roleId = String(ctx.params.roleId);
      if (!isUuid(roleId)) throw NotFound('No such role.');
      await deps.orgs.deleteRole(org.tenantId, actorOf(org), org.org.id, roleId, true);
      return 'role_deleted';
    }),
  );

  return router;
}

function memberIdOf(ctx: Context): string {
  const id = String(ctx.params.userId);
  if (!isUuid(id)) throw NotFound('No such member.');
  return id;
}

function invitationIdOf(ctx: Context): string {
  const id = String(ctx.params.invitationId);
  if (!isUuid(id)) throw NotFound('No such invitation.');
  return id;
}
