import type { Context, Next } from 'koa';
import type { Missing } from '../auth-policy/policy.ts';
import type { Render } from '../base/views.ts';
import type { OrgTokens, PolicyCheck } from '../orgs/org-tokens.ts';
import { effectiveSettings } from '../tenants/settings.ts';
import { portalPage } from './forms.ts';
import { stepUpUrl, type Viewer } from './portal-session.ts';

/** What to tell a person whose sign-in falls short, by what is missing. */
const STEP_UP_TEXT: Record<Missing, { reason: string; button: string }> = {
  mfa: { reason: 'a sign-in with a second factor (multi-factor authentication)', button: 'Sign in with a second factor' },
  fresh_sign_in: { reason: 'a recent sign-in', button: 'Sign in again' },
  method: { reason: 'a sign-in with one of the methods it accepts', button: 'Sign in again' },
  sso: { reason: 'a sign-in through its single sign-on', button: 'Sign in again with single sign-on' },
};

/** The portal session as the organizations' policies judge it: the same facts the tokens carry. */
export function portalSignIn(ctx: Context, viewer: Viewer): PolicyCheck {
  return { facts: viewer.signIn, tenantMfa: effectiveSettings(ctx.state.runtime.tenant.settings).mfa, grantId: viewer.grantId };
}

/**
 * For lists of organizations: those whose policy the viewer's sign-in falls short of, each with
 * what is missing and the link to sign in as it requires (back to `returnTo(orgId)`). Organizations
 * the viewer may not see are left out.
 */
export async function stepUpsFor(
  ctx: Context,
  orgTokens: OrgTokens,
  orgIds: readonly string[],
  returnTo: (orgId: string) => string,
): Promise<Map<string, { missing: Missing; href: string }>> {
  const viewer: Viewer = ctx.state.viewer;
  const verdicts = await orgTokens.judgeSignIn(ctx.state.runtime.tenant.id, viewer.user.id, orgIds, portalSignIn(ctx, viewer), {
    evenIfNotMember: viewer.user.tenant_admin,
  });
  const stepUps = new Map<string, { missing: Missing; href: string }>();
  for (const [orgId, v] of verdicts) if (!v.ok) stepUps.set(orgId, { missing: v.missing, href: stepUpUrl(ctx, v.missing, returnTo(orgId)) });
  return stepUps;
}

/** The 403 page of a sign-in that does not meet an organization's policy, with the way to meet it. */
export function renderPolicyNotMet(render: Render, ctx: Context, refusal: { missing: Missing; detail: string }, returnTo: string, what: string) {
  const text = STEP_UP_TEXT[refusal.missing];
  portalPage(render)(
    ctx,
    'portal/policy-not-met.njk',
    {
      title: 'A stronger sign-in is needed',
      what,
      reason: text.reason,
      detail: refusal.detail,
      missing: refusal.missing,
      stepUp: { href: stepUpUrl(ctx, refusal.missing, returnTo), text: text.button },
    },
    403,
  );
}

const ORG_PAGE = /^\/t\/[^/]+\/portal\/organizations\/([0-9a-fA-F-]{36})(?:\/|$)/;

/**
 * Every page and form of one organization in the portal (`/portal/organizations/<id>/…`, read
 * and write) is held to that organization's authentication policy, by the rule its tokens are
 * (OrgTokens.judgeSignIn → sessionMeets). Tenant administrators too: acting in an organization
 * through the portal is working in it. A sign-in that falls short gets a 403 page saying what is
 * missing, with a link to sign in again as required and come back; during an MFA grace period
 * the pages work and say so (`ctx.state.policyReminder`). People who may not see the
 * organization are not judged here: its pages answer them 404, as for an id that does not exist.
 */
export function orgPolicyGate(deps: { orgTokens: OrgTokens; render: Render }) {
  return async (ctx: Context, next: Next) => {
    const orgId = ORG_PAGE.exec(ctx.path)?.[1]?.toLowerCase();
    const viewer = ctx.state.viewer;
    if (!orgId || !viewer) return next();
    const verdict = (
      await deps.orgTokens.judgeSignIn(ctx.state.runtime.tenant.id, viewer.user.id, [orgId], portalSignIn(ctx, viewer), {
        evenIfNotMember: viewer.user.tenant_admin,
      })
    ).get(orgId);
    if (verdict && !verdict.ok) {
      // Back to the page after signing in again; a refused form goes back to its organization.
      const returnTo = ctx.method === 'GET' ? ctx.originalUrl : `/t/${ctx.state.runtime.tenant.slug}/portal/organizations/${orgId}/members`;
      return renderPolicyNotMet(deps.render, ctx, verdict, returnTo, 'work in this organization');
    }
    if (verdict?.reminder) ctx.state.policyReminder = verdict.reminder;
    return next();
  };
}
