import type { Context } from 'koa';
import { AppError, Forbidden, NotFound } from '../base/errors.ts';
import { isUuid } from '../base/ids.ts';
import { type OrgService, presentOrg } from '../orgs/org.service.ts';
import { abilitiesFor, type OrgAbilities } from './access.ts';
import { type FormErrors, formErrorsOf, formValues, redirectWithNotice } from './forms.ts';
import type { Viewer } from './portal-session.ts';

export interface OrgPageContext {
  tenantId: string;
  viewer: Viewer;
  org: ReturnType<typeof presentOrg>;
  can: OrgAbilities;
  /** The viewer's roles here (undefined: a tenant admin who is not a member). */
  myRoles: string[] | undefined;
  /** /t/<slug>/portal/organizations/<id> */
  url: string;
}

/**
 * The organization of the URL as the viewer may see it. Not a member and not a tenant admin:
 * 404, the same answer as for an id that does not exist.
 */
export async function orgPageContext(ctx: Context, orgs: OrgService): Promise<OrgPageContext> {
  const runtime = ctx.state.runtime;
  const viewer = ctx.state.viewer;
  const orgId = String(ctx.params.orgId ?? '');
  const notFound = () => NotFound('There is no such organization, or you are not a member of it.');
  if (!isUuid(orgId)) throw notFound();
  const tenantId = runtime.tenant.id;
  let found: Awaited<ReturnType<OrgService['withMembership']>>;
  try {
    found = await orgs.withMembership(tenantId, orgId, viewer.user.id);
  } catch (err) {
    if ((err as { status?: number }).status === 404) throw notFound();
    throw err;
  }
  const myRoles = found.roles;
  const can = abilitiesFor(viewer.user.tenant_admin, myRoles);
  if (!can) throw notFound();
  const org = presentOrg(found.org);
  return { tenantId, viewer, org, can, myRoles, url: `/t/${runtime.tenant.slug}/portal/organizations/${orgId}` };
}

/** Refuses what the viewer may not do here, as the page of an organization they can see. */
export function requireAbility(page: OrgPageContext, ability: keyof OrgAbilities, what: string) {
  if (!page.can[ability]) throw Forbidden(`You can't ${what} in ${page.org.name}.`);
}

/** Renders one of an organization's tabs, again with what was typed and what was wrong. */
export type TabPage = (ctx: Context, org: OrgPageContext, extra?: { values?: Record<string, string>; errors?: FormErrors }, status?: number) => Promise<void>;

/**
 * Every change made from an organization's tab has this shape: the organization as the viewer
 * may see it (404 otherwise), the ability the change needs (403), the change, then back to the
 * tab with a notice (post/redirect/get). A refusal — a bad field, a duplicate, the last owner —
 * shows the tab again with the reason next to its field and the typed values kept.
 */
export function orgChange(
  orgs: OrgService,
  opts: { ability: keyof OrgAbilities; what: string; back: string; show: TabPage; fields?: readonly string[]; refusedStatus?: number },
  change: (ctx: Context, org: OrgPageContext, values: Record<string, string>) => Promise<string>,
) {
  return async (ctx: Context) => {
    const org = await orgPageContext(ctx, orgs);
    requireAbility(org, opts.ability, opts.what);
    const values = opts.fields ? formValues(ctx, opts.fields) : {};
    try {
      const notice = await change(ctx, org, values);
      redirectWithNotice(ctx, `${org.url}/${opts.back}`, notice);
    } catch (err) {
      const errors = formErrorsOf(err);
      // A limit keeps its status and says when to try again (Retry-After), as the API does.
      const limited = err instanceof AppError && err.status === 429 ? err : undefined;
      for (const [name, value] of Object.entries(limited?.headers ?? {})) ctx.set(name, value);
      await opts.show(ctx, org, { values, errors }, limited ? 429 : (opts.refusedStatus ?? 422));
    }
  };
}
