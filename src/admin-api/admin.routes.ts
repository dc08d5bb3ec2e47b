import type { Context } from 'koa';
import { errors as oidcErrors } from 'oidc-provider';
import type { AccountService } from '../accounts/account.service.ts';
import type { BruteForce } from '../accounts/brute-force.ts';
import type { FactorAdministration } from '../accounts/factor-admin.service.ts';
import { ValidationFailed } from '../base/errors.ts';
import type { MailOutbox } from '../mail/outbox.ts';
import type { ClientService, MetadataValidator } from '../oidc/client.service.ts';
import { presentClient } from '../oidc/client.service.ts';
import type { TenantRuntimes } from '../oidc/tenant-runtime.ts';
import type { InvitationService } from '../orgs/invitation.service.ts';
import { type OrgService, presentOrg } from '../orgs/org.service.ts';
import type { OrgLifecycle } from '../orgs/org-lifecycle.ts';
import type { TeamService } from '../orgs/team.service.ts';
import type { DirectoryService } from '../scim/directory.service.ts';
import type { SetupLinkService } from '../setup-links/setup-link.service.ts';
import type { ConnectionService } from '../sso/connection.service.ts';
import type { DomainService } from '../sso/domain.service.ts';
import type { TenantService } from '../tenants/tenant.service.ts';
import type { ApiTokenService } from '../tokens/api-token.service.ts';
import { presentUser, type UserService } from '../users/user.service.ts';
import { ApiRegistry } from './registry.ts';
import * as s from './schemas.ts';
import { teamRoutes } from './team-routes.ts';

export interface AdminDeps {
  users: UserService;
  clients: ClientService;
  runtimes: TenantRuntimes;
  tenants: TenantService;
  accounts: AccountService;
  bruteForce: BruteForce;
  outbox: MailOutbox;
  orgs: OrgService;
  teams: TeamService;
  invitations: InvitationService;
  lifecycle: OrgLifecycle;
  apiTokens: ApiTokenService;
  domains: DomainService;
  connections: ConnectionService;
  directories: DirectoryService;
  setupLinks: SetupLinkService;
  factorAdmin: FactorAdministration;
}

