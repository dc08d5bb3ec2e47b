import Router from '@koa/router';
import type { Context } from 'koa';
import { NotFound } from '../base/errors.ts';
import type { Render } from '../base/views.ts';
import type { TenantRuntimes } from '../oidc/tenant-runtime.ts';
import { effectiveSettings, MFA_FACTORS, TENANT_MFA_MODES, UpdateSettings } from '../tenants/settings.ts';
import type { TenantService } from '../tenants/tenant.service.ts';
import { type FormErrors, FormRejected, formValues, noticeFor, parseForm, portalPage, redirectWithNotice } from './forms.ts';

const NOTICES = { saved: 'Sign-in rules saved. They apply to the next sign-in and the next token of everyone in the tenant.' };

const MODE_LABELS: Record<(typeof TENANT_MFA_MODES)[number], string> = {
  off: 'Off — no second factor is asked or offered (the ones people added are kept)',
  optional: 'Optional — people may add one; organizations may require it',
  required: 'Required — everyone signs in with a second factor (set up within the sign-in if they have none)',
};
const FACTOR_LABELS: Record<(typeof MFA_FACTORS)[number], string> = { totp: 'Authenticator apps (TOTP)', passkey: 'Passkeys' };
const FIELDS = ['mfa', ...MFA_FACTORS.map((f) => `factor_${f}`)] as const;

/**
 * The tenant's part of the authentication policy in the portal, for tenant administrators only:
 * MFA off / optional / required and the factors people may use. The Admin API's settings schema
 * and TenantService.updateSettings (audited as `tenant.auth_policy.updated`), as `PATCH /settings`.
 */
export function tenantPolicyPages(deps: { tenants: TenantService; runtimes: TenantRuntimes; render: Render }) {
  const router = new Router();
  const page = portalPage(deps.render);
  const url = (ctx: Context) => `/t/${ctx.state.runtime.tenant.slug}/portal/sign-in-rules`;

  const tenantAdminOnly = (ctx: Context) => {
    if (!ctx.state.viewer.user.tenant_admin) throw NotFound('There is no such page.');
  };

  const show = (ctx: Context, extra: { values?: Record<string, string>; errors?: FormErrors } = {}, status = 200) => {
    const settings = effectiveSettings(ctx.state.runtime.tenant.settings);
    const errors = extra.errors ?? {};
    page(
      ctx,
      'portal/tenant-policy.njk',
      {
        title: 'Sign-in rules',
        section: 'portal',
        action: url(ctx),
        values: extra.values ?? {
          mfa: settings.mfa,
          ...Object.fromEntries(MFA_FACTORS.map((f) => [`factor_${f}`, settings.mfa_factors.includes(f) ? 'on' : ''])),
        },
        errors,
        formError: errors._form ?? (Object.keys(errors).length ? 'The rules were not saved: see the fields below.' : undefined),
        modes: TENANT_MFA_MODES.map((m) => ({ value: m, label: MODE_LABELS[m] })),
        factors: MFA_FACTORS.map((f) => ({ name: `factor_${f}`, label: FACTOR_LABELS[f] })),
        notice: noticeFor(ctx, NOTICES),
      },
      status,
    );
  };

  router.get('/sign-in-rules', (ctx) => {
    tenantAdminOnly(ctx);
    show(ctx);
  });

  router.post('/sign-in-rules', async (ctx) => {
    tenantAdminOnly(ctx);
    const values = formValues(ctx, FIELDS);
    try {
      const patch = parseForm(UpdateSettings, {
        mfa: values.mfa,
        mfa_factors: MFA_FACTORS.filter((f) => values[`factor_${f}`] === 'on'),
      });
      const { tenant } = ctx.state.runtime;
      await deps.tenants.updateSettings(tenant, patch, { type: 'user', id: ctx.state.viewer.user.id });
      deps.runtimes.invalidate(tenant.slug);
    } catch (err) {
      if (!(err instanceof FormRejected)) throw err;
      const errors = { ...err.errors, ...(err.errors.mfa_factors ? { factors: err.errors.mfa_factors } : {}) };
      return show(ctx, { values, errors }, 422);
    }
    redirectWithNotice(ctx, url(ctx), 'saved');
  });

  return router;
}
