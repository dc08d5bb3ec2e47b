/**
 * Authentication policy: what a session must have shown to work in a tenant or one of its
 * organizations. Every place that lets a session act in an organization (sign-in, org-scoped
 * tokens, switch, refresh) asks `sessionMeets`; nothing else re-derives the rule.
 *
 * Pure: no database, no HTTP. Callers read the policies and the session's facts and pass them in.
 */

export const SIGN_IN_METHODS = ['password', 'passkey', 'sso'] as const;
export type SignInMethod = (typeof SIGN_IN_METHODS)[number];

/** An organization's policy as stored and as the Admin API shows it. */
export interface OrgAuthPolicy {
  mfa_required: boolean;
  /** Days after the policy started requiring MFA during which members without it still get in. */
  mfa_grace_days: number;
  allowed_methods: SignInMethod[];
  sso_required: boolean;
  /** Longest time since sign-in for org-scoped tokens; null: no limit. */
  max_session_age_seconds: number | null;
  /** Whether an upstream IdP's MFA (reported through SSO) satisfies `mfa_required`. */
  upstream_mfa_satisfies: boolean;
}

export const DEFAULT_ORG_POLICY: OrgAuthPolicy = {
  mfa_required: false,
  mfa_grace_days: 0,
  allowed_methods: [...SIGN_IN_METHODS],
  sso_required: false,
  max_session_age_seconds: null,
  upstream_mfa_satisfies: false,
};

export type TenantMfa = 'off' | 'optional' | 'required';

/** The tenant's part of the policy (tenant settings `mfa`). */
export interface TenantAuthPolicy {
  mfa: TenantMfa;
}

/** The rule a session is checked against: the strictest of tenant and organization. */
export interface EffectivePolicy {
  mfa_required: boolean;
  /** When MFA is required only by the organization, its grace period may still be running. */
  mfa_grace_until: Date | null;
  allowed_methods: SignInMethod[];
  sso_required: boolean;
  max_session_age_seconds: number | null;
  upstream_mfa_satisfies: boolean;
}

/**
 * The strictest of the tenant's and the organization's rules. The tenant requiring MFA leaves no
 * grace period (a grace period is the organization's to give for its own requirement only).
 * `mfaRequiredSince`: when the organization began requiring MFA (start of its grace period).
 */
export function strictest(tenant: TenantAuthPolicy, org: OrgAuthPolicy | null, mfaRequiredSince?: Date | null): EffectivePolicy {
  const o = org ?? DEFAULT_ORG_POLICY;
  const tenantRequires = tenant.mfa === 'required';
  const graceUntil =
    !tenantRequires && o.mfa_required && o.mfa_grace_days > 0 && mfaRequiredSince ? new Date(mfaRequiredSince.getTime() + o.mfa_grace_days * 86_400_000) : null;
  return {
    mfa_required: tenantRequires || o.mfa_required,
    mfa_grace_until: graceUntil,
    allowed_methods: o.allowed_methods,
    sso_required: o.sso_required,
    max_session_age_seconds: o.max_session_age_seconds,
    // Only the organization can accept upstream MFA for its own rule; the tenant's rule asks for
    // a factor Tessera checked itself.
    upstream_mfa_satisfies: !tenantRequires && o.upstream_mfa_satisfies,
  };
}

/** What a session showed at sign-in (oidc-provider's session / grant / refresh token). */
export interface SessionFacts {
  /** RFC 8176 values: pwd, otp, hwk, swk, user, mfa, fed. */
  amr: readonly string[];
  acr?: string | undefined;
  /** Seconds since the epoch, as the `auth_time` claim. */
  authTime?: number | undefined;
  /**
   * Whether the sign-in came through this organization's own SSO connection (recorded per grant
   * and auth_time when the sign-in finished: OrgTokens.recordSsoSignIn); undefined where that is
   * not known (a token from before it was recorded): SSO required is then left to the sign-in.
   */
  viaOrgSso?: boolean | undefined;
}

