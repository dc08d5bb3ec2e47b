import Router from '@koa/router';
import type { Render } from '../base/views.ts';
import { renderPage } from '../http/pages.ts';
import { isOrgSlug } from '../orgs/org.schemas.ts';
import { orgSignsIn } from '../orgs/org-sign-in.ts';
import type { OrgTokens } from '../orgs/org-tokens.ts';
import type { PortalSessions } from './portal-session.ts';

/**
 * `/t/<slug>/o/<orgSlug>/login`: an organization's own sign-in page, the address an app links
 * its people to (and where a sign-out of the organization's sign-in ends). It starts the portal's
 * sign-in with `organization=<id>`, so the sign-in page is branded for the organization and
 * offers its SSO first (or goes straight there when its policy requires SSO); a person who is not
 * a member is refused after signing in, as at any app. Afterwards: the person's organizations in
 * the account pages, or `?return_to=` when it is one of the tenant's own portal or account pages.
 *
 * An unknown slug and an organization that is not signing people in (suspended, pending) get the
 * same 404 page: the page says no more than that a slug has no sign-in page here.
 */
export function orgLoginPages(deps: { orgTokens: OrgTokens; portalSessions: PortalSessions; render: Render }) {
  const router = new Router();

  router.get('/o/:orgSlug/login', async (ctx) => {
    const { tenant } = ctx.state.runtime;
    const slug = ctx.params.orgSlug ?? '';
    // By slug only (findOrg also takes ids): one address per organization. Anything that can't be
    // a slug (a NUL, markup, an id) is not looked up at all.
    const org = isOrgSlug(slug) ? await deps.orgTokens.findOrg(tenant.id, slug) : undefined;
    if (!org || org.slug !== slug || !orgSignsIn(org.status)) {
      return renderPage(
        ctx,
        deps.render,
        'message.njk',
        {
          title: 'No such sign-in page',
          paragraphs: [
            'There is no organization sign-in page at this address, or the organization is not signing people in right now.',
            'Check the link with your organization’s administrator, or sign in without it.',
          ],
          link: { href: `/t/${tenant.slug}/account/organizations`, text: 'Sign in' },
        },
        404,
      );
    }
    deps.portalSessions.startSignIn(ctx, ctx.query.return_to ?? `/t/${tenant.slug}/account/organizations`, { organization: org.id });
  });

  return router;
}
