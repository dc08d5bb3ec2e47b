/**
 * Whether a SAML sign-in was multi-factor, from what the (verified) assertion says: its
 * AuthnContextClassRef, and the authentication-methods attribute Microsoft's IdPs (AD FS, Entra
 * ID) add. A connection lists the values that mean MFA at its IdP (`mfa_authn_contexts`); this
 * list is used when it has none of its own.
 */
export const DEFAULT_MFA_AUTHN_CONTEXTS: readonly string[] = [
  // AD FS and Microsoft Entra ID
  'http://schemas.microsoft.com/claims/multipleauthn',
  // REFEDS MFA profile (Shibboleth and many academic IdPs)
  'https://refeds.org/profile/mfa',
  // Used by several IdPs (not in the SAML 2.0 list, which has no generic "multi-factor" class)
  'urn:oasis:names:tc:SAML:2.0:ac:classes:MultiFactor',
  // SAML 2.0 authentication context classes that are two factors by definition
  'urn:oasis:names:tc:SAML:2.0:ac:classes:MobileTwoFactorContract',
  'urn:oasis:names:tc:SAML:2.0:ac:classes:MobileTwoFactorUnregistered',
  'urn:oasis:names:tc:SAML:2.0:ac:classes:TimeSyncToken',
];

/** The attribute AD FS and Entra ID list the methods used in (one of them `multipleauthn` after MFA). */
export const MS_AUTHN_METHODS_ATTRIBUTE = 'http://schemas.microsoft.com/claims/authnmethodsreferences';

export const MFA_AUTHN_CONTEXTS_MAX = 20;

/** True when a value the assertion carries is one the connection counts as multi-factor. */
export function samlReportedMfa(asserted: readonly string[], configured: readonly string[] | undefined): boolean {
  const mfa = new Set(configured ?? DEFAULT_MFA_AUTHN_CONTEXTS);
  return asserted.some((v) => mfa.has(v.trim()));
}
