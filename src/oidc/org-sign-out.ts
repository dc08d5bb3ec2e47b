import type { KoaContextWithOIDC } from 'oidc-provider';
import { orgLoginPath, orgSignsIn } from '../orgs/org-sign-in.ts';
import type { OrgTokens } from '../orgs/org-tokens.ts';

/**
 * Where a sign-out of an organization's sign-in ends: that organization's own sign-in page,
 * rather than the tenant's "signed out" page — when the app gave no `post_logout_redirect_uri`
 * (with one, the app decides, as always).
 *
 * The confirmation page (logoutSource) still has the session, so it finds the organization
 * there; the page after it (postLogoutSuccessSource) comes once the session is gone, so the
 * organization's id travels between them in a cookie signed with the tenant's cookie keys and
 * scoped to the end_session path. The cookie only ever picks one of this tenant's organizations'
 * pages, re-read when it is used: it can send the browser nowhere else.
 */
const COOKIE = 'tessera.signed-out-org';
const COOKIE_MS = 10 * 60 * 1000;

export class OrgSignOut {
  constructor(
    private readonly orgTokens: OrgTokens,
    private readonly tenant: { id: string; slug: string },
  ) {}

  private cookieOptions(ctx: KoaContextWithOIDC) {
    return { path: `/t/${this.tenant.slug}/session/end`, httpOnly: true, sameSite: 'lax' as const, signed: true, secure: ctx.secure, overwrite: true };
  }

  /**
   * At the confirmation page: the organization the signing-out sign-in worked in — that of the
   * app's grant when the request names the app (id_token_hint or client_id), otherwise the one
   * organization all of the session's sign-ins worked in, if there is exactly one.
   */
  async remember(ctx: KoaContextWithOIDC): Promise<void> {
    const { session, params, client } = ctx.oidc;
    const orgId = params?.post_logout_redirect_uri || !session ? undefined : await this.sessionOrg(session, client?.clientId);
    if (orgId) ctx.cookies.set(COOKIE, orgId, { ...this.cookieOptions(ctx), maxAge: COOKIE_MS });
    else ctx.cookies.set(COOKIE, null, this.cookieOptions(ctx));
  }

  private async sessionOrg(session: NonNullable<KoaContextWithOIDC['oidc']['session']>, clientId: string | undefined): Promise<string | undefined> {
    const grantIds = clientId ? [session.grantIdFor(clientId)] : Object.values(session.authorizations ?? {}).map((a) => (a as { grantId?: string }).grantId);
    const orgs = await Promise.all(grantIds.filter((g): g is string => typeof g === 'string').map((g) => this.orgTokens.grantOrg(this.tenant.id, g)));
    const distinct = new Set(orgs.filter((o): o is string => typeof o === 'string'));
    return distinct.size === 1 ? [...distinct][0] : undefined;
  }

  /**
   * At the signed-out page: the organization's sign-in page to go to, if the sign-out remembered
   * one that still signs people in. Only after a whole sign-out: "Stay signed in" ends the app's
   * sign-in alone (the provider then names the app with `client_id`), and the browser's session,
   * still signed in, would pass through the organization's page without stopping.
   */
  async destination(ctx: KoaContextWithOIDC): Promise<string | undefined> {
    const orgId = ctx.cookies.get(COOKIE, { signed: true });
    if (!orgId) return undefined;
    ctx.cookies.set(COOKIE, null, this.cookieOptions(ctx));
    if (ctx.oidc.params?.client_id) return undefined;
    const org = await this.orgTokens.findOrg(this.tenant.id, orgId);
    return org && orgSignsIn(org.status) ? orgLoginPath(this.tenant.slug, org.slug) : undefined;
  }
}
