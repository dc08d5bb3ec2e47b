import Router from '@koa/router';
import type { Context } from 'koa';
import { CreateDirectory, UpdateDirectory } from '../admin-api/schemas.ts';
import { AppError, NotFound } from '../base/errors.ts';
import { isUuid } from '../base/ids.ts';
import type { Render } from '../base/views.ts';
import type { OrgService } from '../orgs/org.service.ts';
import { type DirectoryService, GROUPS_SHOWN } from '../scim/directory.service.ts';
import { DIRECTORY_PROVIDERS, SSO_MATCHES } from '../scim/scim.table.ts';
import { type FormErrors, FormRejected, formErrorsOf, formValues, noticeFor, parseForm, portalPage, redirectWithNotice } from './forms.ts';
import { type OrgPageContext, orgPageContext, requireAbility } from './org-context.ts';
import type { ShownOnce } from './shown-once.ts';

const NOTICES = {
  created: 'Directory added. Give your directory the SCIM base URL and the bearer token below.',
  saved: 'Directory saved.',
  mapping_saved: 'Group mapping saved.',
  rotated: 'New bearer token made: the previous one no longer works. Give the directory the new one.',
  revoked: 'Token revoked: the directory can no longer reach Tessera until you make a new one.',
  deleted: 'Directory deleted. The accounts and memberships it made stay.',
};

const PROVIDER_LABELS: Record<(typeof DIRECTORY_PROVIDERS)[number], string> = {
  okta: 'Okta',
  entra: 'Microsoft Entra ID',
  google: 'Google Workspace',
  jumpcloud: 'JumpCloud',
  generic: 'Another SCIM 2.0 directory',
};

const SSO_MATCH_LABELS: Record<(typeof SSO_MATCHES)[number], string> = {
  user_name: 'userName',
  external_id: 'externalId',
  email: 'Email address',
};

const SETTINGS_FIELDS = ['name', 'provider', 'default_role', 'sso_match'] as const;
/** Free-form mapping rows a form may post (a mapping holds at most 100 groups). */
const MAX_EXTRA_ROWS = 110;
const BLANK_ROWS = 3;

type Directory = Awaited<ReturnType<DirectoryService['get']>>;
type PushedGroup = Awaited<ReturnType<DirectoryService['groups']>>[number];

/**
 * The Directory sync tab: an organization's SCIM directories, their bearer tokens (shown once),
 * settings, group → role mapping, and deletion. A directory decides who joins the organization
 * and with which role, so, like SSO, owners and tenant admins change it and admins read it
 * (access.ts, configureSso); members don't see it.
 */
