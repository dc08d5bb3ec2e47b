import type { Context } from 'koa';
import type { TeamService } from '../orgs/team.service.ts';
import type { ApiRegistry } from './registry.ts';
import * as s from './schemas.ts';

function created(ctx: Context, location: string, body: unknown) {
  ctx.status = 201;
  ctx.set('Location', location);
  ctx.body = body;
}

/** Teams of an organization, their members and the organization's team roles (rules: orgs/team.service.ts). */
export function teamRoutes(api: ApiRegistry, teams: TeamService) {
  const T = 'Teams';
  api.add({
    method: 'get',
    path: '/organizations/:orgId/teams',
    tag: T,
    summary: 'List the teams of an organization',
    params: s.OrgId,
    query: s.ListPage,
    responses: { 200: 'A page of teams' },
    handler: async (ctx, { params, query }) => {
      ctx.body = await teams.list(ctx.state.runtime.tenant.id, ctx.state.actor, params.orgId, query);
    },
  });
  api.add({
    method: 'post',
    path: '/organizations/:orgId/teams',
    tag: T,
    summary: 'Create a team (slug generated from the name when absent; 409 past max_teams)',
    params: s.OrgId,
    body: s.CreateTeam,
    responses: { 201: 'The team' },
    handler: async (ctx, { params, body }) => {
      const t = await teams.create(ctx.state.runtime.tenant.id, ctx.state.actor, params.orgId, body);
      created(ctx, `${ctx.path}/${t.id}`, t);
    },
  });
  api.add({
    method: 'get',
    path: '/organizations/:orgId/teams/:teamId',
    tag: T,
    summary: 'Get a team',
    params: s.TeamParams,
    responses: { 200: 'The team' },
    handler: async (ctx, { params }) => {
      ctx.body = await teams.get(ctx.state.runtime.tenant.id, ctx.state.actor, params.orgId, params.teamId);
    },
  });
  api.add({
    method: 'patch',
    path: '/organizations/:orgId/teams/:teamId',
    tag: T,
    summary: "Change a team's name, slug or description",
    params: s.TeamParams,
    body: s.PatchTeam,
    responses: { 200: 'The team' },
    handler: async (ctx, { params, body }) => {
      ctx.body = await teams.update(ctx.state.runtime.tenant.id, ctx.state.actor, params.orgId, params.teamId, body);
    },
  });
  api.add({
    method: 'delete',
    path: '/organizations/:orgId/teams/:teamId',
    tag: T,
    summary: 'Delete a team with its memberships (sign-ins working in it are revoked)',
    params: s.TeamParams,
    responses: { 204: 'Deleted' },
    handler: async (ctx, { params }) => {
      await teams.delete(ctx.state.runtime.tenant.id, ctx.state.actor, params.orgId, params.teamId);
      ctx.status = 204;
    },
  });

  api.add({
    method: 'get',
    path: '/organizations/:orgId/teams/:teamId/members',
    tag: T,
    summary: "List a team's members with their team roles",
    params: s.TeamParams,
    query: s.ListPage,
    responses: { 200: 'A page of team members' },
    handler: async (ctx, { params, query }) => {
      ctx.body = await teams.listMembers(ctx.state.runtime.tenant.id, ctx.state.actor, params.orgId, params.teamId, query);
    },
  });
  api.add({
    method: 'post',
    path: '/organizations/:orgId/teams/:teamId/members',
    tag: T,
    summary: 'Add a member of the organization to the team (roles default to member; 422 for a non-member)',
    params: s.TeamParams,
    body: s.AddTeamMember,
    responses: { 201: 'The team member' },
    handler: async (ctx, { params, body }) => {
      const m = await teams.addMember(ctx.state.runtime.tenant.id, ctx.state.actor, params.orgId, params.teamId, body.user_id, body.roles ?? ['member']);
      created(ctx, `${ctx.path}/${m.user_id}`, m);
    },
  });
  api.add({
    method: 'patch',
    path: '/organizations/:orgId/teams/:teamId/members/:userId',
    tag: T,
    summary: "Replace a team member's team roles",
    params: s.TeamMemberParams,
    body: s.ChangeTeamMember,
    responses: { 200: 'The team member' },
    handler: async (ctx, { params, body }) => {
      ctx.body = await teams.changeMemberRoles(ctx.state.runtime.tenant.id, ctx.state.actor, params.orgId, params.teamId, params.userId, body.roles);
    },
  });
  api.add({
    method: 'delete',
    path: '/organizations/:orgId/teams/:teamId/members/:userId',
    tag: T,
    summary: 'Take someone out of the team (they stay in the organization; their team-scoped sign-ins are revoked)',
    params: s.TeamMemberParams,
    responses: { 204: 'Removed' },
    handler: async (ctx, { params }) => {
      await teams.removeMember(ctx.state.runtime.tenant.id, ctx.state.actor, params.orgId, params.teamId, params.userId);
      ctx.status = 204;
    },
  });

  api.add({
    method: 'get',
    path: '/organizations/:orgId/team-roles',
    tag: T,
    summary: 'List team roles (built-in admin and member, and custom ones)',
    params: s.OrgId,
    responses: { 200: '{ data: [team role] }' },
    handler: async (ctx, { params }) => {
      ctx.body = { data: await teams.listRoles(ctx.state.runtime.tenant.id, ctx.state.actor, params.orgId), next_cursor: null };
    },
  });
  api.add({
    method: 'post',
    path: '/organizations/:orgId/team-roles',
    tag: T,
    summary: 'Create a custom team role, optionally with permissions',
    params: s.OrgId,
    body: s.CreateRole,
    responses: { 201: 'The team role' },
    handler: async (ctx, { params, body }) => {
      const r = await teams.createRole(ctx.state.runtime.tenant.id, ctx.state.actor, params.orgId, body);
      created(ctx, `${ctx.path}/${r.id}`, r);
    },
  });
  api.add({
    method: 'patch',
    path: '/organizations/:orgId/team-roles/:teamRoleId',
    tag: T,
    summary: "Change a team role's description or permissions",
    params: s.TeamRoleParams,
    body: s.UpdateRole,
    responses: { 200: 'The team role' },
    handler: async (ctx, { params, body }) => {
      ctx.body = await teams.updateRole(ctx.state.runtime.tenant.id, ctx.state.actor, params.orgId, params.teamRoleId, body);
    },
  });
  api.add({
    method: 'delete',
    path: '/organizations/:orgId/team-roles/:teamRoleId',
    tag: T,
    summary: 'Delete a custom team role (?force=true when in use)',
    params: s.TeamRoleParams,
    query: s.DeleteRole,
    responses: { 204: 'Deleted' },
    handler: async (ctx, { params, query }) => {
      await teams.deleteRole(ctx.state.runtime.tenant.id, ctx.state.actor, params.orgId, params.teamRoleId, query.force === 'true');
      ctx.status = 204;
    },
  });
}
