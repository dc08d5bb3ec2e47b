/** What an organization's IdP tells us about the person signing in (SAML or OIDC alike). */
export interface UpstreamProfile {
  subject: string;
  email: string;
  name?: string | undefined;
  given_name?: string | undefined;
  family_name?: string | undefined;
  groups?: string[] | undefined;
  /** The IdP said the person used more than one factor (OIDC `amr` with `mfa`); absent: it did not say. */
  mfa?: boolean | undefined;
}

/** RFC 8176 values that mean more than one factor was used (`mfa`, or `otp`/`hwk`/`swk` beside a password). */
export function upstreamReportedMfa(amr: unknown): boolean {
  if (!Array.isArray(amr)) return false;
  const values = new Set(amr.filter((v): v is string => typeof v === 'string'));
  if (values.has('mfa')) return true;
  const second = ['otp', 'hwk', 'swk', 'sms', 'tel'].some((v) => values.has(v));
  return second && (values.has('pwd') || values.has('pin') || values.has('user'));
}

/** An SSO sign-in refused; the message says why, for the failure page. */
export class SsoRefused extends Error {
  override name = 'SsoRefused';
}