export function directoryPages(deps: { orgs: OrgService; directories: DirectoryService; shownOnce: ShownOnce; render: Render }) {
  const router = new Router();
  const page = portalPage(deps.render);
  const actorOf = (org: OrgPageContext) => ({ type: 'user' as const, id: org.viewer.user.id });
  const slugOf = (ctx: Context) => ctx.state.runtime.tenant.slug as string;
  const CONFIGURE = 'change directory sync (owners only)';

  async function readOrg(ctx: Context) {
    const org = await orgPageContext(ctx, deps.orgs);
    requireAbility(org, 'manage', 'see directory sync');
    return org;
  }

  async function configureOrg(ctx: Context) {
    const org = await orgPageContext(ctx, deps.orgs);
    requireAbility(org, 'configureSso', CONFIGURE);
    return org;
  }

  async function directoryOf(ctx: Context, org: OrgPageContext): Promise<Directory> {
    const id = String(ctx.params.directoryId);
    if (!isUuid(id)) throw NotFound('The organization has no such directory.');
    return deps.directories.get(org.tenantId, slugOf(ctx), org.org.id, id);
  }

  /**
   * The roles a directory may hand out: every role but owner (never granted automatically). Only
   * owners and tenant admins configure a directory, and they may grant every other role; the
   * service checks the ceiling again whatever the form sends.
   */
  async function roleOptions(org: OrgPageContext) {
    return (await deps.orgs.listRoles(org.tenantId, org.org.id)).filter((r) => r.name !== 'owner').map((r) => ({ value: r.name, label: r.name }));
  }

  async function listPage(ctx: Context, org: OrgPageContext, extra: { values?: Record<string, string>; errors?: FormErrors } = {}, status = 200) {
    const now = Date.now();
    const directories = await deps.directories.list(org.tenantId, slugOf(ctx), org.org.id);
    page(
      ctx,
      'portal/org-directories.njk',
      {
        title: `Directory sync · ${org.org.name}`,
        section: 'portal',
        tab: 'directories',
        script: 'portal.js',
        org,
        directories: directories.map((d) => describe(d, now)),
        providerOptions: DIRECTORY_PROVIDERS.map((p) => ({ value: p, label: PROVIDER_LABELS[p] })),
        roleOptions: await roleOptions(org),
        notice: noticeFor(ctx, NOTICES),
        formError: extra.errors?._form,
        values: extra.values ?? { provider: 'okta', default_role: 'member' },
        errors: extra.errors ?? {},
      },
      status,
    );
  }

  async function directoryPage(
    ctx: Context,
    org: OrgPageContext,
    directory: Directory,
    extra: { token?: string; values?: Record<string, string>; mapping?: MappingRows; errors?: FormErrors } = {},
    status = 200,
  ) {
    const [groups, roles] = await Promise.all([deps.directories.groups(org.tenantId, org.org.id, directory.id), roleOptions(org)]);
    page(
      ctx,
      'portal/org-directory.njk',
      {
        title: `${directory.name} · Directory sync · ${org.org.name}`,
        section: 'portal',
        tab: 'directories',
        script: 'portal.js',
        org,
        directory: describe(directory, Date.now()),
        token: extra.token,
        providerOptions: DIRECTORY_PROVIDERS.map((p) => ({ value: p, label: PROVIDER_LABELS[p] })),
        ssoMatchOptions: SSO_MATCHES.map((m) => ({ value: m, label: SSO_MATCH_LABELS[m] })),
        roleOptions: roles,
        roleNames: roles.map((r) => r.value),
        mapping: extra.mapping ?? mappingRows(directory.group_roles, groups),
        groupsCut: groups.length >= GROUPS_SHOWN ? GROUPS_SHOWN : undefined,
        notice: noticeFor(ctx, NOTICES),
        formError: extra.errors?._form,
        values: extra.values ?? settingsValues(directory),
        checks: { enabled: extra.values ? extra.values.enabled === 'on' : directory.enabled },
        errors: extra.errors ?? {},
      },
      status,
    );
  }

  /** The bearer token page path: the cookie that carries a new token is scoped to it. */
  const directoryPath = (org: OrgPageContext, id: string) => `${org.url}/directories/${id}`;

  router.get('/organizations/:orgId/directories', async (ctx) => listPage(ctx, await readOrg(ctx)));

  router.post('/organizations/:orgId/directories', async (ctx) => {
    const org = await configureOrg(ctx);
    const values = formValues(ctx, ['name', 'provider', 'default_role']);
    try {
      const input = parseForm(CreateDirectory, {
        name: values.name,
        ...(values.provider ? { provider: values.provider } : {}),
        ...(values.default_role ? { default_role: values.default_role } : {}),
      });
      const created = await deps.directories.create(org.tenantId, slugOf(ctx), actorOf(org), org.org.id, input);
      deps.shownOnce.put(ctx, directoryPath(org, created.id), created.id, created.bearer_token);
      redirectWithNotice(ctx, directoryPath(org, created.id), 'created');
    } catch (err) {
      await listPage(ctx, org, { values, errors: formErrorsOf(err) }, 422);
    }
  });

  router.get('/organizations/:orgId/directories/:directoryId', async (ctx) => {
    const org = await readOrg(ctx);
    const directory = await directoryOf(ctx, org);
    const token = org.can.configureSso ? deps.shownOnce.take(ctx, directoryPath(org, directory.id), directory.id) : undefined;
    await directoryPage(ctx, org, directory, { token });
  });

  /** Name, provider, default role, SSO matching, enabled. */
  router.post('/organizations/:orgId/directories/:directoryId', async (ctx) => {
    const org = await configureOrg(ctx);
    const directory = await directoryOf(ctx, org);
    const values: Record<string, string> = { ...formValues(ctx, SETTINGS_FIELDS), enabled: formValues(ctx, ['enabled']).enabled === 'on' ? 'on' : 'off' };
    try {
      const patch = parseForm(UpdateDirectory, {
        name: values.name,
        ...(values.provider ? { provider: values.provider } : {}),
        ...(values.default_role ? { default_role: values.default_role } : {}),
        ...(values.sso_match ? { sso_match: values.sso_match } : {}),
        enabled: values.enabled === 'on',
      });
      await deps.directories.update(org.tenantId, slugOf(ctx), actorOf(org), org.org.id, directory.id, patch);
      redirectWithNotice(ctx, directoryPath(org, directory.id), 'saved');
    } catch (err) {
      await directoryPage(ctx, org, directory, { values, errors: formErrorsOf(err) }, 422);
    }
  });

  /** The group → role mapping: a role (or none) for each pushed group, and rows for groups not pushed yet. */
  router.post('/organizations/:orgId/directories/:directoryId/groups', async (ctx) => {
    const org = await configureOrg(ctx);
    const directory = await directoryOf(ctx, org);
    const pushed = await deps.directories.groups(org.tenantId, org.org.id, directory.id);
    const rows = postedMapping(ctx, pushed);
    try {
      const roles = new Set((await deps.orgs.listRoles(org.tenantId, org.org.id)).map((r) => r.name));
      const groupRoles = groupRolesOf(rows, roles);
      parseForm(UpdateDirectory, { group_roles: groupRoles });
      await deps.directories.update(org.tenantId, slugOf(ctx), actorOf(org), org.org.id, directory.id, { group_roles: groupRoles });
      redirectWithNotice(ctx, directoryPath(org, directory.id), 'mapping_saved');
    } catch (err) {
      await directoryPage(ctx, org, directory, { mapping: rows, errors: mappingErrors(err, rows) }, 422);
    }
  });

  router.post('/organizations/:orgId/directories/:directoryId/token/rotate', async (ctx) => {
    const org = await configureOrg(ctx);
    const directory = await directoryOf(ctx, org);
    const rotated = await deps.directories.rotateToken(org.tenantId, slugOf(ctx), actorOf(org), org.org.id, directory.id);
    deps.shownOnce.put(ctx, directoryPath(org, directory.id), directory.id, rotated.bearer_token);
    redirectWithNotice(ctx, directoryPath(org, directory.id), 'rotated');
  });

  router.post('/organizations/:orgId/directories/:directoryId/token/revoke', async (ctx) => {
    const org = await configureOrg(ctx);
    const directory = await directoryOf(ctx, org);
    await deps.directories.revokeToken(org.tenantId, slugOf(ctx), actorOf(org), org.org.id, directory.id);
    redirectWithNotice(ctx, directoryPath(org, directory.id), 'revoked');
  });

  router.post('/organizations/:orgId/directories/:directoryId/delete', async (ctx) => {
    const org = await configureOrg(ctx);
    const directory = await directoryOf(ctx, org);
    await deps.directories.delete(org.tenantId, slugOf(ctx), actorOf(org), org.org.id, directory.id);
    redirectWithNotice(ctx, `${org.url}/directories`, 'deleted');
  });

  return router;
}

