import Router from '@koa/router';
import type { Context } from 'koa';
import { NotFound } from '../base/errors.ts';
import { isUuid } from '../base/ids.ts';
import type { Render } from '../base/views.ts';
import type { TenantRuntimes } from '../oidc/tenant-runtime.ts';
import { RejectOrg } from '../orgs/org.schemas.ts';
import type { OrgService } from '../orgs/org.service.ts';
import type { OrgLifecycle } from '../orgs/org-lifecycle.ts';
import { effectiveSettings, ORGANIZATION_APPROVAL_MODES, UpdateSettings } from '../tenants/settings.ts';
import type { TenantService } from '../tenants/tenant.service.ts';
import { type FormErrors, formErrorsOf, formValues, noticeFor, parseForm, portalPage, redirectWithNotice } from './forms.ts';

const NOTICES = {
  saved: 'Organization rules saved.',
  approved: 'Organization approved. Its owners were mailed.',
  rejected: 'Organization rejected. Its owners were mailed the reason.',
};
const APPROVAL_LABELS: Record<(typeof ORGANIZATION_APPROVAL_MODES)[number], string> = {
  off: 'Off — organizations people create work at once',
  required: 'Required — organizations people create wait for a tenant administrator’s approval',
};

/**
 * Tenant administrators only (anyone else: 404): the tenant's organization rules (approval,
 * how many organizations one person may create — PATCH /settings' fields) and the organizations
 * waiting for approval, each with approve and reject (with the reason its owners are mailed).
 * The same services as the Admin API; every form carries the session's CSRF token.
 */
export function approvalPages(deps: { orgs: OrgService; lifecycle: OrgLifecycle; tenants: TenantService; runtimes: TenantRuntimes; render: Render }) {
  const router = new Router();
  const page = portalPage(deps.render);
  const url = (ctx: Context) => `/t/${ctx.state.runtime.tenant.slug}/portal/approvals`;
  const actor = (ctx: Context) => ({ type: 'user' as const, id: ctx.state.viewer.user.id as string });
  const tenantAdminOnly = (ctx: Context) => {
    if (!ctx.state.viewer.user.tenant_admin) throw NotFound('There is no such page.');
  };
  const orgIdOf = (ctx: Context) => {
    const id = String(ctx.params.orgId ?? '');
    if (!isUuid(id)) throw NotFound('There is no such organization.');
    return id;
  };

  const show = async (ctx: Context, extra: { values?: Record<string, string>; errors?: FormErrors; rejecting?: string } = {}, status = 200) => {
    const tenant = ctx.state.runtime.tenant;
    const settings = effectiveSettings(tenant.settings);
    const errors = extra.errors ?? {};
    const cursor = typeof ctx.query.cursor === 'string' ? ctx.query.cursor.slice(0, 500) : undefined;
    const pending = await deps.orgs.list(tenant.id, { status: 'pending', limit: 50, cursor });
    page(
      ctx,
      'portal/approvals.njk',
      {
        title: 'Approvals',
        section: 'portal',
        action: url(ctx),
        // The rules as saved, unless their form was just refused (then what was typed); a
        // refused rejection's reason is kept the same way.
        values: {
          organization_approval: settings.organization_approval,
          max_organizations_per_user: settings.max_organizations_per_user === null ? '' : String(settings.max_organizations_per_user),
          ...extra.values,
        },
        errors,
        rejecting: extra.rejecting,
        formError: errors._form,
        modes: ORGANIZATION_APPROVAL_MODES.map((m) => ({ value: m, label: APPROVAL_LABELS[m] })),
        pending: pending.data,
        nextUrl: pending.next_cursor ? `${url(ctx)}?cursor=${encodeURIComponent(pending.next_cursor)}` : undefined,
        notice: noticeFor(ctx, NOTICES),
      },
      status,
    );
  };

  router.get('/approvals', async (ctx) => {
    tenantAdminOnly(ctx);
    await show(ctx);
  });

  router.post('/approvals/rules', async (ctx) => {
    tenantAdminOnly(ctx);
    const values = formValues(ctx, ['organization_approval', 'max_organizations_per_user'], 20);
    try {
      const max = values.max_organizations_per_user;
      const patch = parseForm(UpdateSettings, {
        organization_approval: values.organization_approval,
        // Empty: no limit. Anything else must be a whole number (the schema says which).
        max_organizations_per_user: max === '' ? null : /^\d+$/.test(max!) ? Number(max) : max,
      });
      const { tenant } = ctx.state.runtime;
      await deps.tenants.updateSettings(tenant, patch, actor(ctx));
      deps.runtimes.invalidate(tenant.slug);
    } catch (err) {
      return show(ctx, { values, errors: formErrorsOf(err) }, 422);
    }
    redirectWithNotice(ctx, url(ctx), 'saved');
  });

  router.post('/approvals/:orgId/approve', async (ctx) => {
    tenantAdminOnly(ctx);
    try {
      await deps.lifecycle.approve(ctx.state.runtime.tenant.id, actor(ctx), orgIdOf(ctx));
    } catch (err) {
      return show(ctx, { errors: formErrorsOf(err) }, 409);
    }
    redirectWithNotice(ctx, url(ctx), 'approved');
  });

  router.post('/approvals/:orgId/reject', async (ctx) => {
    tenantAdminOnly(ctx);
    const orgId = orgIdOf(ctx);
    const values = formValues(ctx, ['reason'], 600);
    try {
      const { reason } = parseForm(RejectOrg, { reason: values.reason });
      await deps.lifecycle.reject(ctx.state.runtime.tenant.id, actor(ctx), orgId, reason);
    } catch (err) {
      return show(ctx, { values: { reason: values.reason ?? '' }, errors: formErrorsOf(err), rejecting: orgId }, 422);
    }
    redirectWithNotice(ctx, url(ctx), 'rejected');
  });

  return router;
}
