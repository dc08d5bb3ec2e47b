import Router from '@koa/router';
import type { Context } from 'koa';
import { CreateOrg, PatchOrg } from '../admin-api/schemas.ts';
import type { Render } from '../base/views.ts';
import type { OrgService } from '../orgs/org.service.ts';
import { ORG_STATUSES } from '../orgs/org.table.ts';
import { refuseDeleting } from '../orgs/org-lifecycle.ts';
import type { OrgTokens } from '../orgs/org-tokens.ts';
import { effectiveSettings } from '../tenants/settings.ts';
import type { UserService } from '../users/user.service.ts';
import { type FormErrors, formErrorsOf, formValues, noticeFor, parseForm, portalPage, redirectWithNotice } from './forms.ts';
import { type OrgPageContext, orgPageContext, requireAbility } from './org-context.ts';
import { stepUpsFor } from './org-policy-gate.ts';

const ORG_FIELDS = ['name', 'slug', 'domain', 'description', 'logo_url', 'website', 'status'] as const;

const NOTICES = {
  created: 'Organization created. You are its owner.',
  created_admin: 'Organization created.',
  saved: 'Settings saved.',
  left: 'You left the organization.',
  deleted: 'Organization deleted.',
};

/** Empty form fields are "not given" (create) or "clear it" (settings: null). */
function orgInput(values: Record<string, string>, emptyAs: undefined | null) {
  const input: Record<string, unknown> = {};
  for (const k of ORG_FIELDS) {
    if (k === 'status') {
      if (values.status) input.status = values.status;
      continue;
    }
    input[k] = values[k] ? values[k] : k === 'name' ? '' : emptyAs;
  }
  if (emptyAs === undefined) for (const k of Object.keys(input)) if (input[k] === undefined) delete input[k];
  return input;
}