/** A directory as the pages show it: provider by name, the token's age, the last request's time. */
function describe(d: Directory, now: number) {
  return {
    ...d,
    providerLabel: PROVIDER_LABELS[d.provider],
    ssoMatchLabel: SSO_MATCH_LABELS[d.sso_match],
    tokenAge: d.token?.created_at ? ageOf(d.token.created_at, now) : undefined,
    lastRequestAt: d.last_request ? `${d.last_request.at.replace('T', ' ').slice(0, 16)} UTC` : undefined,
  };
}

/** "today", "1 day", "12 days": how old a token is, which is what an admin rotating on a schedule asks. */
function ageOf(iso: string, now: number) {
  const days = Math.floor((now - Date.parse(iso)) / 86_400_000);
  return days < 1 ? 'made today' : days === 1 ? '1 day old' : `${days} days old`;
}

function settingsValues(d: Directory): Record<string, string> {
  return { name: d.name, provider: d.provider, default_role: d.default_role, sso_match: d.sso_match, enabled: d.enabled ? 'on' : 'off' };
}

/**
 * The mapping form's rows: one per pushed group (field `role_<group id>`), then one per mapped
 * group the directory has not pushed yet and a few blank ones (`extra_group_<n>`, `extra_role_<n>`).
 */
interface MappingRows {
  pushed: Array<PushedGroup & { field: string; role: string }>;
  extra: Array<{ groupField: string; roleField: string; group: string; role: string }>;
}

