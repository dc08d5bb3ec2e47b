import type { Context } from 'koa';
import type { FactorService } from '../factors/factor.service.ts';
import type { FactorKind } from '../factors/factor.table.ts';
import { kindAllowed, usableKinds } from '../factors/tenant-factors.ts';
import { effectiveSettings } from '../tenants/settings.ts';

/**
 * What the sign-in pages need to offer passkeys (the routes that answer are in passkey.routes.ts):
 * nothing at all when the tenant's settings leave passkeys out (`mfa_factors` without `passkey`,
 * or `mfa: off`; tenant-factors.ts).
 */

export const interactionBase = (ctx: Context, uid: string) => `/t/${ctx.state.runtime.tenant.slug}/interaction/${encodeURIComponent(uid)}`;

/** The scripts of a page that runs a passkey ceremony: the WebAuthn browser library, then ours. */
export const PASSKEY_SCRIPTS = ['webauthn.js', 'passkeys.js'];

/** Whether the tenant lets people use passkeys at all. */
export const passkeysAllowed = (ctx: Context) => kindAllowed(effectiveSettings(ctx.state.runtime.tenant.settings), 'passkey');

/** What the email-first page needs to offer "Sign in with a passkey" and autofill. */
export function passkeySignInOffer(ctx: Context, uid: string): Record<string, unknown> {
  if (!passkeysAllowed(ctx)) return {};
  const base = interactionBase(ctx, uid);
  return { passkey: { optionsUrl: `${base}/passkey/options`, action: `${base}/passkey` }, scripts: PASSKEY_SCRIPTS };
}

/**
 * What the code step needs to offer "Use a passkey", when the person has one that counts in this
 * tenant. `only`: no authenticator app counts, so the page does not ask for its code.
 */
export async function passkeySecondFactorOffer(
  ctx: Context,
  factors: FactorService,
  uid: string,
  pending: { accountId: string; kinds?: FactorKind[] | undefined },
): Promise<Record<string, unknown>> {
  if (!passkeysAllowed(ctx)) return {};
  // The kinds the password step read ride on the pending state: no second read for the page.
  const confirmed = pending.kinds ?? (await factors.confirmedKinds(ctx.state.runtime.tenant.id, pending.accountId));
  const usable = usableKinds(effectiveSettings(ctx.state.runtime.tenant.settings), confirmed);
  if (!usable.has('passkey')) return {};
  const base = interactionBase(ctx, uid);
  return { passkey: { optionsUrl: `${base}/mfa/passkey/options`, action: `${base}/mfa/passkey`, only: !usable.has('totp') }, scripts: PASSKEY_SCRIPTS };
}