/** The Admin API's route table: HTTP only; rules live in the services. */
export function adminApi(deps: AdminDeps): ApiRegistry {
  const api = new ApiRegistry();
  const { users, clients, orgs } = deps;

  // Client metadata is checked by the tenant's own oidc-provider, so the API can't store a
  // client the provider would later refuse.
  const validateWith =
    (ctx: Context): MetadataValidator =>
    async (_tenantId, metadata) => {
      try {
        await ctx.state.runtime.provider.Client.validate(metadata as never);
      } catch (err) {
        if (err instanceof oidcErrors.InvalidClientMetadata || err instanceof oidcErrors.InvalidRedirectUri) {
          const description = (err as { error_description?: string }).error_description ?? err.message;
          const field = /^(\w+)/.exec(description)?.[1] ?? '(body)';
          throw ValidationFailed(description, [{ field, message: description }]);
        }
        throw err;
      }
    };
  const created = (ctx: Context, location: string, body: unknown) => {
    ctx.status = 201;
    ctx.set('Location', location);
    ctx.body = body;
  };

  // ── users ────────────────────────────────────────────────────────────────
  const U = 'Users';
  api.add({
    method: 'get',
    path: '/users',
    tag: U,
    summary: 'List users (?email=, ?q=)',
    query: s.ListUsers,
    responses: { 200: 'A page of users' },
    handler: async (ctx, { query }) => {
      ctx.body = await users.list(ctx.state.runtime.tenant.id, query);
    },
  });
  api.add({
    method: 'post',
    path: '/users',
    tag: U,
    summary: 'Create a user',
    body: s.CreateUser,
    responses: { 201: 'The user' },
    handler: async (ctx, { body }) => {
      const u = await users.create(ctx.state.runtime.tenant.id, body);
      created(ctx, `${ctx.path}/${u.id}`, presentUser(u));
    },
  });
  api.add({
    method: 'get',
    path: '/users/:userId',
    tag: U,
    summary: 'Get a user, with the SSO connections they came through',
    params: s.UserId,
    responses: { 200: 'The user' },
    handler: async (ctx, { params }) => {
      const user = presentUser(await users.get(ctx.state.runtime.tenant.id, params.userId));
      ctx.body = { ...user, identities: await deps.connections.identitiesOf(ctx.state.runtime.tenant.id, params.userId) };
    },
  });
  api.add({
    method: 'patch',
    path: '/users/:userId',
    tag: U,
    summary: 'Change a user (disabling signs them out everywhere)',
    params: s.UserId,
    body: s.UpdateUser,
    responses: { 200: 'The user' },
    handler: async (ctx, { params, body }) => {
      ctx.body = presentUser(await users.update(ctx.state.runtime.tenant.id, params.userId, body));
    },
  });
  api.add({
    method: 'delete',
    path: '/users/:userId',
    tag: U,
    summary: 'Delete a user',
    params: s.UserId,
    responses: { 204: 'Deleted' },
    handler: async (ctx, { params }) => {
      await users.delete(ctx.state.runtime.tenant.id, params.userId);
      ctx.status = 204;
    },
  });
  api.add({
    method: 'post',
    path: '/users/:userId/unlock',
    tag: U,
    summary: 'Lift a brute-force lock',
    params: s.UserId,
    responses: { 204: 'Unlocked' },
    handler: async (ctx, { params }) => {
      const user = await users.get(ctx.state.runtime.tenant.id, params.userId);
      await deps.bruteForce.unlock(ctx.state.runtime.tenant.id, user.email);
      ctx.status = 204;
    },
  });
  api.add({
    method: 'post',
    path: '/users/:userId/password-reset',
    tag: U,
    summary: 'Mail the user a password-reset link',
    params: s.UserId,
    responses: { 202: 'Queued' },
    handler: async (ctx, { params }) => {
      const user = await users.get(ctx.state.runtime.tenant.id, params.userId);
      await deps.accounts.requestPasswordReset(ctx.state.runtime.tenant.id, user.email);
      ctx.status = 202;
      ctx.body = { status: 'queued', to: user.email };
    },
  });

  api.add({
    method: 'post',
    path: '/users/:userId/tokens',
    tag: U,
    summary: 'Mint a scoped API token for the user (shown once; org_id makes it org-scoped)',
    params: s.UserId,
    body: s.MintApiToken,
    responses: { 201: '{ id, access_token, expires_in }' },
    handler: async (ctx, { params, body }) => {
      const user = await users.get(ctx.state.runtime.tenant.id, params.userId);
      if (user.disabled) throw ValidationFailed('The user is disabled.', [{ field: 'userId', message: 'disabled' }]);
      const minted = await deps.apiTokens.mint(ctx.state.runtime, user.id, body);
      ctx.set('Cache-Control', 'no-store');
      created(ctx, `${ctx.path}/${minted.id}`, minted);
    },
  });
  api.add({
    method: 'get',
    path: '/users/:userId/tokens',
    tag: U,
    summary: "List the user's API tokens (never the tokens themselves)",
    params: s.UserId,
    query: s.ListPage,
    responses: { 200: 'A page of API tokens' },
    handler: async (ctx, { params, query }) => {
      await users.get(ctx.state.runtime.tenant.id, params.userId);
      ctx.body = await deps.apiTokens.list(ctx.state.runtime.tenant.id, params.userId, query);
    },
  });
  api.add({
    method: 'delete',
    path: '/users/:userId/tokens/:tokenId',
    tag: U,
    summary: 'Revoke an API token',
    params: s.ApiTokenParams,
    responses: { 204: 'Revoked' },
    handler: async (ctx, { params }) => {
      await deps.apiTokens.revoke(ctx.state.runtime.tenant.id, params.userId, params.tokenId);
      ctx.status = 204;
    },
  });

  api.add({
    method: 'get',
    path: '/users/:userId/factors',
    tag: U,
    summary: "List the user's second factors and how many recovery codes are left (never a secret or key)",
    params: s.UserId,
    responses: { 200: '{ data: [{ id, kind, name, confirmed, created_at, last_used_at }], recovery_codes_remaining }' },
    handler: async (ctx, { params }) => {
      ctx.body = await deps.factorAdmin.list(ctx.state.runtime.tenant.id, params.userId);
    },
  });
  api.add({
    method: 'delete',
    path: '/users/:userId/factors/:factorId',
    tag: U,
    summary: 'Remove one second factor (audited; the user is mailed)',
    params: s.FactorParams,
    responses: { 204: 'Removed' },
    handler: async (ctx, { params }) => {
      await deps.factorAdmin.remove(ctx.state.runtime.tenant.id, ctx.state.actor, params.userId, params.factorId);
      ctx.status = 204;
    },
  });
  api.add({
    method: 'delete',
    path: '/users/:userId/factors',
    tag: U,
    summary: 'Reset every second factor and recovery code, and sign the user out everywhere (audited; the user is mailed)',
    params: s.UserId,
    responses: { 204: 'Reset' },
    handler: async (ctx, { params }) => {
      await deps.factorAdmin.reset(ctx.state.runtime.tenant.id, ctx.state.actor, params.userId);
      ctx.status = 204;
    },
  });

  // ── clients ──────────────────────────────────────────────────────────────
  const C = 'Clients';
  api.add({
    method: 'get',
    path: '/clients',
    tag: C,
    summary: 'List OIDC clients',
    query: s.ListPage,
    responses: { 200: 'A page of clients' },
    handler: async (ctx, { query }) => {
      ctx.body = await clients.list(ctx.state.runtime.tenant.id, query);
    },
  });
  api.add({
    method: 'post',
    path: '/clients',
    tag: C,
    summary: 'Register a client (the secret is shown once)',
    body: s.CreateClient,
    responses: { 201: 'The client, with client_secret' },
    handler: async (ctx, { body }) => {
      const { row, secret } = await clients.create(ctx.state.runtime.tenant.id, body, validateWith(ctx));
      created(ctx, `${ctx.path}/${row.client_id}`, { ...presentClient(row), ...(secret ? { client_secret: secret } : {}) });
    },
  });
  api.add({
    method: 'get',
    path: '/clients/:clientId',
    tag: C,
    summary: 'Get a client',
    params: s.ClientId,
    responses: { 200: 'The client' },
    handler: async (ctx, { params }) => {
      ctx.body = presentClient(await clients.get(ctx.state.runtime.tenant.id, params.clientId));
    },
  });
  api.add({
    method: 'patch',
    path: '/clients/:clientId',
    tag: C,
    summary: 'Change a client; rotate_secret issues a new secret',
    params: s.ClientId,
    body: s.UpdateClient,
    responses: { 200: 'The client' },
    handler: async (ctx, { params, body }) => {
      const { row, secret } = await clients.update(ctx.state.runtime.tenant.id, params.clientId, body, validateWith(ctx), ctx.state.actor);
      ctx.body = { ...presentClient(row), ...(secret ? { client_secret: secret } : {}) };
    },
  });
  api.add({
    method: 'delete',
    path: '/clients/:clientId',
    tag: C,
    summary: 'Delete a client and revoke its tokens',
    params: s.ClientId,
    responses: { 204: 'Deleted' },
    handler: async (ctx, { params }) => {
      await clients.delete(ctx.state.runtime.tenant.id, params.clientId);
      ctx.status = 204;
    },
  });

  // ── tenant ───────────────────────────────────────────────────────────────
  const T = 'Tenant';
  api.add({
    method: 'get',
    path: '/settings',
    tag: T,
    summary: 'Tenant settings',
    responses: { 200: 'The settings' },
    handler: (ctx) => {
      ctx.body = deps.tenants.presentSettings(ctx.state.runtime.tenant);
    },
  });
  api.add({
    method: 'patch',
    path: '/settings',
    tag: T,
    summary: 'Change tenant settings',
    body: s.UpdateSettings,
    responses: { 200: 'The settings' },
    handler: async (ctx, { body }) => {
      const runtime = ctx.state.runtime;
      const updated = await deps.tenants.updateSettings(runtime.tenant, body, ctx.state.actor);
      deps.runtimes.invalidate(runtime.tenant.slug);
      ctx.body = deps.tenants.presentSettings(updated);
    },
  });
  api.add({
    method: 'get',
    path: '/audit-log',
    tag: T,
    summary: "The tenant's audit log (changes to people outside any organization, such as factor resets), newest first",
    query: s.ListPage,
    responses: { 200: 'A page of audit entries' },
    handler: async (ctx, { query }) => {
      ctx.body = await deps.tenants.auditLog(ctx.state.runtime.tenant.id, query);
    },
  });
  api.add({
    method: 'get',
    path: '/mail',
    tag: T,
    summary: 'Outgoing mail and its delivery status',
    query: s.ListMail,
    responses: { 200: 'A page of messages' },
    handler: async (ctx, { query }) => {
      ctx.body = await deps.outbox.list(ctx.state.runtime.tenant.id, query);
    },
  });

  // ── organizations ────────────────────────────────────────────────────────
  const O = 'Organizations';
  api.add({
    method: 'get',
    path: '/organizations',
    tag: O,
    summary: 'List organizations (?q= searches name and slug)',
    query: s.ListOrgs,
    responses: { 200: 'A page of organizations' },
    handler: async (ctx, { query }) => {
      ctx.body = await orgs.list(ctx.state.runtime.tenant.id, query);
    },
  });
  api.add({
    method: 'post',
    path: '/organizations',
    tag: O,
    summary: 'Create an organization',
    body: s.CreateOrg,
    responses: { 201: 'The organization' },
    handler: async (ctx, { body }) => {
      const o = await orgs.create(ctx.state.runtime.tenant.id, ctx.state.actor, body);
      created(ctx, `${ctx.path}/${o.id}`, presentOrg(o));
    },
  });
  api.add({
    method: 'get',
    path: '/organizations/:orgId',
    tag: O,
    summary: 'Get an organization',
    params: s.OrgId,
    responses: { 200: 'The organization' },
    handler: async (ctx, { params }) => {
      ctx.body = presentOrg(await orgs.get(ctx.state.runtime.tenant.id, params.orgId));
    },
  });
  api.add({
    method: 'put',
    path: '/organizations/:orgId',
    tag: O,
    summary: 'Replace an organization (fields left out return to their defaults)',
    params: s.OrgId,
    body: s.PutOrg,
    responses: { 200: 'The organization' },
    handler: async (ctx, { params, body }) => {
      ctx.body = presentOrg(await orgs.update(ctx.state.runtime.tenant.id, ctx.state.actor, params.orgId, body, 'put'));
    },
  });
  api.add({
    method: 'patch',
    path: '/organizations/:orgId',
    tag: O,
    summary: 'Change some fields of an organization',
    params: s.OrgId,
    body: s.PatchOrg,
    responses: { 200: 'The organization' },
    handler: async (ctx, { params, body }) => {
      ctx.body = presentOrg(await orgs.update(ctx.state.runtime.tenant.id, ctx.state.actor, params.orgId, body, 'patch'));
    },
  });
  api.add({
    method: 'post',
    path: '/organizations/:orgId/approve',
    tag: O,
    summary: 'Approve a pending (or rejected) organization: active, or trialing until trial_ends_at; its owners are mailed',
    params: s.OrgId,
    body: s.ApproveOrg,
    responses: { 200: 'The organization', 409: 'The organization is not pending or rejected' },
    handler: async (ctx, { params, body }) => {
      ctx.body = presentOrg(await deps.lifecycle.approve(ctx.state.runtime.tenant.id, ctx.state.actor, params.orgId, body));
    },
  });
  api.add({
    method: 'post',
    path: '/organizations/:orgId/reject',
    tag: O,
    summary: 'Reject a pending organization with a reason its owners are mailed; it stays, rejected, and issues nothing',
    params: s.OrgId,
    body: s.RejectOrg,
    responses: { 200: 'The organization', 409: 'The organization is not pending' },
    handler: async (ctx, { params, body }) => {
      ctx.body = presentOrg(await deps.lifecycle.reject(ctx.state.runtime.tenant.id, ctx.state.actor, params.orgId, body.reason));
    },
  });
  api.add({
    method: 'delete',
    path: '/organizations/:orgId',
    tag: O,
    summary: 'Delete an organization with its roles, members and invitations',
    params: s.OrgId,
    responses: { 204: 'Deleted' },
    handler: async (ctx, { params }) => {
      await orgs.delete(ctx.state.runtime.tenant.id, ctx.state.actor, params.orgId);
      ctx.status = 204;
    },
  });
  api.add({
    method: 'get',
    path: '/organizations/:orgId/auth-policy',
    tag: O,
    summary: "The organization's authentication policy (MFA, sign-in methods, SSO, session age)",
    params: s.OrgId,
    responses: { 200: 'The policy, defaults filled in' },
    handler: async (ctx, { params }) => {
      ctx.body = await orgs.getAuthPolicy(ctx.state.runtime.tenant.id, params.orgId);
    },
  });
  api.add({
    method: 'put',
    path: '/organizations/:orgId/auth-policy',
    tag: O,
    summary: 'Replace the authentication policy (fields left out return to their defaults)',
    params: s.OrgId,
    body: s.PutOrgAuthPolicy,
    responses: { 200: 'The policy' },
    handler: async (ctx, { params, body }) => {
      ctx.body = await orgs.setAuthPolicy(ctx.state.runtime.tenant.id, ctx.state.actor, params.orgId, body, 'put');
    },
  });
  api.add({
    method: 'patch',
    path: '/organizations/:orgId/auth-policy',
    tag: O,
    summary: 'Change some fields of the authentication policy',
    params: s.OrgId,
    body: s.PatchOrgAuthPolicy,
    responses: { 200: 'The policy' },
    handler: async (ctx, { params, body }) => {
      ctx.body = await orgs.setAuthPolicy(ctx.state.runtime.tenant.id, ctx.state.actor, params.orgId, body, 'patch');
    },
  });
  api.add({
    method: 'get',
    path: '/organizations/:orgId/audit-log',
    tag: O,
    summary: 'Who changed what, newest first',
    params: s.OrgId,
    query: s.ListPage,
    responses: { 200: 'A page of audit entries' },
    handler: async (ctx, { params, query }) => {
      ctx.body = await orgs.auditLog(ctx.state.runtime.tenant.id, params.orgId, query);
    },
  });

  const M = 'Members';
  api.add({
    method: 'get',
    path: '/organizations/:orgId/members',
    tag: M,
    summary: 'List members with their roles',
    params: s.OrgId,
    query: s.ListPage,
    responses: { 200: 'A page of members' },
    handler: async (ctx, { params, query }) => {
      ctx.body = await orgs.listMembers(ctx.state.runtime.tenant.id, params.orgId, query);
    },
  });
  api.add({
    method: 'post',
    path: '/organizations/:orgId/members',
    tag: M,
    summary: 'Add a user of the tenant as a member (role or roles; default member)',
    params: s.OrgId,
    body: s.AddMember,
    responses: { 201: 'The member' },
    handler: async (ctx, { params, body }) => {
      const m = await orgs.addMember(ctx.state.runtime.tenant.id, ctx.state.actor, params.orgId, body.user_id, body.roles ?? [body.role ?? 'member']);
      created(ctx, `${ctx.path}/${m.user_id}`, m);
    },
  });
  api.add({
    method: 'get',
    path: '/organizations/:orgId/members/:userId',
    tag: M,
    summary: 'Get a member',
    params: s.MemberParams,
    responses: { 200: 'The member' },
    handler: async (ctx, { params }) => {
      ctx.body = await orgs.getMember(ctx.state.runtime.tenant.id, params.orgId, params.userId);
    },
  });
  api.add({
    method: 'patch',
    path: '/organizations/:orgId/members/:userId',
    tag: M,
    summary: "Replace a member's roles (the last owner can't be demoted)",
    params: s.MemberParams,
    body: s.ChangeMember,
    responses: { 200: 'The member' },
    handler: async (ctx, { params, body }) => {
      ctx.body = await orgs.changeMemberRoles(ctx.state.runtime.tenant.id, ctx.state.actor, params.orgId, params.userId, body.roles ?? [body.role!]);
    },
  });
  api.add({
    method: 'delete',
    path: '/organizations/:orgId/members/:userId',
    tag: M,
    summary: "Remove a member (their account stays; the last owner can't be removed)",
    params: s.MemberParams,
    responses: { 204: 'Removed' },
    handler: async (ctx, { params }) => {
      await orgs.removeMember(ctx.state.runtime.tenant.id, ctx.state.actor, params.orgId, params.userId);
      ctx.status = 204;
    },
  });
  api.add({
    method: 'post',
    path: '/organizations/:orgId/transfer-ownership',
    tag: M,
    summary: 'Make a member owner; the calling owner (or, with an API key, every other owner) becomes admin',
    params: s.OrgId,
    body: s.TransferOwnership,
    responses: { 200: 'The new owner' },
    handler: async (ctx, { params, body }) => {
      ctx.body = await orgs.transferOwnership(ctx.state.runtime.tenant.id, ctx.state.actor, params.orgId, body.user_id);
    },
  });

  const R = 'Roles';
  api.add({
    method: 'get',
    path: '/organizations/:orgId/roles',
    tag: R,
    summary: 'List roles (built-in and custom)',
    params: s.OrgId,
    responses: { 200: '{ data: [role] }' },
    handler: async (ctx, { params }) => {
      ctx.body = { data: await orgs.listRoles(ctx.state.runtime.tenant.id, params.orgId), next_cursor: null };
    },
  });
  api.add({
    method: 'post',
    path: '/organizations/:orgId/roles',
    tag: R,
    summary: 'Create a custom role, optionally with permissions',
    params: s.OrgId,
    body: s.CreateRole,
    responses: { 201: 'The role' },
    handler: async (ctx, { params, body }) => {
      const r = await orgs.createRole(ctx.state.runtime.tenant.id, ctx.state.actor, params.orgId, body);
      created(ctx, `${ctx.path}/${r.id}`, r);
    },
  });
  api.add({
    method: 'patch',
    path: '/organizations/:orgId/roles/:roleId',
    tag: R,
    summary: "Change a role's description or permissions",
    params: s.RoleParams,
    body: s.UpdateRole,
    responses: { 200: 'The role' },
    handler: async (ctx, { params, body }) => {
      ctx.body = await orgs.updateRole(ctx.state.runtime.tenant.id, ctx.state.actor, params.orgId, params.roleId, body);
    },
  });
  api.add({
    method: 'delete',
    path: '/organizations/:orgId/roles/:roleId',
    tag: R,
    summary: 'Delete a custom role (?force=true when in use)',
    params: s.RoleParams,
    query: s.DeleteRole,
    responses: { 204: 'Deleted' },
    handler: async (ctx, { params, query }) => {
      await orgs.deleteRole(ctx.state.runtime.tenant.id, ctx.state.actor, params.orgId, params.roleId, query.force === 'true');
      ctx.status = 204;
    },
  });

  teamRoutes(api, deps.teams);

  const I = 'Invitations';
  api.add({
    method: 'get',
    path: '/organizations/:orgId/invitations',
    tag: I,
    summary: 'List invitations with their status',
    params: s.OrgId,
    query: s.ListPage,
    responses: { 200: 'A page of invitations' },
    handler: async (ctx, { params, query }) => {
      ctx.body = await deps.invitations.listInvitations(ctx.state.runtime.tenant.id, params.orgId, query);
    },
  });
  api.add({
    method: 'post',
    path: '/organizations/:orgId/invitations',
    tag: I,
    summary: 'Invite someone by email (expires_in seconds, default 7 days)',
    params: s.OrgId,
    body: s.CreateInvitation,
    responses: { 201: 'The invitation', 429: 'Invitation mail limit reached; Retry-After says when to try again' },
    handler: async (ctx, { params, body }) => {
      const i = await deps.invitations.invite(ctx.state.runtime.tenant.id, ctx.state.actor, params.orgId, body);
      created(ctx, `${ctx.path}/${i.id}`, i);
    },
  });
  api.add({
    method: 'post',
    path: '/organizations/:orgId/invitations/:invitationId/resend',
    tag: I,
    summary: 'Mail a new link (the old one stops working)',
    params: s.InvitationParams,
    responses: { 200: 'The invitation', 429: 'Invitation mail limit reached; Retry-After says when to try again' },
    handler: async (ctx, { params }) => {
      ctx.body = await deps.invitations.resendInvitation(ctx.state.runtime.tenant.id, ctx.state.actor, params.orgId, params.invitationId);
    },
  });
  api.add({
    method: 'delete',
    path: '/organizations/:orgId/invitations/:invitationId',
    tag: I,
    summary: 'Revoke an invitation',
    params: s.InvitationParams,
    responses: { 204: 'Revoked' },
    handler: async (ctx, { params }) => {
      await deps.invitations.revokeInvitation(ctx.state.runtime.tenant.id, ctx.state.actor, params.orgId, params.invitationId);
      ctx.status = 204;
    },
  });

  const S = 'SSO';
  api.add({
    method: 'get',
    path: '/organizations/:orgId/domains',
    tag: S,
    summary: "The organization's domains and their verification records",
    params: s.OrgId,
    responses: { 200: '{ data: [domain] }' },
    handler: async (ctx, { params }) => {
      ctx.body = { data: await deps.domains.list(ctx.state.runtime.tenant.id, params.orgId), next_cursor: null };
    },
  });
  api.add({
    method: 'post',
    path: '/organizations/:orgId/domains',
    tag: S,
    summary: 'Add a domain; publish its txt_record, then verify',
    params: s.OrgId,
    body: s.AddDomain,
    responses: { 201: 'The domain with its TXT record' },
    handler: async (ctx, { params, body }) => {
      created(ctx, `${ctx.path}/${body.domain}`, await deps.domains.add(ctx.state.runtime.tenant.id, ctx.state.actor, params.orgId, body.domain));
    },
  });
  api.add({
    method: 'post',
    path: '/organizations/:orgId/domains/:domain/verify',
    tag: S,
    summary: 'Check DNS for the TXT record',
    params: s.DomainParams,
    responses: { 200: 'The domain' },
    handler: async (ctx, { params }) => {
      ctx.body = await deps.domains.verify(ctx.state.runtime.tenant.id, ctx.state.actor, params.orgId, params.domain);
    },
  });
  api.add({
    method: 'patch',
    path: '/organizations/:orgId/domains/:domain',
    tag: S,
    summary: "The tenant admin's audited override of verification",
    params: s.DomainParams,
    body: s.OverrideDomain,
    responses: { 200: 'The domain' },
    handler: async (ctx, { params, body }) => {
      ctx.body = await deps.domains.setVerified(ctx.state.runtime.tenant.id, ctx.state.actor, params.orgId, params.domain, body.verified);
    },
  });
  api.add({
    method: 'delete',
    path: '/organizations/:orgId/domains/:domain',
    tag: S,
    summary: 'Remove a domain',
    params: s.DomainParams,
    responses: { 204: 'Removed' },
    handler: async (ctx, { params }) => {
      await deps.domains.remove(ctx.state.runtime.tenant.id, ctx.state.actor, params.orgId, params.domain);
      ctx.status = 204;
    },
  });

  api.add({
    method: 'get',
    path: '/organizations/:orgId/sso-connections',
    tag: S,
    summary: "The organization's SSO connections",
    params: s.OrgId,
    responses: { 200: '{ data: [connection] }' },
    handler: async (ctx, { params }) => {
      ctx.body = {
        data: (await deps.connections.list(ctx.state.runtime.tenant.id, params.orgId)).map((c) => deps.connections.present(ctx.state.runtime.tenant.slug, c)),
        next_cursor: null,
      };
    },
  });
  api.add({
    method: 'post',
    path: '/organizations/:orgId/sso-connections',
    tag: S,
    summary: "Connect the organization's IdP (type oidc or saml)",
    params: s.OrgId,
    body: s.CreateConnection,
    responses: { 201: 'The connection, with its redirect_uri (OIDC) or sp_entity_id, acs_url and sp_metadata_url (SAML)' },
    handler: async (ctx, { params, body }) => {
      const c = await deps.connections.create(ctx.state.runtime.tenant.id, ctx.state.actor, params.orgId, {
        ...body,
        auto_provision: body.auto_provision ?? body.jit_provisioning,
      });
      created(ctx, `${ctx.path}/${c.id}`, deps.connections.present(ctx.state.runtime.tenant.slug, c));
    },
  });
  api.add({
    method: 'get',
    path: '/organizations/:orgId/sso-connections/:connectionId',
    tag: S,
    summary: 'Get a connection (with its last error)',
    params: s.ConnectionParams,
    responses: { 200: 'The connection' },
    handler: async (ctx, { params }) => {
      ctx.body = deps.connections.present(
        ctx.state.runtime.tenant.slug,
        await deps.connections.get(ctx.state.runtime.tenant.id, params.orgId, params.connectionId),
      );
    },
  });
  api.add({
    method: 'patch',
    path: '/organizations/:orgId/sso-connections/:connectionId',
    tag: S,
    summary: 'Change a connection (client_secret is write-only)',
    params: s.ConnectionParams,
    body: s.UpdateConnection,
    responses: { 200: 'The connection' },
    handler: async (ctx, { params, body }) => {
      const c = await deps.connections.update(ctx.state.runtime.tenant.id, ctx.state.actor, params.orgId, params.connectionId, {
        ...body,
        auto_provision: body.auto_provision ?? body.jit_provisioning,
      });
      ctx.body = deps.connections.present(ctx.state.runtime.tenant.slug, c);
    },
  });
  api.add({
    method: 'delete',
    path: '/organizations/:orgId/sso-connections/:connectionId',
    tag: S,
    summary: 'Delete a connection',
    params: s.ConnectionParams,
    responses: { 204: 'Deleted' },
    handler: async (ctx, { params }) => {
      await deps.connections.delete(ctx.state.runtime.tenant.id, ctx.state.actor, params.orgId, params.connectionId);
      ctx.status = 204;
    },
  });

  const D = 'Directory sync';
  const tenantOf = (ctx: Context) => ctx.state.runtime.tenant as { id: string; slug: string };
  api.add({
    method: 'get',
    path: '/organizations/:orgId/directories',
    tag: D,
    summary: "The organization's SCIM directories, with their last request and counts",
    params: s.OrgId,
    responses: { 200: '{ data: [directory] }' },
    handler: async (ctx, { params }) => {
      const t = tenantOf(ctx);
      ctx.body = { data: await deps.directories.list(t.id, t.slug, params.orgId), next_cursor: null };
    },
  });
  api.add({
    method: 'post',
    path: '/organizations/:orgId/directories',
    tag: D,
    summary: 'Add a SCIM directory (its bearer_token is shown only in this answer)',
    params: s.OrgId,
    body: s.CreateDirectory,
    responses: { 201: 'The directory, with scim_base_url and bearer_token' },
    handler: async (ctx, { params, body }) => {
      const t = tenantOf(ctx);
      const d = await deps.directories.create(t.id, t.slug, ctx.state.actor, params.orgId, body);
      created(ctx, `${ctx.path}/${d.id}`, d);
    },
  });
  api.add({
    method: 'get',
    path: '/organizations/:orgId/directories/:directoryId',
    tag: D,
    summary: 'Get a directory (never its token)',
    params: s.DirectoryParams,
    responses: { 200: 'The directory' },
    handler: async (ctx, { params }) => {
      const t = tenantOf(ctx);
      ctx.body = await deps.directories.get(t.id, t.slug, params.orgId, params.directoryId);
    },
  });
  api.add({
    method: 'patch',
    path: '/organizations/:orgId/directories/:directoryId',
    tag: D,
    summary: 'Change a directory: name, provider, enabled, default_role, group_roles, sso_match',
    params: s.DirectoryParams,
    body: s.UpdateDirectory,
    responses: { 200: 'The directory' },
    handler: async (ctx, { params, body }) => {
      const t = tenantOf(ctx);
      ctx.body = await deps.directories.update(t.id, t.slug, ctx.state.actor, params.orgId, params.directoryId, body);
    },
  });
  api.add({
    method: 'delete',
    path: '/organizations/:orgId/directories/:directoryId',
    tag: D,
    summary: 'Delete a directory (its token stops working; accounts and memberships stay)',
    params: s.DirectoryParams,
    responses: { 204: 'Deleted' },
    handler: async (ctx, { params }) => {
      const t = tenantOf(ctx);
      await deps.directories.delete(t.id, t.slug, ctx.state.actor, params.orgId, params.directoryId);
      ctx.status = 204;
    },
  });
  api.add({
    method: 'post',
    path: '/organizations/:orgId/directories/:directoryId/token',
    tag: D,
    summary: 'Rotate the bearer token: the new one is shown once, the old one stops working at once',
    params: s.DirectoryParams,
    responses: { 200: 'The directory, with bearer_token' },
    handler: async (ctx, { params }) => {
      const t = tenantOf(ctx);
      ctx.body = await deps.directories.rotateToken(t.id, t.slug, ctx.state.actor, params.orgId, params.directoryId);
    },
  });
  api.add({
    method: 'delete',
    path: '/organizations/:orgId/directories/:directoryId/token',
    tag: D,
    summary: 'Revoke the bearer token: the directory is refused until a new one is made',
    params: s.DirectoryParams,
    responses: { 200: 'The directory' },
    handler: async (ctx, { params }) => {
      const t = tenantOf(ctx);
      ctx.body = await deps.directories.revokeToken(t.id, t.slug, ctx.state.actor, params.orgId, params.directoryId);
    },
  });

  const L = 'Setup links';
  api.add({
    method: 'post',
    path: '/organizations/:orgId/setup-links',
    tag: L,
    summary: "A link for the customer's IT admin to set up SSO, directory sync or domains (its url is shown only in this answer)",
    params: s.OrgId,
    body: s.CreateSetupLink,
    responses: { 201: 'The link: id, url (holds the secret), expires_at, features, status' },
    handler: async (ctx, { params, body }) => {
      const t = tenantOf(ctx);
      const link = await deps.setupLinks.create(t.id, t.slug, ctx.state.actor, params.orgId, body);
      created(ctx, `${ctx.path}/${link.id}`, link);
    },
  });
  api.add({
    method: 'get',
    path: '/organizations/:orgId/setup-links',
    tag: L,
    summary: "The organization's setup links, newest first, with their status (active, opened, expired, revoked); never their secret",
    params: s.OrgId,
    responses: { 200: '{ data: [setup link] }' },
    handler: async (ctx, { params }) => {
      ctx.body = { data: await deps.setupLinks.list(tenantOf(ctx).id, params.orgId), next_cursor: null };
    },
  });
  api.add({
    method: 'get',
    path: '/organizations/:orgId/setup-links/:setupLinkId',
    tag: L,
    summary: 'Get a setup link (never its secret)',
    params: s.SetupLinkParams,
    responses: { 200: 'The setup link' },
    handler: async (ctx, { params }) => {
      ctx.body = await deps.setupLinks.get(tenantOf(ctx).id, params.orgId, params.setupLinkId);
    },
  });
  api.add({
    method: 'delete',
    path: '/organizations/:orgId/setup-links/:setupLinkId',
    tag: L,
    summary: 'Revoke a setup link: it stops working at once, also in the browser that opened it',
    params: s.SetupLinkParams,
    responses: { 204: 'Revoked' },
    handler: async (ctx, { params }) => {
      await deps.setupLinks.revoke(tenantOf(ctx).id, ctx.state.actor, params.orgId, params.setupLinkId);
      ctx.status = 204;
    },
  });

  return api;
}