export type Missing = 'mfa' | 'sso' | 'fresh_sign_in' | 'method';
export type PolicyVerdict = { ok: true; reminder?: 'mfa_grace' } | { ok: false; missing: Missing; detail: string };

export const ACR = {
  pwd: 'urn:tessera:acr:pwd',
  mfa: 'urn:tessera:acr:mfa',
  fed: 'urn:tessera:acr:fed',
} as const;
export const ACR_VALUES_SUPPORTED = [ACR.pwd, ACR.mfa, ACR.fed];

/**
 * How the session signed in, in the policy's words: its first factor. A passkey after a password
 * is that sign-in's second factor (MFA), not its method, so `allowed_methods: ["password"]` admits
 * it and `["passkey"]` means passwordless passkey sign-ins.
 */
function methodsOf(facts: SessionFacts): Set<SignInMethod> {
  const m = new Set<SignInMethod>();
  if (facts.amr.includes('fed')) m.add('sso');
  else if (facts.amr.includes('pwd')) m.add('password');
  else if (facts.amr.includes('hwk') || facts.amr.includes('swk')) m.add('passkey');
  return m;
}

/** Two factors shown to Tessera itself: `mfa`, or a passkey with user verification. */
function localMfa(facts: SessionFacts): boolean {
  if (facts.amr.includes('fed')) return false;
  if (facts.amr.includes('mfa') || facts.acr === ACR.mfa) return true;
  return (facts.amr.includes('hwk') || facts.amr.includes('swk')) && facts.amr.includes('user');
}

/**
 * The organization's own IdP reported MFA (its amr carried `mfa`, or SAML's context mapped to
 * it). Only a sign-in through this organization's connection counts: another organization's IdP
 * is trusted by that organization, not by this one (its owner could make it say anything).
 */
function upstreamMfa(facts: SessionFacts): boolean {
  return facts.viaOrgSso === true && facts.amr.includes('fed') && facts.amr.includes('mfa');
}

export function sessionMeets(policy: EffectivePolicy, facts: SessionFacts, now: Date = new Date()): PolicyVerdict {
  if (policy.sso_required && facts.viaOrgSso === false) {
    return { ok: false, missing: 'sso', detail: 'This organization requires signing in through its SSO connection.' };
  }
  const used = methodsOf(facts);
  const allowed = new Set(policy.allowed_methods);
  // Every method allowed (the default) asks nothing: sessions from before methods were recorded pass.
  const restricted = SIGN_IN_METHODS.some((m) => !allowed.has(m));
  // Signing in through the organization's SSO is judged by the SSO rules, not by the upstream's methods.
  const disallowed = facts.viaOrgSso ? (allowed.has('sso') ? [] : ['sso']) : [...used].filter((m) => !allowed.has(m));
  if (restricted && (disallowed.length || (!facts.viaOrgSso && used.size === 0))) {
    return {
      ok: false,
      missing: 'method',
      detail: `This organization accepts only these sign-in methods: ${policy.allowed_methods.join(', ') || 'none'}.`,
    };
  }
  if (policy.max_session_age_seconds !== null) {
    const age = facts.authTime === undefined ? Number.POSITIVE_INFINITY : now.getTime() / 1000 - facts.authTime;
    if (age > policy.max_session_age_seconds) {
      return { ok: false, missing: 'fresh_sign_in', detail: `This organization requires a sign-in within the last ${policy.max_session_age_seconds} seconds.` };
    }
  }
  if (policy.mfa_required) {
    const mfa = localMfa(facts) || (policy.upstream_mfa_satisfies && upstreamMfa(facts));
    if (!mfa) {
      if (policy.mfa_grace_until && now < policy.mfa_grace_until) return { ok: true, reminder: 'mfa_grace' };
      return { ok: false, missing: 'mfa', detail: 'This organization requires a second factor (multi-factor authentication).' };
    }
  }
  return { ok: true };
}
