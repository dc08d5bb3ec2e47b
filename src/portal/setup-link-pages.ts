import Router from '@koa/router';
import type { Context } from 'koa';
import { CreateSetupLink } from '../admin-api/schemas.ts';
import { NotFound } from '../base/errors.ts';
import { isUuid } from '../base/ids.ts';
import type { Render } from '../base/views.ts';
import type { OrgService } from '../orgs/org.service.ts';
import type { SetupLinkService } from '../setup-links/setup-link.service.ts';
import { SETUP_FEATURES } from '../setup-links/setup-link.table.ts';
import { type FormErrors, formErrorsOf, formValues, noticeFor, parseForm, portalPage } from './forms.ts';
import { type OrgPageContext, orgChange, orgPageContext, requireAbility } from './org-context.ts';

const NOTICES = { revoked: 'Setup link revoked: it no longer works, also where it was opened.' };
const FEATURE_LABELS: Record<(typeof SETUP_FEATURES)[number], string> = {
  domains: 'Domains (add and verify by DNS)',
  sso: 'Single sign-on (connect the IdP, test a sign-in)',
  directory_sync: 'Directory sync (SCIM)',
};
const DAYS = ['1', '3', '7', '14', '30'];

/**
 * The organization's setup links: owners and tenant admins make and revoke them (what an IT admin
 * sets up through one is what the organization trusts: access.ts, configureSso); admins see the list.
 * A new link's URL is shown once, on the answer to the form that made it.
 */
export function setupLinkPages(deps: { orgs: OrgService; setupLinks: SetupLinkService; render: Render }) {
  const router = new Router();
  const page = portalPage(deps.render);
  const actorOf = (org: OrgPageContext) => ({ type: 'user' as const, id: org.viewer.user.id });

  async function show(
    ctx: Context,
    org: OrgPageContext,
    extra: { values?: Record<string, string>; errors?: FormErrors; made?: { url: string; expires_at: string } } = {},
    status = 200,
  ) {
    page(
      ctx,
      'portal/org-setup-links.njk',
      {
        title: `Setup links · ${org.org.name}`,
        section: 'portal',
        tab: 'setup-links',
        script: 'portal.js',
        org,
        links: await deps.setupLinks.list(org.tenantId, org.org.id),
        features: SETUP_FEATURES.map((f) => ({ value: f, label: FEATURE_LABELS[f] })),
        dayOptions: DAYS.map((d) => ({ value: d, label: d === '1' ? '1 day' : `${d} days` })),
        notice: noticeFor(ctx, NOTICES),
        formError: extra.errors?._form,
        values: extra.values ?? { feature_sso: 'on', feature_domains: 'on', days: '7' },
        errors: extra.errors ?? {},
        made: extra.made,
      },
      status,
    );
  }

  router.get('/organizations/:orgId/setup-links', async (ctx) => {
    const org = await orgPageContext(ctx, deps.orgs);
    requireAbility(org, 'manage', 'see setup links');
    await show(ctx, org);
  });

  router.post('/organizations/:orgId/setup-links', async (ctx) => {
    const org = await orgPageContext(ctx, deps.orgs);
    requireAbility(org, 'configureSso', 'make setup links (owners only)');
    const values = formValues(ctx, [...SETUP_FEATURES.map((f) => `feature_${f}`), 'days']);
    try {
      const days = /^\d{1,2}$/.test(values.days ?? '') ? Number(values.days) : Number.NaN;
      const input = parseForm(CreateSetupLink, {
        features: SETUP_FEATURES.filter((f) => values[`feature_${f}`] === 'on'),
        expires_in: Number.isNaN(days) ? values.days : days * 86_400,
      });
      const made = await deps.setupLinks.create(org.tenantId, ctx.state.runtime.tenant.slug, actorOf(org), org.org.id, input);
      await show(ctx, org, { values, made }, 201);
    } catch (err) {
      const errors = formErrorsOf(err);
      if (errors.features) errors._form = 'Choose at least one thing the link sets up.';
      if (errors.expires_in) errors.days = errors.expires_in;
      await show(ctx, org, { values, errors }, 422);
    }
  });

  router.post(
    '/organizations/:orgId/setup-links/:setupLinkId/revoke',
    orgChange(deps.orgs, { back: 'setup-links', show, ability: 'configureSso', what: 'revoke setup links (owners only)' }, async (ctx, org) => {
      const id = String(ctx.params.setupLinkId);
      if (!isUuid(id)) throw NotFound('No such setup link in this organization.');
      await deps.setupLinks.revoke(org.tenantId, actorOf(org), org.org.id, id);
      return 'revoked';
    }),
  );

  return router;
}
