import type { TenantRuntime } from '../oidc/tenant-runtime.ts';
import { type OrgBranding, orgBranding, orgSignInIsSsoOnly, orgSignsIn } from '../orgs/org-sign-in.ts';
import type { OrgTokens } from '../orgs/org-tokens.ts';
import type { ConnectionService } from './connection.service.ts';
import type { DomainService } from './domain.service.ts';
import type { OidcSso } from './oidc-sso.ts';
import type { SamlSso } from './saml/saml-sso.ts';
import type { SsoBinding } from './sso-request.ts';

/** An organization named on an authorization request, as its sign-in page shows it. */
export interface OrgSignIn extends OrgBranding {
  /** Its policy requires SSO (orgSignInIsSsoOnly): with a connection, the sign-in goes there without the email step. */
  ssoRequired: boolean;
  /** It has an enabled SSO connection. */
  hasSso: boolean;
}

/** Where to send the browser: the IdP, or (when it can't be reached) our own failure page. */
export type SsoStart = string;

/** Which sign-ins go to an organization's IdP, and the redirect that starts them. */
export class SsoRouter {
  constructor(
    private readonly domains: DomainService,
    private readonly connections: ConnectionService,
    private readonly oidc: OidcSso,
    private readonly saml: SamlSso,
    private readonly orgTokens: OrgTokens,
  ) {}

  /**
   * The redirect to the organization's IdP. An IdP that can't be reached or whose discovery
   * document is wrong (say, an issuer mismatch) sends the user to a generic failure page and
   * leaves the reason on the connection — never a 500.
   */
  private async start(runtime: TenantRuntime, orgId: string, binding: SsoBinding, loginHint?: string): Promise<SsoStart | undefined> {
    const conn = await this.connections.enabledFor(runtime.tenant.id, orgId);
    if (!conn) return undefined;
    try {
      if (conn.type === 'saml') return await this.saml.start(conn, runtime.tenant.slug, binding);
      return await this.oidc.start(conn, runtime.tenant.slug, binding, loginHint);
    } catch (err) {
      await this.connections.recordError(runtime.tenant.id, conn.id, `could not start the sign-in: ${(err as Error).message}`);
      return `/t/${runtime.tenant.slug}/sso/unavailable`;
    }
  }

  /** A verified domain of an organization with an enabled connection → that IdP. */
  async startForEmail(runtime: TenantRuntime, email: string, uid: string) {
    const route = await this.domains.orgForEmail(runtime.tenant.id, email);
    return route ? this.start(runtime, route.orgId, { interactionUid: uid, invitationId: null }, email) : undefined;
  }

  /**
   * The organization `organization=` names, as its sign-in shows it: one of this tenant that
   * signs people in (orgSignsIn), whether it has an enabled connection, and whether its policy
   * requires SSO. Anything else — unknown, another tenant's, suspended, pending — is undefined,
   * and the sign-in page is the tenant's own, as without the parameter.
   */
  async organizationSignIn(runtime: TenantRuntime, idOrSlug: string): Promise<OrgSignIn | undefined> {
    const org = await this.orgTokens.findOrg(runtime.tenant.id, idOrSlug);
    if (!org || !orgSignsIn(org.status)) return undefined;
    const conn = await this.connections.enabledFor(runtime.tenant.id, org.id);
    return { ...orgBranding(org), ssoRequired: orgSignInIsSsoOnly(org), hasSso: conn !== undefined };
  }

  /**
   * That organization's IdP for a waiting sign-in. With several enabled connections, the oldest —
   * the one its verified domains' emails are routed to as well, so every path of one organization
   * leads to the same IdP.
   */
  async startForOrganization(runtime: TenantRuntime, org: OrgSignIn, uid: string, loginHint?: string) {
    return org.hasSso ? this.start(runtime, org.id, { interactionUid: uid, invitationId: null }, loginHint) : undefined;
  }

  /**
   * From an invitation link: the invited organization's IdP, for the invited email. The request
   * carries the invitation, whose link proved the mailbox (jit.ts may then create the account).
   */
  async startForInvitation(runtime: TenantRuntime, orgId: string, invitationId: string, email: string) {
    return this.start(runtime, orgId, { interactionUid: null, invitationId }, email);
  }

  /** Whether `email` belongs to an organization that requires SSO (and where to send it). */
  async requiredFor(runtime: TenantRuntime, email: string, uid: string): Promise<{ required: boolean; redirect?: string | undefined }> {
    const route = await this.domains.orgForEmail(runtime.tenant.id, email);
    if (!route?.ssoRequired) return { required: false };
    return { required: true, redirect: await this.start(runtime, route.orgId, { interactionUid: uid, invitationId: null }, email) };
  }
}
