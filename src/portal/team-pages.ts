import Router from '@koa/router';
import type { Context } from 'koa';
import { CreateRole, CreateTeam, PatchTeam } from '../admin-api/schemas.ts';
import { NotFound } from '../base/errors.ts';
import { isUuid } from '../base/ids.ts';
import type { Render } from '../base/views.ts';
import type { OrgService } from '../orgs/org.service.ts';
import type { TeamService } from '../orgs/team.service.ts';
import { type FormErrors, FormRejected, formErrorsOf, formValues, noticeFor, parseForm, portalPage, redirectWithNotice } from './forms.ts';
import { type OrgPageContext, orgChange, orgPageContext } from './org-context.ts';

const NOTICES = {
  created: 'Team created.',
  saved: 'Team saved.',
  deleted: 'Team deleted.',
  added: 'Added to the team.',
  role_changed: 'Team role changed.',
  removed: 'Taken out of the team.',
  left: 'You left the team.',
  role_created: 'Team role added.',
  role_deleted: 'Team role deleted.',
};

/** How many of the organization's members the "add to team" list offers; more through the Admin API. */
const MEMBER_CHOICES = 200;

const actorOf = (org: OrgPageContext) => ({ type: 'user' as const, id: org.viewer.user.id });

/**
 * The Teams tab: an organization's teams, each team's members and team roles, and the
 * organization's custom team roles. Every member sees it; who may change what is the team
 * service's rule (owners and admins manage teams and team roles, a team's admins its members),
 * so a form the viewer may not use is not shown, and a post they may not make is refused there.
 */