const extraRow = (i: number, group: string, role: string) => ({ groupField: `extra_group_${i}`, roleField: `extra_role_${i}`, group, role });

function mappingRows(groupRoles: Record<string, string>, pushed: PushedGroup[]): MappingRows {
  const pushedNames = new Set(pushed.map((g) => g.display_name));
  const notPushed = Object.entries(groupRoles).filter(([name]) => !pushedNames.has(name));
  return {
    pushed: pushed.map((g) => ({ ...g, field: `role_${g.id}`, role: Object.hasOwn(groupRoles, g.display_name) ? groupRoles[g.display_name]! : '' })),
    extra: [...notPushed, ...Array.from({ length: BLANK_ROWS }, () => ['', ''] as const)].map(([group, role], i) => extraRow(i, group, role)),
  };
}

function postedMapping(ctx: Context, pushed: PushedGroup[]): MappingRows {
  const field = (name: string) => formValues(ctx, [name], 300)[name] ?? '';
  const extra: MappingRows['extra'] = [];
  for (let i = 0; i < MAX_EXTRA_ROWS; i++) {
    const group = field(`extra_group_${i}`);
    const role = field(`extra_role_${i}`);
    if (group || role) extra.push(extraRow(extra.length, group, role));
  }
  for (let i = 0; i < BLANK_ROWS; i++) extra.push(extraRow(extra.length, '', ''));
  return { pushed: pushed.map((g) => ({ ...g, field: `role_${g.id}`, role: field(`role_${g.id}`) })), extra };
}

/**
 * The mapping the rows describe; a row that can't be read is refused next to its field. A role
 * the organization doesn't have (a tampered form, or a role deleted since) is named here, on its
 * row; whether a role may be granted at all (never owner, the viewer's ceiling) is the service's
 * rule, its refusal put on the row by mappingErrors.
 */
function groupRolesOf(rows: MappingRows, roles: ReadonlySet<string>): Record<string, string> {
  const groupRoles: Record<string, string> = {};
  const errors: FormErrors = {};
  const unknown = (role: string) => role !== 'owner' && !roles.has(role);
  for (const g of rows.pushed) {
    if (g.role && unknown(g.role)) errors[g.field] = `${g.role} is not a role of this organization: choose another.`;
    else if (g.role) groupRoles[g.display_name] = g.role;
  }
  for (const r of rows.extra) {
    if (!r.group && !r.role) continue;
    if (!r.group) errors[r.groupField] = 'Name the group this role is for, or choose no role.';
    else if (!r.role) errors[r.roleField] = 'Choose a role for this group, or clear its name.';
    else if (unknown(r.role)) errors[r.roleField] = `${r.role} is not a role of this organization: choose another.`;
    else if (r.group.length > 200) errors[r.groupField] = 'A group name is at most 200 characters.';
    else if (Object.hasOwn(groupRoles, r.group)) errors[r.groupField] = 'This group is already mapped above.';
    else groupRoles[r.group] = r.role;
  }
  if (Object.keys(groupRoles).length > 100) errors._form = 'A directory maps at most 100 groups.';
  if (Object.keys(errors).length) throw new FormRejected({ _form: 'Some rows of the group mapping need a change.', ...errors });
  return groupRoles;
}

/**
 * A refusal of the service (owner, an unknown role, a role beyond the viewer's reach) names the
 * field `group_roles.<group>`: shown next to that group's role.
 */
function mappingErrors(err: unknown, rows: MappingRows): FormErrors {
  const rowOf = new Map<string, { field: string; role: string }>([
    ...rows.pushed.map((g) => [g.display_name, { field: g.field, role: g.role }] as const),
    ...rows.extra.map((r) => [r.group, { field: r.roleField, role: r.role }] as const),
  ]);
  const errors = formErrorsOf(err);
  if (err instanceof AppError) {
    for (const e of err.errors ?? []) {
      const row = e.field.startsWith('group_roles.') ? rowOf.get(e.field.slice('group_roles.'.length)) : undefined;
      if (!row) continue;
      delete errors[e.field];
      errors[row.field] = row.role === 'owner' ? 'A directory never grants owner: make owners by transferring ownership.' : sentenceOf(e.message);
    }
  }
  return errors;
}

const sentenceOf = (m: string) => `${m[0]?.toUpperCase() ?? ''}${m.slice(1)}${/[.!?]$/.test(m) ? '' : '.'}`;