/** The organization list, create, settings, delete, leave and audit log pages of the portal. */
export function orgPages(deps: { orgs: OrgService; orgTokens: OrgTokens; users: UserService; render: Render }) {
  const router = new Router();
  const page = portalPage(deps.render);
  const listUrl = (ctx: Context) => `/t/${ctx.state.runtime.tenant.slug}/portal/organizations`;
  const mayCreate = (ctx: Context) => ctx.state.viewer.user.tenant_admin || effectiveSettings(ctx.state.runtime.tenant.settings).users_can_create_organizations;

  router.get('/', (ctx) => ctx.redirect(listUrl(ctx)));

  /** Tenant admins: every organization (search, pages of 50). Anyone else: their own. */
  router.get('/organizations', async (ctx) => {
    const viewer = ctx.state.viewer;
    const tenantId = ctx.state.runtime.tenant.id;
    const q = typeof ctx.query.q === 'string' ? ctx.query.q.trim().slice(0, 200) : '';
    const cursor = typeof ctx.query.cursor === 'string' ? ctx.query.cursor.slice(0, 500) : undefined;
    let rows: Array<{ id: string; name: string; slug: string; status: string; roles?: string[] }>;
    let nextCursor: string | null = null;
    if (viewer.user.tenant_admin) {
      const result = await deps.orgs.list(tenantId, { q: q || undefined, limit: 50, cursor });
      rows = result.data;
      nextCursor = result.next_cursor;
      const mine = new Map((await deps.orgTokens.memberships(tenantId, viewer.user.id, { includeNotWorking: true })).map((m) => [m.id, m.roles]));
      rows = rows.map((r) => ({ ...r, roles: mine.get(r.id) ?? [] }));
    } else {
      const needle = q.toLowerCase();
      rows = (await deps.orgTokens.memberships(tenantId, viewer.user.id, { includeNotWorking: true })).filter(
        (m) => !needle || m.name.toLowerCase().includes(needle) || m.slug.includes(needle),
      );
    }
    // Organizations whose policy this sign-in falls short of stay listed, marked, with the way to
    // sign in as they require (their pages answer 403 until then: org-policy-gate.ts).
    const stepUps = await stepUpsFor(
      ctx,
      deps.orgTokens,
      rows.map((r) => r.id),
      (orgId) => `${listUrl(ctx)}/${orgId}/members`,
    );
    page(ctx, 'portal/organizations.njk', {
      title: 'Organizations',
      section: 'portal',
      q,
      organizations: rows.map((r) => ({ ...r, stepUp: stepUps.get(r.id) })),
      allOrganizations: viewer.user.tenant_admin,
      pendingCount: viewer.user.tenant_admin ? (await deps.orgs.list(tenantId, { status: 'pending', limit: 200 })).data.length : 0,
      nextUrl: nextCursor ? `${listUrl(ctx)}?${new URLSearchParams({ ...(q ? { q } : {}), cursor: nextCursor })}` : undefined,
      canCreate: mayCreate(ctx),
      notice: noticeFor(ctx, NOTICES),
    });
  });

  const newPage = (ctx: Context, values: Record<string, string>, errors: FormErrors, status = 200) =>
    page(
      ctx,
      'portal/org-new.njk',
      {
        title: 'New organization',
        section: 'portal',
        script: 'portal.js',
        values,
        errors,
        formError: errors._form,
        makeOwner: values.make_owner !== 'off',
        isTenantAdmin: ctx.state.viewer.user.tenant_admin,
      },
      status,
    );

  router.get('/organizations/new', (ctx) => {
    if (!mayCreate(ctx))
      return page(
        ctx,
        'message.njk',
        { title: 'Not available', paragraphs: ['Only administrators create organizations here. Ask yours to create one and invite you.'] },
        403,
      );
    newPage(ctx, {}, {});
  });

  /**
   * A user who creates an organization becomes its owner (in the same transaction as the rest:
   * see OrgService.create's `owner`). A tenant admin may create one for a customer without
   * joining it (untick "Make me its owner").
   */
  router.post('/organizations', async (ctx) => {
    if (!mayCreate(ctx)) return page(ctx, 'message.njk', { title: 'Not available', paragraphs: ['Only administrators create organizations here.'] }, 403);
    const viewer = ctx.state.viewer;
    const values = formValues(ctx, [...ORG_FIELDS, 'make_owner']);
    const makeOwner = !viewer.user.tenant_admin || values.make_owner === 'on';
    try {
      const input = parseForm(CreateOrg, orgInput({ ...values, status: '' }, undefined));
      const org = await deps.orgs.create(
        ctx.state.runtime.tenant.id,
        { type: 'user', id: viewer.user.id },
        { ...input, ...(makeOwner ? { owner: viewer.user.id } : {}) },
      );
      redirectWithNotice(ctx, `${listUrl(ctx)}/${org.id}/members`, org.status === 'pending' ? 'created_pending' : makeOwner ? 'created' : 'created_admin');
    } catch (err) {
      newPage(ctx, { ...values, make_owner: makeOwner ? 'on' : 'off' }, formErrorsOf(err), 422);
    }
  });

  router.get('/organizations/:orgId', async (ctx) => {
    const org = await orgPageContext(ctx, deps.orgs);
    ctx.redirect(`${org.url}/members`);
  });

  const settingsPage = (ctx: Context, org: OrgPageContext, values: Record<string, unknown>, errors: FormErrors, status = 200) =>
    page(
      ctx,
      'portal/org-settings.njk',
      {
        title: `Settings · ${org.org.name}`,
        section: 'portal',
        tab: 'settings',
        org,
        values,
        errors,
        formError: errors._form,
        // Out of pending or rejected only by approve or reject (the owners are mailed): the Approvals page.
        statuses: (org.org.status === 'pending' || org.org.status === 'rejected' ? [org.org.status] : ORG_STATUSES.filter((s) => s !== 'rejected')).map(
          (s) => ({ value: s, label: s }),
        ),
        notice: noticeFor(ctx, NOTICES),
      },
      status,
    );

  router.get('/organizations/:orgId/settings', async (ctx) => {
    const org = await orgPageContext(ctx, deps.orgs);
    requireAbility(org, 'manage', 'change settings');
    const values = Object.fromEntries(ORG_FIELDS.map((k) => [k, org.org[k] ?? '']));
    settingsPage(ctx, org, values, {});
  });

  router.post('/organizations/:orgId/settings', async (ctx) => {
    const org = await orgPageContext(ctx, deps.orgs);
    requireAbility(org, 'manage', 'change settings');
    const values = formValues(ctx, ORG_FIELDS);
    try {
      const input = orgInput(values, null);
      // Only the tenant may suspend or reactivate; an org admin's form has no status field.
      if (!org.can.changeStatus) delete input.status;
      const patch = parseForm(PatchOrg, input);
      await deps.orgs.update(org.tenantId, { type: 'user', id: org.viewer.user.id }, org.org.id, patch, 'patch');
      redirectWithNotice(ctx, `${org.url}/settings`, 'saved');
    } catch (err) {
      settingsPage(ctx, org, values, formErrorsOf(err), 422);
    }
  });

  router.get('/organizations/:orgId/delete', async (ctx) => {
    const org = await orgPageContext(ctx, deps.orgs);
    requireAbility(org, 'ownerPowers', 'delete the organization');
    refuseDeleting(org.org, org.viewer.user.tenant_admin);
    page(ctx, 'portal/org-delete.njk', { title: `Delete ${org.org.name}`, section: 'portal', tab: 'settings', org });
  });

  /** Deleting takes the slug typed out: members, invitations, roles and connections go with it. */
  router.post('/organizations/:orgId/delete', async (ctx) => {
    const org = await orgPageContext(ctx, deps.orgs);
    requireAbility(org, 'ownerPowers', 'delete the organization');
    refuseDeleting(org.org, org.viewer.user.tenant_admin);
    const values = formValues(ctx, ['confirm_slug']);
    if (values.confirm_slug !== org.org.slug) {
      return page(
        ctx,
        'portal/org-delete.njk',
        { title: `Delete ${org.org.name}`, section: 'portal', tab: 'settings', org, values, errors: { confirm_slug: `Type ${org.org.slug} to confirm.` } },
        422,
      );
    }
    await deps.orgs.delete(org.tenantId, { type: 'user', id: org.viewer.user.id }, org.org.id);
    redirectWithNotice(ctx, listUrl(ctx), 'deleted');
  });

  /** Leave; the last owner is refused (409 from the service, shown on the members page). */
  router.post('/organizations/:orgId/leave', async (ctx) => {
    const org = await orgPageContext(ctx, deps.orgs);
    try {
      await deps.orgs.removeMember(org.tenantId, { type: 'user', id: org.viewer.user.id }, org.org.id, org.viewer.user.id);
      redirectWithNotice(ctx, listUrl(ctx), 'left');
    } catch (err) {
      const errors = formErrorsOf(err);
      ctx.status = 303;
      ctx.redirect(`${org.url}/members?refused=${errors._form?.startsWith('This is the last owner') ? 'last_owner' : 'leave'}`);
    }
  });

  router.get('/organizations/:orgId/audit', async (ctx) => {
    const org = await orgPageContext(ctx, deps.orgs);
    requireAbility(org, 'manage', 'read the audit log');
    const cursor = typeof ctx.query.cursor === 'string' ? ctx.query.cursor.slice(0, 500) : undefined;
    const log = await deps.orgs.auditLog(org.tenantId, org.org.id, { limit: 50, cursor });
    // People by email, not id (users deleted since show as such).
    const userIds = [
      ...new Set(
        log.data
          .map((e) => e.actor as { type: string; id?: string })
          .filter((a) => a.type === 'user' && a.id)
          .map((a) => a.id!),
      ),
    ];
    const emails = new Map(await Promise.all(userIds.map(async (id) => [id, (await deps.users.find(org.tenantId, id))?.email ?? 'a deleted user'] as const)));
    const actorText = (a: { type: string; id?: string }) =>
      a.type === 'user'
        ? (emails.get(a.id!) ?? 'a user')
        : a.type === 'api_key'
          ? 'an API key'
          : a.type === 'sso_connection'
            ? `SSO connection ${a.id ?? ''}`
            : `client ${a.id ?? ''}`;
    page(ctx, 'portal/org-audit.njk', {
      title: `Audit log · ${org.org.name}`,
      section: 'portal',
      tab: 'audit',
      org,
      entries: log.data.map((e) => ({ ...e, actorText: actorText(e.actor as { type: string; id?: string }), changes: describeChange(e.before, e.after) })),
      nextUrl: log.next_cursor ? `${org.url}/audit?cursor=${encodeURIComponent(log.next_cursor)}` : undefined,
    });
  });

  return router;
}

/** "name: Acme → Acme Inc" for the fields an audit entry changed (whole values when created or removed). */
function describeChange(before: unknown, after: unknown): string {
  const b = (before ?? {}) as Record<string, unknown>;
  const a = (after ?? {}) as Record<string, unknown>;
  const show = (v: unknown) => (Array.isArray(v) ? v.join(', ') : v === null || v === undefined ? '—' : typeof v === 'object' ? JSON.stringify(v) : String(v));
  const keys = [...new Set([...Object.keys(b), ...Object.keys(a)])].filter((k) => !['updated_at', 'created_at', 'id', 'user_id', 'joined_at'].includes(k));
  const changed = keys.filter((k) => JSON.stringify(b[k]) !== JSON.stringify(a[k]));
  return changed
    .slice(0, 6)
    .map((k) => (before && after ? `${k}: ${show(b[k])} → ${show(a[k])}` : `${k}: ${show(before ? b[k] : a[k])}`))
    .join('; ');
}