export function teamPages(deps: { orgs: OrgService; teams: TeamService; render: Render }) {
  const router = new Router();
  const page = portalPage(deps.render);

  async function teamsPage(ctx: Context, org: OrgPageContext, extra: { values?: Record<string, string>; errors?: FormErrors } = {}, status = 200) {
    const cursor = typeof ctx.query.cursor === 'string' ? ctx.query.cursor.slice(0, 500) : undefined;
    const teams = await deps.teams.list(org.tenantId, actorOf(org), org.org.id, { limit: 50, cursor });
    page(
      ctx,
      'portal/org-teams.njk',
      {
        title: `Teams · ${org.org.name}`,
        section: 'portal',
        tab: 'teams',
        org,
        teams: teams.data,
        nextUrl: teams.next_cursor ? `${org.url}/teams?cursor=${encodeURIComponent(teams.next_cursor)}` : undefined,
        notice: noticeFor(ctx, NOTICES),
        formError: extra.errors?._form,
        values: extra.values ?? {},
        errors: extra.errors ?? {},
      },
      status,
    );
  }

  async function teamRolesPage(ctx: Context, org: OrgPageContext, extra: { values?: Record<string, string>; errors?: FormErrors } = {}, status = 200) {
    page(
      ctx,
      'portal/org-team-roles.njk',
      {
        title: `Team roles · ${org.org.name}`,
        section: 'portal',
        tab: 'teams',
        org,
        roles: await deps.teams.listRoles(org.tenantId, actorOf(org), org.org.id),
        notice: noticeFor(ctx, NOTICES),
        formError: extra.errors?._form,
        values: extra.values ?? {},
        errors: extra.errors ?? {},
      },
      status,
    );
  }

  async function teamPage(ctx: Context, org: OrgPageContext, extra: { values?: Record<string, string>; errors?: FormErrors } = {}, status = 200) {
    const teamId = teamIdOf(ctx);
    const [team, members, roles, orgMembers] = await Promise.all([
      deps.teams.get(org.tenantId, actorOf(org), org.org.id, teamId),
      deps.teams.listMembers(org.tenantId, actorOf(org), org.org.id, teamId, { limit: 200 }),
      deps.teams.listRoles(org.tenantId, actorOf(org), org.org.id),
      deps.orgs.listMembers(org.tenantId, org.org.id, { limit: MEMBER_CHOICES }),
    ]);
    const mine = members.data.find((m) => m.user_id === org.viewer.user.id);
    const manageMembers = org.can.manage || Boolean(mine?.roles.includes('admin'));
    page(
      ctx,
      'portal/org-team.njk',
      {
        title: `${team.name} · ${org.org.name}`,
        section: 'portal',
        tab: 'teams',
        org,
        team,
        members: members.data,
        mine,
        manageMembers,
        roleOptions: roles.map((r) => ({ value: r.name, label: r.name })),
        candidates: orgMembers.data
          .filter((m) => !members.data.some((x) => x.user_id === m.user_id))
          .map((m) => ({ value: m.user_id, label: m.name ? `${m.name} (${m.email})` : m.email })),
        notice: noticeFor(ctx, NOTICES),
        formError: extra.errors?._form,
        values: extra.values ?? { name: team.name, slug: team.slug, description: team.description ?? '' },
        errors: extra.errors ?? {},
      },
      status,
    );
  }

  router.get('/organizations/:orgId/teams', async (ctx) => teamsPage(ctx, await orgPageContext(ctx, deps.orgs)));
  router.get('/organizations/:orgId/team-roles', async (ctx) => teamRolesPage(ctx, await orgPageContext(ctx, deps.orgs)));
  router.get('/organizations/:orgId/teams/:teamId', async (ctx) => teamPage(ctx, await orgPageContext(ctx, deps.orgs)));

  const teamsTab = { back: 'teams', show: teamsPage, ability: 'manage', what: 'manage teams' } as const;
  const rolesTab = { back: 'team-roles', show: teamRolesPage, ability: 'manage', what: 'manage team roles' } as const;

  router.post(
    '/organizations/:orgId/teams',
    orgChange(deps.orgs, { ...teamsTab, fields: ['name', 'slug', 'description'] }, async (_ctx, org, values) => {
      const input = parseForm(CreateTeam, {
        name: values.name,
        ...(values.slug ? { slug: values.slug } : {}),
        ...(values.description ? { description: values.description } : {}),
      });
      await deps.teams.create(org.tenantId, actorOf(org), org.org.id, input);
      return 'created';
    }),
  );

  router.post(
    '/organizations/:orgId/team-roles',
    orgChange(deps.orgs, { ...rolesTab, fields: ['name', 'description', 'permissions'] }, async (_ctx, org, values) => {
      const permissions = values.permissions!.split(/[\s,]+/).filter(Boolean);
      const input = parseForm(CreateRole, {
        name: values.name,
        ...(values.description ? { description: values.description } : {}),
        ...(permissions.length ? { permissions } : {}),
      });
      await deps.teams.createRole(org.tenantId, actorOf(org), org.org.id, input);
      return 'role_created';
    }),
  );

  /** Deleting a team role in use takes it from its holders too (the form says so before). */
  router.post(
    '/organizations/:orgId/team-roles/:roleId/delete',
    orgChange(deps.orgs, { ...rolesTab, refusedStatus: 409 }, async (ctx, org) => {
      const roleId = String(ctx.params.roleId);
      if (!isUuid(roleId)) throw NotFound('No such team role.');
      await deps.teams.deleteRole(org.tenantId, actorOf(org), org.org.id, roleId, true);
      return 'role_deleted';
    }),
  );

  router.post(
    '/organizations/:orgId/teams/:teamId/delete',
    orgChange(deps.orgs, { ...teamsTab, refusedStatus: 409 }, async (ctx, org) => {
      await deps.teams.delete(org.tenantId, actorOf(org), org.org.id, teamIdOf(ctx));
      return 'deleted';
    }),
  );

  /**
   * The changes made on a team's page come back to it. Team admins who are not the organization's
   * admins make some of them, so the page's own ability check is only "can see the organization";
   * the team service decides the rest (403 for what the viewer may not do).
   */
  function teamChange(fields: readonly string[], change: (ctx: Context, org: OrgPageContext, values: Record<string, string>) => Promise<string>) {
    return async (ctx: Context) => {
      const org = await orgPageContext(ctx, deps.orgs);
      const teamId = teamIdOf(ctx);
      const values = formValues(ctx, fields);
      try {
        const notice = await change(ctx, org, values);
        // Someone who just left a team they can't see any more still can: every member sees every team.
        redirectWithNotice(ctx, `${org.url}/teams/${teamId}`, notice);
      } catch (err) {
        const errors = formErrorsOf(err);
        await teamPage(ctx, org, { values, errors }, 422);
      }
    };
  }

  router.post(
    '/organizations/:orgId/teams/:teamId',
    teamChange(['name', 'slug', 'description'], async (ctx, org, values) => {
      const input = parseForm(PatchTeam, {
        ...(values.name ? { name: values.name } : { name: '' }),
        ...(values.slug ? { slug: values.slug } : {}),
        description: values.description || null,
      });
      await deps.teams.update(org.tenantId, actorOf(org), org.org.id, teamIdOf(ctx), input);
      return 'saved';
    }),
  );

  router.post(
    '/organizations/:orgId/teams/:teamId/members',
    teamChange(['user_id', 'role'], async (ctx, org, values) => {
      if (!isUuid(values.user_id ?? '')) throw new FormRejected({ user_id: 'Choose a member of the organization.' });
      await deps.teams.addMember(org.tenantId, actorOf(org), org.org.id, teamIdOf(ctx), values.user_id!, [values.role || 'member']);
      return 'added';
    }),
  );

  /** The dropdown replaces the member's team roles with the one chosen (several: the Admin API). */
  router.post(
    '/organizations/:orgId/teams/:teamId/members/:userId/role',
    teamChange(['role'], async (ctx, org, values) => {
      await deps.teams.changeMemberRoles(org.tenantId, actorOf(org), org.org.id, teamIdOf(ctx), userIdOf(ctx), [values.role || 'member']);
      return 'role_changed';
    }),
  );

  router.post(
    '/organizations/:orgId/teams/:teamId/members/:userId/remove',
    teamChange([], async (ctx, org) => {
      const userId = userIdOf(ctx);
      await deps.teams.removeMember(org.tenantId, actorOf(org), org.org.id, teamIdOf(ctx), userId);
      return userId === org.viewer.user.id ? 'left' : 'removed';
    }),
  );

  return router;
}

function teamIdOf(ctx: Context): string {
  const id = String(ctx.params.teamId);
  if (!isUuid(id)) throw NotFound('No such team in this organization.');
  return id;
}

function userIdOf(ctx: Context): string {
  const id = String(ctx.params.userId);
  if (!isUuid(id)) throw NotFound('No such member in this team.');
  return id;
}
