/** What an organization's IdP tells us about the person signing in (SAML or OIDC alike). */
export interface UpstreamProfile {
  subject: string;
  email: string;
  name?: string | undefined;
  given_name?: string | undefined;
  family_name?: string | undefined;
  groups?: string[] | undefined;
}

/** An SSO sign-in refused; the message says why, for the failure page. */
export class SsoRefused extends Error {
  override name = 'SsoRefused';
}
