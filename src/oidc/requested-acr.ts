import { interactionPolicy, type KoaContextWithOIDC } from 'oidc-provider';
import { ACR, ACR_VALUES_SUPPORTED } from '../auth-policy/policy.ts';

/**
 * Whether a session signed in at `acr` satisfies a request for one of `requested`: the same
 * value, or a stronger one of the same kind (a two-factor sign-in satisfies a request for a
 * password sign-in). A federated sign-in satisfies only a request for `fed`: how the upstream
 * IdP checked the person is its business, not a Tessera level.
 */
export function acrSatisfies(acr: string | undefined, requested: readonly string[]): boolean {
  if (acr === undefined) return false;
  if (requested.includes(acr)) return true;
  return acr === ACR.mfa && requested.includes(ACR.pwd);
}

/** The acr values a request names that Tessera knows; unknown ones are ignored, as OIDC Core asks. */
export function requestedAcrValues(params: Record<string, unknown>): string[] {
  const raw = typeof params.acr_values === 'string' ? params.acr_values : '';
  return raw.split(' ').filter((v) => (ACR_VALUES_SUPPORTED as readonly string[]).includes(v));
}

/**
 * A check of the login prompt: `acr_values` the current session does not meet send the person
 * through the sign-in again — the step-up an app asks for after a refusal (`missing: mfa`).
 * `acr_values` is a voluntary request (OIDC Core 3.1.2.1): once the person has signed in for
 * this request, the answer carries the acr the sign-in reached, whatever it is, as `max_age` does.
 */
export function requestedAcrCheck() {
  const { Check } = interactionPolicy;
  return new Check('acr_values', 'the session does not meet the requested acr_values', (ctx: KoaContextWithOIDC) => {
    const { oidc } = ctx;
    const requested = requestedAcrValues(oidc.params as Record<string, unknown>);
    if (requested.length === 0 || !oidc.session?.accountId || oidc.result?.login) return Check.NO_NEED_TO_PROMPT;
    return acrSatisfies(oidc.session.acr, requested) ? Check.NO_NEED_TO_PROMPT : Check.REQUEST_PROMPT;
  });
}

/** oidc-provider's prompts, with the login prompt also asking when `acr_values` are not met. */
export function basePromptsWithRequestedAcr() {
  const prompts = interactionPolicy.base();
  prompts.get('login')!.checks.add(requestedAcrCheck());
  return prompts;
}
